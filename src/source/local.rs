//! Log objects in a local directory, found recursively.
//!
//! Symbolic links are followed only while they stay inside the source root:
//! a link that leaves it, dangles, or loops back to a directory already
//! walked is reported as a problem of that entry, and the walk goes on.

use super::LogObject;
use crate::error::{Error, Result};
use bytes::Bytes;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

#[derive(Debug, Clone)]
pub(crate) struct LocalSource {
    root: PathBuf,
}

/// An entry of the source that could not be listed, and why.
pub(crate) type EntryProblem = (String, String);

impl LocalSource {
    pub(crate) fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        let root = root.canonicalize().map_err(|e| Error::io(root, e))?;
        Ok(Self { root })
    }

    /// Every regular file below the root, and the entries that could not be listed.
    pub(crate) async fn list(&self) -> Result<(Vec<LogObject>, Vec<EntryProblem>)> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut walk = Walk {
                root: &root,
                visited: HashSet::from([root.clone()]),
                objects: Vec::new(),
                problems: Vec::new(),
            };
            let entries = std::fs::read_dir(&root).map_err(|e| Error::io(&root, e))?;
            walk.entries(&root, entries);
            Ok((walk.objects, walk.problems))
        })
        .await?
    }

    /// The object at `uri` as a listing would give it now: `Ok(None)` when
    /// it no longer exists, `Err` when it exists but cannot be read.
    pub(crate) async fn stat(&self, uri: &str) -> std::result::Result<Option<LogObject>, String> {
        let root = self.root.clone();
        let path = PathBuf::from(uri);
        let result = tokio::task::spawn_blocking(move || match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
            Ok(_) => {
                let target = resolve(&root, &path)?;
                let meta = std::fs::metadata(&target).map_err(|e| e.to_string())?;
                if !meta.is_file() {
                    return Err("not a regular file".into());
                }
                Ok(Some(object(&path, &meta)))
            }
        })
        .await;
        result.unwrap_or_else(|e| Err(e.to_string()))
    }

    pub(crate) fn holds(&self, uri: &str) -> bool {
        Path::new(uri).starts_with(&self.root)
    }

    /// `uri`'s path below the directory, `/`-separated.
    pub(crate) fn name_of<'a>(&self, uri: &'a str) -> &'a str {
        self.root
            .to_str()
            .and_then(|root| uri.strip_prefix(root))
            .map_or(uri, |rest| {
                rest.trim_start_matches(std::path::MAIN_SEPARATOR)
            })
    }

    pub(crate) async fn fetch(&self, object: &LogObject) -> Result<Bytes> {
        let data = tokio::fs::read(&object.uri)
            .await
            .map_err(|e| Error::io(&object.uri, e))?;
        Ok(Bytes::from(data))
    }
}

/// Where `path` leads, when that is inside `root`.
fn resolve(root: &Path, path: &Path) -> std::result::Result<PathBuf, String> {
    const ELOOP: i32 = 40;
    let target = path.canonicalize().map_err(|e| match e.raw_os_error() {
        Some(ELOOP) => "symbolic link loop; not followed".to_string(),
        _ => format!("dangling symbolic link ({e})"),
    })?;
    if !target.starts_with(root) {
        return Err("symbolic link leaves the source root; not followed".into());
    }
    Ok(target)
}

fn object(path: &Path, meta: &std::fs::Metadata) -> LogObject {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    LogObject {
        uri: path.to_string_lossy().into_owned(),
        etag: format!("{}-{mtime}", meta.len()),
        size: meta.len(),
    }
}

struct Walk<'r> {
    root: &'r Path,
    /// Canonical directories already walked, so that a link loop ends.
    visited: HashSet<PathBuf>,
    objects: Vec<LogObject>,
    problems: Vec<EntryProblem>,
}

impl Walk<'_> {
    /// Collects regular files below a directory, skipping hidden entries.
    fn entries(&mut self, dir: &Path, entries: std::fs::ReadDir) {
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.problem(dir, e.to_string());
                    continue;
                }
            };
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_symlink()) {
                // A link inside the root is not followed either: what it
                // points to is listed under its own path.
                match resolve(self.root, &path) {
                    Ok(target) if dir.canonicalize().is_ok_and(|d| d.starts_with(&target)) => {
                        self.problem(&path, "symbolic link loop; not followed".into());
                    }
                    Ok(_) => {}
                    Err(reason) => self.problem(&path, reason),
                }
                continue;
            }
            let meta = match std::fs::metadata(&path) {
                Ok(meta) => meta,
                Err(e) => {
                    self.problem(&path, e.to_string());
                    continue;
                }
            };
            if meta.is_dir() {
                let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
                if !self.visited.insert(canonical) {
                    continue;
                }
                match std::fs::read_dir(&path) {
                    Ok(inner) => self.entries(&path, inner),
                    Err(e) => self.problem(&path, e.to_string()),
                }
            } else if meta.is_file() {
                self.objects.push(object(&path, &meta));
            }
        }
    }

    fn problem(&mut self, path: &Path, reason: String) {
        tracing::warn!(entry = %path.display(), %reason, "source entry not listed");
        self.problems
            .push((path.to_string_lossy().into_owned(), reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn links_that_loop_dangle_or_leave_the_root_are_reported_not_fatal() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.log"), "x").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("a")).unwrap();
        std::fs::write(root.join("a/one.log"), "1").unwrap();
        std::fs::write(root.join("two.log"), "22").unwrap();
        let link = |target: &Path, name: &str| {
            std::os::unix::fs::symlink(target, root.join(name)).unwrap()
        };
        link(&root.join("a"), "a/loop");
        link(&root.join("missing.log"), "dangling.log");
        link(outside.path(), "escape");
        link(&root.join("two.log"), "alias.log");
        link(&root.join("ring-b"), "ring-a");
        link(&root.join("ring-a"), "ring-b");
        let source = LocalSource::new(root).unwrap();
        let (objects, problems) = source.list().await.unwrap();
        let mut names: Vec<String> = objects
            .iter()
            .map(|o| o.uri.rsplit('/').next().unwrap().to_string())
            .collect();
        names.sort();
        // alias.log is two.log, listed under its own path.
        assert_eq!(names, vec!["one.log", "two.log"]);
        let mut reasons: Vec<(String, String)> = problems
            .iter()
            .map(|(p, r)| (p.rsplit('/').next().unwrap().to_string(), r.clone()))
            .collect();
        reasons.sort();
        assert_eq!(reasons.len(), 5, "{reasons:?}");
        assert_eq!(reasons[0].0, "dangling.log");
        assert!(reasons[0].1.starts_with("dangling symbolic link"));
        assert_eq!(
            reasons[1],
            (
                "escape".into(),
                "symbolic link leaves the source root; not followed".into()
            )
        );
        let looped = "symbolic link loop; not followed".to_string();
        assert_eq!(reasons[2], ("loop".into(), looped.clone()));
        assert_eq!(reasons[3], ("ring-a".into(), looped.clone()));
        assert_eq!(reasons[4], ("ring-b".into(), looped));
        let uri = |name: &str| source.root.join(name).to_string_lossy().into_owned();
        assert!(source.stat(&uri("dangling.log")).await.is_err());
        assert_eq!(source.stat(&uri("gone.log")).await, Ok(None));
        assert_eq!(source.stat(&uri("two.log")).await.unwrap().unwrap().size, 2);
    }
}
