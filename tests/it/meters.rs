//! Meters, checked against an evaluation of the same plans file over the raw
//! fixture log lines by DuckDB (`tests/readers/meter_values.py` over
//! `tests/fixtures/meters/logs/`), nothing of edgemeter's: every
//! aggregation, every filter kind, globs within and across segments,
//! months and windows in other time zones, ranges cutting hours, and
//! customers owning several keys. Bad meter definitions are refused with
//! exit 2 and a message naming the meter.

use crate::cli::{edgemeter, ingest};
use crate::delta::ensure_python_packages;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::sync::OnceCell;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const LOGS: &str = "tests/fixtures/meters/logs";

/// Meters of every aggregation and filter kind. acme owns two keys that
/// share client addresses; initech's key and the short key belong to no one.
const PLANS: &str = r#"
[billing]
currency = "USD"

[plans.pro]

[[customers]]
id = "acme"
plan = "pro"
keys = ["ak_live_acme_search_0001", "ak_live_acme_batch_00002"]

[[customers]]
id = "globex"
plan = "pro"
keys = ["ak_live_globex_000000003"]

[meters.search_calls]
aggregation = "count"
filter = { endpoint = ["/v1/search*"], method = ["GET", "POST"], status = "2xx" }

[meters.download_bytes]
aggregation = "sum"
value = "sc_bytes"
filter = { endpoint = ["/v1/files/**"], status = "2xx,206" }

[meters.active_clients]
aggregation = "unique_count"
value = "c_ip"

[meters.distinct_statuses]
aggregation = "unique_count"
value = "sc_status"

[meters.slowest]
aggregation = "max"
value = "time_taken"

[meters.fastest_search]
aggregation = "min"
value = "time_taken"
filter = { endpoint = "/v1/search" }

[meters.avg_time]
aggregation = "avg"
value = "time_taken"

[meters.avg_bytes_out]
aggregation = "avg"
value = "sc_bytes"

[meters.time_spent]
aggregation = "sum"
value = "time_taken"

[meters.largest_upload]
aggregation = "max"
value = "cs_bytes"
filter = { method = ["POST", "PUT"] }

[meters.smallest_response]
aggregation = "min"
value = "sc_bytes"

[meters.file_segment]
description = "* stays within a segment: /v1/files/{id}, not /v1/files/{id}/content"
aggregation = "count"
filter = { endpoint = "/v1/files/*" }

[meters.file_any]
aggregation = "count"
filter = { endpoint = "/v1/files/**" }

[meters.user_orders]
aggregation = "count"
filter = { endpoint = "/v1/users/*/orders" }

[meters.user_by_id]
aggregation = "count"
filter = { endpoint = ["/v1/users/{id}", "/v2/**"] }

[meters.writes]
aggregation = "count"
filter = { method = ["PUT", "DELETE"] }

[meters.client_errors]
aggregation = "count"
filter = { status = "4xx" }

[meters.ok_or_cached]
aggregation = "count"
filter = { status = "200-201,304" }

[meters.partial_or_failed]
aggregation = "count"
filter = { status = "206,5xx" }

[meters.api_host]
aggregation = "count"
filter = { host = "api.example.com" }

[meters.files_host]
aggregation = "count"
filter = { host = "FILES.example.com" }

[meters.distribution_host]
aggregation = "count"
filter = { host = "d111111abcdef8.cloudfront.net" }

[meters.frankfurt]
aggregation = "count"
filter = { edge = "FRA" }

[meters.fra5_iad89_nrt]
aggregation = "count"
filter = { edge = ["FRA5", "IAD89", "NRT"] }

[meters.cached]
aggregation = "count"
filter = { result_type = ["Hit", "RefreshHit"] }

[meters.plain_http]
aggregation = "count"
filter = { protocol = "http" }

[meters.binary_bytes]
aggregation = "sum"
value = "sc_bytes"
filter = { content_type = "application/octet-stream" }

[meters.combined]
aggregation = "count"
filter = { endpoint = ["/v1/search", "/v1/users/**"], method = ["GET", "POST"], status = "2xx,304", host = ["api.example.com", "files.example.com"], edge = ["FRA", "IAD"], protocol = "https" }

[meters.combined_bytes]
aggregation = "sum"
value = "sc_bytes"
filter = { endpoint = "/v1/files/**", status = "206", edge = ["FRA", "SFO", "NRT"], result_type = ["Miss", "RefreshHit"], content_type = "application/octet-stream" }
"#;

/// The meters of [`PLANS`] defined with a filter, none of which may keep
/// every line or none (a filter the fixture does not exercise proves nothing).
const FILTERED: [&str; 20] = [
    "search_calls",
    "download_bytes",
    "fastest_search",
    "largest_upload",
    "file_segment",
    "file_any",
    "user_orders",
    "user_by_id",
    "writes",
    "client_errors",
    "ok_or_cached",
    "partial_or_failed",
    "api_host",
    "files_host",
    "distribution_host",
    "frankfurt",
    "fra5_iad89_nrt",
    "cached",
    "plain_http",
    "binary_bytes",
];

