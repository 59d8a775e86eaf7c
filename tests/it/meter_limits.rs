//! Per-meter limits: `edgemeter check` alerts per customer and meter at
//! 80/90/95/100% of a charge's `daily_limit`/`monthly_limit`, once per
//! period and threshold. Expected use is counted from the raw log lines here.

use crate::cli::{edgemeter, ingest};
use crate::logs::example_lines;
use crate::webhook::Webhook;
use std::collections::BTreeMap;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Per raw key, the GET requests to `/v1/users/<digits>` (the endpoint
/// template `/v1/users/{id}`) in `examples/logs`, counted from the log text.
fn user_reads_by_key() -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for line in example_lines() {
        let id = line.stem.strip_prefix("/v1/users/").unwrap_or("/");
        if line.method != "GET" || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Some(key) = line.key {
            *counts.entry(key).or_default() += 1;
        }
    }
    counts
}

/// The threshold a use reaches (the highest of 80/90/95/100 at or under
/// `used` / `limit`), in whole integers: `used × 100 ≥ t × limit`.
fn threshold(used: u64, limit: u64) -> Option<u64> {
    [100, 95, 90, 80]
        .into_iter()
        .find(|t| used * 100 >= t * limit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meter_limits_alert_per_customer_and_meter_once_per_threshold() {
    let counts = user_reads_by_key();
    let acme = counts["ak_live_acme_7f3k2"];
    let globex = counts["ak_live_globex_99qz"];
    assert!(acme > 5 && globex > 5, "{counts:?}");
    // Acme's month is just under its limit (acme of acme + 1: ≥ 90%),
    // its day at exactly its limit (100%); Globex's limits are far off.
    let plans = format!(
        r#"
[billing]
currency = "USD"

[meters.user_reads]
aggregation = "count"
filter = {{ endpoint = "/v1/users/*", method = "GET" }}

[plans.pro.charges.user_reads]
monthly_limit = {month_limit}
daily_limit = {acme}

[plans.big.charges.user_reads]
monthly_limit = {big}
daily_limit = {big}

[[customers]]
id = "cus_acme"
name = "Acme"
plan = "pro"
keys = ["ak_live_acme_7f3k2"]

[[customers]]
id = "cus_globex"
name = "Globex"
plan = "big"
keys = ["ak_live_globex_99qz"]
"#,
        month_limit = acme + 1,
        big = globex * 2
    );
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    let run = ingest(&[], &format!("{ROOT}/examples/logs"), lake, &["--quiet"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plans_path = dir.path().join("plans.toml");
    std::fs::write(&plans_path, plans).unwrap();
    let plans_path = plans_path.to_str().unwrap();
    let hook = Webhook::start().await;
    let env = [("EDGEMETER_ALERT_WEBHOOK", hook.url())];
    let args = [
        "check",
        "--lake",
        lake,
        "--plans",
        plans_path,
        "--at",
        "2025-10-05T23:00:00Z",
        "--json",
    ];
    let check = || edgemeter(&env, &args);
    let run = check().await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let used = |customer: &str, window: &str| {
        report["limits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["customer_id"] == customer && l["window"] == window)
            .map(|l| l["used"].as_str().unwrap().to_string())
    };
    assert_eq!(used("cus_acme", "monthly"), Some(acme.to_string()));
    assert_eq!(used("cus_acme", "daily"), Some(acme.to_string()));
    assert_eq!(used("cus_globex", "monthly"), Some(globex.to_string()));

    // (The keys' 5xx shares alert too: those are not this test's.)
    let limit_texts = || -> Vec<String> {
        let mut texts: Vec<String> = hook
            .texts()
            .into_iter()
            .filter(|t| t.contains("limit of"))
            .collect();
        texts.sort();
        texts
    };
    let texts = limit_texts();
    let month_t = threshold(acme, acme + 1).unwrap();
    // The share in tenths of a percent, rounded half up: 15 of 16 is 93.75% → 93.8%.
    let tenths = (acme * 2000 / (acme + 1)).div_ceil(2);
    assert_eq!(threshold(globex, globex * 2), None);
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[0].contains("cus_acme")
            && texts[0].contains("daily limit of user_reads for 2025-10-05")
            && texts[0].contains(&format!("{acme} of {acme}"))
            && texts[0].contains("threshold 100%"),
        "{texts:?}"
    );
    assert!(
        texts[1].contains("monthly limit of user_reads for 2025-10")
            && texts[1].contains(&format!("{acme} of {}", acme + 1))
            && texts[1].contains(&format!("{}.{}%", tenths / 10, tenths % 10))
            && texts[1].contains(&format!("threshold {month_t}%")),
        "{texts:?}"
    );

    // Once per period and threshold: checking again sends nothing.
    let run = check().await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(limit_texts().len(), 2, "{:?}", hook.texts());
}
