//! `edgemeter reingest`: read the objects named for a range of hours again,
//! replacing their rows exactly.

use super::Outcome;
use super::ingest::{IngestSettings, run_ingests};
use crate::config;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
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

/// `reingest`'s settings with the range of hours parsed: what [`run`] takes.
#[derive(Debug)]
pub struct Reingest {
    args: ReingestArgs,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
}

impl ReingestArgs {
    /// Parses `--since` and `--until`, which must give a range.
    pub(crate) fn validate(self) -> Result<Reingest> {
        let Some(since) = self.settings.since.as_deref() else {
            return Err(Error::Config(
                "reingest needs --since (and --until): the range of hours to read again".into(),
            ));
        };
        let since = crate::time::parse_instant(since).map_err(|e| e.in_setting("--since"))?;
        let until = crate::time::parse_instant(&self.until).map_err(|e| e.in_setting("--until"))?;
        if until <= since {
            return Err(Error::Config("--until must be after --since".into()));
        }
        Ok(Reingest {
            args: self,
            since,
            until,
        })
    }
}

/// Ingests the objects named for hours in [--since, --until) again.
pub(crate) async fn run(reingest: Reingest, quiet: bool) -> Result<Outcome> {
    let Reingest { args, since, until } = reingest;
    let file = match &args.config {
        Some(path) => IngestSettings::load(path)?,
        None => IngestSettings::default(),
    };
    let progress = args.settings.progress(quiet);
    let (json, print_config) = (args.settings.json, args.settings.print_config);
    let mut run = config::resolve(args.settings, file, progress)?;
    for options in &mut run.ingests {
        if crate::source::sqs::QueueUrl::of_source(&options.source).is_some() {
            return Err(Error::Config(format!(
                "reingest reads objects by listing their hours: {} is a queue; \
                 give the s3:// prefix its notifications come from",
                options.source
            )));
        }
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
