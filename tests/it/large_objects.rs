//! Objects with more log text than `--part-bytes` are parsed and committed a
//! part at a time, and an hour's full files are never read whole again: so
//! memory stays bounded however large an object or an hour is. Each test
//! uses tiny parts and files, so that small fixtures make many of both, and
//! checks the totals it computes itself from the requests it wrote.

use crate::cli::{edgemeter, ingest, query_csv, summary, usage};
use crate::delta::{current_files, read_with_python, reader_figures};
use crate::exactly_once::assert_rollup_matches_rows;
use crate::logs::{Req, expected, gzip, hour_of_requests, log_text};
use std::path::Path;
use std::time::Duration;

/// About 50 of the fixtures' lines (330 bytes each) to a part.
const PART: &str = "16KiB";

/// `n` requests of one hour, then `bad` malformed lines spread among them and
/// the first `repeats` requests again (the same request ids) at the end.
fn object_text(reqs: &[Req], bad: usize, repeats: usize) -> String {
    let mut text = crate::logs::HEADER.to_string();
    for (i, r) in reqs.iter().enumerate() {
        text.push_str(&r.line());
        if bad > 0 && i % (reqs.len() / bad) == 7 {
            text.push_str("a damaged line\n");
        }
    }
    for r in &reqs[..repeats] {
        text.push_str(&r.line());
    }
    text
}

/// The lake's per-key figures are `want`, through edgemeter and through the
/// independent Delta reader, no request is in it twice, and each rollup sums
/// its rows.
async fn assert_lake_holds(
    lake: &str,
    want: &std::collections::BTreeMap<String, crate::logs::Totals>,
) {
    assert_eq!(&usage(&[], lake, &[]).await, want);
    let reader = read_with_python(lake);
    assert_eq!(reader.keys, reader_figures(want));
    assert_eq!(reader.repeated_ids, 0);
    assert_rollup_matches_rows(lake).await;
}

fn files_in(lake: &str, hour: &str, prefix: &str) -> Vec<String> {
    let dir = format!("dt=2025-10-05/hour={hour}/{prefix}-");
    current_files(lake)
        .into_iter()
        .filter(|f| f.starts_with(&dir))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_larger_than_a_part_is_committed_in_parts_exactly() {
    let logs = tempfile::tempdir().unwrap();
    let big = hour_of_requests(10, 3000, "big");
    let small = hour_of_requests(11, 200, "small");
    let text = object_text(&big, 3, 60);
    // A part ends at the first line past 16 KiB.
    let parts = text.len() / (16 << 10);
    std::fs::write(logs.path().join("E2PARTS.2025-10-05-10.a.gz"), gzip(&text)).unwrap();
    std::fs::write(
        logs.path().join("E2PARTS.2025-10-05-11.a.gz"),
        gzip(&log_text(&small)),
    )
    .unwrap();
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let source = logs.path().to_str().unwrap();
    let flags = [
        "--full-listing",
        "--part-bytes",
        PART,
        "--max-file-rows",
        "500",
        "--json",
    ];
    let run = ingest(&[], source, lake, &flags).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["objects_ingested"], 2);
    assert_eq!(s["requests"], 3000 + 60 + 200);
    assert_eq!(s["bad_lines"], 3);
    assert_eq!(s["duplicates"], 60, "the repeats, found in the full files");
    assert_eq!(s["rows_written"], 3200);
    let all: Vec<&Req> = big.iter().chain(&small).collect();
    assert_eq!(usage(&[], lake, &[]).await, expected(&all));
    let reader = read_with_python(lake);
    assert_eq!(reader.keys, reader_figures(&expected(&all)));
    assert_eq!(reader.repeated_ids, 0);
    // A commit of `requests` per part (and one for the small object, after
    // the table's creation).
    let commits = reader.version.unwrap() as usize;
    assert!(
        (parts + 1..=parts + 3).contains(&commits),
        "{commits} versions, {parts} parts"
    );
    assert_rollup_matches_rows(lake).await;
    // 3,000 rows in files of 500, committed in parts of about 45 rows: each
    // merge adds beside the full files and the settled ones (the largest
    // three of 4× its rows or more), rewriting only the smaller ones. So
    // files fill up to the limit, and besides its full files the hour holds
    // at most four.
    let full = files_in(lake, "10", "full");
    assert!(!full.is_empty(), "{:?}", current_files(lake));
    let open = files_in(lake, "10", "part").len();
    assert!((1..=4).contains(&open), "{:?}", current_files(lake));
    // The object is recorded once, after its last part.
    let again = ingest(&[], source, lake, &flags).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(summary(&again)["objects_skipped"], 2);
    assert_eq!(summary(&again)["rows_written"], 0);

    // A late object for the same hour, repeating 40 of the requests already
    // in full files: the full files stay as they are.
    let late = hour_of_requests(10, 700, "late");
    let mut text = log_text(&late);
    for r in &big[1000..1040] {
        text.push_str(&r.line());
    }
    std::fs::write(logs.path().join("E2PARTS.2025-10-05-10.b.gz"), gzip(&text)).unwrap();
    let run = ingest(&[], source, lake, &flags).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run)["duplicates"], 40);
    assert_eq!(summary(&run)["rows_written"], 700);
    let after = files_in(lake, "10", "full");
    for file in &full {
        assert!(after.contains(file), "{file} was rewritten: {after:?}");
    }
    let all: Vec<&Req> = big.iter().chain(&small).chain(&late).collect();
    assert_eq!(usage(&[], lake, &[]).await, expected(&all));
    assert_rollup_matches_rows(lake).await;

    // Reingest reads every object again, in parts, and replaces its rows.
    let mut args = vec![
        "reingest",
        "--source",
        source,
        "--lake",
        lake,
        "--since",
        "2025-10-05",
        "--until",
        "2025-10-06",
    ];
    args.extend_from_slice(&flags[1..]);
    let run = edgemeter(&[], &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run)["rows_replaced"], 3900);
    assert_eq!(summary(&run)["rows_written"], 3900);
    assert_lake_holds(lake, &expected(&all)).await;
}

