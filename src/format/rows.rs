//! Typed Arrow builders for `requests` rows, filled straight from parsed fields
//! (no intermediate row structs), one builder per UTC hour of request time.

use crate::format::fields::{ColumnType, FIELDS};
use crate::key::KeyIdentity;
use crate::lake::schema::requests_schema;
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, Int16Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMillisecondBuilder,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One parsed field value, borrowed from the line it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Str(&'a str),
    Int(i64),
    Float(f64),
}

/// Parses a logged field into the value its column stores. `-` and empty are null.
pub fn parse_value(ty: ColumnType, raw: &str) -> Result<Value<'_>, &'static str> {
    if raw == "-" || raw.is_empty() {
        return Ok(Value::Null);
    }
    match ty {
        ColumnType::Utf8 => Ok(Value::Str(raw)),
        ColumnType::Int16 => match raw.parse::<i16>() {
            Ok(v) => Ok(Value::Int(v.into())),
            Err(_) => Err("is not a 16-bit integer"),
        },
        ColumnType::Int32 => match raw.parse::<i32>() {
            Ok(v) => Ok(Value::Int(v.into())),
            Err(_) => Err("is not a 32-bit integer"),
        },
        ColumnType::Int64 => raw
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| "is not an integer"),
        ColumnType::Float64 => match raw.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Value::Float(v)),
            _ => Err("is not a number"),
        },
    }
}

enum ColumnBuilder {
    Utf8(StringBuilder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float64(Float64Builder),
}

impl ColumnBuilder {
    fn new(ty: ColumnType) -> Self {
        match ty {
            ColumnType::Utf8 => Self::Utf8(StringBuilder::new()),
            ColumnType::Int16 => Self::Int16(Int16Builder::new()),
            ColumnType::Int32 => Self::Int32(Int32Builder::new()),
            ColumnType::Int64 => Self::Int64(Int64Builder::new()),
            ColumnType::Float64 => Self::Float64(Float64Builder::new()),
        }
    }

    /// Appends a value that [`parse_value`] produced for this column's type.
    fn append(&mut self, value: Value<'_>) {
        match (self, value) {
            (Self::Utf8(b), Value::Str(s)) => b.append_value(s),
            (Self::Utf8(b), _) => b.append_null(),
            // The casts cannot truncate: parse_value checked the range.
            (Self::Int16(b), Value::Int(v)) => b.append_value(v as i16),
            (Self::Int16(b), _) => b.append_null(),
            (Self::Int32(b), Value::Int(v)) => b.append_value(v as i32),
            (Self::Int32(b), _) => b.append_null(),
            (Self::Int64(b), Value::Int(v)) => b.append_value(v),
            (Self::Int64(b), _) => b.append_null(),
            (Self::Float64(b), Value::Float(v)) => b.append_value(v),
            (Self::Float64(b), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Utf8(b) => Arc::new(b.finish()),
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
        }
    }
}

/// Builds the rows of one hour.
pub struct RowsBuilder {
    timestamp: TimestampMillisecondBuilder,
    key_id: StringBuilder,
    key_hint: StringBuilder,
    fields: Vec<ColumnBuilder>,
    source_object: StringBuilder,
    source_line: Int64Builder,
    len: usize,
}

impl Default for RowsBuilder {
    fn default() -> Self {
        Self {
            timestamp: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            key_id: StringBuilder::new(),
            key_hint: StringBuilder::new(),
            fields: FIELDS.iter().map(|f| ColumnBuilder::new(f.ty)).collect(),
            source_object: StringBuilder::new(),
            source_line: Int64Builder::new(),
            len: 0,
        }
    }
}

/// One row as the parser hands it over.
pub struct Row<'a> {
    pub timestamp_ms: i64,
    pub key: Option<&'a KeyIdentity>,
    /// One value per entry of [`FIELDS`].
    pub values: &'a [Value<'a>],
    pub source_object: &'a str,
    pub source_line: u64,
}

impl RowsBuilder {
    pub fn append(&mut self, row: &Row<'_>) {
        self.timestamp.append_value(row.timestamp_ms);
        match row.key {
            Some(k) => {
                self.key_id.append_value(&k.id);
                self.key_hint.append_option(k.hint.as_deref());
            }
            None => {
                self.key_id.append_null();
                self.key_hint.append_null();
            }
        }
        for (builder, value) in self.fields.iter_mut().zip(row.values) {
            builder.append(*value);
        }
        self.source_object.append_value(row.source_object);
        self.source_line.append_value(row.source_line as i64);
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The rows appended so far, as a batch of [`requests_schema`].
    pub fn finish(&mut self) -> RecordBatch {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(FIELDS.len() + 5);
        columns.push(Arc::new(self.timestamp.finish()));
        columns.push(Arc::new(self.key_id.finish()));
        columns.push(Arc::new(self.key_hint.finish()));
        columns.extend(self.fields.iter_mut().map(ColumnBuilder::finish));
        columns.push(Arc::new(self.source_object.finish()));
        columns.push(Arc::new(self.source_line.finish()));
        self.len = 0;
        match RecordBatch::try_new(requests_schema(), columns) {
            Ok(batch) => batch,
            Err(e) => unreachable!("builders follow requests_schema: {e}"),
        }
    }
}

/// Rows routed by the UTC hour of each request's own timestamp.
#[derive(Default)]
pub struct HourlyRows {
    hours: BTreeMap<i64, RowsBuilder>,
}

impl HourlyRows {
    pub fn append(&mut self, row: &Row<'_>) {
        let hour = row.timestamp_ms.div_euclid(3_600_000);
        self.hours.entry(hour).or_default().append(row);
    }

    /// Batches keyed by hour number (hours since the epoch).
    pub fn finish(self) -> BTreeMap<i64, RecordBatch> {
        self.hours
            .into_iter()
            .map(|(hour, mut rows)| (hour, rows.finish()))
            .collect()
    }
}
