//! Where log objects come from: an S3 prefix or a local directory. Listing and
//! fetching, with retries; nothing here knows what the bytes mean.

pub mod local;
pub mod s3;

use crate::error::{Error, Result};
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

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
    pub async fn list(&self, listing: &Listing) -> Result<Listed> {
        let (mut objects, problems) = match (self, listing) {
            (Source::Local(s), _) => s.list().await?,
            (Source::S3(s), Listing::Full) => (s.list().await?, Vec::new()),
            (Source::S3(s), Listing::Since(since)) => (s.list_since(*since).await?, Vec::new()),
        };
        let seen = objects.len();
        if let Listing::Since(since) = listing {
            objects.retain(|o| name_hour(&o.uri).is_none_or(|hour| hour >= *since));
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
    pub async fn stat(&self, uri: &str) -> std::result::Result<Option<LogObject>, String> {
        match self {
            Source::Local(s) => s.stat(uri).await,
            Source::S3(s) => s.stat(uri).await,
        }
    }

    /// Whether `uri` lies under this source.
    pub fn holds(&self, uri: &str) -> bool {
        match self {
            Source::Local(s) => s.holds(uri),
            Source::S3(s) => s.holds(uri),
        }
    }

    /// The whole content of one object; a body shorter than announced is an error.
    pub async fn fetch(&self, object: &LogObject) -> Result<Bytes> {
        match self {
            Source::Local(s) => s.fetch(object).await,
            Source::S3(s) => s.fetch(object).await,
        }
    }
}

/// What a listing found.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    /// The objects to consider, sorted by location.
    pub objects: Vec<LogObject>,
    /// Entries that could not be listed, each with its reason.
    pub problems: Vec<(String, String)>,
    /// Objects seen but named for hours before the listing's start (all of
    /// them in a local directory; on S3, those of the first day listed).
    pub outside_window: u64,
}

/// Which objects a run lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Everything under the source.
    Full,
    /// Objects named for this hour or later (CloudFront names files
    /// `<prefix><distribution>.YYYY-MM-DD-HH.<id>.gz` for the hour of their requests).
    Since(DateTime<Utc>),
}

/// The hour a log object is named for: the `.YYYY-MM-DD-HH.` of a legacy
/// CloudFront file name, else the `year=/month=/day=/hour=` or `/YYYY/MM/DD/HH/`
/// directories of v2 and Firehose layouts.
pub fn name_hour(location: &str) -> Option<DateTime<Utc>> {
    legacy_name_hour(location).or_else(|| path_hour(location))
}

fn path_hour(location: &str) -> Option<DateTime<Utc>> {
    let parts: Vec<&str> = location.split('/').collect();
    let hive = |key: &str| {
        parts
            .iter()
            .find_map(|p| p.strip_prefix(key))
            .and_then(|v| v.parse::<u32>().ok())
    };
    let (y, m, d, h) = match (hive("year="), hive("month="), hive("day="), hive("hour=")) {
        (Some(y), Some(m), Some(d), Some(h)) => (y, m, d, h),
        _ => parts.windows(4).rev().find_map(|w| {
            let n = |s: &str, len: usize| {
                (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| s.parse::<u32>().ok())
                    .flatten()
            };
            Some((n(w[0], 4)?, n(w[1], 2)?, n(w[2], 2)?, n(w[3], 2)?))
        })?,
    };
    let date = NaiveDate::from_ymd_opt(y as i32, m, d)?;
    Utc.from_utc_datetime(&date.and_hms_opt(h, 0, 0)?).into()
}

fn legacy_name_hour(location: &str) -> Option<DateTime<Utc>> {
    let name = location.rsplit('/').next()?;
    name.split('.').find_map(|part| {
        let b = part.as_bytes();
        if b.len() != 13 || b[4] != b'-' || b[7] != b'-' || b[10] != b'-' {
            return None;
        }
        let date = NaiveDate::parse_from_str(&part[..10], "%Y-%m-%d").ok()?;
        let hour: u32 = part[11..].parse().ok().filter(|h| *h < 24)?;
        Utc.from_utc_datetime(&date.and_hms_opt(hour, 0, 0)?).into()
    })
}

/// `48h` as (`48`, `h`): the leading digits and the rest.
pub fn number_and_unit(text: &str) -> (&str, &str) {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(split)
}

/// A duration like `48h`, `2d`, `90m` or `3600s`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration> {
    let text = text.trim();
    let (number, unit) = number_and_unit(text);
    let n: u64 = number
        .parse()
        .map_err(|_| Error::Config(format!("bad duration {text:?}: use e.g. 48h, 2d, 90m")))?;
    let per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "" => {
            return Err(Error::Config(format!(
                "duration {text:?} has no unit: use e.g. {n}h, {n}d, {n}m or {n}s"
            )));
        }
        _ => {
            return Err(Error::Config(format!(
                "bad duration unit in {text:?}: use s, m, h or d"
            )));
        }
    };
    let seconds = n
        .checked_mul(per_unit)
        .ok_or_else(|| Error::Config(format!("duration {text:?} is too long")))?;
    Ok(std::time::Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudfront_file_names_carry_their_hour() {
        let hour = name_hour("s3://b/logs/E2EXAMPLE.2025-10-05-01.a1b2c3.gz").unwrap();
        assert_eq!(hour.to_rfc3339(), "2025-10-05T01:00:00+00:00");
        assert_eq!(name_hour("/x/E2.2025-10-05-24.a.gz"), None);
        assert_eq!(name_hour("/x/notes.txt"), None);
        // A date in a directory name is not the file's hour.
        assert_eq!(name_hour("s3://b/2025-10-05-01.d/file.gz"), None);
        let hour = |p: &str| name_hour(p).map(|t| t.to_rfc3339());
        assert_eq!(
            hour("s3://b/AWSLogs/123456789012/CloudFront/E2/2025/10/05/01/x.gz").as_deref(),
            Some("2025-10-05T01:00:00+00:00")
        );
        assert_eq!(
            hour("s3://b/p/DistributionId=E2/year=2025/month=10/day=05/hour=07/x.parquet")
                .as_deref(),
            Some("2025-10-05T07:00:00+00:00")
        );
        assert_eq!(
            hour("/logs/rt/2025/10/05/18/edge-1-2025-10-05-18-00-34-0b7c.gz").as_deref(),
            Some("2025-10-05T18:00:00+00:00")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("48h").unwrap().as_secs(), 172_800);
        assert_eq!(parse_duration("2d").unwrap().as_secs(), 172_800);
        assert_eq!(parse_duration("90m").unwrap().as_secs(), 5_400);
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3w").is_err());
        // A number alone is refused, not taken as hours.
        let err = parse_duration("48").unwrap_err().to_string();
        assert!(err.contains("no unit") && err.contains("48h"), "{err}");
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("999999999999999999d").is_err());
    }
}
