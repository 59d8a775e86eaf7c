//! Where log objects come from: an S3 prefix or a local directory. Listing and
//! fetching, with retries; nothing here knows what the bytes mean.

pub mod local;
pub mod s3;

use crate::error::Result;
use bytes::Bytes;

/// One log object: a file in a directory or an object in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogObject {
    /// Full location, `s3://bucket/key` or an absolute local path.
    pub uri: String,
    /// S3 ETag, or `<size>-<mtime ns>` for local files.
    pub etag: String,
    pub size: u64,
}

/// A place to read log objects from.
#[derive(Debug, Clone)]
pub enum Source {
    Local(local::LocalSource),
    S3(s3::S3Source),
}

/// Settings for reaching S3 (sources and lakes share them).
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// An S3-compatible endpoint (MinIO, R2, a test server); path-style addressing is used with it.
    pub endpoint_url: Option<String>,
    /// Region, when neither the environment nor a profile names one.
    pub region: Option<String>,
}

impl Source {
    /// A source for `s3://bucket/prefix/` or a local directory.
    pub async fn open(location: &str, s3: &S3Settings) -> Result<Self> {
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            Ok(Source::S3(s3::S3Source::new(bucket, prefix, s3).await?))
        } else {
            Ok(Source::Local(local::LocalSource::new(location)?))
        }
    }

    /// Every object under the source, sorted by location.
    pub async fn list(&self) -> Result<Vec<LogObject>> {
        let mut objects = match self {
            Source::Local(s) => s.list().await?,
            Source::S3(s) => s.list().await?,
        };
        objects.sort_by(|a, b| a.uri.cmp(&b.uri));
        Ok(objects)
    }

    /// The whole content of one object; a body shorter than announced is an error.
    pub async fn fetch(&self, object: &LogObject) -> Result<Bytes> {
        match self {
            Source::Local(s) => s.fetch(object).await,
            Source::S3(s) => s.fetch(object).await,
        }
    }
}
