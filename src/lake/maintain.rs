//! `edgemeter maintain`: keeping the lake's tables cheap to open and to store.
//!
//! - **checkpoints** of each table's log, so a reader replays one Parquet
//!   checkpoint and the few commits after it, however many commits there were,
//!   and removal of the commit files older than the log's retention (30 days)
//!   that a checkpoint stands for (commits leave this to `maintain`);
//! - **compaction** of the ingested-object record (one small file per batch
//!   and day) into one file per day, as one Delta commit that removes exactly
//!   the files it read (appends made meanwhile are kept: on a conflict it
//!   starts again from the newer version);
//! - **vacuum** of files no version younger than the retention needs: files
//!   replaced by merges, and files of merges abandoned after a conflict;
//! - **day rollups** ([`super::daily`]) of the days that lack one;
//! - optionally, **retention** of whole days ([`super::retention`]).
//!
//! `requests` hours are not compacted here: every merge already writes an
//! hour's open rows as files of a million rows or 128 MiB of values, leaves
//! its full and settled files as they are, and merges the rest, so an hour
//! holds at most four files besides its full ones.

use super::Lake;
use super::REQUESTS_TABLE;
use super::daily::{self, DAY_DETAIL, DAY_KEYS};
use super::day_totals::DAY_TOTALS_TABLE;
use super::delta::{self, AsOf, Committed, TableDef};
use super::ingested::{self, INGESTED_TABLE};
use super::rollup::{KEYS_TABLE, ROLLUP_TABLE};
use crate::error::{Error, Result};
use crate::time::Clock;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::protocol::SaveMode;
use std::collections::HashMap;
use std::sync::Arc;

/// What `maintain` does.
#[derive(Debug, Clone)]
pub(crate) struct MaintainOptions {
    /// Files that versions younger than this still need are kept.
    pub(crate) retain_versions: chrono::Duration,
    /// Drop days of `requests` and `usage_hourly` older than this.
    pub(crate) retain_days: Option<u32>,
    /// Where "now" comes from, for both retentions: the system clock; a fixed
    /// one in tests, so that a week of time travel can be tested in a moment.
    pub(crate) clock: Arc<dyn Clock>,
}

/// delta-rs's vacuum reads the time through a clock trait of its own: this
/// one reads the run's.
#[derive(Debug)]
struct VacuumClock(Arc<dyn Clock>);

impl deltalake::operations::vacuum::Clock for VacuumClock {
    fn current_timestamp_millis(&self) -> i64 {
        self.0.now().timestamp_millis()
    }
}

/// The default for `--retain-versions-hours`: a week of time travel.
pub(crate) const DEFAULT_RETAIN_VERSIONS_HOURS: u32 = 7 * 24;

/// What a maintenance run did, per table.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct MaintainSummary {
    /// Table → the version checkpointed.
    pub(crate) checkpoints: Vec<(String, u64)>,
    /// Record files folded into one per day.
    pub(crate) record_files_compacted: u64,
    /// Day rollup and day totals files written for days without one
    /// ([`daily::roll_up`]).
    pub(crate) day_rollups_written: u64,
    /// Files of the meters kept per day written for days without one
    /// (`meters_daily`, by the `maintain` command).
    pub(crate) meter_days_written: u64,
    /// Table → files deleted by vacuum.
    pub(crate) files_vacuumed: Vec<(String, u64)>,
    /// Table → expired commit files removed from its log.
    pub(crate) log_files_removed: Vec<(String, u64)>,
    /// Partitions dropped by `retain_days`.
    pub(crate) partitions_dropped: Vec<String>,
}

/// Runs every maintenance step on the lake.
pub(crate) async fn maintain(lake: &Lake, options: &MaintainOptions) -> Result<MaintainSummary> {
    let mut summary = MaintainSummary::default();
    if let Some(days) = options.retain_days {
        summary.partitions_dropped =
            super::retention::drop_older_than(lake, days, options.clock.now(), &Default::default())
                .await?
                .dropped;
    }
    summary.record_files_compacted = compact_record(lake).await?;
    summary.day_rollups_written = daily::roll_up(lake).await?;
    for def in [
        REQUESTS_TABLE,
        ROLLUP_TABLE,
        KEYS_TABLE,
        DAY_DETAIL.table,
        DAY_KEYS.table,
        DAY_TOTALS_TABLE,
        INGESTED_TABLE,
    ] {
        tidy(lake, options, &def, &mut summary).await?;
    }
    Ok(summary)
}

/// Checkpoints one table, vacuums it and removes its expired commit files,
/// adding what was done to `summary`.
pub(crate) async fn tidy(
    lake: &Lake,
    options: &MaintainOptions,
    def: &TableDef,
    summary: &mut MaintainSummary,
) -> Result<()> {
    let Some(table) = delta::open(lake, def, AsOf::Latest).await? else {
        return Ok(());
    };
    deltalake::checkpoints::create_checkpoint(&table, None).await?;
    summary
        .checkpoints
        .push((def.dir.to_string(), table.version().unwrap_or_default()));
    let (_, metrics) = table
        .vacuum()
        .with_mode(VacuumMode::Full)
        .with_retention_period(options.retain_versions)
        .with_enforce_retention_duration(false)
        .with_clock(Arc::new(VacuumClock(options.clock.clone())))
        .await?;
    summary
        .files_vacuumed
        .push((def.dir.to_string(), metrics.files_deleted.len() as u64));
    // Last, with the table opened again from its new checkpoint (the
    // snapshot above still reads the commits it loaded from): the commit
    // files older than the log's retention (30 days) that the checkpoint
    // stands for. Commits do not clean up themselves.
    let Some(table) = delta::open(lake, def, AsOf::Latest).await? else {
        return Ok(());
    };
    let removed = deltalake::checkpoints::cleanup_metadata(&table, None).await?;
    summary
        .log_files_removed
        .push((def.dir.to_string(), removed as u64));
    Ok(())
}

/// Folds each day of the ingested-object record that has more than one file
/// into one; returns the number of files replaced.
async fn compact_record(lake: &Lake) -> Result<u64> {
    let def: &TableDef = &INGESTED_TABLE;
    let Some(mut table) = delta::open(lake, def, AsOf::Latest).await? else {
        return Ok(0);
    };
    for attempt in 0..delta::MAX_ATTEMPTS {
        let mut actions = Vec::new();
        let mut replaced = 0;
        for (partition, files) in delta::files_by_partition(&table, def)? {
            if files.len() < 2 {
                continue;
            }
            let mut objects = Vec::new();
            for file in &files {
                let location = delta::file_location(lake, def, &file.path);
                objects.extend(ingested::read_location(lake, &location).await?);
            }
            objects.sort_by(|a, b| a.source.cmp(&b.source).then(a.run_id.cmp(&b.run_id)));
            for file in &files {
                actions.push(delta::remove_action(def, &partition, file));
            }
            let adds = ingested::write_files(lake, "compacted", &objects).await?;
            actions.extend(adds);
            replaced += files.len() as u64;
        }
        if actions.is_empty() {
            return Ok(0);
        }
        let operation = delta::write_operation(def, SaveMode::Overwrite, None);
        let metadata = HashMap::from([("edgemeter.operation".to_string(), "compact".into())]);
        match delta::commit(&mut table, actions, operation, metadata).await? {
            Committed::At(_) => return Ok(replaced),
            Committed::Conflict => delta::backoff(attempt).await,
        }
    }
    Err(Error::Lake(format!(
        "{}: gave up compacting after {} attempts",
        def.dir,
        delta::MAX_ATTEMPTS
    )))
}
