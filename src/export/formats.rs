//! The bytes of each export format. Everything here is a pure function of the
//! invoice lines, so exporting the same period twice gives identical files.

use super::{InvoiceLine, MeterLine};
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
    let billed = Billed {
        lines,
        meters,
        customers,
    };
    match format {
        Format::Csv => one(csv(lines, meters)?),
        Format::Jsonl => one(jsonl(lines, meters)?),
        Format::Parquet => one(parquet(lines, meters)?.to_vec()),
        Format::Stripe => one(stripe(&billed, period, now)?),
        Format::Openmeter => one(openmeter(&billed, period)?),
        Format::Lago => lago(&billed, period),
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

/// What billing systems are sent: the lines of customers, and the meters
/// some plan charges in a `charges` table.
struct Billed<'a> {
    lines: &'a [InvoiceLine],
    meters: &'a [&'a Meter],
    customers: &'a BTreeMap<&'a str, &'a Customer>,
}

/// The meters every customer's usage is sent for, charged or not, as before
/// plans charged meters in `charges` tables.
const ALWAYS_SENT: [&str; 2] = ["billable_requests", "bytes_out"];

/// One (customer, meter) value for a billing system.
struct Sent {
    slug: String,
    /// Stripe's event_name, Lago's code, OpenMeter's type.
    stripe: String,
    lago: String,
    openmeter: String,
    /// Derived from (customer, period, meter), so a repeated export is a no-op.
    id: String,
    /// Decimal text.
    value: String,
}

/// The idempotency id of a meter's event. Built-in meters keep the ids they
/// always had (from their slug); a defined meter's slug is namespaced, so no
/// slug can take the id of another event (OpenMeter's `usage` event included).
fn meter_event_id(meter: &Meter, customer: &str, period: &str) -> String {
    match meter.builtin {
        true => idempotency_id(customer, period, &meter.slug),
        false => idempotency_id(customer, period, &format!("meters.{}", meter.slug)),
    }
}

impl Billed<'_> {
    /// Customer lines with the customer's record (lines without a customer
    /// are not sent to billing systems).
    fn customers(&self) -> impl Iterator<Item = (&InvoiceLine, &Customer)> {
        self.lines
            .iter()
            .filter_map(|l| self.customers.get(l.customer_id.as_str()).map(|c| (l, *c)))
    }

    /// The meters of `l` its plan charges in a `charges` table, with a value
    /// (a `max`, `min` or `avg` over no requests has none, and is not sent).
    fn charged(&self, l: &InvoiceLine, c: &Customer, period: &str) -> Vec<Sent> {
        self.meters
            .iter()
            .zip(&l.meters)
            .filter(|(_, m)| m.charged)
            .filter_map(|(meter, m)| {
                Some(Sent {
                    slug: meter.slug.clone(),
                    stripe: meter.events.stripe.clone(),
                    lago: meter.events.lago.clone(),
                    openmeter: meter.events.openmeter.clone(),
                    id: meter_event_id(meter, &c.id, period),
                    value: m.quantity?.normalize().to_string(),
                })
            })
            .collect()
    }

    /// What Stripe and Lago are sent for `l`: billable requests and bytes
    /// out, then the meters its plan charges (those two only once).
    fn sent(&self, l: &InvoiceLine, c: &Customer, period: &str) -> Vec<Sent> {
        let always = [
            ("billable_requests", l.billable_requests),
            ("bytes_out", l.bytes_out),
        ]
        .map(|(slug, value)| Sent {
            slug: slug.to_string(),
            stripe: format!("edgemeter_{slug}"),
            lago: slug.to_string(),
            openmeter: format!("edgemeter_{slug}"),
            id: idempotency_id(&c.id, period, slug),
            value: value.to_string(),
        });
        let charged = self.charged(l, c, period);
        always
            .into_iter()
            .chain(
                charged
                    .into_iter()
                    .filter(|s| !ALWAYS_SENT.contains(&s.slug.as_str())),
            )
            .collect()
    }
}

