//! Merging new rows into an hour's partition of `requests`, exactly once.
//!
//! The hour's open files at the table version a writer read are decoded, new
//! rows whose request id is already in the hour (or repeated among the new
//! rows) are dropped, the union is sorted by `api_key_id` then `timestamp`
//! and written as new files. The merge itself changes nothing visible: it
//! returns the Delta actions (remove the open files, add the new ones) that
//! the commit applies atomically, together with every other hour of the
//! batch. Re-merging the same rows is a no-op, so a crash at any point is
//! repaired by running again.
//!
//! A merge writes at most [`MAX_FILE_ROWS`] rows or about [`MAX_FILE_BYTES`]
//! of values per file, so that no column of one file passes Arrow's 2 GiB
//! offset limit however long its values are. A file that a limit closed is
//! *full* and stays as it is: later merges read only its request ids and
//! sums, a file at a time, and add files beside it. So a merge holds the new
//! rows and at most one file's worth of the hour, however large the hour
//! grows; each file is sorted, the hour as a whole is not. A file far larger
//! than the new rows is *settled* and treated the same way, so late logs of
//! an hour cost about their own size, not the hour's. Only `reingest`, which
//! takes rows out, rewrites full and settled files.
//!
//! Each new file comes with its `usage_hourly` rollup, computed from all of
//! its rows and named for it (see [`super::rollup`]); the files a merge keeps
//! keep theirs.

use super::Lake;
use super::delta::{self, DataFile, TableDef};
use super::layout::{partition_dir, partition_key};
use super::parquet_io::{BLOOM_COLUMN, decode_as, encode_by_column, requests_writer_properties};
use super::rollup;
use crate::error::{Error, Result};
use crate::schema::requests_schema;
use crate::time::Hour;
use chrono::DateTime;
use datafusion::arrow::array::new_null_array;
use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::array::{AsArray, TimestampMillisecondArray};
use datafusion::arrow::compute::interleave;
use datafusion::common::{HashMap, HashSet};
use datafusion::parquet::bloom_filter::Sbbf;
use datafusion::parquet::file::metadata::ParquetMetaDataReader;
use datafusion::parquet::file::metadata::SortingColumn;
use deltalake::kernel::Action;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use std::ops::Range;
use std::sync::Arc;

/// Rows per file of `requests`, at most.
pub(crate) const MAX_FILE_ROWS: usize = 1_000_000;

/// Bytes of string values per file of `requests`, about: a file ends at the
/// first row past it. Far below the 2 GiB that one Arrow string array holds.
pub(crate) const MAX_FILE_BYTES: usize = 128 << 20;

/// How large one file of an hour may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileLimits {
    pub(crate) rows: usize,
    /// Bytes of string values, about: a file ends at the first row past it.
    pub(crate) bytes: usize,
}

impl Default for FileLimits {
    fn default() -> Self {
        Self {
            rows: MAX_FILE_ROWS,
            bytes: MAX_FILE_BYTES,
        }
    }
}

/// What merging into one hour did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct MergeOutcome {
    pub(crate) partition: String,
    /// New rows written.
    pub(crate) rows_added: u64,
    /// New rows dropped because their request was already counted.
    pub(crate) duplicates: u64,
    /// Rows in the partition after the merge.
    pub(crate) rows_total: u64,
    /// Rows of objects read again (`reingest`) taken out before the merge.
    pub(crate) rows_replaced: u64,
}

/// One hour merged at one table version, ready to commit.
#[derive(Debug)]
pub(crate) struct HourMerge {
    pub(crate) hour: Hour,
    pub(crate) outcome: MergeOutcome,
    /// The hour's files the merge read: what it replaces.
    pub(crate) read: Vec<DataFile>,
    /// Remove the read files, add the new ones; empty when no row was new.
    pub(crate) actions: Vec<Action>,
    /// Where the new files were written (deleted if they are never committed).
    pub(crate) written: Vec<Path>,
    /// The hour's files once the actions are committed.
    pub(crate) files_after: Vec<String>,
    /// The rollups of the new files.
    pub(crate) rollups: Vec<rollup::FileRollup>,
}

