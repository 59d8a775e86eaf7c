//! What the bytes of a log object mean. [`parse_object`] is the one entry,
//! with [`ObjectParts`] for the same a part at a time: it decides an object's
//! format (Parquet by its magic bytes, also gzip-compressed; text otherwise)
//! and hands it to the module that owns it. From the bytes down:
//!
//! - `decompress`: gzip (any number of members) or plain, capped in size.
//! - `framing`: a text object's lines, a part at a time; which parser each
//!   line goes to (a `#Fields:` header, a JSON object, a tab-separated line).
//! - `header`: a header's fields, to the slot each position of a line goes to.
//! - `w3c`: the line parser, one tab-separated line to one row; the formats
//!   of named fields go through its interface for records.
//! - `json`, `parquet`: v2 JSON lines and Parquet, as records of named fields.
//! - `realtime`: real-time records' fields, in AWS's canonical order.
//! - `timestamps`: request times, and the calendar maths they take.
//! - `fields`, `rows`: what the parser needs of the field catalogue; the
//!   Arrow rows it fills, by hour.
//!
//! Below the entry are the types every format shares: the options, the
//! counts and rows of an object, and what makes an object unreadable.

mod decompress;
pub(crate) mod fields;
mod framing;
mod header;
mod json;
pub mod parquet;
pub(crate) mod realtime;
mod rows;
#[cfg(test)]
mod testing;
mod timestamps;
pub(crate) mod w3c;

use crate::key::KeySource;
use crate::time::Hour;
use datafusion::arrow::array::RecordBatch;
use decompress::{object_error, open_object, open_owned};
use std::collections::BTreeMap;
use std::io::{BufRead, Read};

/// Whether an object is Parquet, also when gzip-compressed.
fn is_parquet(data: &[u8], max_bytes: u64) -> bool {
    let mut head = [0u8; 4];
    data.starts_with(parquet::MAGIC)
        || data.starts_with(&[0x1f, 0x8b])
            && open_object(data, max_bytes).read_exact(&mut head).is_ok()
            && head == parquet::MAGIC
}

/// Parses one whole object as ingest does: Parquet by its magic bytes (also
/// when gzip-compressed, inflated whole since Parquet needs random access),
/// text logs otherwise, reading at most `max_bytes` of decompressed data.
pub(crate) fn parse_object(
    data: bytes::Bytes,
    object: &str,
    options: &ParseOptions,
    max_bytes: u64,
    hasher: &mut crate::key::KeyHasher,
) -> Result<Parsed, ObjectError> {
    let mut parts = ObjectParts::open(data, options, max_bytes)?;
    let (parsed, _) = parts.next_part(object, options, hasher, u64::MAX)?;
    Ok(parsed)
}

/// An object opened to be parsed a part at a time (see [`framing::TextParts`]).
pub(crate) enum ObjectParts {
    /// Parquet, decoded whole as one part (its decoded size is capped).
    Parquet(Option<bytes::Bytes>, u64),
    Text {
        parts: Box<framing::TextParts<Box<dyn BufRead + Send>>>,
        data: bytes::Bytes,
        max_bytes: u64,
    },
}

impl ObjectParts {
    pub(crate) fn open(
        data: bytes::Bytes,
        options: &ParseOptions,
        max_bytes: u64,
    ) -> Result<Self, ObjectError> {
        if is_parquet(&data, max_bytes) {
            return Ok(Self::Parquet(Some(data), max_bytes));
        }
        let parts = Box::new(framing::TextParts::new(
            open_owned(data.clone(), max_bytes),
            options,
        )?);
        Ok(Self::Text {
            parts,
            data,
            max_bytes,
        })
    }

