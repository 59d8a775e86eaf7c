//! Evaluating meters over a range of the lake: one statement for any set of
//! meters, one column per meter (named by its slug), one row per key or per
//! customer, and per window with `--by`.
//!
//! Counts, and sums of bytes, whose filters use only what the hourly rollup
//! groups by are read from `usage_hourly` for whole hours (raw rows only for
//! the partial hours at the range's edges, and for hours that would straddle
//! a window of a zone whose offset is not whole hours). Every other meter is
//! read from raw `requests` rows pruned by partition and time. Each meter is
//! an aggregate `FILTER (WHERE …)` of its own, so one scan of each source
//! answers all of them; `unique_count` is exact (`count(DISTINCT …)`) per row
//! of the result, so a customer's distinct clients are counted across all
//! its keys, never summed per key.
//!
//! With a plans file whose meters are kept per day (`meters_daily`,
//! [`super::meter_days`]) and meters that all are, a query without windows
//! or with windows of UTC days or months reads the kept days of its range
//! instead, and raw rows for the rest of it ([`MeterQuery::kept_rows`]).

use super::meter_days::{digest, kept};
use super::meters::{self, Aggregation, Columns, Meter};
use super::plans::Plans;
use crate::error::{Error, Result};
use crate::lake::meter_days::{METERS_DAILY_TABLE, paths};
use crate::query::LakeSession;
use crate::query::usage::{
    DAY_KEY_ROWS, HOURLY_KEY_ROWS, HOURLY_ROWS, WindowUnit, hours_fit_windows,
    whole_days_fit_windows,
};
use crate::time::TimeRange;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int16Type, Int32Type, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::execution::SendableRecordBatchStream;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the rows of a meter query are per.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Per {
    /// One row per `api_key_id` (and one for requests without a key).
    #[default]
    Key,
    /// One row per customer of the plans file; keys of no customer keep a
    /// row each, as on invoices.
    Customer,
}

/// The table of key owners a per-customer query joins (registered in the
/// session for the query's lifetime).
const OWNERS_TABLE: &str = "edgemeter_key_owners";

/// The columns of [`HOURLY_ROWS`] a meter's filter reads.
pub(crate) const ROLLUP: Columns = Columns {
    status: "sc_status",
    method: "cs_method",
    host: "host",
    endpoint: "endpoint",
    edge: "x_edge_location",
};

/// Whether the rollup answers a meter: a count, or a sum of the bytes it
/// keeps, whose filter uses only what it groups by.
pub(crate) fn answered_by_rollup(meter: &Meter) -> bool {
    let counted = match meter.aggregation {
        Aggregation::Count => true,
        Aggregation::Sum => matches!(meter.value, Some("sc_bytes" | "cs_bytes")),
        _ => false,
    };
    counted && meter.filter.rollup_answers()
}

/// A meter [`answered_by_rollup`] as a sum of [`HOURLY_ROWS`]'s rows.
pub(crate) fn rollup_measure(meter: &Meter, condition: &str) -> String {
    let column = match meter.value {
        Some("sc_bytes") => "bytes_out",
        Some("cs_bytes") => "bytes_in",
        _ => "requests",
    };
    format!("coalesce(sum(r.{column}) FILTER (WHERE {condition}), 0)")
}

/// A query of some meters over a range.
#[derive(Debug, Clone)]
pub(crate) struct MeterQuery<'a> {
    pub(crate) range: TimeRange,
    pub(crate) meters: Vec<&'a Meter>,
    pub(crate) per: Per,
    pub(crate) by: Option<WindowUnit>,
    /// IANA zone of the windows (UTC when `None`).
    pub(crate) tz: Option<chrono_tz::Tz>,
    /// Only these `api_key_id`s (all when empty).
    pub(crate) keys: Vec<String>,
}

