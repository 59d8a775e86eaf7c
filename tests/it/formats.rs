//! Every log kind a user may have — standard v2 (w3c with epoch timestamps,
//! JSON lines, Parquet, in AWSLogs and Hive-style paths), real-time records —
//! and keys from headers, cookies and log data, with exact per-key totals.

use crate::cli::{edgemeter, ingest, query_csv, summary, usage};
use crate::logs::{gzip, sha256_hex};
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use std::path::Path;
use std::sync::Arc;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cloudfront");

/// The 44 fields of the real 2025 record, shuffled: the program orders them canonically.
const REALTIME_FIELDS: &str = "asn,cs-headers,sc-status,timestamp,c-ip,s-ip,time-to-first-byte,sc-bytes,cs-method,cs-protocol,cs-host,cs-uri-stem,cs-bytes,x-edge-location,x-edge-request-id,x-host-header,time-taken,cs-protocol-version,c-ip-version,cs-user-agent,cs-referer,cs-cookie,cs-uri-query,x-edge-response-result-type,x-forwarded-for,ssl-protocol,ssl-cipher,x-edge-result-type,fle-encrypted-fields,fle-status,sc-content-type,sc-content-len,sc-range-start,sc-range-end,c-port,x-edge-detailed-result-type,c-country,cs-accept-encoding,cs-accept,cache-behavior-path-pattern,cs-header-names,cs-headers-count,origin-fbl,origin-lbl";

