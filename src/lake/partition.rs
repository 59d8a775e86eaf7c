//! Merging new rows into an hour's partition of `requests`, exactly once.
//!
//! The hour's current generation is read, new rows whose request id is already
//! there (or repeated among the new rows) are dropped, the union is sorted by
//! `api_key_id` then `timestamp` and written as the next generation; only then
//! are older generations deleted. Re-merging the same rows is a no-op, so a crash
//! at any point is repaired by running again.
//!
//! Each new generation of an hour's requests is followed by the same generation
//! of its `usage_hourly` rollup, computed from all of the hour's rows (never by
//! adding deltas), so a rollup is exact whenever its generation matches. A merge
//! that finds the rollup's newest generation behind the requests' (a crash
//! between the two writes) rebuilds it, even when no row is new.

use super::Lake;
use super::parquet_io::{decode, encode_by_column, writer_properties};
use super::rollup::{self, ROLLUP_TABLE};
use super::schema::requests_schema;
use super::view::{generation_of, part_file_name};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use datafusion::arrow::array::new_null_array;
use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::array::{AsArray, TimestampMillisecondArray};
use datafusion::arrow::compute::interleave;
use datafusion::common::{HashMap, HashSet};
use datafusion::parquet::file::metadata::SortingColumn;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use std::sync::Arc;

/// `dt` and `hour` partition values of an hour number (hours since the epoch, UTC).
pub fn partition_values(hour: i64) -> (String, String) {
    let t: DateTime<Utc> = DateTime::from_timestamp(hour * 3600, 0).unwrap_or_default();
    (t.format("%Y-%m-%d").to_string(), t.format("%H").to_string())
}

/// The directory of an hour's partition of a table, relative to the lake root.
pub fn partition_dir(table: &str, hour: i64) -> String {
    let (dt, hh) = partition_values(hour);
    format!("{table}/dt={dt}/hour={hh}")
}

/// What merging into one hour did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MergeOutcome {
    pub partition: String,
    /// New rows written.
    pub rows_added: u64,
    /// New rows dropped because their request was already counted.
    pub duplicates: u64,
    /// Rows in the partition after the merge.
    pub rows_total: u64,
}

