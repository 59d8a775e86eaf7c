//! The lake's writer lock, `_edgemeter/lock`: created with a conditional
//! create (`O_EXCL` on local disk, `If-None-Match: *` on S3), refreshed as a run
//! commits, released at the end. A lock older than the stale timeout was left
//! by a run that died and is taken over; so is a lock whose holder ran on this
//! same host under a process id that no longer exists (a run killed with
//! `kill -9` does not make the next scheduled run wait for the timeout).

use super::Lake;
use crate::error::{Error, Result};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::time::Duration;

/// Where the lock lives, relative to the lake root.
pub const LOCK_PATH: &str = "_edgemeter/lock";

/// Default age after which a lock is considered abandoned.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(2 * 3600);

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Holder {
    run_id: String,
    host: String,
    pid: u32,
    /// Milliseconds since the epoch of acquisition or last refresh.
    refreshed_at_ms: i64,
}

/// A held lock; call [`LakeLock::release`] when done.
#[derive(Debug)]
pub struct LakeLock {
    lake: Lake,
    path: Path,
    run_id: String,
}

impl LakeLock {
    /// Takes the lock for `run_id`, or fails with [`Error::LockHeld`].
    pub async fn acquire(lake: &Lake, run_id: &str, stale_after: Duration) -> Result<Self> {
        let path = lake.path(LOCK_PATH);
        for _ in 0..2 {
            let body = holder_bytes(run_id)?;
            let create = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            match lake.store().put_opts(&path, body, create).await {
                Ok(_) => {
                    return Ok(Self {
                        lake: lake.clone(),
                        path,
                        run_id: run_id.to_string(),
                    });
                }
                Err(object_store::Error::AlreadyExists { .. }) => {
                    let holder = read_holder(lake, &path).await?;
                    let age_ms = chrono::Utc::now().timestamp_millis()
                        - holder.as_ref().map_or(0, |h| h.refreshed_at_ms);
                    let dead = holder.as_ref().is_some_and(Holder::is_dead_here);
                    if dead || age_ms > stale_after.as_millis() as i64 {
                        tracing::warn!(
                            holder = ?holder,
                            age_s = age_ms / 1000,
                            "taking over a stale lake lock"
                        );
                        match lake.store().delete(&path).await {
                            Ok(()) | Err(object_store::Error::NotFound { .. }) => continue,
                            Err(e) => return Err(e.into()),
                        }
                    }
                    return Err(Error::LockHeld(match holder {
                        Some(h) => format!(
                            "run {} (host {}, pid {}) holds {}, last refreshed {} s ago",
                            h.run_id,
                            h.host,
                            h.pid,
                            lake.table_url(LOCK_PATH).trim_end_matches('/'),
                            age_ms / 1000
                        ),
                        None => {
                            format!("{} exists", lake.table_url(LOCK_PATH).trim_end_matches('/'))
                        }
                    }));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::LockHeld("another run took the lock first".into()))
    }

    /// Marks the lock as alive (long runs call this as they commit).
    pub async fn refresh(&self) -> Result<()> {
        let body = holder_bytes(&self.run_id)?;
        self.lake.store().put(&self.path, body).await?;
        Ok(())
    }

    /// Releases the lock if it is still ours.
    pub async fn release(self) -> Result<()> {
        match read_holder(&self.lake, &self.path).await? {
            Some(h) if h.run_id == self.run_id => {
                match self.lake.store().delete(&self.path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            _ => Ok(()),
        }
    }
}

impl Holder {
    /// True when the holder ran on this host and its process is gone.
    fn is_dead_here(&self) -> bool {
        let proc = std::path::Path::new("/proc");
        self.host == hostname()
            && proc.join("self").exists()
            && !proc.join(self.pid.to_string()).exists()
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

fn holder_bytes(run_id: &str) -> Result<PutPayload> {
    let holder = Holder {
        run_id: run_id.to_string(),
        host: hostname(),
        pid: std::process::id(),
        refreshed_at_ms: chrono::Utc::now().timestamp_millis(),
    };
    Ok(PutPayload::from(serde_json::to_vec(&holder)?))
}

async fn read_holder(lake: &Lake, path: &Path) -> Result<Option<Holder>> {
    match lake.store().get(path).await {
        Ok(found) => Ok(serde_json::from_slice(&found.bytes().await?).ok()),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
