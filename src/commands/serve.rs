//! `edgemeter serve`: usage over HTTP (OpenMeter's v1 API and edgemeter's
//! own routes), read-only over the lake.

use super::Outcome;
use crate::config::{self, LakeSettings};
use crate::error::{Error, Result};
use crate::query::QueryLimits;
use crate::serve::{Limits, PgOptions, ServeOptions};
use clap::Args;
use std::path::PathBuf;

/// Where `serve` listens when nothing says.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Rows one meter query may answer.
pub(crate) const DEFAULT_MAX_ROWS: usize = 10_000;
/// Time limit of one query behind a request, in seconds.
pub(crate) const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// Time limit of one request, in seconds.
pub(crate) const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 60;
/// Requests a minute per token.
pub(crate) const DEFAULT_RATE_PER_MINUTE: u32 = 600;

/// `serve`'s settings: its flags, and the keys of the config file's
/// `[serve]` table (every key optional; `lake` and `plans` also come from
/// the file's top level).
#[derive(Debug, Default, Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub(crate) lake: LakeSettings,
    /// The plans file: meters, customers and their keys.
    #[arg(long, env = "EDGEMETER_PLANS")]
    pub(crate) plans: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port, printed at start) [default: 127.0.0.1:8080].
    #[arg(long, env = "EDGEMETER_LISTEN")]
    pub(crate) listen: Option<String>,
    /// Also serve SQL over the Postgres wire protocol here (psql, Grafana);
    /// the password is an admin token.
    #[arg(long, env = "EDGEMETER_PG_LISTEN")]
    pub(crate) pg_listen: Option<String>,
    /// TLS certificate chain (PEM) for --pg-listen; needs --pg-tls-key.
    #[arg(long, env = "EDGEMETER_PG_TLS_CERT")]
    pub(crate) pg_tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for --pg-listen; needs --pg-tls-cert.
    #[arg(long, env = "EDGEMETER_PG_TLS_KEY")]
    pub(crate) pg_tls_key: Option<PathBuf>,
    /// The tokens file: `[[tokens]]` admin tokens and the `portal_secret`.
    #[arg(long, env = "EDGEMETER_TOKENS")]
    pub(crate) tokens: Option<PathBuf>,
    /// Rows (windows × groups) one meter query may answer [default: 10000].
    #[arg(long, env = "EDGEMETER_MAX_ROWS")]
    pub(crate) max_rows: Option<usize>,
    /// Time limit of one query, in seconds [default: 30].
    #[arg(long, env = "EDGEMETER_QUERY_TIMEOUT_SECS")]
    pub(crate) timeout_secs: Option<u64>,
    /// Time limit of one request, in seconds [default: 60].
    #[arg(long, env = "EDGEMETER_REQUEST_TIMEOUT_SECS")]
    pub(crate) request_timeout_secs: Option<u64>,
    /// Memory of one query's operators, in MiB [default: 4096].
    #[arg(long, env = "EDGEMETER_QUERY_MEMORY_MIB")]
    pub(crate) memory_mib: Option<u64>,
    /// Requests a minute per token [default: 600].
    #[arg(long, env = "EDGEMETER_RATE_PER_MINUTE")]
    pub(crate) rate_per_minute: Option<u32>,
}

config::command_settings!(
    ServeArgs,
    "serve",
    config: lake.config,
    layered: [
        plans,
        listen,
        pg_listen,
        pg_tls_cert,
        pg_tls_key,
        tokens,
        max_rows,
        timeout_secs,
        request_timeout_secs,
        memory_mib,
        rate_per_minute,
    ],
    kept: [lake],
);

impl ServeArgs {
    /// Merges the flags with the config file, then checks the values they hold.
    pub(crate) fn validate(self) -> Result<ServeOptions> {
        let (args, shared) = config::layered(self)?;
        let (lake, s3) = args.lake.resolve(&shared)?;
        let plans = args.plans.or(shared.plans).ok_or_else(|| {
            Error::Config("no plans: give --plans or `plans` in the config file".into())
        })?;
        let listen_text = args.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = listen_text.parse().map_err(|_| {
            Error::Config(format!(
                "--listen {listen_text:?}: give an address and port, like 127.0.0.1:8080"
            ))
        })?;
        let tokens = args.tokens.ok_or_else(|| {
            Error::Config(
                "--tokens (or EDGEMETER_TOKENS) is required: every route but /health takes a bearer token"
                    .into(),
            )
        })?;
        if args.pg_tls_cert.is_some() != args.pg_tls_key.is_some() {
            return Err(Error::Config(
                "--pg-tls-cert and --pg-tls-key go together: give both".into(),
            ));
        }
        let pg = match args.pg_listen {
            Some(text) => Some(PgOptions {
                listen: text.parse().map_err(|_| {
                    Error::Config(format!(
                        "--pg-listen {text:?}: give an address and port, like 127.0.0.1:5433"
                    ))
                })?,
                tls: args.pg_tls_cert.zip(args.pg_tls_key),
            }),
            None if args.pg_tls_cert.is_some() => {
                return Err(Error::Config(
                    "--pg-tls-cert and --pg-tls-key need --pg-listen".into(),
                ));
            }
            None => None,
        };
        let positive = |name: &str, n: u64| {
            if n == 0 {
                Err(Error::Config(format!("{name} must be at least 1")))
            } else {
                Ok(())
            }
        };
        let max_rows = args.max_rows.unwrap_or(DEFAULT_MAX_ROWS);
        let timeout_secs = args.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        let request_timeout_secs = args
            .request_timeout_secs
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT_SECS);
        let memory_mib = args
            .memory_mib
            .unwrap_or(crate::query::DEFAULT_QUERY_MEMORY_MIB);
        let rate_per_minute = args.rate_per_minute.unwrap_or(DEFAULT_RATE_PER_MINUTE);
        positive("--max-rows", max_rows as u64)?;
        positive("--timeout-secs", timeout_secs)?;
        positive("--request-timeout-secs", request_timeout_secs)?;
        positive("--memory-mib", memory_mib)?;
        positive("--rate-per-minute", u64::from(rate_per_minute))?;
        Ok(ServeOptions {
            lake,
            s3,
            plans,
            tokens,
            listen,
            pg,
            limits: Limits {
                max_rows,
                query: QueryLimits {
                    memory_mib,
                    timeout_secs,
                },
                request_timeout: std::time::Duration::from_secs(request_timeout_secs),
                rate_per_minute,
            },
        })
    }
}

/// Serves until stopped.
pub(crate) async fn run(options: ServeOptions) -> Result<Outcome> {
    crate::serve::serve(options).await?;
    Ok(Outcome::Done)
}