/// Merges `new` rows (all of the same hour) into that hour's partition, then
/// brings the hour's rollup to the same generation.
pub async fn merge_hour(lake: &Lake, hour: i64, new: Vec<RecordBatch>) -> Result<MergeOutcome> {
    let relative = partition_dir("requests", hour);
    let dir = lake.path(&relative);
    let rollup_dir = lake.path(&partition_dir(ROLLUP_TABLE, hour));
    let (files, leftovers) = list_generations(lake, &dir).await?;
    let (rollups, rollup_leftovers) = list_generations(lake, &rollup_dir).await?;
    let current = files.iter().map(|(g, _)| *g).max();
    let rollup_current = rollups.iter().map(|(g, _)| *g).max();
    let mut existing = Vec::new();
    for (_, path) in files.iter().filter(|(g, _)| Some(*g) == current) {
        let data = lake.store().get(path).await?.bytes().await?;
        existing.extend(decode(data)?);
    }

    let stale_rollup = current.is_some() && rollup_current != current;
    let merged = tokio::task::spawn_blocking(move || merge_rows(existing, new, hour, stale_rollup))
        .await??;
    let mut outcome = MergeOutcome {
        partition: relative,
        rows_added: merged.added,
        duplicates: merged.duplicates,
        rows_total: merged.total,
    };
    // The generation the hour is at after this merge.
    let generation = match merged.file {
        Some(file) => {
            let next = current.map_or(1, |g| g + 1);
            let path = dir.clone().join(part_file_name(next).as_str());
            lake.store().put(&path, PutPayload::from(file)).await?;
            Some(next)
        }
        None => current,
    };
    if let (Some(generation), Some(file)) = (generation, merged.rollup) {
        let path = rollup_dir.clone().join(part_file_name(generation).as_str());
        lake.store().put(&path, PutPayload::from(file)).await?;
    }
    // Only now are older generations (and temporaries) of both deleted.
    let stale = files
        .iter()
        .chain(&rollups)
        .filter(|(g, _)| Some(*g) != generation)
        .map(|(_, p)| p);
    for path in stale.chain(&leftovers).chain(&rollup_leftovers) {
        match lake.store().delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if outcome.rows_added == 0 {
        outcome.rows_total = merged.total;
    }
    Ok(outcome)
}

/// Partition files in a directory with their generations, and anything else
/// there (temporaries of an interrupted write), which the merge deletes.
async fn list_generations(lake: &Lake, dir: &Path) -> Result<(Vec<(u64, Path)>, Vec<Path>)> {
    let listed: Vec<_> = lake.store().list(Some(dir)).try_collect().await?;
    let mut parts = Vec::new();
    let mut leftovers = Vec::new();
    for meta in listed {
        match meta.location.filename().and_then(generation_of) {
            Some(g) => parts.push((g, meta.location)),
            None => leftovers.push(meta.location),
        }
    }
    Ok((parts, leftovers))
}

struct Merged {
    /// The new generation's file, `None` when no row was added.
    file: Option<bytes::Bytes>,
    /// The hour's rollup file, when the hour changed or its rollup was stale.
    rollup: Option<bytes::Bytes>,
    added: u64,
    duplicates: u64,
    total: u64,
}

/// The identity of a request for de-duplication: its `x_edge_request_id`, or
/// its origin (object and line) when the log has no id. Borrowed from the rows.
#[derive(PartialEq, Eq, Hash)]
enum RequestKey<'a> {
    Id(&'a str),
    Origin(&'a str, i64),
}

/// The request keys of a batch's rows, in row order.
fn request_keys(batch: &RecordBatch) -> Result<Vec<RequestKey<'_>>> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| Error::Lake(format!("requests file lacks column {name}")))
    };
    let ids = column("x_edge_request_id")?;
    let objects = column("source_object")?;
    let lines = column("source_line")?;
    let (Some(ids), Some(objects), Some(lines)) = (
        ids.as_any().downcast_ref::<StringArray>(),
        objects.as_any().downcast_ref::<StringArray>(),
        lines.as_any().downcast_ref::<Int64Array>(),
    ) else {
        return Err(Error::Lake(
            "requests file has unexpected column types".into(),
        ));
    };
    Ok((0..batch.num_rows())
        .map(|i| match ids.is_valid(i) {
            true => RequestKey::Id(ids.value(i)),
            false => RequestKey::Origin(objects.value(i), lines.value(i)),
        })
        .collect())
}

/// Orders rows, given as (batch, row) into `batches`, by `api_key_id` (nulls
/// last) then `timestamp`, ties kept in their given order.
///
/// Each distinct key is compared once, to rank it; the rows are then sorted on
/// (rank, timestamp, position) triples rather than on the 64-character ids.
fn sort_by_key_then_time(
    batches: &[&RecordBatch],
    rows: Vec<(usize, usize)>,
) -> Result<Vec<(usize, usize)>> {
    let columns = |name: &str| -> Result<Vec<&dyn Array>> {
        batches
            .iter()
            .map(|b| {
                b.column_by_name(name)
                    .map(|c| c.as_ref())
                    .ok_or_else(|| Error::Lake(format!("requests rows lack column {name}")))
            })
            .collect()
    };
    let keys: Vec<&StringArray> = columns("api_key_id")?
        .into_iter()
        .map(|c| c.as_string_opt::<i32>())
        .collect::<Option<_>>()
        .ok_or_else(|| Error::Lake("api_key_id is not a string column".into()))?;
    let times: Vec<&TimestampMillisecondArray> = columns("timestamp")?
        .into_iter()
        .map(|c| c.as_any().downcast_ref())
        .collect::<Option<_>>()
        .ok_or_else(|| Error::Lake("timestamp is not a millisecond column".into()))?;

    let key_of = |(b, row): (usize, usize)| keys[b].is_valid(row).then(|| keys[b].value(row));
    let mut ranks: HashMap<&str, u32> = HashMap::default();
    for &row in &rows {
        if let Some(key) = key_of(row) {
            ranks.entry(key).or_insert(0);
        }
    }
    let mut distinct: Vec<&str> = ranks.keys().copied().collect();
    distinct.sort_unstable();
    for (rank, key) in distinct.into_iter().enumerate() {
        ranks.insert(key, rank as u32);
    }
    let mut order: Vec<(u32, i64, u32)> = rows
        .iter()
        .enumerate()
        .map(|(i, &(b, row))| {
            let rank = key_of((b, row)).map_or(u32::MAX, |key| ranks[key]);
            (rank, times[b].value(row), i as u32)
        })
        .collect();
    order.sort_unstable();
    Ok(order
        .into_iter()
        .map(|(_, _, i)| rows[i as usize])
        .collect())
}