/// A lake ingested from the fixture (once per test process) and the plans
/// file beside it.
struct Fixture {
    lake: String,
    plans: String,
}

async fn fixture() -> &'static Fixture {
    static FIXTURE: OnceCell<Fixture> = OnceCell::const_new();
    FIXTURE
        .get_or_init(|| async {
            let parent = Path::new(env!("CARGO_TARGET_TMPDIR")).join("meters-fixture");
            std::fs::create_dir_all(&parent).unwrap();
            for old in std::fs::read_dir(&parent).unwrap().flatten() {
                let pid = old.file_name().to_string_lossy().to_string();
                if !Path::new("/proc").join(&pid).exists() {
                    let _ = std::fs::remove_dir_all(old.path());
                }
            }
            let dir = parent.join(std::process::id().to_string());
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let lake = dir.join("lake").to_str().unwrap().to_string();
            let logs = Path::new(ROOT).join(LOGS);
            // 30 of the 365 lines carry no key, on purpose.
            let flags = ["--quiet", "--max-keyless-share", "1"];
            let run = ingest(&[], logs.to_str().unwrap(), &lake, &flags).await;
            assert_eq!(run.code, 0, "{}", run.stderr);
            let plans = dir.join("plans.toml");
            std::fs::write(&plans, PLANS).unwrap();
            Fixture {
                lake,
                plans: plans.to_str().unwrap().to_string(),
            }
        })
        .await
}

/// One `usage --meter` query: `from`/`to` as given to the CLI (a month, a
/// date or a wall-clock minute in `tz`), windows `by`, rows `per`.
#[derive(Debug, Clone, Copy, Default)]
struct Query {
    from: Option<&'static str>,
    to: Option<&'static str>,
    tz: Option<&'static str>,
    by: Option<&'static str>,
    customers: bool,
    meters: &'static [&'static str],
}

impl Query {
    fn args(&self, fixture: &Fixture, format: &str) -> Vec<String> {
        let mut args: Vec<String> = ["usage", "--lake", &fixture.lake, "--plans", &fixture.plans]
            .map(String::from)
            .to_vec();
        for (flag, value) in [
            ("--from", self.from),
            ("--to", self.to),
            ("--tz", self.tz),
            ("--by", self.by),
        ] {
            if let Some(value) = value {
                args.extend([flag.to_string(), value.to_string()]);
            }
        }
        if self.customers {
            args.extend(["--per".into(), "customer".into()]);
        }
        for meter in self.meters {
            args.extend(["--meter".into(), meter.to_string()]);
        }
        args.extend(["--format".into(), format.into()]);
        args
    }

    /// The query as the oracle takes it: the CLI's month or date spelled
    /// out as the wall-clock instant it means in `tz`.
    fn oracle(&self) -> serde_json::Value {
        let instant = |t: Option<&str>| {
            t.map(|t| match t.len() {
                7 => format!("{t}-01T00:00:00"),
                10 => format!("{t}T00:00:00"),
                16 => format!("{t}:00"),
                _ => panic!("{t}: give a month, a date or a minute"),
            })
        };
        serde_json::json!({
            "from": instant(self.from),
            "to": instant(self.to),
            "tz": self.tz,
            "by": self.by,
            "per": if self.customers { "customer" } else { "key" },
            "meters": self.meters,
        })
    }
}

/// A row's identity: (window_start, customer_id, api_key_id).
type RowId = (Option<String>, Option<String>, Option<String>);

/// A row's hint (per key) and its meters' values, by slug.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    hint: Option<String>,
    values: BTreeMap<String, Option<String>>,
}

type Rows = BTreeMap<RowId, Row>;

pub fn ensure_duckdb() -> PathBuf {
    static READY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    READY
        .get_or_init(|| ensure_python_packages("pydeps", "duckdb", &["duckdb==2.0.0"]))
        .clone()
}

/// The fixture's log files, in order.
fn fixture_logs() -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join(LOGS))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    logs.sort();
    logs
}

/// DuckDB's evaluation of `queries` over the raw fixture lines.
fn oracle(fixture: &Fixture, queries: &[Query]) -> Vec<Rows> {
    oracle_of(fixture, &fixture_logs(), queries)
}

