//! Time as the commands take it: instants given as text in a zone, half-open
//! UTC ranges, and billing periods (a calendar month in a zone).
//!
//! Parsing is here, once, for every layer that takes a time: the lake's
//! `--as-of`, ingest's window, the queries' ranges, export's `--period`.
//! How a range becomes query parameters is the queries' business.
//!
//! An [`Hour`] is one hour of UTC time, as the lake partitions rows by it
//! (`dt=YYYY-MM-DD/hour=HH`); its conversions to and from milliseconds,
//! instants and partition values are its methods, nowhere else.
//!
//! "Now" comes from a [`Clock`]: the CLI reads the [`SystemClock`], a test
//! fixes the instant with a [`FixedClock`] (as delta-rs's `with_clock`), so
//! that what depends on the date (Stripe's 35-day window, grace periods, an
//! ingest run's lookback window and its recorded times) is testable on
//! fixtures of any age.

use crate::error::{Error, Result};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

/// Where the current instant comes from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock of the machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock stopped at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// Milliseconds in an hour.
const MS_PER_HOUR: i64 = 3_600_000;
/// Seconds in an hour.
const SECS_PER_HOUR: i64 = 3_600;

/// One hour of UTC time: its number is the hours since the Unix epoch
/// (1970-01-01T00:00:00Z is hour 0, the hour before it -1). A type of its own
/// so that an hour is never taken for milliseconds, seconds or a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Hour(i64);

impl Hour {
    /// The hour numbered `hours` since the epoch (the crate makes hours of
    /// instants and partitions; tests name them by number).
    #[cfg(test)]
    pub(crate) const fn from_epoch_hours(hours: i64) -> Self {
        Self(hours)
    }

    /// Its number: hours since the epoch.
    #[inline]
    pub(crate) const fn epoch_hours(self) -> i64 {
        self.0
    }

    /// The hour holding the instant `ms` milliseconds since the epoch (the
    /// line parser calls this once per request).
    #[inline]
    pub(crate) const fn of_millis(ms: i64) -> Self {
        Self(ms.div_euclid(MS_PER_HOUR))
    }

    /// The hour holding the instant `t`.
    #[inline]
    pub(crate) fn of(t: DateTime<Utc>) -> Self {
        Self(t.timestamp().div_euclid(SECS_PER_HOUR))
    }

    /// Its first instant, in milliseconds since the epoch.
    #[inline]
    pub(crate) const fn start_millis(self) -> i64 {
        self.0 * MS_PER_HOUR
    }

    /// Its first instant; `None` beyond the instants chrono holds.
    pub(crate) fn start(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(self.0 * SECS_PER_HOUR, 0)
    }

    /// The hour after it.
    #[inline]
    pub(crate) const fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// Its UTC date, `YYYY-MM-DD`: the `dt` partition value.
    pub(crate) fn dt(self) -> String {
        self.start()
            .unwrap_or_default()
            .format("%Y-%m-%d")
            .to_string()
    }

    /// Its hour of the UTC day, `HH` (`00` to `23`): the `hour` partition value.
    pub(crate) fn hour_of_day(self) -> String {
        self.start().unwrap_or_default().format("%H").to_string()
    }

    /// The hour of the partition values `dt` (`YYYY-MM-DD`) and `hour` (`HH`).
    pub(crate) fn of_partition(dt: &str, hour: &str) -> Option<Self> {
        let date = NaiveDate::parse_from_str(dt, "%Y-%m-%d").ok()?;
        let hour: i64 = hour.parse().ok()?;
        let day = date.and_time(Default::default()).and_utc().timestamp() / SECS_PER_HOUR;
        (0..24).contains(&hour).then_some(Self(day + hour))
    }
}

/// A half-open UTC time range `[from, to)`; open ends mean "all".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TimeRange {
    pub(crate) from: Option<DateTime<Utc>>,
    pub(crate) to: Option<DateTime<Utc>>,
}

impl TimeRange {
    /// Parses optional bounds in UTC (see [`TimeRange::parse_in_zone`]).
    pub(crate) fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self> {
        Self::parse_in_zone(from, to, chrono_tz::UTC, ["from", "to"])
    }