    /// The next part, of about `part_bytes` of log text (see
    /// [`framing::TextParts::next_part`]), and whether the object goes on.
    pub(crate) fn next_part(
        &mut self,
        object: &str,
        options: &ParseOptions,
        hasher: &mut crate::key::KeyHasher,
        part_bytes: u64,
    ) -> Result<(Parsed, bool), ObjectError> {
        match self {
            Self::Parquet(data, max_bytes) => {
                let Some(data) = data.take() else {
                    return Ok((Parsed::default(), false));
                };
                let data = match data.starts_with(parquet::MAGIC) {
                    true => data,
                    false => {
                        let mut inflated = Vec::new();
                        open_object(&data, *max_bytes)
                            .read_to_end(&mut inflated)
                            .map_err(object_error)?;
                        inflated.into()
                    }
                };
                let parsed = parquet::parse(data, object, options, *max_bytes, hasher)?;
                Ok((parsed, false))
            }
            Self::Text { parts, .. } => parts.next_part(object, options, hasher, part_bytes),
        }
    }

    /// Checks that the rest of the object can be read whole (see
    /// [`framing::check_text`]).
    pub(crate) fn check_whole(&self, options: &ParseOptions) -> Result<(), ObjectError> {
        match self {
            Self::Parquet(..) => Ok(()),
            Self::Text {
                data, max_bytes, ..
            } => framing::check_text(open_object(data, *max_bytes), options.max_line_bytes),
        }
    }
}

/// Why a whole object could not be read. Its rows are not used; the object is
/// reported, left out of the ingested record, and tried again by the next run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ObjectError {
    #[error("corrupt or truncated compressed data: {0}")]
    Decompress(String),
    #[error("larger than {0} bytes once decompressed")]
    TooLarge(u64),
    #[error("not a CloudFront log: {0}")]
    NotALog(String),
    #[error("unsupported log format: {0}")]
    Unsupported(String),
}

/// Which log format objects are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// Per object: standard logs by their header lines, JSON lines by `{`,
    /// Parquet by its magic bytes.
    Auto,
    /// Real-time records carrying these configured fields.
    Realtime(Vec<String>),
}

/// What the parser needs to know beyond the bytes.
#[derive(Debug, Clone)]
pub(crate) struct ParseOptions {
    /// Where API keys are looked for, in order of preference.
    pub(crate) key_sources: Vec<KeySource>,
    pub(crate) format: LogFormat,
    /// Longest line accepted: a longer one is a bad line, skipped without
    /// ever being held whole.
    pub(crate) max_line_bytes: usize,
}

/// Default [`ParseOptions::max_line_bytes`]: CloudFront's own lines stay
/// under a few KiB (`cs-headers` is cut at 800 bytes, user agents are short).
pub(crate) const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// Default cap on the decompressed size of one object (a gzip bomb stops here).
pub(crate) const DEFAULT_MAX_OBJECT_BYTES: u64 = 8 << 30;

/// Counts for one object.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct ParseStats {
    /// Decompressed bytes read.
    pub(crate) bytes: u64,
    /// Non-empty lines (or Parquet rows) that are not comments or headers.
    pub(crate) lines: u64,
    /// Lines that became rows.
    pub(crate) requests: u64,
    /// Requests without an API key.
    pub(crate) keyless: u64,
    /// Lines that could not be parsed.
    pub(crate) bad_lines: u64,
    /// The first few bad lines.
    pub(crate) bad_samples: Vec<BadLine>,
    /// Damaged values of requests, each stored as null.
    pub(crate) field_errors: u64,
    /// The first few field errors.
    pub(crate) field_error_samples: Vec<FieldError>,
    /// Requests that carried another key besides the one billed, by the
    /// billed key's `api_key_id`.
    pub(crate) conflicting_keys: BTreeMap<String, u64>,
}

/// The rows of one object, routed by the UTC hour of their requests.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) hours: BTreeMap<Hour, Vec<RecordBatch>>,
    pub(crate) stats: ParseStats,
}

/// How many malformed lines of one object are kept as samples.
pub(crate) const MAX_BAD_LINE_SAMPLES: usize = 5;

/// A malformed line: where it is and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct BadLine {
    pub(crate) line: u64,
    pub(crate) reason: String,
}

/// A damaged value in a line that is still a request: the field was stored
/// as null.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct FieldError {
    pub(crate) line: u64,
    /// The field's W3C name, or `(beyond the header)`.
    pub(crate) field: String,
    pub(crate) reason: String,
}