/// An object that cannot be read to its end gives no rows at all, even when
/// it is larger than a part: it is checked whole before its first part is
/// committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_object_larger_than_a_part_gives_no_rows() {
    let logs = tempfile::tempdir().unwrap();
    let big = hour_of_requests(10, 2000, "cut");
    let data = gzip(&log_text(&big));
    std::fs::write(
        logs.path().join("E2CUT.2025-10-05-10.a.gz"),
        &data[..data.len() - 300],
    )
    .unwrap();
    let fine = hour_of_requests(11, 150, "fine");
    std::fs::write(
        logs.path().join("E2CUT.2025-10-05-11.a.gz"),
        gzip(&log_text(&fine)),
    )
    .unwrap();
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let flags = ["--full-listing", "--part-bytes", PART, "--json"];
    let run = ingest(&[], logs.path().to_str().unwrap(), lake, &flags).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["objects_unreadable"], 1);
    assert_eq!(s["objects_ingested"], 1);
    assert_eq!(s["rows_written"], 150);
    assert_eq!(
        usage(&[], lake, &[]).await,
        expected(&fine.iter().collect::<Vec<_>>())
    );
}

fn write_crash_logs(dir: &Path) -> Vec<Req> {
    let big = hour_of_requests(12, 4000, "huge");
    std::fs::write(
        dir.join("E2KILL.2025-10-05-12.a.gz"),
        gzip(&object_text(&big, 0, 100)),
    )
    .unwrap();
    let mut all = big;
    for hour in [11, 12] {
        let reqs = hour_of_requests(hour, 300, &format!("s{hour}"));
        std::fs::write(
            dir.join(format!("E2KILL.2025-10-05-{hour}.b.gz")),
            gzip(&log_text(&reqs)),
        )
        .unwrap();
        all.extend(reqs);
    }
    all
}

