//! The SQL of `queries/` tested as data: every file runs in-process over one
//! fixture lake, built once for all the tests here, with the parameter sets of
//! `tests/sql/params.toml`; the results are the insta snapshots of
//! `tests/sql/snapshots/` (`INSTA_UPDATE=always cargo test sql::` rewrites
//! them; review the diff). The billing figures are also counted from the raw
//! log files by DuckDB (`tests/readers/raw_usage.py`), nothing of edgemeter's.
//!
//! The fixture lake: `examples/logs` (600 requests of 2025-10-05, 3 keys) and
//! three files of real lines, `standard-2025-33.log` (one keyless request that
//! day), `standard-2025-33-two-keys.log` (the same line four times that hour,
//! three of them with two different keys, in either order) and
//! `standard-aws-docs-33.log` (six keyless requests of December 2019, three
//! of them edge errors).

use crate::cli::ingest;
use crate::delta::ensure_python_packages;
use datafusion::arrow::csv::WriterBuilder;
use edgemeter::query::LakeSession;
use edgemeter::query::library::QUERIES;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tokio::sync::OnceCell;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The raw log files of the fixture lake (relative to the repository) and
/// the object names they are ingested under: names say the hour, as
/// CloudFront's do.
const FIXTURE_LOGS: [(&str, &str); 5] = [
    (
        "examples/logs/E2EXAMPLE.2025-10-05-09.0009abcd.gz",
        "E2EXAMPLE.2025-10-05-09.0009abcd.gz",
    ),
    (
        "examples/logs/E2EXAMPLE.2025-10-05-10.000aabcd.gz",
        "E2EXAMPLE.2025-10-05-10.000aabcd.gz",
    ),
    (
        "tests/fixtures/cloudfront/standard-2025-33.log",
        "E2REAL.2025-10-05-01.real2025",
    ),
    (
        "tests/fixtures/cloudfront/standard-2025-33-two-keys.log",
        "E2REAL.2025-10-05-01.twokeys",
    ),
    (
        "tests/fixtures/cloudfront/standard-aws-docs-33.log",
        "E2DOCS.2019-12-04-21.awsdocs",
    ),
];

