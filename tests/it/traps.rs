//! A new user's mistakes fail loudly: wrong lakes, unfinished periods,
//! failed exports, settings in three places, wrong key settings, lakes inside
//! sources, files beside the logs, and the conveniences of a command line.

use crate::cli::{edgemeter, ingest, summary, usage};
use crate::logs::{KEYS, Req, expected, gzip, log_text, requests_at, sha256_hex};
use std::path::Path;

/// Writes one gzipped log object named for `date` `hour` with `n` requests.
fn write_hour(dir: &Path, date: &str, hour: u32, n: usize) -> Vec<Req> {
    let reqs = requests_at(date, hour, n, &format!("t{date}{hour}"));
    let name = format!("E2TRAP.{date}-{hour:02}.a.gz");
    std::fs::write(dir.join(name), gzip(&log_text(&reqs))).unwrap();
    reqs
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Every command that reads or maintains a lake refuses a path that holds
/// none, names it, exits 1, and creates nothing there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_commands_never_create_a_lake() {
    let dir = tempfile::tempdir().unwrap();
    let plans = dir.path().join("plans.toml");
    std::fs::write(&plans, "[billing]\ncurrency = \"USD\"\n").unwrap();
    let plans = text(&plans).to_string();
    let out = dir.path().join("out.csv");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for (wrong, exists) in [(dir.path().join("typo"), false), (empty, true)] {
        let lake = text(&wrong).to_string();
        let commands: Vec<Vec<&str>> = vec![
            vec!["usage", "--lake", &lake],
            vec!["query", "--lake", &lake, "SELECT 1"],
            vec!["runs", "--lake", &lake],
            vec!["schema", "--lake", &lake],
            vec!["unreadable", "--lake", &lake],
            vec!["maintain", "--lake", &lake],
            vec!["migrate", "--lake", &lake],
            vec!["check", "--lake", &lake, "--plans", &plans],
            vec![
                "report",
                "--lake",
                &lake,
                "--period",
                "2025-10",
                "--output",
                text(&out),
            ],
            vec![
                "export",
                "--lake",
                &lake,
                "--period",
                "2025-10",
                "--plans",
                &plans,
                "--output",
                text(&out),
            ],
        ];
        for args in commands {
            let run = edgemeter(&[], &args).await;
            assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
            assert!(
                run.stderr
                    .contains(&format!("{lake} is not an edgemeter lake")),
                "{args:?}: {}",
                run.stderr
            );
            assert_eq!(wrong.exists(), exists, "{args:?} created {lake}");
            if exists {
                assert_eq!(std::fs::read_dir(&wrong).unwrap().count(), 0, "{args:?}");
            }
            assert!(!out.exists(), "{args:?} wrote an output");
        }
    }
}

/// One customer owning the first test key, on a plan with a base fee.
fn one_customer_plans(dir: &Path) -> String {
    let plans = dir.join("plans.toml");
    std::fs::write(
        &plans,
        format!(
            "[billing]\ncurrency = \"USD\"\ngrace_hours = 24\n\n[plans.p]\nbase_fee = \"10.00\"\n\
             price_per_1k_requests = \"1000.00\"\n\n[[customers]]\nid = \"cus_one\"\nplan = \"p\"\n\
             keys = [\"{}\"]\nopenmeter_subject = \"one\"\nlago_subscription_id = \"sub_one\"\n",
            KEYS[0].0
        ),
    )
    .unwrap();
    text(&plans).to_string()
}

fn billable_of_first_key(reqs: &[Req]) -> usize {
    reqs.iter()
        .filter(|r| r.key.as_deref() == Some(KEYS[0].0) && r.status.starts_with('2'))
        .count()
}

/// The `status` column of a CSV export, one value per line.
fn statuses(path: &Path) -> Vec<String> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let at = headers.iter().position(|h| h == "status").unwrap();
    reader
        .records()
        .map(|r| r.unwrap()[at].to_string())
        .collect()
}

