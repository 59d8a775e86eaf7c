//! `edgemeter usage` with windows, dimensions and key filters.
//!
//! The plain per-key query is `queries/usage_by_key.sql`. Windows and
//! dimensions change the shape of the statement, so this module assembles it
//! from fixed fragments: dimensions come from a closed list of column
//! expressions, and every value (range, zone, keys) is a bound parameter, never
//! text pasted into SQL.

use super::{LakeSession, udf};
use crate::error::{Error, Result};
use crate::schema::status::StatusClass;
use crate::time::{Hour, TimeRange};
use datafusion::common::ScalarValue;
use datafusion::execution::SendableRecordBatchStream;

/// A window size for `--by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum WindowUnit {
    Hour,
    Day,
    Month,
}

impl WindowUnit {
    /// Its name as `window_start` takes it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            WindowUnit::Hour => "hour",
            WindowUnit::Day => "day",
            WindowUnit::Month => "month",
        }
    }
}

/// A dimension for `--group-by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Dimension {
    /// `cs_uri_stem` with ids folded into `{id}`.
    Endpoint,
    Method,
    Status,
    Edge,
    Protocol,
}

impl Dimension {
    fn expr(self) -> (&'static str, &'static str) {
        match self {
            Dimension::Endpoint => ("endpoint_template(cs_uri_stem)", "endpoint"),
            Dimension::Method => ("cs_method", "method"),
            Dimension::Status => ("sc_status", "status"),
            Dimension::Edge => ("x_edge_location", "edge"),
            Dimension::Protocol => ("cs_protocol", "protocol"),
        }
    }

    /// Its column among [`HOURLY_ROWS`]' (none: the rollup does not keep it).
    fn rollup_column(self) -> Option<&'static str> {
        match self {
            Dimension::Endpoint => Some("endpoint"),
            Dimension::Method => Some("cs_method"),
            Dimension::Status => Some("sc_status"),
            Dimension::Edge => Some("x_edge_location"),
            Dimension::Protocol => None,
        }
    }
}

/// The most hours of a range checked against a zone's windows; a longer or
/// open range in a zone other than UTC is read from raw rows.
const MOST_HOURS_CHECKED: i64 = 24 * 366 * 10;

/// Whether every whole UTC hour of `range` lies inside one window of `unit`
/// in `zone`, so that an hour of the rollup counts in exactly one window. It
/// does not where the zone's offset is not a whole number of hours
/// (Asia/Kolkata) or changes within an hour.
pub(crate) fn hours_fit_windows(range: &TimeRange, unit: &str, zone: chrono_tz::Tz) -> bool {
    if zone == chrono_tz::UTC {
        return true;
    }
    let (from, to) = match (range.from, range.to) {
        (Some(from), Some(to)) => (from, to),
        _ => return false,
    };
    let first = Hour::of(from);
    let first = if first.start() == Some(from) {
        first
    } else {
        first.next()
    };
    let Some(start) = first.start() else {
        return false;
    };
    if (to - start).num_hours() > MOST_HOURS_CHECKED {
        return false;
    }
    let mut hour = start;
    while hour + chrono::Duration::hours(1) <= to {
        let last = hour + chrono::Duration::milliseconds(3_599_999);
        if udf::window_start(hour, unit, zone) != udf::window_start(last, unit, zone) {
            return false;
        }
        hour += chrono::Duration::hours(1);
    }
    true
}

/// Whether a row standing for a whole UTC day counts in the window of every
/// hour of it: without windows, or with days or months of UTC (`tz`).
pub(crate) fn whole_days_fit_windows(by: Option<WindowUnit>, tz: Option<chrono_tz::Tz>) -> bool {
    match by {
        None => true,
        Some(WindowUnit::Hour) => false,
        Some(WindowUnit::Day | WindowUnit::Month) => tz.is_none_or(|tz| tz == chrono_tz::UTC),
    }
}

/// The rows of a range as the rollup groups them: whole hours of
/// `usage_hourly`, and the raw rows of the partial hours at the range's edges
/// with the rollup's columns (as `queries/usage_by_key_status.sql` does). An
/// hour row stands at its `hour_start`. Usage and the meters the rollup
/// answers are summed from these rows, with [`TimeRange::params`].
pub(crate) const HOURLY_ROWS: &str =
    "SELECT hour_start AS \"timestamp\", api_key_id, api_key_hint, sc_status, cs_method,
    host, endpoint, x_edge_location, requests, bytes_out, bytes_in
FROM usage_hourly
WHERE dt >= $from_dt AND dt <= $to_dt
  AND (dt > $whole_from_dt OR (dt = $whole_from_dt AND hour >= $whole_from_hour))
  AND (dt < $whole_to_dt OR (dt = $whole_to_dt AND hour < $whole_to_hour))