/// Merges `new` rows (all of the same hour) into the hour as `current` holds
/// it (the hour's files at the version the commit will be made on), first
/// taking out the rows of the source objects in `replacing` (objects read
/// again). Writes the new files; commits nothing.
pub(crate) async fn merge_hour(
    lake: &Lake,
    table: &TableDef,
    hour: Hour,
    current: &[DataFile],
    new: Vec<RecordBatch>,
    replacing: Arc<std::collections::HashSet<String>>,
    limits: FileLimits,
) -> Result<HourMerge> {
    // Full files stay as they are (unless rows are taken out of the hour),
    // and so do files far larger than the new rows (late requests into an
    // hour already committed): each is read, a file at a time, only for its
    // request ids (and only when its bloom filters may hold a new one), and
    // the new rows go into a file beside them with a rollup of their own.
    let settled = settled_files(current, new.iter().map(RecordBatch::num_rows).sum());
    let (full, open): (Vec<&DataFile>, Vec<&DataFile>) = current
        .iter()
        .partition(|f| replacing.is_empty() && (is_full(f) || settled.contains(f.path.as_str())));
    let mut new = new;
    let mut kept = KeptFiles::default();
    for file in &full {
        let location = delta::file_location(lake, table, &file.path);
        if let Some(rows) = holds_none_of(lake, &location, file, &new).await {
            kept.rows += rows;
            continue;
        }
        let data = lake.store().get(&location).await?.bytes().await?;
        let scanned = crate::cpu::run(move || scan_kept(data, new))
            .await?
            .map_err(|e| Error::Lake(format!("{location}: {e}")))?;
        new = scanned.new;
        kept.rows += scanned.rows;
        kept.duplicates += scanned.duplicates;
    }
    let mut existing = Vec::new();
    for file in &open {
        let location = delta::file_location(lake, table, &file.path);
        let data = lake.store().get(&location).await?.bytes().await?;
        let rows = decode_as(data, &requests_schema());
        existing.extend(rows.map_err(|e| Error::Lake(format!("{location}: {e}")))?);
    }
    let merged = crate::cpu::run(move || merge_rows(existing, new, &replacing, hour, limits, kept))
        .await??;
    let partition = partition_key(hour);
    let dir = partition_dir(hour);
    let mut merge = HourMerge {
        hour,
        outcome: MergeOutcome {
            partition: format!("{}/{dir}", table.dir),
            rows_added: merged.added,
            duplicates: merged.duplicates,
            rows_total: merged.total,
            rows_replaced: merged.replaced,
        },
        read: current.to_vec(),
        actions: Vec::new(),
        written: Vec::new(),
        files_after: current.iter().map(|f| f.path.clone()).collect(),
        rollups: Vec::new(),
    };
    if !merged.rewrite {
        return Ok(merge);
    }
    merge.files_after = full.iter().map(|f| f.path.clone()).collect();
    for file in &open {
        merge
            .actions
            .push(delta::remove_action(table, &partition, file));
    }
    for file in merged.files {
        let prefix = if file.full { FULL_FILE } else { "part" };
        let path = format!("{dir}/{}", delta::new_file_name(prefix));
        let location = delta::file_location(lake, table, &path);
        let size = file.bytes.len();
        if let Err(e) = lake
            .store()
            .put(&location, PutPayload::from(file.bytes))
            .await
        {
            // The hour's files written so far are not the caller's to clean
            // up: it never sees this merge.
            discard(lake, &merge.written).await;
            return Err(e.into());
        }
        merge.written.push(location);
        merge.files_after.push(path.clone());
        merge.rollups.push(rollup::FileRollup {
            hour,
            requests_file: path.clone(),
            files: file.rollups.map(Some),
        });
        merge.actions.push(delta::add_action(
            table,
            &partition,
            path,
            size,
            Some(file.stats),
        ));
    }
    merge.files_after.sort();
    Ok(merge)
}

