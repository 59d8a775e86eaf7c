//! What the bytes of a log object mean: decompression, the field catalogue,
//! the CloudFront standard (W3C) log parser, and the Arrow rows it produces.

pub(crate) mod fields;
pub mod parquet_input;
pub(crate) mod rows;
pub(crate) mod w3c;

use flate2::read::MultiGzDecoder;
use std::io::{BufRead, BufReader, Read};

/// Default cap on the decompressed size of one object (a gzip bomb stops here).
pub(crate) const DEFAULT_MAX_OBJECT_BYTES: u64 = 8 << 30;

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

/// Opens an object's bytes for line reading: gzip (any number of concatenated
/// members) when it starts with the gzip magic, plain text otherwise; either way
/// reading stops with an error past `max_bytes` of decompressed data.
pub(crate) fn open_object(data: &[u8], max_bytes: u64) -> Box<dyn BufRead + Send + '_> {
    open_reader(data, data.starts_with(&[0x1f, 0x8b]), max_bytes)
}

/// As [`open_object`], owning the bytes.
fn open_owned(data: bytes::Bytes, max_bytes: u64) -> Box<dyn BufRead + Send> {
    let gzipped = data.starts_with(&[0x1f, 0x8b]);
    open_reader(bytes::Buf::reader(data), gzipped, max_bytes)
}

fn open_reader<'a>(
    data: impl Read + Send + 'a,
    gzipped: bool,
    max_bytes: u64,
) -> Box<dyn BufRead + Send + 'a> {
    const BUF: usize = 256 * 1024;
    if gzipped {
        let gz = MultiGzDecoder::new(data);
        Box::new(BufReader::with_capacity(BUF, Capped::new(gz, max_bytes)))
    } else {
        Box::new(BufReader::with_capacity(BUF, Capped::new(data, max_bytes)))
    }
}

/// Whether an object is Parquet, also when gzip-compressed.
fn is_parquet(data: &[u8], max_bytes: u64) -> bool {
    let mut head = [0u8; 4];
    data.starts_with(parquet_input::MAGIC)
        || data.starts_with(&[0x1f, 0x8b])
            && open_object(data, max_bytes).read_exact(&mut head).is_ok()
            && head == parquet_input::MAGIC
}

/// Parses one whole object as ingest does: Parquet by its magic bytes (also
/// when gzip-compressed, inflated whole since Parquet needs random access),
/// text logs otherwise, reading at most `max_bytes` of decompressed data.
pub(crate) fn parse_object(
    data: bytes::Bytes,
    object: &str,
    options: &w3c::ParseOptions,
    max_bytes: u64,
    hasher: &mut crate::key::KeyHasher,
) -> Result<w3c::Parsed, ObjectError> {
    let mut parts = ObjectParts::open(data, options, max_bytes)?;
    let (parsed, _) = parts.next_part(object, options, hasher, u64::MAX)?;
    Ok(parsed)
}

/// An object opened to be parsed a part at a time (see [`w3c::TextParts`]).
pub(crate) enum ObjectParts {
    /// Parquet, decoded whole as one part (its decoded size is capped).
    Parquet(Option<bytes::Bytes>, u64),
    Text {
        parts: Box<w3c::TextParts<Box<dyn BufRead + Send>>>,
        data: bytes::Bytes,
        max_bytes: u64,
    },
}

impl ObjectParts {
    pub(crate) fn open(
        data: bytes::Bytes,
        options: &w3c::ParseOptions,
        max_bytes: u64,
    ) -> Result<Self, ObjectError> {
        if is_parquet(&data, max_bytes) {
            return Ok(Self::Parquet(Some(data), max_bytes));
        }
        let parts = Box::new(w3c::TextParts::new(
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
    /// [`w3c::TextParts::next_part`]), and whether the object goes on.
    pub(crate) fn next_part(
        &mut self,
        object: &str,
        options: &w3c::ParseOptions,
        hasher: &mut crate::key::KeyHasher,
        part_bytes: u64,
    ) -> Result<(w3c::Parsed, bool), ObjectError> {
        match self {
            Self::Parquet(data, max_bytes) => {
                let Some(data) = data.take() else {
                    return Ok((w3c::Parsed::default(), false));
                };
                let data = match data.starts_with(parquet_input::MAGIC) {
                    true => data,
                    false => {
                        let mut inflated = Vec::new();
                        open_object(&data, *max_bytes)
                            .read_to_end(&mut inflated)
                            .map_err(object_error)?;
                        inflated.into()
                    }
                };
                let parsed = parquet_input::parse(data, object, options, *max_bytes, hasher)?;
                Ok((parsed, false))
            }
            Self::Text { parts, .. } => parts.next_part(object, options, hasher, part_bytes),
        }
    }

    /// Checks that the rest of the object can be read whole (see
    /// [`w3c::check_text`]).
    pub(crate) fn check_whole(&self, options: &w3c::ParseOptions) -> Result<(), ObjectError> {
        match self {
            Self::Parquet(..) => Ok(()),
            Self::Text {
                data, max_bytes, ..
            } => w3c::check_text(open_object(data, *max_bytes), options.max_line_bytes),
        }
    }
}

/// A reader that fails once more than `limit` bytes have been read.
struct Capped<R> {
    inner: R,
    remaining: u64,
    limit: u64,
}

impl<R> Capped<R> {
    fn new(inner: R, limit: u64) -> Self {
        Self {
            inner,
            remaining: limit,
            limit,
        }
    }
}

/// Marker carried inside the `io::Error` of a [`Capped`] reader.
#[derive(Debug)]
pub(crate) struct CapExceeded(pub u64);

impl std::fmt::Display for CapExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "decompressed size exceeds {} bytes", self.0)
    }
}

impl std::error::Error for CapExceeded {}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.remaining {
            return Err(std::io::Error::other(CapExceeded(self.limit)));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Maps a read error to the object error it means.
pub(crate) fn object_error(e: std::io::Error) -> ObjectError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<CapExceeded>())
    {
        Some(CapExceeded(limit)) => ObjectError::TooLarge(*limit),
        None => ObjectError::Decompress(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn reads_every_member_of_a_multi_member_gzip() {
        let mut data = gzip(b"first\n");
        data.extend(gzip(b"second\n"));
        let mut out = String::new();
        open_object(&data, 1 << 20)
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "first\nsecond\n");
    }

    #[test]
    fn stops_past_the_size_cap() {
        let data = gzip(&vec![b'a'; 10_000]);
        let mut out = Vec::new();
        let err = open_object(&data, 9_999).read_to_end(&mut out).unwrap_err();
        assert_eq!(object_error(err), ObjectError::TooLarge(9_999));
        let mut out = Vec::new();
        open_object(&data, 10_000).read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 10_000);
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let data = gzip(&vec![b'x'; 100_000]);
        let mut out = Vec::new();
        let err = open_object(&data[..data.len() / 2], 1 << 20)
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(matches!(object_error(err), ObjectError::Decompress(_)));
    }
}
