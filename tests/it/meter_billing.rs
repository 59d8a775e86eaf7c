//! Meters on invoices: charges per meter priced to the cent, their columns in
//! csv/jsonl/parquet and their billing-system events. Quantities are counted
//! from the raw log lines with awk; the charges are worked out by hand in
//! the comments.

use crate::cli::{edgemeter, ingest};
use std::collections::BTreeMap;
use std::path::Path;

const ACME: &str = "ak_live_acme_7f3k2";
const GLOBEX: &str = "ak_live_globex_99qz";
const INITECH: &str = "ak_test_initech_0001";

const PLANS: &str = r#"
[billing]
currency = "USD"

[meters.search_calls]
aggregation = "count"
filter = { endpoint = "/v1/search*", status = "2xx" }
stripe_event_name = "search_calls_v2"
lago_code = "search"
openmeter_type = "com.example.search"

[meters.active_clients]
aggregation = "unique_count"
value = "c_ip"

[meters.report_bytes]
aggregation = "sum"
value = "sc_bytes"
filter = { endpoint = "/v1/reports/*", method = "GET" }

[plans.pro]
base_fee = "10.00"
price_per_1k_requests = "1.00"

[plans.pro.charges.search_calls]
included = 5
package = { size = 3, price = "2.00" }

[plans.pro.charges.report_bytes]
tiers = [ { up_to = 100000, price_per_unit = "0.00001" }, { up_to = "inf", price_per_unit = "0.000005" } ]

[plans.basic]
base_fee = "5.00"

[plans.basic.charges.search_calls]
price_per_unit = "0.015"

[plans.basic.charges.active_clients]
included = 50
price_per_unit = "0.10"

[[customers]]
id = "cus_acme"
name = "Acme"
plan = "pro"
keys = ["ak_live_acme_7f3k2"]
stripe_customer_id = "cus_S1"
lago_subscription_id = "sub_acme"

[[customers]]
id = "cus_globex"
name = "Globex"
plan = "basic"
keys = ["ak_live_globex_99qz", "ak_test_initech_0001"]
stripe_customer_id = "cus_S2"
lago_subscription_id = "sub_globex"
"#;

/// Per raw key (`-` for none): billable (2xx) requests, 2xx calls to
/// /v1/search, bytes sent for GET /v1/reports/<one segment>, and all bytes
/// sent, counted by awk over the example logs.
fn counted_by_awk() -> BTreeMap<String, (u64, u64, u64, u64)> {
    let script = r#"zcat "$1"/*.gz | awk -F'\t' '!/^#/ {
        key = "-"
        if (match($12, /api_key=[^&]*/)) key = substr($12, RSTART + 8, RLENGTH - 8)
        seen[key] = 1
        if ($9 >= 200 && $9 < 300) billable[key]++
        if ($8 == "/v1/search" && $9 >= 200 && $9 < 300) search[key]++
        if ($8 ~ /^\/v1\/reports\/[^\/]+$/ && $6 == "GET") bytes[key] += $4
        out[key] += $4
    } END { for (k in seen) print k, billable[k] + 0, search[k] + 0, bytes[k] + 0, out[k] + 0 }'"#;
    let logs = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/logs");
    let out = std::process::Command::new("sh")
        .args(["-c", script, "sh", logs])
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            let n = |i: usize| f[i].parse::<u64>().unwrap();
            (f[0].to_string(), (n(1), n(2), n(3), n(4)))
        })
        .collect()
}

/// Distinct client IPs of the requests whose raw key is one of `keys` (`-`
/// for requests without a key), counted by awk over the example logs.
fn distinct_clients_by_awk(keys: &str) -> u64 {
    let script = r#"zcat "$1"/*.gz | awk -F'\t' -v keys="$2" 'BEGIN { split(keys, k, " "); for (i in k) wanted[k[i]] = 1 }
        !/^#/ {
            key = "-"
            if (match($12, /api_key=[^&]*/)) key = substr($12, RSTART + 8, RLENGTH - 8)
            if ((key in wanted) && !(($5) in seen)) { seen[$5] = 1; n++ }
        } END { print n + 0 }'"#;
    let logs = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/logs");
    let out = std::process::Command::new("sh")
        .args(["-c", script, "sh", logs, keys])
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

struct Lake {
    dir: tempfile::TempDir,
    lake: String,
    plans: String,
}