/// The event time of a period's usage: its last second, or now for a period still running.
fn event_time(period: &Period, now: DateTime<Utc>) -> DateTime<Utc> {
    (period.end - chrono::Duration::seconds(1)).min(now)
}

/// Stripe's meter values have at most 15 significant digits.
fn significant_digits(value: &str) -> usize {
    value
        .bytes()
        .filter(u8::is_ascii_digit)
        .skip_while(|b| *b == b'0')
        .count()
}

fn stripe(billed: &Billed, period: &Period, now: DateTime<Utc>) -> Result<Vec<u8>> {
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
    for (l, c) in billed.customers() {
        let Some(stripe_id) = &c.stripe_customer_id else {
            missing.push(c.id.clone());
            continue;
        };
        for sent in billed.sent(l, c, &period.label) {
            if sent.id.len() > 100 {
                return Err(Error::Config(format!(
                    "Stripe identifier longer than 100 characters: {}",
                    sent.id
                )));
            }
            if significant_digits(&sent.value) > 15 {
                return Err(Error::Config(format!(
                    "Stripe meter values have at most 15 significant digits; {} {} = {}",
                    c.id, sent.slug, sent.value
                )));
            }
            events.push(serde_json::json!({
                "event_name": sent.stripe,
                "timestamp": timestamp.timestamp(),
                "identifier": sent.id,
                "payload": {"stripe_customer_id": stripe_id, "value": sent.value},
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

/// OpenMeter gets one `api_usage` event per customer (its data holds
/// requests, billable requests and bytes, for meters OpenMeter defines over
/// them), then one event per meter the customer's plan charges in a
/// `charges` table, of the meter's `openmeter_type`, its quantity in
/// `data.value` as decimal text.
fn openmeter(billed: &Billed, period: &Period) -> Result<Vec<u8>> {
    let time = (period.end - chrono::Duration::seconds(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut events = Vec::new();
    for (l, c) in billed.customers() {
        let subject = c.openmeter_subject.as_deref().unwrap_or(&c.id);
        events.push(serde_json::json!({
            "specversion": "1.0",
            "id": idempotency_id(&c.id, &period.label, "usage"),
            "source": "edgemeter",
            "type": "api_usage",
            "subject": subject,
            "time": time,
            "datacontenttype": "application/json",
            "data": {
                "period": period.label,
                "requests": l.requests,
                "billable_requests": l.billable_requests,
                "bytes_out": l.bytes_out,
                "bytes_in": l.bytes_in,
            },
        }));
        for sent in billed.charged(l, c, &period.label) {
            events.push(serde_json::json!({
                "specversion": "1.0",
                "id": sent.id,
                "source": "edgemeter",
                "type": sent.openmeter,
                "subject": subject,
                "time": time,
                "datacontenttype": "application/json",
                "data": {
                    "period": period.label,
                    "meter": sent.slug,
                    "value": sent.value,
                },
            }));
        }
    }
    Ok(serde_json::to_vec_pretty(&events)?)
}

/// Lago accepts at most 100 events per batch call.
pub(crate) const LAGO_BATCH: usize = 100;

fn lago(billed: &Billed, period: &Period) -> Result<Vec<(String, Bytes)>> {
    let timestamp = (period.end - chrono::Duration::seconds(1)).timestamp();
    let mut events = Vec::new();
    let mut missing = Vec::new();
    for (l, c) in billed.customers() {
        let Some(subscription) = &c.lago_subscription_id else {
            missing.push(c.id.clone());
            continue;
        };
        for sent in billed.sent(l, c, &period.label) {
            events.push(serde_json::json!({
                "transaction_id": sent.id,
                "external_subscription_id": subscription,
                "code": sent.lago,
                "timestamp": timestamp,
                "properties": {"value": sent.value},
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