/// `kill -9` at pseudo-random points while an object is committed part by
/// part: no reader ever sees a request twice or more than the logs hold, and
/// the run after the last kill counts everything exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_the_parts_of_an_object_loses_and_doubles_nothing() {
    let logs = tempfile::tempdir().unwrap();
    let all = write_crash_logs(logs.path());
    let want = expected(&all.iter().collect::<Vec<_>>());
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let source = logs.path().to_str().unwrap();
    let args = [
        "ingest",
        "--source",
        source,
        "--lake",
        lake,
        "--full-listing",
        "--part-bytes",
        "8KiB",
        "--max-file-rows",
        "700",
        "--json",
    ];
    // Each run is killed at a pseudo-random point within a quarter of a
    // whole run's time (measured here, on a lake of its own): every run goes
    // on from what the killed ones committed, so the kills fall all along the
    // object however fast the build and the machine.
    let scratch = tempfile::tempdir().unwrap();
    let mut whole_args = args;
    whole_args[4] = scratch.path().to_str().unwrap();
    let started = std::time::Instant::now();
    let whole = edgemeter(&[], &whole_args).await;
    assert_eq!(whole.code, 0, "{}", whole.stderr);
    let span_ms = (started.elapsed().as_millis() as u64 / 4).max(40);
    let mut seed: u64 = 0x9a27_5eed;
    let mut interrupted = 0;
    let mut round = 0;
    while interrupted < 4 && round < 24 {
        round += 1;
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let delay = Duration::from_millis(span_ms / 5 + (seed >> 33) % span_ms);
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgemeter"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(delay).await;
        child.start_kill().unwrap(); // SIGKILL
        child.wait().await.unwrap();
        let dups = query_csv(
            &[],
            lake,
            "SELECT count(*) - count(DISTINCT x_edge_request_id) AS dups FROM requests",
        )
        .await;
        assert_eq!(dups.lines().nth(1), Some("0"), "round {round}: {dups}");
        let partial = usage(&[], lake, &[]).await;
        for (key, got) in &partial {
            assert!(
                got.requests <= want[key].requests && got.bytes_out <= want[key].bytes_out,
                "round {round}: {key} over-counted"
            );
        }
        interrupted += usize::from(partial != want);
    }
    assert!(
        interrupted >= 2,
        "only {interrupted} kills landed mid-run: the test lost its teeth"
    );
    let run = edgemeter(&[], &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_lake_holds(lake, &want).await;
    let again = edgemeter(&[], &args).await;
    assert_eq!(summary(&again)["objects_skipped"], 3);
    assert_eq!(summary(&again)["rows_written"], 0);
}

/// `--low-memory` (two batches in memory instead of three, the allocator
/// returning freed memory at once) counts exactly: an object committed in
/// parts, several objects of one hour merged batch after batch, and a late
/// object repeating requests already in the lake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_memory_run_counts_exactly() {
    let logs = tempfile::tempdir().unwrap();
    let big = hour_of_requests(10, 2000, "lowbig");
    std::fs::write(
        logs.path().join("E2LOW.2025-10-05-10.a.gz"),
        gzip(&object_text(&big, 2, 30)),
    )
    .unwrap();
    let mut all: Vec<Req> = big.clone();
    for (i, n) in [300, 450, 120].into_iter().enumerate() {
        let reqs = hour_of_requests(10, n, &format!("low{i}"));
        let name = format!("E2LOW.2025-10-05-10.{i}.gz");
        std::fs::write(logs.path().join(name), gzip(&log_text(&reqs))).unwrap();
        all.extend(reqs);
    }
    let other = hour_of_requests(11, 250, "lowother");
    std::fs::write(
        logs.path().join("E2LOW.2025-10-05-11.a.gz"),
        gzip(&log_text(&other)),
    )
    .unwrap();
    all.extend(other);
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let source = logs.path().to_str().unwrap();
    // One object per batch (a batch of one byte), parts of about 50 lines.
    let flags = [
        "--full-listing",
        "--low-memory",
        "--batch-bytes",
        "1",
        "--part-bytes",
        PART,
        "--max-file-rows",
        "500",
        "--json",
    ];
    let run = ingest(&[], source, lake, &flags).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["objects_ingested"], 5);
    assert_eq!(s["bad_lines"], 2);
    assert_eq!(s["duplicates"], 30);
    assert_eq!(s["rows_written"], all.len());
    let refs: Vec<&Req> = all.iter().collect();
    assert_eq!(usage(&[], lake, &[]).await, expected(&refs));
    assert_rollup_matches_rows(lake).await;

    // A late object: 80 requests already counted, 90 new ones.
    let late = hour_of_requests(10, 90, "lowlate");
    let mut text = log_text(&late);
    for r in &big[500..580] {
        text.push_str(&r.line());
    }
    std::fs::write(logs.path().join("E2LOW.2025-10-05-10.z.gz"), gzip(&text)).unwrap();
    let run = ingest(&[], source, lake, &flags).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run)["duplicates"], 80);
    assert_eq!(summary(&run)["rows_written"], 90);
    all.extend(late);
    let refs: Vec<&Req> = all.iter().collect();
    assert_lake_holds(lake, &expected(&refs)).await;

    // The environment turns it on too, with the smaller defaults.
    let env = [("EDGEMETER_LOW_MEMORY", "1".to_string())];
    let shown = ingest(&env, source, lake, &["--print-config"]).await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let config = summary(&shown);
    let ingest = &config["ingests"][0];
    assert_eq!(ingest["low_memory"], true);
    assert_eq!(ingest["batch_bytes"], 8 << 20);
    assert_eq!(ingest["concurrency"], 4);
    assert_eq!(ingest["part_bytes"], 20 << 20);
    assert_eq!(ingest["max_file_bytes"], 32 << 20);
}