async fn lake() -> Lake {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake").to_str().unwrap().to_string();
    let logs = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/logs");
    let run = ingest(&[], logs, &lake, &["--quiet"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plans = dir.path().join("plans.toml");
    std::fs::write(&plans, PLANS).unwrap();
    Lake {
        plans: plans.to_str().unwrap().to_string(),
        lake,
        dir,
    }
}

async fn export(l: &Lake, format: &str, output: &Path) {
    let run = edgemeter(
        &[],
        &[
            "export",
            "--lake",
            &l.lake,
            "--period",
            "2025-10",
            "--plans",
            &l.plans,
            "--format",
            format,
            "--output",
            output.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Two meters charged by two plans: their quantity and charge columns in
/// csv, jsonl and parquet (sorted by slug: report_bytes, then search_calls),
/// and the totals that include them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meters_are_priced_on_invoice_lines_in_every_format() {
    let counts = counted_by_awk();
    // What awk counts, for the arithmetic below.
    assert_eq!(counts[ACME], (80, 13, 169_036, 1_282_906));
    assert_eq!(counts[GLOBEX], (106, 32, 237_710, 1_653_828));
    assert_eq!(counts[INITECH], (94, 29, 171_932, 1_672_569));
    assert_eq!(counts["-"], (88, 14, 252_220, 1_484_195));
    // Distinct clients: Globex's two keys share some, so its count is less
    // than the sum of each key's (128 + 124 = 252).
    let clients = |keys: &str| distinct_clients_by_awk(keys);
    assert_eq!(clients(ACME), 108);
    assert_eq!((clients(GLOBEX), clients(INITECH)), (128, 124));
    assert_eq!(clients(&format!("{GLOBEX} {INITECH}")), 201);
    assert_eq!(clients("-"), 129);
    let l = lake().await;

    let csv_path = l.dir.path().join("out.csv");
    export(&l, "csv", &csv_path).await;
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header[13..],
        [
            "base_fee",
            "request_charge",
            "bandwidth_charge",
            "active_clients_quantity",
            "active_clients_charge",
            "report_bytes_quantity",
            "report_bytes_charge",
            "search_calls_quantity",
            "search_calls_charge",
            "total",
            "currency",
            "status",
        ]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    let acme = counts[ACME];
    // Acme (pro): 10.00 base; 80 billable × 1.00 / 1000 = 0.08;
    // active_clients measured, not charged by its plan;
    // report_bytes 169,036: 100,000 × 0.00001 = 1.00, then 69,036 × 0.000005
    // = 0.34518, together 1.34518 → 1.35;
    // search_calls 13 − 5 included = 8 → ceil(8 / 3) = 3 packages × 2.00 = 6.00;
    // total 10.00 + 0.08 + 0.00 + 0.00 + 1.35 + 6.00 = 17.43.
    assert_eq!(rows[0][1], "cus_acme");
    assert_eq!(rows[0][6], acme.0.to_string());
    assert_eq!(
        rows[0][13..23],
        [
            "10.00", "0.08", "0.00", "108", "0.00", "169036", "1.35", "13", "6.00", "17.43"
        ]
    );
    // Globex (basic) with Initech's key too: billable 106 + 94 = 200, unpriced;
    // 5.00 base; active_clients 201 distinct over both keys − 50 included
    // = 151 × 0.10 = 15.10; report_bytes 237,710 + 171,932 = 409,642, not
    // charged by its plan; search_calls 32 + 29 = 61 × 0.015 = 0.915 → 0.92
    // (half up); total 5.00 + 15.10 + 0.92 = 21.02.
    let (globex, initech) = (counts[GLOBEX], counts[INITECH]);
    assert_eq!(
        (
            globex.0 + initech.0,
            globex.1 + initech.1,
            globex.2 + initech.2
        ),
        (200, 61, 409_642)
    );
    assert_eq!(rows[1][1], "cus_globex");
    assert_eq!(rows[1][6], "200");
    assert_eq!(
        rows[1][13..23],
        [
            "5.00", "0.00", "0.00", "201", "15.10", "409642", "0.00", "61", "0.92", "21.02"
        ]
    );
    // Requests without a key: quantities shown, nothing charged.
    assert_eq!((rows[2][1].as_str(), rows[2][4].as_str()), ("", ""));
    assert_eq!(
        rows[2][16..23],
        ["129", "0.00", "252220", "0.00", "14", "0.00", "0.00"]
    );
    assert_eq!(counts["-"].1, 14);
    assert_eq!(rows.len(), 3);
    assert!(
        !text.contains(ACME) && !text.contains(INITECH),
        "no raw key"
    );

    // JSON lines: quantities as decimal text, money as 2-digit text.
    let jsonl_path = l.dir.path().join("out.jsonl");
    export(&l, "jsonl", &jsonl_path).await;
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&jsonl_path)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["search_calls_quantity"], "13");
    assert_eq!(first["search_calls_charge"], "6.00");
    assert_eq!(first["report_bytes_quantity"], "169036");
    assert_eq!(first["report_bytes_charge"], "1.35");
    assert_eq!(first["total"], "17.43");

    // Parquet: quantities DECIMAL(38,6) (nullable: max/min/avg of nothing),
    // money DECIMAL(20,2).
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{DataType, Decimal128Type};
    let parquet_path = l.dir.path().join("out.parquet");
    export(&l, "parquet", &parquet_path).await;
    let file = std::fs::File::open(&parquet_path).unwrap();
    let batches: Vec<_> =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let batch = &batches[0];
    let schema = batch.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, header.iter().map(String::as_str).collect::<Vec<_>>());
    let quantity = schema.field_with_name("search_calls_quantity").unwrap();
    assert_eq!(quantity.data_type(), &DataType::Decimal128(38, 6));
    assert!(quantity.is_nullable());
    let charge = schema.field_with_name("search_calls_charge").unwrap();
    assert_eq!(charge.data_type(), &DataType::Decimal128(20, 2));
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .unwrap()
            .as_primitive::<Decimal128Type>()
            .clone()
    };
    // Quantities at scale 6 (13, 409,642, 201); charges and totals in cents.
    assert_eq!(column("search_calls_quantity").value(0), 13_000_000);
    assert_eq!(column("report_bytes_quantity").value(1), 409_642_000_000);
    assert_eq!(column("active_clients_quantity").value(1), 201_000_000);
    assert_eq!(column("search_calls_charge").value(0), 600);
    assert_eq!(column("report_bytes_charge").value(0), 135);
    assert_eq!(column("active_clients_charge").value(1), 1510);
    assert_eq!(column("search_calls_charge").value(1), 92);
    assert_eq!(column("total").value(0), 1743);
    assert_eq!(column("total").value(1), 2102);
    assert_eq!(column("total").len(), 3);
}

