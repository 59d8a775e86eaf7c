//! `edgemeter executor`: a Ballista executor that runs edgemeter's SQL
//! functions and reads lakes on local disk or S3 with the same settings as
//! every other command, working for an `edgemeter scheduler` (README,
//! Queries on a Ballista cluster).

use super::scheduler::{DEFAULT_BIND_HOST, DEFAULT_SCHEDULER_PORT};
use super::{Outcome, S3Args};
use crate::error::{Error, Result};
use crate::query::cluster::{self, ExecutorOptions};
use clap::Args;
use std::path::PathBuf;

/// The executor's Arrow Flight port when none is given (Ballista's).
pub(crate) const DEFAULT_FLIGHT_PORT: u16 = 50051;
/// The executor's gRPC port when none is given (Ballista's).
pub(crate) const DEFAULT_GRPC_PORT: u16 = 50052;

#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// The scheduler to work for, host:port (or df://host:port).
    #[arg(long, env = "EDGEMETER_SCHEDULER", default_value_t = format!("localhost:{DEFAULT_SCHEDULER_PORT}"))]
    pub(crate) scheduler: String,
    /// The address to listen on (0.0.0.0: every interface).
    #[arg(long, env = "EDGEMETER_EXECUTOR_BIND_HOST", default_value = DEFAULT_BIND_HOST)]
    pub(crate) bind_host: String,
    /// The port of its Arrow Flight service, which serves results and shuffle data.
    #[arg(long, env = "EDGEMETER_EXECUTOR_PORT", default_value_t = DEFAULT_FLIGHT_PORT)]
    pub(crate) port: u16,
    /// The port of its gRPC service.
    #[arg(long, env = "EDGEMETER_EXECUTOR_GRPC_PORT", default_value_t = DEFAULT_GRPC_PORT)]
    pub(crate) grpc_port: u16,
    /// The host name the scheduler and clients reach this executor by
    /// (without one: the address the scheduler sees it connect from).
    #[arg(long, env = "EDGEMETER_EXECUTOR_EXTERNAL_HOST")]
    pub(crate) external_host: Option<String>,
    /// Tasks run at once; 0 runs one per core.
    #[arg(long, env = "EDGEMETER_EXECUTOR_CONCURRENT_TASKS", default_value_t = 0)]
    pub(crate) concurrent_tasks: usize,
    /// Where shuffle files and spills go (without one: a directory of its
    /// own under the system's temp directory).
    #[arg(long, env = "EDGEMETER_EXECUTOR_WORK_DIR")]
    pub(crate) work_dir: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) s3: S3Args,
}

/// `host:port` (or `df://host:port`) as its two parts.
fn scheduler_address(text: &str) -> Result<(String, u16)> {
    let bare = text
        .strip_prefix(cluster::CLUSTER_SCHEME)
        .unwrap_or(text)
        .trim_end_matches('/');
    let bad = || Error::Config(format!("--scheduler {text:?}: give host:port"));
    let (host, port) = bare.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// Runs the executor until the process is stopped or its scheduler stops it.
pub(crate) async fn run(args: ExecutorArgs) -> Result<Outcome> {
    let (scheduler_host, scheduler_port) = scheduler_address(&args.scheduler)?;
    let work_dir = args.work_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("edgemeter-executor-{}", std::process::id()))
    });
    cluster::run_executor(ExecutorOptions {
        bind_host: args.bind_host,
        port: args.port,
        grpc_port: args.grpc_port,
        external_host: args.external_host,
        scheduler_host,
        scheduler_port,
        concurrent_tasks: args.concurrent_tasks,
        work_dir,
        s3: args.s3.settings(),
    })
    .await?;
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheduler_is_host_and_port() {
        let ok = |text: &str| scheduler_address(text).unwrap();
        assert_eq!(ok("localhost:50050"), ("localhost".to_string(), 50050));
        assert_eq!(ok("df://10.1.2.3:7000/"), ("10.1.2.3".to_string(), 7000));
        for bad in ["localhost", ":50050", "host:port", "host:70000"] {
            assert!(scheduler_address(bad).is_err(), "{bad}");
        }
    }
}