/// The fixture lake, ingested once per test process under
/// `<CARGO_TARGET_TMPDIR>/sql-fixture/<pid>` (the lakes of earlier,
/// finished processes are removed first).
pub async fn fixture_lake() -> &'static str {
    static LAKE: OnceCell<String> = OnceCell::const_new();
    LAKE.get_or_init(|| async {
        let parent = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sql-fixture");
        std::fs::create_dir_all(&parent).unwrap();
        for old in std::fs::read_dir(&parent).unwrap().flatten() {
            let pid = old.file_name().to_string_lossy().to_string();
            if !Path::new("/proc").join(&pid).exists() {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
        let dir = parent.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        for (file, object) in FIXTURE_LOGS {
            std::fs::copy(Path::new(ROOT).join(file), logs.join(object)).unwrap();
        }
        let lake = dir.join("lake").to_str().unwrap().to_string();
        // The real lines carry no key: no warning for keyless objects.
        let flags = ["--quiet", "--max-keyless-share", "1"];
        let run = ingest(&[], logs.to_str().unwrap(), &lake, &flags).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        lake
    })
    .await
}

/// `name=value` pairs from space-separated text.
fn params(text: &str) -> Vec<(String, String)> {
    text.split_whitespace()
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .unwrap_or_else(|| panic!("{p}: name=value"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// A named query's result as CSV: a header row, then one line per row
/// (empty cells for NULL).
async fn run_csv(session: &LakeSession, name: &str, given: &str) -> String {
    let stream = session
        .named_from_text(name, &params(given))
        .await
        .unwrap_or_else(|e| panic!("{name} {given}: {e}"));
    let schema = stream.schema();
    let batches = datafusion::physical_plan::common::collect(stream)
        .await
        .unwrap_or_else(|e| panic!("{name} {given}: {e}"));
    let header: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut writer = WriterBuilder::new().with_header(false).build(Vec::new());
    for batch in &batches {
        writer.write(batch).unwrap();
    }
    format!(
        "{}\n{}",
        header.join(","),
        String::from_utf8(writer.into_inner()).unwrap()
    )
}

/// The parameter sets of every query: name → label → parameters.
pub fn parameter_sets() -> BTreeMap<String, BTreeMap<String, String>> {
    let path = Path::new(ROOT).join("tests/sql/params.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The names of the files in `queries/`.
pub fn query_files() -> BTreeSet<String> {
    std::fs::read_dir(Path::new(ROOT).join("queries"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_file_matches_its_snapshots_for_several_parameter_sets() {
    let files = query_files();
    let compiled: BTreeSet<String> = QUERIES.iter().map(|q| q.name.to_string()).collect();
    assert_eq!(files, compiled, "queries/ and the compiled library differ");
    let sets = parameter_sets();
    let named: BTreeSet<String> = sets.keys().cloned().collect();
    let without: Vec<&String> = files.difference(&named).collect();
    assert!(
        without.is_empty(),
        "no parameter sets in tests/sql/params.toml for {without:?}"
    );
    let unknown: Vec<&String> = named.difference(&files).collect();
    assert!(
        unknown.is_empty(),
        "tests/sql/params.toml names no query file: {unknown:?}"
    );

    let session = LakeSession::open_location(fixture_lake().await)
        .await
        .unwrap();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(ROOT).join("tests/sql/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    for (name, cases) in &sets {
        assert!(cases.len() >= 3, "{name}: give at least 3 parameter sets");
        let mut text = String::new();
        for (label, given) in cases {
            let shown = if given.is_empty() {
                "(no parameters)"
            } else {
                given
            };
            text.push_str(&format!("## {label}: {shown}\n"));
            text.push_str(&run_csv(&session, name, given).await);
            text.push('\n');
        }
        settings.set_description(format!("queries/{name}.sql with tests/sql/params.toml"));
        settings.bind(|| insta::assert_snapshot!(name.as_str(), text));
    }
}

/// The `duckdb` package of the independent count.
fn ensure_duckdb() -> PathBuf {
    static READY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    READY
        .get_or_init(|| ensure_python_packages("pydeps", "duckdb", &["duckdb==2.0.0"]))
        .clone()
}

/// A half-open range of RFC 3339 instants (`None`: open).
type Range = (Option<&'static str>, Option<&'static str>);

/// Per range, the CSV texts of the queries of `raw_usage.py`, counted by
/// DuckDB from the raw fixture log files.
fn count_raw_logs(ranges: &[Range]) -> Vec<BTreeMap<String, String>> {
    let naive = |t: Option<&str>| t.map(|t| t.replace('T', " ").replace('Z', ""));
    let ranges: Vec<_> = ranges.iter().map(|(f, t)| (naive(*f), naive(*t))).collect();
    let out = std::process::Command::new("python3")
        .arg(Path::new(ROOT).join("tests/readers/raw_usage.py"))
        .arg(serde_json::to_string(&ranges).unwrap())
        .args(
            FIXTURE_LOGS
                .iter()
                .map(|(file, _)| Path::new(ROOT).join(file)),
        )
        .env("PYTHONPATH", ensure_duckdb())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The billing figures (requests, billable 2xx, errors and bytes per key, per
/// key and status, per day and per hour; error and throttling rates per key)
/// equal DuckDB's count of the raw log
/// lines, for ranges open, whole-day, cut mid-hour (within a day and across
/// years) and empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_figures_equal_duckdbs_count_of_the_raw_logs() {
    let ranges: [Range; 7] = [
        (None, None),
        (Some("2025-10-05T00:00:00Z"), Some("2025-10-06T00:00:00Z")),
        (Some("2025-10-05T00:30:00Z"), Some("2025-10-05T10:15:30Z")),
        (
            Some("2025-10-05T09:15:00Z"),
            Some("2025-10-05T09:45:00.500Z"),
        ),
        (Some("2019-12-01T00:00:00Z"), Some("2020-01-01T00:00:00Z")),
        (Some("2025-10-06T00:00:00Z"), None),
        // Cut mid-hour at both ends, years apart: whole hours on the last
        // day (01) and a partial one on the first (21) and the last (09).
        (Some("2019-12-04T21:30:00Z"), Some("2025-10-05T09:30:00Z")),
    ];
    let counted = count_raw_logs(&ranges);
    let session = LakeSession::open_location(fixture_lake().await)
        .await
        .unwrap();
    let mut compared = 0;
    for ((from, to), want) in ranges.iter().zip(&counted) {
        let mut range = String::new();
        if let Some(from) = from {
            range.push_str(&format!("from={from} "));
        }
        if let Some(to) = to {
            range.push_str(&format!("to={to} "));
        }
        for (name, extra) in [
            ("usage_by_key", ""),
            ("usage_by_key_status", ""),
            ("top_keys", "limit=1000"),
            ("daily_series", ""),
            ("error_rates", ""),
            ("usage_by_key_window", "by=hour tz=UTC"),
        ] {
            let got = run_csv(&session, name, &format!("{range}{extra}")).await;
            assert_eq!(got, want[name], "{name} {range}{extra}");
            compared += got.lines().count() - 1;
        }
    }
    assert!(compared > 100, "only {compared} rows compared");
}

/// Requests that carried two different keys are named by the key billed
/// (the first `api_key` of the query) and the other one, counted by hand from
/// `standard-2025-33-two-keys.log`: two requests give a7c1 then b9d2, one
/// b9d2 then a7c1, and one carries a7c1 alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_keys_names_the_key_billed_and_the_other() {
    let session = LakeSession::open_location(fixture_lake().await)
        .await
        .unwrap();
    let a = crate::logs::sha256_hex("ak_live_twokeys_a7c1");
    let b = crate::logs::sha256_hex("ak_live_twokeys_b9d2");
    let got = run_csv(&session, "conflicting_keys", "").await;
    assert_eq!(
        got,
        format!(
            "api_key_id,api_key_hint,conflicting_key_id,requests,first_seen,last_seen\n\
             {a},a7c1,{b},2,2025-10-05T01:06:21Z,2025-10-05T01:07:02Z\n\
             {b},b9d2,{a},1,2025-10-05T01:08:45Z,2025-10-05T01:08:45Z\n"
        )
    );
}

/// `edgemeter usage` with hourly windows, a dimension or `--key` (which sum
/// the rollup's whole hours and the raw rows of the edge hours) gives
/// DuckDB's count of the raw log lines, for the same ranges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_by_window_dimension_and_key_equals_duckdbs_count_of_the_raw_logs() {
    let ranges: [Range; 5] = [
        (None, None),
        (Some("2025-10-05T00:00:00Z"), Some("2025-10-06T00:00:00Z")),
        (Some("2025-10-05T00:30:00Z"), Some("2025-10-05T10:15:30Z")),
        (Some("2019-12-04T21:30:00Z"), Some("2025-10-05T09:30:00Z")),
        (Some("2025-10-06T00:00:00Z"), None),
    ];
    let counted = count_raw_logs(&ranges);
    let lake = fixture_lake().await;
    // Two of the three keys of examples/logs.
    let keys = [
        "7ab99c2082b9ab44ec285d1b77c598c822039e995193f8af063fbbdf1d57af99",
        "fa86fea04bacfd7013f8738c491799bd450bd287da36d3fbd7d34a0d339d50c4",
    ];
    let mut compared = 0;
    for ((from, to), want) in ranges.iter().zip(&counted) {
        let usage = |extra: &[&str]| {
            let mut args = vec!["usage", "--lake", lake, "--format", "csv"];
            if let Some(from) = from {
                args.extend(["--from", from]);
            }
            if let Some(to) = to {
                args.extend(["--to", to]);
            }
            let args: Vec<String> = args.iter().chain(extra).map(|a| a.to_string()).collect();
            async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let run = crate::cli::edgemeter(&[], &args).await;
                assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
                // The tables' statistics are shaped as delta-rs's scans
                // expect: a filtered scan of the rollup warns of nothing.
                assert!(
                    !run.stderr.contains("deltalake"),
                    "{args:?}: {}",
                    run.stderr
                );
                run.stdout.replace("\r\n", "\n")
            }
        };
        let range = format!("{from:?} {to:?}");
        let hourly = usage(&["--by", "hour", "--tz", "UTC"]).await;
        assert_eq!(hourly, want["usage_by_key_window"], "--by hour {range}");
        // Per key and status: DuckDB's usage_by_key_status columns of it.
        let by_status = usage(&["--group-by", "status"]).await;
        let projected: Vec<String> = by_status
            .lines()
            .map(|line| {
                let cells: Vec<&str> = line.split(',').collect();
                [0, 2, 3, 7, 8].map(|i| cells[i]).join(",")
            })
            .collect();
        let projected = projected.join("\n").replacen("status", "sc_status", 1) + "\n";
        assert_eq!(
            projected, want["usage_by_key_status"],
            "--group-by status {range}"
        );
        // Two keys: DuckDB's rows of those keys.
        let two = usage(&["--key", keys[0], "--key", keys[1]]).await;
        let wanted: Vec<&str> = want["usage_by_key"]
            .lines()
            .enumerate()
            .filter(|(i, line)| *i == 0 || keys.iter().any(|k| line.starts_with(k)))
            .map(|(_, line)| line)
            .collect();
        assert_eq!(two, wanted.join("\n") + "\n", "--key {range}");
        compared += hourly.lines().count() + by_status.lines().count() + two.lines().count() - 3;
    }
    assert!(compared > 40, "only {compared} rows compared");
}
