//! Log objects in a local directory, found recursively.

use super::LogObject;
use crate::error::{Error, Result};
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

#[derive(Debug, Clone)]
pub struct LocalSource {
    root: PathBuf,
}

impl LocalSource {
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        let root = root.canonicalize().map_err(|e| Error::io(root, e))?;
        Ok(Self { root })
    }

    pub async fn list(&self) -> Result<Vec<LogObject>> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&root, &mut out)?;
            Ok(out)
        })
        .await?
    }

    pub async fn fetch(&self, object: &LogObject) -> Result<Bytes> {
        let data = tokio::fs::read(&object.uri)
            .await
            .map_err(|e| Error::io(&object.uri, e))?;
        Ok(Bytes::from(data))
    }
}

/// Collects regular files below `dir`, skipping hidden entries.
fn walk(dir: &Path, out: &mut Vec<LogObject>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        if meta.is_dir() {
            walk(&path, out)?;
        } else if meta.is_file() {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            out.push(LogObject {
                uri: path.to_string_lossy().into_owned(),
                etag: format!("{}-{mtime}", meta.len()),
                size: meta.len(),
            });
        }
    }
    Ok(())
}
