//! S3 as it misbehaves (503 SlowDown, reset connections, bodies cut short) and
//! a lake that itself lives on S3, with exact totals either way.

use crate::cli::{edgemeter, summary, usage};
use crate::logs::{Req, expected, gzip, hour_of_requests, log_text};
use crate::s3::TestS3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_s3_reads_are_retried_into_exact_totals_in_an_s3_lake() {
    let s3 = TestS3::start_faulty("logs").await;
    s3.create_bucket("logs").await;
    s3.create_bucket("lake").await;
    let mut all: Vec<Req> = Vec::new();
    for i in 0..6u32 {
        let reqs = hour_of_requests(12 + i % 3, 150, &format!("f{i}"));
        let key = format!("cf/E2FAULT.2025-10-05-{:02}.{i}.gz", 12 + i % 3);
        s3.put("logs", &key, gzip(&log_text(&reqs))).await;
        all.extend(reqs);
    }
    let want = expected(&all.iter().collect::<Vec<_>>());
    let mut env = s3.env();
    // Stalls of 3 s must time out and be retried, not wait forever.
    env.push(("EDGEMETER_S3_READ_TIMEOUT_SECS", "1".into()));
    let lake = "s3://lake/edge/";

    let ingest = [
        "ingest",
        "--source",
        "s3://logs/cf/",
        "--lake",
        lake,
        "--since",
        "2025-10-05",
        "--json",
    ];
    let run = edgemeter(&env, &ingest).await;
    assert_eq!(run.code, 0, "every fault is retried: {}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["objects_ingested"], 6);
    assert_eq!(s["rows_written"], 900);
    // The cut-short bodies were noticed and retried, never parsed.
    assert!(
        run.stderr.contains("body"),
        "{}",
        run.stderr
            .lines()
            .filter(|l| !l.contains("config file"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(s["bad_lines"], 0);
    // Every object took five requests: 503, reset, cut short, a stall that
    // timed out after 1 s (not waited out), and the good one.
    for i in 0..6u32 {
        let key = format!("cf/E2FAULT.2025-10-05-{:02}.{i}.gz", 12 + i % 3);
        assert_eq!(s3.get_attempts("logs", &key), 5, "{key}");
    }

    // The lake is on S3: usage and query read it there.
    assert_eq!(usage(&env, lake, &[]).await, want);
    let files = s3
        .client()
        .list_objects_v2()
        .bucket("lake")
        .prefix("edge/requests/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = files.contents().iter().filter_map(|o| o.key()).collect();
    // A Delta table: its log, and one data file per hour.
    assert!(
        keys.contains(&"edge/requests/_delta_log/00000000000000000000.json"),
        "{keys:?}"
    );
    for hour in 12..15 {
        let prefix = format!("edge/requests/dt=2025-10-05/hour={hour}/part-");
        let n = keys.iter().filter(|k| k.starts_with(&prefix)).count();
        assert_eq!(n, 1, "{prefix}: {keys:?}");
    }

    // Exports read the S3 lake and can be written to S3 too.
    let plans = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        plans.path(),
        "[billing]\ncurrency = \"EUR\"\n[plans.flat]\nbase_fee = \"5.00\"\n",
    )
    .unwrap();
    let run = edgemeter(
        &env,
        &[
            "export",
            "--lake",
            lake,
            "--period",
            "2025-10",
            "--plans",
            plans.path().to_str().unwrap(),
            "--format",
            "csv",
            "--output",
            "s3://lake/exports/2025-10.csv",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let csv = s3
        .client()
        .get_object()
        .bucket("lake")
        .key("exports/2025-10.csv")
        .send()
        .await
        .unwrap();
    let csv = csv.body.collect().await.unwrap().into_bytes();
    let text = String::from_utf8(csv.to_vec()).unwrap();
    // No customers: one line per key seen (4 keys, then the keyless requests), 900 requests in all.
    let requests: u64 = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(5).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!((text.lines().count(), requests), (6, 900), "{text}");

    // Re-running against the S3 lake reads its ingested record there.
    let run = edgemeter(&env, &ingest).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run)["objects_skipped"], 6);
    assert_eq!(usage(&env, lake, &[]).await, want);
}
