//! Evaluating meters over a range of the lake: one statement for any set of
//! meters, one column per meter (named by its slug), one row per key or per
//! customer, and per window with `--by`.
//!
//! Every meter is read from raw `requests` rows pruned by partition and
//! time, each an aggregate `FILTER (WHERE …)` of its own, so one scan answers
//! all of them; `unique_count` is exact (`count(DISTINCT …)`) per row of the
//! result, so a customer's distinct clients are counted across all its keys,
//! never summed per key.

use super::meters::{self, Meter};
use super::plans::Plans;
use crate::error::{Error, Result};
use crate::query::LakeSession;
use crate::query::usage::WindowUnit;
use crate::time::TimeRange;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int16Type, Int32Type, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::execution::SendableRecordBatchStream;
use rust_decimal::Decimal;
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

/// A query of some meters over a range.
#[derive(Debug, Clone)]
pub(crate) struct MeterQuery<'a> {
    pub(crate) range: TimeRange,
    pub(crate) meters: Vec<&'a Meter>,
    pub(crate) per: Per,
    pub(crate) by: Option<WindowUnit>,
    /// IANA zone of the windows (UTC when `None`).
    pub(crate) tz: Option<String>,
    /// Only these `api_key_id`s (all when empty).
    pub(crate) keys: Vec<String>,
}

impl MeterQuery<'_> {
    /// The statement and its parameters. Columns: `window_start` (with a
    /// window), then `api_key_id` and `api_key_hint` (per key) or
    /// `customer_id` and `api_key_id` (per customer: the key only for keys of
    /// no customer), then one column per meter.
    pub(crate) fn sql(&self) -> Result<(String, Vec<(String, ScalarValue)>)> {
        let mut params = self.range.params();
        let mut select = Vec::new();
        let mut group = Vec::new();
        if let Some(unit) = self.by {
            let tz = self.tz.clone().unwrap_or_else(|| "UTC".into());
            crate::time::zone(&tz)?;
            let unit = match unit {
                WindowUnit::Hour => "hour",
                WindowUnit::Day => "day",
                WindowUnit::Month => "month",
            };
            select.push("window_start(r.\"timestamp\", $unit, $tz) AS window_start".to_string());
            group.push("window_start".to_string());
            params.push(("unit".into(), ScalarValue::Utf8(Some(unit.into()))));
            params.push(("tz".into(), ScalarValue::Utf8(Some(tz))));
        }
        let mut join = String::new();
        match self.per {
            Per::Key => {
                select.push("r.api_key_id AS api_key_id".into());
                select.push("max(r.api_key_hint) AS api_key_hint".into());
                group.push("api_key_id".into());
            }
            Per::Customer => {
                join = format!(" LEFT JOIN {OWNERS_TABLE} o ON r.api_key_id = o.owned_key_id");
                // Grouped by the expressions, not their names: in GROUP BY,
                // `api_key_id` would name the column of `requests`.
                let key = "CASE WHEN o.customer_id IS NULL THEN r.api_key_id END";
                select.push("o.customer_id AS customer_id".into());
                select.push(format!("{key} AS api_key_id"));
                group.push("o.customer_id".into());
                group.push(key.into());
            }
        }
        for (i, meter) in self.meters.iter().enumerate() {
            let condition = meter.condition(&meters::RAW, &format!("m{i}"), &mut params);
            select.push(format!(
                "{} AS \"{}\"",
                meter.measure(&condition),
                meter.slug
            ));
        }
        let mut filter = String::new();
        if !self.keys.is_empty() {
            filter = "\n  AND array_has(string_to_array($keys, ','), r.api_key_id)".into();
            params.push((
                "keys".into(),
                ScalarValue::Utf8(Some(self.keys.join(",").to_ascii_lowercase())),
            ));
        }
        let order: Vec<String> = group
            .iter()
            .map(|g| format!("{g} ASC NULLS LAST"))
            .collect();
        let sql = format!(
            "SELECT\n    {}\nFROM requests r{join}\nWHERE r.dt >= $from_dt AND r.dt <= $to_dt\n  AND r.\"timestamp\" >= $from AND r.\"timestamp\" < $to{filter}\nGROUP BY {}\nORDER BY {}",
            select.join(",\n    "),
            group.join(", "),
            order.join(", ")
        );
        Ok((sql, params))
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
        let (sql, params) = self.sql()?;
        let df = session
            .context()
            .sql(&sql)
            .await?
            .with_param_values(params)?;
        Ok(df.execute_stream().await?)
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
