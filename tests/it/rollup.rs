//! The `usage_hourly` rollup: usage and billing read it for whole hours and raw
//! rows for the partial hours at a range's edges. Every range below is checked
//! against totals the test computes from the requests it wrote.

use crate::cli::{edgemeter, ingest, query_csv, summary, usage};
use crate::logs::{Req, expected, gzip, log_text, requests_at};

/// `YYYY-MM-DDTHH:MM:SSZ` of a logged request (sorts like its instant).
fn instant(r: &Req) -> String {
    format!("{}T{}Z", r.date, r.time)
}

/// Five hours of requests (23:00 on the 4th to 03:00 on the 5th, so ranges
/// cross midnight), 2,400 per hour: two of every three seconds.
fn write_hours(dir: &std::path::Path) -> Vec<Req> {
    let mut all = Vec::new();
    for (date, hour) in [
        ("2025-10-04", 23),
        ("2025-10-05", 0),
        ("2025-10-05", 1),
        ("2025-10-05", 2),
        ("2025-10-05", 3),
    ] {
        let mut reqs = requests_at(date, hour, 3600, &format!("r{date}{hour}"));
        // Leave gaps: edges then fall both on and between requests.
        reqs = reqs
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 1)
            .map(|(_, r)| r)
            .collect();
        let name = format!("E2ROLL.{date}-{hour:02}.0001.gz");
        std::fs::write(dir.join(name), gzip(&log_text(&reqs))).unwrap();
        all.extend(reqs);
    }
    all
}

/// An ingest that lists the test's hours again on every run (`--since`), as a
/// re-run after a crash would.
fn rerun_args<'a>(source: &'a str, lake: &'a str) -> [&'a str; 8] {
    [
        "ingest",
        "--source",
        source,
        "--lake",
        lake,
        "--since",
        "2025-10-04",
        "--json",
    ]
}

fn expected_in(
    all: &[Req],
    from: &str,
    to: &str,
) -> std::collections::BTreeMap<String, crate::logs::Totals> {
    let kept: Vec<&Req> = all
        .iter()
        .filter(|r| from <= instant(r).as_str() && instant(r).as_str() < to)
        .collect();
    assert!(
        !kept.is_empty() || from >= to,
        "{from}..{to} should hold requests"
    );
    expected(&kept)
}