UNION ALL
SELECT \"timestamp\", api_key_id, api_key_hint, sc_status, cs_method,
    lower(coalesce(x_host_header, cs_host)), endpoint_template(cs_uri_stem), x_edge_location,
    CAST(1 AS BIGINT), coalesce(sc_bytes, 0), coalesce(cs_bytes, 0)
FROM requests
WHERE ((dt = $head_dt AND hour = $head_hour) OR (dt = $tail_dt AND hour = $tail_hour))
  AND \"timestamp\" >= $from AND \"timestamp\" < $to
  AND (\"timestamp\" < $whole_from OR \"timestamp\" >= $whole_to)";

/// The whole hours of a range in `usage_hourly_keys`, by key and status,
/// each row at its `hour_start` (a fragment of [`HOURLY_KEY_ROWS`] and
/// [`DAY_KEY_ROWS`], which may add conditions after it).
macro_rules! key_hours {
    () => {
        "SELECT hour_start AS \"timestamp\", api_key_id, api_key_hint, sc_status,
    requests, bytes_out, bytes_in
FROM usage_hourly_keys
WHERE dt >= $from_dt AND dt <= $to_dt
  AND (dt > $whole_from_dt OR (dt = $whole_from_dt AND hour >= $whole_from_hour))
  AND (dt < $whole_to_dt OR (dt = $whole_to_dt AND hour < $whole_to_hour))"
    };
}

/// The raw rows of the partial hours at a range's edges with the columns of
/// `key_hours!`'s rows, each standing for one request.
macro_rules! key_edges {
    () => {
        "SELECT \"timestamp\", api_key_id, api_key_hint, sc_status,
    CAST(1 AS BIGINT), coalesce(sc_bytes, 0), coalesce(cs_bytes, 0)
FROM requests
WHERE ((dt = $head_dt AND hour = $head_hour) OR (dt = $tail_dt AND hour = $tail_hour))
  AND \"timestamp\" >= $from AND \"timestamp\" < $to
  AND (\"timestamp\" < $whole_from OR \"timestamp\" >= $whole_to)"
    };
}

/// [`HOURLY_ROWS`] by key and status alone, from `usage_hourly_keys` (a fifth
/// of the rows): for usage that groups by nothing else.
pub(crate) const HOURLY_KEY_ROWS: &str = concat!(key_hours!(), "\nUNION ALL\n", key_edges!());

/// [`HOURLY_KEY_ROWS`] with the whole UTC days of the range read from
/// `usage_daily_totals` (a row per day, key and status, standing at the
/// day's start): for usage that sums whole UTC days and nothing finer.
pub(crate) const DAY_KEY_ROWS: &str = concat!(
    "SELECT day_start AS \"timestamp\", api_key_id, api_key_hint, sc_status,
    requests, bytes_out, bytes_in
FROM usage_daily_totals
WHERE dt >= $days_from_dt AND dt < $days_to_dt
UNION ALL
",
    key_hours!(),
    "
  AND (dt < $days_from_dt OR dt >= $days_to_dt)
UNION ALL
",
    key_edges!()
);

/// What to count.
#[derive(Debug, Clone, Default)]
pub(crate) struct UsageQuery {
    pub(crate) range: TimeRange,
    pub(crate) by: Option<WindowUnit>,
    /// Zone of the windows (UTC when `None`).
    pub(crate) tz: Option<chrono_tz::Tz>,
    pub(crate) group_by: Vec<Dimension>,
    /// Only these `api_key_id`s (all when empty).
    pub(crate) keys: Vec<String>,
}

/// The columns every usage query sums, the status classes as
/// [`StatusClass`] defines them (their bounds bound as parameters).
fn measures() -> String {
    let [billable, client, server] = StatusClass::COUNTED.map(|(name, _)| StatusClass::sql(name));
    format!(
        "count(*) AS requests,
    count(*) FILTER (WHERE {billable}) AS billable_requests,
    count(*) FILTER (WHERE {client}) AS client_errors,
    count(*) FILTER (WHERE {server}) AS server_errors,
    coalesce(sum(sc_bytes), 0) AS bytes_out,
    coalesce(sum(cs_bytes), 0) AS bytes_in"
    )
}

/// [`measures`] summed from [`HOURLY_ROWS`], where a row stands for
/// `requests` requests.
fn rollup_measures() -> String {
    let [billable, client, server] = StatusClass::COUNTED.map(|(name, _)| StatusClass::sql(name));
    format!(
        "sum(requests) AS requests,
    coalesce(sum(requests) FILTER (WHERE {billable}), 0) AS billable_requests,
    coalesce(sum(requests) FILTER (WHERE {client}), 0) AS client_errors,
    coalesce(sum(requests) FILTER (WHERE {server}), 0) AS server_errors,
    sum(bytes_out) AS bytes_out,
    sum(bytes_in) AS bytes_in"
    )
}

/// Refuses a `--key` that is not an `api_key_id` (64 hex digits). The value
/// is not echoed: a raw key given to --key by mistake must not land in a
/// terminal's scrollback or a job's log.
pub(crate) fn check_key_ids(keys: &[String]) -> Result<()> {
    if let Some(at) = keys
        .iter()
        .position(|k| k.len() != 64 || !k.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(Error::Config(format!(
            "--key number {} ({} characters) is not an api_key_id (64 hex digits); use --key-raw for a raw key",
            at + 1,
            keys[at].chars().count()
        )));
    }
    Ok(())
}

impl UsageQuery {
    /// Whether the rollup answers the query: every dimension is one it
    /// keeps, and every whole hour of the range lies in one window.
    pub(crate) fn answered_by_rollup(&self) -> bool {
        self.group_by.iter().all(|d| d.rollup_column().is_some())
            && self.by.is_none_or(|unit| {
                hours_fit_windows(&self.range, unit.name(), self.tz.unwrap_or(chrono_tz::UTC))
            })
    }

    /// The statement and its parameters: over [`HOURLY_ROWS`] (or
    /// [`HOURLY_KEY_ROWS`]) where the rollups answer it, over raw `requests`
    /// rows otherwise.
    pub(crate) fn sql(&self) -> Result<(String, Vec<(String, ScalarValue)>)> {
        let rollup = self.answered_by_rollup();
        let mut params = self.range.params();
        params.extend(super::status_params());
        let mut select = Vec::new();
        let mut group = Vec::new();
        if let Some(unit) = self.by {
            let tz = self.tz.unwrap_or(chrono_tz::UTC).name().to_string();
            let unit = unit.name();
            select.push("window_start(\"timestamp\", $unit, $tz) AS window_start".to_string());
            group.push("window_start".to_string());
            params.push(("unit".into(), ScalarValue::Utf8(Some(unit.into()))));
            params.push(("tz".into(), ScalarValue::Utf8(Some(tz))));
        }
        select.push("api_key_id".into());
        select.push("max(api_key_hint) AS api_key_hint".into());
        group.push("api_key_id".into());
        let mut dims: Vec<Dimension> = Vec::new();
        for d in &self.group_by {
            if !dims.contains(d) {
                dims.push(*d);
            }
        }
        for d in &dims {
            let (expr, name) = d.expr();
            let expr = match rollup {
                true => d.rollup_column().unwrap_or(expr),
                false => expr,
            };
            select.push(format!("{expr} AS {name}"));
            group.push(name.to_string());
        }
        let mut filter = String::new();
        if !self.keys.is_empty() {
            check_key_ids(&self.keys)?;
            filter = "\n  AND array_has(string_to_array($keys, ','), api_key_id)".into();
            params.push((
                "keys".into(),
                ScalarValue::Utf8(Some(self.keys.join(",").to_ascii_lowercase())),
            ));
        }
        let order: Vec<String> = group
            .iter()
            .map(|g| format!("{g} ASC NULLS LAST"))
            .collect();
        // Grouped by nothing but key, status and time: the narrow rollup,
        // and its day totals where no window is finer than a UTC day.
        let rows = match dims.iter().all(|d| *d == Dimension::Status) {
            true if whole_days_fit_windows(self.by, self.tz) => DAY_KEY_ROWS,
            true => HOURLY_KEY_ROWS,
            false => HOURLY_ROWS,
        };
        let (source, range, measures) = match rollup {
            true => (format!("(\n{rows}\n) counted"), "true", rollup_measures()),
            false => (
                "requests".to_string(),
                "dt >= $from_dt AND dt <= $to_dt\n  AND \"timestamp\" >= $from AND \"timestamp\" < $to",
                measures(),
            ),
        };
        let sql = format!(
            "SELECT\n    {},\n    {measures}\nFROM {source}\nWHERE {range}{filter}\nGROUP BY {}\nORDER BY {}",
            select.join(",\n    "),
            group.join(", "),
            order.join(", ")
        );
        Ok((sql, params))
    }

    pub(crate) async fn run(&self, session: &LakeSession) -> Result<SendableRecordBatchStream> {
        if self.by.is_none() && self.group_by.is_empty() && self.keys.is_empty() {
            return session.named("usage_by_key", self.range.params()).await;
        }
        let (sql, params) = self.sql()?;
        let df = session
            .read_only_sql(&sql)
            .await?
            .with_param_values(params)?;
        super::execute(df).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn range(from: &str, to: &str) -> TimeRange {
        let at = |t: &str| Some(t.parse::<DateTime<Utc>>().unwrap());
        TimeRange {
            from: at(from),
            to: at(to),
        }
    }

    #[test]
    fn rollup_hours_are_used_only_where_each_lies_in_one_window() {
        let zone = |tz: &str| crate::time::zone(tz).unwrap();
        let october = range("2025-10-01T00:00:00Z", "2025-11-01T00:00:00Z");
        // Whole-hour offsets, summer time ending on 26 October included.
        for unit in ["hour", "day", "month"] {
            assert!(hours_fit_windows(&october, unit, zone("Europe/Berlin")));
            assert!(hours_fit_windows(&october, unit, zone("UTC")));
        }
        // UTC+5:30: every UTC hour straddles two local hours; 18:00-19:00 UTC
        // straddles local midnight.
        let kolkata = zone("Asia/Kolkata");
        assert!(!hours_fit_windows(&october, "hour", kolkata));
        assert!(!hours_fit_windows(&october, "day", kolkata));
        // ... but a range whose whole hours all lie in one local day is fine
        // for days (its edges, 18:30 local, are read from raw rows anyway).
        let day = range("2025-10-05T00:00:00Z", "2025-10-05T18:00:00Z");
        assert!(hours_fit_windows(&day, "day", kolkata));
        assert!(!hours_fit_windows(&day, "hour", kolkata));
        // Lord Howe moves its clocks by half an hour: whole offsets half the year.
        let lord_howe = zone("Australia/Lord_Howe");
        assert!(!hours_fit_windows(&october, "hour", lord_howe));
        // Open ranges are not checked hour by hour outside UTC.
        let open = TimeRange {
            from: None,
            to: None,
        };
        assert!(hours_fit_windows(&open, "day", zone("UTC")));
        assert!(!hours_fit_windows(&open, "day", zone("Europe/Berlin")));
    }

    /// Every placeholder of an assembled statement is bound, the status
    /// classes' bounds included, whether the rollup answers it or raw rows.
    #[test]
    fn assembled_statements_bind_every_placeholder() {
        for group_by in [
            vec![],
            vec![Dimension::Status, Dimension::Endpoint],
            vec![Dimension::Protocol],
        ] {
            let query = UsageQuery {
                by: Some(WindowUnit::Day),
                group_by,
                keys: vec!["a".repeat(64)],
                ..UsageQuery::default()
            };
            let (sql, params) = query.sql().unwrap();
            assert!(sql.contains(&StatusClass::sql("billable")));
            for name in crate::query::library::tests::placeholders(&sql) {
                assert!(
                    params.iter().any(|(n, _)| *n == name),
                    "${name} is not bound"
                );
            }
        }
    }

    /// The rollup answers windows whose zone's hours fit them and every
    /// dimension but the protocol (which it does not keep).
    #[test]
    fn the_rollup_answers_what_it_keeps_in_windows_its_hours_fit() {
        let zone = |tz: &str| Some(crate::time::zone(tz).unwrap());
        let october = range("2025-10-01T00:00:00Z", "2025-11-01T00:00:00Z");
        let query = |by, tz, group_by: &[Dimension]| UsageQuery {
            range: october,
            by,
            tz,
            group_by: group_by.to_vec(),
            keys: vec!["a".repeat(64)],
        };
        let by_rollup = |q: UsageQuery| {
            let (sql, _) = q.sql().unwrap();
            assert_eq!(q.answered_by_rollup(), sql.contains("FROM usage_hourly"));
            q.answered_by_rollup()
        };
        assert!(by_rollup(query(None, None, &[])));
        assert!(by_rollup(query(
            Some(WindowUnit::Day),
            zone("Europe/Berlin"),
            &[
                Dimension::Endpoint,
                Dimension::Method,
                Dimension::Status,
                Dimension::Edge
            ],
        )));
        assert!(!by_rollup(query(None, None, &[Dimension::Protocol])));
        // Nothing but key, status and time: the narrow rollup.
        let narrow = |q: UsageQuery| q.sql().unwrap().0.contains("FROM usage_hourly_keys");
        assert!(narrow(query(Some(WindowUnit::Day), None, &[])));
        // Its day totals where no window is finer than a UTC day.
        let days = |q: UsageQuery| q.sql().unwrap().0.contains("FROM usage_daily_totals");
        assert!(days(query(Some(WindowUnit::Day), None, &[])));
        assert!(days(query(
            Some(WindowUnit::Month),
            zone("UTC"),
            &[Dimension::Status]
        )));
        assert!(!days(query(Some(WindowUnit::Hour), None, &[])));
        assert!(!days(query(
            Some(WindowUnit::Day),
            zone("Europe/Berlin"),
            &[]
        )));
        assert!(!days(query(None, None, &[Dimension::Edge])));
        assert!(narrow(query(None, None, &[Dimension::Status])));
        assert!(!narrow(query(
            None,
            None,
            &[Dimension::Status, Dimension::Edge]
        )));
        assert!(!by_rollup(query(
            Some(WindowUnit::Hour),
            zone("Asia/Kolkata"),
            &[]
        )));
    }
}