/// Column `column` of the rows at `indices` (batch, row) of `batches`, in
/// that order.
///
/// Like arrow's `interleave`, but a column that is null in every input (a
/// field the logs never fill, or one their era lacks) becomes a null array at
/// once instead of being gathered row by row.
fn interleave_column(
    batches: &[&RecordBatch],
    column: usize,
    indices: &[(usize, usize)],
) -> Result<ArrayRef> {
    let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(column).as_ref()).collect();
    match arrays.first() {
        None => Err(Error::Lake("nothing to interleave".into())),
        Some(first) if arrays.iter().all(|a| a.null_count() == a.len()) => {
            Ok(new_null_array(first.data_type(), indices.len()))
        }
        Some(_) => Ok(interleave(&arrays, indices)?),
    }
}

/// The named columns of the rows at `indices` (batch, row) of `batches`, in
/// that order, as one batch.
fn interleave_columns(
    batches: &[&RecordBatch],
    indices: &[(usize, usize)],
    names: &[&str],
) -> Result<RecordBatch> {
    let Some(first) = batches.first() else {
        return Err(Error::Lake("nothing to interleave".into()));
    };
    let schema = first.schema();
    let projection = names
        .iter()
        .map(|name| schema.index_of(name))
        .collect::<Result<Vec<_>, _>>()?;
    let columns = projection
        .iter()
        .map(|&i| interleave_column(batches, i, indices))
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(
        Arc::new(schema.project(&projection)?),
        columns,
    )?)
}