    /// Parses optional bounds given in `zone`, each as [`parse_instant_in`]
    /// reads it; errors name the bounds as `names` (the flags, or a named
    /// query's parameters).
    pub(crate) fn parse_in_zone(
        from: Option<&str>,
        to: Option<&str>,
        zone: chrono_tz::Tz,
        names: [&str; 2],
    ) -> Result<Self> {
        let [from_name, to_name] = names;
        let bound = |text: Option<&str>, name: &str| {
            text.map(|t| parse_instant_in(t, zone).map_err(|e| e.in_setting(name)))
                .transpose()
        };
        let range = Self {
            from: bound(from, from_name)?,
            to: bound(to, to_name)?,
        };
        if let (Some(f), Some(t)) = (range.from, range.to)
            && f > t
        {
            return Err(Error::Config(format!(
                "{from_name} {f} is after {to_name} {t}"
            )));
        }
        Ok(range)
    }
}

/// A billing period: a calendar month in a time zone, as a UTC range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Period {
    /// `YYYY-MM`.
    pub(crate) label: String,
    /// The IANA zone the month is taken in (`UTC` by default).
    pub(crate) tz: String,
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
}

/// Why `label` is no billing month.
pub(crate) fn not_a_month(label: &str) -> String {
    format!("{label:?}: use YYYY-MM")
}

