//! `edgemeter scheduler`: a Ballista scheduler that knows edgemeter's tables
//! and SQL functions, for `edgemeter query --cluster` (README, Queries on a
//! Ballista cluster). Its executors are `edgemeter executor`s.

use super::{Outcome, S3Args};
use crate::error::Result;
use crate::query::cluster::{self, SchedulerOptions};
use clap::Args;

/// The port a scheduler listens on when none is given (Ballista's).
pub(crate) const DEFAULT_SCHEDULER_PORT: u16 = 50050;
/// The address a scheduler or executor binds when none is given (Ballista's
/// library default: loopback; a cluster across machines binds 0.0.0.0).
pub(crate) const DEFAULT_BIND_HOST: &str = "127.0.0.1";
/// The host a scheduler is reached by when none is given (Ballista's).
pub(crate) const DEFAULT_EXTERNAL_HOST: &str = "localhost";

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// The address to listen on (0.0.0.0: every interface).
    #[arg(long, env = "EDGEMETER_SCHEDULER_BIND_HOST", default_value = DEFAULT_BIND_HOST)]
    pub(crate) bind_host: String,
    /// The port of its gRPC service (and of /healthz and /readyz); 0 picks a
    /// free one, printed at start.
    #[arg(long, env = "EDGEMETER_SCHEDULER_PORT", default_value_t = DEFAULT_SCHEDULER_PORT)]
    pub(crate) port: u16,
    /// The host name executors and clients reach this scheduler by.
    #[arg(
        long,
        env = "EDGEMETER_SCHEDULER_EXTERNAL_HOST",
        default_value = DEFAULT_EXTERNAL_HOST
    )]
    pub(crate) external_host: String,
    #[command(flatten)]
    pub(crate) s3: S3Args,
}

/// Runs the scheduler until the process is stopped.
pub(crate) async fn run(args: SchedulerArgs) -> Result<Outcome> {
    cluster::run_scheduler(SchedulerOptions {
        bind_host: args.bind_host,
        port: args.port,
        external_host: args.external_host,
        s3: args.s3.settings(),
    })
    .await?;
    Ok(Outcome::Done)
}
