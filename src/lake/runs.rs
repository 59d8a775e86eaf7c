//! Run records, `_edgemeter/runs/<run-id>.json`: one per ingest run, listed
//! newest first by `edgemeter runs`.

use super::Lake;
use super::layout::RUNS_DIR;
use crate::error::Result;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use std::sync::Arc;

/// Writes a run's record.
pub(crate) async fn write(lake: &Lake, run_id: &str, record: &impl serde::Serialize) -> Result<()> {
    let body = serde_json::to_vec_pretty(record)?;
    let path = lake.path(&format!("{RUNS_DIR}/{run_id}.json"));
    lake.store().put(&path, PutPayload::from(body)).await?;
    Ok(())
}

/// The newest `limit` run records, newest first (run ids begin with their
/// start time).
pub(crate) async fn records(lake: &Lake, limit: usize) -> Result<Vec<serde_json::Value>> {
    let dir = lake.path(RUNS_DIR);
    let mut listed: Vec<_> = lake.store().list(Some(&dir)).try_collect().await?;
    listed.sort_by(|a, b| b.location.cmp(&a.location));
    listed.truncate(limit);
    let mut records = Vec::new();
    for meta in listed {
        let data = lake.store().get(&meta.location).await?.bytes().await?;
        match serde_json::from_slice::<serde_json::Value>(&data) {
            Ok(value) => records.push(value),
            Err(e) => tracing::warn!(record = %meta.location, error = %e, "unreadable run record"),
        }
    }
    Ok(records)
}

/// The start of the newest finished run that began at or before `at`, read
/// from the records' names (a run id begins with its start time).
pub(crate) async fn newest_start(
    lake: &Lake,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    let dir = lake.path(RUNS_DIR);
    let listed: Vec<_> = lake.store().list(Some(&dir)).try_collect().await?;
    Ok(listed
        .iter()
        .filter_map(|m| m.location.filename()?.get(..19))
        .filter_map(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y%m%dT%H%M%S%.3f").ok())
        .map(|t| t.and_utc())
        .filter(|t| *t <= at)
        .max())
}

/// The newest `limit` run records as a table.
pub(crate) async fn list(lake: &Lake, limit: usize) -> Result<RecordBatch> {
    let records = records(lake, limit).await?;
    let text = |key: &str| -> ArrayRef {
        Arc::new(StringArray::from_iter(records.iter().map(|r| {
            r.get(key).and_then(|v| v.as_str()).map(str::to_string)
        })))
    };
    let number = |key: &str| -> ArrayRef {
        Arc::new(UInt64Array::from_iter(
            records.iter().map(|r| r.get(key).and_then(|v| v.as_u64())),
        ))
    };
    let count = |key: &str| -> ArrayRef {
        Arc::new(UInt64Array::from_iter(records.iter().map(|r| {
            r.get(key)
                .and_then(|v| v.as_array())
                .map(|a| a.len() as u64)
        })))
    };
    let columns = [
        ("run_id", text("run_id")),
        ("started_at", text("started_at")),
        ("finished_at", text("finished_at")),
        ("source", text("source")),
        ("listing", text("listing")),
        ("objects_ingested", number("objects_ingested")),
        ("objects_skipped", number("objects_skipped")),
        ("objects_unreadable", number("objects_unreadable")),
        ("bytes_read", number("bytes_read")),
        ("lines", number("lines")),
        ("bad_lines", number("bad_lines")),
        ("rows_written", number("rows_written")),
        ("duplicates", number("duplicates")),
        ("partitions_touched", count("partitions_touched")),
        ("elapsed_ms", number("elapsed_ms")),
    ];
    let schema = Schema::new(
        columns
            .iter()
            .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    debug_assert!(
        schema
            .fields()
            .iter()
            .all(|f| f.data_type() != &DataType::Null)
    );
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        columns.into_iter().map(|(_, a)| a).collect(),
    )?)
}
