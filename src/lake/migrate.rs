//! `edgemeter migrate`: converting a lake written before Delta tables, in
//! place.
//!
//! Such a lake kept each hour as generations of files (`part-<generation>`),
//! the newest one current, and the record of ingested objects as plain Parquet
//! files. The conversion commits, as version 0 of each Delta table, exactly
//! the files the old reader saw: the newest generation of every hour of
//! `requests`, and every record file rewritten into `day=` partitions. Each
//! table is created by one commit, so a conversion stopped at any point is
//! resumed by running it again: a table that exists is left as it is. Older
//! generations, old rollups and the old lock are deleted only after the
//! `requests` commit; the rollups are then rebuilt from the converted rows.

use super::REQUESTS_TABLE;
use super::delta::{self, TableDef};
use super::ingested::{self, INGESTED_TABLE, IngestedObject};
use super::rollup::{self, ROLLUP_TABLE};
use super::{Lake, layout};
use crate::error::{Error, Result};
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::protocol::SaveMode;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};
use std::collections::{BTreeMap, HashMap};

/// What a conversion did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct MigrateSummary {
    /// Hour files committed to `requests` (0 when it was a Delta table already).
    pub(crate) requests_files: u64,
    /// Rows in them.
    pub(crate) requests_rows: u64,
    /// Ingested-object records carried over.
    pub(crate) ingested_objects: u64,
    /// Old files deleted (older generations, old rollups, temporaries).
    pub(crate) files_deleted: u64,
    /// Hours whose rollup was rebuilt.
    pub(crate) rollups_built: u64,
}

/// The generation of an old partition file name, `None` for other files.
fn generation_of(file_name: &str) -> Option<u64> {
    file_name
        .strip_prefix("part-")?
        .strip_suffix(".parquet")?
        .parse()
        .ok()
}

/// The directory part of a location.
fn dir_of(location: &Path) -> &str {
    location.as_ref().rsplit_once('/').map_or("", |(d, _)| d)
}

/// The newest old partition file of each directory, and every other file
/// (older generations, temporaries) the old layout left.
fn newest_by_dir(objects: Vec<ObjectMeta>) -> (BTreeMap<String, ObjectMeta>, Vec<Path>) {
    let mut newest: BTreeMap<String, (u64, ObjectMeta)> = BTreeMap::new();
    let mut others = Vec::new();
    for meta in objects {
        let Some(g) = meta.location.filename().and_then(generation_of) else {
            others.push(meta.location);
            continue;
        };
        match newest.get(dir_of(&meta.location)) {
            Some((current, _)) if *current >= g => others.push(meta.location),
            _ => {
                if let Some((_, old)) = newest.insert(dir_of(&meta.location).to_string(), (g, meta))
                {
                    others.push(old.location);
                }
            }
        }
    }
    let newest = newest.into_iter().map(|(d, (_, m))| (d, m)).collect();
    (newest, others)
}

