//! The events of billing systems (Stripe meter events, OpenMeter
//! CloudEvents, Lago batches) made from invoice lines: one per (customer,
//! meter), each with an idempotency id derived from (customer, period,
//! meter), so sending an export twice counts once. [`super::formats`] picks
//! the format and names the files.

use super::InvoiceLine;
use crate::billing::meters::Meter;
use crate::billing::plans::Customer;
use crate::error::{Error, Result};
use crate::time::Period;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A deterministic idempotency id for (customer, period, meter).
pub(crate) fn idempotency_id(customer: &str, period: &str, meter: &str) -> String {
    let digest = Sha256::digest(format!("{customer}\u{1f}{period}\u{1f}{meter}").as_bytes());
    format!("edgemeter-{}", &hex::encode(digest)[..40])
}

/// What billing systems are sent: the lines of customers, and the meters
/// some plan charges in a `charges` table.
pub(super) struct Billed<'a> {
    pub(super) lines: &'a [InvoiceLine],
    pub(super) meters: &'a [&'a Meter],
    pub(super) customers: &'a BTreeMap<&'a str, &'a Customer>,
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

pub(super) fn stripe(billed: &Billed, period: &Period, now: DateTime<Utc>) -> Result<Vec<u8>> {
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
pub(super) fn openmeter(billed: &Billed, period: &Period) -> Result<Vec<u8>> {
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

pub(super) fn lago(billed: &Billed, period: &Period) -> Result<Vec<(String, Bytes)>> {
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
    fn idempotency_ids_are_stable_and_distinct() {
        let a = idempotency_id("cus_1", "2025-10", "bytes_out");
        assert_eq!(a, idempotency_id("cus_1", "2025-10", "bytes_out"));
        assert_ne!(a, idempotency_id("cus_1", "2025-10", "billable_requests"));
        assert_ne!(a, idempotency_id("cus_1", "2025-11", "bytes_out"));
        assert!(a.len() <= 100);
    }
}