/// A period without requests, or not ingested since its late files could
/// arrive, is exported with a warning and never as final.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_period_is_never_final() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    write_hour(&logs, "2025-10-15", 12, 60);
    let lake = text(&dir.path().join("lake")).to_string();
    let run = ingest(&[], text(&logs), &lake, &["--full-listing"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plans = one_customer_plans(dir.path());
    let out = dir.path().join("out.csv");
    let export = |period: &'static str| {
        let (lake, plans, out) = (lake.clone(), plans.clone(), out.clone());
        async move {
            let args = [
                "export",
                "--lake",
                &lake,
                "--period",
                period,
                "--plans",
                &plans,
                "--output",
                text(&out),
            ];
            edgemeter(&[], &args).await
        }
    };
    // Ingested after the grace period: final, no warning. Lines: the
    // customer, the three other keys, the requests without a key.
    let run = export("2025-10").await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("(5 invoice lines, final)"),
        "{}",
        run.stdout
    );
    assert!(!run.stderr.contains("not final"), "{}", run.stderr);
    assert!(statuses(&out).iter().all(|s| s == "final"));
    // A month after the lake's newest data: no requests, a warning.
    let run = export("2026-02").await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("warning: not final: the lake holds no requests in 2026-02 (UTC)"),
        "{}",
        run.stderr
    );
    assert_eq!(statuses(&out), vec!["provisional"]);
    // The newest run started before the end of October's grace period
    // (2025-11-02T00:00Z): late files may be missing.
    let runs = Path::new(&lake).join("_edgemeter/runs");
    let record = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::rename(&record, runs.join("20251101T120000.000Z-0badbeef.json")).unwrap();
    let run = export("2025-10").await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "the newest ingest run started at 2025-11-01T12:00:00Z, before the period's late log files \
             are all in (2025-11-01T00:00:00Z + 24 grace hours = 2025-11-02T00:00:00Z)"
        ),
        "{}",
        run.stderr
    );
    assert!(statuses(&out).iter().all(|s| s == "provisional"));
}

/// An export that fails leaves the record of the last good one, so the next
/// export still reports what changed since then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_export_keeps_the_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let first = write_hour(&logs, "2025-10-15", 12, 90);
    let lake = text(&dir.path().join("lake")).to_string();
    let run = ingest(&[], text(&logs), &lake, &["--full-listing"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plans = one_customer_plans(dir.path());
    let export = |output: String| {
        let (lake, plans) = (lake.clone(), plans.clone());
        async move {
            let args = [
                "export", "--lake", &lake, "--period", "2025-10", "--plans", &plans, "--output",
                &output,
            ];
            edgemeter(&[], &args).await
        }
    };
    let good = text(&dir.path().join("out.csv")).to_string();
    let run = export(good.clone()).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // A late file adds requests to October.
    let late = write_hour(&logs, "2025-10-20", 7, 120);
    let run = ingest(&[], text(&logs), &lake, &["--full-listing"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // An export whose output cannot be written (its parent is a file).
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, "x").unwrap();
    let run = export(format!("{}/out.csv", text(&blocked))).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    // The next good export restates from the last good one.
    let (before, after) = (
        billable_of_first_key(&first),
        billable_of_first_key(&first) + billable_of_first_key(&late),
    );
    assert!(after > before);
    let run = export(good).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "restated cus_one [{}]: billable {before} -> {after}",
            sha256_hex(KEYS[0].0)
        )),
        "{}",
        run.stdout
    );
}

/// `--print-config` of `run`: the settings in effect.
async fn settings(config: &Path, env: &[(&str, String)], flags: &[&str]) -> serde_json::Value {
    let mut args = vec!["run", "--config", text(config), "--print-config"];
    args.extend_from_slice(flags);
    let run = edgemeter(env, &args).await;
    assert_eq!(run.code, 0, "{args:?} {env:?}: {}", run.stderr);
    let all: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    all
}

