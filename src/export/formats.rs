//! The bytes of each export format. Everything here is a pure function of the
//! invoice lines, so exporting the same period twice gives identical files.

use super::{InvoiceLine, MeterLine, events};
use crate::billing::meters::Meter;
use crate::billing::plans::Customer;
use crate::error::{Error, Result};
use crate::query::output::spreadsheet_safe;
use crate::time::Period;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, Decimal128Array, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// RFC 4180 CSV, safe to open in a spreadsheet.
    Csv,
    /// One JSON object per line; money as decimal strings.
    Jsonl,
    /// Parquet; money as DECIMAL(20,2).
    Parquet,
    /// Stripe meter events (JSON lines).
    Stripe,
    /// OpenMeter: a CloudEvents 1.0 batch.
    Openmeter,
    /// Lago batch events, at most 100 per file.
    Lago,
}

/// The columns of csv, jsonl and parquet exports, in order, when no plan
/// charges a meter in a `charges` table ([`columns`] adds theirs).
pub(crate) const COLUMNS: [&str; 19] = [
    "period",
    "customer_id",
    "customer_name",
    "plan",
    "api_key_ids",
    "requests",
    "billable_requests",
    "client_errors",
    "server_errors",
    "bytes_out",
    "bytes_in",
    "included_requests",
    "overage_requests",
    "base_fee",
    "request_charge",
    "bandwidth_charge",
    "total",
    "currency",
    "status",
];

/// Where the columns of charged meters go: after `bandwidth_charge`.
const METER_COLUMNS_AT: usize = 16;

/// The columns of csv, jsonl and parquet exports: [`COLUMNS`], with
/// `<slug>_quantity` and `<slug>_charge` of each charged meter before `total`.
pub(crate) fn columns(meters: &[&Meter]) -> Vec<String> {
    let (head, tail) = COLUMNS.split_at(METER_COLUMNS_AT);
    let metered = meters
        .iter()
        .flat_map(|m| [format!("{}_quantity", m.slug), format!("{}_charge", m.slug)]);
    head.iter()
        .map(|c| c.to_string())
        .chain(metered)
        .chain(tail.iter().map(|c| c.to_string()))
        .collect()
}

/// Whether column `i` of [`columns`] is a meter's quantity.
fn is_quantity(i: usize, meters: usize) -> bool {
    (METER_COLUMNS_AT..METER_COLUMNS_AT + 2 * meters).contains(&i)
        && (i - METER_COLUMNS_AT).is_multiple_of(2)
}

impl Format {
    /// True for the formats of billing systems, whose records are events.
    pub(crate) fn is_events(self) -> bool {
        matches!(self, Format::Stripe | Format::Openmeter | Format::Lago)
    }
}

/// The records in rendered files: invoice lines, or events for billing systems.
pub(crate) fn records(format: Format, files: &[(String, Bytes)]) -> Result<usize> {
    let json = |b: &Bytes| serde_json::from_slice::<serde_json::Value>(b);
    Ok(match format {
        Format::Csv | Format::Jsonl | Format::Parquet => 0,
        Format::Stripe => files
            .iter()
            .map(|(_, b)| b.split(|c| *c == b'\n').filter(|l| !l.is_empty()).count())
            .sum(),
        Format::Openmeter => files
            .iter()
            .map(|(_, b)| Ok(json(b)?.as_array().map_or(0, Vec::len)))
            .sum::<Result<usize>>()?,
        Format::Lago => files
            .iter()
            .map(|(_, b)| Ok(json(b)?["events"].as_array().map_or(0, Vec::len)))
            .sum::<Result<usize>>()?,
    })
}

/// Renders `lines` as `(file suffix, bytes)` pairs (one pair unless Lago splits).
pub(crate) fn render(
    format: Format,
    lines: &[InvoiceLine],
    meters: &[&Meter],
    customers: &BTreeMap<&str, &Customer>,
    period: &Period,
    now: DateTime<Utc>,
) -> Result<Vec<(String, Bytes)>> {
    let one = |bytes: Vec<u8>| Ok(vec![(String::new(), Bytes::from(bytes))]);
    let billed = events::Billed {
        lines,
        meters,
        customers,
    };
    match format {
        Format::Csv => one(csv(lines, meters)?),
        Format::Jsonl => one(jsonl(lines, meters)?),
        Format::Parquet => one(parquet(lines, meters)?.to_vec()),
        Format::Stripe => one(events::stripe(&billed, period, now)?),
        Format::Openmeter => one(events::openmeter(&billed, period)?),
        Format::Lago => events::lago(&billed, period),
    }
}

/// `out.json` with suffix `-0002` is `out-0002.json`.
pub(crate) fn with_suffix(output: &str, suffix: &str) -> String {
    if suffix.is_empty() {
        return output.to_string();
    }
    let name_start = output.rfind('/').map_or(0, |i| i + 1);
    match output[name_start..].rfind('.') {
        Some(dot) if dot > 0 => {
            let at = name_start + dot;
            format!("{}{suffix}{}", &output[..at], &output[at..])
        }
        _ => format!("{output}{suffix}"),
    }
}

fn money(d: Decimal) -> String {
    format!("{:.2}", d.round_dp(2))
}

/// A meter's quantity as decimal text (empty: none, for `max`, `min` or
/// `avg` over no requests).
fn quantity(m: &MeterLine) -> String {
    m.quantity
        .map_or(String::new(), |q| q.normalize().to_string())
}

