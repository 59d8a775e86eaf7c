//! `edgemeter serve`: usage over HTTP, read-only over the lake.
//!
//! OpenMeter's v1 API (meters, their query, subjects, portal tokens) so its
//! SDKs work unchanged, and edgemeter's own invoice, quota, alert, health
//! and metrics routes. Every route but `/health` takes a bearer token
//! ([`access`]); each request is rate limited per caller, bounded in time,
//! and its query in rows and time. With `--pg-listen`, the same lake is
//! served over the Postgres wire protocol too ([`pg`]).
//!
//! The server never writes to the lake: it reads the newest version of it
//! ([`lake_view`]), and alerts are listed, not sent (that is `check`'s).

mod access;
mod accounts;
mod lake_view;
mod meter_query;
mod openmeter;
mod ops;
mod pg;

pub(crate) use pg::PgOptions;

use crate::billing::plans::Plans;
use crate::error::Result;
use crate::lake::Lake;
use crate::query::QueryLimits;
use access::{Caller, RateLimiter, TokenFile};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use lake_view::LakeView;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub(crate) struct ServeOptions {
    pub(crate) lake: String,
    pub(crate) s3: crate::aws::S3Settings,
    pub(crate) plans: PathBuf,
    pub(crate) tokens: PathBuf,
    pub(crate) listen: SocketAddr,
    /// The Postgres wire, when `--pg-listen` is given.
    pub(crate) pg: Option<PgOptions>,
    pub(crate) limits: Limits,
}

/// How much one request may ask for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Rows (windows × groups) a meter query may answer.
    pub(crate) max_rows: usize,
    /// Memory and time of one query.
    pub(crate) query: QueryLimits,
    /// Wall time of one request.
    pub(crate) request_timeout: Duration,
    /// Requests a minute per caller.
    pub(crate) rate_per_minute: u32,
}

/// What every handler shares.
struct Server {
    view: LakeView,
    plans: Arc<Plans>,
    /// When the plans file was last changed: meters and subjects were
    /// "created" and "updated" then.
    plans_changed: DateTime<Utc>,
    tokens: TokenFile,
    limiter: RateLimiter,
    limits: Limits,
    metrics: ops::Metrics,
}

type Shared = Arc<Server>;

/// Serves until the process is stopped.
pub(crate) async fn serve(options: ServeOptions) -> Result<()> {
    let plans = Arc::new(Plans::load(&options.plans)?);
    let tokens = TokenFile::open(&options.tokens)?;
    let plans_changed = std::fs::metadata(&options.plans)
        .and_then(|m| m.modified())
        .map(DateTime::<Utc>::from)
        .unwrap_or_else(|_| Utc::now());
    let lake = Lake::open(&options.lake, &options.s3).await?;
    let server = Arc::new(Server {
        view: LakeView::new(lake, plans.clone(), options.limits.query),
        plans,
        plans_changed,
        tokens,
        limiter: RateLimiter::new(options.limits.rate_per_minute),
        limits: options.limits,
        metrics: ops::Metrics::default(),
    });
    reload_tokens_on_sighup(server.clone());
    if let Some(pg) = &options.pg {
        pg::start(server.clone(), pg).await?;
    }
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| {
            crate::Error::Config(format!(
                "--listen {}: cannot listen there: {e}",
                options.listen
            ))
        })?;
    let bound = listener
        .local_addr()
        .map_err(|e| crate::Error::io("<listener>", e))?;
    // Tests and scripts wait for this line (port 0 picks a free port).
    eprintln!("edgemeter: serving on http://{bound}");
    axum::serve(listener, router(server))
        .with_graceful_shutdown(terminated())
        .await
        .map_err(|e| crate::Error::io("<http server>", e))
}

/// SIGTERM (how Kubernetes and systemd stop a service): answer the requests
/// under way, take no new ones, and exit 0.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terms) => {
                terms.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await
}

