//! The data model the parser and the lake share: the field catalogue
//! ([`fields`]), the classes of `sc_status` ([`status`]) and the Arrow schema of the lake's `requests` files, derived
//! from it so that parser, writer and `schemas/` cannot drift apart.
//!
//! Partition columns (`dt`, `hour`) live in the Delta log and the paths, not
//! in the files. Which Delta table holds these files is the lake's
//! (`lake::REQUESTS_TABLE`).

pub(crate) mod endpoint;
pub(crate) mod fields;
pub(crate) mod status;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use fields::{ColumnType, FIELDS};
use std::sync::{Arc, LazyLock};

/// Columns that precede the log fields in every `requests` file.
#[cfg(test)]
pub(crate) const LEAD_COLUMNS: [&str; 3] = ["timestamp", "api_key_id", "api_key_hint"];
/// Lineage columns that follow the log fields: where each row came from.
#[cfg(test)]
pub(crate) const LINEAGE_COLUMNS: [&str; 2] = ["source_object", "source_line"];
/// Columns added after the lineage columns, in the order they were added
/// (tables made before are given them by the lake when it opens them;
/// their older files read them as null).
#[cfg(test)]
pub(crate) const LATER_COLUMNS: [&str; 1] = ["conflicting_key_id"];
/// The Hive partition columns of `requests` and `usage_hourly`.
pub const PARTITION_COLUMNS: [&str; 2] = ["dt", "hour"];

/// The Arrow type of a catalogue column.
pub(crate) fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Utf8 => DataType::Utf8,
        ColumnType::Int16 => DataType::Int16,
        ColumnType::Int32 => DataType::Int32,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
    }
}

/// The type of the `timestamp` column: milliseconds since the epoch, UTC.
pub(crate) fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

static REQUESTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new("timestamp", timestamp_type(), false),
        Field::new("api_key_id", DataType::Utf8, true),
        Field::new("api_key_hint", DataType::Utf8, true),
    ];
    fields.extend(
        FIELDS
            .iter()
            .map(|f| Field::new(f.column, arrow_type(f.ty), true)),
    );
    fields.push(Field::new("source_object", DataType::Utf8, false));
    fields.push(Field::new("source_line", DataType::Int64, false));
    // The `api_key_id` of another key the request carried (it was billed to
    // the one of highest precedence).
    fields.push(Field::new("conflicting_key_id", DataType::Utf8, true));
    Arc::new(Schema::new(fields))
});

/// The schema of the Parquet files under `requests/` (without partition columns).
pub fn requests_schema() -> SchemaRef {
    REQUESTS.clone()
}

/// Index of the first log-field column in [`requests_schema`].
#[cfg(test)]
pub(crate) const FIRST_FIELD_COLUMN: usize = LEAD_COLUMNS.len();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_and_lineage_columns_frame_the_fields() {
        let schema = requests_schema();
        let later = LATER_COLUMNS.len();
        assert_eq!(schema.fields().len(), 3 + FIELDS.len() + 2 + later);
        for (i, name) in LEAD_COLUMNS.iter().enumerate() {
            assert_eq!(schema.field(i).name(), name);
        }
        assert_eq!(schema.field(FIRST_FIELD_COLUMN).name(), FIELDS[0].column);
        let n = schema.fields().len() - later;
        assert_eq!(schema.field(n - 2).name(), LINEAGE_COLUMNS[0]);
        assert_eq!(schema.field(n - 1).name(), LINEAGE_COLUMNS[1]);
        for (i, name) in LATER_COLUMNS.iter().enumerate() {
            assert_eq!(schema.field(n + i).name(), name);
        }
    }
}
