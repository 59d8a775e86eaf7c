//! Listing checkpoints, `_edgemeter/sources/<id>.json`: when each source was
//! last listed by a run that finished. A lookback run lists from
//! `checkpoint − lookback`, so a scheduler that stopped for days, or a first
//! backfill that crashed half-way, never leaves objects unlisted; a source with
//! no checkpoint is listed in full.
//!
//! A sharded worker (`--shard I/N`) keeps a checkpoint of its own: it lists
//! only its objects, so its finished runs say nothing of the other shards'.
//! A shard without one yet (the first run after `N` changed) starts from the
//! latest point every object of the source is known listed to: the unsharded
//! checkpoint, or the earliest checkpoint of a sharding whose `N` shards all
//! have one (every object belongs to one of them). Only when neither exists is
//! the source listed in full.

use super::{Lake, layout};
use crate::error::Result;
use crate::source::shard::Shard;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Checkpoint {
    source: String,
    listed_at: DateTime<Utc>,
    /// `[I, N]` for a sharded worker's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shard: Option<[u32; 2]>,
}

fn path(lake: &Lake, source: &str, shard: Option<Shard>) -> object_store::path::Path {
    let name = match shard {
        None => source.to_string(),
        Some(shard) => format!("{source}#shard={shard}"),
    };
    let id = hex::encode(&Sha256::digest(name.as_bytes())[..8]);
    lake.path(&layout::source_checkpoint(&id))
}

fn shard_pair(shard: Option<Shard>) -> Option<[u32; 2]> {
    shard.map(|s| [s.index(), s.count()])
}

async fn read(lake: &Lake, at: &object_store::path::Path) -> Result<Option<Checkpoint>> {
    match lake.store().get(at).await {
        Ok(found) => {
            let data = found.bytes().await?;
            Ok(serde_json::from_slice::<Checkpoint>(&data).ok())
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// When `source` (or its `shard`) was last listed by a finished run, if ever;
/// for a shard without a checkpoint, the latest point the whole source is
/// known listed to (see the module's documentation).
pub(crate) async fn load(
    lake: &Lake,
    source: &str,
    shard: Option<Shard>,
) -> Result<Option<DateTime<Utc>>> {
    let own = read(lake, &path(lake, source, shard))
        .await?
        .filter(|c| c.source == source && c.shard == shard_pair(shard))
        .map(|c| c.listed_at);
    if own.is_some() || shard.is_none() {
        return Ok(own);
    }
    let prefix = lake.path(&layout::source_checkpoints());
    let metas: Vec<object_store::ObjectMeta> =
        lake.store().list(Some(&prefix)).try_collect().await?;
    let mut whole: Option<DateTime<Utc>> = None;
    // N → (shard index → listed_at) of the source's sharded checkpoints.
    let mut shardings: BTreeMap<u32, BTreeMap<u32, DateTime<Utc>>> = BTreeMap::new();
    for meta in metas {
        let Some(found) = read(lake, &meta.location).await? else {
            continue;
        };
        if found.source != source {
            continue;
        }
        match found.shard {
            None => whole = Some(found.listed_at),
            Some([index, count]) => {
                shardings
                    .entry(count)
                    .or_default()
                    .insert(index, found.listed_at);
            }
        }
    }
    let complete = shardings
        .into_iter()
        .filter(|(count, shards)| shards.len() == *count as usize)
        .filter_map(|(_, shards)| shards.into_values().min());
    Ok(whole.into_iter().chain(complete).max())
}

/// Records that a finished run listed `source` (or its `shard`) at `listed_at`.
pub(crate) async fn save(
    lake: &Lake,
    source: &str,
    shard: Option<Shard>,
    listed_at: DateTime<Utc>,
) -> Result<()> {
    let body = serde_json::to_vec(&Checkpoint {
        source: source.to_string(),
        listed_at,
        shard: shard_pair(shard),
    })?;
    lake.store()
        .put(&path(lake, source, shard), PutPayload::from(body))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 11, 3, hour, 0, 0).unwrap()
    }

    fn shard(text: &str) -> Option<Shard> {
        Some(Shard::parse(text).unwrap())
    }

    #[tokio::test]
    async fn a_new_shard_starts_where_the_whole_source_was_listed() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open_or_create(dir.path().to_str().unwrap(), &Default::default())
            .await
            .unwrap();
        let src = "s3://logs/cf/";
        // Nothing yet: a full listing.
        assert_eq!(load(&lake, src, shard("0/2")).await.unwrap(), None);
        save(&lake, src, None, at(5)).await.unwrap();
        assert_eq!(load(&lake, src, None).await.unwrap(), Some(at(5)));
        // A shard's first run: from the unsharded checkpoint.
        assert_eq!(load(&lake, src, shard("0/2")).await.unwrap(), Some(at(5)));
        save(&lake, src, shard("0/2"), at(9)).await.unwrap();
        save(&lake, src, shard("1/2"), at(8)).await.unwrap();
        assert_eq!(load(&lake, src, shard("0/2")).await.unwrap(), Some(at(9)));
        // Resharding to 3: the earliest of the complete 2-sharding (8), later than 5.
        assert_eq!(load(&lake, src, shard("2/3")).await.unwrap(), Some(at(8)));
        // An incomplete sharding (1 of 3 finished) says nothing for the others.
        save(&lake, src, shard("2/3"), at(12)).await.unwrap();
        assert_eq!(load(&lake, src, shard("0/3")).await.unwrap(), Some(at(8)));
        // Another source's checkpoints are never borrowed.
        assert_eq!(
            load(&lake, "s3://other/", shard("0/2")).await.unwrap(),
            None
        );
        // The unsharded checkpoint is the unsharded run's alone.
        assert_eq!(load(&lake, src, None).await.unwrap(), Some(at(5)));
    }
}
