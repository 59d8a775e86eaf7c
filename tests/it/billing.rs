//! `edgemeter export`: priced invoice lines, period boundaries, spreadsheet
//! safety, determinism, billing-system formats and restatements. Expected
//! amounts are worked out by hand in the comments.

use crate::cli::{Run, edgemeter, ingest};
use crate::logs::{Req, log_text, sha256_hex};
use crate::webhook::Webhook;
use std::path::Path;

fn req(
    date: &str,
    time: &str,
    key: Option<&str>,
    status: &'static str,
    sc_bytes: i64,
    id: &str,
) -> Req {
    Req {
        date: date.to_string(),
        time: time.to_string(),
        query: key.map_or("page=1".to_string(), |k| format!("api_key={k}")),
        key: key.map(str::to_string),
        status,
        sc_bytes: Some(sc_bytes),
        cs_bytes: 10,
        request_id: id.to_string(),
        time_taken: 0.2,
    }
}

pub(crate) const KEY_A: &str = "ak_live_acme_000001";
pub(crate) const KEY_B: &str = "ak_live_acme_000002";
pub(crate) const KEY_C: &str = "ak_live_evil_000003";
pub(crate) const KEY_D: &str = "ak_live_nobody_0004";

/// October 2025 for the customers above, plus requests just outside it.
fn october(dir: &Path) {
    let mut reqs = Vec::new();
    let mut n = 0;
    let mut add = |date: &str, time: &str, key: Option<&str>, status, bytes| {
        n += 1;
        reqs.push(req(date, time, key, status, bytes, &format!("bill-{n}")));
    };
    // Key A: 40 × 2xx of 100 MB, the first and last second of October among them.
    add("2025-10-01", "00:00:00", Some(KEY_A), "200", 100_000_000);
    add("2025-10-31", "23:59:59", Some(KEY_A), "200", 100_000_000);
    for i in 0..38 {
        add(
            "2025-10-15",
            &format!("12:{:02}:{:02}", i / 60, i % 60),
            Some(KEY_A),
            "200",
            100_000_000,
        );
    }
    // Key A errors and hang-ups: not billable, no bytes.
    for (status, count) in [("404", 5), ("500", 3), ("000", 2)] {
        for i in 0..count {
            add(
                "2025-10-16",
                &format!("08:00:{i:02}"),
                Some(KEY_A),
                status,
                0,
            );
        }
    }
    // Just outside October: never counted.
    add("2025-09-30", "23:59:59", Some(KEY_A), "200", 1);
    add("2025-11-01", "00:00:00", Some(KEY_A), "200", 100_000_000);
    // Key B (also Acme's, given by id): 10 × 201 of 50 MB.
    for i in 0..10 {
        add(
            "2025-10-20",
            &format!("10:00:{i:02}"),
            Some(KEY_B),
            "201",
            50_000_000,
        );
    }
    // Key C: 150 × 200.
    for i in 0..150 {
        add(
            "2025-10-21",
            &format!("10:{:02}:{:02}", i / 60, i % 60),
            Some(KEY_C),
            "200",
            0,
        );
    }
    // Key D, no customer: 7 × 200 of 1 000 bytes; and 4 requests without a key.
    for i in 0..7 {
        add(
            "2025-10-22",
            &format!("10:00:{i:02}"),
            Some(KEY_D),
            "200",
            1_000,
        );
    }
    for i in 0..4 {
        add("2025-10-22", &format!("11:00:{i:02}"), None, "200", 500);
    }
    std::fs::write(dir.join("E2BILL.2025-10-15-12.a"), log_text(&reqs)).unwrap();
}

fn plans_toml() -> String {
    format!(
        r#"
[billing]
currency = "USD"
billable = "2xx"
grace_hours = 24

[plans.pro]
base_fee = "99.00"
included_requests = 10
monthly_quota = 60
daily_quota = 40
tier_mode = "graduated"
tiers = [ {{ up_to = 20, price_per_1k = "350.00" }}, {{ up_to = "inf", price_per_1k = "200.00" }} ]
price_per_gb_out = "0.09"

[plans.starter]
base_fee = "19.00"
included_requests = 100
price_per_1k_requests = "1.25"

[[customers]]
id = "cus_acme"
name = "Acme Corp"
plan = "pro"
keys = ["{KEY_A}", "sha256:{}"]
stripe_customer_id = "cus_N1"
lago_subscription_id = "sub_acme"

[[customers]]
id = "cus_evil"
name = "=HYPERLINK(\"http://x\",\"y\")"
plan = "starter"
keys = ["{KEY_C}"]
stripe_customer_id = "cus_N2"
lago_subscription_id = "sub_evil"

[[customers]]
id = "cus_idle"
name = "@Idle, Inc."
plan = "starter"
keys = []
stripe_customer_id = "cus_N3"
lago_subscription_id = "sub_idle"
"#,
        sha256_hex(KEY_B)
    )
}

