//! The record of committed source objects:
//! `_edgemeter/ingested/day=YYYY-MM-DD/*.parquet`.
//!
//! Writing these rows is the last step of ingesting a batch of objects (the
//! commit). An object whose location and ETag are recorded is skipped by later
//! runs; one that is not (a crash before the commit) is merged again, which the
//! partition de-duplication turns into a no-op.
//!
//! Rows are partitioned by the day an object's name carries (CloudFront names
//! each file for the hour of its requests), so a run reads only the days it
//! listed: an hourly run's cost does not grow with the lake's history. Objects
//! whose names carry no date are recorded under `day=undated`, read by every run.
//! Files directly under `_edgemeter/ingested/` (lakes written before the
//! partitioning) are read by every run until the next run folds them into days.

use super::Lake;
use super::parquet_io::{decode, encode, writer_properties};
use crate::error::{Error, Result};
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};

/// The lake directory holding the records.
pub const INGESTED_DIR: &str = "_edgemeter/ingested";

/// One committed source object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IngestedObject {
    pub source: String,
    pub etag: String,
    pub size: u64,
    pub lines: u64,
    pub rows: u64,
    pub bad_lines: u64,
    pub run_id: String,
    pub ingested_at_ms: i64,
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("etag", DataType::Utf8, false),
        Field::new("size", DataType::Int64, false),
        Field::new("lines", DataType::Int64, false),
        Field::new("rows", DataType::Int64, false),
        Field::new("bad_lines", DataType::Int64, false),
        Field::new("run_id", DataType::Utf8, false),
        Field::new("ingested_at", crate::lake::schema::timestamp_type(), false),
    ]))
});

/// The schema of the ingested-object records.
pub fn ingested_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// The partition of the record an object's row belongs to.
fn day_partition(source: &str) -> String {
    match crate::source::name_hour(source) {
        Some(hour) => format!("day={}", hour.format("%Y-%m-%d")),
        None => UNDATED.to_string(),
    }
}

/// The partition of objects whose names carry no date.
const UNDATED: &str = "day=undated";

/// Appends records for a batch of objects: one new file per day partition
/// (each file is the commit point of its objects).
pub async fn record(lake: &Lake, file_stem: &str, objects: &[IngestedObject]) -> Result<()> {
    write_by_day(lake, file_stem, objects.iter()).await?;
    Ok(())
}

/// Writes objects as one file per day partition, named `<file_stem>.parquet`;
/// returns the paths written.
async fn write_by_day<'a>(
    lake: &Lake,
    file_stem: &str,
    objects: impl Iterator<Item = &'a IngestedObject>,
) -> Result<Vec<Path>> {
    let mut by_day: BTreeMap<String, Vec<&IngestedObject>> = BTreeMap::new();
    for object in objects {
        by_day
            .entry(day_partition(&object.source))
            .or_default()
            .push(object);
    }
    let mut written = Vec::new();
    for (day, objects) in by_day {
        let file = encode(
            &ingested_schema(),
            &[batch_of(&objects)?],
            writer_properties(None),
        )?;
        let path = lake.path(&format!("{INGESTED_DIR}/{day}/{file_stem}.parquet"));
        lake.store().put(&path, PutPayload::from(file)).await?;
        written.push(path);
    }
    Ok(written)
}

fn batch_of(objects: &[&IngestedObject]) -> Result<RecordBatch> {
    let i64s = |f: fn(&IngestedObject) -> u64| {
        Arc::new(Int64Array::from_iter_values(
            objects.iter().map(|o| f(o) as i64),
        ))
    };
    let strings = |f: fn(&IngestedObject) -> &str| {
        Arc::new(StringArray::from_iter_values(objects.iter().map(|o| f(o))))
    };
    Ok(RecordBatch::try_new(
        ingested_schema(),
        vec![
            strings(|o| &o.source),
            strings(|o| &o.etag),
            i64s(|o| o.size),
            i64s(|o| o.lines),
            i64s(|o| o.rows),
            i64s(|o| o.bad_lines),
            strings(|o| &o.run_id),
            Arc::new(
                TimestampMillisecondArray::from_iter_values(
                    objects.iter().map(|o| o.ingested_at_ms),
                )
                .with_timezone("UTC"),
            ),
        ],
    )?)
}