fn event_id(customer: &str, meter: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{customer}\u{1f}2025-10\u{1f}{meter}").as_bytes());
    format!("edgemeter-{}", &hex_of(&digest)[..40])
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Exports October 2025 in `format` in-process as of 2025-11-01 12:00 UTC
/// (Stripe takes events of the past 35 days), twice: the bytes must agree.
async fn events(l: &Lake, format: &str) -> Vec<u8> {
    use edgemeter::export::{ExportOptions, export_with_clock};
    let clock = edgemeter::time::FixedClock("2025-11-01T12:00:00Z".parse().unwrap());
    let mut outputs = Vec::new();
    for attempt in ["a", "b"] {
        let out = l.dir.path().join(format!("{format}-{attempt}.json"));
        let options =
            ExportOptions::try_new(&l.lake, "2025-10", &l.plans, format, out.to_str().unwrap())
                .unwrap();
        export_with_clock(&options, &clock).await.unwrap();
        outputs.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(
        outputs[0], outputs[1],
        "{format}: exported twice, identical"
    );
    outputs.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_systems_get_an_event_per_customer_and_charged_meter() {
    let counts = counted_by_awk();
    let (acme, g, i) = (counts[ACME], counts[GLOBEX], counts[INITECH]);
    // Globex owns its key and Initech's: billable, search calls, bytes out.
    let globex = (g.0 + i.0, g.1 + i.1, g.3 + i.3);
    let globex_clients = distinct_clients_by_awk(&format!("{GLOBEX} {INITECH}"));
    let l = lake().await;
    // Built-in meters keep the ids they always had; defined meters' slugs
    // are namespaced ("meters.<slug>").
    let search = |c: &str| event_id(c, "meters.search_calls");
    let reports = |c: &str| event_id(c, "meters.report_bytes");
    let clients = |c: &str| event_id(c, "meters.active_clients");

    let stripe: Vec<serde_json::Value> = String::from_utf8(events(&l, "stripe").await)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let got: Vec<(String, String, String, String)> = stripe
        .iter()
        .map(|e| {
            (
                e["event_name"].as_str().unwrap().to_string(),
                e["identifier"].as_str().unwrap().to_string(),
                e["payload"]["stripe_customer_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                e["payload"]["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let row = |name: &str, id: String, customer: &str, value: u64| {
        (
            name.to_string(),
            id,
            customer.to_string(),
            value.to_string(),
        )
    };
    // Each customer: billable requests and bytes out as always, then the
    // meters its plan charges, by slug (Acme: report_bytes, search_calls;
    // Globex: active_clients, search_calls).
    assert_eq!(
        got,
        [
            row(
                "edgemeter_billable_requests",
                event_id("cus_acme", "billable_requests"),
                "cus_S1",
                acme.0
            ),
            row(
                "edgemeter_bytes_out",
                event_id("cus_acme", "bytes_out"),
                "cus_S1",
                acme.3
            ),
            row(
                "edgemeter_report_bytes",
                reports("cus_acme"),
                "cus_S1",
                acme.2
            ),
            row("search_calls_v2", search("cus_acme"), "cus_S1", acme.1),
            row(
                "edgemeter_billable_requests",
                event_id("cus_globex", "billable_requests"),
                "cus_S2",
                globex.0
            ),
            row(
                "edgemeter_bytes_out",
                event_id("cus_globex", "bytes_out"),
                "cus_S2",
                globex.2
            ),
            row(
                "edgemeter_active_clients",
                clients("cus_globex"),
                "cus_S2",
                globex_clients
            ),
            row("search_calls_v2", search("cus_globex"), "cus_S2", globex.1),
        ]
    );

    let lago: serde_json::Value = serde_json::from_slice(&events(&l, "lago").await).unwrap();
    let got: Vec<(String, String, String, String)> = lago["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["code"].as_str().unwrap().to_string(),
                e["transaction_id"].as_str().unwrap().to_string(),
                e["external_subscription_id"].as_str().unwrap().to_string(),
                e["properties"]["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got[2..4],
        [
            row("report_bytes", reports("cus_acme"), "sub_acme", acme.2),
            row("search", search("cus_acme"), "sub_acme", acme.1),
        ]
    );
    assert_eq!(
        got[6..],
        [
            row(
                "active_clients",
                clients("cus_globex"),
                "sub_globex",
                globex_clients
            ),
            row("search", search("cus_globex"), "sub_globex", globex.1),
        ]
    );

    let openmeter: serde_json::Value =
        serde_json::from_slice(&events(&l, "openmeter").await).unwrap();
    let got: Vec<(String, String, String, serde_json::Value)> = openmeter
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["id"].as_str().unwrap().to_string(),
                e["subject"].as_str().unwrap().to_string(),
                e["data"]["value"].clone(),
            )
        })
        .collect();
    let text = |n: u64| serde_json::Value::from(n.to_string());
    assert_eq!(
        got,
        [
            (
                "api_usage".to_string(),
                event_id("cus_acme", "usage"),
                "cus_acme".to_string(),
                serde_json::Value::Null
            ),
            (
                "edgemeter_report_bytes".to_string(),
                reports("cus_acme"),
                "cus_acme".to_string(),
                text(acme.2)
            ),
            (
                "com.example.search".to_string(),
                search("cus_acme"),
                "cus_acme".to_string(),
                text(acme.1)
            ),
            (
                "api_usage".to_string(),
                event_id("cus_globex", "usage"),
                "cus_globex".to_string(),
                serde_json::Value::Null
            ),
            (
                "edgemeter_active_clients".to_string(),
                clients("cus_globex"),
                "cus_globex".to_string(),
                text(globex_clients)
            ),
            (
                "com.example.search".to_string(),
                search("cus_globex"),
                "cus_globex".to_string(),
                text(globex.1)
            ),
        ]
    );
    assert_eq!(openmeter[0]["data"]["billable_requests"], acme.0);
}

#[tokio::test]
async fn a_charge_for_an_undefined_meter_or_a_bad_event_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plans = dir.path().join("plans.toml");
    for (toml, names) in [
        (
            "[billing]\ncurrency = \"USD\"\n[plans.pro.charges.search_calls]\nprice_per_unit = \"0.01\"\n",
            [
                "plans.pro.charges.search_calls",
                "no meter named \"search_calls\"",
            ],
        ),
        (
            "[billing]\ncurrency = \"USD\"\n[meters.search_calls]\naggregation = \"count\"\nstripe_event_name = \"search calls\"\n",
            [
                "meters.search_calls",
                "stripe_event_name = \"search calls\"",
            ],
        ),
        (
            "[billing]\ncurrency = \"USD\"\n[meters.search_calls]\naggregation = \"count\"\nlago_code = \"\"\n",
            ["meters.search_calls", "lago_code = \"\""],
        ),
    ] {
        std::fs::write(&plans, toml).unwrap();
        let run = edgemeter(&[], &["meters", "--plans", plans.to_str().unwrap()]).await;
        assert_eq!(run.code, 2, "{toml}\n{}", run.stderr);
        for name in names {
            assert!(run.stderr.contains(name), "{name}: {}", run.stderr);
        }
    }
}