/// The name prefix of a file that a limit closed ([`FileLimits`]): later
/// merges into its hour add files beside it instead of rewriting it, so that
/// a merge holds at most one file's rows of the hour however large the hour
/// grows.
const FULL_FILE: &str = "full";

/// Whether a `requests` file was closed by a limit (see [`FULL_FILE`]).
fn is_full(file: &DataFile) -> bool {
    let name = file.path.rsplit('/').next().unwrap_or_default();
    name.strip_prefix(FULL_FILE)
        .is_some_and(|rest| rest.starts_with('-'))
}

/// How many times the new rows a file must hold for a merge to leave it as
/// it is (see [`settled_files`]).
const SETTLED_RATIO: usize = 4;

/// How many files that no limit closed a merge leaves as they are, at most.
const MAX_SETTLED: usize = 3;

/// The files of an hour that no limit closed and that a merge of `new_rows`
/// leaves as they are: the largest [`MAX_SETTLED`] of those holding at least
/// [`SETTLED_RATIO`] times as many rows. Rewriting them would re-encode
/// mostly old rows for a few new ones (late logs of an hour committed long
/// ago); the smaller files are merged with the new rows instead. So a merge
/// rewrites a few times its new rows at most, and an hour holds at most
/// `MAX_SETTLED + 1` files besides its full ones.
fn settled_files(current: &[DataFile], new_rows: usize) -> HashSet<&str> {
    let floor = new_rows.saturating_mul(SETTLED_RATIO).max(1);
    let mut settled: Vec<(usize, &str)> = current
        .iter()
        .filter(|f| !is_full(f))
        .filter_map(|f| {
            f.rows
                .filter(|&rows| rows >= floor)
                .map(|rows| (rows, f.path.as_str()))
        })
        .collect();
    settled.sort_unstable_by(|a, b| b.cmp(a));
    settled
        .into_iter()
        .take(MAX_SETTLED)
        .map(|(_, path)| path)
        .collect()
}

/// What the files a merge keeps as they are (full or settled) hold, as far
/// as the merge needs to know.
#[derive(Default)]
struct KeptFiles {
    rows: u64,
    /// New rows dropped because a kept file holds their request.
    duplicates: u64,
}

/// One file kept as it is (full or settled), read for a merge.
struct ScannedKept {
    /// The new rows whose request the file does not hold.
    new: Vec<RecordBatch>,
    rows: u64,
    duplicates: u64,
}

/// The columns of a file that identify its requests.
const ID_COLUMNS: [&str; 3] = ["x_edge_request_id", "source_object", "source_line"];

/// Reads a kept file's request ids, and drops the new rows whose request it
/// already holds.
fn scan_kept(data: bytes::Bytes, new: Vec<RecordBatch>) -> Result<ScannedKept> {
    let rows = super::parquet_io::decode_columns(data, &ID_COLUMNS)?;
    let mut held: HashSet<RequestKey<'_>> =
        HashSet::with_capacity(rows.iter().map(RecordBatch::num_rows).sum());
    for batch in &rows {
        held.extend(request_keys(batch)?);
    }
    let mut duplicates = 0u64;
    let mut kept = Vec::with_capacity(new.len());
    for batch in new {
        let keep: datafusion::arrow::array::BooleanArray = request_keys(&batch)?
            .iter()
            .map(|key| Some(!held.contains(key)))
            .collect();
        let dropped = keep.false_count();
        if dropped == 0 {
            kept.push(batch);
            continue;
        }
        duplicates += dropped as u64;
        let filtered = datafusion::arrow::compute::filter_record_batch(&batch, &keep)?;
        if filtered.num_rows() > 0 {
            kept.push(filtered);
        }
    }
    Ok(ScannedKept {
        new: kept,
        rows: rows.iter().map(|b| b.num_rows() as u64).sum(),
        duplicates,
    })
}

