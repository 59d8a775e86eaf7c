//! The readers' view of the lake: an `ObjectStore` wrapper that lists only the
//! newest generation of each partition's files and refuses every write.
//!
//! A partition is replaced by writing `part-<generation+1>` and then deleting
//! the older generation. A crash between the two leaves both on storage; through
//! this view DataFusion still sees exactly one copy of every row, and the next
//! ingest deletes the leftover.

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

/// File name of a partition file of the given generation.
pub fn part_file_name(generation: u64) -> String {
    format!("part-{generation:010}.parquet")
}

/// The generation of a partition file name, `None` for other files.
pub fn generation_of(file_name: &str) -> Option<u64> {
    file_name
        .strip_prefix("part-")?
        .strip_suffix(".parquet")?
        .parse()
        .ok()
}

/// The directory part of a location (`""` at the root).
fn dir_of(location: &Path) -> &str {
    location.as_ref().rsplit_once('/').map_or("", |(d, _)| d)
}

/// The newest partition file of each directory among these files, by
/// directory, with its generation. Files of no generation are left out.
pub fn newest_by_dir(objects: &[ObjectMeta]) -> HashMap<&str, (u64, &Path)> {
    let mut newest: HashMap<&str, (u64, &Path)> = HashMap::new();
    for o in objects {
        if let Some(g) = o.location.filename().and_then(generation_of) {
            let e = newest
                .entry(dir_of(&o.location))
                .or_insert((g, &o.location));
            if g > e.0 {
                *e = (g, &o.location);
            }
        }
    }
    newest
}

/// Keeps, per directory, only the partition files of the newest generation;
/// other files pass, except hidden ones and temporaries (`.x`, `_x`, `x.tmp`).
pub fn newest_generation(objects: Vec<ObjectMeta>) -> Vec<ObjectMeta> {
    let newest: HashMap<String, u64> = newest_by_dir(&objects)
        .into_iter()
        .map(|(dir, (g, _))| (dir.to_string(), g))
        .collect();
    objects
        .into_iter()
        .filter(|o| {
            let name = o.location.filename().unwrap_or_default();
            match generation_of(name) {
                Some(g) => newest.get(dir_of(&o.location)) == Some(&g),
                None => !(name.starts_with('.') || name.starts_with('_') || name.ends_with(".tmp")),
            }
        })
        .collect()
}

/// A read-only view over a lake store that shows one generation per partition.
#[derive(Debug)]
pub struct LakeView {
    inner: Arc<dyn ObjectStore>,
}

impl LakeView {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner }
    }
}

impl std::fmt::Display for LakeView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LakeView({})", self.inner)
    }
}

fn read_only(operation: &str) -> object_store::Error {
    object_store::Error::NotImplemented {
        operation: operation.to_string(),
        implementer: "the read-only lake view".to_string(),
    }
}

#[async_trait]
impl ObjectStore for LakeView {
    async fn put_opts(&self, _: &Path, _: PutPayload, _: PutOptions) -> Result<PutResult> {
        Err(read_only("put"))
    }

    async fn put_multipart_opts(
        &self,
        _: &Path,
        _: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        Err(read_only("put_multipart"))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        locations.map(|_| Err(read_only("delete"))).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let listing = self.inner.list(prefix);
        futures::stream::once(async move {
            let all: Vec<ObjectMeta> = listing
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_>>()?;
            Ok::<_, object_store::Error>(newest_generation(all))
        })
        .flat_map(|result| match result {
            Ok(objects) => futures::stream::iter(objects.into_iter().map(Ok)).boxed(),
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        })
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut result = self.inner.list_with_delimiter(prefix).await?;
        result.objects = newest_generation(result.objects);
        Ok(result)
    }

    async fn copy_opts(&self, _: &Path, _: &Path, _: CopyOptions) -> Result<()> {
        Err(read_only("copy"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(path: &str) -> ObjectMeta {
        ObjectMeta {
            location: Path::from(path),
            last_modified: chrono::DateTime::UNIX_EPOCH,
            size: 1,
            e_tag: None,
            version: None,
        }
    }

    #[test]
    fn keeps_only_the_newest_generation_per_partition() {
        let listed = vec![
            meta("requests/dt=2025-01-01/hour=00/part-0000000001.parquet"),
            meta("requests/dt=2025-01-01/hour=00/part-0000000002.parquet"),
            meta("requests/dt=2025-01-01/hour=00/.part-0000000003.parquet.tmp"),
            meta("requests/dt=2025-01-01/hour=01/part-0000000001.parquet"),
            meta("_edgemeter/ingested/run-1.parquet"),
        ];
        let kept: Vec<String> = newest_generation(listed)
            .into_iter()
            .map(|m| m.location.to_string())
            .collect();
        assert_eq!(
            kept,
            vec![
                "requests/dt=2025-01-01/hour=00/part-0000000002.parquet",
                "requests/dt=2025-01-01/hour=01/part-0000000001.parquet",
                "_edgemeter/ingested/run-1.parquet",
            ]
        );
    }
}
