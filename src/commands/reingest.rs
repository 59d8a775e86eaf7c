//! `edgemeter reingest`: read the objects named for a range of hours again,
//! replacing their rows exactly.

use super::Outcome;
use super::ingest::{IngestSettings, run_ingests};
use crate::config;
use crate::error::{Error, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ReingestArgs {
    /// The config file (TOML), as for `run`; flags override it.
    #[arg(long, env = "EDGEMETER_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// End of the range (exclusive): objects named for hours before it
    /// (--since gives the start).
    #[arg(long)]
    pub(crate) until: String,
    #[command(flatten)]
    pub(crate) settings: IngestSettings,
}

/// Ingests the objects named for hours in [--since, --until) again.
pub(crate) async fn run(args: ReingestArgs, quiet: bool) -> Result<Outcome> {
    let Some(since) = args.settings.since.clone() else {
        return Err(Error::Config(
            "reingest needs --since (and --until): the range of hours to read again".into(),
        ));
    };
    let since = crate::time::parse_instant(&since).map_err(|e| e.in_setting("--since"))?;
    let until = crate::time::parse_instant(&args.until).map_err(|e| e.in_setting("--until"))?;
    if until <= since {
        return Err(Error::Config("--until must be after --since".into()));
    }
    let file = match &args.config {
        Some(path) => IngestSettings::load(path)?,
        None => IngestSettings::default(),
    };
    let progress = args.settings.progress(quiet);
    let (json, print_config) = (args.settings.json, args.settings.print_config);
    let mut run = config::resolve(args.settings, file, progress)?;
    for options in &mut run.ingests {
        options.window = crate::ingest::Window::Since(since);
        options.reingest_until = Some(until);
        options.retain_days = None;
    }
    if print_config {
        println!("{}", serde_json::to_string_pretty(&run.describe())?);
        return Ok(Outcome::Done);
    }
    run_ingests(run, json, quiet).await
}
