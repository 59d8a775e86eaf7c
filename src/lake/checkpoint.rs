//! Listing checkpoints, `_edgemeter/sources/<id>.json`: when each source was
//! last listed by a run that finished. A lookback run lists from
//! `checkpoint − lookback`, so a scheduler that stopped for days, or a first
//! backfill that crashed half-way, never leaves objects unlisted; a source with
//! no checkpoint is listed in full.

use super::{Lake, layout};
use crate::error::Result;
use chrono::{DateTime, Utc};
use object_store::{ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Checkpoint {
    source: String,
    listed_at: DateTime<Utc>,
}

fn path(lake: &Lake, source: &str) -> object_store::path::Path {
    let id = hex::encode(&Sha256::digest(source.as_bytes())[..8]);
    lake.path(&layout::source_checkpoint(&id))
}

/// When `source` was last listed by a finished run, if ever.
pub(crate) async fn load(lake: &Lake, source: &str) -> Result<Option<DateTime<Utc>>> {
    match lake.store().get(&path(lake, source)).await {
        Ok(found) => {
            let data = found.bytes().await?;
            Ok(serde_json::from_slice::<Checkpoint>(&data)
                .ok()
                .filter(|c| c.source == source)
                .map(|c| c.listed_at))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Records that a finished run listed `source` at `listed_at`.
pub(crate) async fn save(lake: &Lake, source: &str, listed_at: DateTime<Utc>) -> Result<()> {
    let body = serde_json::to_vec(&Checkpoint {
        source: source.to_string(),
        listed_at,
    })?;
    lake.store()
        .put(&path(lake, source), PutPayload::from(body))
        .await?;
    Ok(())
}
