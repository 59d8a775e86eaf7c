//! edgemeter's own routes for dashboards: a customer's invoice line as the
//! export writes it, its quota use as `check` computes it, and the alerts
//! `check` would send now (listed, never sent).

use super::access::Caller;
use super::lake_view::subject_of;
use super::meter_query::BadParam;
use super::{Problem, Shared, admin_only, json, rfc3339};
use crate::billing::plans::Customer;
use crate::billing::usage_by_key;
use crate::export::formats::{self, Format};
use crate::export::{Completeness, Metered, invoice_lines};
use crate::lake::delta::AsOf;
use crate::time::Period;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

type Answered = std::result::Result<Response, Problem>;

/// The query string's parameters, each given once at most; any other name is
/// refused.
fn params(
    query: Option<&str>,
    known: &[&str],
) -> std::result::Result<BTreeMap<String, String>, Problem> {
    let mut out = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if !known.contains(&k.as_ref()) {
            return Err(Problem::bad(&BadParam::new(
                &k,
                format!("is not a parameter here (use {})", known.join(", ")),
            )));
        }
        out.insert(k.into_owned(), v.into_owned());
    }
    Ok(out)
}

/// `tz`, checked.
fn zone(params: &BTreeMap<String, String>) -> std::result::Result<Option<&str>, Problem> {
    let tz = params.get("tz").map(String::as_str);
    if let Some(tz) = tz {
        crate::time::zone(tz).map_err(|_| {
            Problem::bad(&BadParam::new(
                "tz",
                format!("{tz:?} is not an IANA time zone (like Europe/Berlin)"),
            ))
        })?;
    }
    Ok(tz)
}

/// `at`, or now.
fn instant(params: &BTreeMap<String, String>) -> std::result::Result<DateTime<Utc>, Problem> {
    match params.get("at") {
        None => Ok(Utc::now()),
        Some(at) => DateTime::parse_from_rfc3339(at)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                Problem::bad(&BadParam::new(
                    "at",
                    format!("{at:?} is not an RFC 3339 date-time"),
                ))
            }),
    }
}

/// The customer `id`, if the caller may see it: a portal token sees only
/// the customer of its subject, and learns nothing of others (403 whether
/// or not they exist).
fn customer<'a>(
    server: &'a Shared,
    caller: &Caller,
    id: &str,
) -> std::result::Result<&'a Customer, Problem> {
    let found = server.plans.customers.iter().find(|c| c.id == id);
    match (caller, found) {
        (Caller::Admin { .. }, Some(c)) => Ok(c),
        (Caller::Admin { .. }, None) => Err(Problem::not_found("customer")),
        (Caller::Portal { subject, .. }, Some(c)) if subject_of(c) == subject => Ok(c),
        (Caller::Portal { .. }, _) => Err(Problem::forbidden()),
    }
}

/// `GET /api/v1/customers/{id}/invoice?period=YYYY-MM[&tz=]`: the line
/// `edgemeter export --format jsonl` writes for the customer now,
/// `provisional` or `final`.
pub(super) async fn invoice(
    State(server): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Answered {
    let params = params(query.as_deref(), &["period", "tz"])?;
    let customer = customer(&server, &caller, &id)?;
    let tz = zone(&params)?;
    let label = params
        .get("period")
        .ok_or_else(|| Problem::bad(&BadParam::new("period", "is missing (YYYY-MM)")))?;
    let period = Period::month(label, tz)
        .map_err(|_| Problem::bad(&BadParam::new("period", format!("{label:?}: use YYYY-MM"))))?;
    let plans = &server.plans;
    let lake = server.view.lake();
    let session = server.view.session().await?;
    let now = Utc::now();
    let usage = server
        .limits
        .query
        .timed(usage_by_key(&session, &period.range(), &plans.billable))
        .await?;
    let unreadable = crate::lake::unreadable::load(lake)
        .await?
        .iter()
        .filter(|u| u.acknowledged_at.is_none())
        .count();
    let completeness = Completeness::of(lake, plans, &period, &usage, now, unreadable).await?;
    let metered = server
        .limits
        .query
        .timed(Metered::evaluate(&session, plans, &period.range()))
        .await?;
    let lines = invoice_lines(plans, &period, &usage, &metered, &completeness);
    let line = lines
        .into_iter()
        .find(|l| l.customer_id == customer.id)
        .ok_or_else(|| Problem::not_found("invoice line"))?;
    let customers = BTreeMap::from([(customer.id.as_str(), customer)]);
    // The export's own encoding of the line, so the two never differ.
    let files = formats::render(
        Format::Jsonl,
        &[line],
        &metered.meters,
        &customers,
        &period,
        now,
    )?;
    let bytes = files.first().map(|(_, b)| b.clone()).unwrap_or_default();
    let line: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| Problem::from(crate::Error::from(e)))?;
    Ok(json(&line))
}

/// `GET /api/v1/customers/{id}/quota[?at=&tz=]`: month- and day-to-date use
/// against the customer's quotas and limits.
pub(super) async fn quota(
    State(server): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Answered {
    let params = params(query.as_deref(), &["at", "tz"])?;
    let customer = customer(&server, &caller, &id)?;
    let at = instant(&params)?;
    let report = check(&server, at, &params).await?;
    let quota = report.quotas.iter().find(|q| q.customer_id == customer.id);
    let limits: Vec<_> = report
        .limits
        .iter()
        .filter(|l| l.customer_id == customer.id)
        .collect();
    Ok(json(&serde_json::json!({
        "customerId": customer.id,
        "period": report.period,
        "at": rfc3339(at),
        "quota": quota,
        "limits": limits,
    })))
}

/// `GET /api/v1/alerts[?at=&tz=]` (admin only): the alerts `check` would
/// send now.
pub(super) async fn alerts(
    State(server): State<Shared>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Answered {
    admin_only(&caller)?;
    let params = params(query.as_deref(), &["at", "tz"])?;
    let report = check(&server, instant(&params)?, &params).await?;
    Ok(json(&serde_json::json!({
        "period": report.period,
        "alerts": report.alerts,
    })))
}

/// `check` without a webhook: it reads the lake (the record of alerts
/// already sent included) and sends and claims nothing.
async fn check(
    server: &Shared,
    at: DateTime<Utc>,
    params: &BTreeMap<String, String>,
) -> std::result::Result<crate::alerts::CheckReport, Problem> {
    let tz = zone(params)?;
    let report = server
        .limits
        .query
        .timed(crate::alerts::check(
            server.view.lake(),
            &server.plans,
            at,
            tz,
            None,
            AsOf::Latest,
        ))
        .await?;
    Ok(report)
}