/// DuckDB's evaluation of `queries` over the raw lines of `logs`.
fn oracle_of(fixture: &Fixture, logs: &[PathBuf], queries: &[Query]) -> Vec<Rows> {
    let spec: Vec<_> = queries.iter().map(Query::oracle).collect();
    let out = std::process::Command::new("python3")
        .arg(Path::new(ROOT).join("tests/readers/meter_values.py"))
        .arg(&fixture.plans)
        .arg(serde_json::to_string(&spec).unwrap())
        .args(logs)
        .env("PYTHONPATH", ensure_duckdb())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Vec<serde_json::Value>> = serde_json::from_slice(&out.stdout).unwrap();
    let text = |v: &serde_json::Value| v.as_str().map(String::from);
    answers
        .iter()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    let id = (
                        text(&r["window_start"]),
                        text(&r["customer_id"]),
                        text(&r["api_key_id"]),
                    );
                    let values = r["values"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), text(v)))
                        .collect();
                    let row = Row {
                        hint: text(&r["api_key_hint"]),
                        values,
                    };
                    (id, row)
                })
                .collect()
        })
        .collect()
}

/// `edgemeter usage --meter …` as rows, from its CSV or JSON lines.
async fn usage(fixture: &Fixture, query: &Query, format: &str) -> Rows {
    let args = query.args(fixture, format);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = edgemeter(&[], &args).await;
    assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    let records: Vec<BTreeMap<String, Option<String>>> = match format {
        "csv" => {
            let mut reader = csv::Reader::from_reader(run.stdout.as_bytes());
            let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
            reader
                .records()
                .map(|r| {
                    let r = r.unwrap();
                    header
                        .iter()
                        .zip(r.iter())
                        .map(|(h, v)| (h.clone(), (!v.is_empty()).then(|| v.to_string())))
                        .collect()
                })
                .collect()
        }
        _ => run
            .stdout
            .lines()
            .map(|line| {
                let object: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(line).unwrap();
                object
                    .into_iter()
                    .map(|(k, v)| {
                        let v = match v {
                            serde_json::Value::Null => None,
                            serde_json::Value::String(s) => Some(s),
                            other => Some(other.to_string()),
                        };
                        (k, v)
                    })
                    .collect()
            })
            .collect(),
    };
    let mut rows = Rows::new();
    for mut record in records {
        let mut take = |column: &str| record.remove(column).flatten();
        let id = (
            take("window_start"),
            take("customer_id"),
            take("api_key_id"),
        );
        let hint = take("api_key_hint");
        let values = query
            .meters
            .iter()
            .map(|m| (m.to_string(), take(m)))
            .collect();
        assert!(record.is_empty(), "{args:?}: unexpected columns {record:?}");
        let row = Row { hint, values };
        assert!(rows.insert(id.clone(), row).is_none(), "{id:?} twice");
    }
    rows
}

/// Whether two values are the same number: integers exactly, the others
/// (averages, sums of seconds) to 1e-9 of their size, as edgemeter prints
/// floats and the oracle exact decimals.
fn same_number(got: &Option<String>, want: &Option<String>) -> bool {
    match (got, want) {
        (None, None) => true,
        (Some(g), Some(w)) => match (g.parse::<i128>(), w.parse::<i128>()) {
            (Ok(g), Ok(w)) => g == w,
            _ => {
                let (g, w): (f64, f64) = (g.parse().unwrap(), w.parse().unwrap());
                (g - w).abs() <= 1e-9 * w.abs().max(1.0)
            }
        },
        _ => false,
    }
}

fn assert_same(label: &str, got: &Rows, want: &Rows) {
    assert!(!want.is_empty(), "{label}: the oracle found no rows");
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{label}: rows"
    );
    for (id, want) in want {
        let got = &got[id];
        assert_eq!(got.hint, want.hint, "{label} {id:?}: hint");
        for (slug, w) in &want.values {
            let g = &got.values[slug];
            assert!(
                same_number(g, w),
                "{label} {id:?} {slug}: {g:?}, want {w:?}"
            );
        }
    }
}

/// Runs each query through edgemeter (CSV) and the oracle and compares;
/// returns the oracle's rows.
async fn compare(queries: &[Query]) -> Vec<Rows> {
    let fixture = fixture().await;
    let wanted = oracle(fixture, queries);
    for (query, want) in queries.iter().zip(&wanted) {
        let got = usage(fixture, query, "csv").await;
        assert_same(&format!("{query:?}"), &got, want);
    }
    wanted
}

/// A meter's total over all rows (nulls left out).
fn total(rows: &Rows, slug: &str) -> f64 {
    rows.values()
        .filter_map(|r| r.values[slug].as_deref())
        .map(|v| v.parse::<f64>().unwrap())
        .sum()
}

const ALL_METERS: &[&str] = &[
    "requests",
    "billable_requests",
    "bytes_out",
    "bytes_in",
    "search_calls",
    "download_bytes",
    "active_clients",
    "distinct_statuses",
    "slowest",
    "fastest_search",
    "avg_time",
    "avg_bytes_out",
    "time_spent",
    "largest_upload",
    "smallest_response",
    "file_segment",
    "file_any",
    "user_orders",
    "user_by_id",
    "writes",
    "client_errors",
    "ok_or_cached",
    "partial_or_failed",
    "api_host",
    "files_host",
    "distribution_host",
    "frankfurt",
    "fra5_iad89_nrt",
    "cached",
    "plain_http",
    "binary_bytes",
    "combined",
    "combined_bytes",
];