/// Converts the lake at `lake` in place; a no-op on a converted lake.
pub(crate) async fn migrate(lake: &Lake) -> Result<MigrateSummary> {
    let mut summary = MigrateSummary::default();
    convert_requests(lake, &mut summary).await?;
    convert_ingested(lake, &mut summary).await?;
    // Old rollups: rebuilt below from the converted hours.
    let old_rollups = old_files(lake, ROLLUP_TABLE.dir).await?;
    let old_rollups = old_rollups
        .into_iter()
        .filter(|m| m.location.filename().and_then(generation_of).is_some());
    for meta in old_rollups {
        delete(lake, &meta.location, &mut summary).await?;
    }
    for leftover in layout::PRE_DELTA_LEFTOVERS {
        match lake.store().delete(&lake.path(leftover)).await {
            Ok(()) => summary.files_deleted += 1,
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut requests = delta::open_or_create(lake, &REQUESTS_TABLE).await?;
    let mut rollups = delta::open_or_create(lake, &ROLLUP_TABLE).await?;
    let mut keys = delta::open_or_create(lake, &rollup::KEYS_TABLE).await?;
    summary.rollups_built = rollup::repair(lake, &mut requests, [&mut rollups, &mut keys]).await?;
    Ok(summary)
}

/// Files of a table directory that are not its Delta log's.
async fn old_files(lake: &Lake, dir: &str) -> Result<Vec<ObjectMeta>> {
    let listed: Vec<ObjectMeta> = lake
        .store()
        .list(Some(&lake.path(dir)))
        .try_collect()
        .await?;
    Ok(listed
        .into_iter()
        .filter(|m| !layout::in_delta_log(m.location.as_ref()))
        .collect())
}

async fn delete(lake: &Lake, location: &Path, summary: &mut MigrateSummary) -> Result<()> {
    match lake.store().delete(location).await {
        Ok(()) => summary.files_deleted += 1,
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Creates a table whose version 0 holds these actions.
async fn create_with(
    lake: &Lake,
    def: &TableDef,
    adds: Vec<deltalake::kernel::Action>,
) -> Result<()> {
    let schema: StructType = def.schema().try_into_kernel()?;
    let table = delta::builder(lake, def)?.build()?;
    table
        .create()
        .with_columns(schema.fields().cloned())
        .with_partition_columns(def.partition_by.iter().copied())
        .with_save_mode(SaveMode::ErrorIfExists)
        .with_actions(adds)
        .await?;
    Ok(())
}

/// Is the table already converted? (Its Delta log has a version.)
async fn is_delta(lake: &Lake, def: &TableDef) -> Result<bool> {
    let log = lake.path(&layout::delta_log(def.dir));
    let mut listed = lake.store().list(Some(&log));
    Ok(listed.try_next().await?.is_some())
}

async fn convert_requests(lake: &Lake, summary: &mut MigrateSummary) -> Result<()> {
    if is_delta(lake, &REQUESTS_TABLE).await? {
        return Ok(());
    }
    let table_root = lake.path(REQUESTS_TABLE.dir).as_ref().to_string() + "/";
    let (newest, others) = newest_by_dir(old_files(lake, REQUESTS_TABLE.dir).await?);
    let mut adds = Vec::new();
    for (dir, meta) in &newest {
        let Some(relative_dir) = dir.strip_prefix(table_root.as_str()) else {
            continue;
        };
        let partition: Option<Vec<String>> = relative_dir
            .split('/')
            .zip(REQUESTS_TABLE.partition_by)
            .map(|(part, column)| part.strip_prefix(&format!("{column}=")).map(str::to_string))
            .collect();
        let Some(partition) = partition.filter(|p| p.len() == 2) else {
            return Err(Error::Lake(format!(
                "{}: not a dt=…/hour=… partition of the old layout",
                meta.location
            )));
        };
        let rows = row_count(lake, meta).await?;
        summary.requests_files += 1;
        summary.requests_rows += rows;
        let name = meta.location.filename().unwrap_or_default();
        adds.push(delta::add_action(
            &REQUESTS_TABLE,
            &partition,
            format!("{relative_dir}/{name}"),
            meta.size as usize,
            Some(serde_json::json!({"numRecords": rows}).to_string()),
        ));
    }
    create_with(lake, &REQUESTS_TABLE, adds).await?;
    for location in others {
        delete(lake, &location, summary).await?;
    }
    Ok(())
}

/// Rows of a Parquet file, from its footer (the file is read whole: a
/// conversion runs once).
async fn row_count(lake: &Lake, meta: &ObjectMeta) -> Result<u64> {
    use datafusion::parquet::file::metadata::ParquetMetaDataReader;
    let bytes = lake.store().get(&meta.location).await?.bytes().await?;
    let metadata = ParquetMetaDataReader::new()
        .parse_and_finish(&bytes)
        .map_err(|e| Error::Lake(format!("{}: {e}", meta.location)))?;
    Ok(metadata.file_metadata().num_rows() as u64)
}

async fn convert_ingested(lake: &Lake, summary: &mut MigrateSummary) -> Result<()> {
    if is_delta(lake, &INGESTED_TABLE).await? {
        return Ok(());
    }
    let old = old_files(lake, INGESTED_TABLE.dir).await?;
    let mut objects: HashMap<String, IngestedObject> = HashMap::new();
    for meta in old
        .iter()
        .filter(|m| m.location.as_ref().ends_with(".parquet"))
    {
        for object in ingested::read_location(lake, &meta.location).await? {
            objects.insert(object.source.clone(), object);
        }
    }
    let objects: Vec<IngestedObject> = objects.into_values().collect();
    summary.ingested_objects = objects.len() as u64;
    let adds = ingested::write_files(lake, "migrated", &objects).await?;
    create_with(lake, &INGESTED_TABLE, adds).await?;
    for meta in old {
        delete(lake, &meta.location, summary).await?;
    }
    Ok(())
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
    fn keeps_the_newest_generation_per_partition_and_lists_the_rest() {
        let listed = vec![
            meta("requests/dt=2025-01-01/hour=00/part-0000000002.parquet"),
            meta("requests/dt=2025-01-01/hour=00/part-0000000001.parquet"),
            meta("requests/dt=2025-01-01/hour=00/.part-0000000003.parquet.tmp"),
            meta("requests/dt=2025-01-01/hour=01/part-0000000001.parquet"),
        ];
        let (newest, others) = newest_by_dir(listed);
        let kept: Vec<&str> = newest.values().map(|m| m.location.as_ref()).collect();
        assert_eq!(
            kept,
            vec![
                "requests/dt=2025-01-01/hour=00/part-0000000002.parquet",
                "requests/dt=2025-01-01/hour=01/part-0000000001.parquet",
            ]
        );
        let mut others: Vec<&str> = others.iter().map(|p| p.as_ref()).collect();
        others.sort();
        assert_eq!(
            others,
            vec![
                "requests/dt=2025-01-01/hour=00/.part-0000000003.parquet.tmp",
                "requests/dt=2025-01-01/hour=00/part-0000000001.parquet",
            ]
        );
    }
}
