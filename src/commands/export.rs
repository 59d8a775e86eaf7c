//! `edgemeter export`: priced invoice lines per customer for a month, or
//! billing-system events.

use super::{LakeArgs, Outcome, as_of};
use crate::error::Result;
use crate::render;
use clap::Args;
use std::path::PathBuf;

/// The export's format when no `--format` is given.
pub(crate) const DEFAULT_EXPORT_FORMAT: crate::export::formats::Format =
    crate::export::formats::Format::Csv;

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
    /// The billing month, YYYY-MM.
    #[arg(long)]
    pub(crate) period: String,
    /// Bill the month of this IANA time zone instead of UTC (e.g. Europe/Berlin).
    #[arg(long, env = "EDGEMETER_TZ")]
    pub(crate) tz: Option<String>,
    /// The plans file (TOML); see the README.
    #[arg(long, env = "EDGEMETER_PLANS")]
    pub(crate) plans: PathBuf,
    #[arg(long, value_enum, default_value_t = DEFAULT_EXPORT_FORMAT)]
    pub(crate) format: crate::export::formats::Format,
    /// Where to write: a path or s3://bucket/key (a manifest is written beside it).
    #[arg(long)]
    pub(crate) output: String,
    /// Export the lake as of a `requests` table version (as a manifest names
    /// it) or a time (RFC 3339 or a date).
    #[arg(long)]
    pub(crate) as_of: Option<String>,
}

/// `export`'s settings with `--as-of` parsed: what [`run`] takes.
#[derive(Debug)]
pub struct Export {
    args: ExportArgs,
    as_of: crate::lake::delta::AsOf,
    period: crate::time::Period,
}

impl ExportArgs {
    /// Parses the values the flags hold.
    pub(crate) fn validate(self) -> Result<Export> {
        let as_of = as_of(self.as_of.as_deref())?;
        let period = crate::time::Period::month(&self.period, self.tz.as_deref())?;
        Ok(Export {
            args: self,
            as_of,
            period,
        })
    }
}

/// Writes the export and reports what was written.
pub(crate) async fn run(export: Export, quiet: bool) -> Result<Outcome> {
    let Export {
        args,
        as_of,
        period,
    } = export;
    let options = crate::export::ExportOptions {
        lake: args.lake.lake,
        s3: args.lake.s3.settings(),
        period,
        plans: args.plans,
        format: args.format,
        output: args.output,
        as_of,
    };
    let to_stdout = options.output == "-";
    let report = crate::export::export(&options).await?;
    if !quiet {
        // Written to stdout, the export is the output: reports go to stderr.
        let report_line = |text: String| match to_stdout {
            true => eprint!("{text}"),
            false => print!("{text}"),
        };
        report_line(render::export_files(&report, to_stdout));
        eprint!("{}", render::export_warnings(&report));
        report_line(render::export_restatements(&report));
    }
    Ok(Outcome::Done)
}
