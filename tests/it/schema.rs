//! The code's lake schema and the published files in `schemas/` agree.
//! `EDGEMETER_BLESS=1 cargo test schema` rewrites `schemas/*.schema.json`
//! from the code (the Athena DDL is edited by hand and only checked).

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use edgemeter::schema::{PARTITION_COLUMNS, requests_schema};

fn schema_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

fn arrow_name(ty: &DataType) -> &'static str {
    match ty {
        DataType::Utf8 => "Utf8",
        DataType::Int16 => "Int16",
        DataType::Int32 => "Int32",
        DataType::Int64 => "Int64",
        DataType::Float64 => "Float64",
        DataType::Timestamp(TimeUnit::Millisecond, Some(tz)) if tz.as_ref() == "UTC" => {
            "Timestamp(Millisecond, UTC)"
        }
        other => panic!("no published name for {other}"),
    }
}

/// Checks (or with `EDGEMETER_BLESS`, rewrites) `schemas/<table>.schema.json`.
fn check_published(table: &str, schema: &datafusion::arrow::datatypes::Schema) {
    let columns: Vec<serde_json::Value> = schema
        .fields()
        .iter()
        .map(|f| serde_json::json!({"name": f.name(), "type": arrow_name(f.data_type()), "nullable": f.is_nullable()}))
        .collect();
    let doc = serde_json::json!({
        "table": table,
        "location": format!("{table}/ (a Delta table: {table}/_delta_log/ lists its files, {table}/dt=YYYY-MM-DD/hour=HH/*.parquet)"),
        "partition_columns": PARTITION_COLUMNS.iter().map(|c| serde_json::json!({"name": c, "type": "Utf8"})).collect::<Vec<_>>(),
        "columns": columns,
    });
    let path = schema_dir().join(format!("{table}.schema.json"));
    let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    if std::env::var_os("EDGEMETER_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let published = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        published, text,
        "schemas/{table}.schema.json is stale (EDGEMETER_BLESS=1 regenerates it)"
    );
}

#[test]
fn rollup_schema_file_matches_the_code() {
    check_published("usage_hourly", &edgemeter::lake::rollup::rollup_schema());
}

#[test]
fn narrow_rollup_schema_file_matches_the_code() {
    check_published("usage_hourly_keys", &edgemeter::lake::rollup::keys_schema());
}

#[test]
fn arrow_schema_file_matches_the_code() {
    check_published("requests", &requests_schema());
}

/// Checks `schemas/<table>.athena.sql`: a Delta table at the table's
/// location, its columns left to the Delta log (whose schema is the code's,
/// as the independent reader of the delta tests sees).
fn check_athena_ddl(table: &str) {
    let ddl = std::fs::read_to_string(schema_dir().join(format!("{table}.athena.sql"))).unwrap();
    for wanted in [
        "CREATE DATABASE IF NOT EXISTS edgemeter;\n".to_string(),
        format!("CREATE EXTERNAL TABLE IF NOT EXISTS edgemeter.{table}\n"),
        format!("LOCATION 's3://YOUR-LAKE-BUCKET/lake/{table}/'"),
        "TBLPROPERTIES ('table_type' = 'DELTA');".to_string(),
    ] {
        assert!(ddl.contains(&wanted), "{table}.athena.sql lacks {wanted}");
    }
}

#[test]
fn athena_ddl_matches_the_code() {
    check_athena_ddl("requests");
    check_athena_ddl("usage_hourly");
    check_athena_ddl("usage_hourly_keys");
    // The Terraform module registers the same tables, in a Glue database
    // named as the DDL's (the module's default name).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let glue = std::fs::read_to_string(root.join("infra/terraform/glue.tf")).unwrap();
    assert!(glue.contains(r#"tables = ["requests", "usage_hourly", "usage_hourly_keys"]"#));
    assert!(glue.contains(r#"name = replace(var.name, "-", "_")"#));
    let variables = std::fs::read_to_string(root.join("infra/terraform/variables.tf")).unwrap();
    assert!(variables.contains(
        "variable \"name\" {\n  description = \"Prefix for every resource name.\"\n  type        = string\n  default     = \"edgemeter\""
    ));
}

/// The Athena queries of `schemas/athena_queries.sql`, run as written over
/// the lake's Delta tables (DuckDB over the Python `deltalake` reader, in
/// place of Athena over Glue), give `edgemeter usage`'s numbers for the
/// month, and those are the counts of the example logs' own lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_athena_queries_give_the_usage_numbers() {
    use crate::logs::example_lines;
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/logs");
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let run = crate::cli::ingest(&[], examples, lake, &["--full-listing"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let usage = crate::cli::usage(&[], lake, &["--from", "2025-10-01", "--to", "2025-11-01"]).await;
    // Independently: the example lines counted here.
    let mut counted: std::collections::BTreeMap<String, (i64, i64, i64)> = Default::default();
    for line in example_lines() {
        let entry = counted.entry(line.key_id()).or_default();
        entry.0 += 1;
        entry.1 += i64::from((200..300).contains(&line.status));
        entry.2 += line.sc_bytes;
    }
    let from_usage: std::collections::BTreeMap<String, (i64, i64, i64)> = usage
        .iter()
        .map(|(k, t)| (k.clone(), (t.requests, t.billable, t.bytes_out)))
        .collect();
    assert_eq!(from_usage, counted);
    let reader = crate::delta::ensure_python_reader();
    let duckdb = crate::meters::ensure_duckdb();
    let path = std::env::join_paths([reader, duckdb.as_path()]).unwrap();
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/readers/athena_queries.py"
        ))
        .arg(lake)
        .arg(schema_dir().join("athena_queries.sql"))
        .env("PYTHONPATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Per query: rows of [api_key_id, requests, billable, 4xx, 5xx, out, in].
    type Row = (String, i64, i64, i64, i64, i64, i64);
    let results: std::collections::BTreeMap<String, Vec<Row>> =
        serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        results.keys().collect::<Vec<_>>(),
        ["usage_from_requests", "usage_from_rollup"]
    );
    for (name, rows) in results {
        let got: std::collections::BTreeMap<String, [i64; 6]> = rows
            .into_iter()
            .map(|(k, a, b, c, d, e, f)| (k, [a, b, c, d, e, f]))
            .collect();
        let want: std::collections::BTreeMap<String, [i64; 6]> = usage
            .iter()
            .map(|(k, t)| {
                let t = t.clone();
                (
                    k.clone(),
                    [
                        t.requests,
                        t.billable,
                        t.client_errors,
                        t.server_errors,
                        t.bytes_out,
                        t.bytes_in,
                    ],
                )
            })
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn terraform_registers_every_table_as_delta() {
    let tf = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/terraform/glue.tf"),
    )
    .unwrap();
    assert!(
        tf.contains(r#"tables = ["requests", "usage_hourly", "usage_hourly_keys"]"#),
        "{tf}"
    );
    assert!(tf.contains(r#""table_type"     = "DELTA""#), "{tf}");
}
