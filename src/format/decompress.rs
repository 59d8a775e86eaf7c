//! Opening an object's bytes for reading: gzip (any number of concatenated
//! members, as Firehose and log rotation write them) or plain, either way
//! capped at a decompressed size, so that a gzip bomb stops with an
//! [`ObjectError::TooLarge`]; and the read errors mapped to object errors.

use super::ObjectError;
use flate2::read::MultiGzDecoder;
use std::io::{BufRead, BufReader, Read};

/// Opens an object's bytes for line reading: gzip (any number of concatenated
/// members) when it starts with the gzip magic, plain text otherwise; either way
/// reading stops with an error past `max_bytes` of decompressed data.
pub(super) fn open_object(data: &[u8], max_bytes: u64) -> Box<dyn BufRead + Send + '_> {
    open_reader(data, data.starts_with(&[0x1f, 0x8b]), max_bytes)
}

/// As [`open_object`], owning the bytes.
pub(super) fn open_owned(data: bytes::Bytes, max_bytes: u64) -> Box<dyn BufRead + Send> {
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
struct CapExceeded(u64);

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
pub(super) fn object_error(e: std::io::Error) -> ObjectError {
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
