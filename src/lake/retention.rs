//! Retention: dropping whole days of `requests` (and their `usage_hourly`
//! rollups) older than N days, as one Delta commit per table.

use super::Lake;
use super::delta::{self, Committed, TableDef};
use super::rollup::ROLLUP_TABLE;
use super::schema::REQUESTS_TABLE;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use deltalake::protocol::DeltaOperation;
use std::collections::{BTreeSet, HashMap};

/// Removes every file of the `dt=` partitions dated before `now - days` (UTC
/// dates) from both tables; returns the partitions dropped. The files stay on
/// storage for readers of older versions until `maintain` vacuums them.
pub async fn drop_older_than(lake: &Lake, days: u32, now: DateTime<Utc>) -> Result<Vec<String>> {
    let cutoff = (now - chrono::Duration::days(i64::from(days)))
        .format("%Y-%m-%d")
        .to_string();
    let mut dropped = BTreeSet::new();
    // Rollups first: a crash in between never leaves a rollup without its rows.
    for table in [ROLLUP_TABLE, REQUESTS_TABLE] {
        drop_table_older_than(lake, &table, &cutoff, &mut dropped).await?;
    }
    Ok(dropped.into_iter().collect())
}

async fn drop_table_older_than(
    lake: &Lake,
    def: &TableDef,
    cutoff: &str,
    dropped: &mut BTreeSet<String>,
) -> Result<()> {
    let Some(mut table) = delta::open(lake, def, delta::AsOf::Latest).await? else {
        return Ok(());
    };
    for attempt in 0..delta::MAX_ATTEMPTS {
        let mut actions = Vec::new();
        let mut days = BTreeSet::new();
        for (partition, files) in delta::files_by_partition(&table, def)? {
            let Some(dt) = partition.first().filter(|dt| dt.as_str() < cutoff) else {
                continue;
            };
            days.insert(format!("{}/dt={dt}", def.dir));
            for file in &files {
                actions.push(delta::remove_action(def, &partition, file));
            }
        }
        if actions.is_empty() {
            return Ok(());
        }
        let operation = DeltaOperation::Delete {
            predicate: Some(format!("dt < '{cutoff}'")),
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
