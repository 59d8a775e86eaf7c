//! The retry record, `_edgemeter/unreadable/<id>.json`: one small JSON
//! document per source object that a run could not read (a truncated gzip,
//! S3 errors after every retry, a permission or KMS error, a dangling link).
//!
//! Every run of the same source fetches these objects again, wherever its
//! listing window falls, until one succeeds (the document is deleted) or a
//! user acknowledges the loss with `edgemeter unreadable --acknowledge`. While
//! an unacknowledged document remains, ingest exits with status 3. Two runs
//! writing the same document at once each write a whole one (the last wins);
//! a document whose object the ingested record already holds is stale and is
//! deleted by the next run, so a race can delay, never lose, a retry.

use super::Lake;
use super::layout::UNREADABLE_DIR;
use crate::error::Result;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};

/// One object that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Unreadable {
    /// The object's location (`s3://bucket/key` or a local path).
    pub(crate) object: String,
    /// The `--source` it was listed under.
    pub(crate) source: String,
    /// Why the last attempt failed.
    pub(crate) reason: String,
    pub(crate) first_attempt: DateTime<Utc>,
    pub(crate) last_attempt: DateTime<Utc>,
    pub(crate) attempts: u64,
    /// When a user accepted that it will not be read; it is not retried after.
    pub(crate) acknowledged_at: Option<DateTime<Utc>>,
    /// Not a log and not named like one: skipped (acknowledged when found)
    /// while its ETag stays `etag`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) not_a_log: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) etag: Option<String>,
}

fn path(lake: &Lake, object: &str) -> object_store::path::Path {
    let id = hex::encode(&Sha256::digest(object.as_bytes())[..16]);
    lake.path(&format!("{UNREADABLE_DIR}/{id}.json"))
}

/// Every document of the record, sorted by object.
pub(crate) async fn load(lake: &Lake) -> Result<Vec<Unreadable>> {
    let dir = lake.path(UNREADABLE_DIR);
    let listed: Vec<_> = lake.store().list(Some(&dir)).try_collect().await?;
    let mut out = Vec::with_capacity(listed.len());
    for meta in listed {
        let data = match lake.store().get(&meta.location).await {
            Ok(found) => found.bytes().await?,
            // Deleted by a run that has since read the object.
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        match serde_json::from_slice::<Unreadable>(&data) {
            Ok(record) => out.push(record),
            Err(e) => {
                tracing::warn!(record = %meta.location, error = %e, "unparsable retry record")
            }
        }
    }
    out.sort_by(|a, b| a.object.cmp(&b.object));
    Ok(out)
}

/// Records a failed attempt, keeping the first attempt and any acknowledgement.
pub(crate) async fn record_failure(
    lake: &Lake,
    previous: Option<&Unreadable>,
    source: &str,
    object: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<Unreadable> {
    let record = Unreadable {
        object: object.to_string(),
        source: source.to_string(),
        reason: reason.to_string(),
        first_attempt: previous.map_or(at, |p| p.first_attempt),
        last_attempt: at,
        attempts: previous.map_or(0, |p| p.attempts) + 1,
        // A user's acknowledgement carries over; one given because the
        // object was not a log does not, now that it fails as one.
        acknowledged_at: previous
            .filter(|p| !p.not_a_log)
            .and_then(|p| p.acknowledged_at),
        not_a_log: false,
        etag: None,
    };
    put(lake, &record).await?;
    Ok(record)
}

/// Records an object that is not a log: acknowledged at once, so that it
/// never makes a run partial, and skipped while its ETag is unchanged.
pub(crate) async fn record_not_a_log(
    lake: &Lake,
    source: &str,
    object: &str,
    etag: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    put(
        lake,
        &Unreadable {
            object: object.to_string(),
            source: source.to_string(),
            reason: reason.to_string(),
            first_attempt: at,
            last_attempt: at,
            attempts: 1,
            acknowledged_at: Some(at),
            not_a_log: true,
            etag: Some(etag.to_string()),
        },
    )
    .await
}

async fn put(lake: &Lake, record: &Unreadable) -> Result<()> {
    let body = serde_json::to_vec_pretty(record)?;
    lake.store()
        .put(&path(lake, &record.object), PutPayload::from(body))
        .await?;
    Ok(())
}

/// Forgets an object: it has been read.
pub(crate) async fn clear(lake: &Lake, object: &str) -> Result<()> {
    match lake.store().delete(&path(lake, object)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Acknowledges the objects `wanted` accepts that are not acknowledged yet;
/// returns them.
pub(crate) async fn acknowledge(
    lake: &Lake,
    wanted: impl Fn(&Unreadable) -> bool,
    at: DateTime<Utc>,
) -> Result<Vec<Unreadable>> {
    let mut done = Vec::new();
    for mut record in load(lake).await? {
        if record.acknowledged_at.is_none() && wanted(&record) {
            record.acknowledged_at = Some(at);
            put(lake, &record).await?;
            done.push(record);
        }
    }
    Ok(done)
}
