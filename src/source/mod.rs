//! Where log objects come from: an S3 prefix or a local directory, listed;
//! or S3 objects named one by one by the event notifications of an SQS
//! queue (`sqs`, `notification`). Listing, receiving and fetching, with
//! retries; nothing here knows what the bytes mean.

pub(crate) mod local;
pub(crate) mod notification;
pub(crate) mod s3;
pub(crate) mod shard;
pub(crate) mod sqs;

use crate::aws::S3Settings;
use crate::error::Result;
use crate::object_names::name_hour;
use crate::time::Hour;
use bytes::Bytes;
use chrono::{DateTime, Utc};

/// One log object: a file in a directory or an object in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogObject {
    /// Full location, `s3://bucket/key` or an absolute local path.
    pub(crate) uri: String,
    /// S3 ETag, or `<size>-<mtime ns>` for local files.
    pub(crate) etag: String,
    pub(crate) size: u64,
}

/// A place to read log objects from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Local(local::LocalSource),
    S3(s3::S3Source),
    /// S3 objects of any bucket, named by notifications: never listed.
    Notified(s3::S3Objects),
}

impl Source {
    /// A source for `s3://bucket/prefix/` or a local directory.
    pub(crate) async fn open(location: &str, s3: &S3Settings) -> Result<Self> {
        if location.starts_with(sqs::SCHEME) {
            return Err(crate::error::Error::Config(format!(
                "{location}: a queue of notifications is not listed"
            )));
        }
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            Ok(Source::S3(s3::S3Source::new(bucket, prefix, s3).await?))
        } else {
            Ok(Source::Local(local::LocalSource::new(location)?))
        }
    }

    /// The objects to consider, sorted by location.
    ///
    /// [`Listing::Since`] lists S3 by date prefix: for each CloudFront
    /// distribution under the prefix, only the days from `since` on, so an
    /// hourly run does not scan years of logs. Objects named for an hour before
    /// `since` are left out; objects whose names carry no date are listed by
    /// [`Listing::Full`] only on S3, and always in local directories.
    ///
    /// Entries that could not be listed (a local link that dangles, loops or
    /// leaves the source) come back beside the objects, each with its reason.
    /// `now` bounds the days [`Listing::Since`] lists (up to the day after
    /// it).
    pub(crate) async fn list(&self, listing: &Listing, now: DateTime<Utc>) -> Result<Listed> {
        let (mut objects, problems) = match (self, listing) {
            (Source::Notified(_), _) => (Vec::new(), Vec::new()),
            (Source::Local(s), _) => s.list().await?,
            (Source::S3(s), Listing::Full) => (s.list().await?, Vec::new()),
            (Source::S3(s), Listing::Since(since)) => {
                (s.list_since(*since, now).await?, Vec::new())
            }
        };
        let seen = objects.len();
        if let Listing::Since(since) = listing {
            objects.retain(|o| {
                name_hour(&o.uri)
                    .and_then(Hour::start)
                    .is_none_or(|hour| hour >= *since)
            });
        }
        objects.sort_by(|a, b| a.uri.cmp(&b.uri));
        Ok(Listed {
            outside_window: (seen - objects.len()) as u64,
            objects,
            problems,
        })
    }

    /// One object as a listing would give it now (for objects outside this
    /// run's listing that an earlier run could not read): `Ok(None)` when
    /// it is gone, `Err` with the reason when it cannot be reached.
    pub(crate) async fn stat(&self, uri: &str) -> std::result::Result<Option<LogObject>, String> {
        match self {
            Source::Local(s) => s.stat(uri).await,
            Source::S3(s) => s.stat(uri).await,
            Source::Notified(s) => s.stat(uri).await,
        }
    }

    /// Whether `uri` lies under this source.
    pub(crate) fn holds(&self, uri: &str) -> bool {
        match self {
            Source::Local(s) => s.holds(uri),
            Source::S3(s) => s.holds(uri),
            // Its retry records are found by the source that recorded them.
            Source::Notified(_) => false,
        }
    }

    /// The name of the object at `uri` under this source (the key below the
    /// prefix, or the path below the directory), which shards hash; `uri`
    /// itself when it lies elsewhere.
    pub(crate) fn name_of<'a>(&self, uri: &'a str) -> &'a str {
        match self {
            Source::Local(s) => s.name_of(uri),
            Source::S3(s) => s.name_of(uri),
            // Never sharded (a queue's consumers share it without shards).
            Source::Notified(_) => uri,
        }
    }

    /// The whole content of one object; a body shorter than announced is an error.
    pub(crate) async fn fetch(&self, object: &LogObject) -> Result<Bytes> {
        match self {
            Source::Local(s) => s.fetch(object).await,
            Source::S3(s) => s.fetch(object).await,
            Source::Notified(s) => s.fetch(object).await,
        }
    }
}

/// What a listing found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Listed {
    /// The objects to consider, sorted by location.
    pub(crate) objects: Vec<LogObject>,
    /// Entries that could not be listed, each with its reason.
    pub(crate) problems: Vec<(String, String)>,
    /// Objects seen but named for hours before the listing's start (all of
    /// them in a local directory; on S3, those of the first day listed).
    pub(crate) outside_window: u64,
}

/// Which objects a run lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listing {
    /// Everything under the source.
    Full,
    /// Objects named for this hour or later (CloudFront names files
    /// `<prefix><distribution>.YYYY-MM-DD-HH.<id>.gz` for the hour of their requests).
    Since(DateTime<Utc>),
}
