//! The command line: the clap parser, whose subcommands are the settings
//! structs of [`crate::commands`] (every flag also readable from an
//! `EDGEMETER_*` environment variable); the dispatch to each command's `run`,
//! with the values its flags hold parsed first (`validate`), in one step;
//! and the one place where an outcome or an error becomes the exit status.

use crate::commands::check::CheckArgs;
use crate::commands::export::ExportArgs;
use crate::commands::ingest::IngestSettings;
use crate::commands::init::InitArgs;
use crate::commands::maintain::MaintainArgs;
use crate::commands::query::QueryArgs;
use crate::commands::reingest::ReingestArgs;
use crate::commands::report::ReportArgs;
use crate::commands::run::RunArgs;
use crate::commands::runs::RunsArgs;
use crate::commands::unreadable::UnreadableArgs;
use crate::commands::usage::UsageArgs;
use crate::commands::{self, LakeArgs, Outcome};
use crate::error::{Error, Result};
use clap::{Parser, Subcommand};

/// Exit status: success.
pub const EXIT_SUCCESS: u8 = 0;
/// Exit status: the program failed (storage unreachable, lake unreadable, …).
pub const EXIT_FAILURE: u8 = 1;
/// Exit status: bad usage, bad configuration, or a refused query.
pub const EXIT_USAGE: u8 = 2;
/// Exit status: the run finished, but some objects could not be read.
pub const EXIT_PARTIAL: u8 = 3;
/// Exit status: interrupted (Ctrl-C).
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, Parser)]
#[command(
    name = "edgemeter",
    version,
    about = "Exact per-API-key usage from CloudFront access logs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print nothing but errors (EDGEMETER_QUIET takes 1/0, true/false, yes/no, on/off).
    #[arg(
        long,
        short,
        global = true,
        env = "EDGEMETER_QUIET",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read CloudFront logs and merge them into the lake (skips objects already ingested).
    Ingest(IngestSettings),
    /// Start a lake whose key ids are keyed by a new secret (stored where you choose, never in the lake).
    Init(InitArgs),
    /// The scheduled entry point: ingest every source of the config file.
    Run(RunArgs),
    /// Read the objects named for a range of hours again, with the settings
    /// given now (a wrong key setting fixed), replacing their rows exactly.
    Reingest(ReingestArgs),
    /// List the lake's run records.
    Runs(RunsArgs),
    /// List the source objects no run could read (retried by every run), or acknowledge them.
    Unreadable(UnreadableArgs),
    /// Priced invoice lines per customer for a month, or billing-system events.
    Export(ExportArgs),
    /// Quota use per customer and health per key; alerts to a webhook.
    Check(CheckArgs),
    /// A self-contained HTML report of a month, with charts and tables.
    Report(ReportArgs),
    /// Per-API-key usage totals over a time range, or the values of meters.
    Usage(UsageArgs),
    /// List the meters of a plans file (filters, aggregations, the plans that charge them).
    Meters(commands::meters::MetersArgs),
    /// Run read-only SQL over the lake's tables.
    Query(QueryArgs),
    /// List the named queries of the library.
    Queries,
    /// Print the lake's tables and columns.
    Schema(LakeArgs),
    /// Convert a lake written before Delta tables, in place (resumable).
    Migrate(LakeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `edgemeter man > /usr/local/share/man/man1/edgemeter.1`.
    Man,
    /// Checkpoint the tables' logs, compact the ingested record, vacuum old files.
    Maintain(MaintainArgs),
    /// Serve usage over HTTP: OpenMeter's v1 API, invoices, quotas, health and metrics.
    Serve(commands::serve::ServeArgs),
    /// Run a Ballista scheduler for `query --cluster` (with `executor`s).
    Scheduler(commands::scheduler::SchedulerArgs),
    /// Run a Ballista executor working for a `scheduler`.
    Executor(commands::executor::ExecutorArgs),
}

/// Runs a parsed command line: the command's outcome, or its error.
pub async fn run(cli: Cli) -> Result<Outcome> {
    crate::key::load_managed_secret().await?;
    let quiet = cli.quiet;
    match cli.command {
        Command::Ingest(settings) => commands::ingest::run(settings, quiet).await,
        Command::Run(args) => commands::run::run(args, quiet).await,
        Command::Reingest(args) => commands::reingest::run(args.validate()?, quiet).await,
        Command::Export(args) => commands::export::run(args.validate()?, quiet).await,
        Command::Check(args) => commands::check::run(args.validate()?, quiet).await,
        Command::Report(args) => commands::report::run(args.validate()?, quiet).await,
        Command::Runs(args) => commands::runs::run(args).await,
        Command::Init(args) => commands::init::run(args).await,
        Command::Unreadable(args) => commands::unreadable::run(args, quiet).await,
        Command::Usage(args) => commands::usage::run(args.validate()?).await,
        Command::Meters(args) => commands::meters::run(args),
        Command::Query(args) => commands::query::run(args.validate()?).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            commands::docs::completions(shell, Cli::command())
        }
        Command::Man => {
            use clap::CommandFactory;
            commands::docs::man(Cli::command()).await
        }
        Command::Queries => commands::query::list(),
        Command::Schema(args) => commands::schema::run(args).await,
        Command::Maintain(args) => commands::maintain::run(args.validate()?, quiet).await,
        Command::Migrate(args) => commands::migrate::run(args, quiet).await,
        Command::Serve(args) => commands::serve::run(args.validate()?).await,
        Command::Scheduler(args) => commands::scheduler::run(args).await,
        Command::Executor(args) => commands::executor::run(args).await,
    }
}

/// The exit status of a command that ran to its end, with or without an
/// error; the only place that decides one (an interrupted command exits
/// [`EXIT_INTERRUPTED`]).
pub fn exit_code(outcome: &Result<Outcome>) -> u8 {
    match outcome {
        Ok(Outcome::Done) => EXIT_SUCCESS,
        Ok(Outcome::Partial) => EXIT_PARTIAL,
        // The reader of the output has gone (`edgemeter … | head`): not a failure.
        Err(Error::OutputClosed) => EXIT_SUCCESS,
        Err(Error::Config(_) | Error::ReadOnly(_) | Error::Query { .. }) => EXIT_USAGE,
        Err(_) => EXIT_FAILURE,
    }
}

/// Reports an error on stderr (but not a closed output) and returns the
/// exit status.
pub fn finish(outcome: Result<Outcome>) -> u8 {
    if let Err(e) = &outcome
        && !matches!(e, Error::OutputClosed)
    {
        eprintln!("edgemeter: {e}");
    }
    exit_code(&outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_and_error_has_its_exit_status() {
        assert_eq!(exit_code(&Ok(Outcome::Done)), 0);
        assert_eq!(exit_code(&Ok(Outcome::Partial)), 3);
        assert_eq!(exit_code(&Err(Error::OutputClosed)), 0);
        assert_eq!(exit_code(&Err(Error::Config("x".into()))), 2);
        assert_eq!(exit_code(&Err(Error::ReadOnly("x".into()))), 2);
        let query = Error::Query {
            name: "q".into(),
            reason: "r".into(),
        };
        assert_eq!(exit_code(&Err(query)), 2);
        assert_eq!(
            exit_code(&Err(Error::io("f", std::io::ErrorKind::Other.into()))),
            1
        );
    }
}
