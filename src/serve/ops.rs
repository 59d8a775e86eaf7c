//! `/health` and `/metrics`: whether the lake can be read and how fresh it
//! is, and the server's own counters in Prometheus' text format.

use super::access::Caller;
use super::{Problem, Shared, admin_only, json, rfc3339};
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct Latency {
    /// Answers at or below each bucket's bound.
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Requests answered, by route, method and status, and their latency by route.
#[derive(Default)]
pub(super) struct Metrics {
    inner: Mutex<Counts>,
}

/// Answers by (route, method, status), and latency by route.
type Counts = (
    BTreeMap<(String, String, u16), u64>,
    BTreeMap<String, Latency>,
);

impl Metrics {
    pub(super) fn record(&self, route: &str, method: &str, status: u16, took: Duration) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *inner
            .0
            .entry((route.to_string(), method.to_string(), status))
            .or_default() += 1;
        let latency = inner.1.entry(route.to_string()).or_default();
        let secs = took.as_secs_f64();
        for (bound, n) in BUCKETS.iter().zip(latency.buckets.iter_mut()) {
            if secs <= *bound {
                *n += 1;
            }
        }
        latency.count += 1;
        latency.sum += secs;
    }

    fn render(&self, out: &mut String) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        out.push_str("# HELP edgemeter_http_requests_total HTTP requests answered, by route, method and status.\n");
        out.push_str("# TYPE edgemeter_http_requests_total counter\n");
        for ((route, method, status), n) in &inner.0 {
            let _ = writeln!(
                out,
                "edgemeter_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                label(route)
            );
        }
        out.push_str(
            "# HELP edgemeter_http_request_duration_seconds Time to answer a request, by route.\n",
        );
        out.push_str("# TYPE edgemeter_http_request_duration_seconds histogram\n");
        for (route, l) in &inner.1 {
            let route = label(route);
            for (bound, n) in BUCKETS.iter().zip(l.buckets) {
                let _ = writeln!(
                    out,
                    "edgemeter_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "edgemeter_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                l.count
            );
            let _ = writeln!(
                out,
                "edgemeter_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                l.sum
            );
            let _ = writeln!(
                out,
                "edgemeter_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                l.count
            );
        }
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// When the newest ingest run finished, from its record.
async fn last_ingest(server: &Shared) -> Option<DateTime<Utc>> {
    let records = crate::lake::runs::records(server.view.lake(), 1)
        .await
        .ok()?;
    let finished = records.first()?.get("finished_at")?.as_str()?;
    DateTime::parse_from_rfc3339(finished)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `GET /health` (no token): 200 when the lake can be read, 503 otherwise;
/// with the version read and the age of the last ingest.
pub(super) async fn health(State(server): State<Shared>) -> Response {
    let now = Utc::now();
    match server.view.readable().await {
        Ok(session) => {
            let last = last_ingest(&server).await;
            json(&serde_json::json!({
                "status": "ok",
                "lakeVersion": session.versions().requests,
                "lastIngestAt": last.map(rfc3339),
                "lastIngestAgeSeconds": last.map(|t| (now - t).num_seconds()),
            }))
        }
        Err(e) => {
            tracing::warn!(error = %e, "health: the lake cannot be read");
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                json(&serde_json::json!({
                    "status": "unavailable",
                    "detail": "the lake cannot be read (the server's log has the cause)",
                })),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
    }
}

/// `GET /metrics` (admin only).
pub(super) async fn metrics(
    State(server): State<Shared>,
    Extension(caller): Extension<Caller>,
) -> std::result::Result<Response, Problem> {
    admin_only(&caller)?;
    let now = Utc::now();
    let mut out = String::new();
    server.metrics.render(&mut out);
    let session = server.view.session().await?;
    out.push_str(
        "# HELP edgemeter_lake_version The Delta version of each table the server reads.\n",
    );
    out.push_str("# TYPE edgemeter_lake_version gauge\n");
    let versions = session.versions();
    for (table, version) in [
        ("requests", versions.requests),
        ("usage_hourly", versions.usage_hourly),
        ("usage_hourly_keys", versions.usage_hourly_keys),
        ("usage_daily", versions.usage_daily),
        ("usage_daily_keys", versions.usage_daily_keys),
        ("usage_daily_totals", versions.usage_daily_totals),
        ("ingested", versions.ingested),
        ("meters_daily", versions.meters_daily),
    ] {
        if let Some(v) = version {
            let _ = writeln!(out, "edgemeter_lake_version{{table=\"{table}\"}} {v}");
        }
    }
    if let Some(read_at) = session.read_at() {
        out.push_str("# HELP edgemeter_lake_age_seconds Seconds since the requests version read was committed.\n");
        out.push_str("# TYPE edgemeter_lake_age_seconds gauge\n");
        let _ = writeln!(
            out,
            "edgemeter_lake_age_seconds {}",
            (now - read_at).num_milliseconds() as f64 / 1000.0
        );
    }
    if let Some(last) = last_ingest(&server).await {
        out.push_str("# HELP edgemeter_last_ingest_age_seconds Seconds since the newest ingest run finished.\n");
        out.push_str("# TYPE edgemeter_last_ingest_age_seconds gauge\n");
        let _ = writeln!(
            out,
            "edgemeter_last_ingest_age_seconds {}",
            (now - last).num_milliseconds() as f64 / 1000.0
        );
    }
    let mut response = out.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