pub(crate) struct Setup {
    _dir: tempfile::TempDir,
    pub(crate) logs: String,
    pub(crate) lake: String,
    pub(crate) plans: String,
    pub(crate) out: std::path::PathBuf,
}

/// A lake of `october`'s requests, and `plans_toml` written beside it.
pub(crate) async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    october(&logs);
    let plans = dir.path().join("plans.toml");
    std::fs::write(&plans, plans_toml()).unwrap();
    let s = Setup {
        logs: logs.to_str().unwrap().into(),
        lake: dir.path().join("lake").to_str().unwrap().into(),
        plans: plans.to_str().unwrap().into(),
        out: dir.path().join("out"),
        _dir: dir,
    };
    let run = ingest(&[], &s.logs, &s.lake, &["--quiet"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    s
}

async fn export(s: &Setup, format: &str, output: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "export",
        "--lake",
        &s.lake,
        "--period",
        "2025-10",
        "--plans",
        &s.plans,
        "--format",
        format,
        "--output",
        output.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    edgemeter(&[], &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoice_lines_are_priced_exactly_and_safe_to_open() {
    let s = setup().await;
    let csv_path = s.out.join("2025-10.csv");
    let run = export(&s, "csv", &csv_path, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        header.join(","),
        "period,customer_id,customer_name,plan,api_key_ids,requests,billable_requests,client_errors,server_errors,bytes_out,bytes_in,included_requests,overage_requests,base_fee,request_charge,bandwidth_charge,total,currency,status"
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    let acme_keys = {
        let mut ids = [sha256_hex(KEY_A), sha256_hex(KEY_B)];
        ids.sort();
        ids.join(";")
    };
    // Acme: 40 + 10 = 50 billable (the two requests outside October excluded),
    // 60 requests, 5 client and 3 server errors; 40 × 100 MB + 10 × 50 MB = 4.5 GB.
    // Overage 50 − 10 = 40: 20 × 0.35 + 20 × 0.20 = 11.00; 4.5 GB × 0.09 = 0.405 → 0.41.
    // Total 99.00 + 11.00 + 0.41 = 110.41.
    let acme = &rows[0];
    assert_eq!(
        acme[..],
        [
            "2025-10",
            "cus_acme",
            "Acme Corp",
            "pro",
            &acme_keys,
            "60",
            "50",
            "5",
            "3",
            "4500000000",
            "600",
            "10",
            "40",
            "99.00",
            "11.00",
            "0.41",
            "110.41",
            "USD",
            "final"
        ]
    );
    // Evil: 150 billable, 100 included, 50 × 1.25 / 1000 = 0.0625 → 0.06; its
    // formula-shaped name is neutralised.
    let evil = &rows[1];
    assert_eq!(evil[1..3], ["cus_evil", "'=HYPERLINK(\"http://x\",\"y\")"]);
    assert_eq!(
        evil[5..17],
        [
            "150", "150", "0", "0", "0", "1500", "100", "50", "19.00", "0.06", "0.00", "19.06"
        ]
    );
    // Idle: base fee only.
    assert_eq!(rows[2][1..3], ["cus_idle", "'@Idle, Inc."]);
    assert_eq!(
        rows[2][5..17],
        [
            "0", "0", "0", "0", "0", "0", "100", "0", "19.00", "0.00", "0.00", "19.00"
        ]
    );
    // Seen but unbilled: key D, then requests without a key.
    assert_eq!(rows[3][1..7], ["", "", "", &sha256_hex(KEY_D), "7", "7"]);
    assert_eq!(rows[3][9], "7000");
    assert_eq!(rows[4][1..7], ["", "", "", "", "4", "4"]);
    assert_eq!(rows.len(), 5);
    assert!(text.contains("\r\n"), "RFC 4180 line ends");

    // The same period exported again is byte-identical, in every format.
    for format in ["csv", "jsonl", "parquet"] {
        let a = s.out.join(format!("a.{format}"));
        let b = s.out.join(format!("b.{format}"));
        assert_eq!(export(&s, format, &a, &[]).await.code, 0);
        assert_eq!(export(&s, format, &b, &[]).await.code, 0);
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "{format}"
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.out.join("2025-10.csv.manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["period"], "2025-10");
    assert_eq!(manifest["inputs"].as_array().unwrap().len(), 1);
    assert_eq!(manifest["plans_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(manifest["query"], "usage_by_key_status");
    // The running month is provisional until its end plus the grace hours.
    let this_month = chrono::Utc::now().format("%Y-%m").to_string();
    let current = s.out.join("current.csv");
    let run = edgemeter(
        &[],
        &[
            "export",
            "--lake",
            &s.lake,
            "--period",
            &this_month,
            "--plans",
            &s.plans,
            "--output",
            current.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(&current).unwrap();
    assert_eq!(text.lines().count(), 4, "three customers, no usage: {text}");
    assert!(
        text.lines()
            .skip(1)
            .all(|l| l.ends_with(",USD,provisional")),
        "{text}"
    );
    let jsonl = std::fs::read_to_string(s.out.join("a.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["total"].as_str(), first["billable_requests"].as_u64()),
        (Some("110.41"), Some(50))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_in_a_time_zone_and_billing_system_formats() {
    let s = setup().await;
    // In Europe/Berlin, October 2025 is [Sep 30 22:00Z, Oct 31 23:00Z): the
    // request of Sep 30 23:59:59Z counts, the one of Oct 31 23:59:59Z does not.
    let out = s.out.join("berlin.csv");
    let run = export(&s, "csv", &out, &["--tz", "Europe/Berlin"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    let acme: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
    // Billable stays 50 (one in, one out); bytes: 4.5 GB − 100 MB + 1 byte.
    assert_eq!((acme[6], acme[9]), ("50", "4400000001"), "{text}");

    // Stripe takes meter events of the past 35 days only: October 2025 is refused,
    // and nothing is written.
    let stripe = s.out.join("stripe.jsonl");
    let run = export(&s, "stripe", &stripe, &[]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("35 days"), "{}", run.stderr);
    assert!(!stripe.exists());

    let lago = s.out.join("lago.json");
    let run = export(&s, "lago", &lago, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let body: serde_json::Value = serde_json::from_slice(&std::fs::read(&lago).unwrap()).unwrap();
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 6, "3 customers × 2 meters");
    assert_eq!(events[0]["external_subscription_id"], "sub_acme");
    assert_eq!(events[0]["code"], "billable_requests");
    assert_eq!(events[0]["properties"]["value"], "50");
    assert_eq!(events[1]["properties"]["value"], "4500000000");
    // 2025-10-31T23:59:59Z
    assert_eq!(events[0]["timestamp"], 1_761_955_199);
    let again = s.out.join("lago-again.json");
    export(&s, "lago", &again, &[]).await;
    let body2: serde_json::Value = serde_json::from_slice(&std::fs::read(&again).unwrap()).unwrap();
    assert_eq!(
        body["events"], body2["events"],
        "idempotency ids are deterministic"
    );

    let om = s.out.join("openmeter.json");
    assert_eq!(export(&s, "openmeter", &om, &[]).await.code, 0);
    let events: serde_json::Value = serde_json::from_slice(&std::fs::read(&om).unwrap()).unwrap();
    assert_eq!(events[0]["specversion"], "1.0");
    assert_eq!(events[0]["subject"], "cus_acme");
    assert_eq!(events[0]["data"]["billable_requests"], 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_data_is_restated_on_re_export() {
    let s = setup().await;
    let out = s.out.join("first.csv");
    assert_eq!(export(&s, "csv", &out, &[]).await.code, 0);
    // A late file adds 5 billable requests for key C in October.
    let late: Vec<Req> = (0..5)
        .map(|i| {
            req(
                "2025-10-30",
                &format!("09:00:{i:02}"),
                Some(KEY_C),
                "200",
                0,
                &format!("late-{i}"),
            )
        })
        .collect();
    std::fs::write(
        Path::new(&s.logs).join("E2BILL.2025-10-30-09.late"),
        log_text(&late),
    )
    .unwrap();
    let run = ingest(&[], &s.logs, &s.lake, &["--since", "2025-10-01", "--quiet"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = export(&s, "csv", &s.out.join("second.csv"), &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // 155 billable: 55 overage × 1.25 / 1000 = 0.06875 → 0.07; total 19.07.
    assert!(
        run.stdout.contains("restated cus_evil")
            && run
                .stdout
                .contains("billable 150 -> 155, total 19.06 -> 19.07"),
        "{}",
        run.stdout
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.out.join("second.csv.manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["restatements"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_error_and_latency_alerts_fire_once_per_threshold() {
    let s = setup().await;
    // Key E (no customer): 10 requests on Oct 25, 2 of them 503, each taking 4 s.
    let e: Vec<Req> = (0..10)
        .map(|i| Req {
            time_taken: 4.0,
            ..req(
                "2025-10-25",
                &format!("07:00:{i:02}"),
                Some("ak_live_slow_00005"),
                if i < 2 { "503" } else { "200" },
                0,
                &format!("e-{i}"),
            )
        })
        .collect();
    std::fs::write(
        Path::new(&s.logs).join("E2BILL.2025-10-25-07.e"),
        log_text(&e),
    )
    .unwrap();
    let run = ingest(&[], &s.logs, &s.lake, &["--full-listing", "--quiet"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let check = |at: &'static str, url: String| {
        let (lake, plans) = (s.lake.clone(), s.plans.clone());
        async move {
            edgemeter(
                &[("EDGEMETER_ALERT_WEBHOOK", url)],
                &[
                    "check", "--lake", &lake, "--plans", &plans, "--at", at, "--json",
                ],
            )
            .await
        }
    };

    // A webhook that is down: the run fails and nothing is remembered as
    // sent; the URL's token is never printed.
    let run = check(
        "2025-10-31T12:00:00Z",
        "http://127.0.0.1:1/hook?token=hunter2-webhook-token".into(),
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("alert not delivered"), "{}", run.stderr);
    assert!(!run.stderr.contains("hunter2") && !run.stdout.contains("hunter2"));

    // A webhook that redirects is not followed (the redirect would be sent
    // to its own address again): one request reaches it, and it fails.
    let redirecting = Webhook::start_with_status(302).await;
    let run = check("2025-10-31T12:00:00Z", redirecting.url()).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("redirects are not followed"),
        "{}",
        run.stderr
    );
    assert_eq!(redirecting.texts().len(), 1);

    let hook = Webhook::start().await;
    // By Oct 31 12:00 Acme made 59 of its 60 monthly requests (98.3%: the 95%
    // threshold); key E had 20% 5xx and 4 s on average. Two checks run at
    // once: each alert is sent once.
    let (run, other) = tokio::join!(
        check("2025-10-31T12:00:00Z", hook.url()),
        check("2025-10-31T12:00:00Z", hook.url())
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(other.code, 0, "{}", other.stderr);
    let mut texts = hook.texts();
    texts.sort_by_key(|t| (!t.contains("cus_acme"), !t.contains("5xx")));
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(
        texts[0].contains("cus_acme")
            && texts[0].contains("98.3%")
            && texts[0].contains("threshold 95%"),
        "{texts:?}"
    );
    assert!(texts[1].contains("20.0% 5xx"), "{texts:?}");
    assert!(texts[2].contains("4.00 s"), "{texts:?}");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["quotas"][0]["month_requests"], 59);
    let other: serde_json::Value = serde_json::from_str(&other.stdout).unwrap();
    assert_eq!(
        report["alerts"].as_array().unwrap().len() + other["alerts"].as_array().unwrap().len(),
        3,
        "each alert is reported by the check that sent it"
    );

    // Checking again sends nothing new.
    let run = check("2025-10-31T12:00:00Z", hook.url()).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(hook.texts().len(), 3);
    // The last request of October takes Acme to 100%: a new threshold, one new alert.
    let run = check("2025-10-31T23:59:59.500Z", hook.url()).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let texts = hook.texts();
    assert_eq!(texts.len(), 4, "{texts:?}");
    assert!(
        texts[3].contains("100.0%") && texts[3].contains("threshold 100%"),
        "{texts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lago_batches_hold_at_most_100_events() {
    let s = setup().await;
    // 51 customers × 2 meters = 102 events: files of 100 and 2.
    let mut plans = String::from("[billing]\ncurrency = \"USD\"\n[plans.p]\nbase_fee = \"1.00\"\n");
    for i in 0..51 {
        plans.push_str(&format!("[[customers]]\nid = \"cus_{i:02}\"\nplan = \"p\"\nlago_subscription_id = \"sub_{i:02}\"\n"));
    }
    let path = s.out.join("many.toml");
    std::fs::create_dir_all(&s.out).unwrap();
    std::fs::write(&path, plans).unwrap();
    let out = s.out.join("lago.json");
    let run = edgemeter(
        &[],
        &[
            "export",
            "--lake",
            &s.lake,
            "--period",
            "2025-10",
            "--plans",
            path.to_str().unwrap(),
            "--format",
            "lago",
            "--output",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let count = |name: &str| {
        let body: serde_json::Value =
            serde_json::from_slice(&std::fs::read(s.out.join(name)).unwrap()).unwrap();
        body["events"].as_array().unwrap().len()
    };
    assert_eq!((count("lago-0001.json"), count("lago-0002.json")), (100, 2));
    assert!(!out.exists(), "split batches are numbered");
}

/// Exports October 2025 to Stripe's format in-process, as of `now`.
async fn stripe_as_of(
    s: &Setup,
    now: &str,
) -> edgemeter::Result<(serde_json::Value, Vec<serde_json::Value>)> {
    use edgemeter::export::{ExportOptions, export_with_clock};
    let out = s.out.join(format!("stripe-{now}.jsonl"));
    let options = ExportOptions::try_new(
        &s.lake,
        "2025-10",
        &s.plans,
        "stripe",
        out.to_str().unwrap(),
    )?;
    let clock = edgemeter::time::FixedClock(now.parse().unwrap());
    let report = serde_json::to_value(export_with_clock(&options, &clock).await?).unwrap();
    let events = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Ok((report, events))
}

/// Stripe's success path, with the clock fixed: the meter events of October
/// 2025 as Stripe takes them while the month is at most 35 days past.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_takes_a_recent_period_as_of_a_fixed_clock() {
    use sha2::{Digest, Sha256};
    let s = setup().await;
    // Half a day after October, inside the 24 grace hours: provisional, no warning.
    let (report, events) = stripe_as_of(&s, "2025-11-01T12:00:00Z").await.unwrap();
    assert_eq!(
        (&report["status"], &report["events"], &report["warnings"]),
        (
            &serde_json::json!("provisional"),
            &serde_json::json!(6),
            &serde_json::json!([]),
        ),
        "{report}"
    );
    // Customers by id, two meters each: Acme's keys A and B (40 + 10 2xx;
    // 40 × 100 MB + 10 × 50 MB out), Evil's key C (150 × 200, no bytes),
    // Idle (none). Key D and the keyless requests bill no customer.
    let want = [
        ("cus_acme", "cus_N1", "billable_requests", "50"),
        ("cus_acme", "cus_N1", "bytes_out", "4500000000"),
        ("cus_evil", "cus_N2", "billable_requests", "150"),
        ("cus_evil", "cus_N2", "bytes_out", "0"),
        ("cus_idle", "cus_N3", "billable_requests", "0"),
        ("cus_idle", "cus_N3", "bytes_out", "0"),
    ];
    assert_eq!(events.len(), want.len());
    for (event, (customer, stripe_id, meter, value)) in events.iter().zip(want) {
        let digest = Sha256::digest(format!("{customer}\u{1f}2025-10\u{1f}{meter}").as_bytes());
        let identifier = format!("edgemeter-{}", &sha256_hex_of(&digest)[..40]);
        assert_eq!(
            event,
            &serde_json::json!({
                "event_name": format!("edgemeter_{meter}"),
                // 2025-10-31T23:59:59Z, the month's last second.
                "timestamp": 1_761_955_199,
                "identifier": identifier,
                "payload": {"stripe_customer_id": stripe_id, "value": value},
            })
        );
    }

    // While October runs, its events are stamped now.
    let (_, events) = stripe_as_of(&s, "2025-10-20T08:00:00Z").await.unwrap();
    assert_eq!(events[0]["timestamp"], 1_760_947_200);

    // The last instant Stripe takes the month: its last second + 35 days,
    // 2025-12-05T23:59:59Z. Past the grace period, and with no ingest run
    // recorded by then (the one run started at the wall clock, later), it is
    // not final.
    let (report, events) = stripe_as_of(&s, "2025-12-05T23:59:59Z").await.unwrap();
    assert_eq!(events.len(), 6);
    assert_eq!(report["status"], "provisional");
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("no record of any ingest run"),
        "{warnings}"
    );
    // One second later Stripe would refuse the events: none are written.
    let late = stripe_as_of(&s, "2025-12-06T00:00:00Z").await.unwrap_err();
    assert!(late.to_string().contains("35 days"), "{late}");
    assert!(!s.out.join("stripe-2025-12-06T00:00:00Z.jsonl").exists());
}

fn sha256_hex_of(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