impl MeterQuery<'_> {
    /// The statement and its parameters. Columns: `window_start` (with a
    /// window), then `api_key_id` and `api_key_hint` (per key) or
    /// `customer_id` and `api_key_id` (per customer: the key only for keys of
    /// no customer), then one column per meter.
    ///
    /// Meters the rollup answers ([`answered_by_rollup`]) are summed from
    /// `usage_hourly` for whole hours and from raw rows for the partial hours
    /// at the edges; the others from raw rows. With both kinds, each kind is
    /// one grouped statement and a group's row takes each meter from the
    /// statement that has it (both see the same groups: every row in range).
    pub(crate) fn sql(&self) -> Result<(String, Vec<(String, ScalarValue)>)> {
        self.sql_from(None)
    }

    /// [`MeterQuery::sql`], or with `days` a statement over those files of
    /// `meters_daily` alone.
    fn sql_from(&self, days: Option<&KeptDays>) -> Result<(String, Vec<(String, ScalarValue)>)> {
        let mut params = self.range.params();
        let mut rollup_fits = true;
        if let Some(unit) = self.by {
            let zone = self.tz.unwrap_or(chrono_tz::UTC);
            let tz = zone.name().to_string();
            let unit = unit.name();
            rollup_fits = hours_fit_windows(&self.range, unit, zone);
            params.push(("unit".into(), ScalarValue::Utf8(Some(unit.into()))));
            params.push(("tz".into(), ScalarValue::Utf8(Some(tz))));
        }
        if !self.keys.is_empty() {
            params.push((
                "keys".into(),
                ScalarValue::Utf8(Some(self.keys.join(",").to_ascii_lowercase())),
            ));
        }
        let group = self.group_columns();
        let order: Vec<String> = group
            .iter()
            .map(|g| format!("{g} ASC NULLS LAST"))
            .collect();
        let order = order.join(", ");
        if let Some(days) = days {
            let all: Vec<_> = self.meters.iter().enumerate().collect();
            let source = format!("(\n{}\n)", self.kept_rows(days, &mut params));
            return Ok((
                format!(
                    "SELECT * FROM (\n{}\n) grouped\nORDER BY {order}",
                    self.grouped(
                        &source,
                        &all,
                        &[],
                        Source::Days {
                            // A value is once in a day's file, and first in
                            // its month on one day only.
                            values_once: days.rest.is_empty()
                                && (days.first_only || self.by == Some(WindowUnit::Day)),
                        },
                        &mut params
                    ),
                ),
                params,
            ));
        }
        let (rolled, raw): (Vec<_>, Vec<_>) = self
            .meters
            .iter()
            .enumerate()
            .partition(|(_, m)| rollup_fits && answered_by_rollup(m));
        let group_by = group.join(", ");
        // Meters filtered on nothing but the status: the narrow rollup, and
        // its day totals where no window is finer than a UTC day.
        let rows = match rolled.iter().all(|(_, m)| m.filter.keys_rollup_answers()) {
            true if whole_days_fit_windows(self.by, self.tz) => DAY_KEY_ROWS,
            true => HOURLY_KEY_ROWS,
            false => HOURLY_ROWS,
        };
        let source_of_rollup = format!("(\n{rows}\n)");
        // Rows are ordered outside the grouped statement, where the names of
        // its columns are the only ones (the owners table has an api_key_id).
        let sql = match (rolled.is_empty(), raw.is_empty()) {
            (true, _) => format!(
                "SELECT * FROM (\n{}\n) grouped\nORDER BY {order}",
                self.grouped("requests", &raw, &[], Source::Raw, &mut params)
            ),
            (false, true) => format!(
                "SELECT * FROM (\n{}\n) grouped\nORDER BY {order}",
                self.grouped(&source_of_rollup, &rolled, &[], Source::Rollup, &mut params)
            ),
            (false, false) => {
                let from_rollup = self.grouped(
                    &source_of_rollup,
                    &rolled,
                    &raw,
                    Source::Rollup,
                    &mut params,
                );
                let from_raw = self.grouped("requests", &raw, &rolled, Source::Raw, &mut params);
                let mut select = group.clone();
                if self.per == Per::Key {
                    select.push("max(api_key_hint) AS api_key_hint".into());
                }
                select.extend(
                    self.meters
                        .iter()
                        .map(|m| format!("max(\"{0}\") AS \"{0}\"", m.slug)),
                );
                format!(
                    "SELECT\n    {}\nFROM (\n{from_rollup}\nUNION ALL\n{from_raw}\n) both_kinds\nGROUP BY {group_by}\nORDER BY {order}",
                    select.join(",\n    ")
                )
            }
        };
        Ok((sql, params))
    }

    /// The names of the columns a row is per.
    fn group_columns(&self) -> Vec<String> {
        let mut group = Vec::new();
        if self.by.is_some() {
            group.push("window_start".to_string());
        }
        match self.per {
            Per::Key => group.push("api_key_id".into()),
            Per::Customer => {
                group.push("customer_id".into());
                group.push("api_key_id".into());
            }
        }
        group
    }

    /// One grouped statement over `source` (rows with the columns `columns`
    /// names, a `timestamp` and `api_key_id`/`api_key_hint`) measuring the
    /// meters `measured`, and a NULL column for each of `elsewhere`, in the
    /// order of the query's meters.
    fn grouped(
        &self,
        source: &str,
        measured: &[(usize, &&Meter)],
        elsewhere: &[(usize, &&Meter)],
        source_kind: Source,
        params: &mut Vec<(String, ScalarValue)>,
    ) -> String {
        // Grouped by expressions, not by the names they are given: the
        // names could be read as columns of `requests`.
        let mut group = Vec::new();
        if self.by.is_some() {
            group.push(match source_kind {
                // Kept rows carry their window.
                Source::Days { .. } => ("r.window_start", "window_start"),
                _ => ("window_start(r.\"timestamp\", $unit, $tz)", "window_start"),
            });
        }
        let mut join = String::new();
        match self.per {
            Per::Key => group.push(("r.api_key_id", "api_key_id")),
            Per::Customer => {
                join = format!(" LEFT JOIN {OWNERS_TABLE} o ON r.api_key_id = o.owned_key_id");
                group.push(("o.customer_id", "customer_id"));
                group.push((
                    "CASE WHEN o.customer_id IS NULL THEN r.api_key_id END",
                    "api_key_id",
                ));
            }
        }
        let mut select: Vec<String> = group
            .iter()
            .map(|(expr, name)| format!("{expr} AS {name}"))
            .collect();
        if self.per == Per::Key {
            select.push("max(r.api_key_hint) AS api_key_hint".into());
        }
        let mut by_index: Vec<(usize, String)> = Vec::new();
        for (i, meter) in measured {
            let measure = match source_kind {
                Source::Raw => {
                    let condition = meter.condition(&meters::RAW, &format!("m{i}"), params);
                    meter.measure(&condition)
                }
                Source::Rollup => {
                    let condition = meter.condition(&ROLLUP, &format!("m{i}"), params);
                    rollup_measure(meter, &condition)
                }
                Source::Days { values_once } => {
                    days_measure(meter, *i, values_once, &format!("m{i}"), params)
                }
            };
            by_index.push((*i, format!("{measure} AS \"{}\"", meter.slug)));
        }
        for (i, meter) in elsewhere {
            by_index.push((*i, format!("NULL AS \"{}\"", meter.slug)));
        }
        by_index.sort_by_key(|(i, _)| *i);
        select.extend(by_index.into_iter().map(|(_, s)| s));
        let mut filter = String::new();
        match source_kind {
            Source::Raw => filter.push_str(
                "\nWHERE r.dt >= $from_dt AND r.dt <= $to_dt\n  AND r.\"timestamp\" >= $from AND r.\"timestamp\" < $to",
            ),
            Source::Rollup | Source::Days { .. } => {}
        }
        if !self.keys.is_empty() {
            filter.push_str(match filter.is_empty() {
                true => "\nWHERE ",
                false => "\n  AND ",
            });
            filter.push_str("array_has(string_to_array($keys, ','), r.api_key_id)");
        }
        format!(
            "SELECT\n    {}\nFROM {source} r{join}{filter}\nGROUP BY {}",
            select.join(",\n    "),
            group
                .iter()
                .map(|(expr, _)| *expr)
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    /// Runs the query; per customer, `plans` says who owns which key.
    pub(crate) async fn run(
        &self,
        session: &LakeSession,
        plans: Option<&Plans>,
    ) -> Result<SendableRecordBatchStream> {
        if self.per == Per::Customer {
            let plans = plans.ok_or_else(|| {
                Error::Config("per customer needs --plans (who owns which key)".into())
            })?;
            register_owners(session, plans)?;
        }
        let days = self.kept_days(session, plans);
        if let Some(days) = &days {
            session
                .register_meter_days(&days.table, &days.files)
                .await?;
        }
        let (sql, params) = self.sql_from(days.as_ref())?;
        let df = session
            .context()
            .sql(&sql)
            .await?
            .with_param_values(params)?;
        crate::query::execute(df).await
    }
}

impl MeterQuery<'_> {
    /// The days of the range `meters_daily` answers, when it answers any:
    /// no windows or windows of UTC days or months, every meter [`kept`] and
    /// defined as in `plans` (whose meters the files were computed for), and
    /// at least one whole UTC day of the range whose file pairs with the
    /// `requests` files read ([`paths`]).
    fn kept_days(&self, session: &LakeSession, plans: Option<&Plans>) -> Option<KeptDays> {
        // A UTC day lies in one window of UTC days or months, not of hours
        // or of another zone's days.
        let utc = self.tz.is_none_or(|tz| tz == chrono_tz::UTC);
        let windows_fit = match self.by {
            None => true,
            Some(WindowUnit::Day | WindowUnit::Month) => utc,
            Some(WindowUnit::Hour) => false,
        };
        if !windows_fit || self.meters.is_empty() {
            return None;
        }
        // Meters are kept per day for a plans file only.
        let defined = &plans?.meters;
        let digest = digest(defined)?;
        let same = |m: &&Meter| kept(m) && defined.get(&m.slug) == Some(*m);
        if !self.meters.iter().all(same) {
            return None;
        }
        let from = self.range.from.unwrap_or(crate::time::epoch_floor());
        let to = self.range.to.unwrap_or(crate::time::epoch_ceiling());
        let (first_dt, last_dt) = (
            from.format("%Y-%m-%d").to_string(),
            to.format("%Y-%m-%d").to_string(),
        );
        let mut kept_days = KeptDays {
            first_only: self.first_seen_answers(from, to),
            ..KeptDays::default()
        };
        let paths = paths(&digest, session.requests_days());
        for (dt, _) in session.requests_days().range(first_dt..=last_dt) {
            let start = chrono::NaiveDate::parse_from_str(dt, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc());
            let end = start.map(|s| s + chrono::Duration::days(1));
            if start.is_some_and(|s| s >= to) || end.is_some_and(|e| e <= from) {
                continue;
            }
            let whole = start.is_some_and(|s| s >= from) && end.is_some_and(|e| e <= to);
            let path = &paths[dt];
            match whole && session.has_meter_day(path) {
                true => kept_days.files.push(path.clone()),
                false => kept_days.rest.push(dt.clone()),
            }
        }
        if kept_days.files.is_empty() {
            return None;
        }
        let mut name = Sha256::new();
        for file in &kept_days.files {
            name.update(file.as_bytes());
            name.update(b"\n");
        }
        kept_days.table = format!(
            "{}_{}",
            METERS_DAILY_TABLE.dir,
            hex::encode(&name.finalize()[..8])
        );
        Some(kept_days)
    }

    /// Whether the distinct values of `unique_count` meters over [from, to)
    /// are the kept days' first-in-month values (and the raw rows' of the
    /// days not kept): per key, in windows that each start on the first of a
    /// UTC month: no windows and a range within one month from its first, or
    /// windows of UTC months from a month's first. A value seen on several
    /// days of a month is first on one of them only, the earliest; no day of
    /// the window's month comes before the window; and a day is kept only
    /// while the month's earlier days are the ones its file was computed
    /// after.
    fn first_seen_answers(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        use chrono::Datelike;
        let month_start = from.day() == 1 && from.time() == chrono::NaiveTime::MIN;
        let next_month = from
            .date_naive()
            .checked_add_months(chrono::Months::new(1))
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc());
        let windows = match self.by {
            None => next_month.is_some_and(|next| to <= next),
            Some(WindowUnit::Month) => true,
            Some(_) => false,
        };
        self.per == Per::Key && month_start && windows
    }

    /// The rows [`Source::Days`] aggregates, one statement: per key, the
    /// additive meters' values over the kept days (`a<i>` for the query's
    /// meter `i`) and over the raw rows of the rest of the range; and each
    /// `unique_count` meter's distinct values (`dv`, its slug in `u`) from
    /// both. Every key with rows in range has a row.
    fn kept_rows(&self, days: &KeptDays, params: &mut Vec<(String, ScalarValue)>) -> String {
        let bind = |params: &mut Vec<(String, ScalarValue)>, value: String| {
            let name = format!("k_{}", params.len());
            params.push((name.clone(), ScalarValue::Utf8(Some(value))));
            format!("${name}")
        };
        let additive: Vec<(usize, &Meter)> = self
            .meters
            .iter()
            .enumerate()
            .filter(|(_, m)| m.aggregation != Aggregation::UniqueCount)
            .map(|(i, m)| (i, *m))
            .collect();
        let unique: Vec<(usize, &Meter)> = self
            .meters
            .iter()
            .enumerate()
            .filter(|(_, m)| m.aggregation == Aggregation::UniqueCount)
            .map(|(i, m)| (i, *m))
            .collect();
        let nulls: String = additive
            .iter()
            .map(|(i, _)| format!(", CAST(NULL AS BIGINT) AS a{i}"))
            .collect();
        // With windows, each row's window: a kept day's (the window of UTC
        // days or months it lies in, as `window_start` spells it), or a raw
        // row's.
        let raw = "window_start(\"timestamp\", $unit, $tz)";
        let kept = match self.by {
            Some(WindowUnit::Month) => "concat(substr(dt, 1, 7), '-01T00:00:00+00:00')",
            _ => "concat(dt, 'T00:00:00+00:00')",
        };
        let (kept_window, raw_window, kept_group, raw_group) = match self.by {
            None => Default::default(),
            Some(_) => (
                format!("{kept} AS window_start, "),
                format!("{raw} AS window_start, "),
                format!("{kept}, "),
                format!("{raw}, "),
            ),
        };
        let mut parts = Vec::new();
        // The kept days: additive meters per key, then distinct values.
        let mut sums = String::new();
        for (i, meter) in &additive {
            let slug = bind(params, meter.slug.clone());
            let aggregate = match meter.aggregation {
                Aggregation::Max => "max",
                Aggregation::Min => "min",
                _ => "sum",
            };
            sums.push_str(&format!(
                ", {aggregate}(value) FILTER (WHERE meter = {slug}) AS a{i}"
            ));
        }
        parts.push(format!(
            "SELECT {kept_window}api_key_id, max(api_key_hint) AS api_key_hint{sums}, \
             CAST(NULL AS VARCHAR) AS u, CAST(NULL AS VARCHAR) AS dv\nFROM {} WHERE first_in_month IS NULL\nGROUP BY {kept_group}api_key_id",
            days.table
        ));
        if !unique.is_empty() {
            let slugs: Vec<String> = unique
                .iter()
                .map(|(_, m)| bind(params, m.slug.clone()))
                .collect();
            let first = match days.first_only {
                true => " AND first_in_month",
                false => " AND first_in_month IS NOT NULL",
            };
            parts.push(format!(
                "SELECT {kept_window}api_key_id, CAST(NULL AS VARCHAR) AS api_key_hint{}, meter AS u, \
                 distinct_value AS dv\nFROM {} WHERE meter IN ({}){first}",
                nulls,
                days.table,
                slugs.join(", ")
            ));
        }
        // The rest of the range, from raw rows of the days not kept.
        if !days.rest.is_empty() {
            let rest: Vec<String> = days.rest.iter().map(|d| bind(params, d.clone())).collect();
            let filter = format!(
                "dt IN ({})\n  AND \"timestamp\" >= $from AND \"timestamp\" < $to",
                rest.join(", ")
            );
            let mut measures = String::new();
            for (i, meter) in &additive {
                let condition = meter.condition(&meters::RAW, &format!("r{i}"), params);
                measures.push_str(&format!(
                    ", CAST({} AS BIGINT) AS a{i}",
                    meter.measure(&condition)
                ));
            }
            parts.push(format!(
                "SELECT {raw_window}api_key_id, max(api_key_hint) AS api_key_hint{measures}, \
                 CAST(NULL AS VARCHAR) AS u, CAST(NULL AS VARCHAR) AS dv\nFROM requests\nWHERE {filter}\nGROUP BY {raw_group}api_key_id"
            ));
            for (i, meter) in &unique {
                let condition = meter.condition(&meters::RAW, &format!("r{i}"), params);
                let slug = bind(params, meter.slug.clone());
                let value = meter.value.unwrap_or("NULL");
                parts.push(format!(
                    "SELECT DISTINCT {raw_window}api_key_id, CAST(NULL AS VARCHAR) AS api_key_hint{}, \
                     {slug} AS u, CAST({value} AS VARCHAR) AS dv\nFROM requests\nWHERE {filter}\n  AND ({condition}) AND {value} IS NOT NULL",
                    nulls
                ));
            }
        }
        parts.join("\nUNION ALL\n")
    }
}

