//! `edgemeter check`: quota use per customer and health per key, with alerts
//! sent once per period and threshold to a webhook (`EDGEMETER_ALERT_WEBHOOK`,
//! a JSON body with a `text` field, which Slack and Discord accept).
//!
//! Each alert is claimed in the lake before it is sent
//! (`_edgemeter/alerts/<period>/<id digest>.json`, created conditionally), so
//! two checks running at once send it once; a failed delivery gives the claim
//! back, so the next check retries it. The webhook's URL is a credential:
//! it is never printed, and redirects are not followed.

use crate::billing::metering::{MeterValues, Per, evaluate};
use crate::billing::plans::{Charge, Plans};
use crate::billing::{KeyUsage, usage_by_key};
use crate::error::{Error, Result};
use crate::lake::{Lake, layout};
use crate::query::{LakeSession, collect};
use crate::time::{Clock, Period, TimeRange};
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use object_store::ObjectStoreExt;
use rust_decimal::Decimal;
use sha2::Digest;
use std::collections::BTreeSet;

/// Quota thresholds, in percent.
pub(crate) const THRESHOLDS: [u32; 4] = [80, 90, 95, 100];
/// A key whose share of 5xx responses exceeds this is alerted.
pub(crate) const MAX_SERVER_ERROR_RATE: f64 = 0.10;
/// A key whose average `time_taken` exceeds this (seconds) is alerted.
pub(crate) const MAX_AVG_SECONDS: f64 = 3.0;

/// One alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct Alert {
    /// Stable identity: the same alert is sent once per period.
    pub(crate) id: String,
    pub(crate) text: String,
}

/// One customer's quota use.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct QuotaUse {
    pub(crate) customer_id: String,
    pub(crate) month_requests: u64,
    pub(crate) monthly_quota: Option<u64>,
    pub(crate) day_requests: u64,
    pub(crate) daily_quota: Option<u64>,
}

/// One customer's use of a meter its plan limits (`daily_limit`,
/// `monthly_limit` of a charge).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct LimitUse {
    pub(crate) customer_id: String,
    pub(crate) meter: String,
    /// `monthly` (month to date) or `daily` (day to date).
    pub(crate) window: &'static str,
    pub(crate) used: Decimal,
    pub(crate) limit: u64,
}

/// What a check found and sent.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct CheckReport {
    pub(crate) period: String,
    pub(crate) quotas: Vec<QuotaUse>,
    /// Use of every limited meter, by customer, meter, then window.
    pub(crate) limits: Vec<LimitUse>,
    /// Alerts due now (new ones).
    pub(crate) alerts: Vec<Alert>,
    /// Whether they were delivered to a webhook.
    pub(crate) delivered: bool,
}

/// Where alerts are sent, and the clock their claims are dated by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Webhook<'a> {
    /// A credential: never printed.
    pub(crate) url: &'a str,
    pub(crate) clock: &'a dyn Clock,
}

