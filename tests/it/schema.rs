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
fn arrow_schema_file_matches_the_code() {
    check_published("requests", &requests_schema());
}

/// Checks `schemas/<table>.athena.sql`: a Delta table at the table's
/// location, its columns left to the Delta log (whose schema is the code's,
/// as the independent reader of the delta tests sees).
fn check_athena_ddl(table: &str) {
    let ddl = std::fs::read_to_string(schema_dir().join(format!("{table}.athena.sql"))).unwrap();
    for wanted in [
        format!("CREATE EXTERNAL TABLE IF NOT EXISTS edgemeter_{table}\n"),
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
}

#[test]
fn terraform_registers_both_tables_as_delta() {
    let tf = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/terraform/glue.tf"),
    )
    .unwrap();
    assert!(
        tf.contains(r#"tables = ["requests", "usage_hourly"]"#),
        "{tf}"
    );
    assert!(tf.contains(r#""table_type"     = "DELTA""#), "{tf}");
}