/// The days of a range `meters_daily` answers: their files, registered in
/// the session as `table` (the same files, the same name), and the days of
/// the range read from raw rows (`rest`: partial days at the edges, and
/// days without a current file).
#[derive(Debug, Clone, Default)]
struct KeptDays {
    table: String,
    files: Vec<String>,
    rest: Vec<String>,
    /// Whether distinct values are the kept days' first in their month
    /// ([`MeterQuery::first_seen_answers`]).
    first_only: bool,
}

/// Where a grouped statement's rows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// `requests` rows.
    Raw,
    /// A rollup's rows ([`HOURLY_ROWS`] or [`HOURLY_KEY_ROWS`]).
    Rollup,
    /// [`MeterQuery::kept_rows`]; `values_once` when each distinct value
    /// is there once per group (no raw rows, and first-in-month values alone
    /// or windows of one day).
    Days { values_once: bool },
}

/// The query's meter `i` as an aggregate of [`MeterQuery::kept_rows`] (a
/// `unique_count`'s slug bound as `$<prefix>_<n>`): a distinct count, or a
/// count when each value is there once (`values_once`), which needs no set
/// of values per group.
fn days_measure(
    meter: &Meter,
    i: usize,
    values_once: bool,
    prefix: &str,
    params: &mut Vec<(String, ScalarValue)>,
) -> String {
    match meter.aggregation {
        Aggregation::UniqueCount => {
            let name = format!("{prefix}_{}", params.len());
            params.push((name.clone(), ScalarValue::Utf8(Some(meter.slug.clone()))));
            match values_once {
                true => format!("count(r.dv) FILTER (WHERE r.u = ${name})"),
                false => format!("count(DISTINCT r.dv) FILTER (WHERE r.u = ${name})"),
            }
        }
        Aggregation::Max => format!("max(r.a{i})"),
        Aggregation::Min => format!("min(r.a{i})"),
        _ => format!("coalesce(sum(r.a{i}), 0)"),
    }
}

