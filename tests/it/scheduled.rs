//! `edgemeter run --config edgemeter.toml`: the scheduled entry point, its
//! precedence (flags > env > file), metrics, run records and retention.

use crate::cli::{edgemeter, summary, usage};
use crate::logs::{Req, expected, gzip, log_text, requests_at};
use std::path::Path;

fn write_file(dir: &Path, name: &str, reqs: &[Req]) {
    std::fs::write(dir.join(name), gzip(&log_text(reqs))).unwrap();
}

/// Moves each request's key from `api_key` to `token`.
fn with_token_param(reqs: Vec<Req>) -> Vec<Req> {
    reqs.into_iter()
        .map(|mut r| {
            r.query = r.query.replace("api_key=", "token=");
            r
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_run_from_a_config_file() {
    let logs = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now() - chrono::Duration::hours(1);
    let (date, hour) = (
        now.format("%Y-%m-%d").to_string(),
        now.format("%H").to_string(),
    );
    let recent = with_token_param(requests_at(&date, hour.parse().unwrap(), 60, "r"));
    write_file(logs.path(), &format!("E2RUN.{date}-{hour}.r.gz"), &recent);
    let old = with_token_param(requests_at("2025-10-05", 9, 20, "o"));
    write_file(logs.path(), "E2RUN.2025-10-05-09.o.gz", &old);

    let file_lake = work.path().join("file-lake");
    let env_lake = work.path().join("env-lake");
    let metrics = work.path().join("edgemeter.prom");
    let config = work.path().join("edgemeter.toml");
    std::fs::write(
        &config,
        format!(
            "sources = [{:?}]\nlake = {:?}\nkey_params = [\"token\"]\nretain_days = 30\nmetrics_file = {:?}\n",
            logs.path(),
            file_lake,
            metrics
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();

    // The environment overrides the file's lake.
    let env = vec![("EDGEMETER_LAKE", env_lake.to_str().unwrap().to_string())];
    let run = edgemeter(&env, &["run", "--config", config, "--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!file_lake.exists(), "EDGEMETER_LAKE overrides the file");
    let s = summary(&run);
    assert_eq!(s["rows_written"], 80);
    assert_eq!(
        s["keyless_requests"],
        recent
            .iter()
            .chain(&old)
            .filter(|r| r.key.is_none())
            .count()
    );
    // Retention keeps the 2025 day this run wrote (and says so); the next
    // run drops it.
    assert_eq!(s["partitions_dropped"], serde_json::json!([]));
    assert_eq!(
        s["partitions_kept_from_retention"],
        serde_json::json!(["2025-10-05"])
    );
    let lake = env_lake.to_str().unwrap();
    assert_eq!(
        usage(&[], lake, &[]).await,
        expected(&recent.iter().chain(&old).collect::<Vec<_>>())
    );

    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(prom.contains("\nedgemeter_rows_written 80\n"), "{prom}");
    assert!(prom.contains("\nedgemeter_objects_ingested 2\n"), "{prom}");
    assert!(
        prom.contains("edgemeter_last_success_timestamp_seconds "),
        "{prom}"
    );

    // A flag overrides the environment; a second run adds a record.
    let run = edgemeter(&env, &["run", "--config", config, "--lake", lake, "--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["rows_written"], 0);
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
    assert_eq!(
        usage(&[], lake, &[]).await,
        expected(&recent.iter().collect::<Vec<_>>())
    );
    let runs = edgemeter(&[], &["runs", "--lake", lake, "--format", "csv"]).await;
    assert_eq!(runs.code, 0, "{}", runs.stderr);
    let mut reader = csv::Reader::from_reader(runs.stdout.as_bytes());
    let col = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "rows_written")
        .unwrap();
    let written: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[col].to_string())
        .collect();
    assert_eq!(written, ["0", "80"], "newest first");

    // The config text can come from EDGEMETER_CONFIG_TOML (ECS hands SSM parameters over as variables).
    let text = std::fs::read_to_string(config).unwrap();
    let run = edgemeter(
        &[
            ("EDGEMETER_CONFIG_TOML", text),
            ("EDGEMETER_LAKE", lake.to_string()),
        ],
        &["run", "--json"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        summary(&run)["objects_skipped"],
        1,
        "the lookback window holds the recent file, already ingested"
    );

    // A bad config file is a configuration error (exit 2).
    let bad = work.path().join("bad.toml");
    std::fs::write(&bad, "lakes = \"typo\"\n").unwrap();
    let run = edgemeter(&[], &["run", "--config", bad.to_str().unwrap()]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("unknown field"), "{}", run.stderr);
}