/// For every setting: a flag wins over its variable, which wins over the
/// config file, which wins over the default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_then_environment_then_file_for_every_setting() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgemeter.toml");
    std::fs::write(
        &config,
        r#"
sources = ["/file/logs"]
lake = "/file/lake"
endpoint_url = "http://file:9000"
region = "eu-file-1"
key_from = ["header:x-file-key"]
since = "2025-01-01"
retain_days = 100
max_keyless_share = 0.1
metrics_file = "/file/metrics.prom"
concurrency = 3
batch_bytes = "1MiB"
max_object_bytes = 1000
max_line_bytes = 2000
max_file_rows = 3000
max_file_bytes = 4000
"#,
    )
    .unwrap();
    // (variable, its value, flag and value, where the setting shows, and
    // the value from the file, the variable and the flag)
    type Case = (
        &'static str,
        &'static str,
        [&'static str; 2],
        &'static str,
        serde_json::Value,
        serde_json::Value,
        serde_json::Value,
    );
    use serde_json::json;
    let cases: Vec<Case> = vec![
        (
            "EDGEMETER_SOURCE",
            "/env/logs",
            ["--source", "/flag/logs"],
            "/ingests/0/source",
            json!("/file/logs"),
            json!("/env/logs"),
            json!("/flag/logs"),
        ),
        (
            "EDGEMETER_LAKE",
            "/env/lake",
            ["--lake", "/flag/lake"],
            "/ingests/0/lake",
            json!("/file/lake"),
            json!("/env/lake"),
            json!("/flag/lake"),
        ),
        (
            "EDGEMETER_ENDPOINT_URL",
            "http://env:9000",
            ["--endpoint-url", "http://flag:9000"],
            "/ingests/0/endpoint_url",
            json!("http://file:9000"),
            json!("http://env:9000"),
            json!("http://flag:9000"),
        ),
        (
            "EDGEMETER_REGION",
            "eu-env-1",
            ["--region", "eu-flag-1"],
            "/ingests/0/region",
            json!("eu-file-1"),
            json!("eu-env-1"),
            json!("eu-flag-1"),
        ),
        (
            "EDGEMETER_KEY_FROM",
            "cookie:envkey",
            ["--key-from", "log-data:flagkey"],
            "/ingests/0/key_sources",
            json!(["header:x-file-key"]),
            json!(["cookie:envkey"]),
            json!(["log-data:flagkey"]),
        ),
        (
            "EDGEMETER_KEY_PARAMS",
            "envtoken",
            ["--key-param", "flagtoken"],
            "/ingests/0/key_sources",
            json!(["header:x-file-key"]),
            json!(["query:envtoken"]),
            json!(["query:flagtoken"]),
        ),
        (
            "EDGEMETER_LOOKBACK",
            "6h",
            ["--lookback", "2d"],
            "/ingests/0/window",
            json!("since 2025-01-01T00:00:00+00:00"),
            json!("lookback 21600s"),
            json!("lookback 172800s"),
        ),
        (
            "EDGEMETER_SINCE",
            "2025-06-01",
            ["--since", "2025-07-01T09"],
            "/ingests/0/window",
            json!("since 2025-01-01T00:00:00+00:00"),
            json!("since 2025-06-01T00:00:00+00:00"),
            json!("since 2025-07-01T09:00:00+00:00"),
        ),
        (
            "EDGEMETER_FULL_LISTING",
            "1",
            ["--full-listing=false", ""],
            "/ingests/0/window",
            json!("since 2025-01-01T00:00:00+00:00"),
            json!("full"),
            json!("lookback 172800s"),
        ),
        (
            "EDGEMETER_RETAIN_DAYS",
            "200",
            ["--retain-days", "300"],
            "/ingests/0/retain_days",
            json!(100),
            json!(200),
            json!(300),
        ),
        (
            "EDGEMETER_MAX_KEYLESS_SHARE",
            "0.2",
            ["--max-keyless-share", "0.3"],
            "/ingests/0/max_keyless_share",
            json!(0.1),
            json!(0.2),
            json!(0.3),
        ),
        (
            "EDGEMETER_METRICS_FILE",
            "/env/metrics.prom",
            ["--metrics-file", "/flag/metrics.prom"],
            "/metrics_file",
            json!("/file/metrics.prom"),
            json!("/env/metrics.prom"),
            json!("/flag/metrics.prom"),
        ),
        (
            "EDGEMETER_CONCURRENCY",
            "5",
            ["--concurrency", "7"],
            "/ingests/0/concurrency",
            json!(3),
            json!(5),
            json!(7),
        ),
        (
            "EDGEMETER_BATCH_BYTES",
            "2MiB",
            ["--batch-bytes", "3000000"],
            "/ingests/0/batch_bytes",
            json!(1 << 20),
            json!(2 << 20),
            json!(3_000_000),
        ),
        (
            "EDGEMETER_MAX_OBJECT_BYTES",
            "1KiB",
            ["--max-object-bytes", "1MB"],
            "/ingests/0/max_object_bytes",
            json!(1000),
            json!(1024),
            json!(1_000_000),
        ),
        (
            "EDGEMETER_MAX_LINE_BYTES",
            "2100",
            ["--max-line-bytes", "2200"],
            "/ingests/0/max_line_bytes",
            json!(2000),
            json!(2100),
            json!(2200),
        ),
        (
            "EDGEMETER_MAX_FILE_ROWS",
            "3100",
            ["--max-file-rows", "3200"],
            "/ingests/0/max_file_rows",
            json!(3000),
            json!(3100),
            json!(3200),
        ),
        (
            "EDGEMETER_MAX_FILE_BYTES",
            "4100",
            ["--max-file-bytes", "4200"],
            "/ingests/0/max_file_bytes",
            json!(4000),
            json!(4100),
            json!(4200),
        ),
    ];
    for (var, value, flag, at, from_file, from_env, from_flag) in cases {
        let flag: Vec<&str> = flag.into_iter().filter(|f| !f.is_empty()).collect();
        let file_only = settings(&config, &[], &[]).await;
        assert_eq!(file_only.pointer(at), Some(&from_file), "{var}: the file's");
        let env = [(var, value.to_string())];
        let with_env = settings(&config, &env, &[]).await;
        assert_eq!(with_env.pointer(at), Some(&from_env), "{var} over the file");
        let with_flag = settings(&config, &env, &flag).await;
        assert_eq!(
            with_flag.pointer(at),
            Some(&from_flag),
            "{flag:?} over {var}"
        );
    }
    // Without any of them, the defaults.
    let bare = dir.path().join("bare.toml");
    std::fs::write(&bare, "sources = [\"/l\"]\nlake = \"/k\"\n").unwrap();
    let defaults = settings(&bare, &[], &[]).await;
    assert_eq!(
        defaults.pointer("/ingests/0/window"),
        Some(&json!("lookback 172800s"))
    );
    assert_eq!(defaults.pointer("/ingests/0/concurrency"), Some(&json!(16)));
    assert_eq!(
        defaults.pointer("/ingests/0/batch_bytes"),
        Some(&json!(8 << 20))
    );
    assert_eq!(
        defaults.pointer("/ingests/0/max_keyless_share"),
        Some(&json!(0.5))
    );
    assert_eq!(
        defaults.pointer("/ingests/0/key_sources"),
        Some(&json!([
            "header:x-api-key",
            "log-data:api_key",
            "cookie:api_key",
            "query:api_key"
        ]))
    );
}