impl Period {
    /// `[first day 00:00, next month's first day 00:00)` of `YYYY-MM` in `tz`.
    pub(crate) fn month(label: &str, tz: Option<&str>) -> Result<Self> {
        let bad = || Error::Config(format!("--period {}", not_a_month(label)));
        let (y, m) = label.split_once('-').ok_or_else(bad)?;
        let (year, month): (i32, u32) =
            (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        let first = NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(bad)?;
        let next = if month == 12 {
            NaiveDate::from_ymd_opt(year + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(year, month + 1, 1)
        }
        .ok_or_else(bad)?;
        let zone = match tz {
            Some(name) => zone(name)?,
            None => chrono_tz::UTC,
        };
        let midnight = |d: NaiveDate| -> Result<DateTime<Utc>> {
            let local = d.and_hms_opt(0, 0, 0).ok_or_else(bad)?;
            zone.from_local_datetime(&local)
                .earliest()
                // A zone that skips midnight: the first instant of the day.
                .or_else(|| {
                    zone.from_local_datetime(&(local + chrono::Duration::hours(1)))
                        .earliest()
                })
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(bad)
        };
        Ok(Self {
            label: format!("{:04}-{:02}", first.year(), first.month()),
            tz: zone.name().to_string(),
            start: midnight(first)?,
            end: midnight(next)?,
        })
    }

    pub(crate) fn range(&self) -> TimeRange {
        TimeRange {
            from: Some(self.start),
            to: Some(self.end),
        }
    }
}

/// The start of every range without one.
pub(crate) fn epoch_floor() -> DateTime<Utc> {
    DateTime::from_timestamp(0, 0).unwrap_or_default()
}

/// The end of every range without one.
pub(crate) fn epoch_ceiling() -> DateTime<Utc> {
    // 9999-12-31T00:00:00Z: past any log, within every timestamp type.
    DateTime::from_timestamp(253_402_214_400, 0).unwrap_or_default()
}

/// A date (midnight UTC), a time without a zone (UTC) or an RFC 3339 instant.
pub(crate) fn parse_instant(text: &str) -> Result<DateTime<Utc>> {
    parse_instant_in(text, chrono_tz::UTC)
}

/// An IANA zone named by `--tz` (or `EDGEMETER_TZ`).
pub(crate) fn zone(tz: &str) -> Result<chrono_tz::Tz> {
    tz.parse()
        .map_err(|_| Error::Config(format!("--tz {}", unknown_zone(tz))))
}

/// Why `tz` is no time zone, naming the zones it may have meant.
pub(crate) fn unknown_zone(tz: &str) -> String {
    {
        // `Berlin`, `europe/berlin`: the zones whose name or city it is.
        let wanted = tz.trim().to_ascii_lowercase().replace(' ', "_");
        let near: Vec<&str> = chrono_tz::TZ_VARIANTS
            .iter()
            .map(|z| z.name())
            .filter(|name| {
                let name = name.to_ascii_lowercase();
                name == wanted || name.rsplit('/').next() == Some(wanted.as_str())
            })
            .collect();
        let hint = match near.as_slice() {
            [] => "like Europe/Berlin or America/New_York".to_string(),
            names => format!("did you mean {}?", names.join(" or ")),
        };
        format!("{tz:?}: unknown time zone; give an IANA name ({hint})")
    }
}

/// An instant given in `zone`: a month (`2025-11`, its first midnight), a
/// date (`2025-11-01`, its midnight), a time without a zone
/// (`2025-11-01T09`, `…T09:30`, `…T09:30:00`) as the wall clock there, or an
/// RFC 3339 instant, whose own offset wins. A wall-clock time the zone skips
/// (spring forward) means the first instant after the gap; one it repeats
/// (fall back) means the earlier.
pub(crate) fn parse_instant_in(text: &str, zone: chrono_tz::Tz) -> Result<DateTime<Utc>> {
    use chrono::{NaiveDateTime, TimeZone};
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d"))
        .map(|d| d.and_time(Default::default()))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .or_else(|_| NaiveDateTime::parse_from_str(&format!("{text}:00"), "%Y-%m-%dT%H:%M"));
    let Ok(naive) = naive else {
        return Err(Error::Config(format!(
            "{text:?} is not a month (2025-03), a date (2025-03-01), a time (2025-03-01T12:00) \
             or RFC 3339 (2025-03-01T12:00:00Z)"
        )));
    };
    // Gaps last at most a few hours; step through one a minute at a time.
    for minutes in 0..=24 * 60 {
        let wall = naive + chrono::Duration::minutes(minutes);
        if let Some(t) = zone.from_local_datetime(&wall).earliest() {
            return Ok(t.with_timezone(&Utc));
        }
    }
    Err(Error::Config(format!("{text:?} does not exist in {zone}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn hours_are_counted_from_the_epoch() {
        // 2025-10-01T00:00:00Z is 1,759,276,800 s = 488,688 h after the epoch.
        let h = Hour::from_epoch_hours(488_688);
        assert_eq!(h.epoch_hours(), 488_688);
        assert_eq!(h.start(), Some(utc("2025-10-01T00:00:00Z")));
        assert_eq!(h.start_millis(), 1_759_276_800_000);
        assert_eq!(Hour::of(utc("2025-10-01T00:00:00Z")), h);
        assert_eq!(Hour::of(utc("2025-10-01T00:59:59.999Z")), h);
        assert_eq!(Hour::of(utc("2025-10-01T01:00:00Z")), h.next());
        assert_eq!(Hour::of_millis(1_759_276_800_000), h);
        assert_eq!(Hour::of_millis(1_759_280_399_999), h);
        assert_eq!(Hour::of_millis(1_759_280_400_000), h.next());
        assert_eq!(
            (h.dt(), h.hour_of_day()),
            ("2025-10-01".into(), "00".into())
        );
        // 2025-10-05T01:00:00Z: four days and an hour later, 488,688 + 97.
        let h = Hour::from_epoch_hours(488_785);
        assert_eq!(h.start(), Some(utc("2025-10-05T01:00:00Z")));
        assert_eq!(
            (h.dt(), h.hour_of_day()),
            ("2025-10-05".into(), "01".into())
        );
        assert_eq!(Hour::of_partition("2025-10-05", "01"), Some(h));
        // 2019-12-31T23:00:00Z: 1,577,833,200 s = 438,287 h.
        let h = Hour::from_epoch_hours(438_287);
        assert_eq!(
            (h.dt(), h.hour_of_day()),
            ("2019-12-31".into(), "23".into())
        );
        assert_eq!(Hour::of_partition("2019-12-31", "23"), Some(h));
        assert_eq!(h.next().dt(), "2020-01-01");
        // The epoch is hour 0; the hours before it are negative, and an
        // instant before the epoch is in the hour that starts at or before it.
        let zero = Hour::from_epoch_hours(0);
        assert_eq!(Hour::of_millis(0), zero);
        assert_eq!(
            (zero.dt(), zero.hour_of_day()),
            ("1970-01-01".into(), "00".into())
        );
        let before = Hour::from_epoch_hours(-1);
        assert_eq!(Hour::of_millis(-1), before);
        assert_eq!(Hour::of_millis(-3_600_000), before);
        assert_eq!(Hour::of_millis(-3_600_001), Hour::from_epoch_hours(-2));
        assert_eq!(Hour::of(utc("1969-12-31T23:30:00Z")), before);
        assert_eq!(before.start_millis(), -3_600_000);
        assert_eq!(before.start(), Some(utc("1969-12-31T23:00:00Z")));
        assert_eq!(before.next(), zero);
        assert_eq!(
            (before.dt(), before.hour_of_day()),
            ("1969-12-31".into(), "23".into())
        );
        assert_eq!(Hour::of_partition("1969-12-31", "23"), Some(before));
        // 1969-12-30T00:00:00Z: 2 days, 48 hours, before the epoch.
        assert_eq!(
            Hour::of_partition("1969-12-30", "00"),
            Some(Hour::from_epoch_hours(-48))
        );
        // Hours are ordered as time is.
        assert!(before < zero && zero < h);
        // Partition values that are no hour.
        assert_eq!(Hour::of_partition("2025-10-05", "24"), None);
        assert_eq!(Hour::of_partition("2025-10-05", "-1"), None);
        assert_eq!(Hour::of_partition("2025-02-29", "00"), None);
        assert_eq!(Hour::of_partition("2025-10-05", "x"), None);
    }

    #[test]
    fn bounds_are_wall_clock_times_in_the_zone() {
        let ny = zone("America/New_York").unwrap();
        // EDT (UTC-4) until 2025-11-02 02:00 local, then EST (UTC-5).
        assert_eq!(
            parse_instant_in("2025-11", ny).unwrap(),
            utc("2025-11-01T04:00:00Z")
        );
        assert_eq!(
            parse_instant_in("2025-11-01", ny).unwrap(),
            utc("2025-11-01T04:00:00Z")
        );
        assert_eq!(
            parse_instant_in("2025-12-01", ny).unwrap(),
            utc("2025-12-01T05:00:00Z")
        );
        assert_eq!(
            parse_instant_in("2025-11-03T09", ny).unwrap(),
            utc("2025-11-03T14:00:00Z")
        );
        assert_eq!(
            parse_instant_in("2025-11-03T09:30", ny).unwrap(),
            utc("2025-11-03T14:30:00Z")
        );
        // The repeated hour of fall back is its first pass.
        assert_eq!(
            parse_instant_in("2025-11-02T01:30:00", ny).unwrap(),
            utc("2025-11-02T05:30:00Z")
        );
        // The skipped hour of spring forward is the instant after the gap.
        assert_eq!(
            parse_instant_in("2025-03-09T02:30", ny).unwrap(),
            utc("2025-03-09T07:00:00Z")
        );
        // An explicit offset wins over the zone.
        assert_eq!(
            parse_instant_in("2025-11-01T00:00:00Z", ny).unwrap(),
            utc("2025-11-01T00:00:00Z")
        );
        // Without a zone, UTC.
        assert_eq!(
            parse_instant("2025-10-05T09").unwrap(),
            utc("2025-10-05T09:00:00Z")
        );
        assert!(parse_instant("2025-13-01").is_err());
        assert!(parse_instant("yesterday").is_err());
        let err = zone("Berlin").unwrap_err().to_string();
        assert!(err.contains("did you mean Europe/Berlin?"), "{err}");
        let err = zone("Mars/Olympus").unwrap_err().to_string();
        assert!(err.contains("unknown time zone"), "{err}");
    }

    #[test]
    fn a_range_in_a_zone_is_its_local_midnights() {
        let range = TimeRange::parse_in_zone(
            Some("2025-10"),
            Some("2025-11"),
            zone("Europe/Berlin").unwrap(),
            ["--from", "--to"],
        )
        .unwrap();
        // CEST (UTC+2) on 1 October, CET (UTC+1) on 1 November.
        assert_eq!(range.from, Some(utc("2025-09-30T22:00:00Z")));
        assert_eq!(range.to, Some(utc("2025-10-31T23:00:00Z")));
    }

    #[test]
    fn months_in_utc_and_in_a_zone() {
        let p = Period::month("2025-02", None).unwrap();
        assert_eq!(p.start.to_rfc3339(), "2025-02-01T00:00:00+00:00");
        assert_eq!(p.end.to_rfc3339(), "2025-03-01T00:00:00+00:00");
        let p = Period::month("2025-12", None).unwrap();
        assert_eq!(p.end.to_rfc3339(), "2026-01-01T00:00:00+00:00");
        // Berlin is UTC+1 in winter, UTC+2 from the last Sunday of March.
        let p = Period::month("2025-03", Some("Europe/Berlin")).unwrap();
        assert_eq!(p.start.to_rfc3339(), "2025-02-28T23:00:00+00:00");
        assert_eq!(p.end.to_rfc3339(), "2025-03-31T22:00:00+00:00");
        assert!(Period::month("2025-13", None).is_err());
        assert!(Period::month("2025-01", Some("Mars/Olympus")).is_err());
    }
}
