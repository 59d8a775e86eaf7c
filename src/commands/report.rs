//! `edgemeter report`: a self-contained HTML report of a month.

use super::{LakeArgs, Outcome, as_of};
use crate::error::Result;
use crate::lake::Lake;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
    /// The month, YYYY-MM (UTC).
    #[arg(long)]
    pub(crate) period: String,
    /// The HTML file to write (or s3://bucket/key; - is stdout).
    #[arg(long)]
    pub(crate) output: String,
    /// The plans file: keys are named by their customers.
    #[arg(long, env = "EDGEMETER_PLANS")]
    pub(crate) plans: Option<PathBuf>,
    /// Report the lake as of a `requests` table version (42) or a time (RFC 3339 or a date).
    #[arg(long)]
    pub(crate) as_of: Option<String>,
}

/// `report`'s settings with `--period` and `--as-of` parsed: what [`run`] takes.
#[derive(Debug)]
pub struct Report {
    args: ReportArgs,
    period: crate::time::Period,
    as_of: crate::lake::delta::AsOf,
}

impl ReportArgs {
    /// Parses the values the flags hold.
    pub(crate) fn validate(self) -> Result<Report> {
        let period = crate::time::Period::month(&self.period, None)?;
        let as_of = as_of(self.as_of.as_deref())?;
        Ok(Report {
            args: self,
            period,
            as_of,
        })
    }
}

/// Writes the report of the month.
pub(crate) async fn run(report: Report, quiet: bool) -> Result<Outcome> {
    let Report {
        args,
        period,
        as_of,
    } = report;
    let settings = args.lake.s3.settings();
    let lake = Lake::open(&args.lake.lake, &settings).await?;
    let plans = match &args.plans {
        Some(path) => Some(crate::billing::plans::Plans::load(path)?),
        None => None,
    };
    let html = crate::report::report(&lake, &period, as_of, plans.as_ref()).await?;
    crate::lake::write_output(&args.output, html.into(), &settings).await?;
    if !quiet && args.output != "-" {
        print!("{}", crate::render::wrote(&args.output));
    }
    Ok(Outcome::Done)
}
