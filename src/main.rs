//! The `edgemeter` binary: parse the command line, start logging, run the
//! library, and turn the outcome into an exit status.

use clap::Parser;
use edgemeter::Error;
use edgemeter::cli::{Cli, run};
use std::io::IsTerminal;
use std::process::ExitCode;

/// mimalloc returns freed memory to the system promptly; with the system
/// allocator, ingest's peak RSS grew with the number of threads' arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("edgemeter: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("edgemeter: {e}");
            ExitCode::from(match e {
                Error::Config(_) | Error::ReadOnly(_) | Error::Query { .. } => 2,
                Error::LockHeld(_) => 4,
                _ => 1,
            })
        }
    }
}

/// Human-readable logs on a terminal, JSON lines otherwise; `EDGEMETER_LOG`
/// (an `EnvFilter` directive) sets the level, `warn` by default.
fn init_tracing(quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if quiet { "error" } else { "warn" };
    let filter =
        EnvFilter::try_from_env("EDGEMETER_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.init();
    } else {
        builder.json().init();
    }
}
