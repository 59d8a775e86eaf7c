//! The record of committed source objects: the Delta table
//! `_edgemeter/ingested`, partitioned by `day`.
//!
//! Appending these rows is the last step of ingesting a batch of objects,
//! after the `requests` commit that holds their rows. An object whose location
//! and ETag are recorded is skipped by later runs; one that is not (a crash
//! before this commit) is merged again, which the partition de-duplication
//! turns into a no-op. Appends never conflict: two writers recording the same
//! object record the same fact.
//!
//! Rows are partitioned by the day an object's name carries (CloudFront names
//! each file for the hour of its requests), so a run reads only the days it
//! listed: an hourly run's cost does not grow with the lake's history. Objects
//! whose names carry no date are recorded under `day=undated`, read by every run.

use super::delta::{self, AsOf, TableDef};
use super::parquet_io::{decode, encode, writer_properties};
use super::{Lake, layout};
use crate::error::{Error, Result};
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::DeltaTable;
use object_store::{ObjectStoreExt, PutPayload};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};

/// The record's Delta table.
pub(crate) const INGESTED_TABLE: TableDef = TableDef {
    dir: layout::INGESTED_DIR,
    file_schema: ingested_schema,
    partition_by: &["day"],
    stats_columns: &["source"],
};
/// One committed source object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct IngestedObject {
    pub(crate) source: String,
    pub(crate) etag: String,
    pub(crate) size: u64,
    pub(crate) lines: u64,
    pub(crate) rows: u64,
    pub(crate) bad_lines: u64,
    pub(crate) run_id: String,
    pub(crate) ingested_at_ms: i64,
    /// The version of `requests` that holds the object's rows.
    pub(crate) requests_version: u64,
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
        Field::new("ingested_at", crate::schema::timestamp_type(), false),
        Field::new("requests_version", DataType::Int64, false),
    ]))
});

/// The schema of the ingested-object records.
pub(crate) fn ingested_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// The partition of the record an object's row belongs to.
fn day_partition(source: &str) -> String {
    match crate::object_names::name_hour(source) {
        Some(hour) => hour.dt(),
        None => UNDATED.to_string(),
    }
}

/// The partition of objects whose names carry no date.
const UNDATED: &str = "undated";

/// Records a batch of objects as ingested: one new file per day, all in one
/// append to the record's table. Returns the table version that holds them.
pub(crate) async fn record(
    lake: &Lake,
    table: &mut DeltaTable,
    run_id: &str,
    objects: &[IngestedObject],
) -> Result<u64> {
    let actions = write_files(lake, run_id, objects).await?;
    if actions.is_empty() {
        return Ok(table.version().unwrap_or_default());
    }
    let metadata = HashMap::from([("edgemeter.run_id".to_string(), run_id.into())]);
    delta::commit_append(table, &INGESTED_TABLE, actions, metadata).await
}

/// Writes objects as one new file per day; returns the Add actions that
/// commit them.
pub(crate) async fn write_files(
    lake: &Lake,
    run_id: &str,
    objects: &[IngestedObject],
) -> Result<Vec<deltalake::kernel::Action>> {
    let mut by_day: BTreeMap<String, Vec<&IngestedObject>> = BTreeMap::new();
    for object in objects {
        by_day
            .entry(day_partition(&object.source))
            .or_default()
            .push(object);
    }
    let mut actions = Vec::new();
    for (day, objects) in by_day {
        let file = encode(
            &ingested_schema(),
            &[batch_of(&objects)?],
            writer_properties(None),
        )?;
        let path = format!(
            "{}/{}",
            layout::ingested_day_dir(&day),
            delta::new_file_name(run_id)
        );
        let location = delta::file_location(lake, &INGESTED_TABLE, &path);
        let size = file.len();
        lake.store().put(&location, PutPayload::from(file)).await?;
        actions.push(delta::add_action(
            &INGESTED_TABLE,
            &[day],
            path,
            size,
            Some(serde_json::json!({"numRecords": objects.len()}).to_string()),
        ));
    }
    Ok(actions)
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
            i64s(|o| o.requests_version),
        ],
    )?)
}

/// The rows of one record file of the table.
async fn read_file(lake: &Lake, path: &str) -> Result<Vec<IngestedObject>> {
    read_location(lake, &delta::file_location(lake, &INGESTED_TABLE, path)).await
}

/// The rows of a record file at a location in the lake.
pub(crate) async fn read_location(
    lake: &Lake,
    path: &object_store::path::Path,
) -> Result<Vec<IngestedObject>> {
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
        // Records written before Delta tables have no version: 0.
        let versions = batch
            .column_by_name("requests_version")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>());
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
                requests_version: versions.map_or(0, |v| v.value(i) as u64),
            });
        }
    }
    Ok(out)
}

/// Committed objects' ETags and sizes, by source location, from the record's
/// files in these days (all days when `None`).
async fn load_days(
    lake: &Lake,
    as_of: AsOf,
    days: Option<&BTreeSet<String>>,
) -> Result<HashMap<String, (String, u64)>> {
    let mut out = HashMap::new();
    let Some(table) = delta::open(lake, &INGESTED_TABLE, as_of).await? else {
        return Ok(out);
    };
    for (partition, files) in delta::files_by_partition(&table, &INGESTED_TABLE)? {
        if days.is_some_and(|days| !partition.first().is_some_and(|d| days.contains(d))) {
            continue;
        }
        for file in files {
            for o in read_file(lake, &file.path).await? {
                out.insert(o.source, (o.etag, o.size));
            }
        }
    }
    Ok(out)
}

/// Every committed object's ETag and size, by source location, as of a
/// version of the record.
pub(crate) async fn load(lake: &Lake, as_of: AsOf) -> Result<HashMap<String, (String, u64)>> {
    load_days(lake, as_of, None).await
}

/// The record of the days these sources fall in (and of undated objects):
/// all a run needs to tell which of them are new.
/// The objects the record holds in these day partitions (see [`day_of`]),
/// by location.
pub(crate) async fn load_days_of(
    lake: &Lake,
    days: &BTreeSet<String>,
) -> Result<HashMap<String, (String, u64)>> {
    load_days(lake, AsOf::Latest, Some(days)).await
}

/// The day partition that holds an object's record: the day its name
/// carries, else `undated`.
pub(crate) fn day_of(source: &str) -> String {
    day_partition(source)
}

pub(crate) async fn load_for(
    lake: &Lake,
    sources: &[&str],
) -> Result<HashMap<String, (String, u64)>> {
    let mut days: BTreeSet<String> = sources.iter().copied().map(day_partition).collect();
    days.insert(UNDATED.to_string());
    load_days(lake, AsOf::Latest, Some(&days)).await
}
