//! Helpers of the format tests: fixtures, parsing a text object whole, and
//! reading columns back out of the rows.

use super::decompress::open_object;
use super::framing::parse;
use super::{DEFAULT_MAX_LINE_BYTES, LogFormat, ObjectError, ParseOptions, Parsed};
use crate::key::KeyHasher;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Int16Type, Int64Type};

pub(super) fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/cloudfront/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(super) fn parse_bytes(data: &[u8]) -> Result<Parsed, ObjectError> {
    let options = ParseOptions {
        key_sources: crate::key::default_sources(),
        format: LogFormat::Auto,
        max_line_bytes: DEFAULT_MAX_LINE_BYTES,
    };
    parse(
        open_object(data, 1 << 30),
        "test-object",
        &options,
        &mut KeyHasher::new(None),
    )
}

pub(super) fn all_rows(parsed: &Parsed) -> RecordBatch {
    let batches: Vec<_> = parsed.hours.values().flatten().cloned().collect();
    datafusion::arrow::compute::concat_batches(&crate::schema::requests_schema(), &batches).unwrap()
}

pub(super) fn i64_sum(batch: &RecordBatch, column: &str) -> i64 {
    batch
        .column_by_name(column)
        .unwrap()
        .as_primitive::<Int64Type>()
        .iter()
        .flatten()
        .sum()
}

pub(super) fn statuses(batch: &RecordBatch) -> Vec<Option<i16>> {
    batch
        .column_by_name("sc_status")
        .unwrap()
        .as_primitive::<Int16Type>()
        .iter()
        .collect()
}

pub(super) fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    batch
        .column_by_name(column)
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

pub(super) fn options(max_line_bytes: usize) -> ParseOptions {
    ParseOptions {
        key_sources: crate::key::default_sources(),
        format: LogFormat::Auto,
        max_line_bytes,
    }
}
