//! Never lose, never double-count: `kill -9` at pseudo-random points followed
//! by a re-run, and two runs racing on one lake, each checked against totals
//! the test computes itself.

use crate::cli::{edgemeter, ingest, query_csv, summary, usage};
use crate::logs::{Req, expected, gzip, hour_of_requests, log_text};
use std::path::Path;
use std::time::Duration;

/// Writes `objects` gzip log files over 6 hours; every 7th object repeats the
/// first 50 requests of the object before it (same request ids). Returns the
/// distinct requests.
fn write_logs(dir: &Path, objects: usize, lines: usize) -> Vec<Req> {
    let mut distinct = Vec::new();
    let mut previous: Vec<Req> = Vec::new();
    for i in 0..objects {
        let hour = 10 + (i % 6) as u32;
        let mut reqs = hour_of_requests(hour, lines, &format!("o{i}"));
        distinct.extend(reqs.iter().cloned());
        if i % 7 == 6 {
            reqs.extend(previous[..50].iter().cloned());
        }
        let name = format!("E2CRASH.2025-10-05-{hour:02}.{i:04}.gz");
        std::fs::write(dir.join(name), gzip(&log_text(&reqs))).unwrap();
        previous = reqs;
    }
    distinct
}

/// The ingest both tests run: small batches, so there are many commits for
/// kills to land before, inside and after.
fn ingest_args<'a>(source: &'a str, lake: &'a str) -> [&'a str; 10] {
    [
        "ingest",
        "--source",
        source,
        "--lake",
        lake,
        "--batch-bytes",
        "20000",
        "--since",
        "2025-10-05",
        "--json",
    ]
}

/// What readers see must never hold the same request twice.
async fn assert_no_visible_duplicates(lake: &str) {
    let dups = query_csv(
        &[],
        lake,
        "SELECT count(*) - count(DISTINCT x_edge_request_id) AS dups FROM requests",
    )
    .await;
    assert_eq!(dups.lines().nth(1), Some("0"), "{dups}");
}

