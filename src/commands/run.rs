//! `edgemeter run`: the scheduled entry point, ingesting every source of the
//! config file (flags and the environment override it).

use super::Outcome;
use super::ingest::{IngestSettings, run_ingests};
use crate::config;
use crate::error::Result;
use clap::Args;
use std::path::PathBuf;

/// The config file's text, for schedulers that hand over secrets as variables
/// (ECS from SSM Parameter Store); `--config` takes precedence.
pub(crate) const CONFIG_TEXT_ENV: &str = "EDGEMETER_CONFIG_TOML";

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The config file (TOML); see the README for its keys. Without it, the
    /// text of EDGEMETER_CONFIG_TOML is used when set.
    #[arg(long, env = "EDGEMETER_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) settings: IngestSettings,
}

/// Ingests every source of the config file, flags and the environment over it.
pub(crate) async fn run(args: RunArgs, quiet: bool) -> Result<Outcome> {
    let file = match (&args.config, std::env::var(CONFIG_TEXT_ENV)) {
        (Some(path), _) => IngestSettings::load(path)?,
        (None, Ok(text)) => IngestSettings::parse(&text, CONFIG_TEXT_ENV)?,
        (None, Err(_)) => IngestSettings::default(),
    };
    let progress = args.settings.progress(quiet);
    let (json, print_config) = (args.settings.json, args.settings.print_config);
    let run = config::resolve(args.settings, file, progress)?;
    if print_config {
        println!("{}", serde_json::to_string_pretty(&run.describe())?);
        return Ok(Outcome::Done);
    }
    run_ingests(run, json, quiet).await
}
