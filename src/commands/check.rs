//! `edgemeter check`: quota use per customer and health per key; alerts to
//! a webhook.

use super::{Outcome, as_of};
use crate::config::{self, LakeSettings};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::lake::delta::AsOf;
use clap::Args;
use std::path::PathBuf;

/// `check`'s settings: its flags, and the keys of the config file's
/// `[check]` table (every key optional; `lake`, `plans` and `tz` also come
/// from the file's top level).
#[derive(Debug, Default, Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub(crate) lake: LakeSettings,
    /// The plans file (TOML) with monthly_quota / daily_quota.
    #[arg(long, env = "EDGEMETER_PLANS")]
    pub(crate) plans: Option<PathBuf>,
    /// Check as of this instant (RFC 3339 or a date) instead of now.
    #[arg(long)]
    pub(crate) at: Option<String>,
    /// Months and days of this IANA time zone instead of UTC.
    #[arg(long, env = "EDGEMETER_TZ")]
    #[serde(deserialize_with = "config::time_zone")]
    pub(crate) tz: Option<String>,
    /// Where alerts go: a URL taking a JSON body with a `text` field (Slack, Discord).
    #[arg(long, env = "EDGEMETER_ALERT_WEBHOOK")]
    pub(crate) webhook: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    #[serde(skip)]
    pub(crate) json: bool,
    /// Check the lake as of a `requests` table version (42) or a time (RFC 3339 or a date).
    #[arg(long)]
    #[serde(deserialize_with = "config::as_of")]
    pub(crate) as_of: Option<String>,
}

config::command_settings!(
    CheckArgs,
    "check",
    config: lake.config,
    layered: [plans, at, tz, webhook, as_of],
    kept: [lake, json],
);

/// `check`'s settings with `--at` and `--as-of` parsed: what [`run`] takes.
#[derive(Debug)]
pub struct Check {
    args: CheckArgs,
    lake: String,
    s3: crate::aws::S3Settings,
    plans: PathBuf,
    at: chrono::DateTime<chrono::Utc>,
    as_of: AsOf,
}

impl CheckArgs {
    /// Merges the flags with the config file, then parses the values they
    /// hold (a zone `--tz` does not name fails here, before the lake is
    /// opened); `--at` absent is now.
    pub(crate) fn validate(self) -> Result<Check> {
        let (mut args, shared) = config::layered(self)?;
        let (lake, s3) = std::mem::take(&mut args.lake).resolve(&shared)?;
        args.tz = args.tz.or(shared.tz);
        let plans = args.plans.take().or(shared.plans).ok_or_else(|| {
            Error::Config("no plans: give --plans or `plans` in the config file".into())
        })?;
        args.validate_merged(lake, s3, plans)
    }

    fn validate_merged(
        self,
        lake: String,
        s3: crate::aws::S3Settings,
        plans: PathBuf,
    ) -> Result<Check> {
        let at = match &self.at {
            Some(t) => crate::time::parse_instant(t)?,
            None => chrono::Utc::now(),
        };
        let as_of = as_of(self.as_of.as_deref())?;
        if let Some(tz) = &self.tz {
            crate::time::zone(tz)?;
        }
        Ok(Check {
            args: self,
            lake,
            s3,
            plans,
            at,
            as_of,
        })
    }
}

/// Checks quotas and health, sends alerts, prints the report.
pub(crate) async fn run(check: Check, quiet: bool) -> Result<Outcome> {
    let Check {
        args,
        lake,
        s3,
        plans,
        at,
        as_of,
    } = check;
    let lake = Lake::open(&lake, &s3).await?;
    let plans = crate::billing::plans::Plans::load(&plans)?;
    let report = crate::alerts::check(
        &lake,
        &plans,
        at,
        args.tz.as_deref(),
        args.webhook.as_deref().map(|url| crate::alerts::Webhook {
            url,
            clock: &crate::time::SystemClock,
        }),
        as_of,
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !quiet {
        print!("{}", crate::render::check_report(&report));
    }
    Ok(Outcome::Done)
}
