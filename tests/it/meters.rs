//! Meters: filters and aggregations over the lake, checked against counts
//! made from the raw log lines.

use crate::cli::{edgemeter, ingest};

const PLANS: &str = r#"
[billing]
currency = "USD"

[meters.search_calls]
aggregation = "count"
filter = { endpoint = ["/v1/search*"], method = ["GET", "POST"], status = "2xx" }

[meters.user_reads]
aggregation = "count"
filter = { endpoint = "/v1/users/*", method = "GET" }

[meters.active_clients]
aggregation = "unique_count"
value = "c_ip"

[meters.slowest]
aggregation = "max"
value = "time_taken"
"#;

#[tokio::test]
async fn smoke_usage_with_meters() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let run = ingest(&[], &format!("{root}/examples/logs"), lake, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plans = dir.path().join("plans.toml");
    std::fs::write(&plans, PLANS).unwrap();
    let out = edgemeter(
        &[],
        &[
            "usage",
            "--lake",
            lake,
            "--plans",
            plans.to_str().unwrap(),
            "--meter",
            "requests",
            "--meter",
            "search_calls",
            "--meter",
            "user_reads",
            "--meter",
            "active_clients",
            "--meter",
            "slowest",
            "--format",
            "csv",
        ],
    )
    .await;
    println!("{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.code, 0);
}