/// Every aggregation and filter kind, per key over the whole fixture, in
/// CSV and in JSON lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_aggregation_and_filter_equals_duckdbs_count_of_the_raw_lines() {
    let query = Query {
        meters: ALL_METERS,
        ..Query::default()
    };
    let want = &compare(&[query]).await[0];
    let json = usage(fixture().await, &query, "json").await;
    assert_same("json", &json, want);

    // 4 keys of 16+ characters, the short one and the keyless row.
    assert_eq!(want.len(), 6);
    // 365 lines, as `grep -vc '^#' tests/fixtures/meters/logs/*` counts.
    assert_eq!(total(want, "requests"), 365.0);
    let requests = total(want, "requests");
    for slug in FILTERED {
        let kept = want
            .values()
            .filter(|r| r.values[slug].as_deref().is_some_and(|v| v != "0"))
            .count();
        assert!(kept > 0, "{slug} keeps no line of the fixture");
    }
    for slug in FILTERED.iter().filter(|s| !s.contains("bytes")) {
        if ["fastest_search", "largest_upload"].contains(slug) {
            continue;
        }
        let n = total(want, slug);
        assert!(n > 0.0 && n < requests, "{slug}: {n} of {requests}");
    }
    // The combined filters keep fewer lines than each of their parts.
    assert!(total(want, "combined") < total(want, "api_host").min(total(want, "frankfurt")));
    // `*` stays in its segment: /v1/files/{id} and /v1/files/deadbeefcafebabe
    // are fewer than everything under /v1/files/.
    assert!(total(want, "file_segment") < total(want, "file_any"));
}

/// November in Berlin starts at 2025-10-31T23:00Z, in UTC at midnight, in New
/// York (still on EDT) at 04:00Z: three different sets of lines. Ranges cut
/// hours in the middle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn months_in_time_zones_and_ranges_cutting_hours() {
    const METERS: &[&str] = &[
        "requests",
        "search_calls",
        "download_bytes",
        "active_clients",
        "slowest",
        "avg_time",
        "api_host",
    ];
    let month = |tz| Query {
        from: Some("2025-11"),
        to: Some("2025-12"),
        tz,
        meters: METERS,
        ..Query::default()
    };
    let queries = [
        month(Some("Europe/Berlin")),
        month(None),
        month(Some("America/New_York")),
        Query {
            from: Some("2025-10"),
            to: Some("2025-11"),
            tz: Some("Europe/Berlin"),
            meters: METERS,
            ..Query::default()
        },
        Query {
            from: Some("2025-10-31T22:30"),
            to: Some("2025-11-01T01:15"),
            meters: METERS,
            ..Query::default()
        },
        Query {
            from: Some("2025-11-01T00:20"),
            to: Some("2025-11-01T02:45"),
            tz: Some("Europe/Berlin"),
            meters: METERS,
            ..Query::default()
        },
        Query {
            from: Some("2025-10-31"),
            to: Some("2025-11-01T00:07"),
            tz: Some("America/New_York"),
            meters: METERS,
            ..Query::default()
        },
    ];
    let want = compare(&queries).await;
    let requests: Vec<f64> = want.iter().map(|rows| total(rows, "requests")).collect();
    // Berlin's November holds more lines than UTC's, which holds more than New York's.
    assert!(requests[0] > requests[1] && requests[1] > requests[2] && requests[2] > 0.0);
    // Berlin's October and November split the fixture.
    assert_eq!(requests[0] + requests[3], 365.0);
}

/// Windows of a day and an hour in other zones carry the zone's offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_by_day_and_hour_in_time_zones() {
    const METERS: &[&str] = &["requests", "search_calls", "active_clients", "avg_time"];
    let queries = [
        Query {
            by: Some("day"),
            tz: Some("Europe/Berlin"),
            meters: METERS,
            ..Query::default()
        },
        Query {
            by: Some("day"),
            tz: Some("America/New_York"),
            from: Some("2025-10-31"),
            to: Some("2025-11-02"),
            meters: METERS,
            ..Query::default()
        },
        Query {
            by: Some("hour"),
            tz: Some("Europe/Berlin"),
            from: Some("2025-11-01T00:30"),
            to: Some("2025-11-01T03:30"),
            meters: METERS,
            ..Query::default()
        },
        Query {
            by: Some("month"),
            tz: Some("Europe/Berlin"),
            customers: true,
            meters: METERS,
            ..Query::default()
        },
    ];
    let want = compare(&queries).await;
    let windows = |rows: &Rows| {
        let mut w: Vec<String> = rows.keys().filter_map(|id| id.0.clone()).collect();
        w.dedup();
        w
    };
    assert_eq!(
        windows(&want[0]),
        ["2025-10-31T00:00:00+01:00", "2025-11-01T00:00:00+01:00"]
    );
    // 20:00Z-05:59Z is Oct 31 16:00 to Nov 1 01:59 in New York (UTC-4).
    assert_eq!(
        windows(&want[1]),
        ["2025-10-31T00:00:00-04:00", "2025-11-01T00:00:00-04:00"]
    );
    // 00:30 to 03:30 in Berlin touches the hours 00, 01, 02 and 03.
    assert_eq!(windows(&want[2]).len(), 4);
    // Berlin's October began in summer time, its November in winter time.
    assert_eq!(
        windows(&want[3]),
        ["2025-10-01T00:00:00+02:00", "2025-11-01T00:00:00+01:00"]
    );
}