/// `usage` over each range, and over everything, equals the test's own totals.
async fn assert_usage_exact(lake: &str, all: &[Req], ranges: &[(&str, &str)]) {
    for &(from, to) in ranges {
        assert_eq!(
            usage(&[], lake, &["--from", from, "--to", to]).await,
            expected_in(all, from, to),
            "usage {from} .. {to}"
        );
    }
    assert_eq!(
        usage(&[], lake, &[]).await,
        expected(&all.iter().collect::<Vec<_>>())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_exact_to_the_second_at_any_range_edge() {
    let logs = tempfile::tempdir().unwrap();
    let all = write_hours(logs.path());
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let source = logs.path().to_str().unwrap();
    let run = ingest(&[], source, lake, &["--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run)["rows_written"], all.len());

    // The rollup holds every request once: its sums equal the raw rows', hour by hour.
    let by_hour = |table: &str, count: &str| {
        format!("SELECT dt, hour, {count} AS n FROM {table} GROUP BY dt, hour ORDER BY dt, hour")
    };
    let raw = query_csv(&[], lake, &by_hour("requests", "count(*)")).await;
    let rolled = query_csv(&[], lake, &by_hour("usage_hourly", "sum(requests)")).await;
    assert_eq!(raw, rolled);
    assert_eq!(raw.lines().count(), 1 + 5, "{raw}");

    let ranges = [
        // Whole hours only.
        ("2025-10-05T00:00:00Z", "2025-10-05T02:00:00Z"),
        // Partial hours at both edges, crossing midnight.
        ("2025-10-04T23:30:01Z", "2025-10-05T02:15:00Z"),
        // Edges one second either side of an hour.
        ("2025-10-04T23:59:59Z", "2025-10-05T03:00:01Z"),
        ("2025-10-05T00:00:01Z", "2025-10-05T02:59:59Z"),
        // Inside one hour; and across one hour boundary without a whole hour.
        ("2025-10-05T01:10:00Z", "2025-10-05T01:20:03Z"),
        ("2025-10-05T01:50:00Z", "2025-10-05T02:10:00Z"),
        // Whole-hour start, partial end; partial start, whole-hour end.
        ("2025-10-05T00:00:00Z", "2025-10-05T01:00:02Z"),
        ("2025-10-05T00:59:58Z", "2025-10-05T03:00:00Z"),
    ];
    assert_usage_exact(lake, &all, &ranges).await;
    // An open end.
    assert_eq!(
        usage(&[], lake, &["--from", "2025-10-05T02:30:00Z"]).await,
        expected_in(&all, "2025-10-05T02:30:00Z", "9999")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hours_without_an_exact_rollup_read_raw_rows_until_the_next_run_rebuilds_them() {
    let (logs, lake_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let all = write_hours(logs.path());
    let lake = lake_dir.path().to_str().unwrap();
    let ingest = rerun_args(logs.path().to_str().unwrap(), lake);
    assert_eq!(edgemeter(&[], &ingest).await.code, 0);
    let ranges = [
        ("2025-10-04T23:30:01Z", "2025-10-05T02:15:00Z"),
        ("2025-10-05T00:00:00Z", "2025-10-05T03:00:00Z"),
        // Whole UTC days (the 4th's and the 5th's totals), and the 5th whole
        // beside a partial hour of the 4th, and a day less one second.
        ("2025-10-04T00:00:00Z", "2025-10-06T00:00:00Z"),
        ("2025-10-04T23:30:01Z", "2025-10-06T00:00:00Z"),
        ("2025-10-05T00:00:00Z", "2025-10-05T23:59:59Z"),
    ];
    let check = || assert_usage_exact(lake, &all, &ranges);
    check().await;

    // A writer that crashed after its `requests` commits and before their
    // rollups, many times over: here both rollup tables are gone altogether.
    // Readers sum the hours from their raw rows meanwhile.
    for table in ["usage_hourly", "usage_hourly_keys"] {
        std::fs::remove_dir_all(lake_dir.path().join(table)).unwrap();
    }
    check().await;
    let rolled_sql = |table: &str| {
        format!("SELECT count(DISTINCT dt || hour) AS hours, sum(requests) AS n FROM {table}")
    };
    let want_rolled = format!("hours,n\n5,{}\n", all.len());
    for table in ["usage_hourly", "usage_hourly_keys"] {
        assert_eq!(query_csv(&[], lake, &rolled_sql(table)).await, want_rolled);
    }

    // The next ingest, with nothing new, rebuilds every hour's rollup.
    let run = edgemeter(&[], &ingest).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run)["rows_written"], 0);
    assert_eq!(summary(&run)["rollups_rebuilt"], 5);
    for table in ["usage_hourly", "usage_hourly_keys"] {
        assert_eq!(query_csv(&[], lake, &rolled_sql(table)).await, want_rolled);
        // Rebuilt: one rollup per hour (each hour is one `requests` file).
        assert_eq!(crate::delta::current_files_of(lake, table).len(), 5);
    }
    check().await;
    let run = edgemeter(&[], &ingest).await;
    assert_eq!(summary(&run)["rollups_rebuilt"], 0);
}

/// Late logs into an hour add a `requests` file and its rollup beside the
/// hour's: the hour's rollup stays as it is (as the independent Delta reader
/// lists both tables), every file keeps one rollup, and usage stays exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_logs_add_a_rollup_beside_the_hours_and_leave_it_as_it_is() {
    use crate::delta::{current_files, current_files_of};
    use crate::exactly_once::assert_rollup_matches_rows;
    let (logs, lake_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut all = write_hours(logs.path());
    let lake = lake_dir.path().to_str().unwrap();
    let ingest = rerun_args(logs.path().to_str().unwrap(), lake);
    assert_eq!(edgemeter(&[], &ingest).await.code, 0);
    let before = ["usage_hourly", "usage_hourly_keys"].map(|t| current_files_of(lake, t));
    assert_eq!(before[0].len(), 5, "{before:?}");
    assert_eq!(before[1].len(), 5, "{before:?}");

    // Hour 01 of the 5th, late: 12 new requests and 3 it already holds.
    let mut late = requests_at("2025-10-05", 1, 12, "late");
    let held: Vec<Req> = all
        .iter()
        .filter(|r| r.date == "2025-10-05" && r.time.starts_with("01:"))
        .take(3)
        .cloned()
        .collect();
    late.extend(held);
    let name = "E2ROLL.2025-10-05-01.0002.gz";
    std::fs::write(logs.path().join(name), gzip(&log_text(&late))).unwrap();
    let run = edgemeter(&[], &ingest).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run)["rows_written"], 12);
    assert_eq!(summary(&run)["duplicates"], 3);
    all.extend(late.into_iter().take(12));

    let hour_01 = "dt=2025-10-05/hour=01/";
    let in_hour = |files: &[String]| files.iter().filter(|f| f.starts_with(hour_01)).count();
    for (table, before) in ["usage_hourly", "usage_hourly_keys"].iter().zip(&before) {
        let after = current_files_of(lake, table);
        for file in before {
            assert!(
                after.contains(file),
                "{table}: {file} was replaced: {after:?}"
            );
        }
        assert_eq!(after.len(), 6, "{table}: {after:?}");
        assert_eq!(in_hour(&after), 2, "{table}");
    }
    assert_eq!(in_hour(&current_files(lake)), 2);
    assert_usage_exact(
        lake,
        &all,
        &[
            ("2025-10-05T01:00:00Z", "2025-10-05T02:00:00Z"),
            ("2025-10-04T23:30:01Z", "2025-10-05T02:15:00Z"),
        ],
    )
    .await;
    assert_rollup_matches_rows(lake).await;
    let want = all
        .iter()
        .filter(|r| r.date == "2025-10-05" && r.time.starts_with("01:"))
        .count();
    for table in ["usage_hourly", "usage_hourly_keys"] {
        let sql = format!(
            "SELECT sum(requests) AS n FROM {table} WHERE dt = '2025-10-05' AND hour = '01'"
        );
        assert_eq!(query_csv(&[], lake, &sql).await, format!("n\n{want}\n"));
    }
}

/// A day rollup (`usage_daily`, `usage_daily_keys`) and a day's totals
/// (`usage_daily_totals`) are read for a day only while they are named for
/// exactly that day's `requests` files. Late logs
/// change the day's files: the run writes the day's rollup again (adding
/// the late file's rows to a copy of the old one, or, when a merge rewrote
/// an hour, whole) and takes out the old one, and an old one put back (a writer that lost a race, a
/// restored backup) is never read, so usage stays exact. `maintain` writes
/// the day rollups of a lake that has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_rollup_is_read_only_while_it_holds_exactly_its_days_files() {
    use crate::ballista::copy_dir;
    use crate::delta::{current_files_of, read_rollup_with_python, reader_figures};
    use crate::exactly_once::assert_rollup_matches_rows;
    let (logs, lake_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut all = write_hours(logs.path());
    let lake = lake_dir.path().to_str().unwrap();
    let ingest = rerun_args(logs.path().to_str().unwrap(), lake);
    let run = edgemeter(&[], &ingest).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Two days (the 4th's last hour, the 5th's first four), in the two day
    // rollups and the totals.
    assert_eq!(summary(&run)["day_rollups_written"], 6);
    let days = ["usage_daily", "usage_daily_keys"];
    let with_totals = ["usage_daily", "usage_daily_keys", "usage_daily_totals"];
    let whole = |all: &[Req]| reader_figures(&expected(&all.iter().collect::<Vec<_>>()));
    for table in with_totals {
        let files = current_files_of(lake, table);
        assert_eq!(files.len(), 2, "{table}: {files:?}");
        assert!(files[0].starts_with("dt=2025-10-04/day-"), "{files:?}");
        assert!(files[1].starts_with("dt=2025-10-05/day-"), "{files:?}");
        // Read whole by the independent reader: every request once.
        assert_eq!(
            read_rollup_with_python(lake, table).keys,
            whole(&all),
            "{table}"
        );
    }
    // Both days are read from their day rollup and totals.
    let days_read = |table: &str| format!("SELECT DISTINCT dt FROM {table}_files ORDER BY dt");
    for table in with_totals {
        assert_eq!(
            query_csv(&[], lake, &days_read(table)).await,
            "dt\n2025-10-04\n2025-10-05\n"
        );
    }
    let ranges = [
        ("2025-10-04T23:30:01Z", "2025-10-05T02:15:00Z"),
        ("2025-10-05T00:00:00Z", "2025-10-05T03:00:00Z"),
        // Whole UTC days (the 4th's and the 5th's totals), and the 5th whole
        // beside a partial hour of the 4th, and a day less one second.
        ("2025-10-04T00:00:00Z", "2025-10-06T00:00:00Z"),
        ("2025-10-04T23:30:01Z", "2025-10-06T00:00:00Z"),
        ("2025-10-05T00:00:00Z", "2025-10-05T23:59:59Z"),
    ];
    assert_usage_exact(lake, &all, &ranges).await;
    assert_rollup_matches_rows(lake).await;
    let run = edgemeter(&[], &ingest).await;
    assert_eq!(summary(&run)["day_rollups_written"], 0);
    let before = lake_dir.path().join("days-before");
    for table in with_totals {
        copy_dir(&lake_dir.path().join(table), &before.join(table));
    }

    // Late logs of `n` requests into `hour` of the 5th, ingested: that
    // day's rollup is written again, in both tables.
    // The run's debug log says when a day's totals were added to rather
    // than summed from the day's rollup.
    let added_to = "usage_daily_totals: the day's totals added to";
    let ingest_late = async |hour: u32, n: usize, tag: &str, totals_added_to: bool| {
        let late = requests_at("2025-10-05", hour, n, tag);
        let name = format!("E2ROLL.2025-10-05-{hour:02}.0002.gz");
        std::fs::write(logs.path().join(name), gzip(&log_text(&late))).unwrap();
        let debug = [("EDGEMETER_LOG", "warn,edgemeter::lake=debug".to_string())];
        let run = edgemeter(&debug, &ingest).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(summary(&run)["rows_written"], n as u64);
        assert_eq!(summary(&run)["day_rollups_written"], 3);
        assert_eq!(
            run.stderr.contains(added_to),
            totals_added_to,
            "{}",
            run.stderr
        );
        late
    };
    all.extend(ingest_late(1, 12, "late", true).await);
    for table in days {
        let files = current_files_of(lake, table);
        assert_eq!(files.len(), 2, "{table}: {files:?}");
        assert_eq!(
            read_rollup_with_python(lake, table).keys,
            whole(&all),
            "{table}"
        );
        // The hour's file stayed as it was (the late rows are far fewer), so
        // the day only gained a file: its old rows were copied as they were,
        // and the late file's hourly rollup added as a row group of its own.
        assert_eq!(day_row_groups(lake, table, "2025-10-05"), 2, "{table}");
        assert_eq!(day_row_groups(lake, table, "2025-10-04"), 1, "{table}");
    }
    // The 5th's totals were summed again from its new day rollup.
    let totals = current_files_of(lake, "usage_daily_totals");
    assert_eq!(totals.len(), 2, "{totals:?}");
    assert_eq!(
        read_rollup_with_python(lake, "usage_daily_totals").keys,
        whole(&all)
    );
    assert_usage_exact(lake, &all, &ranges).await;

    // Late logs as large as half of hour 02: the hour's file is merged with
    // them and rewritten, so the day lost a file its rollup holds, and is
    // written whole again.
    all.extend(ingest_late(2, 1200, "more", false).await);
    assert_eq!(
        read_rollup_with_python(lake, "usage_daily_totals").keys,
        whole(&all)
    );
    for table in days {
        assert_eq!(
            read_rollup_with_python(lake, table).keys,
            whole(&all),
            "{table}"
        );
        assert_eq!(day_row_groups(lake, table, "2025-10-05"), 1, "{table}");
    }
    assert_usage_exact(lake, &all, &ranges).await;
    assert_rollup_matches_rows(lake).await;

    // The tables as they were before the late logs: the 5th's rollup and
    // totals are of the day's old files, and are not read; the 4th's still are.
    for table in with_totals {
        std::fs::remove_dir_all(lake_dir.path().join(table)).unwrap();
        copy_dir(&before.join(table), &lake_dir.path().join(table));
        assert_eq!(
            query_csv(&[], lake, &days_read(table)).await,
            "dt\n2025-10-04\n"
        );
    }
    assert_usage_exact(lake, &all, &ranges).await;
    assert_rollup_matches_rows(lake).await;
    // The view `usage_daily_totals` is as exact: the 4th from its totals,
    // the 5th from `usage_hourly_keys`, at the day's start.
    let per_day = "SELECT dt, CAST(min(day_start) AS VARCHAR) AS first, sum(requests) AS n \
        FROM usage_daily_totals GROUP BY dt ORDER BY dt";
    let on = |dt: &str| all.iter().filter(|r| r.date == dt).count();
    assert_eq!(
        query_csv(&[], lake, per_day).await,
        format!(
            "dt,first,n\n2025-10-04,2025-10-04T00:00:00Z,{}\n2025-10-05,2025-10-05T00:00:00Z,{}\n",
            on("2025-10-04"),
            on("2025-10-05")
        )
    );

    // With no day rollups or totals at all, `maintain` writes them.
    for table in with_totals {
        std::fs::remove_dir_all(lake_dir.path().join(table)).unwrap();
    }
    assert_usage_exact(lake, &all, &ranges).await;
    let maintained = edgemeter(&[], &["maintain", "--lake", lake]).await;
    assert_eq!(maintained.code, 0, "{}", maintained.stderr);
    assert!(
        maintained.stdout.contains("wrote 6 day rollup files"),
        "{}",
        maintained.stdout
    );
    for table in with_totals {
        assert_eq!(
            read_rollup_with_python(lake, table).keys,
            whole(&all),
            "{table}"
        );
        assert_eq!(
            query_csv(&[], lake, &days_read(table)).await,
            "dt\n2025-10-04\n2025-10-05\n"
        );
    }
    assert_usage_exact(lake, &all, &ranges).await;
}

/// Row groups of the current file of day `dt` in the day rollup `table`.
fn day_row_groups(lake: &str, table: &str, dt: &str) -> usize {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let files = crate::delta::current_files_of(lake, table);
    let [file] = files
        .iter()
        .filter(|f| f.starts_with(&format!("dt={dt}/")))
        .collect::<Vec<_>>()[..]
    else {
        panic!("{table}: not one file of {dt}: {files:?}");
    };
    let path = std::path::Path::new(lake).join(table).join(file);
    let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    reader.metadata().num_row_groups()
}

/// A day rollup that cannot be written (here a file stands where the
/// `usage_daily` table would be) leaves the run successful, says so, and
/// usage stays exact from the hourly rollups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_rollup_that_cannot_be_written_is_a_warning_not_a_failed_run() {
    let (logs, lake_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let all = write_hours(logs.path());
    let lake = lake_dir.path().to_str().unwrap();
    std::fs::write(lake_dir.path().join("usage_daily"), "not a table").unwrap();
    let ingest = rerun_args(logs.path().to_str().unwrap(), lake);
    let run = edgemeter(&[], &ingest).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run)["rows_written"], all.len());
    assert_eq!(summary(&run)["day_rollups_written"], 0);
    assert!(
        run.stderr.contains("day rollups not written this run"),
        "{}",
        run.stderr
    );
    assert_usage_exact(
        lake,
        &all,
        &[("2025-10-04T23:30:01Z", "2025-10-05T02:15:00Z")],
    )
    .await;
    crate::exactly_once::assert_rollup_matches_rows(lake).await;
}
