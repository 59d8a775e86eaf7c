//! OpenMeter's meter query over the lake: its query parameters, the one SQL
//! statement they become, and the rows it answers, as JSON or CSV.
//!
//! The statement is assembled here rather than by
//! [`crate::billing::metering::MeterQuery`], which answers per key or
//! customer: OpenMeter groups by subject only when asked to (or when
//! subjects are filtered), windows by the minute too, and groups and filters
//! by request dimensions. The meter itself still becomes SQL only through
//! [`Meter::condition`] and [`Meter::measure`] (or its rollup measure), and
//! every value a caller gives is a bound parameter. As `usage` does, a meter
//! the rollup keeps is summed from the rollup's whole hours and the raw rows
//! of the edge hours ([`HOURLY_ROWS`]) where its windows allow.

use super::lake_view::SUBJECTS_TABLE;
use crate::billing::metering;
use crate::billing::meters::{self, Columns, Meter};
use crate::query::LakeSession;
use crate::query::usage::{
    DAY_KEY_ROWS, HOURLY_KEY_ROWS, HOURLY_ROWS, WindowUnit, hours_fit_windows,
    whole_days_fit_windows,
};
use crate::time::TimeRange;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Float64Type, Int16Type, Int32Type, Int64Type, TimeUnit, TimestampMillisecondType,
    UInt64Type,
};
use datafusion::common::ScalarValue;

/// A query parameter the caller got wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadParam {
    pub(crate) name: String,
    pub(crate) reason: String,
}

impl BadParam {
    pub(crate) fn new(name: &str, reason: impl Into<String>) -> Self {
        Self {
            name: name.to_string(),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WindowSize {
    Minute,
    Hour,
    Day,
    Month,
}

impl WindowSize {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "MINUTE" => Self::Minute,
            "HOUR" => Self::Hour,
            "DAY" => Self::Day,
            "MONTH" => Self::Month,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Minute => "MINUTE",
            Self::Hour => "HOUR",
            Self::Day => "DAY",
            Self::Month => "MONTH",
        }
    }

    /// Its unit as `window_start` takes it; a minute is none (minutes are
    /// counted from the epoch instead).
    fn window_start_unit(self) -> Option<&'static str> {
        match self {
            Self::Minute => None,
            Self::Hour => Some("hour"),
            Self::Day => Some("day"),
            Self::Month => Some("month"),
        }
    }

    /// The shortest such window, in seconds (to bound a query's windows).
    fn shortest_secs(self) -> i64 {
        match self {
            Self::Minute => 60,
            Self::Hour => 3600,
            // A day that springs forward is 23 hours.
            Self::Day => 23 * 3600,
            Self::Month => 28 * 86_400,
        }
    }
}

/// A dimension of `requests` a query groups or filters by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dimension {
    Endpoint,
    Method,
    Status,
    Host,
    Edge,
    ApiKeyId,
}

impl Dimension {
    pub(crate) const ALL: [Dimension; 6] = [
        Self::Endpoint,
        Self::Method,
        Self::Status,
        Self::Host,
        Self::Edge,
        Self::ApiKeyId,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Endpoint => "endpoint",
            Self::Method => "method",
            Self::Status => "status",
            Self::Host => "host",
            Self::Edge => "edge",
            Self::ApiKeyId => "api_key_id",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == text)
    }

    /// The expression, as text, over a row with `columns`.
    fn expr(self, columns: &Columns) -> String {
        match self {
            Self::Endpoint => columns.endpoint.to_string(),
            Self::Method => columns.method.to_string(),
            Self::Status => format!("CAST({} AS VARCHAR)", columns.status),
            Self::Host => columns.host.to_string(),
            Self::Edge => columns.edge.to_string(),
            Self::ApiKeyId => "r.api_key_id".to_string(),
        }
    }

    fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }
}