/// The meters of [`PLANS`] kept per day (`meters_daily`): every one but
/// averages and aggregates of `time_taken`, a float.
const KEPT_METERS: &[&str] = &[
    "requests",
    "billable_requests",
    "bytes_out",
    "bytes_in",
    "search_calls",
    "download_bytes",
    "active_clients",
    "distinct_statuses",
    "largest_upload",
    "smallest_response",
    "file_segment",
    "user_orders",
    "writes",
    "client_errors",
    "frankfurt",
    "cached",
    "plain_http",
    "binary_bytes",
    "combined_bytes",
];

/// Moves the data files of `requests` of the days whose partition starts
/// with `days` (`dt=` for all) out of the lake (its log still lists them) and
/// back: while they are out, only what reads no raw row of them answers.
fn requests_files_aside(lake: &str, aside: &Path, days: &str, out: bool) {
    let (from, to) = match out {
        true => (Path::new(lake).join("requests"), aside.to_path_buf()),
        false => (aside.to_path_buf(), Path::new(lake).join("requests")),
    };
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(&from).unwrap().flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(days) {
            std::fs::rename(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// Writes a copy of the log `from` at `to` whose request ids start with
/// `prefix`: the same requests again, as new ones (on `date` when given).
fn write_late_copy(from: &Path, to: &Path, prefix: &str) {
    write_copy(from, to, prefix, None);
}

fn write_copy(from: &Path, to: &Path, prefix: &str, date: Option<&str>) {
    let text = std::fs::read_to_string(from).unwrap();
    let relabelled: String = text
        .lines()
        .map(|line| match line.starts_with('#') {
            true => format!("{line}\n"),
            false => {
                let mut fields: Vec<String> = line.split('\t').map(String::from).collect();
                fields[14] = format!("{prefix}{}", fields[14]);
                if let Some(date) = date {
                    fields[0] = date.to_string();
                }
                format!("{}\n", fields.join("\t"))
            }
        })
        .collect();
    std::fs::write(to, relabelled).unwrap();
}

/// `maintain --plans` keeps the plans' meters per day, and a query of whole
/// days reads them instead of raw rows: the same values as DuckDB over the
/// raw lines, per key and per customer, with the raw rows moved out of the
/// lake. A late file into a day, or a meter defined otherwise, is answered
/// from raw rows again (exactly) until `maintain` or an ingest run with the
/// plans file keeps the day anew. Windows of UTC days and months read them
/// too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meters_kept_per_day_answer_whole_days_without_raw_rows() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let lake = dir.path().join("lake").to_str().unwrap().to_string();
    let plans = dir.path().join("plans.toml");
    std::fs::write(&plans, PLANS).unwrap();
    let fixture = Fixture {
        lake: lake.clone(),
        plans: plans.to_str().unwrap().to_string(),
    };
    let flags = ["--quiet", "--max-keyless-share", "1"];
    let logs = Path::new(ROOT).join(LOGS);
    let run = ingest(&[], logs.to_str().unwrap(), &lake, &flags).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The requests of an hour of 2025-11-01 again on 2025-11-02: the same
    // clients and statuses on two days of one month.
    let next_dir = dir.path().join("next");
    std::fs::create_dir_all(&next_dir).unwrap();
    let next_day = next_dir.join("E2METERS.2025-11-02-03.next0001");
    let hour = logs.join("E2METERS.2025-11-01-03.f5ff61d7");
    write_copy(&hour, &next_day, "next", Some("2025-11-02"));
    let run = ingest(&[], next_dir.to_str().unwrap(), &lake, &flags).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut all_logs = fixture_logs();
    all_logs.push(next_day);
    let maintain = || async {
        let run = edgemeter(
            &[],
            &[
                "maintain",
                "--lake",
                &lake,
                "--plans",
                &fixture.plans,
                "--json",
            ],
        )
        .await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        summary["meter_days_written"].as_u64().unwrap()
    };
    // 2025-10-31, 2025-11-01 and 2025-11-02.
    assert_eq!(maintain().await, 3);
    assert_eq!(maintain().await, 0, "a day kept is not written again");

    let whole = |from, to, customers| Query {
        from: Some(from),
        to: Some(to),
        customers,
        meters: KEPT_METERS,
        ..Query::default()
    };
    let queries = [
        whole("2025-10", "2025-12", false),
        whole("2025-10", "2025-12", true),
        whole("2025-10-31", "2025-11-01", false),
        whole("2025-11-01", "2025-11-02", true),
        // Distinct values per key from a month's first: its first-seen ones.
        whole("2025-11", "2025-12", false),
        whole("2025-11-01", "2025-11-03", false),
        Query {
            by: Some("month"),
            ..whole("2025-10", "2025-12", false)
        },
        // Windows of UTC days and months.
        Query {
            by: Some("day"),
            ..whole("2025-10", "2025-12", false)
        },
        Query {
            by: Some("month"),
            ..whole("2025-10", "2025-12", true)
        },
        // Partial days: the kept 2025-11-01 and raw rows of 2025-10-31.
        Query {
            tz: Some("Europe/Berlin"),
            ..whole("2025-11", "2025-12", false)
        },
        whole("2025-10-31T21:30", "2025-11-02", true),
        Query {
            by: Some("day"),
            ..whole("2025-10-31T21:30", "2025-11-02", false)
        },
    ];
    // The first queries read whole UTC days only.
    const WHOLE_DAYS: usize = 9;
    let wanted = oracle_of(&fixture, &all_logs, &queries);
    // 365 lines, and the 38 of the hour copied.
    assert_eq!(total(&wanted[0], "requests"), 365.0 + 38.0);
    // November's clients are fewer than the sum of its two days' clients.
    let november = &wanted[4];
    let days: Vec<Rows> = oracle_of(
        &fixture,
        &all_logs,
        &[
            whole("2025-11-01", "2025-11-02", false),
            whole("2025-11-02", "2025-11-03", false),
        ],
    );
    assert!(
        total(november, "active_clients")
            < total(&days[0], "active_clients") + total(&days[1], "active_clients")
    );
    let check = |label: &'static str, wanted: Vec<Rows>| {
        let fixture = &fixture;
        let queries = &queries;
        async move {
            for (query, want) in queries.iter().zip(&wanted) {
                let got = usage(fixture, query, "csv").await;
                assert_same(&format!("{label} {query:?}"), &got, want);
            }
        }
    };
    check("kept", wanted.clone()).await;

    let aside = dir.path().join("aside");
    let not_kept = Query {
        from: Some("2025-10"),
        to: Some("2025-12"),
        meters: &["avg_time"],
        ..Query::default()
    };
    let avg_args = not_kept.args(&fixture, "csv");
    let avg_args: Vec<&str> = avg_args.iter().map(String::as_str).collect();
    requests_files_aside(&lake, &aside, "dt=", true);
    check(
        "kept, raw rows out of the lake",
        wanted[..WHOLE_DAYS].to_vec(),
    )
    .await;
    let run = edgemeter(&[], &avg_args).await;
    assert_ne!(
        run.code, 0,
        "an average is read from raw rows: {}",
        run.stdout
    );
    requests_files_aside(&lake, &aside, "dt=", false);
    requests_files_aside(&lake, &aside, "dt=2025-11-01", true);
    check("2025-11-01 kept, its raw rows out", wanted.clone()).await;
    requests_files_aside(&lake, &aside, "dt=2025-11-01", false);

    // A late file into 2025-10-31 (new request ids), ingested without the
    // plans file: that day's file no longer pairs, and the answer is read
    // from raw rows.
    let late_dir = dir.path().join("late");
    std::fs::create_dir_all(&late_dir).unwrap();
    let late = late_dir.join("E2METERS.2025-10-31-21.late0001");
    write_late_copy(&logs.join("E2METERS.2025-10-31-21.a6685f3b"), &late, "late");
    let run = ingest(&[], late_dir.to_str().unwrap(), &lake, &flags).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    all_logs.push(late.clone());
    let wanted_late = oracle_of(&fixture, &all_logs, &queries);
    assert!(total(&wanted_late[0], "requests") > 365.0);
    check("late, from raw rows", wanted_late.clone()).await;
    assert_eq!(maintain().await, 1, "only the late file's day is kept anew");
    requests_files_aside(&lake, &aside, "dt=", true);
    check("late, kept anew", wanted_late[..WHOLE_DAYS].to_vec()).await;
    requests_files_aside(&lake, &aside, "dt=", false);

    // An ingest run with the plans file keeps the days it wrote to itself
    // (with --low-memory: as one stream).
    let later_dir = dir.path().join("later");
    std::fs::create_dir_all(&later_dir).unwrap();
    let later = later_dir.join("E2METERS.2025-11-01-03.late0002");
    write_late_copy(
        &logs.join("E2METERS.2025-11-01-03.f5ff61d7"),
        &later,
        "later",
    );
    let run = ingest(
        &[],
        later_dir.to_str().unwrap(),
        &lake,
        &[
            "--json",
            "--max-keyless-share",
            "1",
            "--plans",
            &fixture.plans,
            "--low-memory",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    // 2025-11-01, and 2025-11-02 after it in its month.
    assert_eq!(summary["meter_days_written"], 2, "{summary}");
    all_logs.push(later);
    let wanted_later = oracle_of(&fixture, &all_logs, &queries);
    assert!(total(&wanted_later[0], "requests") > total(&wanted_late[0], "requests"));
    requests_files_aside(&lake, &aside, "dt=", true);
    check(
        "later, kept by the run",
        wanted_later[..WHOLE_DAYS].to_vec(),
    )
    .await;
    requests_files_aside(&lake, &aside, "dt=", false);
    check("later", wanted_later.clone()).await;

    // Another definition of a meter: the kept days are not its values.
    let edited = dir.path().join("edited.toml");
    std::fs::write(
        &edited,
        PLANS.replace(
            "filter = { method = [\"PUT\", \"DELETE\"] }",
            "filter = { method = [\"PUT\"] }",
        ),
    )
    .unwrap();
    let edited = Fixture {
        lake: lake.clone(),
        plans: edited.to_str().unwrap().to_string(),
    };
    let writes = [Query {
        from: Some("2025-10"),
        to: Some("2025-12"),
        meters: &["writes", "requests"],
        ..Query::default()
    }];
    let want = oracle_of(&edited, &all_logs, &writes);
    let got = usage(&edited, &writes[0], "csv").await;
    assert_same("edited", &got, &want[0]);
    assert!(total(&want[0], "writes") < total(&wanted_late[0], "writes"));
}

/// Per customer, distinct clients are counted across a customer's keys: acme's
/// two keys share addresses, so its count is less than the sum of theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_customer_counts_distinct_values_across_its_keys() {
    const METERS: &[&str] = &["requests", "active_clients", "search_calls", "slowest"];
    let per_customer = Query {
        customers: true,
        meters: METERS,
        ..Query::default()
    };
    let queries = [
        per_customer,
        Query {
            customers: false,
            ..per_customer
        },
        Query {
            from: Some("2025-11"),
            to: Some("2025-12"),
            tz: Some("Europe/Berlin"),
            ..per_customer
        },
    ];
    let want = compare(&queries).await;
    let value = |rows: &Rows, id: &RowId, slug: &str| -> f64 {
        rows[id].values[slug].as_deref().unwrap().parse().unwrap()
    };
    let acme = (None, Some("acme".to_string()), None);
    let key = |raw: &str| (None, None, Some(sha256_hex(raw)));
    let (search, batch) = (
        key("ak_live_acme_search_0001"),
        key("ak_live_acme_batch_00002"),
    );
    let per_key_sum =
        value(&want[1], &search, "active_clients") + value(&want[1], &batch, "active_clients");
    // The search key calls from 203.0.113.1-8, the batch key from 5-12
    // (generate.py): 12 distinct addresses, 16 counted per key.
    assert_eq!(value(&want[0], &acme, "active_clients"), 12.0);
    assert_eq!(per_key_sum, 16.0);
    assert_eq!(
        value(&want[0], &acme, "requests"),
        value(&want[1], &search, "requests") + value(&want[1], &batch, "requests")
    );
    // acme, globex, the two keys of no customer and the keyless row.
    assert_eq!(want[0].len(), 5);
}

/// The built-in meters are `usage`'s own figures: requests, billable
/// (2xx) requests, bytes out and in, per key, for ranges whole and cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_meters_equal_plain_usage() {
    let fixture = fixture().await;
    let ranges: [&[&str]; 3] = [
        &[],
        &[
            "--from",
            "2025-11",
            "--to",
            "2025-12",
            "--tz",
            "Europe/Berlin",
        ],
        &["--from", "2025-10-31T21:10", "--to", "2025-11-01T04:50"],
    ];
    for range in ranges {
        let mut args = vec!["usage", "--lake", &fixture.lake, "--format", "csv"];
        args.extend_from_slice(range);
        let plain = edgemeter(&[], &args).await;
        assert_eq!(plain.code, 0, "{}", plain.stderr);
        args.extend([
            "--meter",
            "requests",
            "--meter",
            "billable_requests",
            "--meter",
            "bytes_out",
            "--meter",
            "bytes_in",
        ]);
        let metered = edgemeter(&[], &args).await;
        assert_eq!(metered.code, 0, "{}", metered.stderr);
        let columns = |text: &str, names: [&str; 6]| -> Vec<Vec<String>> {
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
            let at: Vec<usize> = names
                .iter()
                .map(|n| header.iter().position(|h| h == n).unwrap())
                .collect();
            let mut rows: Vec<Vec<String>> = reader
                .records()
                .map(|r| {
                    let r = r.unwrap();
                    at.iter().map(|i| r[*i].to_string()).collect()
                })
                .collect();
            rows.sort();
            rows
        };
        let names = [
            "api_key_id",
            "api_key_hint",
            "requests",
            "billable_requests",
            "bytes_out",
            "bytes_in",
        ];
        let plain = columns(&plain.stdout, names);
        assert!(plain.len() >= 5, "{range:?}: {plain:?}");
        assert_eq!(plain, columns(&metered.stdout, names), "{range:?}");
    }
}

fn sha256_hex(raw: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(raw.as_bytes()))
}

