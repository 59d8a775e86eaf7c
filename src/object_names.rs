//! What a log object's name says: the hour of its requests, which CloudFront
//! and the v2 and Firehose layouts put in the file name or its directories.
//! Listing skips objects by it, and the lake files an object's record under it.

use crate::time::Hour;
use chrono::{NaiveDate, TimeZone, Utc};

/// The hour a log object is named for: the `.YYYY-MM-DD-HH.` of a legacy
/// CloudFront file name, else the `year=/month=/day=/hour=` or `/YYYY/MM/DD/HH/`
/// directories of v2 and Firehose layouts.
pub(crate) fn name_hour(location: &str) -> Option<Hour> {
    legacy_name_hour(location).or_else(|| path_hour(location))
}

fn path_hour(location: &str) -> Option<Hour> {
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
    Some(Hour::of(Utc.from_utc_datetime(&date.and_hms_opt(h, 0, 0)?)))
}

fn legacy_name_hour(location: &str) -> Option<Hour> {
    let name = location.rsplit('/').next()?;
    name.split('.').find_map(|part| {
        let b = part.as_bytes();
        if b.len() != 13 || b[4] != b'-' || b[7] != b'-' || b[10] != b'-' {
            return None;
        }
        let date = NaiveDate::parse_from_str(&part[..10], "%Y-%m-%d").ok()?;
        let hour: u32 = part[11..].parse().ok().filter(|h| *h < 24)?;
        Some(Hour::of(
            Utc.from_utc_datetime(&date.and_hms_opt(hour, 0, 0)?),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudfront_file_names_carry_their_hour() {
        let hour = name_hour("s3://b/logs/E2EXAMPLE.2025-10-05-01.a1b2c3.gz").unwrap();
        assert_eq!(
            hour.start().unwrap().to_rfc3339(),
            "2025-10-05T01:00:00+00:00"
        );
        assert_eq!(name_hour("/x/E2.2025-10-05-24.a.gz"), None);
        assert_eq!(name_hour("/x/notes.txt"), None);
        // A date in a directory name is not the file's hour.
        assert_eq!(name_hour("s3://b/2025-10-05-01.d/file.gz"), None);
        let hour = |p: &str| name_hour(p).and_then(Hour::start).map(|t| t.to_rfc3339());
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
}
