//! `edgemeter check`: quota use per customer and health per key, with alerts
//! sent once per period and threshold to a webhook (`EDGEMETER_ALERT_WEBHOOK`,
//! a JSON body with a `text` field, which Slack and Discord accept).
//!
//! Sent alerts are remembered in the lake (`_edgemeter/alerts/<period>.json`);
//! an alert whose delivery failed is not remembered, so the next check retries it.

use crate::error::{Error, Result};
use crate::export::plans::Plans;
use crate::export::{Period, usage_by_key};
use crate::lake::Lake;
use crate::query::{LakeSession, TimeRange, collect};
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use object_store::{ObjectStoreExt, PutPayload};
use std::collections::BTreeSet;

/// The environment variable naming the webhook URL.
pub const WEBHOOK_ENV: &str = "EDGEMETER_ALERT_WEBHOOK";
/// Quota thresholds, in percent.
pub const THRESHOLDS: [u32; 4] = [80, 90, 95, 100];
/// A key whose share of 5xx responses exceeds this is alerted.
pub const MAX_SERVER_ERROR_RATE: f64 = 0.10;
/// A key whose average `time_taken` exceeds this (seconds) is alerted.
pub const MAX_AVG_SECONDS: f64 = 3.0;

/// One alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Alert {
    /// Stable identity: the same alert is sent once per period.
    pub id: String,
    pub text: String,
}

/// One customer's quota use.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QuotaUse {
    pub customer_id: String,
    pub month_requests: u64,
    pub monthly_quota: Option<u64>,
    pub day_requests: u64,
    pub daily_quota: Option<u64>,
}

/// What a check found and sent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckReport {
    pub period: String,
    pub quotas: Vec<QuotaUse>,
    /// Alerts due now (new ones).
    pub alerts: Vec<Alert>,
    /// Whether they were delivered to a webhook.
    pub delivered: bool,
}

/// Checks quotas and key health as of `at` (month-to-date and day-to-date, in `tz`).
pub async fn check(
    lake: &Lake,
    plans: &Plans,
    at: DateTime<Utc>,
    tz: Option<&str>,
    webhook: Option<&str>,
    as_of: crate::lake::delta::AsOf,
) -> Result<CheckReport> {
    let zone: chrono_tz::Tz = tz
        .unwrap_or("UTC")
        .parse()
        .map_err(|_| Error::Config(format!("bad time zone {tz:?}")))?;
    let local = at.with_timezone(&zone);
    let period = Period::month(&local.format("%Y-%m").to_string(), tz)?;
    let day_start = {
        let midnight = local.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default();
        use chrono::TimeZone;
        zone.from_local_datetime(&midnight)
            .earliest()
            .map_or(period.start, |t| t.with_timezone(&Utc))
    };
    let month = TimeRange {
        from: Some(period.start),
        to: Some(at),
    };
    let day = TimeRange {
        from: Some(day_start),
        to: Some(at),
    };
    let session = LakeSession::open_as_of(lake, as_of).await?;
    let month_usage = usage_by_key(&session, &month, &plans.billable).await?;
    let day_usage = usage_by_key(&session, &day, &plans.billable).await?;

    let mut quotas = Vec::new();
    let mut alerts = Vec::new();
    for c in &plans.customers {
        let sum = |usage: &std::collections::BTreeMap<Option<String>, crate::export::KeyUsage>| {
            c.key_ids
                .iter()
                .filter_map(|id| usage.get(&Some(id.clone())))
                .map(|u| u.requests)
                .sum::<u64>()
        };
        let plan = plans.plans.get(&c.plan);
        let q = QuotaUse {
            customer_id: c.id.clone(),
            month_requests: sum(&month_usage),
            monthly_quota: plan.and_then(|p| p.monthly_quota),
            day_requests: sum(&day_usage),
            daily_quota: plan.and_then(|p| p.daily_quota),
        };
        let day_label = local.format("%Y-%m-%d").to_string();
        for (kind, label, used, quota) in [
            ("monthly", &period.label, q.month_requests, q.monthly_quota),
            ("daily", &day_label, q.day_requests, q.daily_quota),
        ] {
            let Some(quota) = quota.filter(|q| *q > 0) else {
                continue;
            };
            let pct = used as f64 * 100.0 / quota as f64;
            if let Some(t) = THRESHOLDS.iter().rev().find(|t| pct >= f64::from(**t)) {
                alerts.push(Alert {
                    id: format!("quota:{kind}:{label}:{}:{t}", c.id),
                    text: format!(
                        "edgemeter: {} ({}) has used {pct:.1}% of its {kind} quota for {label}: {used} of {quota} requests (threshold {t}%).",
                        c.id, c.name
                    ),
                });
            }
        }
        quotas.push(q);
    }

    let health = collect(session.named("key_health", month.params()).await?).await?;
    for batch in &health {
        let ids = batch.column(0).as_string::<i32>();
        let requests = batch.column(1).as_primitive::<Int64Type>();
        let errors = batch.column(2).as_primitive::<Int64Type>();
        let latency = batch.column(3).as_primitive::<Float64Type>();
        for row in 0..batch.num_rows() {
            let id = ids.value(row);
            let short = &id[..id.len().min(12)];
            let rate = errors.value(row) as f64 / requests.value(row).max(1) as f64;
            if rate > MAX_SERVER_ERROR_RATE {
                alerts.push(Alert {
                    id: format!("errors:{}:{id}", period.label),
                    text: format!(
                        "edgemeter: key {short}… had {:.1}% 5xx responses in {} ({} of {} requests).",
                        rate * 100.0,
                        period.label,
                        errors.value(row),
                        requests.value(row)
                    ),
                });
            }
            if latency.is_valid(row) && latency.value(row) > MAX_AVG_SECONDS {
                alerts.push(Alert {
                    id: format!("slow:{}:{id}", period.label),
                    text: format!(
                        "edgemeter: key {short}… averaged {:.2} s per request (time_taken) in {}.",
                        latency.value(row),
                        period.label
                    ),
                });
            }
        }
    }

    // Only alerts not sent before for this period and threshold.
    let state = lake.path(&format!("_edgemeter/alerts/{}.json", period.label));
    let mut sent: BTreeSet<String> = match lake.store().get(&state).await {
        Ok(found) => serde_json::from_slice(&found.bytes().await?).unwrap_or_default(),
        Err(object_store::Error::NotFound { .. }) => BTreeSet::new(),
        Err(e) => return Err(e.into()),
    };
    alerts.retain(|a| !sent.contains(&a.id));
    let delivered = match webhook {
        Some(url) if !alerts.is_empty() => {
            let client = reqwest::Client::new();
            for alert in &alerts {
                let body = serde_json::to_vec(&serde_json::json!({ "text": alert.text }))?;
                let response = client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .timeout(std::time::Duration::from_secs(30))
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| Error::Alert(format!("webhook {url}: {e}")))?;
                drop(response);
                sent.insert(alert.id.clone());
                lake.store()
                    .put(&state, PutPayload::from(serde_json::to_vec(&sent)?))
                    .await?;
            }
            true
        }
        _ => false,
    };
    Ok(CheckReport {
        period: period.label,
        quotas,
        alerts,
        delivered,
    })
}