/// Bad meter definitions, each refused before the lake is read (exit 2),
/// the message naming the meter (or the flag) and what is wrong.
#[tokio::test]
async fn bad_meters_are_configuration_errors_naming_the_meter() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    let plans = dir.path().join("plans.toml");
    let plans = plans.to_str().unwrap();
    let cases: &[(&str, &[&str])] = &[
        (
            "[meters.avg_x]\naggregation = \"avg\"\nvalue = \"response_time\"",
            &[
                "meters.avg_x",
                "\"response_time\" is not a column of requests",
            ],
        ),
        (
            "[meters.by_path]\naggregation = \"count\"\nfilter = { path = \"/v1/search\" }",
            &["meters.by_path", "unknown field `path`", "`endpoint`"],
        ),
        (
            "[meters.by_path]\naggregation = \"count\"\nunit = \"calls\"",
            &["meters.by_path", "unknown field `unit`"],
        ),
        (
            "[meters.bytes]\naggregation = \"sum\"",
            &["meters.bytes", "sum needs a value"],
        ),
        (
            "[meters.ips]\naggregation = \"sum\"\nvalue = \"c_ip\"",
            &[
                "meters.ips",
                "\"c_ip\" is text",
                "sum needs a numeric column",
            ],
        ),
        (
            "[meters.top]\naggregation = \"max\"\nvalue = \"cs_method\"",
            &[
                "meters.top",
                "\"cs_method\" is text",
                "max needs a numeric column",
            ],
        ),
        (
            "[meters.search]\naggregation = \"count\"\nfilter = { endpoint = \"v1/search\" }",
            &[
                "meters.search",
                "\"v1/search\"",
                "start with '/'",
                "never match",
            ],
        ),
        (
            "[meters.search]\naggregation = \"count\"\nfilter = { endpoint = \"/v1/search?q=*\" }",
            &[
                "meters.search",
                "\"/v1/search?q=*\"",
                "query string",
                "never match",
            ],
        ),
        (
            "[meters.search]\naggregation = \"count\"\nfilter = { method = [] }",
            &["meters.search", "filter.method = []", "never match"],
        ),
        (
            "[meters.search]\naggregation = \"count\"\nfilter = { status = \"2xx,ok\" }",
            &["meters.search", "filter.status = \"2xx,ok\"", "2xx"],
        ),
        (
            "[plans.pro.charges.search_calls]\nprice_per_1k = \"1.00\"",
            &[
                "plans.pro.charges.search_calls",
                "no meter named \"search_calls\"",
            ],
        ),
        (
            "[meters.bytes_out]\naggregation = \"sum\"\nvalue = \"sc_bytes\"",
            &["meters.bytes_out", "built-in meter", "choose another slug"],
        ),
        (
            "[meters.calls]\naggregation = \"count\"\n[meters.calls]\naggregation = \"count\"",
            &["duplicate key", "[meters.calls]"],
        ),
        (
            "[meters.p50]\naggregation = \"median\"\nvalue = \"time_taken\"",
            &[
                "meters.p50",
                "\"median\"",
                "count, sum, unique_count, max, min or avg",
            ],
        ),
    ];
    for (toml, wanted) in cases {
        std::fs::write(plans, format!("[billing]\ncurrency = \"USD\"\n{toml}\n")).unwrap();
        let run = edgemeter(
            &[],
            &[
                "usage", "--lake", lake, "--plans", plans, "--meter", "requests",
            ],
        )
        .await;
        assert_eq!(run.code, 2, "{toml}: {}", run.stderr);
        for part in *wanted {
            assert!(
                run.stderr.contains(part),
                "{toml}: {part:?} not in {}",
                run.stderr
            );
        }
        assert!(!Path::new(lake).exists(), "{toml}: the lake was opened");
    }
    // An unknown meter on the command line, with and without a plans file.
    std::fs::write(plans, "[billing]\ncurrency = \"USD\"\n").unwrap();
    for args in [
        &["usage", "--lake", lake, "--meter", "nosuch"][..],
        &[
            "usage", "--lake", lake, "--plans", plans, "--meter", "nosuch",
        ],
    ] {
        let run = edgemeter(&[], args).await;
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr.contains("--meter: no meter named \"nosuch\"")
                && run.stderr.contains("known: billable_requests, bytes_in"),
            "{}",
            run.stderr
        );
    }
}