/// Both rollups (`usage_hourly` and `usage_hourly_keys`) agree with the raw
/// rows, hour by hour, key by key and status by status.
pub async fn assert_rollup_matches_rows(lake: &str) {
    let rows = query_csv(
        &[],
        lake,
        "SELECT dt, hour, api_key_id, sc_status, count(*) AS n, coalesce(sum(sc_bytes), 0) AS b, \
         coalesce(sum(cs_bytes), 0) AS i FROM requests GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    )
    .await;
    for table in ["usage_hourly", "usage_hourly_keys"] {
        let rolled = query_csv(
            &[],
            lake,
            &format!(
                "SELECT dt, hour, api_key_id, sc_status, sum(requests) AS n, \
                 sum(bytes_out) AS b, sum(bytes_in) AS i FROM {table} \
                 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
            ),
        )
        .await;
        assert_eq!(rows, rolled, "{table}");
    }
    assert!(rows.lines().count() > 6, "{rows}");
    // The day totals (the view: each day from its totals or its hours).
    let by_day = |table: &str, count: &str| {
        format!(
            "SELECT dt, api_key_id, sc_status, {count} FROM {table} \
             GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        )
    };
    let raw = "count(*) AS n, coalesce(sum(sc_bytes), 0) AS b, coalesce(sum(cs_bytes), 0) AS i";
    let summed = "sum(requests) AS n, sum(bytes_out) AS b, sum(bytes_in) AS i";
    assert_eq!(
        query_csv(&[], lake, &by_day("requests", raw)).await,
        query_csv(&[], lake, &by_day("usage_daily_totals", summed)).await,
        "usage_daily_totals"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_then_rerun_gives_exact_totals() {
    let logs = tempfile::tempdir().unwrap();
    let distinct = write_logs(logs.path(), 48, 600);
    let want = expected(&distinct.iter().collect::<Vec<_>>());
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let source = logs.path().to_str().unwrap();
    let ingest = ingest_args(source, lake);

    let mut seed: u64 = 0x5eed_cafe;
    let mut interrupted = 0;
    for round in 0..12 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let delay = Duration::from_millis(5 + (seed >> 33) % 400);
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgemeter"))
            .args(ingest)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(delay).await;
        child.start_kill().unwrap(); // SIGKILL
        child.wait().await.unwrap();

        assert_no_visible_duplicates(lake).await;
        let partial = usage(&[], lake, &[]).await;
        for (key, got) in &partial {
            let full = &want[key];
            assert!(
                got.requests <= full.requests,
                "round {round}: {key} over-counted"
            );
            assert!(
                got.bytes_out <= full.bytes_out,
                "round {round}: {key} over-counted"
            );
        }
        interrupted += usize::from(partial != want);
    }
    assert!(
        interrupted >= 3,
        "only {interrupted} kills landed mid-run: the test lost its teeth"
    );

    let run = edgemeter(&[], &ingest).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(usage(&[], lake, &[]).await, want);
    assert_no_visible_duplicates(lake).await;
    assert_rollup_matches_rows(lake).await;
    assert_rollup_tables_exact(lake, &want);
    let run = edgemeter(&[], &ingest).await;
    assert_eq!(summary(&run)["rows_written"], 0);
    assert_eq!(usage(&[], lake, &[]).await, want);
}

/// After a run that finished, each rollup table read whole by an independent
/// Delta reader (no pairing with `requests`, as Athena or Spark read it)
/// gives exactly the expected per-key figures: no rollup of a replaced file
/// is left behind by the runs killed before.
fn assert_rollup_tables_exact(
    lake: &str,
    want: &std::collections::BTreeMap<String, crate::logs::Totals>,
) {
    let figures = crate::delta::reader_figures(want);
    for table in [
        "usage_hourly",
        "usage_hourly_keys",
        "usage_daily",
        "usage_daily_keys",
    ] {
        let view = crate::delta::read_rollup_with_python(lake, table);
        assert_eq!(view.keys, figures, "{table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_never_corrupt_the_lake() {
    let logs = tempfile::tempdir().unwrap();
    let distinct = write_logs(logs.path(), 24, 600);
    let want = expected(&distinct.iter().collect::<Vec<_>>());
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let source = logs.path().to_str().unwrap();
    let ingest = ingest_args(source, lake);

    // No lock: both runs write, and both finish with every request counted once.
    let (a, b) = tokio::join!(edgemeter(&[], &ingest), edgemeter(&[], &ingest));
    assert_eq!((a.code, b.code), (0, 0), "{}{}", a.stderr, b.stderr);
    assert_eq!(usage(&[], lake, &[]).await, want);
    assert_no_visible_duplicates(lake).await;
    assert_rollup_matches_rows(lake).await;
    assert_rollup_tables_exact(lake, &want);
    let run = edgemeter(&[], &ingest).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(usage(&[], lake, &[]).await, want);
    assert_no_visible_duplicates(lake).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_committed_at_once_into_one_hour_lose_nothing() {
    // Every object is its own batch, and every batch lands in the same two
    // hours, so commits in flight together always want the same partitions.
    let logs = tempfile::tempdir().unwrap();
    let mut distinct = Vec::new();
    for i in 0..16 {
        let mut reqs = hour_of_requests(10, 300, &format!("a{i}"));
        reqs.extend(hour_of_requests(11, 100, &format!("b{i}")));
        distinct.extend(reqs.iter().cloned());
        let name = format!("E2SAME.2025-10-05-10.{i:04}.gz");
        std::fs::write(logs.path().join(name), gzip(&log_text(&reqs))).unwrap();
    }
    let want = expected(&distinct.iter().collect::<Vec<_>>());
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let source = logs.path().to_str().unwrap();
    let run = edgemeter(&[], &ingest_args(source, lake)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["objects_ingested"], 16);
    assert_eq!(s["rows_written"], 16 * 400);
    assert_eq!(s["duplicates"], 0);
    assert_eq!(usage(&[], lake, &[]).await, want);
    let rows = query_csv(
        &[],
        lake,
        "SELECT hour, count(*) AS n FROM requests GROUP BY 1 ORDER BY 1",
    )
    .await;
    assert_eq!(rows, "hour,n\n10,4800\n11,1600\n");
    assert_rollup_matches_rows(lake).await;
}

/// One object for each of `hours` of `date`, `n` requests each, named with
/// `tag`. Returns their requests.
fn write_hours(
    dir: &Path,
    date: &str,
    hours: std::ops::Range<u32>,
    n: usize,
    tag: &str,
) -> Vec<Req> {
    let mut all = Vec::new();
    for hour in hours {
        let reqs = crate::logs::requests_at(date, hour, n, &format!("{tag}{date}h{hour}"));
        all.extend(reqs.iter().cloned());
        let name = format!("E2{tag}.{date}-{hour:02}.{hour:04}.gz");
        std::fs::write(dir.join(name), gzip(&log_text(&reqs))).unwrap();
    }
    all
}

/// A lake whose tables exist, empty: a run over no logs makes them.
async fn empty_lake() -> tempfile::TempDir {
    let lake = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let run = ingest(
        &[],
        empty.path().to_str().unwrap(),
        lake.path().to_str().unwrap(),
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    lake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_ends_the_run_and_the_rerun_completes_it_exactly() {
    // A day of objects that commit, then a day whose partitions cannot be
    // written: a plain file sits where its `dt=` directory would go.
    let logs = tempfile::tempdir().unwrap();
    let mut distinct = write_hours(logs.path(), "2025-10-05", 8..14, 300, "FAIL");
    distinct.extend(write_hours(logs.path(), "2025-10-06", 8..14, 300, "FAIL"));
    let lake_dir = empty_lake().await;
    let lake = lake_dir.path().to_str().unwrap();
    let source = logs.path().to_str().unwrap();
    let blocker = lake_dir.path().join("requests/dt=2025-10-06");
    std::fs::write(&blocker, "not a directory").unwrap();

    let run = edgemeter(&[], &ingest_args(source, lake)).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("dt=2025-10-06"), "{}", run.stderr);
    // The first day was committed and counts exactly; nothing of the second.
    let first_day: Vec<&Req> = distinct.iter().filter(|r| r.date == "2025-10-05").collect();
    assert_eq!(usage(&[], lake, &[]).await, expected(&first_day));

    std::fs::remove_file(&blocker).unwrap();
    let run = edgemeter(&[], &ingest_args(source, lake)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["objects_skipped"], 6);
    assert_eq!(s["rows_written"], 6 * 300);
    assert_eq!(
        usage(&[], lake, &[]).await,
        expected(&distinct.iter().collect::<Vec<_>>())
    );
    assert_no_visible_duplicates(lake).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hour_failing_in_a_batch_discards_the_other_hours_merged_files() {
    // Six hours in one batch, merged two at a time; one of them cannot be
    // written (a plain file sits where its `hour=` directory would go). The
    // five merges that succeed have written their files by the time the run
    // gives up: none may stay behind, and nothing of the batch is committed.
    let logs = tempfile::tempdir().unwrap();
    let distinct = write_hours(logs.path(), "2025-10-06", 8..14, 400, "HOURS");
    let lake_dir = empty_lake().await;
    let lake = lake_dir.path().to_str().unwrap();
    let source = logs.path().to_str().unwrap();
    let day = lake_dir.path().join("requests/dt=2025-10-06");
    std::fs::create_dir_all(&day).unwrap();
    let blocker = day.join("hour=11");
    std::fs::write(&blocker, "not a directory").unwrap();

    let run = ingest(&[], source, lake, &["--json"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("hour=11"), "{}", run.stderr);
    for table in ["requests", "usage_hourly"] {
        let left = crate::delta::parquet_on_disk(&lake_dir.path().join(table));
        assert!(
            left.is_empty(),
            "uncommitted files left in {table}: {left:?}"
        );
    }
    assert!(usage(&[], lake, &[]).await.is_empty());
    assert!(crate::delta::read_with_python(lake).keys.is_empty());

    std::fs::remove_file(&blocker).unwrap();
    let run = ingest(&[], source, lake, &["--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["objects_ingested"], 6);
    assert_eq!(s["rows_written"], 6 * 400);
    let want = expected(&distinct.iter().collect::<Vec<_>>());
    assert_eq!(usage(&[], lake, &[]).await, want);
    let view = crate::delta::read_with_python(lake);
    assert_eq!(view.keys, crate::delta::reader_figures(&want));
    assert_eq!(view.repeated_ids, 0);
    assert_rollup_matches_rows(lake).await;
}

/// Files named for `hours_ago` before now, with requests of that hour.
fn recent_file(dir: &Path, hours_ago: i64, n: usize, tag: &str) -> Vec<Req> {
    let t = chrono::Utc::now() - chrono::Duration::hours(hours_ago);
    let date = t.format("%Y-%m-%d").to_string();
    let hour: u32 = t.format("%H").to_string().parse().unwrap();
    let reqs = crate::logs::requests_at(&date, hour, n, tag);
    let name = format!("E2RECENT.{}.{tag}.gz", t.format("%Y-%m-%d-%H"));
    std::fs::write(dir.join(name), gzip(&log_text(&reqs))).unwrap();
    reqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_runs_list_the_lookback_window_and_merge_late_files() {
    let logs = tempfile::tempdir().unwrap();
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let source = logs.path().to_str().unwrap();
    let mut ingested: Vec<Req> = Vec::new();
    for (ago, tag) in [(1, "a"), (30, "b"), (100, "c")] {
        ingested.extend(recent_file(logs.path(), ago, 40, tag));
    }
    // First run of this source: everything is listed.
    let run = ingest(&[], source, lake, &["--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(
        (s["listing"].as_str(), s["objects_ingested"].as_u64()),
        (Some("full"), Some(3))
    );

    // A late file for an hour already ingested, and an old file outside the window.
    let late = recent_file(logs.path(), 1, 25, "late");
    let old = recent_file(logs.path(), 80, 10, "old");
    ingested.extend(late.iter().cloned());
    let run = ingest(&[], source, lake, &["--json"]).await;
    let s = summary(&run);
    assert!(s["listing"].as_str().unwrap().starts_with("since "), "{s}");
    // Listed: a, b (skipped) and the late file; c and the old file are outside 48h.
    assert_eq!(s["objects_listed"], 3);
    assert_eq!(s["objects_skipped"], 2);
    assert_eq!(s["rows_written"], 25);
    assert_eq!(
        usage(&[], lake, &[]).await,
        expected(&ingested.iter().collect::<Vec<_>>())
    );

    // A backfill with --full-listing picks up the old file; nothing is counted twice.
    let run = ingest(&[], source, lake, &["--json", "--full-listing"]).await;
    let s = summary(&run);
    assert_eq!(s["objects_ingested"], 1);
    assert_eq!(s["rows_written"], 10);
    ingested.extend(old);
    assert_eq!(
        usage(&[], lake, &[]).await,
        expected(&ingested.iter().collect::<Vec<_>>())
    );
}

/// Record files under `_edgemeter/ingested/<dir>` (relative names, sorted).
fn record_files(lake: &Path, dir: &str) -> Vec<String> {
    let root = lake.join("_edgemeter/ingested").join(dir);
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".parquet"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The run succeeded, listed `n` objects and skipped them all as ingested.
fn assert_all_skipped(run: &crate::cli::Run, n: u64) {
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(run);
    assert_eq!(
        (s["objects_listed"].as_u64(), s["objects_skipped"].as_u64()),
        (Some(n), Some(n))
    );
    assert_eq!(s["rows_written"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_reads_the_ingested_record_of_the_days_it_lists_only() {
    let logs = tempfile::tempdir().unwrap();
    let lake_dir = tempfile::tempdir().unwrap();
    let (lake_path, lake) = (lake_dir.path(), lake_dir.path().to_str().unwrap());
    let source = logs.path().to_str().unwrap();
    let mut all: Vec<Req> = recent_file(logs.path(), 1, 30, "new");
    let recent_day = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("day=%Y-%m-%d")
        .to_string();
    let old = crate::logs::requests_at("2025-10-05", 9, 20, "old");
    std::fs::write(
        logs.path().join("E2REC.2025-10-05-09.old.gz"),
        gzip(&log_text(&old)),
    )
    .unwrap();
    let undated = crate::logs::requests_at("2025-10-06", 3, 10, "undated");
    std::fs::write(logs.path().join("export.gz"), gzip(&log_text(&undated))).unwrap();
    all.extend(old);
    all.extend(undated);
    let ingest_lake = |full: bool| {
        let flags: &[&str] = match full {
            true => &["--json", "--full-listing"],
            false => &["--json"],
        };
        ingest(&[], source, lake, flags)
    };

    let run = ingest_lake(false).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run)["rows_written"], 60);
    for day in ["day=2025-10-05", recent_day.as_str(), "day=undated"] {
        assert_eq!(record_files(lake_path, day).len(), 1, "{day}");
    }

    // An hourly run lists the recent and the undated file only, and reads only
    // their days of the record: the 2025 day, made unreadable here, is not read.
    let old_day = lake_path.join("_edgemeter/ingested/day=2025-10-05");
    let old_record = old_day.join(&record_files(lake_path, "day=2025-10-05")[0]);
    let saved = std::fs::read(&old_record).unwrap();
    std::fs::write(&old_record, b"not parquet").unwrap();
    assert_all_skipped(&ingest_lake(false).await, 2);
    // A full listing needs that day, and says which file it could not read.
    let run = ingest_lake(true).await;
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("day=2025-10-05"), "{}", run.stderr);
    std::fs::write(&old_record, saved).unwrap();

    let run = ingest_lake(true).await;
    assert_eq!(summary(&run)["objects_skipped"], 3);
    assert_eq!(
        usage(&[], lake, &[]).await,
        expected(&all.iter().collect::<Vec<_>>())
    );
    let sources = query_csv(&[], lake, "SELECT count(*) AS n FROM ingested").await;
    assert_eq!(sources, "n\n3\n");
}