fn put(root: &Path, relative: &str, bytes: Vec<u8>) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_time_records_with_the_key_in_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    // Firehose names: …/YYYY/MM/DD/HH/<stream>-<n>-YYYY-MM-DD-HH-MM-SS-<uuid>.gz
    let record = std::fs::read(Path::new(FIXTURES).join("realtime-2025-44.log")).unwrap();
    put(
        &logs,
        "rt/2025/10/05/18/edge-1-2025-10-05-18-00-34-0b7c.gz",
        gzip(&String::from_utf8(record).unwrap()),
    );
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    let source = logs.to_str().unwrap();

    // Without --format realtime, a headerless record is refused, not mis-parsed.
    let other_lake = dir.path().join("other");
    let run = ingest(&[], source, other_lake.to_str().unwrap(), &["--json"]).await;
    assert_eq!(run.code, 3);
    assert_eq!(summary(&run)["rows_written"], 0);

    let run = ingest(
        &[],
        source,
        lake,
        &[
            "--format",
            "realtime",
            "--fields",
            REALTIME_FIELDS,
            "--json",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run)["rows_written"], 1);
    let got = usage(&[], lake, &[]).await;
    let id = sha256_hex("EXAMPLEKEYEXAMPLEKEYEXAMPLEKEYEXAMPLEKEY");
    let t = &got[&id];
    // The real record: 200, 783 bytes out, 201 in, at 1759687234.191 (2025-10-05T18:00:34.191Z).
    assert_eq!(
        (
            t.requests,
            t.billable,
            t.bytes_out,
            t.bytes_in,
            t.hint.as_str()
        ),
        (1, 1, 783, 201, "EKEY")
    );
    let stored = query_csv(
        &[],
        lake,
        "SELECT timestamp, s_ip, c_country, asn, cs_headers FROM requests",
    )
    .await;
    assert!(
        stored.contains("2025-10-05T18:00:34.191Z,65.8.177.136,US,7018,"),
        "{stored}"
    );
    assert!(stored.contains("X-Api-Key:REDACTED%0A"), "{stored}");
    assert!(!stored.contains("EXAMPLEKEY"), "{stored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_v2_json_parquet_and_w3c_in_both_path_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    // JSON lines (AWSLogs layout), key in viewer-request-log-data; one line
    // keyless and one malformed.
    let json_line = |ms: u64, id: &str, status: &str, log_data: &str| {
        serde_json::json!({
            "timestamp(ms)": ms.to_string(), "c-ip": "32.142.164.10", "sc-status": status,
            "sc-bytes": "611", "cs-method": "POST", "cs-uri-stem": "/data", "cs-uri-query": "test=123",
            "x-edge-request-id": id, "cs-bytes": "104", "time-taken": "0.133",
            "viewer-request-log-data": log_data, "c-country": "US", "asn": "7018",
        })
        .to_string()
    };
    let json = [
        json_line(
            1_759_626_381_000,
            "j1",
            "200",
            "api_key=ld_key_000001&plan=pro",
        ),
        json_line(1_759_626_382_000, "j2", "503", "api_key=ld_key_000001"),
        json_line(1_759_626_383_000, "j3", "200", "-"),
        "{not json".to_string(),
    ]
    .join("\n");
    put(
        &logs,
        "AWSLogs/123456789012/CloudFront/E2V2/2025/10/05/01/E2V2.2025-10-05-01.a1.gz",
        gzip(&json),
    );

    // Parquet (Hive layout), snake_case columns, key in a cookie.
    let col = |v: &[Option<&str>]| Arc::new(StringArray::from(v.to_vec())) as _;
    let names = [
        "date",
        "time",
        "sc_status",
        "sc_bytes",
        "cs_cookie",
        "x_edge_request_id",
        "cs_uri_query",
    ];
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            col(&[Some("2025-10-05"), Some("2025-10-05")]),
            col(&[Some("02:00:00"), Some("02:00:01")]),
            col(&[Some("200"), Some("404")]),
            col(&[Some("1000"), None]),
            col(&[
                Some("theme=dark;%20ak=ck_key_0000002"),
                Some("ak=ck_key_0000002"),
            ]),
            col(&[Some("p1"), Some("p2")]),
            col(&[None, Some("-")]),
        ],
    )
    .unwrap();
    let mut parquet = Vec::new();
    let mut w =
        datafusion::parquet::arrow::ArrowWriter::try_new(&mut parquet, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    put(
        &logs,
        "v2/DistributionId=E2V2/year=2025/month=10/day=05/hour=02/part-1.parquet",
        parquet,
    );

    // v2 w3c with an epoch `timestamp` and selected fields in the user's order.
    let w3c = "#Version: 1.0\n#Fields: sc-status timestamp cs-uri-query x-edge-request-id sc-bytes\n200\t1759633200.5\tapi_key=q_key_000003\tw1\t7\n";
    put(&logs, "w3c/E2V2.2025-10-05-03.w.gz", gzip(w3c));
    // Not a log at all: named like one (unreadable, retried), and not (skipped).
    put(
        &logs,
        "E2V2.2025-10-05-04.junk.gz",
        vec![0u8, 159, 146, 150, 7, 7, 7],
    );
    put(&logs, "junk.bin", vec![0u8, 159, 146, 150, 7, 7, 7]);

    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    let run = edgemeter(
        &[],
        &[
            "ingest",
            "--source",
            logs.to_str().unwrap(),
            "--lake",
            lake,
            "--key-from",
            "query:api_key",
            "--key-from",
            "cookie:ak",
            "--key-from",
            "log-data:api_key",
            "--json",
        ],
    )
    .await;
    assert_eq!(run.code, 3, "the junk .gz is unreadable: {}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["objects_unreadable"], 1);
    assert!(
        s["unreadable"][0]["object"]
            .as_str()
            .unwrap()
            .ends_with("E2V2.2025-10-05-04.junk.gz")
    );
    assert_eq!(s["objects_not_logs"], 1);
    assert!(
        s["not_logs"][0]["object"]
            .as_str()
            .unwrap()
            .ends_with("/junk.bin")
    );
    assert_eq!(s["rows_written"], 3 + 2 + 1);
    assert_eq!(s["bad_lines"], 1);
    assert_eq!(s["bad_line_samples"][0]["line"], 4);

    let got = usage(&[], lake, &[]).await;
    let t = &got[&sha256_hex("ld_key_000001")];
    assert_eq!(
        (
            t.requests,
            t.billable,
            t.server_errors,
            t.bytes_out,
            t.bytes_in
        ),
        (2, 1, 1, 1222, 208)
    );
    let t = &got[&sha256_hex("ck_key_0000002")];
    assert_eq!(
        (t.requests, t.billable, t.client_errors, t.bytes_out),
        (2, 1, 1, 1000)
    );
    let t = &got[&sha256_hex("q_key_000003")];
    assert_eq!((t.requests, t.bytes_out), (1, 7));
    assert_eq!(got[""].requests, 1, "the keyless JSON line");

    let stored = query_csv(
        &[],
        lake,
        "SELECT timestamp, cs_cookie, viewer_request_log_data FROM requests ORDER BY timestamp",
    )
    .await;
    for raw in ["ld_key_000001", "ck_key_0000002"] {
        assert!(!stored.contains(raw), "{raw} stored: {stored}");
    }
    assert!(stored.contains("theme=dark;%20ak=REDACTED"), "{stored}");
    assert!(stored.contains("api_key=REDACTED&plan=pro"), "{stored}");
    // 1759633200.5 s is 2025-10-05T03:00:00.500Z.
    assert!(stored.contains("2025-10-05T03:00:00.500Z"), "{stored}");
}
