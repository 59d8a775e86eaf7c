//! OpenMeter's v1 routes: meters, their query, subjects and portal tokens,
//! with OpenMeter's names and types (its `api/openapi.yaml`).

use super::access::Caller;
use super::lake_view::subject_of;
use super::meter_query::{self, Answer, BadParam, Dimension, QueryParams};
use super::{Problem, Shared, admin_only, json, rfc3339, stable_id};
use crate::billing::meters::{Aggregation, Meter};
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, AsArray};

type Answered = std::result::Result<Response, Problem>;

/// The event type of every meter: one CloudFront request.
const EVENT_TYPE: &str = "request";
/// How long a portal token lasts unless the request says.
const PORTAL_TOKEN_HOURS: i64 = 24;

fn aggregation_name(a: Aggregation) -> &'static str {
    match a {
        Aggregation::Count => "COUNT",
        Aggregation::Sum => "SUM",
        Aggregation::UniqueCount => "UNIQUE_COUNT",
        Aggregation::Avg => "AVG",
        Aggregation::Min => "MIN",
        Aggregation::Max => "MAX",
    }
}

fn meter_json(server: &Shared, meter: &Meter) -> serde_json::Value {
    let group_by: serde_json::Map<String, serde_json::Value> = Dimension::ALL
        .iter()
        .map(|d| (d.name().to_string(), format!("$.{}", d.name()).into()))
        .collect();
    let mut json = serde_json::json!({
        "id": stable_id("meter", &meter.slug),
        "slug": meter.slug,
        "name": meter.slug,
        "description": meter.description,
        "aggregation": aggregation_name(meter.aggregation),
        "eventType": EVENT_TYPE,
        "groupBy": group_by,
        "windowSize": "MINUTE",
        "createdAt": rfc3339(server.plans_changed),
        "updatedAt": rfc3339(server.plans_changed),
    });
    if let Some(value) = meter.value {
        json["valueProperty"] = format!("$.{value}").into();
    }
    json
}

/// A meter by slug or by the id [`meter_json`] gives it.
fn find_meter<'a>(server: &'a Shared, id_or_slug: &str) -> Option<&'a Meter> {
    server.plans.meters.get(id_or_slug).or_else(|| {
        server
            .plans
            .meters
            .iter()
            .find(|m| stable_id("meter", &m.slug) == id_or_slug)
    })
}

/// `GET /api/v1/meters`
pub(super) async fn list_meters(
    State(server): State<Shared>,
    Extension(caller): Extension<Caller>,
) -> Answered {
    admin_only(&caller)?;
    let meters: Vec<_> = server
        .plans
        .meters
        .iter()
        .map(|m| meter_json(&server, m))
        .collect();
    Ok(json(&meters))
}

/// `GET /api/v1/meters/{meterIdOrSlug}`
pub(super) async fn get_meter(
    State(server): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(meter): Path<String>,
) -> Answered {
    admin_only(&caller)?;
    let meter = find_meter(&server, &meter).ok_or_else(|| Problem::not_found("meter"))?;
    Ok(json(&meter_json(&server, meter)))
}

/// `GET /api/v1/meters/{meterIdOrSlug}/query`: any subjects for an admin;
/// a portal token may name only its own.
pub(super) async fn query_meter(
    State(server): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(meter): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Answered {
    let mut params =
        QueryParams::parse(query.as_deref().unwrap_or("")).map_err(|e| Problem::bad(&e))?;
    if let Caller::Portal { subject, .. } = &caller {
        scope_to(&mut params, subject)?;
    }
    // A portal token learns nothing of which meters exist beyond its query.
    let meter = find_meter(&server, &meter).ok_or_else(|| Problem::not_found("meter"))?;
    answer(&server, meter, &params, &headers).await
}

/// `GET /api/v1/portal/meters/{meterSlug}/query`: a portal token's own
/// subject only.
pub(super) async fn query_portal_meter(
    State(server): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(meter): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Answered {
    let Caller::Portal { subject, .. } = &caller else {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "this route answers portal tokens; an admin queries /api/v1/meters/{meter}/query",
        ));
    };
    let mut params =
        QueryParams::parse(query.as_deref().unwrap_or("")).map_err(|e| Problem::bad(&e))?;
    scope_to(&mut params, subject)?;
    let meter = server
        .plans
        .meters
        .get(&meter)
        .ok_or_else(|| Problem::not_found("meter"))?;
    answer(&server, meter, &params, &headers).await
}

/// Restricts a query to one subject: 403 when it names another.
fn scope_to(params: &mut QueryParams, subject: &str) -> std::result::Result<(), Problem> {
    if params.subjects.iter().any(|s| s != subject) {
        return Err(Problem::forbidden());
    }
    params.subjects = vec![subject.to_string()];
    params.by_subject = true;
    Ok(())
}

