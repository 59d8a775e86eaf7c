//! `edgemeter maintain`: checkpoints, compaction of the ingested record,
//! vacuum, and optional retention.

use super::Outcome;
use crate::config::{self, LakeSettings};
use crate::error::Result;
use crate::lake::Lake;
use crate::lake::meter_days::METERS_DAILY_TABLE;
use clap::Args;

/// `maintain`'s settings: its flags, and the keys of the config file's
/// `[maintain]` table (every key optional; `lake` also comes from the file's
/// top level; the top level's `retain_days` is ingest's, not this).
#[derive(Debug, Default, Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaintainArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub(crate) lake: LakeSettings,
    /// Keep the files that table versions younger than this still need (time
    /// travel), and every file younger than this (a running ingest's batch) [default: 168].
    #[arg(long, env = "EDGEMETER_RETAIN_VERSIONS_HOURS")]
    pub(crate) retain_versions_hours: Option<u32>,
    /// Also drop days of requests (and their rollups) older than N days (UTC dates).
    #[arg(long, env = "EDGEMETER_RETAIN_DAYS")]
    pub(crate) retain_days: Option<u32>,
    /// The plans file whose meters are kept per day (`meters_daily`).
    #[arg(long, env = "EDGEMETER_PLANS")]
    pub(crate) plans: Option<std::path::PathBuf>,
    /// Print what was done as JSON.
    #[arg(long)]
    #[serde(skip)]
    pub(crate) json: bool,
}

config::command_settings!(
    MaintainArgs,
    "maintain",
    config: lake.config,
    layered: [retain_versions_hours, retain_days, plans],
    kept: [lake, json],
);

/// `maintain`'s settings merged with the config file: what [`run`] takes.
#[derive(Debug)]
pub struct Maintain {
    lake: String,
    s3: crate::aws::S3Settings,
    options: crate::lake::maintain::MaintainOptions,
    plans: Option<crate::billing::plans::Plans>,
    json: bool,
}

impl MaintainArgs {
    /// Merges the flags with the config file.
    pub(crate) fn validate(self) -> Result<Maintain> {
        let (args, shared) = config::layered(self)?;
        let plans = args.plans.or(shared.plans.clone());
        let plans = plans
            .as_deref()
            .map(crate::billing::plans::Plans::load)
            .transpose()?;
        let (lake, s3) = args.lake.resolve(&shared)?;
        let hours = args
            .retain_versions_hours
            .unwrap_or(crate::lake::maintain::DEFAULT_RETAIN_VERSIONS_HOURS);
        Ok(Maintain {
            lake,
            s3,
            options: crate::lake::maintain::MaintainOptions {
                retain_versions: chrono::Duration::hours(i64::from(hours)),
                retain_days: args.retain_days,
                clock: std::sync::Arc::new(crate::time::SystemClock),
            },
            plans,
            json: args.json,
        })
    }
}

/// Maintains the lake and reports what was done.
pub(crate) async fn run(maintain: Maintain, quiet: bool) -> Result<Outcome> {
    let Maintain {
        lake,
        s3,
        options,
        plans,
        json,
    } = maintain;
    let lake = Lake::open(&lake, &s3).await?;
    let mut summary = crate::lake::maintain::maintain(&lake, &options).await?;
    // After retention, so that no file is made for a day just dropped; then
    // the table's own checkpoint and vacuum.
    if let Some(plans) = &plans {
        summary.meter_days_written = crate::billing::meter_days::write(
            &lake,
            &plans.meters,
            crate::billing::meter_days::Streams::PerCore,
        )
        .await?;
    }
    crate::lake::maintain::tidy(&lake, &options, &METERS_DAILY_TABLE, &mut summary).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if !quiet {
        print!("{}", crate::render::maintain_summary(&summary));
    }
    Ok(Outcome::Done)
}
