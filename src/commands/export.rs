//! `edgemeter export`: priced invoice lines per customer for a month, or
//! billing-system events.

use super::{Outcome, as_of};
use crate::config::{self, LakeSettings};
use crate::error::{Error, Result};
use crate::render;
use clap::Args;
use std::path::PathBuf;

/// The export's format when no `--format` is given.
pub(crate) const DEFAULT_EXPORT_FORMAT: crate::export::formats::Format =
    crate::export::formats::Format::Csv;

/// `export`'s settings: its flags, and the keys of the config file's
/// `[export]` table (every key optional; `lake`, `plans` and `tz` also come
/// from the file's top level).
#[derive(Debug, Default, Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub(crate) lake: LakeSettings,
    /// The billing month, YYYY-MM.
    #[arg(long)]
    #[serde(deserialize_with = "config::month")]
    pub(crate) period: Option<String>,
    /// Bill the month of this IANA time zone instead of UTC (e.g. Europe/Berlin).
    #[arg(long, env = "EDGEMETER_TZ")]
    #[serde(deserialize_with = "config::time_zone")]
    pub(crate) tz: Option<String>,
    /// The plans file (TOML); see the README.
    #[arg(long, env = "EDGEMETER_PLANS")]
    pub(crate) plans: Option<PathBuf>,
    /// Export format [default: csv].
    #[arg(long, value_enum)]
    #[serde(deserialize_with = "config::value_enum")]
    pub(crate) format: Option<crate::export::formats::Format>,
    /// Where to write: a path or s3://bucket/key (a manifest is written beside it).
    #[arg(long)]
    pub(crate) output: Option<String>,
    /// Export the lake as of a `requests` table version (as a manifest names
    /// it) or a time (RFC 3339 or a date).
    #[arg(long)]
    #[serde(deserialize_with = "config::as_of")]
    pub(crate) as_of: Option<String>,
}

config::command_settings!(
    ExportArgs,
    "export",
    config: lake.config,
    layered: [period, tz, plans, format, output, as_of],
    kept: [lake],
);

/// `export`'s settings with `--as-of` parsed: what [`run`] takes.
#[derive(Debug)]
pub struct Export {
    options: crate::export::ExportOptions,
}

impl ExportArgs {
    /// Merges the flags with the config file, then parses the values they
    /// hold; the month, the plans and the output must be given by one or the other.
    pub(crate) fn validate(self) -> Result<Export> {
        let (args, shared) = config::layered(self)?;
        let (lake, s3) = args.lake.resolve(&shared)?;
        let tz = args.tz.or(shared.tz);
        let missing = |what: &str, flag: &str, key: &str| {
            Error::Config(format!(
                "no {what}: give --{flag} or `{key}` in the config file's [export]"
            ))
        };
        let period = args
            .period
            .ok_or_else(|| missing("period", "period", "period"))?;
        let plans = args.plans.or(shared.plans).ok_or_else(|| {
            Error::Config("no plans: give --plans or `plans` in the config file".into())
        })?;
        let output = args
            .output
            .ok_or_else(|| missing("output", "output", "output"))?;
        Ok(Export {
            options: crate::export::ExportOptions {
                lake,
                s3,
                period: crate::time::Period::month(&period, tz.as_deref())?,
                plans,
                format: args.format.unwrap_or(DEFAULT_EXPORT_FORMAT),
                output,
                as_of: as_of(args.as_of.as_deref())?,
            },
        })
    }
}

/// Writes the export and reports what was written.
pub(crate) async fn run(export: Export, quiet: bool) -> Result<Outcome> {
    let Export { options } = export;
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
