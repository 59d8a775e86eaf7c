//! The bytes of each export format. Everything here is a pure function of the
//! invoice lines, so exporting the same period twice gives identical files.

use super::InvoiceLine;
use crate::billing::plans::Customer;
use crate::error::{Error, Result};
use crate::query::output::spreadsheet_safe;
use crate::time::Period;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, Decimal128Array, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
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

/// The columns of csv, jsonl and parquet exports, in order.
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
    customers: &BTreeMap<&str, &Customer>,
    period: &Period,
    now: DateTime<Utc>,
) -> Result<Vec<(String, Bytes)>> {
    let one = |bytes: Vec<u8>| Ok(vec![(String::new(), Bytes::from(bytes))]);
    match format {
        Format::Csv => one(csv(lines)?),
        Format::Jsonl => one(jsonl(lines)?),
        Format::Parquet => one(parquet(lines)?.to_vec()),
        Format::Stripe => one(stripe(lines, customers, period, now)?),
        Format::Openmeter => one(openmeter(lines, customers, period)?),
        Format::Lago => lago(lines, customers, period),
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

/// A deterministic idempotency id for (customer, period, meter).
pub(crate) fn idempotency_id(customer: &str, period: &str, meter: &str) -> String {
    let digest = Sha256::digest(format!("{customer}\u{1f}{period}\u{1f}{meter}").as_bytes());
    format!("edgemeter-{}", &hex::encode(digest)[..40])
}

fn money(d: Decimal) -> String {
    format!("{:.2}", d.round_dp(2))
}

fn row(l: &InvoiceLine) -> [String; 19] {
    [
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
        money(l.total),
        l.currency.clone(),
        l.status.clone(),
    ]
}

fn csv(lines: &[InvoiceLine]) -> Result<Vec<u8>> {
    let mut w = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(COLUMNS)?;
    for l in lines {
        w.write_record(row(l).iter().map(|c| spreadsheet_safe(c)))?;
    }
    w.into_inner()
        .map_err(|e| Error::io("<csv export>", e.into_error()))
}

fn jsonl(lines: &[InvoiceLine]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for l in lines {
        let cells = row(l);
        let mut object = serde_json::Map::new();
        for (i, (name, cell)) in COLUMNS.iter().zip(cells).enumerate() {
            let value = match i {
                4 => serde_json::json!(l.api_key_ids),
                5..=12 => serde_json::Value::from(cell.parse::<u64>().unwrap_or_default()),
                _ => serde_json::Value::from(cell),
            };
            object.insert(name.to_string(), value);
        }
        serde_json::to_writer(&mut out, &object)?;
        out.push(b'\n');
    }
    Ok(out)
}

fn parquet(lines: &[InvoiceLine]) -> Result<Bytes> {
    let text = |f: fn(&InvoiceLine) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(lines.iter().map(f)))
    };
    let count = |f: fn(&InvoiceLine) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from_iter_values(lines.iter().map(f)))
    };
    let decimal = |f: fn(&InvoiceLine) -> Decimal| -> Result<ArrayRef> {
        let cents = lines.iter().map(|l| {
            let mut d = f(l).round_dp(2);
            d.rescale(2);
            d.mantissa()
        });
        Ok(Arc::new(
            Decimal128Array::from_iter_values(cents).with_precision_and_scale(20, 2)?,
        ))
    };
    let columns: Vec<ArrayRef> = vec![
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
        decimal(|l| l.base_fee)?,
        decimal(|l| l.request_charge)?,
        decimal(|l| l.bandwidth_charge)?,
        decimal(|l| l.total)?,
        text(|l| l.currency.clone()),
        text(|l| l.status.clone()),
    ];
    let schema = Arc::new(Schema::new(
        COLUMNS
            .iter()
            .zip(&columns)
            .map(|(name, a)| Field::new(*name, a.data_type().clone(), false))
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

/// Customer lines with the customer's record (lines without a customer are not sent to billing systems).
fn billed<'a>(
    lines: &'a [InvoiceLine],
    customers: &'a BTreeMap<&str, &Customer>,
) -> impl Iterator<Item = (&'a InvoiceLine, &'a Customer)> {
    lines
        .iter()
        .filter_map(|l| customers.get(l.customer_id.as_str()).map(|c| (l, *c)))
}

/// Meters sent to billing systems: (name, value).
fn meters(l: &InvoiceLine) -> [(&'static str, u64); 2] {
    [
        ("billable_requests", l.billable_requests),
        ("bytes_out", l.bytes_out),
    ]
}

/// The event time of a period's usage: its last second, or now for a period still running.
fn event_time(period: &Period, now: DateTime<Utc>) -> DateTime<Utc> {
    (period.end - chrono::Duration::seconds(1)).min(now)
}

fn stripe(
    lines: &[InvoiceLine],
    customers: &BTreeMap<&str, &Customer>,
    period: &Period,
    now: DateTime<Utc>,
) -> Result<Vec<u8>> {
    let timestamp = event_time(period, now);
    if timestamp < now - chrono::Duration::days(35)
        || timestamp > now + chrono::Duration::minutes(5)
    {
        return Err(Error::Config(format!(
            "Stripe accepts meter events from the past 35 days only; period {} ended {}",
            period.label,
            period.end.to_rfc3339()
        )));
    }
    let mut events = Vec::new();
    let mut missing = Vec::new();
    for (l, c) in billed(lines, customers) {
        let Some(stripe_id) = &c.stripe_customer_id else {
            missing.push(c.id.clone());
            continue;
        };
        for (meter, value) in meters(l) {
            let identifier = idempotency_id(&c.id, &period.label, meter);
            if identifier.len() > 100 {
                return Err(Error::Config(format!(
                    "Stripe identifier longer than 100 characters: {identifier}"
                )));
            }
            let digits = value.to_string();
            if digits.trim_start_matches('0').len() > 15 {
                return Err(Error::Config(format!(
                    "Stripe meter values have at most 15 significant digits; {} {meter} = {value}",
                    c.id
                )));
            }
            events.push(serde_json::json!({
                "event_name": format!("edgemeter_{meter}"),
                "timestamp": timestamp.timestamp(),
                "identifier": identifier,
                "payload": {"stripe_customer_id": stripe_id, "value": digits},
            }));
        }
    }
    if !missing.is_empty() {
        return Err(Error::Config(format!(
            "no stripe_customer_id for: {}",
            missing.join(", ")
        )));
    }
    let mut out = Vec::new();
    for e in events {
        serde_json::to_writer(&mut out, &e)?;
        out.push(b'\n');
    }
    Ok(out)
}

fn openmeter(
    lines: &[InvoiceLine],
    customers: &BTreeMap<&str, &Customer>,
    period: &Period,
) -> Result<Vec<u8>> {
    let time = (period.end - chrono::Duration::seconds(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let events: Vec<serde_json::Value> = billed(lines, customers)
        .map(|(l, c)| {
            serde_json::json!({
                "specversion": "1.0",
                "id": idempotency_id(&c.id, &period.label, "usage"),
                "source": "edgemeter",
                "type": "api_usage",
                "subject": c.openmeter_subject.as_deref().unwrap_or(&c.id),
                "time": time,
                "datacontenttype": "application/json",
                "data": {
                    "period": period.label,
                    "requests": l.requests,
                    "billable_requests": l.billable_requests,
                    "bytes_out": l.bytes_out,
                    "bytes_in": l.bytes_in,
                },
            })
        })
        .collect();
    Ok(serde_json::to_vec_pretty(&events)?)
}

/// Lago accepts at most 100 events per batch call.
pub(crate) const LAGO_BATCH: usize = 100;

fn lago(
    lines: &[InvoiceLine],
    customers: &BTreeMap<&str, &Customer>,
    period: &Period,
) -> Result<Vec<(String, Bytes)>> {
    let timestamp = (period.end - chrono::Duration::seconds(1)).timestamp();
    let mut events = Vec::new();
    let mut missing = Vec::new();
    for (l, c) in billed(lines, customers) {
        let Some(subscription) = &c.lago_subscription_id else {
            missing.push(c.id.clone());
            continue;
        };
        for (meter, value) in meters(l) {
            events.push(serde_json::json!({
                "transaction_id": idempotency_id(&c.id, &period.label, meter),
                "external_subscription_id": subscription,
                "code": meter,
                "timestamp": timestamp,
                "properties": {"value": value.to_string()},
            }));
        }
    }
    if !missing.is_empty() {
        return Err(Error::Config(format!(
            "no lago_subscription_id for: {}",
            missing.join(", ")
        )));
    }
    let chunks: Vec<&[serde_json::Value]> = events.chunks(LAGO_BATCH).collect();
    let many = chunks.len() > 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let suffix = if many {
                format!("-{:04}", i + 1)
            } else {
                String::new()
            };
            let body = serde_json::to_vec_pretty(&serde_json::json!({"events": chunk}))?;
            Ok((suffix, Bytes::from(body)))
        })
        .collect()
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

    #[test]
    fn idempotency_ids_are_stable_and_distinct() {
        let a = idempotency_id("cus_1", "2025-10", "bytes_out");
        assert_eq!(a, idempotency_id("cus_1", "2025-10", "bytes_out"));
        assert_ne!(a, idempotency_id("cus_1", "2025-10", "billable_requests"));
        assert_ne!(a, idempotency_id("cus_1", "2025-11", "bytes_out"));
        assert!(a.len() <= 100);
    }
}