/// Registers (or replaces) the table of which customer owns which key.
fn register_owners(session: &LakeSession, plans: &Plans) -> Result<()> {
    let (keys, owners): (Vec<&str>, Vec<&str>) = plans
        .customers
        .iter()
        .flat_map(|c| c.key_ids.iter().map(|k| (k.as_str(), c.id.as_str())))
        .unzip();
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
        datafusion::arrow::datatypes::Field::new("owned_key_id", DataType::Utf8, false),
        datafusion::arrow::datatypes::Field::new("customer_id", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(keys)),
            Arc::new(StringArray::from(owners)),
        ],
    )?;
    let ctx = session.context();
    ctx.deregister_table(OWNERS_TABLE)?;
    ctx.register_table(
        OWNERS_TABLE,
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    Ok(())
}

/// A meter's value in one row: `None` for max, min or avg over no rows.
pub(crate) type MeterValue = Option<Decimal>;

/// Digits kept of a value aggregated from floating-point columns
/// (`time_taken` is logged to the millisecond; sums of such floats carry
/// binary noise far below this).
const FLOAT_DIGITS: u32 = 6;

/// The meters' values by customer (per customer) or key (per key): `None`
/// keys requests without a key, or in a per-customer query the keys of no
/// customer are `Some(key)` under `customer: None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MeterValues {
    /// (customer_id, api_key_id) → one value per meter of the query.
    pub(crate) rows: BTreeMap<(Option<String>, Option<String>), Vec<MeterValue>>,
}

