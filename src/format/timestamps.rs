//! The times of requests: `date` and `time` (`YYYY-MM-DD`, `HH:MM:SS`, UTC),
//! or epoch seconds with a fraction (`timestamp`) or milliseconds
//! (`timestamp(ms)`), to milliseconds since the epoch; the calendar maths
//! that takes; and the range of instants a request may have. The line parser
//! (`w3c`) calls these once per line, hence `#[inline]`.

/// The first and last instants a request may have: CloudFront started in
/// 2008, and a year past 2099 is a damaged line, not a request.
pub(super) const FIRST_VALID_MS: i64 = 946_684_800_000; // 2000-01-01T00:00:00Z
pub(super) const END_VALID_MS: i64 = 4_102_444_800_000; // 2100-01-01T00:00:00Z

/// Epoch seconds with an optional fraction (`1759687234.191`), times 1000 /
/// `scale`; `scale` 1 reads whole milliseconds.
#[inline]
pub(super) fn parse_epoch(raw: &str, scale: i64) -> Option<i64> {
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    if scale == 1 {
        return (fraction.is_empty()).then_some(whole);
    }
    let mut ms = 0i64;
    for (i, b) in fraction.bytes().take(3).enumerate() {
        ms += i64::from(b - b'0') * 10i64.pow(2 - i as u32);
    }
    // A number too large for milliseconds is no time (found by fuzzing:
    // unchecked, it wrapped into a plausible instant in release builds).
    whole.checked_mul(scale)?.checked_add(ms)
}

/// `YYYY-MM-DD` and `HH:MM:SS` (UTC) to milliseconds since the epoch.
#[inline]
pub(super) fn parse_timestamp(date: &str, time: &str) -> Option<i64> {
    let d = date.as_bytes();
    let t = time.as_bytes();
    if d.len() != 10 || d[4] != b'-' || d[7] != b'-' || t.len() != 8 || t[2] != b':' || t[5] != b':'
    {
        return None;
    }
    let num = |b: &[u8]| -> Option<i64> {
        b.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (num(&d[0..4])?, num(&d[5..7])?, num(&d[8..10])?);
    let (h, m, s) = (num(&t[0..2])?, num(&t[3..5])?, num(&t[6..8])?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + h) * 60 + m) * 60_000 + s * 1000)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_times_too_large_for_milliseconds_are_no_times() {
        assert_eq!(parse_epoch("1759687234.191", 1000), Some(1_759_687_234_191));
        assert_eq!(parse_epoch("1759687234191", 1), Some(1_759_687_234_191));
        // 17596872375968723 s is more milliseconds than an i64 holds.
        assert_eq!(parse_epoch("17596872375968723.191", 1000), None);
        assert_eq!(parse_epoch("9223372036854775807.999", 1000), None);
        assert_eq!(parse_epoch("99999999999999999999", 1), None);
    }

    #[test]
    fn timestamps_are_validated() {
        assert_eq!(parse_timestamp("1970-01-01", "00:00:00"), Some(0));
        assert_eq!(
            parse_timestamp("2024-02-29", "23:59:59"),
            Some(1_709_251_199_000)
        );
        assert_eq!(parse_timestamp("2023-02-29", "00:00:00"), None);
        assert_eq!(parse_timestamp("2023-01-01", "24:00:00"), None);
        assert_eq!(parse_timestamp("2023-1-01", "00:00:00"), None);
    }
}
