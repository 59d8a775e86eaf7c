//! Typed Arrow builders for `requests` rows, filled straight from parsed fields
//! (no intermediate row structs), one builder per UTC hour of request time.
//!
//! An hour's rows are cut into batches of [`CHUNK_ROWS`]; each new builder is
//! sized from the one before it, so buffers are allocated once at their final
//! size instead of doubling (and copying, and faulting in fresh pages) as they grow.

use crate::key::KeyIdentity;
use crate::schema::fields::{ColumnType, FIELDS};
use crate::schema::{arrow_type, requests_schema};
use crate::time::Hour;
use datafusion::arrow::array::{
    Array, ArrayBuilder, ArrayRef, Float64Builder, Int16Builder, Int32Builder, Int64Builder,
    RecordBatch, StringBuilder, TimestampMillisecondBuilder, new_null_array,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One parsed field value, borrowed from the line it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    Str(&'a str),
    Int(i64),
    Float(f64),
}

/// Parses a logged field into the value its column stores. `-` and empty are null.
#[inline]
pub(crate) fn parse_value(ty: ColumnType, raw: &str) -> Result<Value<'_>, &'static str> {
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

/// One field's column: its builder, and the nulls not yet appended to it.
///
/// Many fields are `-` on every line (or absent from an older era's header).
/// Nulls are counted and appended in runs, and a column that saw nothing else
/// is finished as a null array without ever touching its builder.
struct Column {
    builder: ColumnBuilder,
    ty: ColumnType,
    pending_nulls: usize,
}

impl Column {
    fn new(ty: ColumnType, rows: usize, hint: &mut impl Iterator<Item = usize>) -> Self {
        Self {
            builder: ColumnBuilder::new(ty, rows, hint),
            ty,
            pending_nulls: 0,
        }
    }

    #[inline]
    fn append(&mut self, value: Value<'_>) {
        if matches!(value, Value::Null) {
            self.pending_nulls += 1;
            return;
        }
        if self.pending_nulls > 0 {
            self.builder.append_nulls(self.pending_nulls);
            self.pending_nulls = 0;
        }
        self.builder.append(value);
    }

    fn finish(&mut self) -> ArrayRef {
        let nulls = std::mem::take(&mut self.pending_nulls);
        if self.builder.is_empty() {
            return new_null_array(&arrow_type(self.ty), nulls);
        }
        self.builder.append_nulls(nulls);
        self.builder.finish()
    }
}

/// Rows per batch an hour's rows are cut into.
pub(crate) const CHUNK_ROWS: usize = 8192;

/// Value bytes of each string column of a finished chunk, in schema order:
/// the capacity of the next chunk's string builders.
type StringBytes = Vec<usize>;

fn string_builder(rows: usize, hint: &mut impl Iterator<Item = usize>) -> StringBuilder {
    // A tenth more than last time, so a slightly longer chunk does not reallocate.
    let bytes = hint.next().unwrap_or(0);
    StringBuilder::with_capacity(rows, bytes + bytes / 10)
}

impl ColumnBuilder {
    fn new(ty: ColumnType, rows: usize, hint: &mut impl Iterator<Item = usize>) -> Self {
        match ty {
            ColumnType::Utf8 => Self::Utf8(string_builder(rows, hint)),
            ColumnType::Int16 => Self::Int16(Int16Builder::with_capacity(rows)),
            ColumnType::Int32 => Self::Int32(Int32Builder::with_capacity(rows)),
            ColumnType::Int64 => Self::Int64(Int64Builder::with_capacity(rows)),
            ColumnType::Float64 => Self::Float64(Float64Builder::with_capacity(rows)),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Self::Utf8(b) => b.is_empty(),
            Self::Int16(b) => b.is_empty(),
            Self::Int32(b) => b.is_empty(),
            Self::Int64(b) => b.is_empty(),
            Self::Float64(b) => b.is_empty(),
        }
    }

    fn append_nulls(&mut self, n: usize) {
        match self {
            Self::Utf8(b) => b.append_nulls(n),
            Self::Int16(b) => b.append_nulls(n),
            Self::Int32(b) => b.append_nulls(n),
            Self::Int64(b) => b.append_nulls(n),
            Self::Float64(b) => b.append_nulls(n),
        }
    }

    fn string_bytes(&self) -> Option<usize> {
        match self {
            Self::Utf8(b) => Some(b.values_slice().len()),
            _ => None,
        }
    }

    /// Appends a value that [`parse_value`] produced for this column's type.
    /// [`Column`] appends nulls itself, in runs; a value of another type
    /// (which `parse_value` never gives) would be stored as null.
    #[inline]
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
pub(crate) struct RowsBuilder {
    timestamp: TimestampMillisecondBuilder,
    key_id: StringBuilder,
    key_hint: StringBuilder,
    fields: Vec<Column>,
    source_object: StringBuilder,
    source_line: Int64Builder,
    conflicting_key_id: StringBuilder,
    len: usize,
}

impl Default for RowsBuilder {
    fn default() -> Self {
        Self::with_capacity(0, &[])
    }
}

/// One row as the parser hands it over.
pub(crate) struct Row<'a> {
    pub(crate) timestamp_ms: i64,
    pub(crate) key: Option<&'a KeyIdentity>,
    /// One value per entry of [`FIELDS`].
    pub(crate) values: &'a [Value<'a>],
    pub(crate) source_object: &'a str,
    pub(crate) source_line: u64,
    /// The `api_key_id` of another key the request carried.
    pub(crate) conflicting_key_id: Option<&'a str>,
}

impl RowsBuilder {
    /// A builder for `rows` rows whose string columns hold about `string_bytes`
    /// (as [`RowsBuilder::string_bytes`] reported for an earlier chunk).
    fn with_capacity(rows: usize, string_bytes: &[usize]) -> Self {
        let mut hint = string_bytes.iter().copied();
        Self {
            timestamp: TimestampMillisecondBuilder::with_capacity(rows).with_timezone("UTC"),
            key_id: string_builder(rows, &mut hint),
            key_hint: string_builder(rows, &mut hint),
            fields: FIELDS
                .iter()
                .map(|f| Column::new(f.ty, rows, &mut hint))
                .collect(),
            source_object: string_builder(rows, &mut hint),
            source_line: Int64Builder::with_capacity(rows),
            // Nearly always null: no capacity for values.
            conflicting_key_id: StringBuilder::with_capacity(rows, 0),
            len: 0,
        }
    }

    /// Value bytes of each string column so far, in schema order.
    fn string_bytes(&self) -> StringBytes {
        let mut out = vec![
            self.key_id.values_slice().len(),
            self.key_hint.values_slice().len(),
        ];
        out.extend(self.fields.iter().filter_map(|c| c.builder.string_bytes()));
        out.push(self.source_object.values_slice().len());
        out
    }

    #[inline]
    pub(crate) fn append(&mut self, row: &Row<'_>) {
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
        self.conflicting_key_id
            .append_option(row.conflicting_key_id);
        self.len += 1;
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The rows appended so far, as a batch of [`requests_schema`].
    pub(crate) fn finish(&mut self) -> RecordBatch {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(FIELDS.len() + 5);
        columns.push(Arc::new(self.timestamp.finish()));
        columns.push(Arc::new(self.key_id.finish()));
        columns.push(Arc::new(self.key_hint.finish()));
        columns.extend(self.fields.iter_mut().map(Column::finish));
        columns.push(Arc::new(self.source_object.finish()));
        columns.push(Arc::new(self.source_line.finish()));
        columns.push(Arc::new(self.conflicting_key_id.finish()));
        // Builders grow by doubling, and a chunk's are sized for a full
        // chunk: an object's last chunk, or the few rows of an hour its lines
        // stray into, would hold their whole capacity for as long as the
        // batch is in memory. Shrinking gives the unused part back (the
        // allocator keeps a block in place when less than half of it is
        // unused, so full chunks are not copied).
        for column in &mut columns {
            Array::shrink_to_fit(column);
        }
        self.len = 0;
        match RecordBatch::try_new(requests_schema(), columns) {
            Ok(batch) => batch,
            Err(e) => unreachable!("builders follow requests_schema: {e}"),
        }
    }
}

/// Rows routed by the UTC hour of each request's own timestamp.
#[derive(Default)]
pub(crate) struct HourlyRows {
    /// (hour, rows being built, full chunks), in the order hours first appeared.
    hours: Vec<(Hour, RowsBuilder, Vec<RecordBatch>)>,
    /// Index into `hours` of the last row's hour: log lines come in time order,
    /// so the next row is nearly always in the same hour.
    last: usize,
    /// String sizes of the last full chunk, for sizing the next builders.
    string_bytes: Option<StringBytes>,
}

impl HourlyRows {
    #[inline]
    pub(crate) fn append(&mut self, row: &Row<'_>) {
        let hour = Hour::of_millis(row.timestamp_ms);
        if self.hours.get(self.last).is_none_or(|(h, _, _)| *h != hour) {
            self.last = match self.hours.iter().position(|(h, _, _)| *h == hour) {
                Some(i) => i,
                None => {
                    let builder = match self.string_bytes.as_deref() {
                        Some(bytes) => RowsBuilder::with_capacity(CHUNK_ROWS, bytes),
                        None => RowsBuilder::default(),
                    };
                    self.hours.push((hour, builder, Vec::new()));
                    self.hours.len() - 1
                }
            };
        }
        let (_, rows, done) = &mut self.hours[self.last];
        rows.append(row);
        if rows.len() == CHUNK_ROWS {
            let bytes = rows.string_bytes();
            done.push(rows.finish());
            *rows = RowsBuilder::with_capacity(CHUNK_ROWS, &bytes);
            self.string_bytes = Some(bytes);
        }
    }

    /// Batches keyed by hour.
    pub(crate) fn finish(self) -> BTreeMap<Hour, Vec<RecordBatch>> {
        self.hours
            .into_iter()
            .map(|(hour, mut rows, mut done)| {
                if !rows.is_empty() {
                    done.push(rows.finish());
                }
                (hour, done)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::fields::idx;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;

    /// Rows whose `sc_bytes` and `cs_uri_stem` are null in runs of every length
    /// between values, and whose other fields are null throughout.
    #[test]
    fn nulls_in_runs_and_never_filled_columns_finish_as_appended() {
        let bytes: Vec<Option<i64>> = vec![None, None, Some(5), None, Some(7), Some(9), None, None];
        let stems: Vec<Option<&str>> = vec![
            Some("/a"),
            None,
            None,
            None,
            Some("/b"),
            None,
            Some("/c"),
            None,
        ];
        let mut rows = RowsBuilder::default();
        for (line, (b, stem)) in bytes.iter().zip(&stems).enumerate() {
            let mut values = [Value::Null; FIELDS.len()];
            if let Some(b) = b {
                values[idx::SC_BYTES] = Value::Int(*b);
            }
            if let Some(stem) = stem {
                values[idx::CS_URI_STEM] = Value::Str(stem);
            }
            rows.append(&Row {
                timestamp_ms: line as i64,
                key: None,
                values: &values,
                source_object: "o",
                source_line: line as u64 + 1,
                conflicting_key_id: None,
            });
        }
        let sc_bytes = |batch: &RecordBatch| -> Vec<Option<i64>> {
            let column = batch.column_by_name("sc_bytes").unwrap();
            column.as_primitive::<Int64Type>().iter().collect()
        };
        let batch = rows.finish();
        assert_eq!(batch.num_rows(), 8);
        assert_eq!(sc_bytes(&batch), bytes);
        let got_stems: Vec<Option<&str>> = batch
            .column_by_name("cs_uri_stem")
            .unwrap()
            .as_string::<i32>()
            .iter()
            .collect();
        assert_eq!(got_stems, stems);
        for (i, field) in FIELDS.iter().enumerate() {
            if i == idx::SC_BYTES || i == idx::CS_URI_STEM {
                continue;
            }
            let column = batch.column_by_name(field.column).unwrap();
            assert_eq!(column.null_count(), 8, "{}", field.column);
            assert_eq!(
                column.data_type(),
                &arrow_type(field.ty),
                "{}",
                field.column
            );
        }
        // The builder starts over empty: the next chunk's nulls are its own.
        let mut values = [Value::Null; FIELDS.len()];
        values[idx::SC_BYTES] = Value::Int(1);
        rows.append(&Row {
            timestamp_ms: 0,
            key: None,
            values: &values,
            source_object: "o",
            source_line: 9,
            conflicting_key_id: None,
        });
        let next = rows.finish();
        assert_eq!(sc_bytes(&next), vec![Some(1)]);
        assert_eq!(next.column_by_name("cs_uri_stem").unwrap().null_count(), 1);
    }
}
