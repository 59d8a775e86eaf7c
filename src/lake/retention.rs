//! Retention: dropping whole days of `requests` (and their rollups in
//! `usage_hourly`, `usage_hourly_keys` and the day rollups) older than N days, as one Delta
//! commit per table.

use super::REQUESTS_TABLE;
use super::daily::{DAY_DETAIL, DAY_KEYS};
use super::day_totals::DAY_TOTALS_TABLE;
use super::delta::{self, Committed, TableDef};
use super::rollup::{KEYS_TABLE, ROLLUP_TABLE};
use super::{Lake, layout};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use deltalake::protocol::DeltaOperation;
use std::collections::{BTreeSet, HashMap};

/// What a retention pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Retention {
    /// `requests/dt=…` and `usage_hourly/dt=…` partitions dropped.
    pub(crate) dropped: Vec<String>,
    /// Dates older than the cutoff kept because they were in `keep`.
    pub(crate) kept: Vec<String>,
}

/// Removes every file of the `dt=` partitions dated before `now - days` (UTC
/// dates) from `requests` and both rollups, except the dates in `keep` (those an ingest run
/// has just written); returns what it dropped and kept. The files stay on
/// storage for readers of older versions until `maintain` vacuums them.
pub(crate) async fn drop_older_than(
    lake: &Lake,
    days: u32,
    now: DateTime<Utc>,
    keep: &BTreeSet<String>,
) -> Result<Retention> {
    let cutoff = (now - chrono::Duration::days(i64::from(days)))
        .format("%Y-%m-%d")
        .to_string();
    let mut dropped = BTreeSet::new();
    // Rollups first: a crash in between never leaves a rollup without its rows.
    for table in [
        DAY_TOTALS_TABLE,
        DAY_DETAIL.table,
        DAY_KEYS.table,
        ROLLUP_TABLE,
        KEYS_TABLE,
        REQUESTS_TABLE,
    ] {
        drop_table_older_than(lake, &table, &cutoff, keep, &mut dropped).await?;
    }
    Ok(Retention {
        dropped: dropped.into_iter().collect(),
        kept: keep
            .iter()
            .filter(|dt| dt.as_str() < cutoff.as_str())
            .cloned()
            .collect(),
    })
}

async fn drop_table_older_than(
    lake: &Lake,
    def: &TableDef,
    cutoff: &str,
    keep: &BTreeSet<String>,
    dropped: &mut BTreeSet<String>,
) -> Result<()> {
    let Some(mut table) = delta::open(lake, def, delta::AsOf::Latest).await? else {
        return Ok(());
    };
    for attempt in 0..delta::MAX_ATTEMPTS {
        let mut actions = Vec::new();
        let mut days = BTreeSet::new();
        for (partition, files) in delta::files_by_partition(&table, def)? {
            let Some(dt) = partition
                .first()
                .filter(|dt| dt.as_str() < cutoff && !keep.contains(*dt))
            else {
                continue;
            };
            days.insert(layout::day_dir(def.dir, dt));
            for file in &files {
                actions.push(delta::remove_action(def, &partition, file));
            }
        }
        if actions.is_empty() {
            return Ok(());
        }
        let operation = DeltaOperation::Delete {
            predicate: Some(match keep.is_empty() {
                true => format!("dt < '{cutoff}'"),
                false => format!(
                    "dt < '{cutoff}' AND dt NOT IN ({})",
                    keep.iter()
                        .map(|dt| format!("'{dt}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        };
        match delta::commit(&mut table, actions, operation, HashMap::new()).await? {
            Committed::At(_) => {
                dropped.extend(days);
                return Ok(());
            }
            Committed::Conflict => delta::backoff(attempt).await,
        }
    }
    Err(Error::Lake(format!(
        "{}: gave up dropping old days after {} attempts",
        def.dir,
        delta::MAX_ATTEMPTS
    )))
}