/// The rows of a kept file, when its bloom filters show that it holds none
/// of the `new` rows' requests, so it need not be read: every new row has a
/// request id and no row group's filter may hold one. `None` when the file
/// must be read to know (a possible match, a new row identified by its
/// origin, a file written without filters, or one that cannot be read here,
/// which the full read then reports).
async fn holds_none_of(
    lake: &Lake,
    location: &Path,
    file: &DataFile,
    new: &[RecordBatch],
) -> Option<u64> {
    let mut ids = Vec::with_capacity(new.len());
    for batch in new {
        let column = batch.column_by_name(BLOOM_COLUMN)?.as_string_opt::<i32>()?;
        if column.null_count() > 0 {
            return None;
        }
        ids.push(column);
    }
    // The footer, then each row group's filter: three small reads of a file
    // of any size (the bloom filters sit before the footer).
    let store = lake.store();
    let size = u64::try_from(file.size).ok()?;
    let tail = store
        .get_range(location, size.checked_sub(8)?..size)
        .await
        .ok()?;
    let footer_len = u64::from(u32::from_le_bytes(tail.get(..4)?.try_into().ok()?));
    let footer_start = size.checked_sub(8 + footer_len)?;
    let footer = store
        .get_range(location, footer_start..size - 8)
        .await
        .ok()?;
    let metadata = ParquetMetaDataReader::decode_metadata(&footer).ok()?;
    let leaf = metadata
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.path().string() == BLOOM_COLUMN)?;
    for group in metadata.row_groups() {
        let chunk = group.column(leaf);
        let start = u64::try_from(chunk.bloom_filter_offset()?).ok()?;
        let len = u64::try_from(chunk.bloom_filter_length()?).ok()?;
        let bytes = store.get_range(location, start..start + len).await.ok()?;
        let filter = Sbbf::from_bytes(&bytes).ok()?;
        if ids
            .iter()
            .any(|c| c.iter().flatten().any(|id| filter.check(id)))
        {
            return None;
        }
    }
    u64::try_from(metadata.file_metadata().num_rows()).ok()
}

/// Deletes files that were written but will never be committed (a merge
/// redone at a newer version). Best effort: a file left behind is in no
/// table version, invisible to every reader, and `maintain` vacuums it.
pub(crate) async fn discard(lake: &Lake, written: &[Path]) {
    for location in written {
        if let Err(e) = lake.store().delete(location).await {
            tracing::debug!(%location, error = %e, "could not delete an uncommitted file");
        }
    }
}

/// A file a merge wrote.
struct NewFile {
    bytes: bytes::Bytes,
    /// Its Delta statistics.
    stats: String,
    /// Closed by a limit (see [`FULL_FILE`]).
    full: bool,
    /// Its rollups, in the order of [`rollup::ROLLUPS`].
    rollups: [bytes::Bytes; 2],
}

struct Merged {
    /// The new files; empty when no row was added.
    files: Vec<NewFile>,
    /// True when the hour's files are replaced: rows were added or taken
    /// out (all of them, when `files` is empty).
    rewrite: bool,
    added: u64,
    duplicates: u64,
    total: u64,
    replaced: u64,
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
    replacing: &std::collections::HashSet<String>,
    hour: Hour,
    limits: FileLimits,
    full: KeptFiles,
) -> Result<Merged> {
    let schema = requests_schema();
    let (existing, replaced) = without_objects(existing, replacing)?;
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
    let (mut added, mut duplicates) = (0u64, full.duplicates);
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
    let total = existing_rows as u64 + full.rows + added;
    let batches: Vec<&RecordBatch> = existing.iter().chain(&new).collect();
    if added == 0 && replaced == 0 {
        // Nothing new: the hour stays as it is.
        return Ok(Merged {
            files: Vec::new(),
            rewrite: false,
            added,
            duplicates,
            total,
            replaced,
        });
    }
    if total == 0 {
        // Every row was taken out: no files (and no rollups).
        return Ok(Merged {
            files: Vec::new(),
            rewrite: true,
            added,
            duplicates,
            total,
            replaced,
        });
    }
    let sorted_rows = sort_by_key_then_time(&batches, kept)?;
    // The rollup's columns (and the timestamps, for the files' statistics)
    // are gathered into the new order first; the files' other columns one at
    // a time as they are encoded, so the hour's reordered rows are never all
    // in memory at once.
    let mut gathered_columns = rollup::REQUESTS_COLUMNS.to_vec();
    gathered_columns.push("timestamp");
    let gathered = interleave_columns(&batches, &sorted_rows, &gathered_columns)?;
    let sorted_on = |column_idx| SortingColumn {
        column_idx,
        descending: false,
        nulls_first: false,
    };
    let chunks = file_chunks(&batches, &sorted_rows, limits);
    let mut files = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.iter().enumerate() {
        let file = encode_by_column(
            &schema,
            chunk.len(),
            requests_writer_properties(Some(vec![sorted_on(1), sorted_on(0)]), chunk.len()),
            |column, rows| {
                let rows = chunk.start + rows.start..chunk.start + rows.end;
                match gathered.column_by_name(schema.field(column).name()) {
                    Some(gathered) => Ok(gathered.slice(rows.start, rows.len())),
                    None => interleave_column(&batches, column, &sorted_rows[rows]),
                }
            },
        )?;
        let rows = gathered.slice(chunk.start, chunk.len());
        files.push(NewFile {
            bytes: file,
            stats: file_stats(&rows)?,
            // Every file but the last ends at a limit.
            full: i + 1 < chunks.len(),
            rollups: rollup::encode_hour(hour, &[rows])?,
        });
    }
    Ok(Merged {
        files,
        rewrite: true,
        added,
        duplicates,
        total,
        replaced,
    })
}