/// The parameters of a meter query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueryParams {
    pub(crate) from: Option<DateTime<Utc>>,
    pub(crate) to: Option<DateTime<Utc>>,
    pub(crate) window: Option<WindowSize>,
    pub(crate) zone: chrono_tz::Tz,
    /// Only these subjects (all when empty).
    pub(crate) subjects: Vec<String>,
    /// Whether rows are per subject (`groupBy=subject`, or subjects given).
    pub(crate) by_subject: bool,
    pub(crate) group_by: Vec<Dimension>,
    /// `filterGroupBy[dim]=value`: only rows whose dimension is the value.
    pub(crate) filters: Vec<(Dimension, String)>,
}

impl QueryParams {
    /// Parses a query string (`from=…&windowSize=…&subject=a&subject=b`).
    pub(crate) fn parse(query: &str) -> Result<Self, BadParam> {
        let mut params = Self {
            from: None,
            to: None,
            window: None,
            zone: chrono_tz::UTC,
            subjects: Vec::new(),
            by_subject: false,
            group_by: Vec::new(),
            filters: Vec::new(),
        };
        let instant = |name: &str, value: &str| {
            DateTime::parse_from_rfc3339(value)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| BadParam::new(name, format!("{value:?} is not an RFC 3339 date-time")))
        };
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "from" => params.from = Some(instant("from", &value)?),
                "to" => params.to = Some(instant("to", &value)?),
                "windowSize" => {
                    params.window = Some(WindowSize::parse(&value).ok_or_else(|| {
                        BadParam::new(
                            "windowSize",
                            format!("{value:?}: use MINUTE, HOUR, DAY or MONTH"),
                        )
                    })?)
                }
                "windowTimeZone" => {
                    params.zone = value.parse().map_err(|_| {
                        BadParam::new(
                            "windowTimeZone",
                            format!("{value:?} is not an IANA time zone (like America/New_York)"),
                        )
                    })?
                }
                "subject" => {
                    params.subjects.push(value.into_owned());
                    params.by_subject = true;
                }
                "groupBy" if value == "subject" => params.by_subject = true,
                "groupBy" => {
                    let d = Dimension::parse(&value).ok_or_else(|| {
                        BadParam::new(
                            "groupBy",
                            format!("{value:?}: use subject, {}", Dimension::names()),
                        )
                    })?;
                    if !params.group_by.contains(&d) {
                        params.group_by.push(d);
                    }
                }
                "clientId" => {}
                other => match other
                    .strip_prefix("filterGroupBy[")
                    .and_then(|s| s.strip_suffix(']'))
                {
                    Some(dim) => {
                        let d = Dimension::parse(dim).ok_or_else(|| {
                            BadParam::new(
                                other,
                                format!("{dim:?} is no dimension: use {}", Dimension::names()),
                            )
                        })?;
                        params.filters.push((d, value.into_owned()));
                    }
                    None => {
                        return Err(BadParam::new(other, "is not a parameter of this query"));
                    }
                },
            }
        }
        if let (Some(from), Some(to)) = (params.from, params.to)
            && from > to
        {
            return Err(BadParam::new("to", "is before from"));
        }
        Ok(params)
    }

    /// Refuses a query whose windows alone would exceed `max_rows`.
    pub(crate) fn check_windows(&self, max_rows: usize) -> Result<(), BadParam> {
        let (Some(window), Some(from), Some(to)) = (self.window, self.from, self.to) else {
            return Ok(());
        };
        let windows = (to - from).num_seconds() / window.shortest_secs() + 1;
        if windows > max_rows as i64 {
            return Err(BadParam::new(
                "windowSize",
                format!(
                    "{} from {from} to {to} is up to {windows} windows, more than the {max_rows} rows a query may answer: use a larger windowSize or a shorter range",
                    window.name()
                ),
            ));
        }
        Ok(())
    }

    /// The statement and its parameters: columns `window_key` (with a
    /// window), `first_seen` (without), `subject` (per subject), one per
    /// dimension of `group_by`, then `value`. At most `limit` rows.
    pub(crate) fn sql(&self, meter: &Meter, limit: usize) -> (String, Vec<(String, ScalarValue)>) {
        let range = TimeRange {
            from: self.from,
            to: self.to,
        };
        let mut params = range.params();
        let text = |s: &str| ScalarValue::Utf8(Some(s.to_string()));
        let unit = self.window.and_then(WindowSize::window_start_unit);
        // The rollup answers whole hours of a meter it keeps, in windows of
        // an hour or longer that its hours fit; without a window, only from
        // a given start (the first request's time stands in for none).
        let rollup = metering::answered_by_rollup(meter)
            && match (self.window, unit) {
                (None, _) => self.from.is_some(),
                (Some(_), Some(unit)) => hours_fit_windows(&range, unit, self.zone),
                (Some(_), None) => false,
            };
        let columns = match rollup {
            true => &metering::ROLLUP,
            false => &meters::RAW,
        };
        let mut select = Vec::new();
        let mut group = Vec::new();
        match (self.window, unit) {
            (Some(_), None) => {
                select.push("to_unixtime(r.\"timestamp\") / 60 AS window_key".to_string());
                group.push("window_key".to_string());
            }
            (Some(_), Some(unit)) => {
                select.push("window_start(r.\"timestamp\", $unit, $tz) AS window_key".into());
                group.push("window_key".into());
                params.push(("unit".into(), text(unit)));
                params.push(("tz".into(), text(self.zone.name())));
            }
            (None, _) => select.push("min(r.\"timestamp\") AS first_seen".into()),
        }
        let subject = "coalesce(s.owner_subject, r.api_key_id)";
        if self.by_subject {
            select.push(format!("{subject} AS subject"));
            group.push("subject".into());
        }
        for (i, d) in self.group_by.iter().enumerate() {
            select.push(format!("{} AS g{i}", d.expr(columns)));
            group.push(format!("g{i}"));
        }
        let condition = meter.condition(columns, "m", &mut params);
        let measure = match rollup {
            true => metering::rollup_measure(meter, &condition),
            false => meter.measure(&condition),
        };
        select.push(format!("{measure} AS value"));
        let mut filter = String::new();
        if !self.subjects.is_empty() {
            let names: Vec<String> = (0..self.subjects.len())
                .map(|i| format!("$subject_{i}"))
                .collect();
            filter.push_str(&format!("\n  AND {subject} IN ({})", names.join(", ")));
            for (i, s) in self.subjects.iter().enumerate() {
                params.push((format!("subject_{i}"), text(s)));
            }
        }
        for (i, (d, value)) in self.filters.iter().enumerate() {
            filter.push_str(&format!("\n  AND {} = $filter_{i}", d.expr(columns)));
            params.push((format!("filter_{i}"), text(value)));
        }
        let grouping = match group.is_empty() {
            true => String::new(),
            false => format!(
                "\nGROUP BY {}\nORDER BY {}",
                group.join(", "),
                group
                    .iter()
                    .map(|g| format!("{g} ASC NULLS LAST"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let (source, range_filter) = match rollup {
            true => {
                // A meter filtered on the status alone, neither grouped nor
                // filtered by a dimension: the narrow rollup.
                let narrow = meter.filter.keys_rollup_answers()
                    && self.group_by.is_empty()
                    && self.filters.is_empty();
                // Its day totals where no window is finer than a UTC day.
                let by = self.window.map(|window| match window {
                    WindowSize::Day => WindowUnit::Day,
                    WindowSize::Month => WindowUnit::Month,
                    WindowSize::Minute | WindowSize::Hour => WindowUnit::Hour,
                });
                let rows = match narrow {
                    true if whole_days_fit_windows(by, Some(self.zone)) => DAY_KEY_ROWS,
                    true => HOURLY_KEY_ROWS,
                    false => HOURLY_ROWS,
                };
                (format!("(\n{rows}\n)"), "true")
            }
            false => (
                "requests".to_string(),
                "r.dt >= $from_dt AND r.dt <= $to_dt\n  AND r.\"timestamp\" >= $from AND r.\"timestamp\" < $to",
            ),
        };
        let sql = format!(
            "SELECT\n    {}\nFROM {source} r LEFT JOIN {SUBJECTS_TABLE} s ON r.api_key_id = s.owned_key_id\nWHERE {range_filter}{filter}{grouping}\nLIMIT {limit}",
            select.join(",\n    "),
        );
        (sql, params)
    }
}

/// One row of an answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Row {
    pub(crate) value: serde_json::Number,
    pub(crate) window_start: String,
    pub(crate) window_end: String,
    pub(crate) subject: Option<String>,
    pub(crate) group_by: serde_json::Map<String, serde_json::Value>,
}

/// What a query answers, or that it has more than `max_rows` rows.
pub(crate) enum Answer {
    Rows(Vec<Row>),
    TooMany,
}

/// Runs the query of `meter`.
pub(crate) async fn run(
    session: &LakeSession,
    meter: &Meter,
    params: &QueryParams,
    max_rows: usize,
    now: DateTime<Utc>,
) -> crate::Result<Answer> {
    let (sql, values) = params.sql(meter, max_rows + 1);
    let df = session
        .read_only_sql(&sql)
        .await?
        .with_param_values(values)?;
    let batches = crate::query::collect(crate::query::execute(df).await?).await?;
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if total > max_rows {
        return Ok(Answer::TooMany);
    }
    let mut rows = Vec::with_capacity(total);
    for batch in &batches {
        for i in 0..batch.num_rows() {
            if let Some(row) = row_of(batch, i, params, now)? {
                rows.push(row);
            }
        }
    }
    Ok(Answer::Rows(rows))
}

/// Row `i` of a batch; `None` for the empty row an aggregate without
/// groups gives over no requests.
fn row_of(
    batch: &RecordBatch,
    i: usize,
    params: &QueryParams,
    now: DateTime<Utc>,
) -> crate::Result<Option<Row>> {
    let bad = |why: &str| crate::Error::Query {
        name: "meter query".into(),
        reason: why.to_string(),
    };
    let mut column = 0;
    let mut next = || {
        column += 1;
        batch.column(column - 1)
    };
    let (window_start, window_end) = match params.window {
        Some(WindowSize::Minute) => {
            let minute = next().as_primitive::<Int64Type>().value(i);
            let start = DateTime::from_timestamp(minute * 60, 0).ok_or_else(|| bad("minute"))?;
            (start, start + chrono::Duration::minutes(1))
        }
        Some(window) => {
            let start = text(next(), i)?.unwrap_or_default();
            let start = DateTime::parse_from_rfc3339(&start)
                .map_err(|_| bad("window start"))?
                .with_timezone(&Utc);
            (start, window_end(start, window, params.zone))
        }
        None => {
            let first = next();
            if first.is_null(i) {
                return Ok(None);
            }
            let first = match first.data_type() {
                DataType::Timestamp(TimeUnit::Millisecond, _) => {
                    first.as_primitive::<TimestampMillisecondType>().value(i)
                }
                _ => return Err(bad("first_seen is not a timestamp")),
            };
            let first = DateTime::from_timestamp_millis(first).ok_or_else(|| bad("first_seen"))?;
            (params.from.unwrap_or(first), params.to.unwrap_or(now))
        }
    };
    let subject = match params.by_subject {
        true => text(next(), i)?,
        false => None,
    };
    let mut group_by = serde_json::Map::new();
    for d in &params.group_by {
        let value = text(next(), i)?.map_or(serde_json::Value::Null, serde_json::Value::from);
        group_by.insert(d.name().to_string(), value);
    }
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Ok(Some(Row {
        value: number(next(), i).ok_or_else(|| bad("the meter's value is not a number"))?,
        window_start: time(window_start),
        window_end: time(window_end),
        subject,
        group_by,
    }))
}

/// A text value of any of Arrow's string types (`VARCHAR` casts give
/// `Utf8View` in DataFusion's SQL).
fn text(column: &ArrayRef, i: usize) -> crate::Result<Option<String>> {
    if column.is_null(i) {
        return Ok(None);
    }
    let one = column.slice(i, 1);
    let utf8 = datafusion::arrow::compute::cast(&one, &DataType::Utf8)?;
    Ok(Some(utf8.as_string::<i32>().value(0).to_string()))
}

/// The end of the window that starts at `start` in `zone`.
fn window_end(start: DateTime<Utc>, window: WindowSize, zone: chrono_tz::Tz) -> DateTime<Utc> {
    let local = start.with_timezone(&zone).date_naive();
    let next_day = match window {
        WindowSize::Minute => return start + chrono::Duration::minutes(1),
        WindowSize::Hour => return start + chrono::Duration::hours(1),
        WindowSize::Day => local.succ_opt(),
        WindowSize::Month => local
            .with_day(1)
            .and_then(|d| d.checked_add_months(chrono::Months::new(1))),
    };
    next_day
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|midnight| {
            zone.from_local_datetime(&midnight).earliest().or_else(|| {
                zone.from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                    .earliest()
            })
        })
        .map_or(start, |t| t.with_timezone(&Utc))
}

/// A value as a JSON number: integers stay integers. `None` for max, min or
/// avg over no rows is 0, as OpenMeter answers an empty window.
fn number(column: &ArrayRef, i: usize) -> Option<serde_json::Number> {
    if column.is_null(i) {
        return Some(0.into());
    }
    Some(match column.data_type() {
        DataType::Int64 => column.as_primitive::<Int64Type>().value(i).into(),
        DataType::Int32 => column.as_primitive::<Int32Type>().value(i).into(),
        DataType::Int16 => column.as_primitive::<Int16Type>().value(i).into(),
        DataType::UInt64 => column.as_primitive::<UInt64Type>().value(i).into(),
        DataType::Float64 => {
            serde_json::Number::from_f64(column.as_primitive::<Float64Type>().value(i))?
        }
        _ => return None,
    })
}

/// The answer as OpenMeter's CSV: `window_start`, `window_end`, `subject`
/// (when per subject), the dimensions grouped by, `value`.
pub(crate) fn csv(rows: &[Row], params: &QueryParams) -> crate::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["window_start", "window_end"];
    if params.by_subject {
        header.push("subject");
    }
    header.extend(params.group_by.iter().map(|d| d.name()));
    header.push("value");
    w.write_record(&header)?;
    for row in rows {
        let mut record = vec![row.window_start.clone(), row.window_end.clone()];
        if params.by_subject {
            record.push(row.subject.clone().unwrap_or_default());
        }
        for d in &params.group_by {
            record.push(
                row.group_by
                    .get(d.name())
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        record.push(row.value.to_string());
        w.write_record(&record)?;
    }
    w.into_inner()
        .map_err(|e| crate::Error::io("<csv answer>", e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<QueryParams, BadParam> {
        QueryParams::parse(q)
    }

    #[test]
    fn parameters_are_read_as_openmeter_names_them() {
        let p = parse(
            "from=2025-10-05T00:00:00Z&to=2025-10-06T00:00:00%2B02:00&windowSize=HOUR\
             &windowTimeZone=America/New_York&subject=a&subject=b&groupBy=method\
             &groupBy=status&filterGroupBy%5Bedge%5D=SFO53-P9",
        )
        .unwrap();
        assert_eq!(p.window, Some(WindowSize::Hour));
        assert_eq!(p.zone, chrono_tz::America::New_York);
        assert_eq!(p.subjects, ["a", "b"]);
        assert!(p.by_subject);
        assert_eq!(p.group_by, [Dimension::Method, Dimension::Status]);
        assert_eq!(p.filters, [(Dimension::Edge, "SFO53-P9".to_string())]);
        // 2025-10-06T00:00+02:00 is 2025-10-05T22:00Z.
        assert_eq!(p.to.unwrap().to_rfc3339(), "2025-10-05T22:00:00+00:00");
    }

    #[test]
    fn bad_parameters_are_named() {
        let name = |q: &str| parse(q).err().unwrap().name;
        assert_eq!(name("windowSize=WEEK"), "windowSize");
        assert_eq!(name("windowTimeZone=Mars/Olympus"), "windowTimeZone");
        assert_eq!(name("from=yesterday"), "from");
        assert_eq!(name("groupBy=c_ip"), "groupBy");
        assert_eq!(name("filterGroupBy[c_ip]=1"), "filterGroupBy[c_ip]");
        assert_eq!(name("limit=5"), "limit");
        assert_eq!(
            name("from=2025-10-06T00:00:00Z&to=2025-10-05T00:00:00Z"),
            "to"
        );
        let p =
            parse("from=2025-10-01T00:00:00Z&to=2025-11-01T00:00:00Z&windowSize=MINUTE").unwrap();
        // 31 days × 1440 minutes + 1 = 44,641 windows.
        assert!(p.check_windows(44_641).is_ok());
        assert_eq!(p.check_windows(44_640).err().unwrap().name, "windowSize");
    }

    /// A count the rollup keeps, in hour or longer windows that its hours fit
    /// (or over a range with a start), is summed from the rollup; minutes,
    /// Asia/Kolkata's hours, a range without a start and a unique count read
    /// raw rows. Every placeholder is bound either way.
    #[test]
    fn the_rollup_answers_windows_its_hours_fit() {
        let plans = crate::billing::plans::Plans::parse(
            r#"
            [billing]
            currency = "USD"
            [plans.pro]
            base_fee = "1.00"
            [meters.clients]
            aggregation = "unique_count"
            value = "c_ip"
            "#,
            &crate::key::KeyHasher::new(None),
        )
        .unwrap();
        let day = "from=2025-10-05T00:00:00Z&to=2025-10-06T00:00:00Z";
        let from_rollup = |meter: &str, q: &str| {
            let meter = plans.meters.get(meter).unwrap();
            let (sql, params) = parse(q).unwrap().sql(meter, 10);
            for name in crate::query::library::tests::placeholders(&sql) {
                assert!(params.iter().any(|(n, _)| *n == name), "${name} in {q}");
            }
            sql.contains("FROM usage_hourly")
        };
        let grouped =
            "&groupBy=subject&groupBy=endpoint&groupBy=status&filterGroupBy%5Bmethod%5D=GET";
        assert!(from_rollup(
            "requests",
            &format!("{day}&windowSize=HOUR{grouped}")
        ));
        assert!(from_rollup(
            "bytes_out",
            &format!("{day}&windowSize=DAY&windowTimeZone=Europe/Berlin")
        ));
        assert!(from_rollup("requests", day));
        assert!(!from_rollup(
            "requests",
            &format!("{day}&windowSize=MINUTE")
        ));
        assert!(!from_rollup(
            "requests",
            &format!("{day}&windowSize=HOUR&windowTimeZone=Asia/Kolkata")
        ));
        assert!(!from_rollup("requests", "to=2025-10-06T00:00:00Z"));
        assert!(!from_rollup("clients", &format!("{day}&windowSize=HOUR")));
        // Neither grouped nor filtered by a dimension, a status-only meter
        // reads the narrow rollup; grouped by one, the wide one.
        let narrow = |meter: &str, q: &str| {
            let meter = plans.meters.get(meter).unwrap();
            parse(q)
                .unwrap()
                .sql(meter, 10)
                .0
                .contains("FROM usage_hourly_keys")
        };
        assert!(narrow("requests", &format!("{day}&windowSize=DAY")));
        assert!(narrow("bytes_out", &format!("{day}&groupBy=subject")));
        assert!(!narrow(
            "requests",
            &format!("{day}&windowSize=HOUR{grouped}")
        ));
    }

    #[test]
    fn windows_end_on_local_boundaries_across_dst() {
        let ny = chrono_tz::America::New_York;
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // 2025-11-02 in New York: EDT (-4) until 02:00, then EST (-5): 25 hours.
        assert_eq!(
            window_end(t("2025-11-02T04:00:00Z"), WindowSize::Day, ny),
            t("2025-11-03T05:00:00Z")
        );
        assert_eq!(
            window_end(t("2025-10-01T04:00:00Z"), WindowSize::Month, ny),
            t("2025-11-01T04:00:00Z")
        );
        assert_eq!(
            window_end(t("2025-11-01T04:00:00Z"), WindowSize::Month, ny),
            t("2025-12-01T05:00:00Z")
        );
    }
}