fn router(server: Shared) -> Router {
    let authenticated = Router::new()
        .route("/api/v1/meters", get(openmeter::list_meters))
        .route("/api/v1/meters/{meter}", get(openmeter::get_meter))
        .route("/api/v1/meters/{meter}/query", get(openmeter::query_meter))
        .route("/api/v1/subjects", get(openmeter::list_subjects))
        .route(
            "/api/v1/portal/tokens",
            post(openmeter::create_portal_token),
        )
        .route(
            "/api/v1/portal/meters/{meter}/query",
            get(openmeter::query_portal_meter),
        )
        .route("/api/v1/customers/{id}/invoice", get(accounts::invoice))
        .route("/api/v1/customers/{id}/quota", get(accounts::quota))
        .route("/api/v1/alerts", get(accounts::alerts))
        .route("/metrics", get(ops::metrics))
        .route_layer(middleware::from_fn_with_state(server.clone(), authenticate));
    Router::new()
        .route("/health", get(ops::health))
        .merge(authenticated)
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "no such route") })
        .layer(middleware::from_fn_with_state(server.clone(), time_limit))
        .layer(middleware::from_fn_with_state(server.clone(), measure))
        .with_state(server)
}

/// Records every answer's route, status and latency.
async fn measure(State(server): State<Shared>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    server.metrics.record(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Ends a request that takes longer than the limit.
async fn time_limit(State(server): State<Shared>, request: Request, next: Next) -> Response {
    let limit = server.limits.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the request took longer than {} s", limit.as_secs()),
        )
        .into_response(),
    }
}

/// Checks the bearer token and the caller's rate, and hands the [`Caller`]
/// to the handler.
async fn authenticate(State(server): State<Shared>, mut request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let caller = token.and_then(|t| server.tokens.tokens().caller(t, Utc::now()));
    let Some(caller) = caller else {
        let mut response = Problem::new(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required (Authorization: Bearer <token>)",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    };
    if !server.limiter.allow(&caller.rate_key()) {
        let mut response = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "more than {} requests a minute with this token",
                server.limits.rate_per_minute
            ),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// Re-reads the tokens file on SIGHUP.
fn reload_tokens_on_sighup(server: Shared) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!(
                "cannot listen for SIGHUP; the tokens file is still re-read when it changes"
            );
            return;
        };
        while hangups.recv().await.is_some() {
            server.tokens.reload();
            tracing::info!("SIGHUP: the tokens file will be read again");
        }
    });
    #[cfg(not(unix))]
    let _ = server;
}

/// An RFC 7807 problem, as OpenMeter answers errors.
#[derive(Debug)]
pub(crate) struct Problem {
    status: StatusCode,
    detail: String,
}

/// Numbers the problems answered, for their `instance`.
static PROBLEMS: AtomicU64 = AtomicU64::new(0);

impl Problem {
    pub(crate) fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }

    /// A 400 naming the parameter.
    fn bad(param: &meter_query::BadParam) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("{}: {}", param.name, param.reason),
        )
    }

    fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "this token may not see that (a portal token sees its own subject only)",
        )
    }

    fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let n = PROBLEMS.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "instance": format!("urn:request:edgemeter/{n:06}"),
        });
        let mut response = (self.status, body.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

impl From<crate::Error> for Problem {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::QueryTimeout(secs) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the query stopped after {secs} s, its time limit"),
            ),
            crate::Error::Config(message) => Self::new(StatusCode::BAD_REQUEST, message),
            other => {
                // The cause may name storage paths: the log has it, the
                // caller a general statement.
                tracing::error!(error = %other, "a request failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the lake could not be read (the server's log has the cause)",
                )
            }
        }
    }
}

/// Only admin tokens.
fn admin_only(caller: &Caller) -> std::result::Result<(), Problem> {
    match caller {
        Caller::Admin { .. } => Ok(()),
        Caller::Portal { .. } => Err(Problem::forbidden()),
    }
}

/// An id in OpenMeter's shape (a ULID: 26 Crockford base-32 digits), derived
/// from a name, so it stays the same across restarts.
fn stable_id(kind: &str, name: &str) -> String {
    use sha2::Digest;
    const DIGITS: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let digest = sha2::Sha256::digest(format!("{kind}:{name}").as_bytes());
    let mut bits = u128::from_be_bytes(digest[..16].try_into().unwrap_or_default());
    let mut out = [0u8; 26];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(bits & 31) as usize];
        bits >>= 5;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON answer.
fn json(value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => Problem::from(crate::Error::from(e)).into_response(),
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn stable_ids_are_ulid_shaped() {
        let id = super::stable_id("meter", "requests");
        assert_eq!(id.len(), 26);
        // 26 digits of 5 bits hold 130 bits; 128 leave the first digit 0–7.
        assert!(('0'..='7').contains(&id.chars().next().unwrap()));
        assert_eq!(id, super::stable_id("meter", "requests"));
        assert_ne!(id, super::stable_id("meter", "bytes_out"));
    }
}
