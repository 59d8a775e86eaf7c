//! `edgemeter report`: a self-contained HTML report of a month.

use super::{Outcome, as_of};
use crate::config::{self, LakeSettings};
use crate::error::{Error, Result};
use crate::lake::Lake;
use clap::Args;
use std::path::PathBuf;

/// `report`'s settings: its flags, and the keys of the config file's
/// `[report]` table (every key optional; `lake` and `plans` also come from
/// the file's top level).
#[derive(Debug, Default, Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub(crate) lake: LakeSettings,
    /// The month, YYYY-MM (UTC).
    #[arg(long)]
    #[serde(deserialize_with = "config::month")]
    pub(crate) period: Option<String>,
    /// The HTML file to write (or s3://bucket/key; - is stdout).
    #[arg(long)]
    pub(crate) output: Option<String>,
    /// The plans file: keys are named by their customers.
    #[arg(long, env = "EDGEMETER_PLANS")]
    pub(crate) plans: Option<PathBuf>,
    /// Report the lake as of a `requests` table version (42) or a time (RFC 3339 or a date).
    #[arg(long)]
    #[serde(deserialize_with = "config::as_of")]
    pub(crate) as_of: Option<String>,
}

config::command_settings!(
    ReportArgs,
    "report",
    config: lake.config,
    layered: [period, output, plans, as_of],
    kept: [lake],
);

/// `report`'s settings with `--period` and `--as-of` parsed: what [`run`] takes.
#[derive(Debug)]
pub struct Report {
    lake: String,
    s3: crate::aws::S3Settings,
    output: String,
    plans: Option<PathBuf>,
    period: crate::time::Period,
    as_of: crate::lake::delta::AsOf,
}

impl ReportArgs {
    /// Merges the flags with the config file, then parses the values they
    /// hold; the month and the output must be given by one or the other.
    pub(crate) fn validate(self) -> Result<Report> {
        let (args, shared) = config::layered(self)?;
        let (lake, s3) = args.lake.resolve(&shared)?;
        let missing = |key: &str| {
            Error::Config(format!(
                "no {key}: give --{key} or `{key}` in the config file's [report]"
            ))
        };
        let period = args.period.ok_or_else(|| missing("period"))?;
        Ok(Report {
            lake,
            s3,
            output: args.output.ok_or_else(|| missing("output"))?,
            plans: args.plans.or(shared.plans),
            period: crate::time::Period::month(&period, None)?,
            as_of: as_of(args.as_of.as_deref())?,
        })
    }
}

/// Writes the report of the month.
pub(crate) async fn run(report: Report, quiet: bool) -> Result<Outcome> {
    let Report {
        lake,
        s3: settings,
        output,
        plans,
        period,
        as_of,
    } = report;
    let lake = Lake::open(&lake, &settings).await?;
    let plans = match &plans {
        Some(path) => Some(crate::billing::plans::Plans::load(path)?),
        None => None,
    };
    let html = crate::report::report(&lake, &period, as_of, plans.as_ref()).await?;
    crate::lake::write_output(&output, html.into(), &settings).await?;
    if !quiet && output != "-" {
        print!("{}", crate::render::wrote(&output));
    }
    Ok(Outcome::Done)
}
