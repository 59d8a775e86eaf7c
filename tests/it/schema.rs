//! The code's lake schema and the published files in `schemas/` agree.
//! `EDGEMETER_BLESS=1 cargo test schema` rewrites `schemas/*.schema.json`
//! from the code (the Athena DDL is edited by hand and only checked).

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use edgemeter::lake::schema::{PARTITION_COLUMNS, requests_schema};

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

fn athena_name(ty: &DataType) -> &'static str {
    match ty {
        DataType::Utf8 => "string",
        DataType::Int16 => "smallint",
        DataType::Int32 => "int",
        DataType::Int64 => "bigint",
        DataType::Float64 => "double",
        DataType::Timestamp(..) => "timestamp",
        other => panic!("no Athena type for {other}"),
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
        "location": format!("{table}/dt=YYYY-MM-DD/hour=HH/part-<generation>.parquet"),
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

/// Checks `schemas/<table>.athena.sql`: its columns, types and partition
/// columns are the code's, and its location template names the table.
fn check_athena_ddl(table: &str, schema: &datafusion::arrow::datatypes::Schema) {
    let ddl = std::fs::read_to_string(schema_dir().join(format!("{table}.athena.sql"))).unwrap();
    let body = |open: &str| -> Vec<(String, String)> {
        let start = ddl.find(open).unwrap_or_else(|| panic!("DDL lacks {open}")) + open.len();
        let end = start + ddl[start..].find("\n)").unwrap();
        ddl[start..end]
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("--"))
            .map(|l| {
                let mut parts = l.trim_end_matches(',').split_whitespace();
                let name = parts.next().unwrap().trim_matches('`').to_string();
                (name, parts.next().unwrap().to_lowercase())
            })
            .collect()
    };
    let want: Vec<(String, String)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), athena_name(f.data_type()).to_string()))
        .collect();
    assert_eq!(
        body(&format!(
            "CREATE EXTERNAL TABLE IF NOT EXISTS edgemeter_{table} ("
        )),
        want
    );
    let parts: Vec<(String, String)> = PARTITION_COLUMNS
        .iter()
        .map(|c| (c.to_string(), "string".to_string()))
        .collect();
    assert_eq!(body("PARTITIONED BY ("), parts);
    for location in [
        format!("LOCATION 's3://YOUR-LAKE-BUCKET/lake/{table}/'"),
        format!("'s3://YOUR-LAKE-BUCKET/lake/{table}/dt=${{dt}}/hour=${{hour}}/'"),
    ] {
        assert!(
            ddl.contains(&location),
            "{table}.athena.sql lacks {location}"
        );
    }
}

#[test]
fn athena_ddl_matches_the_code() {
    check_athena_ddl("requests", &requests_schema());
    check_athena_ddl("usage_hourly", &edgemeter::lake::rollup::rollup_schema());
}