fn merge_rows(
    existing: Vec<RecordBatch>,
    new: Vec<RecordBatch>,
    hour: i64,
    stale_rollup: bool,
) -> Result<Merged> {
    let schema = requests_schema();
    let existing_rows: usize = existing.iter().map(RecordBatch::num_rows).sum();
    let new_rows: usize = new.iter().map(RecordBatch::num_rows).sum();
    // Rows kept, as (batch, row) into `existing` followed by `new`; sized for
    // all of them, so neither grows (and rehashes) on the way.
    let mut kept: Vec<(usize, usize)> = Vec::with_capacity(existing_rows + new_rows);
    let mut seen: HashSet<RequestKey<'_>> = HashSet::with_capacity(existing_rows + new_rows);
    for (b, batch) in existing.iter().enumerate() {
        seen.extend(request_keys(batch)?);
        kept.extend((0..batch.num_rows()).map(|row| (b, row)));
    }
    let (mut added, mut duplicates) = (0u64, 0u64);
    for (b, batch) in new.iter().enumerate() {
        for (row, key) in request_keys(batch)?.into_iter().enumerate() {
            if seen.insert(key) {
                kept.push((existing.len() + b, row));
                added += 1;
            } else {
                duplicates += 1;
            }
        }
    }
    drop(seen);
    let total = existing_rows as u64 + added;
    let batches: Vec<&RecordBatch> = existing.iter().chain(&new).collect();
    if added == 0 {
        let rollup = match stale_rollup {
            true => Some(rollup::encode_hour(hour, &existing)?),
            false => None,
        };
        return Ok(Merged {
            file: None,
            rollup,
            added,
            duplicates,
            total,
        });
    }
    let sorted_rows = sort_by_key_then_time(&batches, kept)?;
    // The rollup's columns are gathered into the new order first; the file's
    // other columns one at a time as they are encoded, so the hour's reordered
    // rows are never all in memory at once.
    let rollup_rows = interleave_columns(&batches, &sorted_rows, &rollup::REQUESTS_COLUMNS)?;
    let rollup = rollup::encode_hour(hour, std::slice::from_ref(&rollup_rows))?;
    let sorted_on = |column_idx| SortingColumn {
        column_idx,
        descending: false,
        nulls_first: false,
    };
    let sorting = vec![sorted_on(1), sorted_on(0)];
    let file = encode_by_column(
        &schema,
        sorted_rows.len(),
        writer_properties(Some(sorting)),
        |column, rows| match rollup_rows.column_by_name(schema.field(column).name()) {
            Some(gathered) => Ok(gathered.slice(rows.start, rows.len())),
            None => interleave_column(&batches, column, &sorted_rows[rows]),
        },
    )?;
    Ok(Merged {
        file: Some(file),
        rollup: Some(rollup),
        added,
        duplicates,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two batches of (key, time) rows, as the merge sees them.
    fn key_time_batches() -> Vec<RecordBatch> {
        use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
        use std::sync::Arc;
        let schema = Arc::new(Schema::new(vec![
            Field::new("api_key_id", DataType::Utf8, true),
            Field::new(
                "timestamp",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
        ]));
        let batch = |keys: Vec<Option<&str>>, times: Vec<i64>| {
            let columns: Vec<Arc<dyn Array>> = vec![
                Arc::new(StringArray::from(keys)),
                Arc::new(TimestampMillisecondArray::from(times)),
            ];
            RecordBatch::try_new(schema.clone(), columns).unwrap()
        };
        vec![
            batch(
                vec![Some("b"), None, Some("ab"), Some("b")],
                vec![5, 1, 9, 2],
            ),
            batch(
                vec![Some("ab"), None, Some("b"), Some("a")],
                vec![3, 0, 2, 7],
            ),
        ]
    }

    #[test]
    fn rows_sort_by_key_then_time_with_keyless_last_and_ties_in_order() {
        let batches = key_time_batches();
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        // Every row but the second batch's first, in a scrambled order.
        let rows = vec![(1, 3), (0, 0), (0, 1), (1, 2), (0, 2), (0, 3), (1, 1)];
        let sorted = sort_by_key_then_time(&refs, rows).unwrap();
        assert_eq!(
            sorted,
            vec![
                (1, 3), // a @7
                (0, 2), // ab @9
                (1, 2), // b @2, given before the other b @2
                (0, 3), // b @2
                (0, 0), // b @5
                (1, 1), // keyless @0
                (0, 1), // keyless @1
            ]
        );
    }

    #[test]
    fn interleaving_matches_arrow_and_makes_all_null_columns_at_once() {
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use std::sync::Arc;
        let schema = Arc::new(Schema::new(vec![
            Field::new("never", DataType::Utf8, true),
            Field::new("sometimes", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]));
        let batch =
            |never: Vec<Option<&str>>, sometimes: Vec<Option<&str>>, n: Vec<Option<i64>>| {
                let columns: Vec<Arc<dyn Array>> = vec![
                    Arc::new(StringArray::from(never)),
                    Arc::new(StringArray::from(sometimes)),
                    Arc::new(Int64Array::from(n)),
                ];
                RecordBatch::try_new(schema.clone(), columns).unwrap()
            };
        // `sometimes` is all null in the first batch only; `never` in both.
        let a = batch(vec![None, None], vec![None, None], vec![Some(1), None]);
        let b = batch(
            vec![None; 3],
            vec![Some("x"), None, Some("y")],
            vec![Some(3), Some(4), None],
        );
        let batches = [&a, &b];
        let indices = [(1, 2), (0, 1), (1, 0), (0, 0), (1, 1)];
        let got = interleave_columns(&batches, &indices, &["never", "sometimes", "n"]).unwrap();
        let want = datafusion::arrow::compute::interleave_record_batch(&batches, &indices).unwrap();
        assert_eq!(got, want);
        assert_eq!(got.column(0).null_count(), 5);
        let sometimes: Vec<Option<&str>> = got.column(1).as_string::<i32>().iter().collect();
        assert_eq!(sometimes, vec![Some("y"), None, Some("x"), None, None]);
    }

    #[test]
    fn partition_values_are_utc_date_and_hour() {
        // 2019-12-04T21:00:00Z is 1575493200 s since the epoch.
        assert_eq!(
            partition_values(1_575_493_200 / 3600),
            ("2019-12-04".to_string(), "21".to_string())
        );
        assert_eq!(
            partition_dir("requests", 0),
            "requests/dt=1970-01-01/hour=00"
        );
    }
}
