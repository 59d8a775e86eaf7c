//! Named queries against golden output, usage windows across midnight, month
//! ends and DST, and dimensions. The fixture lake is `examples/logs` (600
//! requests, 3 keys).

use crate::cli::{edgemeter, ingest};
use crate::logs::{Req, log_text};
use edgemeter::query::library::QUERIES;
use std::path::Path;

async fn sample_lake() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake").to_str().unwrap().to_string();
    let logs = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/logs");
    let run = ingest(&[], logs, &lake, &["--quiet"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    (dir, lake)
}

/// Every named query's CSV output over the sample lake equals
/// `tests/golden/<name>.csv` (`EDGEMETER_BLESS=1` rewrites them; review the diff).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_named_query_matches_its_golden_output() {
    let (_dir, lake) = sample_lake().await;
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("EDGEMETER_BLESS").is_some();
    for q in QUERIES {
        let mut args = vec![
            "query",
            "--lake",
            &lake,
            "--format",
            "csv",
            q.name,
            "--param",
            "from=2025-10-05",
        ];
        if q.name == "top_keys" {
            args.extend(["--param", "limit=2"]);
        }
        let mut run = edgemeter(&[], &args).await;
        assert_eq!(run.code, 0, "{}: {}", q.name, run.stderr);
        // CSV lines end in CRLF; the golden files are kept with LF.
        assert!(
            !run.stdout.replace("\r\n", "").contains('\n'),
            "{}: a line without CRLF",
            q.name
        );
        run.stdout = run.stdout.replace("\r\n", "\n");
        let path = golden.join(format!("{}.csv", q.name));
        if bless {
            std::fs::write(&path, &run.stdout).unwrap();
        }
        let want =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            run.stdout, want,
            "{} differs from its golden output",
            q.name
        );
    }
    // Independent cross-checks on the sample (600 lines, counted with grep/awk):
    // 154 without a key, 24 with status 000, 368 2xx.
    let unbillable = std::fs::read_to_string(golden.join("unbillable.csv")).unwrap();
    assert!(unbillable.contains("no_key,,154,"), "{unbillable}");
    assert!(unbillable.contains("status_000,,24,"), "{unbillable}");
    let daily = std::fs::read_to_string(golden.join("daily_series.csv")).unwrap();
    assert!(daily.contains("2025-10-05,600,368,"), "{daily}");
    let top = std::fs::read_to_string(golden.join("top_keys.csv")).unwrap();
    assert_eq!(top.lines().count(), 3, "header and limit=2 rows: {top}");
}

fn at(date: &str, time: &str, id: &str) -> Req {
    Req {
        date: date.into(),
        time: time.into(),
        query: "api_key=ak_live_window_0001".into(),
        key: Some("ak_live_window_0001".into()),
        status: "200",
        sc_bytes: Some(1),
        cs_bytes: 1,
        request_id: id.into(),
        time_taken: 0.1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_follow_midnight_month_ends_and_dst() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let reqs = [
        at("2025-03-29", "23:30:00", "w1"), // Berlin: Mar 30 00:30 CET
        at("2025-03-30", "00:30:00", "w2"), // Berlin: Mar 30 01:30 CET
        at("2025-03-30", "22:30:00", "w3"), // Berlin: Mar 31 00:30 CEST (the day had 23 hours)
        at("2025-03-31", "23:59:59", "w4"), // UTC: last second of March; Berlin: Apr 1 01:59:59
        at("2025-04-01", "00:00:00", "w5"), // UTC: first second of April
    ];
    std::fs::write(logs.join("E2W.2025-03-29-23.a"), log_text(&reqs)).unwrap();
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    let run = ingest(&[], logs.to_str().unwrap(), lake, &["--quiet"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let windows = |by: &'static str, tz: Option<&'static str>| {
        let lake = lake.to_string();
        async move {
            let mut args = vec!["usage", "--lake", &lake, "--format", "csv", "--by", by];
            if let Some(tz) = tz {
                args.extend(["--tz", tz]);
            }
            let run = edgemeter(&[], &args).await;
            assert_eq!(run.code, 0, "{}", run.stderr);
            run.stdout
                .lines()
                .skip(1)
                .map(|l| {
                    let cells: Vec<&str> = l.split(',').collect();
                    (cells[0].to_string(), cells[3].parse::<u32>().unwrap())
                })
                .collect::<Vec<_>>()
        }
    };
    let s = |w: &str, n: u32| (w.to_string(), n);
    assert_eq!(
        windows("day", None).await,
        [
            s("2025-03-29T00:00:00+00:00", 1),
            s("2025-03-30T00:00:00+00:00", 2),
            s("2025-03-31T00:00:00+00:00", 1),
            s("2025-04-01T00:00:00+00:00", 1)
        ]
    );
    assert_eq!(
        windows("day", Some("Europe/Berlin")).await,
        [
            s("2025-03-30T00:00:00+01:00", 2),
            s("2025-03-31T00:00:00+02:00", 1),
            s("2025-04-01T00:00:00+02:00", 2)
        ]
    );
    assert_eq!(
        windows("month", None).await,
        [
            s("2025-03-01T00:00:00+00:00", 4),
            s("2025-04-01T00:00:00+00:00", 1)
        ]
    );
    assert_eq!(
        windows("month", Some("Europe/Berlin")).await,
        [
            s("2025-03-01T00:00:00+01:00", 3),
            s("2025-04-01T00:00:00+02:00", 2)
        ]
    );
    assert_eq!(
        windows("hour", Some("Asia/Kolkata")).await[0],
        s("2025-03-30T05:00:00+05:30", 1),
        "a half-hour zone: 23:30Z is 05:00 IST"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_groups_by_endpoint_and_filters_keys() {
    let (_dir, lake) = sample_lake().await;
    let run = edgemeter(
        &[],
        &[
            "usage",
            "--lake",
            &lake,
            "--format",
            "csv",
            "--group-by",
            "endpoint",
            "--group-by",
            "method",
            "--key-raw",
            "ak_live_acme_7f3k2",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: Vec<Vec<String>> = run
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    let id = crate::logs::sha256_hex("ak_live_acme_7f3k2");
    assert!(rows.iter().all(|r| r[0] == id), "only the one key");
    let endpoints: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[2].as_str()).collect();
    assert_eq!(
        endpoints.into_iter().collect::<Vec<_>>(),
        [
            "/v1/reports/{id}",
            "/v1/search",
            "/v1/users/{id}",
            "/v1/users/{id}/orders"
        ]
    );
    // The key's 126 requests (see golden usage_by_key) are all accounted for.
    let total: u32 = rows.iter().map(|r| r[4].parse::<u32>().unwrap()).sum();
    assert_eq!(total, 126);

    // Parquet output of ad hoc SQL is readable Parquet with the rows asked for.
    let out = _dir.path().join("q.parquet");
    let run = edgemeter(
        &[],
        &[
            "query",
            "--lake",
            &lake,
            "--format",
            "parquet",
            "--output",
            out.to_str().unwrap(),
            "SELECT sc_status FROM requests",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let file = std::fs::File::open(&out).unwrap();
    let reader = datafusion::parquet::file::reader::SerializedFileReader::new(file).unwrap();
    use datafusion::parquet::file::reader::FileReader;
    assert_eq!(reader.metadata().file_metadata().num_rows(), 600);
}
