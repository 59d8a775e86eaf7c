//! `edgemeter usage`: per-API-key usage totals over a time range.

use super::{Outcome, as_of};
use crate::billing::meter_days::meters_of;
use crate::billing::metering::{MeterQuery, Per};
use crate::billing::plans::Plans;
use crate::config::{self, LakeSettings};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::query::LakeSession;
use crate::query::output::{OutputFormat, write};
use crate::time::TimeRange;
use clap::Args;
use std::path::PathBuf;

/// `usage`'s settings: its flags, and the keys of the config file's
/// `[usage]` table (every key optional; `lake`, `plans` and `tz` also come
/// from the file's top level).
#[derive(Debug, Default, Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub(crate) lake: LakeSettings,
    /// Start of the range (inclusive): a month (2025-11), a date (its
    /// midnight) or a time (2025-11-01T09:30) in --tz (UTC without), or RFC 3339.
    #[arg(long)]
    #[serde(deserialize_with = "config::instant")]
    pub(crate) from: Option<String>,
    /// End of the range (exclusive), read as --from is.
    #[arg(long)]
    #[serde(deserialize_with = "config::instant")]
    pub(crate) to: Option<String>,
    /// One row per key per window, with a `window_start` column.
    #[arg(long, value_enum)]
    #[serde(deserialize_with = "config::value_enum")]
    pub(crate) by: Option<crate::query::usage::WindowUnit>,
    /// IANA zone (e.g. Europe/Berlin) of --from/--to and of the windows;
    /// window_start carries its offset.
    #[arg(long, env = "EDGEMETER_TZ")]
    #[serde(deserialize_with = "config::time_zone")]
    pub(crate) tz: Option<String>,
    /// Also group by these dimensions (repeatable).
    #[arg(long = "group-by", value_enum)]
    #[serde(deserialize_with = "config::value_enums")]
    pub(crate) group_by: Vec<crate::query::usage::Dimension>,
    /// Only this api_key_id (repeatable).
    #[arg(long = "key")]
    pub(crate) keys: Vec<String>,
    /// Only this raw key, hashed first (repeatable; honours EDGEMETER_KEY_SECRET).
    #[arg(long = "key-raw")]
    #[serde(skip)]
    pub(crate) raw_keys: Vec<String>,
    /// Output format [default: table].
    #[arg(long, value_enum)]
    #[serde(deserialize_with = "config::value_enum")]
    pub(crate) format: Option<OutputFormat>,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub(crate) output: Option<PathBuf>,
    /// Read the lake as of a `requests` table version (42) or a time (RFC 3339 or a date).
    #[arg(long)]
    #[serde(deserialize_with = "config::as_of")]
    pub(crate) as_of: Option<String>,
    /// Print these meters (repeatable), one column each named by its slug:
    /// the built-in ones, or those of --plans.
    #[arg(long = "meter")]
    pub(crate) meters: Vec<String>,
    /// The plans file that defines meters and customers.
    #[arg(long, env = "EDGEMETER_PLANS")]
    pub(crate) plans: Option<PathBuf>,
    /// Rows per key, or per customer of --plans (with --meter) [default: key].
    #[arg(long, value_enum)]
    #[serde(deserialize_with = "config::value_enum")]
    pub(crate) per: Option<Per>,
}

config::command_settings!(
    UsageArgs,
    "usage",
    config: lake.config,
    layered: [from, to, by, tz, group_by, keys, format, output, as_of, meters, plans, per],
    kept: [lake, raw_keys],
);

/// `usage`'s settings with the range and `--as-of` parsed, and the plans
/// loaded when meters are asked for: what [`run`] takes.
#[derive(Debug)]
pub struct Usage {
    args: UsageArgs,
    lake: String,
    s3: crate::aws::S3Settings,
    format: OutputFormat,
    per: Per,
    range: TimeRange,
    /// `--tz`, parsed.
    zone: Option<chrono_tz::Tz>,
    as_of: crate::lake::delta::AsOf,
    plans: Option<Plans>,
}

impl UsageArgs {
    /// Merges the flags with the config file, then parses the values they hold.
    pub(crate) fn validate(self) -> Result<Usage> {
        let (mut args, shared) = config::layered(self)?;
        args.plans = args.plans.or(shared.plans.clone());
        args.tz = args.tz.or(shared.tz.clone());
        let (lake, s3) = std::mem::take(&mut args.lake).resolve(&shared)?;
        args.validate_merged(lake, s3)
    }

    fn validate_merged(self, lake: String, s3: crate::aws::S3Settings) -> Result<Usage> {
        let format = self.format.unwrap_or(super::DEFAULT_OUTPUT_FORMAT);
        let per = self.per.unwrap_or_default();
        // The zone is parsed here, once, for the range and the windows.
        let zone = self.tz.as_deref().map(crate::time::zone).transpose()?;
        let range = TimeRange::parse_in_zone(
            self.from.as_deref(),
            self.to.as_deref(),
            zone.unwrap_or(chrono_tz::UTC),
            ["--from", "--to"],
        )?;
        let as_of = as_of(self.as_of.as_deref())?;
        let plans = self.plans.as_deref().map(Plans::load).transpose()?;
        if self.meters.is_empty() && per == Per::Customer {
            return Err(Error::Config("--per customer goes with --meter".into()));
        }
        if !self.meters.is_empty() {
            if !self.group_by.is_empty() {
                return Err(Error::Config(
                    "--group-by does not go with --meter: put the dimension in the meter's filter"
                        .into(),
                ));
            }
            if per == Per::Customer && plans.is_none() {
                return Err(Error::Config(
                    "--per customer needs --plans (who owns which key)".into(),
                ));
            }
            let meters = meters_of(plans.as_ref());
            for slug in &self.meters {
                meters.require(slug, "--meter")?;
            }
        }
        Ok(Usage {
            args: self,
            lake,
            s3,
            format,
            per,
            range,
            zone,
            as_of,
            plans,
        })
    }
}

/// Prints the usage of the range.
pub(crate) async fn run(usage: Usage) -> Result<Outcome> {
    let Usage {
        args,
        lake,
        s3,
        format,
        per,
        range,
        zone,
        as_of,
        plans,
    } = usage;
    let lake = Lake::open(&lake, &s3).await?;
    let hasher = crate::key::KeyHasher::from_env();
    let mut keys = args.keys;
    keys.extend(args.raw_keys.iter().map(|raw| hasher.id_of(raw)));
    if !args.meters.is_empty() {
        crate::query::usage::check_key_ids(&keys)?;
        let meters = meters_of(plans.as_ref());
        let mut chosen = Vec::new();
        for slug in &args.meters {
            let meter = meters.require(slug, "--meter")?;
            if !chosen.contains(&meter) {
                chosen.push(meter);
            }
        }
        let query = MeterQuery {
            range,
            meters: chosen,
            per,
            by: args.by,
            tz: zone,
            keys,
        };
        let session = LakeSession::open_as_of(&lake, as_of).await?;
        let stream = query.run(&session, plans.as_ref()).await?;
        write(stream, format, args.output.as_deref()).await?;
        return Ok(Outcome::Done);
    }
    let query = crate::query::usage::UsageQuery {
        range,
        by: args.by,
        tz: zone,
        group_by: args.group_by,
        keys,
    };
    let session = LakeSession::open_as_of(&lake, as_of).await?;
    let stream = query.run(&session).await?;
    write(stream, format, args.output.as_deref()).await?;
    Ok(Outcome::Done)
}
