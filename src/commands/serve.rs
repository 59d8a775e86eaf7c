//! `edgemeter serve`: usage over HTTP (OpenMeter's v1 API and edgemeter's
//! own routes), read-only over the lake.

use super::{LakeArgs, Outcome};
use crate::error::{Error, Result};
use crate::query::QueryLimits;
use crate::serve::{Limits, PgOptions, ServeOptions};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
    /// The plans file: meters, customers and their keys.
    #[arg(long, env = "EDGEMETER_PLANS")]
    pub(crate) plans: PathBuf,
    /// Address to listen on (port 0 picks a free port, printed at start).
    #[arg(long, env = "EDGEMETER_LISTEN", default_value = "127.0.0.1:8080")]
    pub(crate) listen: String,
    /// Also serve SQL over the Postgres wire protocol here (psql, Grafana);
    /// the password is an admin token.
    #[arg(long, env = "EDGEMETER_PG_LISTEN")]
    pub(crate) pg_listen: Option<String>,
    /// TLS certificate chain (PEM) for --pg-listen; needs --pg-tls-key.
    #[arg(long, env = "EDGEMETER_PG_TLS_CERT", requires = "pg_tls_key")]
    pub(crate) pg_tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for --pg-listen; needs --pg-tls-cert.
    #[arg(long, env = "EDGEMETER_PG_TLS_KEY", requires = "pg_tls_cert")]
    pub(crate) pg_tls_key: Option<PathBuf>,
    /// The tokens file: `[[tokens]]` admin tokens and the `portal_secret`.
    #[arg(long, env = "EDGEMETER_TOKENS")]
    pub(crate) tokens: Option<PathBuf>,
    /// Rows (windows × groups) one meter query may answer.
    #[arg(long, env = "EDGEMETER_MAX_ROWS", default_value_t = 10_000)]
    pub(crate) max_rows: usize,
    /// Time limit of one query, in seconds.
    #[arg(long, env = "EDGEMETER_QUERY_TIMEOUT_SECS", default_value_t = 30)]
    pub(crate) timeout_secs: u64,
    /// Time limit of one request, in seconds.
    #[arg(long, env = "EDGEMETER_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    pub(crate) request_timeout_secs: u64,
    /// Memory of one query's operators, in MiB.
    #[arg(long, env = "EDGEMETER_QUERY_MEMORY_MIB", default_value_t = crate::query::DEFAULT_QUERY_MEMORY_MIB)]
    pub(crate) memory_mib: u64,
    /// Requests a minute per token.
    #[arg(long, env = "EDGEMETER_RATE_PER_MINUTE", default_value_t = 600)]
    pub(crate) rate_per_minute: u32,
}

impl ServeArgs {
    /// Checks the values the flags hold.
    pub(crate) fn validate(self) -> Result<ServeOptions> {
        let listen = self.listen.parse().map_err(|_| {
            Error::Config(format!(
                "--listen {:?}: give an address and port, like 127.0.0.1:8080",
                self.listen
            ))
        })?;
        let tokens = self.tokens.ok_or_else(|| {
            Error::Config(
                "--tokens (or EDGEMETER_TOKENS) is required: every route but /health takes a bearer token"
                    .into(),
            )
        })?;
        let pg = match self.pg_listen {
            Some(text) => Some(PgOptions {
                listen: text.parse().map_err(|_| {
                    Error::Config(format!(
                        "--pg-listen {text:?}: give an address and port, like 127.0.0.1:5433"
                    ))
                })?,
                tls: self.pg_tls_cert.zip(self.pg_tls_key),
            }),
            None if self.pg_tls_cert.is_some() => {
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
        positive("--max-rows", self.max_rows as u64)?;
        positive("--timeout-secs", self.timeout_secs)?;
        positive("--request-timeout-secs", self.request_timeout_secs)?;
        positive("--memory-mib", self.memory_mib)?;
        positive("--rate-per-minute", u64::from(self.rate_per_minute))?;
        Ok(ServeOptions {
            lake: self.lake.lake,
            s3: self.lake.s3.settings(),
            plans: self.plans,
            tokens,
            listen,
            pg,
            limits: Limits {
                max_rows: self.max_rows,
                query: QueryLimits {
                    memory_mib: self.memory_mib,
                    timeout_secs: self.timeout_secs,
                },
                request_timeout: std::time::Duration::from_secs(self.request_timeout_secs),
                rate_per_minute: self.rate_per_minute,
            },
        })
    }
}

/// Serves until stopped.
pub(crate) async fn run(options: ServeOptions) -> Result<Outcome> {
    crate::serve::serve(options).await?;
    Ok(Outcome::Done)
}
