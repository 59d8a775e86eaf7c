//! The record of committed source objects: `_edgemeter/ingested/*.parquet`.
//!
//! Writing these rows is the last step of ingesting a batch of objects (the
//! commit). An object whose location and ETag are recorded is skipped by later
//! runs; one that is not (a crash before the commit) is merged again, which the
//! partition de-duplication turns into a no-op.

use super::Lake;
use super::parquet_io::{decode, encode, writer_properties};
use crate::error::{Error, Result};
use datafusion::arrow::array::{
    Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use std::collections::HashMap;
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

/// Appends records for a batch of objects as one new file (the commit point).
pub async fn record(lake: &Lake, file_stem: &str, objects: &[IngestedObject]) -> Result<()> {
    if objects.is_empty() {
        return Ok(());
    }
    let i64s = |f: fn(&IngestedObject) -> u64| {
        Arc::new(Int64Array::from_iter_values(
            objects.iter().map(|o| f(o) as i64),
        ))
    };
    let strings = |f: fn(&IngestedObject) -> &str| {
        Arc::new(StringArray::from_iter_values(objects.iter().map(f)))
    };
    let batch = RecordBatch::try_new(
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
    )?;
    let file = encode(&ingested_schema(), &[batch], writer_properties(None))?;
    let path = lake.path(&format!("{INGESTED_DIR}/{file_stem}.parquet"));
    lake.store().put(&path, PutPayload::from(file)).await?;
    Ok(())
}

/// Every committed object's ETag and size, by source location.
pub async fn load(lake: &Lake) -> Result<HashMap<String, (String, u64)>> {
    let dir = lake.path(INGESTED_DIR);
    let listed: Vec<_> = lake.store().list(Some(&dir)).try_collect().await?;
    let mut out = HashMap::new();
    for meta in listed {
        if !meta.location.as_ref().ends_with(".parquet") {
            continue;
        }
        let data = lake.store().get(&meta.location).await?.bytes().await?;
        for batch in decode(data)? {
            let column = |name: &str| {
                batch
                    .column_by_name(name)
                    .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                    .ok_or_else(|| Error::Lake(format!("{} lacks column {name}", meta.location)))
            };
            let (sources, etags) = (column("source")?, column("etag")?);
            let sizes = batch
                .column_by_name("size")
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
                .ok_or_else(|| Error::Lake(format!("{} lacks column size", meta.location)))?;
            for i in 0..batch.num_rows() {
                out.insert(
                    sources.value(i).to_string(),
                    (etags.value(i).to_string(), sizes.value(i) as u64),
                );
            }
        }
    }
    Ok(out)
}

/// Above this many record files, a run folds them into one.
const COMPACT_ABOVE: usize = 32;

/// Folds many small record files into one: the merged file is written first,
/// then the files it replaces are deleted (a crash in between only leaves
/// duplicate records, which mean the same thing).
pub async fn compact(lake: &Lake, run_id: &str) -> Result<()> {
    let dir = lake.path(INGESTED_DIR);
    let listed: Vec<_> = lake.store().list(Some(&dir)).try_collect().await?;
    let files: Vec<_> = listed
        .into_iter()
        .filter(|m| m.location.as_ref().ends_with(".parquet"))
        .collect();
    if files.len() <= COMPACT_ABOVE {
        return Ok(());
    }
    let mut batches = Vec::new();
    for meta in &files {
        let data = lake.store().get(&meta.location).await?.bytes().await?;
        batches.extend(decode(data)?);
    }
    let file = encode(&ingested_schema(), &batches, writer_properties(None))?;
    let path = lake.path(&format!("{INGESTED_DIR}/{run_id}-compacted.parquet"));
    lake.store().put(&path, PutPayload::from(file)).await?;
    for meta in files {
        match lake.store().delete(&meta.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
