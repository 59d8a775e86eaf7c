//! CloudFront standard logging v2 delivered as Parquet: string columns named
//! by W3C field names or their snake_case forms. Each row is handed to the
//! line parser as a record of named fields ([`LineParser::record_counted`]),
//! parsed like a line under a header of the column names, so every rule of
//! the text formats (nulls, keys, redaction, bad rows) applies unchanged.

use super::ObjectError;
use super::w3c::LineParser;
use super::{ParseOptions, Parsed};
use crate::key::KeyHasher;
use bytes::Bytes;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};

/// The Parquet magic bytes at the start of a file.
pub(super) const MAGIC: &[u8] = b"PAR1";

std::thread_local! {
    /// True while this thread decodes Parquet inside [`parse`]'s guard.
    static DECODING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True while the current thread is decoding Parquet under the guard that
/// turns a panic of the decoder into an unreadable object (for panic hooks
/// that would otherwise abort, as a fuzzer's does).
pub fn decoding() -> bool {
    DECODING.with(std::cell::Cell::get)
}

/// Parses a whole Parquet log object; row numbers stand in for line numbers.
///
/// `max_bytes` caps the decoded size (the values' bytes, as a text log of
/// the same rows would hold them), as it caps a text object's decompressed size.
///
/// The `parquet` crate's decoder can panic on corrupt pages (a bit width
/// beyond its type's, found by fuzzing); such a panic makes the object
/// unreadable, with a reason, like any other damage.
pub(super) fn parse(
    data: Bytes,
    object: &str,
    options: &ParseOptions,
    max_bytes: u64,
    hasher: &mut KeyHasher,
) -> Result<Parsed, ObjectError> {
    DECODING.with(|d| d.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        parse_unguarded(data, object, options, max_bytes, hasher)
    }));
    DECODING.with(|d| d.set(false));
    result.unwrap_or_else(|panic| {
        let reason = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        Err(ObjectError::NotALog(format!(
            "unreadable Parquet: the decoder failed ({reason})"
        )))
    })
}

fn parse_unguarded(
    data: Bytes,
    object: &str,
    options: &ParseOptions,
    max_bytes: u64,
    hasher: &mut KeyHasher,
) -> Result<Parsed, ObjectError> {
    let unreadable =
        |e: &dyn std::fmt::Display| ObjectError::NotALog(format!("unreadable Parquet: {e}"));
    let size = data.len() as u64;
    // The Arrow schema a writer embeds (`ARROW:schema`, an IPC message) is
    // not read: columns are mapped by name and read as text anyway, and a
    // damaged one made arrow-ipc panic (found by fuzzing).
    let skip_embedded_schema = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(data, skip_embedded_schema)
        .map_err(|e| unreadable(&e))?;
    // The footer tells the uncompressed size before anything is decoded.
    let uncompressed: i64 = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.total_byte_size())
        .sum();
    if uncompressed.max(0) as u64 > max_bytes {
        return Err(ObjectError::TooLarge(max_bytes));
    }
    let reader = builder
        .with_batch_size(8192)
        .build()
        .map_err(|e| unreadable(&e))?;
    let mut parser = LineParser::new(object, options, hasher)?;
    parser.read_bytes(size);
    let mut row_no = 0u64;
    let mut decoded = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| unreadable(&e))?;
        let names: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let columns = batch
            .columns()
            .iter()
            .map(|c| cast(c, &DataType::Utf8))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unreadable(&e))?;
        decoded += columns
            .iter()
            .map(|c| c.as_string::<i32>().values().len() as u64 + c.len() as u64)
            .sum::<u64>();
        if decoded > max_bytes {
            return Err(ObjectError::TooLarge(max_bytes));
        }
        let mut record: Vec<(String, Option<String>)> =
            names.iter().map(|n| (n.clone(), None)).collect();
        for row in 0..batch.num_rows() {
            row_no += 1;
            for (slot, column) in record.iter_mut().zip(&columns) {
                let strings = column.as_string::<i32>();
                slot.1 = strings
                    .is_valid(row)
                    .then(|| strings.value(row).to_string());
            }
            parser.record_counted(&record, row_no);
        }
    }
    Ok(parser.finish())
}