/// Checks quotas and key health as of `at` (month-to-date and day-to-date, in
/// `tz`); with a webhook, sends the alerts due.
pub(crate) async fn check(
    lake: &Lake,
    plans: &Plans,
    at: DateTime<Utc>,
    tz: Option<&str>,
    webhook: Option<Webhook<'_>>,
    as_of: crate::lake::delta::AsOf,
) -> Result<CheckReport> {
    let zone = crate::time::zone(tz.unwrap_or("UTC"))?;
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
        let sum = |usage: &std::collections::BTreeMap<Option<String>, KeyUsage>| {
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

    let day_label = local.format("%Y-%m-%d").to_string();
    let limits = meter_limits(&session, plans, &month, &day).await?;
    for l in &limits {
        let label = match l.window {
            "monthly" => &period.label,
            _ => &day_label,
        };
        let limit = Decimal::from(l.limit);
        let pct = l.used * Decimal::from(100) / limit;
        if let Some(t) = THRESHOLDS.iter().rev().find(|t| pct >= Decimal::from(**t)) {
            let name = plans
                .customers
                .iter()
                .find(|c| c.id == l.customer_id)
                .map_or("", |c| c.name.as_str());
            alerts.push(Alert {
                id: format!(
                    "limit:{}:{}:{label}:{}:{t}",
                    l.meter, l.window, l.customer_id
                ),
                text: format!(
                    "edgemeter: {} ({name}) has used {:.1}% of its {} limit of {} for {label}: {} of {} (threshold {t}%).",
                    l.customer_id,
                    pct.round_dp_with_strategy(1, rust_decimal::RoundingStrategy::MidpointAwayFromZero),
                    l.window,
                    l.meter,
                    l.used.normalize(),
                    l.limit
                ),
            });
        }
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

    // Only alerts not sent before for this period and threshold: the old
    // record of sent ids, then one claim per alert.
    let state = lake.path(&layout::alerts_sent(&period.label));
    let sent: BTreeSet<String> = match lake.store().get(&state).await {
        Ok(found) => serde_json::from_slice(&found.bytes().await?).unwrap_or_default(),
        Err(object_store::Error::NotFound { .. }) => BTreeSet::new(),
        Err(e) => return Err(e.into()),
    };
    alerts.retain(|a| !sent.contains(&a.id));
    let delivered = match webhook {
        Some(Webhook { url, clock }) if !alerts.is_empty() => {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .map_err(|e| Error::Alert(format!("webhook client: {}", e.without_url())))?;
            let mut claimed = Vec::new();
            for alert in &alerts {
                let claim = lake.path(&layout::alert_claim(
                    &period.label,
                    &hex::encode(sha2::Sha256::digest(alert.id.as_bytes())),
                ));
                if !claims::take(lake, &claim, clock.now()).await? {
                    continue; // sent, or being sent, by another check
                }
                let body = serde_json::to_vec(&serde_json::json!({ "text": alert.text }))?;
                // Neither the URL nor reqwest's message (which quotes it) is
                // printed: a webhook URL is a credential.
                let outcome = match client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) if r.status().is_redirection() => Err(format!(
                        "the webhook answered {} (redirects are not followed)",
                        r.status()
                    )),
                    Ok(r) => Err(format!("the webhook answered {}", r.status())),
                    Err(e) => Err(format!(
                        "the webhook could not be reached: {}",
                        e.without_url()
                    )),
                };
                match outcome {
                    Ok(()) => claims::delivered(lake, &claim, clock.now()).await?,
                    Err(reason) => {
                        claims::release(lake, &claim).await?;
                        return Err(Error::Alert(reason));
                    }
                }
                claimed.push(alert.clone());
            }
            alerts = claimed;
            true
        }
        _ => false,
    };
    Ok(CheckReport {
        period: period.label,
        quotas,
        limits,
        alerts,
        delivered,
    })
}