fn row(l: &InvoiceLine) -> Vec<String> {
    let head = [
        l.period.clone(),
        l.customer_id.clone(),
        l.customer_name.clone(),
        l.plan.clone(),
        l.api_key_ids.join(";"),
        l.requests.to_string(),
        l.billable_requests.to_string(),
        l.client_errors.to_string(),
        l.server_errors.to_string(),
        l.bytes_out.to_string(),
        l.bytes_in.to_string(),
        l.included_requests.to_string(),
        l.overage_requests.to_string(),
        money(l.base_fee),
        money(l.request_charge),
        money(l.bandwidth_charge),
    ];
    let metered = l.meters.iter().flat_map(|m| [quantity(m), money(m.charge)]);
    let tail = [money(l.total), l.currency.clone(), l.status.clone()];
    head.into_iter().chain(metered).chain(tail).collect()
}

fn csv(lines: &[InvoiceLine], meters: &[&Meter]) -> Result<Vec<u8>> {
    let mut w = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(columns(meters))?;
    for l in lines {
        w.write_record(row(l).iter().map(|c| spreadsheet_safe(c)))?;
    }
    w.into_inner()
        .map_err(|e| Error::io("<csv export>", e.into_error()))
}

fn jsonl(lines: &[InvoiceLine], meters: &[&Meter]) -> Result<Vec<u8>> {
    let names = columns(meters);
    let mut out = Vec::new();
    for l in lines {
        let cells = row(l);
        let mut object = serde_json::Map::new();
        for (i, (name, cell)) in names.iter().zip(cells).enumerate() {
            let value = match i {
                4 => serde_json::json!(l.api_key_ids),
                5..=12 => serde_json::Value::from(cell.parse::<u64>().unwrap_or_default()),
                _ if is_quantity(i, meters.len()) && cell.is_empty() => serde_json::Value::Null,
                _ => serde_json::Value::from(cell),
            };
            object.insert(name.clone(), value);
        }
        serde_json::to_writer(&mut out, &object)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Parquet's type of meter quantities: exact decimals whatever the
/// aggregation (sums and averages of `time_taken` have fractions; metering
/// keeps 6 digits of them), wide enough for any sum of 64-bit values.
const QUANTITY_PRECISION: u8 = 38;
const QUANTITY_SCALE: u32 = 6;

fn parquet(lines: &[InvoiceLine], meters: &[&Meter]) -> Result<Bytes> {
    let text = |f: fn(&InvoiceLine) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(lines.iter().map(f)))
    };
    let count = |f: fn(&InvoiceLine) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from_iter_values(lines.iter().map(f)))
    };
    let scaled = |d: Decimal, scale: u32| {
        let mut d = d.round_dp(scale);
        d.rescale(scale);
        d.mantissa()
    };
    let decimal = |f: &dyn Fn(&InvoiceLine) -> Decimal| -> Result<ArrayRef> {
        let cents = lines.iter().map(|l| scaled(f(l), 2));
        Ok(Arc::new(
            Decimal128Array::from_iter_values(cents).with_precision_and_scale(20, 2)?,
        ))
    };
    let mut columns: Vec<ArrayRef> = vec![
        text(|l| l.period.clone()),
        text(|l| l.customer_id.clone()),
        text(|l| l.customer_name.clone()),
        text(|l| l.plan.clone()),
        text(|l| l.api_key_ids.join(";")),
        count(|l| l.requests),
        count(|l| l.billable_requests),
        count(|l| l.client_errors),
        count(|l| l.server_errors),
        count(|l| l.bytes_out),
        count(|l| l.bytes_in),
        count(|l| l.included_requests),
        count(|l| l.overage_requests),
        decimal(&|l| l.base_fee)?,
        decimal(&|l| l.request_charge)?,
        decimal(&|l| l.bandwidth_charge)?,
    ];
    for m in 0..meters.len() {
        let quantities = lines
            .iter()
            .map(|l| l.meters[m].quantity.map(|q| scaled(q, QUANTITY_SCALE)));
        columns.push(Arc::new(
            Decimal128Array::from_iter(quantities)
                .with_precision_and_scale(QUANTITY_PRECISION, QUANTITY_SCALE as i8)?,
        ));
        columns.push(decimal(&|l| l.meters[m].charge)?);
    }
    columns.extend([
        decimal(&|l| l.total)?,
        text(|l| l.currency.clone()),
        text(|l| l.status.clone()),
    ]);
    let names = self::columns(meters);
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .zip(&columns)
            .enumerate()
            .map(|(i, (name, a))| {
                Field::new(name, a.data_type().clone(), is_quantity(i, meters.len()))
            })
            .collect::<Vec<_>>(),
    ));
    debug_assert!(
        schema
            .fields()
            .iter()
            .all(|f| f.data_type() != &DataType::Null)
    );
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    crate::lake::parquet_io::encode(
        &schema,
        &[batch],
        crate::lake::parquet_io::writer_properties(None),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_go_before_the_extension() {
        assert_eq!(with_suffix("out/lago.json", "-0002"), "out/lago-0002.json");
        assert_eq!(
            with_suffix("s3://b/x.d/lago", "-0001"),
            "s3://b/x.d/lago-0001"
        );
        assert_eq!(with_suffix("lago.json", ""), "lago.json");
    }
}