/// The rows of one record file.
async fn read_file(lake: &Lake, path: &Path) -> Result<Vec<IngestedObject>> {
    let data = lake.store().get(path).await?.bytes().await?;
    let mut out = Vec::new();
    let batches = decode(data).map_err(|e| Error::Lake(format!("{path}: {e}")))?;
    for batch in batches {
        let lacks = |name: &str| Error::Lake(format!("{path} lacks column {name}"));
        let strings = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| lacks(name))
        };
        let ints = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
                .ok_or_else(|| lacks(name))
        };
        let (sources, etags, run_ids) = (strings("source")?, strings("etag")?, strings("run_id")?);
        let (sizes, lines, rows, bad) = (
            ints("size")?,
            ints("lines")?,
            ints("rows")?,
            ints("bad_lines")?,
        );
        let at = batch
            .column_by_name("ingested_at")
            .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>())
            .ok_or_else(|| lacks("ingested_at"))?;
        for i in 0..batch.num_rows() {
            out.push(IngestedObject {
                source: sources.value(i).to_string(),
                etag: etags.value(i).to_string(),
                size: sizes.value(i) as u64,
                lines: lines.value(i) as u64,
                rows: rows.value(i) as u64,
                bad_lines: bad.value(i) as u64,
                run_id: run_ids.value(i).to_string(),
                ingested_at_ms: at.value(i),
            });
        }
    }
    Ok(out)
}

/// Committed objects' ETags and sizes, by source location, from these files.
async fn load_files(lake: &Lake, files: &[Path]) -> Result<HashMap<String, (String, u64)>> {
    let mut out = HashMap::new();
    for path in files {
        for o in read_file(lake, path).await? {
            out.insert(o.source, (o.etag, o.size));
        }
    }
    Ok(out)
}

/// Record files (`*.parquet`) under a directory, at any depth.
async fn files_under(lake: &Lake, dir: &Path) -> Result<Vec<Path>> {
    let listed: Vec<_> = lake.store().list(Some(dir)).try_collect().await?;
    Ok(listed
        .into_iter()
        .map(|m| m.location)
        .filter(|p| p.as_ref().ends_with(".parquet"))
        .collect())
}

/// Record files written before the record was partitioned by day.
async fn unpartitioned_files(lake: &Lake) -> Result<Vec<Path>> {
    let listed = lake
        .store()
        .list_with_delimiter(Some(&lake.path(INGESTED_DIR)))
        .await?;
    Ok(listed
        .objects
        .into_iter()
        .map(|m| m.location)
        .filter(|p| p.as_ref().ends_with(".parquet"))
        .collect())
}

/// Every committed object's ETag and size, by source location.
pub async fn load(lake: &Lake) -> Result<HashMap<String, (String, u64)>> {
    let files = files_under(lake, &lake.path(INGESTED_DIR)).await?;
    load_files(lake, &files).await
}

/// The record of the day partitions these sources fall in (and of undated
/// and unpartitioned records): all a run needs to tell which of them are new.
pub async fn load_for<'a>(
    lake: &Lake,
    sources: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, (String, u64)>> {
    let mut days: BTreeSet<String> = sources.map(day_partition).collect();
    days.insert(UNDATED.to_string());
    let mut files = unpartitioned_files(lake).await?;
    for day in days {
        files.extend(files_under(lake, &lake.path(&format!("{INGESTED_DIR}/{day}"))).await?);
    }
    load_files(lake, &files).await
}

/// Above this many record files, a run folds a day's files into one.
const COMPACT_ABOVE: usize = 32;

/// Keeps the record small to read: files written before the partitioning are
/// moved into their days, and each day these sources fall in that holds more
/// than [`COMPACT_ABOVE`] files is folded into one. New files are written
/// first, then the files they replace are deleted (a crash in between only
/// leaves duplicate records, which mean the same thing).
pub async fn compact<'a>(
    lake: &Lake,
    run_id: &str,
    sources: impl Iterator<Item = &'a str>,
) -> Result<()> {
    let unpartitioned = unpartitioned_files(lake).await?;
    if !unpartitioned.is_empty() {
        let mut objects = Vec::new();
        for path in &unpartitioned {
            objects.extend(read_file(lake, path).await?);
        }
        write_by_day(lake, &format!("{run_id}-moved"), objects.iter()).await?;
        delete_all(lake, &unpartitioned).await?;
    }
    let days: BTreeSet<String> = sources.map(day_partition).collect();
    for day in days {
        let dir = lake.path(&format!("{INGESTED_DIR}/{day}"));
        let files = files_under(lake, &dir).await?;
        if files.len() <= COMPACT_ABOVE {
            continue;
        }
        let mut objects = Vec::new();
        for path in &files {
            objects.extend(read_file(lake, path).await?);
        }
        let written = write_by_day(lake, &format!("{run_id}-compacted"), objects.iter()).await?;
        let replaced: Vec<Path> = files.into_iter().filter(|f| !written.contains(f)).collect();
        delete_all(lake, &replaced).await?;
    }
    Ok(())
}

async fn delete_all(lake: &Lake, paths: &[Path]) -> Result<()> {
    for path in paths {
        match lake.store().delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