/// The requests of `reqs` with their keys in a `token` parameter instead
/// of `api_key`: what a wrong `--key-param` misses.
fn token_log(reqs: &[Req]) -> String {
    log_text(reqs).replace("&api_key=", "&token=")
}

/// Ingesting with the wrong key setting warns and exits 3; `reingest` with
/// the right one replaces the objects' rows exactly, also when killed and
/// run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_setting_warns_and_reingest_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let mut all = Vec::new();
    for hour in 0..6 {
        let reqs = requests_at("2025-10-05", hour, 80, &format!("k{hour}"));
        let name = format!("E2KEY.2025-10-05-{hour:02}.a.gz");
        std::fs::write(logs.join(name), gzip(&token_log(&reqs))).unwrap();
        all.extend(reqs);
    }
    // An object of the day before the range, which reingest leaves alone.
    let outside = requests_at("2025-10-04", 23, 30, "out");
    std::fs::write(
        logs.join("E2KEY.2025-10-04-23.a.gz"),
        gzip(&token_log(&outside)),
    )
    .unwrap();
    let lake = text(&dir.path().join("lake")).to_string();
    let run = ingest(&[], text(&logs), &lake, &["--full-listing"]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(
        run.stdout
            .matches("requests have no API key; are --key-from / --key-param right?")
            .count(),
        7,
        "{}",
        run.stdout
    );
    let keyless: Vec<&Req> = all.iter().chain(&outside).collect();
    let everything_keyless =
        std::collections::BTreeMap::from([(String::new(), everything_keyless_of(&keyless))]);
    assert_eq!(usage(&[], &lake, &[]).await, everything_keyless);
    // An ingest with the right setting skips them: already ingested.
    let fixed = ["--key-param", "token"];
    let run = ingest(
        &[],
        text(&logs),
        &lake,
        &[&["--full-listing", "--json"][..], &fixed].concat(),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run)["objects_ingested"], 0);
    // Reingest, killed at random points with one object per batch, then
    // run to the end: exact every time it finishes.
    let reingest = |extra: &'static [&'static str]| {
        let (lake, logs) = (lake.clone(), text(&logs).to_string());
        async move {
            let mut args = vec![
                "reingest",
                "--source",
                &logs,
                "--lake",
                &lake,
                "--since",
                "2025-10-05",
                "--until",
                "2025-10-06",
                "--key-param",
                "token",
                "--json",
            ];
            args.extend_from_slice(extra);
            edgemeter(&[], &args).await
        }
    };
    let bin = env!("CARGO_BIN_EXE_edgemeter");
    // SIGKILL after pseudo-random delays (a fixed seed, so a failure repeats).
    let mut seed = 0x5eed_u64;
    let total = (all.len() + outside.len()) as i64;
    for _ in 0..10 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let kill_after_ms = 100 + (seed >> 33) % 1400;
        let mut child = tokio::process::Command::new(bin)
            .args([
                "reingest",
                "--source",
                text(&logs),
                "--lake",
                &lake,
                "--since",
                "2025-10-05",
                "--until",
                "2025-10-06",
                "--key-param",
                "token",
                "--batch-bytes",
                "1",
                "--quiet",
            ])
            .env_remove("EDGEMETER_KEY_SECRET")
            .spawn()
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(kill_after_ms)).await;
        let _ = child.start_kill();
        let _ = child.wait().await;
        // Whatever was cut short: each request once (its old row or its new).
        let now: i64 = usage(&[], &lake, &[])
            .await
            .values()
            .map(|t| t.requests)
            .sum();
        assert_eq!(now, total, "killed after {kill_after_ms} ms");
    }
    let run = reingest(&[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["objects_listed"], 6);
    assert_eq!(s["objects_ingested"], 6);
    assert_eq!(s["rows_replaced"], 6 * 80);
    assert_eq!(s["rows_written"], 6 * 80);
    assert_eq!(
        s["listing"],
        "reingest since 2025-10-05T00:00:00Z until 2025-10-06T00:00:00Z"
    );
    // The day before keeps its keyless rows.
    let mut want = expected(&all.iter().collect::<Vec<_>>());
    let outside_sum = everything_keyless_of(&outside.iter().collect::<Vec<_>>());
    add_totals(want.entry(String::new()).or_default(), &outside_sum);
    assert_eq!(usage(&[], &lake, &[]).await, want);
    // Again: the same numbers.
    let run = reingest(&[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(usage(&[], &lake, &[]).await, want);
    // Every request once in the raw rows too.
    let rows = crate::cli::query_csv(
        &[],
        &lake,
        "SELECT count(*) AS n, count(DISTINCT x_edge_request_id) AS d FROM requests",
    )
    .await;
    assert_eq!(
        rows,
        format!("n,d\n{n},{n}\n", n = all.len() + outside.len())
    );
}

fn everything_keyless_of(reqs: &[&Req]) -> crate::logs::Totals {
    let mut sum = crate::logs::Totals::default();
    for v in expected(reqs).values() {
        add_totals(&mut sum, v);
    }
    sum
}

fn add_totals(sum: &mut crate::logs::Totals, v: &crate::logs::Totals) {
    sum.requests += v.requests;
    sum.billable += v.billable;
    sum.client_errors += v.client_errors;
    sum.server_errors += v.server_errors;
    sum.bytes_out += v.bytes_out;
    sum.bytes_in += v.bytes_in;
}

/// A lake inside the source directory is never read as logs; a file that
/// is not a log (and not named like one) is reported once, then skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_inside_the_source_and_a_readme_beside_the_logs() {
    let logs = tempfile::tempdir().unwrap();
    let mut all = write_hour(logs.path(), "2025-10-05", 1, 40);
    all.extend(write_hour(logs.path(), "2025-10-05", 2, 50));
    std::fs::write(
        logs.path().join("README.md"),
        "# our CloudFront logs\n\nkept 400 days\n",
    )
    .unwrap();
    let lake = text(&logs.path().join("lake")).to_string();
    let source = text(logs.path()).to_string();
    let run = ingest(&[], &source, &lake, &["--full-listing", "--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["objects_ingested"], 2);
    assert_eq!(s["objects_not_logs"], 1);
    assert_eq!(s["objects_unreadable"], 0);
    let readme = format!(
        "{}/README.md",
        logs.path().canonicalize().unwrap().display()
    );
    assert_eq!(s["not_logs"][0]["object"], readme.as_str());
    // The second run: the lake's own files are left out, the README is
    // remembered, nothing is read again.
    let run = ingest(&[], &source, &lake, &["--full-listing", "--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert!(s["objects_in_lake"].as_u64().unwrap() > 5, "{s}");
    // Listed: the two logs and the README, which is skipped unread.
    assert_eq!(s["objects_listed"], 3);
    assert_eq!(s["objects_skipped"], 2);
    assert_eq!(s["objects_not_logs"], 1);
    assert_eq!(s["not_logs"], serde_json::json!([]));
    assert_eq!(s["objects_unreadable"], 0);
    assert_eq!(
        usage(&[], &lake, &[]).await,
        expected(&all.iter().collect::<Vec<_>>())
    );
    // `unreadable` lists it, acknowledged.
    let run = edgemeter(&[], &["unreadable", "--lake", &lake, "--format", "csv"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(&readme) && run.stdout.contains("not a CloudFront log"),
        "{}",
        run.stdout
    );
    // Changed, it is read again (and is still no log).
    std::fs::write(
        logs.path().join("README.md"),
        "# our CloudFront logs, longer\n",
    )
    .unwrap();
    let run = ingest(&[], &source, &lake, &["--full-listing", "--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["not_logs"][0]["object"], readme.as_str(), "{s}");
}

/// Retention never drops what the same run wrote; the next run does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_what_the_same_run_ingested() {
    let logs = tempfile::tempdir().unwrap();
    let all = write_hour(logs.path(), "2025-10-05", 9, 70);
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = text(lake_dir.path()).to_string();
    let flags = ["--full-listing", "--retain-days", "30", "--json"];
    let run = ingest(&[], text(logs.path()), &lake, &flags).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["partitions_dropped"], serde_json::json!([]));
    assert_eq!(
        s["partitions_kept_from_retention"],
        serde_json::json!(["2025-10-05"])
    );
    assert_eq!(
        usage(&[], &lake, &[]).await,
        expected(&all.iter().collect::<Vec<_>>())
    );
    let run = ingest(&[], text(logs.path()), &lake, &flags).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(
        s["partitions_dropped"],
        serde_json::json!([
            "requests/dt=2025-10-05",
            "usage_daily/dt=2025-10-05",
            "usage_daily_keys/dt=2025-10-05",
            "usage_daily_totals/dt=2025-10-05",
            "usage_hourly/dt=2025-10-05",
            "usage_hourly_keys/dt=2025-10-05"
        ])
    );
    assert_eq!(usage(&[], &lake, &[]).await, Default::default());
}

/// Objects named for hours before the listing window are counted, reported
/// with how to include them, and in the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_outside_the_window_are_counted_and_reported() {
    let logs = tempfile::tempdir().unwrap();
    for hour in 0..3 {
        write_hour(logs.path(), "2025-10-05", hour, 5);
    }
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = text(lake_dir.path()).to_string();
    // The first run lists everything; the next ones the lookback only.
    let run = ingest(&[], text(logs.path()), &lake, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let metrics = lake_dir.path().join("metrics.prom");
    let args = [
        "ingest",
        "--source",
        text(logs.path()),
        "--lake",
        &lake,
        "--lookback",
        "2h",
        "--metrics-file",
        text(&metrics),
    ];
    let run = edgemeter(&[], &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "left out: 3 objects named for hours before the listing window; \
             --since DATE, a longer --lookback or --full-listing takes them in"
        ),
        "{}",
        run.stdout
    );
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        prom.contains("\nedgemeter_objects_outside_window 3\n"),
        "{prom}"
    );
    let records = crate::cli::query_csv(&[], &lake, "SELECT 1 AS one").await;
    assert_eq!(records, "one\n1\n");
    let run = edgemeter(&[], &["runs", "--lake", &lake, "--format", "csv"]).await;
    assert!(
        run.stdout.contains(text(logs.path())),
        "run records name their source: {}",
        run.stdout
    );
}

/// A lake with a few hours of requests, for the commands' conveniences.
async fn small_lake() -> (tempfile::TempDir, String, Vec<Req>) {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let mut all = write_hour(&logs, "2025-10-05", 1, 40);
    all.extend(write_hour(&logs, "2025-10-05", 2, 30));
    let lake = text(&dir.path().join("lake")).to_string();
    let run = ingest(&[], text(&logs), &lake, &["--full-listing", "--quiet"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    (dir, lake, all)
}

/// `| head` ends quietly; `--output -` is stdout and missing directories
/// are made; tables right-align numbers and name the keyless row; CSV
/// lines end in CRLF.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_conveniences() {
    use tokio::io::AsyncBufReadExt;
    let (dir, lake, all) = small_lake().await;
    // A reader that goes away after one line.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgemeter"))
        .args([
            "query",
            "--lake",
            &lake,
            "--format",
            "csv",
            "SELECT x FROM (SELECT unnest(range(0, 400000)) AS x)",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).await.unwrap();
    assert_eq!(first, "x\r\n");
    drop(stdout);
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    // `--output -` and a new directory.
    let run = edgemeter(
        &[],
        &["usage", "--lake", &lake, "--format", "csv", "--output", "-"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("api_key_id,api_key_hint,requests"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.replace("\r\n", "").contains('\n'),
        "CRLF: {:?}",
        run.stdout
    );
    let on_stdout = run.stdout;
    let deep = dir.path().join("a/b/usage.csv");
    let run = edgemeter(
        &[],
        &[
            "usage",
            "--lake",
            &lake,
            "--format",
            "csv",
            "--output",
            text(&deep),
        ],
    )
    .await;
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&deep).unwrap(), on_stdout);
    // The table: (no key) for requests without a key, numbers right-aligned.
    let run = edgemeter(&[], &["usage", "--lake", &lake]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let want = expected(&all.iter().collect::<Vec<_>>());
    let keyless = &want[""];
    let rows: Vec<Vec<String>> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split('|').map(str::to_string).collect())
        .collect();
    let header: Vec<&str> = rows[0].iter().map(|c| c.trim()).collect();
    let requests_at = header.iter().position(|h| *h == "requests").unwrap();
    let no_key = rows
        .iter()
        .find(|r| r[0].trim() == "(no key)")
        .expect("a (no key) row");
    assert_eq!(no_key[requests_at].trim(), keyless.requests.to_string());
    for row in &rows[1..] {
        let cell = &row[requests_at];
        assert!(
            cell.ends_with(&format!("{} ", cell.trim())) && cell.starts_with("  "),
            "{cell:?}"
        );
    }
}

/// Booleans, sizes and durations as a user writes them; errors name what
/// was wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_parse_as_written_and_errors_name_the_setting() {
    let (dir, lake, _) = small_lake().await;
    let logs = text(&dir.path().join("logs")).to_string();
    // EDGEMETER_QUIET=1 and EDGEMETER_FULL_LISTING=true; a size with a unit.
    let env = [
        ("EDGEMETER_QUIET", "1".to_string()),
        ("EDGEMETER_FULL_LISTING", "true".to_string()),
    ];
    let run = edgemeter(
        &env,
        &[
            "ingest",
            "--source",
            &logs,
            "--lake",
            &lake,
            "--batch-bytes",
            "8MiB",
        ],
    )
    .await;
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{}", run.stderr);
    let env = [("EDGEMETER_QUIET", "0".to_string())];
    let run = edgemeter(
        &env,
        &[
            "ingest",
            "--source",
            &logs,
            "--lake",
            &lake,
            "--full-listing",
        ],
    )
    .await;
    assert!(run.stdout.contains("listing:  full"), "{}", run.stdout);
    // A duration needs its unit.
    let run = edgemeter(
        &[],
        &[
            "ingest",
            "--source",
            &logs,
            "--lake",
            &lake,
            "--lookback",
            "48",
        ],
    )
    .await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("--lookback (or EDGEMETER_LOOKBACK): duration \"48\" has no unit"),
        "{}",
        run.stderr
    );
    let run = edgemeter(
        &[],
        &[
            "ingest",
            "--source",
            &logs,
            "--lake",
            &lake,
            "--batch-bytes",
            "8 parsecs",
        ],
    )
    .await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--batch-bytes"), "{}", run.stderr);
    // A misspelled named query: the nearest names.
    let run = edgemeter(&[], &["query", "--lake", &lake, "top_key"]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("\"top_key\" is not a named query; did you mean top_keys"),
        "{}",
        run.stderr
    );
    // Missing files are configuration errors (2).
    let run = edgemeter(&[], &["run", "--config", "/nonexistent/edgemeter.toml"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--config /nonexistent/edgemeter.toml"),
        "{}",
        run.stderr
    );
    let run = edgemeter(
        &[],
        &[
            "check",
            "--lake",
            &lake,
            "--plans",
            "/nonexistent/plans.toml",
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    // A broken plans file: one prefix.
    let plans = dir.path().join("plans.toml");
    std::fs::write(&plans, "[billing]\ncurrency = 5\n").unwrap();
    let run = edgemeter(&[], &["check", "--lake", &lake, "--plans", text(&plans)]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("invalid configuration").count(),
        1,
        "{}",
        run.stderr
    );
    // A city is not a zone, but says which zone it is.
    std::fs::write(&plans, "[billing]\ncurrency = \"USD\"\n").unwrap();
    let run = edgemeter(
        &[],
        &[
            "check",
            "--lake",
            &lake,
            "--plans",
            text(&plans),
            "--tz",
            "Berlin",
        ],
    )
    .await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("did you mean Europe/Berlin?"),
        "{}",
        run.stderr
    );
}

/// SQL from a file or stdin; shell completions and a man page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_from_files_completions_and_a_man_page() {
    use tokio::io::AsyncWriteExt;
    let (dir, lake, all) = small_lake().await;
    let sql = dir.path().join("count.sql");
    std::fs::write(
        &sql,
        "-- every request\nSELECT count(*) AS n\nFROM requests\n",
    )
    .unwrap();
    let run = edgemeter(
        &[],
        &[
            "query",
            "--lake",
            &lake,
            "--format",
            "csv",
            "-f",
            text(&sql),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("n\r\n{}\r\n", all.len()));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgemeter"))
        .args(["query", "--lake", &lake, "--format", "csv", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"SELECT count(*) AS n FROM requests WHERE hour = '02'")
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "n\r\n30\r\n");
    for shell in ["bash", "zsh", "fish"] {
        let run = edgemeter(&[], &["completions", shell]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stdout.contains("reingest") && run.stdout.contains("--key-from"),
            "{shell}"
        );
    }
    let run = edgemeter(&[], &["man"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with(".ie") || run.stdout.contains(".TH edgemeter"),
        "{}",
        &run.stdout[..200.min(run.stdout.len())]
    );
    assert!(run.stdout.contains("reingest"));
}

/// Billing-system exports count events, and keys without a customer are
/// reported, not silently left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_exports_count_events_and_report_keys_without_a_customer() {
    let (dir, lake, all) = small_lake().await;
    let plans = one_customer_plans(dir.path());
    let out = dir.path().join("events.json");
    for (format, events) in [("openmeter", 1), ("lago", 2)] {
        let args = [
            "export",
            "--lake",
            &lake,
            "--period",
            "2025-10",
            "--plans",
            &plans,
            "--format",
            format,
            "--output",
            text(&out),
        ];
        let run = edgemeter(&[], &args).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stdout.contains(&format!("({events} event")),
            "{format}: {}",
            run.stdout
        );
        let others: std::collections::BTreeSet<String> = all
            .iter()
            .filter(|r| r.key.as_deref() != Some(KEYS[0].0))
            .map(|r| {
                r.key
                    .as_deref()
                    .map(sha256_hex)
                    .unwrap_or_else(|| "(no key)".into())
            })
            .collect();
        assert!(
            run.stderr.contains(&format!(
                "warning: {} keys with usage belong to no customer of --plans and are in no event",
                others.len()
            )),
            "{}",
            run.stderr
        );
        for id in &others {
            assert!(run.stderr.contains(id.as_str()), "{id}: {}", run.stderr);
        }
    }
}

/// Ctrl-C during an ingest says what was committed, exits 130, and the next
/// run reads the rest: every request once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_says_what_was_committed() {
    let logs = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for hour in 0..24 {
        all.extend(write_hour(logs.path(), "2025-10-07", hour, 30));
        all.extend(write_hour(logs.path(), "2025-10-08", hour, 30));
    }
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = text(lake_dir.path()).to_string();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgemeter"))
        .args([
            "ingest",
            "--source",
            text(logs.path()),
            "--lake",
            &lake,
            "--batch-bytes",
            "1",
            "--concurrency",
            "1",
        ])
        .env_remove("EDGEMETER_KEY_SECRET")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once a few batches are committed (the table's creation, then commits).
    let log = lake_dir.path().join("requests/_delta_log");
    let started = std::time::Instant::now();
    while std::fs::read_dir(&log).map_or(0, |d| d.count()) < 4 {
        assert!(started.elapsed().as_secs() < 120, "no commit");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // SAFETY: kill only sends a signal to the child's pid.
    unsafe {
        libc::kill(child.id().unwrap() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("edgemeter: interrupted; ")
            && stderr.contains("source objects were committed before that"),
        "{stderr}"
    );
    let run = ingest(&[], text(logs.path()), &lake, &["--full-listing"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        usage(&[], &lake, &[]).await,
        expected(&all.iter().collect::<Vec<_>>())
    );
}

/// Parquet is never written to a terminal (`script` gives the command one);
/// an unreachable S3 lake fails within seconds, naming the request (the
/// first one asks for the `requests` table's checkpoint).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_parquet_on_a_terminal_and_an_unreachable_lake_fails_fast() {
    let (_dir, lake, _) = small_lake().await;
    let command = format!(
        "{} usage --lake {lake} --format parquet",
        env!("CARGO_BIN_EXE_edgemeter")
    );
    let out = tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .await
        .expect("util-linux script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("Parquet is binary: give --output FILE"),
        "{text}"
    );
    assert!(!text.contains("PAR1"), "Parquet bytes reached the terminal");

    // A closed port: refused at once, retried a few times, then the error.
    let started = std::time::Instant::now();
    let env = [
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
    ];
    let run = edgemeter(
        &env,
        &[
            "usage",
            "--lake",
            "s3://no-such-lake/edge/",
            "--endpoint-url",
            "http://127.0.0.1:9",
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("Error performing HEAD")
            && run.stderr.contains("/no-such-lake/edge/requests/"),
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(45),
        "{:?}",
        started.elapsed()
    );
}
