//! Retention: dropping whole `requests` partitions (and their `usage_hourly`
//! rollups) older than N days.

use super::Lake;
use crate::error::Result;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use std::collections::BTreeSet;

/// Deletes every file of the `dt=` partitions dated before `now - days`
/// (UTC dates); returns the partitions dropped.
pub async fn drop_older_than(lake: &Lake, days: u32, now: DateTime<Utc>) -> Result<Vec<String>> {
    let cutoff = (now - chrono::Duration::days(i64::from(days)))
        .format("%Y-%m-%d")
        .to_string();
    let mut dropped = BTreeSet::new();
    // Rollups first: a crash in between never leaves a rollup without its rows.
    for table in [super::rollup::ROLLUP_TABLE, "requests"] {
        drop_table_older_than(lake, table, &cutoff, &mut dropped).await?;
    }
    Ok(dropped.into_iter().collect())
}

async fn drop_table_older_than(
    lake: &Lake,
    table: &str,
    cutoff: &str,
    dropped: &mut BTreeSet<String>,
) -> Result<()> {
    let listed: Vec<_> = lake
        .store()
        .list(Some(&lake.path(table)))
        .try_collect()
        .await?;
    for meta in listed {
        let location = meta.location.as_ref();
        let Some(dt) = location
            .split('/')
            .find_map(|part| part.strip_prefix("dt="))
        else {
            continue;
        };
        if dt < cutoff {
            match lake.store().delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            dropped.insert(format!("{table}/dt={dt}"));
        }
    }
    Ok(())
}