/// The batches without the rows of the source objects in `objects`, and how
/// many rows were taken out.
fn without_objects(
    batches: Vec<RecordBatch>,
    objects: &std::collections::HashSet<String>,
) -> Result<(Vec<RecordBatch>, u64)> {
    if objects.is_empty() {
        return Ok((batches, 0));
    }
    let mut kept = Vec::with_capacity(batches.len());
    let mut removed = 0u64;
    for batch in batches {
        let sources = batch
            .column_by_name("source_object")
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| Error::Lake("requests file lacks a source_object column".into()))?;
        let keep: datafusion::arrow::array::BooleanArray = sources
            .iter()
            .map(|s| Some(!s.is_some_and(|s| objects.contains(s))))
            .collect();
        let dropped = keep.false_count() as u64;
        if dropped == 0 {
            kept.push(batch);
            continue;
        }
        removed += dropped;
        let filtered = datafusion::arrow::compute::filter_record_batch(&batch, &keep)?;
        if filtered.num_rows() > 0 {
            kept.push(filtered);
        }
    }
    Ok((kept, removed))
}

/// Splits the sorted rows into files of at most `limits.rows` rows and about
/// `limits.bytes` of string values each.
fn file_chunks(
    batches: &[&RecordBatch],
    sorted_rows: &[(usize, usize)],
    limits: FileLimits,
) -> Vec<Range<usize>> {
    let string_bytes = |b: &RecordBatch| -> usize {
        b.columns()
            .iter()
            .filter_map(|c| c.as_string_opt::<i32>())
            .map(|s| s.value_data().len())
            .sum()
    };
    let total_bytes: usize = batches.iter().map(|b| string_bytes(b)).sum();
    let n = sorted_rows.len();
    if total_bytes <= limits.bytes {
        return (0..n)
            .step_by(limits.rows)
            .map(|start| start..n.min(start + limits.rows))
            .collect();
    }
    // Large values: each row's string bytes decide where files end.
    let row_bytes: Vec<Vec<u32>> = batches
        .iter()
        .map(|b| {
            let mut sizes = vec![0u32; b.num_rows()];
            for strings in b.columns().iter().filter_map(|c| c.as_string_opt::<i32>()) {
                for (row, window) in strings.value_offsets().windows(2).enumerate() {
                    sizes[row] = sizes[row].saturating_add((window[1] - window[0]) as u32);
                }
            }
            sizes
        })
        .collect();
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    for (i, &(b, row)) in sorted_rows.iter().enumerate() {
        if i > start && (bytes >= limits.bytes || i - start >= limits.rows) {
            chunks.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += row_bytes[b][row] as usize;
    }
    chunks.push(start..n);
    chunks
}

/// The columns whose range and null count a `requests` file's statistics in
/// the log hold ([`file_stats`]).
pub(crate) const STATS_COLUMNS: [&str; 2] = ["timestamp", "api_key_id"];

/// Delta statistics of a file from its gathered columns: row count, and the
/// range and null count of [`STATS_COLUMNS`], which readers skip files by.
fn file_stats(gathered: &RecordBatch) -> Result<String> {
    use datafusion::arrow::compute::{max, max_string, min, min_string};
    let lacks = |name: &str| Error::Lake(format!("merged rows lack column {name}"));
    let [time_column, key_column] = STATS_COLUMNS;
    let times = gathered
        .column_by_name(time_column)
        .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>())
        .ok_or_else(|| lacks(time_column))?;
    let keys = gathered
        .column_by_name(key_column)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| lacks(key_column))?;
    let instant = |ms: Option<i64>| {
        ms.and_then(DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    let mut min_values = serde_json::Map::new();
    let mut max_values = serde_json::Map::new();
    if let (Some(lo), Some(hi)) = (instant(min(times)), instant(max(times))) {
        min_values.insert(time_column.into(), lo.into());
        max_values.insert(time_column.into(), hi.into());
    }
    if let (Some(lo), Some(hi)) = (min_string(keys), max_string(keys)) {
        min_values.insert(key_column.into(), lo.into());
        max_values.insert(key_column.into(), hi.into());
    }
    Ok(serde_json::json!({
        "numRecords": gathered.num_rows(),
        "minValues": min_values,
        "maxValues": max_values,
        "nullCount": {time_column: times.null_count(), key_column: keys.null_count()},
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::parquet_io::{SMALL_FILE_ROWS, writer_properties};
    use datafusion::parquet::basic::ZstdLevel;

    #[test]
    fn merges_keep_the_largest_files_far_larger_than_their_rows() {
        let file = |path: &str, rows: Option<usize>| DataFile {
            path: path.into(),
            size: 1,
            rows,
        };
        let hour = [
            file("h/part-a.parquet", Some(50_000)),
            file("h/part-b.parquet", Some(400)),
            file("h/part-c.parquet", Some(399)),
            file("h/full-d.parquet", Some(1_000_000)),
            file("h/part-e.parquet", Some(9_000)),
            file("h/part-f.parquet", Some(700)),
            file("h/part-g.parquet", None),
        ];
        let settled = |new_rows| {
            let mut s: Vec<&str> = settled_files(&hour, new_rows).into_iter().collect();
            s.sort();
            s
        };
        // 100 new rows: files of 400 rows or more, the largest three; full
        // files are never counted among them, files without a count never settle.
        assert_eq!(
            settled(100),
            ["h/part-a.parquet", "h/part-e.parquet", "h/part-f.parquet"]
        );
        // 3,000 new rows: only files of 12,000 or more.
        assert_eq!(settled(3_000), ["h/part-a.parquet"]);
        // As many new rows as the largest file: every file is merged.
        assert!(settled(50_000).is_empty());
        // No new rows (a merge that only checks): every counted file stays.
        assert_eq!(settled(0).len(), 3);
    }

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

    /// The `requests` file schema before [`LATER_COLUMNS`] were added.
    fn schema_before_later_columns() -> datafusion::arrow::datatypes::SchemaRef {
        use crate::schema::LATER_COLUMNS;
        let schema = requests_schema();
        let fields: Vec<_> = schema
            .fields()
            .iter()
            .filter(|f| !LATER_COLUMNS.contains(&f.name().as_str()))
            .cloned()
            .collect();
        Arc::new(datafusion::arrow::datatypes::Schema::new(fields))
    }

    /// Requests of one hour with these ids, every other column null.
    fn rows_with_ids(hour: Hour, ids: &[&str]) -> RecordBatch {
        let schema = requests_schema();
        let n = ids.len();
        let columns = schema
            .fields()
            .iter()
            .map(|f| -> ArrayRef {
                match f.name().as_str() {
                    "timestamp" => Arc::new(
                        TimestampMillisecondArray::from_iter_values(
                            (0..n as i64).map(|i| hour.start_millis() + i),
                        )
                        .with_timezone("UTC"),
                    ),
                    "api_key_id" => Arc::new(StringArray::from(vec![Some("k"); n])),
                    "x_edge_request_id" => Arc::new(StringArray::from(ids.to_vec())),
                    "source_object" => Arc::new(StringArray::from(vec!["o"; n])),
                    "source_line" => Arc::new(Int64Array::from_iter_values(0..n as i64)),
                    _ => new_null_array(f.data_type(), n),
                }
            })
            .collect();
        RecordBatch::try_new(schema, columns).unwrap()
    }

    /// A merge's file of late requests is Snappy below `SMALL_FILE_ROWS`
    /// rows and zstd from there, every column, and holds every row either way.
    #[test]
    fn small_request_files_are_snappy_and_the_others_zstd() {
        use datafusion::parquet::basic::Compression;
        use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
        use std::collections::HashSet;
        let hour = Hour::from_epoch_hours(480_000);
        for (rows, codec) in [
            (500, Compression::SNAPPY),
            (SMALL_FILE_ROWS - 1, Compression::SNAPPY),
            (
                SMALL_FILE_ROWS,
                Compression::ZSTD(ZstdLevel::try_new(1).unwrap()),
            ),
        ] {
            let ids: Vec<String> = (0..rows).map(|i| format!("id-{i}")).collect();
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            let merged = merge_rows(
                Vec::new(),
                vec![rows_with_ids(hour, &ids)],
                &HashSet::new(),
                hour,
                FileLimits::default(),
                KeptFiles::default(),
            )
            .unwrap();
            assert_eq!((merged.files.len(), merged.added), (1, rows as u64));
            let reader = SerializedFileReader::new(merged.files[0].bytes.clone()).unwrap();
            assert_eq!(reader.metadata().file_metadata().num_rows(), rows as i64);
            let chunks: Vec<_> = reader
                .metadata()
                .row_groups()
                .iter()
                .flat_map(|g| g.columns())
                .collect();
            assert_eq!(
                chunks.len(),
                requests_schema().fields().len(),
                "{rows} rows"
            );
            for chunk in chunks {
                assert_eq!(
                    chunk.compression(),
                    codec,
                    "{rows} rows: {}",
                    chunk.column_path()
                );
            }
        }
    }

    /// A kept file is skipped by its bloom filters only when no new request
    /// may be in it; anything else sends the merge to read it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kept_files_are_skipped_only_when_their_filters_rule_out_every_new_request() {
        use crate::lake::REQUESTS_TABLE;
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open_or_create(dir.path().to_str().unwrap(), &Default::default())
            .await
            .unwrap();
        let hour = Hour::from_epoch_hours(480_000);
        let held: Vec<String> = (0..2_000).map(|i| format!("held-{i}")).collect();
        let held: Vec<&str> = held.iter().map(String::as_str).collect();
        let put = async |name: &str, properties| {
            let bytes = super::super::parquet_io::encode(
                &requests_schema(),
                &[rows_with_ids(hour, &held)],
                properties,
            )
            .unwrap();
            let path = format!("{}/{name}", partition_dir(hour));
            let location = delta::file_location(&lake, &REQUESTS_TABLE, &path);
            let size = bytes.len() as i64;
            lake.store()
                .put(&location, PutPayload::from(bytes))
                .await
                .unwrap();
            (
                location,
                DataFile {
                    path,
                    size,
                    rows: Some(held.len()),
                },
            )
        };
        let properties = requests_writer_properties(None, held.len());
        let (location, file) = put("part-a.parquet", properties).await;
        let new = |ids: &[&str]| vec![rows_with_ids(hour, ids)];
        let fresh = ["new-1", "new-2", "new-3"];
        assert_eq!(
            holds_none_of(&lake, &location, &file, &new(&fresh)).await,
            Some(2_000)
        );
        // One request the file holds, among new ones.
        let some_held = new(&["new-1", "held-1234", "new-3"]);
        assert_eq!(
            holds_none_of(&lake, &location, &file, &some_held).await,
            None
        );
        // A new row without an id is identified by its origin: read the file.
        let mut without_id = rows_with_ids(hour, &fresh);
        let index = without_id.schema().index_of("x_edge_request_id").unwrap();
        let mut columns = without_id.columns().to_vec();
        columns[index] = Arc::new(StringArray::from(vec![Some("new-1"), None, Some("new-3")]));
        without_id = RecordBatch::try_new(without_id.schema(), columns).unwrap();
        assert_eq!(
            holds_none_of(&lake, &location, &file, &[without_id]).await,
            None
        );
        // A file written without filters (an earlier release) is read.
        let unfiltered = datafusion::parquet::file::properties::WriterProperties::builder().build();
        let (location, file) = put("part-b.parquet", unfiltered).await;
        assert_eq!(
            holds_none_of(&lake, &location, &file, &new(&fresh)).await,
            None
        );
    }

    /// A lake whose `requests` table was made before a column was added:
    /// opening it for writing adds the column, and the hour's old files (which
    /// lack it) merge with new rows exactly.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_table_made_before_a_column_was_added_gets_it_and_its_files_merge() {
        use crate::lake::REQUESTS_TABLE;
        use crate::schema::PARTITION_COLUMNS;
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open_or_create(dir.path().to_str().unwrap(), &Default::default())
            .await
            .unwrap();
        const BEFORE: TableDef = TableDef {
            dir: crate::lake::layout::REQUESTS_DIR,
            file_schema: schema_before_later_columns,
            partition_by: &PARTITION_COLUMNS,
            stats_columns: &super::STATS_COLUMNS,
        };
        let hour = Hour::from_epoch_hours(480_000);
        let mut table = delta::open_or_create(&lake, &BEFORE).await.unwrap();
        let old_schema = schema_before_later_columns();
        let old_rows = rows_with_ids(hour, &["a", "b", "c"]);
        let indices: Vec<usize> = (0..old_schema.fields().len()).collect();
        let file = super::super::parquet_io::encode(
            &old_schema,
            &[old_rows.project(&indices).unwrap()],
            writer_properties(None),
        )
        .unwrap();
        let path = format!("{}/part-before.parquet", partition_dir(hour));
        let location = delta::file_location(&lake, &REQUESTS_TABLE, &path);
        let size = file.len();
        lake.store()
            .put(&location, PutPayload::from(file))
            .await
            .unwrap();
        let add = delta::add_action(&BEFORE, &partition_key(hour), path, size, None);
        let operation =
            delta::write_operation(&BEFORE, deltalake::protocol::SaveMode::Append, None);
        let committed = delta::commit(&mut table, vec![add], operation, Default::default())
            .await
            .unwrap();
        assert_eq!(committed, delta::Committed::At(1));
        let has_column = |table: &deltalake::DeltaTable| {
            let schema = table.snapshot().unwrap().schema();
            schema.field("conflicting_key_id").is_some()
        };
        assert!(!has_column(&table));

        let table = delta::open_or_create(&lake, &REQUESTS_TABLE).await.unwrap();
        assert!(has_column(&table), "the column is added");
        assert_eq!(table.version(), Some(2));
        let files = delta::files_by_partition(&table, &REQUESTS_TABLE).unwrap();
        let merged = merge_hour(
            &lake,
            &REQUESTS_TABLE,
            hour,
            &files[&partition_key(hour)],
            vec![rows_with_ids(hour, &["c", "d"])],
            Arc::default(),
            FileLimits::default(),
        )
        .await
        .unwrap();
        assert_eq!(
            (
                merged.outcome.rows_added,
                merged.outcome.duplicates,
                merged.outcome.rows_total
            ),
            (1, 1, 4)
        );
        // Opened again, nothing more is added.
        let again = delta::open_or_create(&lake, &REQUESTS_TABLE).await.unwrap();
        assert_eq!(again.version(), Some(2));
    }
}