/// The use of every meter a customer's plan limits in a `charges` table,
/// month to date and day to date (the shorthand quotas are [`QuotaUse`]).
async fn meter_limits(
    session: &LakeSession,
    plans: &Plans,
    month: &TimeRange,
    day: &TimeRange,
) -> Result<Vec<LimitUse>> {
    let limited =
        |c: &&Charge| !c.shorthand && (c.daily_limit.is_some() || c.monthly_limit.is_some());
    let mut slugs: Vec<&str> = plans
        .plans
        .values()
        .flat_map(|p| p.charges.values().filter(limited))
        .map(|c| c.meter.as_str())
        .collect();
    slugs.sort_unstable();
    slugs.dedup();
    if slugs.is_empty() {
        return Ok(Vec::new());
    }
    let meters = slugs
        .iter()
        .map(|s| plans.meters.require(s, "a plan's charges"))
        .collect::<Result<Vec<_>>>()?;
    let month_values = evaluate(session, month, &meters, Per::Customer, Some(plans)).await?;
    let day_values = evaluate(session, day, &meters, Per::Customer, Some(plans)).await?;
    let mut out = Vec::new();
    for c in &plans.customers {
        let Some(plan) = plans.plans.get(&c.plan) else {
            continue;
        };
        for charge in plan.charges.values().filter(limited) {
            let at = slugs
                .binary_search(&charge.meter.as_str())
                .unwrap_or_default();
            let used = |values: &MeterValues| {
                values
                    .rows
                    .get(&(Some(c.id.clone()), None))
                    .and_then(|v| v[at])
                    .unwrap_or_default()
            };
            for (window, limit, values) in [
                ("monthly", charge.monthly_limit, &month_values),
                ("daily", charge.daily_limit, &day_values),
            ] {
                if let Some(limit) = limit {
                    out.push(LimitUse {
                        customer_id: c.id.clone(),
                        meter: charge.meter.clone(),
                        window,
                        used: used(values),
                        limit,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// One claim per alert, `_edgemeter/alerts/<period>/<id digest>.json`,
/// created conditionally: of two checks running at once, only the one that
/// creates the claim sends. A claim left undelivered by a check that died
/// is taken over after [`claims::STALE_SECS`], again conditionally.
mod claims {
    use crate::error::Result;
    use crate::lake::Lake;
    use chrono::{DateTime, Utc};
    use object_store::path::Path;
    use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

    pub(crate) const STALE_SECS: i64 = 600;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Claim {
        claimed_at_ms: i64,
        delivered: bool,
    }

    fn body(delivered: bool, now: DateTime<Utc>) -> Result<PutPayload> {
        let claim = Claim {
            claimed_at_ms: now.timestamp_millis(),
            delivered,
        };
        Ok(PutPayload::from(serde_json::to_vec(&claim)?))
    }

    /// Whether this check now holds the claim and must send.
    pub(crate) async fn take(lake: &Lake, path: &Path, now: DateTime<Utc>) -> Result<bool> {
        let create = PutOptions::from(PutMode::Create);
        match lake.store().put_opts(path, body(false, now)?, create).await {
            Ok(_) => return Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let found = match lake.store().get(path).await {
            Ok(found) => found,
            // Released in between: the next check sends it.
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let version = UpdateVersion {
            e_tag: found.meta.e_tag.clone(),
            version: found.meta.version.clone(),
        };
        let claim: Option<Claim> = serde_json::from_slice(&found.bytes().await?).ok();
        let stale = claim.is_some_and(|c| {
            !c.delivered && now.timestamp_millis() - c.claimed_at_ms > STALE_SECS * 1000
        });
        if !stale {
            return Ok(false);
        }
        let update = PutOptions::from(PutMode::Update(version));
        match lake.store().put_opts(path, body(false, now)?, update).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::Precondition { .. }) => Ok(false),
            // A local lake has no conditional update: the stale claim is
            // removed and created anew, conditionally, so of two checks
            // taking it over only one creates it. (One that removes the
            // other's new claim in between can still send it twice; a local
            // lake is checked from one machine, where checks rarely overlap.)
            Err(object_store::Error::NotImplemented { .. }) => {
                release(lake, path).await?;
                let create = PutOptions::from(PutMode::Create);
                match lake.store().put_opts(path, body(false, now)?, create).await {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn delivered(lake: &Lake, path: &Path, now: DateTime<Utc>) -> Result<()> {
        lake.store().put(path, body(true, now)?).await?;
        Ok(())
    }

    /// Gives a claim back after a failed delivery, so the next check retries.
    pub(crate) async fn release(lake: &Lake, path: &Path) -> Result<()> {
        match lake.store().delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::claims;
    use crate::lake::{Lake, layout};
    use chrono::{DateTime, Duration, Utc};

    /// A claim is held until it is delivered or released; one left
    /// undelivered by a check that died is taken over only after
    /// `STALE_SECS`, by the claim's own time, not the wall clock.
    #[tokio::test]
    async fn an_undelivered_claim_is_taken_over_only_once_it_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open_or_create(
            dir.path().to_str().unwrap(),
            &crate::aws::S3Settings::default(),
        )
        .await
        .unwrap();
        let claim = lake.path(&layout::alert_claim("2025-10", "abc"));
        let t0: DateTime<Utc> = "2025-10-31T12:00:00Z".parse().unwrap();
        let stale = Duration::seconds(claims::STALE_SECS);
        assert!(claims::take(&lake, &claim, t0).await.unwrap());
        // Another check, at once and just before the claim is stale: it waits.
        assert!(!claims::take(&lake, &claim, t0).await.unwrap());
        assert!(!claims::take(&lake, &claim, t0 + stale).await.unwrap());
        // Past it, the claim is taken over, and dated anew.
        let later = t0 + stale + Duration::seconds(1);
        assert!(claims::take(&lake, &claim, later).await.unwrap());
        assert!(!claims::take(&lake, &claim, later + stale).await.unwrap());
        // A delivered claim is never taken over; a released one is free again.
        claims::delivered(&lake, &claim, later).await.unwrap();
        let much_later = later + stale * 100;
        assert!(!claims::take(&lake, &claim, much_later).await.unwrap());
        claims::release(&lake, &claim).await.unwrap();
        assert!(claims::take(&lake, &claim, much_later).await.unwrap());
    }
}