async fn answer(
    server: &Shared,
    meter: &Meter,
    params: &QueryParams,
    headers: &HeaderMap,
) -> Answered {
    let max_rows = server.limits.max_rows;
    params
        .check_windows(max_rows)
        .map_err(|e| Problem::bad(&e))?;
    let session = server.view.session().await?;
    let now = Utc::now();
    let answer = server
        .limits
        .query
        .timed(meter_query::run(&session, meter, params, max_rows, now))
        .await?;
    let Answer::Rows(rows) = answer else {
        return Err(Problem::bad(&BadParam::new(
            "groupBy",
            format!(
                "the answer has more than {max_rows} rows (windows × groups): use fewer groupBy, a larger windowSize or a shorter range"
            ),
        )));
    };
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    if wants_csv {
        let body = meter_query::csv(&rows, params)?;
        let mut response = body.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        let disposition = format!("attachment; filename=\"{}.csv\"", meter.slug);
        if let Ok(value) = HeaderValue::from_str(&disposition) {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, value);
        }
        return Ok(response);
    }
    let time = |t: Option<DateTime<Utc>>| t.map(|t| serde_json::Value::from(rfc3339(t)));
    let mut body = serde_json::json!({ "data": rows });
    if let Some(from) = time(params.from) {
        body["from"] = from;
    }
    if let Some(to) = time(params.to) {
        body["to"] = to;
    }
    if let Some(w) = params.window {
        body["windowSize"] = w.name().into();
    }
    Ok(json(&body))
}

/// `GET /api/v1/subjects`: each customer under its subject, then each key
/// with requests but no customer, under its `api_key_id`.
pub(super) async fn list_subjects(
    State(server): State<Shared>,
    Extension(caller): Extension<Caller>,
) -> Answered {
    admin_only(&caller)?;
    let changed = rfc3339(server.plans_changed);
    let mut subjects: Vec<serde_json::Value> = server
        .plans
        .customers
        .iter()
        .map(|c| {
            let key = subject_of(c);
            serde_json::json!({
                "id": stable_id("subject", key),
                "key": key,
                "displayName": c.name,
                "metadata": { "customerId": c.id, "plan": c.plan },
                "stripeCustomerId": c.stripe_customer_id,
                "createdAt": changed,
                "updatedAt": changed,
            })
        })
        .collect();
    let owned: std::collections::HashSet<&str> = server
        .plans
        .customers
        .iter()
        .flat_map(|c| c.key_ids.iter().map(String::as_str))
        .collect();
    let session = server.view.session().await?;
    let keys = server
        .limits
        .query
        .timed(async {
            let df = session
                .read_only_sql(
                    "SELECT DISTINCT api_key_id FROM usage_hourly WHERE api_key_id IS NOT NULL ORDER BY api_key_id",
                )
                .await?;
            crate::query::collect(crate::query::execute(df).await?).await
        })
        .await?;
    for batch in &keys {
        let ids = datafusion::arrow::compute::cast(
            batch.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .map_err(crate::Error::from)?;
        let ids = ids.as_string::<i32>();
        for i in 0..batch.num_rows() {
            let id = ids.value(i);
            if ids.is_valid(i) && !owned.contains(id) {
                subjects.push(serde_json::json!({
                    "id": stable_id("subject", id),
                    "key": id,
                    "displayName": null,
                    "metadata": null,
                    "createdAt": changed,
                    "updatedAt": changed,
                }));
            }
        }
    }
    Ok(json(&subjects))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PortalTokenRequest {
    subject: String,
    expires_at: Option<String>,
    allowed_meter_slugs: Option<Vec<String>>,
}

/// `POST /api/v1/portal/tokens` (admin only).
pub(super) async fn create_portal_token(
    State(server): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Answered {
    admin_only(&caller)?;
    let request: PortalTokenRequest = serde_json::from_slice(&body).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not a portal token request ({{\"subject\": …}}): {e}"),
        )
    })?;
    if request.subject.trim().is_empty() {
        return Err(Problem::bad(&BadParam::new("subject", "is empty")));
    }
    if request.allowed_meter_slugs.is_some() {
        return Err(Problem::bad(&BadParam::new(
            "allowedMeterSlugs",
            "is not supported: a portal token sees every meter of its subject",
        )));
    }
    let now = Utc::now();
    let expires_at = match &request.expires_at {
        None => now + chrono::Duration::hours(PORTAL_TOKEN_HOURS),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .filter(|t| *t > now)
            .ok_or_else(|| {
                Problem::bad(&BadParam::new(
                    "expiresAt",
                    format!("{text:?} is not an RFC 3339 date-time in the future"),
                ))
            })?,
    };
    let tokens = server.tokens.tokens();
    if !tokens.portal_enabled() {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "portal tokens are off: give the tokens file a portal_secret (or set EDGEMETER_PORTAL_SECRET)",
        ));
    }
    let token = tokens
        .issue(&request.subject, expires_at)
        .ok_or_else(|| Problem::from(crate::Error::Config("portal token".into())))?;
    Ok(json(&serde_json::json!({
        "id": stable_id("portal-token", &token),
        "subject": request.subject,
        "expiresAt": rfc3339(expires_at),
        "expired": false,
        "createdAt": rfc3339(now),
        "token": token,
    })))
}
