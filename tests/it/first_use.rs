//! What a new user meets first: ranges in their time zone.

use crate::cli::{edgemeter, ingest, usage};
use crate::logs::{Req, expected, gzip, log_text, requests_at};

/// Writes one log object per `(date, hour, requests)` and ingests them all
/// into a new lake. Returns the requests and the lake.
async fn ingested(hours: &[(&str, u32, usize)]) -> (Vec<Req>, tempfile::TempDir) {
    let logs = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for &(date, hour, n) in hours {
        let reqs = requests_at(date, hour, n, &format!("r{date}{hour}"));
        let name = format!("E2FIRST.{date}-{hour:02}.a.gz");
        std::fs::write(logs.path().join(name), gzip(&log_text(&reqs))).unwrap();
        all.extend(reqs);
    }
    let lake = tempfile::tempdir().unwrap();
    let source = logs.path().to_str().unwrap();
    let run = ingest(
        &[],
        source,
        lake.path().to_str().unwrap(),
        &["--full-listing"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    (all, lake)
}

/// `--from`/`--to` dates with `--tz` are local midnights; EDGEMETER_TZ does
/// the same without `--by`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dates_with_a_zone_are_its_midnights() {
    // New York is UTC-4 on 2025-11-01: its 1 November starts at 04:00Z.
    // Hours 03Z (31 October there), 04Z and 05Z (1 November); and 2025-11-02
    // 03Z (still 1 November there) and 04Z (2 November).
    let (all, lake_dir) = ingested(&[
        ("2025-11-01", 3, 30),
        ("2025-11-01", 4, 40),
        ("2025-11-01", 5, 50),
        ("2025-11-02", 3, 20),
        ("2025-11-02", 4, 10),
    ])
    .await;
    let lake = lake_dir.path().to_str().unwrap();

    let local_first: Vec<&Req> = all
        .iter()
        .filter(|r| {
            let at = format!("{}T{}", r.date, r.time);
            ("2025-11-01T04:00:00".to_string().."2025-11-02T04:00:00".to_string()).contains(&at)
        })
        .collect();
    assert_eq!(local_first.len(), 40 + 50 + 20);
    let range = ["--from", "2025-11-01", "--to", "2025-11-02"];
    let mut flags = range.to_vec();
    flags.extend(["--tz", "America/New_York"]);
    assert_eq!(usage(&[], lake, &flags).await, expected(&local_first));
    // The zone from the environment, without --by.
    let env = [("EDGEMETER_TZ", "America/New_York".to_string())];
    assert_eq!(usage(&env, lake, &range).await, expected(&local_first));
    // Without a zone the dates are UTC midnights.
    let utc_first: Vec<&Req> = all.iter().filter(|r| r.date == "2025-11-01").collect();
    assert_eq!(usage(&[], lake, &range).await, expected(&utc_first));
    // A zone that is not one is named.
    let bad = edgemeter(&[], &["usage", "--lake", lake, "--tz", "Berlin"]).await;
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("\"Berlin\": unknown time zone")
            && bad.stderr.contains("did you mean Europe/Berlin?"),
        "{}",
        bad.stderr
    );
}

/// The hour that fall back repeats is two windows, one per offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_windows_on_the_day_clocks_go_back() {
    let (_, lake_dir) = ingested(&[
        ("2025-10-26", 0, 100),
        ("2025-10-26", 1, 100),
        ("2025-10-26", 2, 100),
    ])
    .await;
    let lake = lake_dir.path().to_str().unwrap();
    let run = edgemeter(
        &[],
        &[
            "usage",
            "--lake",
            lake,
            "--by",
            "hour",
            "--tz",
            "Europe/Berlin",
            "--format",
            "csv",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut reader = csv::Reader::from_reader(run.stdout.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (window, requests) = (col("window_start"), col("requests"));
    let mut per_window = std::collections::BTreeMap::<String, i64>::new();
    for record in reader.records() {
        let record = record.unwrap();
        *per_window.entry(record[window].to_string()).or_default() +=
            record[requests].parse::<i64>().unwrap();
    }
    // 00Z is 02:00 CEST, 01Z is 02:00 CET (the repeated hour), 02Z is 03:00 CET.
    let want: std::collections::BTreeMap<String, i64> = [
        ("2025-10-26T02:00:00+01:00", 100),
        ("2025-10-26T02:00:00+02:00", 100),
        ("2025-10-26T03:00:00+01:00", 100),
    ]
    .into_iter()
    .map(|(w, n)| (w.to_string(), n))
    .collect();
    assert_eq!(per_window, want);
}

/// An empty source says so, and how to look further back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_source_says_nothing_was_found() {
    let logs = tempfile::tempdir().unwrap();
    let lake_dir = tempfile::tempdir().unwrap();
    let source = logs.path().to_str().unwrap();
    let run = ingest(&[], source, lake_dir.path().to_str().unwrap(), &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The test helper lists everything: nothing more to suggest.
    assert!(
        run.stdout
            .contains("nothing found: no log objects under the source\n"),
        "{}",
        run.stdout
    );
    // Within a lookback (from the second run on), how to look further back.
    let lake = lake_dir.path().to_str().unwrap();
    let run = edgemeter(
        &[],
        &[
            "ingest",
            "--source",
            source,
            "--lake",
            lake,
            "--lookback",
            "2h",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "nothing found: no log objects in this listing; \
             older ones need --lookback, --since or --full-listing"
        ),
        "{}",
        run.stdout
    );
}
