//! `edgemeter maintain`: checkpoints, compaction of the ingested record,
//! vacuum, and optional retention.

use super::{LakeArgs, Outcome};
use crate::error::Result;
use crate::lake::Lake;
use clap::Args;

#[derive(Debug, Args)]
pub struct MaintainArgs {
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
    /// Keep the files that table versions younger than this still need (time
    /// travel), and every file younger than this (a running ingest's batch).
    #[arg(long, env = "EDGEMETER_RETAIN_VERSIONS_HOURS", default_value_t = crate::lake::maintain::DEFAULT_RETAIN_VERSIONS_HOURS)]
    pub(crate) retain_versions_hours: u32,
    /// Also drop days of requests (and their rollups) older than N days (UTC dates).
    #[arg(long, env = "EDGEMETER_RETAIN_DAYS")]
    pub(crate) retain_days: Option<u32>,
    /// Print what was done as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Maintains the lake and reports what was done.
pub(crate) async fn run(args: MaintainArgs, quiet: bool) -> Result<Outcome> {
    let lake = Lake::open(&args.lake.lake, &args.lake.s3.settings()).await?;
    let options = crate::lake::maintain::MaintainOptions {
        retain_versions: chrono::Duration::hours(i64::from(args.retain_versions_hours)),
        retain_days: args.retain_days,
        clock: std::sync::Arc::new(crate::time::SystemClock),
    };
    let summary = crate::lake::maintain::maintain(&lake, &options).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if !quiet {
        print!("{}", crate::render::maintain_summary(&summary));
    }
    Ok(Outcome::Done)
}