/// Evaluates `meters` over `range`, without windows.
pub(crate) async fn evaluate(
    session: &LakeSession,
    range: &TimeRange,
    meters: &[&Meter],
    per: Per,
    plans: Option<&Plans>,
) -> Result<MeterValues> {
    let query = MeterQuery {
        range: *range,
        meters: meters.to_vec(),
        per,
        by: None,
        tz: None,
        keys: Vec::new(),
    };
    let batches = crate::query::collect(query.run(session, plans).await?).await?;
    let mut out = MeterValues::default();
    for batch in batches {
        let text = |i: usize, row: usize| {
            let column = batch.column(i).as_string::<i32>();
            column.is_valid(row).then(|| column.value(row).to_string())
        };
        for row in 0..batch.num_rows() {
            let id = match per {
                Per::Key => (None, text(0, row)),
                Per::Customer => (text(0, row), text(1, row)),
            };
            let values = (0..meters.len())
                .map(|m| value(batch.column(2 + m), row))
                .collect::<Result<Vec<_>>>()?;
            out.rows.insert(id, values);
        }
    }
    Ok(out)
}

/// One aggregate's value as an exact decimal.
fn value(column: &ArrayRef, row: usize) -> Result<MeterValue> {
    if column.is_null(row) {
        return Ok(None);
    }
    let float = |f: f64| {
        Decimal::from_f64_retain(f)
            .map(|d| d.round_dp(FLOAT_DIGITS).normalize())
            .ok_or_else(|| Error::Query {
                name: "meters".into(),
                reason: format!("{f} is out of a decimal's range"),
            })
    };
    Ok(Some(match column.data_type() {
        DataType::Int64 => Decimal::from(column.as_primitive::<Int64Type>().value(row)),
        DataType::Int32 => Decimal::from(column.as_primitive::<Int32Type>().value(row)),
        DataType::Int16 => Decimal::from(column.as_primitive::<Int16Type>().value(row)),
        DataType::Float64 => float(column.as_primitive::<Float64Type>().value(row))?,
        other => {
            return Err(Error::Query {
                name: "meters".into(),
                reason: format!("an aggregate of type {other} is not a meter value"),
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::meters::{EndpointGlob, Meters};
    use crate::billing::plans::StatusSet;

    /// Meters filtered on the status alone are summed from the narrow
    /// rollup; one that filters on a dimension sends them all to the wide one.
    #[test]
    fn status_only_meters_read_the_narrow_rollup() {
        let builtin = Meters::builtin(&StatusSet::parse("2xx").unwrap());
        let mut by_endpoint = builtin.get("requests").unwrap().clone();
        by_endpoint.slug = "users".into();
        by_endpoint.filter.endpoint = vec![EndpointGlob::parse("/v1/users/*").unwrap()];
        fn query<'a>(meters: Vec<&'a Meter>) -> MeterQuery<'a> {
            MeterQuery {
                range: TimeRange::parse(Some("2025-10-01"), Some("2025-11-01")).unwrap(),
                meters,
                per: Per::Key,
                by: None,
                tz: None,
                keys: Vec::new(),
            }
        }
        let builtins: Vec<&Meter> = builtin.0.values().collect();
        assert_eq!(builtins.len(), 4, "{builtins:?}");
        let (sql, _) = query(builtins.clone()).sql().unwrap();
        assert!(sql.contains("FROM usage_hourly_keys\n"), "{sql}");
        let mut mixed = builtins;
        mixed.push(&by_endpoint);
        let (sql, _) = query(mixed).sql().unwrap();
        assert!(
            sql.contains("FROM usage_hourly\n") && !sql.contains("usage_hourly_keys"),
            "{sql}"
        );
    }
}
