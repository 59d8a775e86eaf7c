//! The `usage_hourly` rollup: per hour, per API key, status, method, host,
//! endpoint template and edge location, the request count and bytes of that
//! hour's rows in `requests`.
//!
//! Those dimensions are what a meter's filter may use and still be answered
//! from the rollup (`billing::metering`); billing by key and status sums over
//! the rest. They extend this one table rather than a second rollup because
//! the guarantee below (one rollup per hour, paired with the exact set of
//! `requests` files it sums, rebuilt when stale) then holds for both uses
//! with one commit per hour, one pairing and one repair; the cost is more
//! rows for readers that need only key and status (measured in
//! bench/RESULTS.md).
//!
//! A rollup file is always computed from every row of its hour (see
//! [`super::partition`]), so it is exact by construction, and it is named for
//! the set of `requests` files it sums (`rollup-<digest>.parquet`, the digest
//! of their paths). `requests` and `usage_hourly` are two Delta tables, so an
//! hour's new files and its new rollup are two commits, the rollup second. A
//! reader pairs the two snapshots: a rollup counts only while its hour in
//! `requests` holds exactly the files it was computed from; an hour without
//! such a rollup (a writer crashed between the two commits, or another writer
//! changed the hour since) is summed from its raw rows instead. So edgemeter's
//! usage is exact at every instant, and the next ingest repairs what is stale
//! ([`repair`]). Usage and billing read rollups for whole hours and raw rows
//! only for the partial hours at the edges of a range.

use super::Lake;
use super::REQUESTS_TABLE;
use super::delta::{self, Committed, DataFile, TableDef};
use super::layout::{USAGE_HOURLY_DIR, hour_of_partition, partition_dir, partition_key};
use super::parquet_io::{decode_as, decode_columns, encode, writer_properties};
use crate::error::{Error, Result};
use crate::schema::PARTITION_COLUMNS;
use crate::time::Hour;
use bytes::Bytes;
use datafusion::arrow::array::{
    Array, AsArray, Int16Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{
    DataType, Field, Int16Type, Int64Type, Schema, SchemaRef, TimestampMillisecondType,
};
use datafusion::parquet::file::metadata::SortingColumn;
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;
use object_store::{ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

/// The rollup's Delta table.
pub(crate) const ROLLUP_TABLE: TableDef = TableDef {
    dir: USAGE_HOURLY_DIR,
    file_schema: rollup_schema,
    partition_by: &PARTITION_COLUMNS,
    stats_columns: &["api_key_id"],
};

/// The version of the rollup files' columns, part of their names' digest: a
/// rollup of another layout never pairs, so its hour is summed from raw rows
/// until [`repair`] writes it again in this one.
const LAYOUT: &str = "usage_hourly/2 key status method host endpoint edge";

/// The name of the rollup file that sums exactly these `requests` files.
pub(crate) fn file_name_for(requests_files: &[String]) -> String {
    let mut sorted: Vec<&str> = requests_files.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.insert(0, LAYOUT);
    let digest = Sha256::digest(sorted.join("\n").as_bytes());
    format!("rollup-{}.parquet", hex::encode(&digest[..16]))
}

/// The digest in a rollup file's name.
fn digest_of_name(name: &str) -> Option<&str> {
    name.strip_prefix("rollup-")?.strip_suffix(".parquet")
}

/// How a `requests` snapshot and a `usage_hourly` snapshot pair up.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Pairing {
    /// Rollup files (relative to their table) that sum their hour exactly.
    pub(crate) valid: Vec<String>,
    /// `requests` partitions (`[dt, hour]`) with no exact rollup.
    pub(crate) stale: Vec<Vec<String>>,
    /// Rollup files of each partition, valid or not (what a new one replaces).
    pub(crate) rollup_files: BTreeMap<Vec<String>, Vec<DataFile>>,
}

/// Pairs every `requests` hour with its rollup, if it has an exact one.
pub(crate) fn pair(requests: &DeltaTable, rollups: Option<&DeltaTable>) -> Result<Pairing> {
    let hours = delta::files_by_partition(requests, &REQUESTS_TABLE)?;
    let rollup_files = match rollups {
        Some(table) => delta::files_by_partition(table, &ROLLUP_TABLE)?,
        None => BTreeMap::new(),
    };
    let mut pairing = Pairing::default();
    for (partition, files) in &hours {
        let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
        let wanted = file_name_for(&paths);
        let exact = rollup_files.get(partition).and_then(|rollups| {
            rollups.iter().find(|r| {
                r.path.rsplit('/').next().and_then(digest_of_name) == digest_of_name(&wanted)
            })
        });
        match exact {
            Some(file) => pairing.valid.push(file.path.clone()),
            None => pairing.stale.push(partition.clone()),
        }
    }
    pairing.rollup_files = rollup_files;
    Ok(pairing)
}

/// A new rollup of one hour, summing exactly `requests_files`.
#[derive(Debug, Clone)]
pub(crate) struct HourRollup {
    pub(crate) hour: Hour,
    pub(crate) requests_files: Vec<String>,
    pub(crate) file: Bytes,
}

/// Commits new rollups of some hours: each replaces its hour's rollup files
/// in one `usage_hourly` commit. An hour whose `requests` files have changed
/// since its rollup was computed is left out (the writer that changed it
/// commits the newer rollup), so a slower writer never puts back an older sum.
pub(crate) async fn commit(
    lake: &Lake,
    requests: &mut DeltaTable,
    rollups: &mut DeltaTable,
    hours: Vec<HourRollup>,
) -> Result<()> {
    let mut written = HashMap::new();
    for rollup in &hours {
        let path = format!(
            "{}/{}",
            partition_dir(rollup.hour),
            file_name_for(&rollup.requests_files)
        );
        let location = delta::file_location(lake, &ROLLUP_TABLE, &path);
        lake.store()
            .put(&location, PutPayload::from(rollup.file.clone()))
            .await?;
        written.insert(rollup.hour, (path, rollup.file.len()));
    }
    for attempt in 0..delta::MAX_ATTEMPTS {
        delta::catch_up(requests).await?;
        let current = delta::files_by_partition(requests, &REQUESTS_TABLE)?;
        let existing = delta::files_by_partition(rollups, &ROLLUP_TABLE)?;
        let mut actions = Vec::new();
        for rollup in &hours {
            let partition = partition_key(rollup.hour);
            let mut now: Vec<String> = current
                .get(&partition)
                .map(|files| files.iter().map(|f| f.path.clone()).collect())
                .unwrap_or_default();
            now.sort();
            let mut summed = rollup.requests_files.clone();
            summed.sort();
            let Some((path, size)) = written.get(&rollup.hour).filter(|_| now == summed) else {
                continue;
            };
            let olds = existing.get(&partition).map(Vec::as_slice).unwrap_or(&[]);
            if olds.iter().any(|f| &f.path == path) {
                continue; // already committed (a retried run)
            }
            for old in olds {
                actions.push(delta::remove_action(&ROLLUP_TABLE, &partition, old));
            }
            actions.push(delta::add_action(
                &ROLLUP_TABLE,
                &partition,
                path.clone(),
                *size,
                None,
            ));
        }
        if actions.is_empty() {
            return Ok(());
        }
        let operation = delta::write_operation(&ROLLUP_TABLE, SaveMode::Overwrite, None);
        match delta::commit(rollups, actions, operation, HashMap::new()).await? {
            Committed::At(_) => return Ok(()),
            Committed::Conflict => delta::backoff(attempt).await,
        }
    }
    Err(Error::Lake(format!(
        "{}: gave up committing after {} attempts, each beaten by another writer",
        ROLLUP_TABLE.dir,
        delta::MAX_ATTEMPTS
    )))
}

/// The sums of one `requests` file of an hour, by key and status (a batch of
/// [`totals`]), read from the columns the rollup needs.
pub(crate) async fn sum_file(lake: &Lake, file: &DataFile, hour: Hour) -> Result<RecordBatch> {
    let location = delta::file_location(lake, &REQUESTS_TABLE, &file.path);
    let data = lake.store().get(&location).await?.bytes().await?;
    crate::cpu::run(move || {
        let rows = decode_columns(data, &REQUESTS_COLUMNS)
            .map_err(|e| Error::Lake(format!("{location}: {e}")))?;
        totals(hour, &rows, &[])
    })
    .await?
}

/// The sums of exactly these `requests` files of `hour`, when a rollup file
/// named for them exists: its name is a digest of the file set and its
/// content a function of their rows, so any file of that name holds them,
/// committed or not (a writer stopped between its two commits leaves it
/// right). `None` when there is none or it cannot be read.
pub(crate) async fn paired_sums(
    lake: &Lake,
    hour: Hour,
    requests_files: &[String],
) -> Option<RecordBatch> {
    if requests_files.is_empty() {
        return None;
    }
    let path = format!("{}/{}", partition_dir(hour), file_name_for(requests_files));
    let location = delta::file_location(lake, &ROLLUP_TABLE, &path);
    let data = lake.store().get(&location).await.ok()?.bytes().await.ok()?;
    let batches = crate::cpu::run(move || decode_as(data, &rollup_schema()))
        .await
        .ok()?
        .ok()?;
    datafusion::arrow::compute::concat_batches(&rollup_schema(), &batches).ok()
}

/// `whole` less `part` (both sums of [`totals`]' schema, `part` of rows that
/// `whole` counts), by group; groups left with no request are dropped. `None`
/// when `part` holds a group or a count that `whole` does not, which sums of
/// the same rows never do. Hints are kept from `whole` (a key's hint is the
/// same on all its rows).
pub(crate) fn difference(
    hour: Hour,
    whole: &RecordBatch,
    part: &RecordBatch,
) -> Result<Option<RecordBatch>> {
    let (w, p) = (SumRows::new(whole)?, SumRows::new(part)?);
    if !(w.is_sorted() && p.is_sorted()) {
        // Sums [`totals`] did not write: matched by a map instead.
        return difference_mapped(hour, whole, part);
    }
    let mut rest = Vec::with_capacity(w.len());
    let mut next = 0;
    for row in 0..w.len() {
        let group = w.group(row);
        let mut left = w.totals(row);
        if next < p.len() && p.group(next) < group {
            return Ok(None); // a group the whole does not hold
        }
        if next < p.len() && p.group(next) == group {
            let taken = p.totals(next);
            next += 1;
            left.requests -= taken.requests;
            left.bytes_out -= taken.bytes_out;
            left.bytes_in -= taken.bytes_in;
            if left.requests < 0 || left.bytes_out < 0 || left.bytes_in < 0 {
                return Ok(None);
            }
        }
        // No request left and bytes still counted: not sums of the same rows.
        if left.requests == 0 && (left.bytes_out, left.bytes_in) != (0, 0) {
            return Ok(None);
        }
        if left.requests > 0 {
            rest.push((group, left));
        }
    }
    if next < p.len() {
        return Ok(None);
    }
    // Nothing taken out (a late file beside files kept whole): the whole as
    // it is, when its rows are all of this hour.
    let starts = whole.column(0).as_primitive::<TimestampMillisecondType>();
    if p.len() == 0
        && rest.len() == w.len()
        && starts.null_count() == 0
        && starts.values().iter().all(|&t| t == hour.start_millis())
    {
        return Ok(Some(whole.clone()));
    }
    Ok(Some(sums_batch(hour, &rest)?))
}

/// [`difference`] of sums in any order, through an ordered map of groups;
/// [`difference`] has checked their schema.
fn difference_mapped(
    hour: Hour,
    whole: &RecordBatch,
    part: &RecordBatch,
) -> Result<Option<RecordBatch>> {
    type Key = (
        Option<String>,
        Option<i16>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    fn rows(batch: &RecordBatch) -> Vec<(Key, Option<String>, [i64; 3])> {
        let text = |i: usize| batch.column(i).as_string::<i32>();
        let at = |a: &StringArray, row: usize| a.is_valid(row).then(|| a.value(row).to_string());
        let (keys, hints, methods, hosts, endpoints, edges) =
            (text(1), text(2), text(7), text(8), text(9), text(10));
        let statuses = batch.column(3).as_primitive::<Int16Type>();
        let [requests, out, inn] = [4, 5, 6].map(|i| batch.column(i).as_primitive::<Int64Type>());
        (0..batch.num_rows())
            .map(|row| {
                let key = (
                    at(keys, row),
                    statuses.is_valid(row).then(|| statuses.value(row)),
                    at(methods, row),
                    at(hosts, row),
                    at(endpoints, row),
                    at(edges, row),
                );
                let sums = [requests.value(row), out.value(row), inn.value(row)];
                (key, at(hints, row), sums)
            })
            .collect()
    }
    let mut groups: std::collections::BTreeMap<Key, (Option<String>, [i64; 3])> = rows(whole)
        .into_iter()
        .map(|(key, hint, sums)| (key, (hint, sums)))
        .collect();
    for (key, _, sums) in rows(part) {
        let Some((_, left)) = groups.get_mut(&key) else {
            return Ok(None);
        };
        for (l, s) in left.iter_mut().zip(sums) {
            *l -= s;
        }
        if left.iter().any(|&v| v < 0) {
            return Ok(None);
        }
    }
    // A group with no request left and bytes still counted: not sums of the
    // same rows.
    if groups.values().any(|(_, s)| s[0] == 0 && s[1..] != [0, 0]) {
        return Ok(None);
    }
    groups.retain(|_, (_, sums)| sums[0] > 0);
    let start = hour.start_millis();
    let values = || groups.values();
    let keys = || groups.keys();
    let columns: Vec<Arc<dyn Array>> = vec![
        Arc::new(
            TimestampMillisecondArray::from_iter_values(keys().map(|_| start)).with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter(keys().map(|k| k.0.as_deref()))),
        Arc::new(StringArray::from_iter(values().map(|v| v.0.as_deref()))),
        Arc::new(Int16Array::from_iter(keys().map(|k| k.1))),
        Arc::new(Int64Array::from_iter_values(values().map(|v| v.1[0]))),
        Arc::new(Int64Array::from_iter_values(values().map(|v| v.1[1]))),
        Arc::new(Int64Array::from_iter_values(values().map(|v| v.1[2]))),
        Arc::new(StringArray::from_iter(keys().map(|k| k.2.as_deref()))),
        Arc::new(StringArray::from_iter(keys().map(|k| k.3.as_deref()))),
        Arc::new(StringArray::from_iter(keys().map(|k| k.4.as_deref()))),
        Arc::new(StringArray::from_iter(keys().map(|k| k.5.as_deref()))),
    ];
    Ok(Some(RecordBatch::try_new(rollup_schema(), columns)?))
}

/// Rebuilds the rollup of every `requests` hour that has no exact one (a
/// crash between an hour's two commits, or a migrated lake); returns the
/// number of hours rolled up.
pub(crate) async fn repair(
    lake: &Lake,
    requests: &mut DeltaTable,
    rollups: &mut DeltaTable,
) -> Result<u64> {
    let pairing = pair(requests, Some(rollups))?;
    let hours = delta::files_by_partition(requests, &REQUESTS_TABLE)?;
    let mut built = Vec::new();
    for partition in pairing.stale {
        let (Some(hour), Some(files)) = (hour_of_partition(&partition), hours.get(&partition))
        else {
            continue;
        };
        // A file at a time, so that an hour of any size is summed in the
        // memory of one file's rollup columns.
        let mut partial = Vec::with_capacity(files.len());
        for file in files {
            partial.push(sum_file(lake, file, hour).await?);
        }
        let file = crate::cpu::run(move || encode_hour_with(hour, &[], &partial)).await??;
        built.push(HourRollup {
            hour,
            requests_files: files.iter().map(|f| f.path.clone()).collect(),
            file,
        });
    }
    let n = built.len() as u64;
    for chunk in built.chunks(256) {
        commit(lake, requests, rollups, chunk.to_vec()).await?;
    }
    Ok(n)
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("hour_start", crate::schema::timestamp_type(), false),
        Field::new("api_key_id", DataType::Utf8, true),
        Field::new("api_key_hint", DataType::Utf8, true),
        Field::new("sc_status", DataType::Int16, true),
        Field::new("requests", DataType::Int64, false),
        Field::new("bytes_out", DataType::Int64, false),
        Field::new("bytes_in", DataType::Int64, false),
        // Added with meters; tables made before are given them when a writer
        // opens them (their older files are of another layout and never pair).
        Field::new("cs_method", DataType::Utf8, true),
        Field::new("host", DataType::Utf8, true),
        Field::new("endpoint", DataType::Utf8, true),
        Field::new("x_edge_location", DataType::Utf8, true),
    ]))
});

/// The schema of the Parquet files under `usage_hourly/` (without partition columns).
pub fn rollup_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// A rollup row's group: API key id, status, method, host, endpoint template
/// and edge location, the texts as ids of an [`Interner`] (so that a row's
/// group hashes as a few integers).
type Group = (
    Option<u32>,
    Option<i16>,
    Option<u32>,
    Option<u32>,
    Option<u32>,
    Option<u32>,
);

#[derive(Default)]
struct Totals<'a> {
    hint: Option<&'a str>,
    requests: i64,
    bytes_out: i64,
    bytes_in: i64,
}

impl<'a> Totals<'a> {
    fn add(&mut self, other: &Totals<'a>) {
        self.hint = self.hint.max(other.hint);
        self.requests += other.requests;
        self.bytes_out += other.bytes_out;
        self.bytes_in += other.bytes_in;
    }
}

/// The texts of a rollup's groups, each held once and named by an id.
/// Hosts are lowercased and paths made endpoint templates in a reused
/// buffer, so summing allocates per distinct text, not per row.
#[derive(Default)]
struct Interner {
    ids: datafusion::common::HashMap<String, u32>,
    names: Vec<String>,
    buffer: String,
}

impl Interner {
    fn intern(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(text.to_string());
        self.ids.insert(text.to_string(), id);
        id
    }

    /// The host a meter's filter matches: lowercased as SQL's `lower` does
    /// (see `billing::meters::HOST_EXPR`).
    fn host(&mut self, logged: &str) -> u32 {
        if !logged.is_ascii() {
            return self.intern(&logged.to_lowercase());
        }
        if !logged.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.intern(logged);
        }
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        buffer.push_str(logged);
        buffer.make_ascii_lowercase();
        let id = self.intern(&buffer);
        self.buffer = buffer;
        id
    }

    /// The endpoint template of a `cs_uri_stem`.
    fn endpoint(&mut self, stem: &str) -> u32 {
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        crate::schema::endpoint::endpoint_template_into(stem, &mut buffer);
        let id = self.intern(&buffer);
        self.buffer = buffer;
        id
    }

    fn name(&self, id: Option<u32>) -> Option<&str> {
        id.map(|id| self.names[id as usize].as_str())
    }
}

/// A batch of sums (the rollup's schema) read row by row.
struct SumRows<'a> {
    keys: &'a StringArray,
    hints: &'a StringArray,
    statuses: &'a Int16Array,
    sums: [&'a Int64Array; 3],
    dims: [&'a StringArray; 4],
}

impl<'a> SumRows<'a> {
    fn new(batch: &'a RecordBatch) -> Result<Self> {
        if batch.schema() != rollup_schema() {
            return Err(Error::Lake(
                "sums of another schema than the rollup's".into(),
            ));
        }
        let text = |i: usize| batch.column(i).as_string::<i32>();
        Ok(Self {
            keys: text(1),
            hints: text(2),
            statuses: batch.column(3).as_primitive::<Int16Type>(),
            sums: [4, 5, 6].map(|i| batch.column(i).as_primitive::<Int64Type>()),
            dims: [7, 8, 9, 10].map(text),
        })
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    fn group(&self, row: usize) -> GroupText<'a> {
        let [methods, hosts, endpoints, edges] = self.dims;
        (
            at(self.keys, row),
            self.statuses
                .is_valid(row)
                .then(|| self.statuses.value(row)),
            at(methods, row),
            at(hosts, row),
            at(endpoints, row),
            at(edges, row),
        )
    }

    fn totals(&self, row: usize) -> Totals<'a> {
        let [requests, bytes_out, bytes_in] = self.sums.map(|c| c.value(row));
        Totals {
            hint: at(self.hints, row),
            requests,
            bytes_out,
            bytes_in,
        }
    }

    /// Each group once, in the rollup's order.
    fn is_sorted(&self) -> bool {
        (1..self.len()).all(|row| self.group(row - 1) < self.group(row))
    }
}

/// The id of a column's text in each row, looked up only when it differs
/// from the previous row's (rows are sorted by key; methods, hosts and edges
/// repeat).
struct Column<'a> {
    values: &'a StringArray,
    last: Option<(&'a str, u32)>,
    make: fn(&mut Interner, &str) -> u32,
}

impl<'a> Column<'a> {
    fn new(values: &'a StringArray, make: fn(&mut Interner, &str) -> u32) -> Self {
        Self {
            values,
            last: None,
            make,
        }
    }

    fn id(&mut self, row: usize, interner: &mut Interner) -> Option<u32> {
        let text = at(self.values, row)?;
        if let Some((last, id)) = self.last
            && last == text
        {
            return Some(id);
        }
        let id = (self.make)(interner, text);
        self.last = Some((text, id));
        Some(id)
    }
}

/// A text column's value in a row.
fn at(column: &StringArray, row: usize) -> Option<&str> {
    column.is_valid(row).then(|| column.value(row))
}

/// The columns of `requests` that [`encode_hour`] reads; it needs no others.
pub(crate) const REQUESTS_COLUMNS: [&str; 10] = [
    "api_key_id",
    "api_key_hint",
    "sc_status",
    "sc_bytes",
    "cs_bytes",
    "cs_method",
    "x_host_header",
    "cs_host",
    "cs_uri_stem",
    "x_edge_location",
];

/// Sums an hour's `requests` rows by group and encodes the result as one
/// Parquet file, sorted by key then status.
pub(crate) fn encode_hour(hour: Hour, batches: &[RecordBatch]) -> Result<Bytes> {
    encode_hour_with(hour, batches, &[])
}

/// As [`encode_hour`], adding `partial` sums (batches of [`totals`]) of rows
/// that are not in `batches`.
pub(crate) fn encode_hour_with(
    hour: Hour,
    batches: &[RecordBatch],
    partial: &[RecordBatch],
) -> Result<Bytes> {
    let batch = totals(hour, batches, partial)?;
    let sorted_on = |column_idx| SortingColumn {
        column_idx,
        descending: false,
        nulls_first: true,
    };
    encode(
        &rollup_schema(),
        &[batch],
        writer_properties(Some(vec![sorted_on(1), sorted_on(3)])),
    )
}

/// The sums of `batches` (`requests` rows, of which only
/// [`REQUESTS_COLUMNS`] are read) and of `partial` (earlier sums), by
/// [`Group`]: one row of the rollup's schema per group, sorted by key,
/// status, method, host, endpoint and edge, nulls first.
///
/// Sums of rows can be summed again: an hour too large to hold at once is
/// summed a file at a time.
pub(crate) fn totals(
    hour: Hour,
    batches: &[RecordBatch],
    partial: &[RecordBatch],
) -> Result<RecordBatch> {
    if partial.is_empty() {
        return totals_hashed(hour, batches, &[]);
    }
    // Earlier sums come sorted (this function wrote them): the new rows are
    // summed alone and merged in, in one pass, without hashing or sorting
    // the hour's groups again. A late file into an hour costs its own rows.
    let fresh = match batches.is_empty() {
        true => None,
        false => Some(totals_hashed(hour, batches, &[])?),
    };
    let sums = partial.iter().chain(&fresh).map(SumRows::new);
    let sums = sums.collect::<Result<Vec<_>>>()?;
    if !sums.iter().all(SumRows::is_sorted) {
        return totals_hashed(hour, batches, partial);
    }
    let mut at = vec![0; sums.len()];
    let mut merged = Vec::with_capacity(sums.iter().map(SumRows::len).max().unwrap_or(0));
    loop {
        let next = sums
            .iter()
            .zip(&at)
            .filter(|(rows, row)| **row < rows.len())
            .map(|(rows, &row)| rows.group(row))
            .min();
        let Some(group) = next else {
            break;
        };
        let mut sum = Totals::default();
        for (rows, row) in sums.iter().zip(at.iter_mut()) {
            if *row < rows.len() && rows.group(*row) == group {
                sum.add(&rows.totals(*row));
                *row += 1;
            }
        }
        merged.push((group, sum));
    }
    sums_batch(hour, &merged)
}

/// [`totals`] by hashing every row's group, then sorting the groups;
/// [`totals`] has checked the schema of `partial`.
fn totals_hashed(
    hour: Hour,
    batches: &[RecordBatch],
    partial: &[RecordBatch],
) -> Result<RecordBatch> {
    let mut groups: datafusion::common::HashMap<Group, Totals<'_>> = Default::default();
    let mut interner = Interner::default();
    for batch in partial {
        let hints = batch.column(2).as_string::<i32>();
        let statuses = batch.column(3).as_primitive::<Int16Type>();
        let [requests, bytes_out, bytes_in] =
            [4, 5, 6].map(|i| batch.column(i).as_primitive::<Int64Type>());
        let [keys, methods, hosts, endpoints, edges] = [1, 7, 8, 9, 10]
            .map(|i| Column::new(batch.column(i).as_string::<i32>(), Interner::intern));
        let mut columns = [keys, methods, hosts, endpoints, edges];
        for row in 0..batch.num_rows() {
            let status = statuses.is_valid(row).then(|| statuses.value(row));
            let [key, method, host, endpoint, edge] =
                columns.each_mut().map(|c| c.id(row, &mut interner));
            let group = (key, status, method, host, endpoint, edge);
            groups.entry(group).or_default().add(&Totals {
                hint: at(hints, row),
                requests: requests.value(row),
                bytes_out: bytes_out.value(row),
                bytes_in: bytes_in.value(row),
            });
        }
    }
    for batch in batches {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| Error::Lake(format!("requests rows lack column {name}")))
        };
        let text = |name: &str| -> Result<&StringArray> { Ok(column(name)?.as_string::<i32>()) };
        let hints = column("api_key_hint")?.as_string::<i32>();
        let statuses = column("sc_status")?.as_primitive::<Int16Type>();
        let sc_bytes = column("sc_bytes")?.as_primitive::<Int64Type>();
        let cs_bytes = column("cs_bytes")?.as_primitive::<Int64Type>();
        let host_headers = text("x_host_header")?;
        let mut keys = Column::new(text("api_key_id")?, Interner::intern);
        let mut methods = Column::new(text("cs_method")?, Interner::intern);
        let mut headers = Column::new(host_headers, Interner::host);
        let mut cs_hosts = Column::new(text("cs_host")?, Interner::host);
        let mut stems = Column::new(text("cs_uri_stem")?, Interner::endpoint);
        let mut edges = Column::new(text("x_edge_location")?, Interner::intern);
        // Rows come sorted by key, so consecutive rows often share their
        // group: each run of them is summed here and added to `groups` once.
        let mut run: Option<(Group, Totals<'_>)> = None;
        for row in 0..batch.num_rows() {
            let status = statuses.is_valid(row).then(|| statuses.value(row));
            let host = match host_headers.is_valid(row) {
                true => headers.id(row, &mut interner),
                false => cs_hosts.id(row, &mut interner),
            };
            let group = (
                keys.id(row, &mut interner),
                status,
                methods.id(row, &mut interner),
                host,
                stems.id(row, &mut interner),
                edges.id(row, &mut interner),
            );
            if run.as_ref().is_some_and(|(g, _)| *g != group)
                && let Some((g, totals)) = run.take()
            {
                groups.entry(g).or_default().add(&totals);
            }
            let totals = &mut run.get_or_insert_with(|| (group, Totals::default())).1;
            totals.requests += 1;
            if sc_bytes.is_valid(row) {
                totals.bytes_out += sc_bytes.value(row);
            }
            if cs_bytes.is_valid(row) {
                totals.bytes_in += cs_bytes.value(row);
            }
            if hints.is_valid(row) {
                totals.hint = totals.hint.max(Some(hints.value(row)));
            }
        }
        if let Some((g, totals)) = run {
            groups.entry(g).or_default().add(&totals);
        }
    }
    // Sorted by every part of the group, nulls (None) first.
    let mut groups: Vec<_> = groups
        .into_iter()
        .map(|((key, status, method, host, endpoint, edge), totals)| {
            let group = (
                interner.name(key),
                status,
                interner.name(method),
                interner.name(host),
                interner.name(endpoint),
                interner.name(edge),
            );
            (group, totals)
        })
        .collect();
    groups.sort_unstable_by_key(|(group, _)| *group);
    sums_batch(hour, &groups)
}

/// A group's texts, in the order rollup rows are sorted in: key, status,
/// method, host, endpoint and edge, nulls (`None`) first.
type GroupText<'a> = (
    Option<&'a str>,
    Option<i16>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

/// The rollup's rows of `groups` (sorted) for `hour`.
fn sums_batch(hour: Hour, groups: &[(GroupText<'_>, Totals<'_>)]) -> Result<RecordBatch> {
    let keys = || groups.iter().map(|(k, _)| k);
    let values = || groups.iter().map(|(_, v)| v);
    let start = hour.start_millis();
    let columns: Vec<Arc<dyn Array>> = vec![
        Arc::new(
            TimestampMillisecondArray::from_iter_values(keys().map(|_| start)).with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter(keys().map(|g| g.0))),
        Arc::new(StringArray::from_iter(values().map(|t| t.hint))),
        Arc::new(Int16Array::from_iter(keys().map(|g| g.1))),
        Arc::new(Int64Array::from_iter_values(values().map(|t| t.requests))),
        Arc::new(Int64Array::from_iter_values(values().map(|t| t.bytes_out))),
        Arc::new(Int64Array::from_iter_values(values().map(|t| t.bytes_in))),
        Arc::new(StringArray::from_iter(keys().map(|g| g.2))),
        Arc::new(StringArray::from_iter(keys().map(|g| g.3))),
        Arc::new(StringArray::from_iter(keys().map(|g| g.4))),
        Arc::new(StringArray::from_iter(keys().map(|g| g.5))),
    ];
    Ok(RecordBatch::try_new(rollup_schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::parquet_io::decode;
    use crate::schema::requests_schema;
    use datafusion::arrow::array::new_null_array;

    /// A `requests` batch with only the columns the rollup reads filled in.
    fn rows(keys: &[Option<&str>], statuses: &[Option<i16>], bytes: &[Option<i64>]) -> RecordBatch {
        let schema = requests_schema();
        let n = keys.len();
        let columns = schema
            .fields()
            .iter()
            .map(|f| -> Arc<dyn Array> {
                match f.name().as_str() {
                    "timestamp" => {
                        Arc::new(TimestampMillisecondArray::from(vec![0; n]).with_timezone("UTC"))
                    }
                    "api_key_id" => Arc::new(StringArray::from(keys.to_vec())),
                    "api_key_hint" => Arc::new(StringArray::from(
                        keys.iter().map(|k| k.map(|k| &k[..1])).collect::<Vec<_>>(),
                    )),
                    "sc_status" => Arc::new(Int16Array::from(statuses.to_vec())),
                    "sc_bytes" => Arc::new(Int64Array::from(bytes.to_vec())),
                    "cs_bytes" => Arc::new(Int64Array::from(vec![Some(1); n])),
                    "source_object" => Arc::new(StringArray::from(vec!["o"; n])),
                    "source_line" => Arc::new(Int64Array::from(vec![1; n])),
                    _ => new_null_array(f.data_type(), n),
                }
            })
            .collect();
        RecordBatch::try_new(schema, columns).unwrap()
    }

    /// Groups come out in the order of their texts (bytes), nulls first,
    /// whatever order the rows and their texts were first seen in.
    #[test]
    fn groups_are_sorted_by_their_texts() {
        let keys = [
            Some("b"),
            Some("a"),
            None,
            Some("c"),
            Some("a"),
            Some("ab"),
            Some("b"),
        ];
        let statuses = [
            Some(200),
            Some(404),
            Some(200),
            None,
            Some(200),
            Some(500),
            Some(200),
        ];
        let batch = rows(&keys, &statuses, &[Some(1); 7]);
        let out = totals(Hour::from_epoch_hours(7), &[batch], &[]).unwrap();
        let got_keys = out.column(1).as_string::<i32>();
        let got_statuses = out.column(3).as_primitive::<Int16Type>();
        let got: Vec<(Option<&str>, Option<i16>, i64)> = (0..out.num_rows())
            .map(|i| {
                (
                    at(got_keys, i),
                    got_statuses.is_valid(i).then(|| got_statuses.value(i)),
                    out.column(4).as_primitive::<Int64Type>().value(i),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (None, Some(200), 1),
                (Some("a"), Some(200), 1),
                (Some("a"), Some(404), 1),
                (Some("ab"), Some(500), 1),
                (Some("b"), Some(200), 2),
                (Some("c"), None, 1),
            ]
        );
    }

    /// Sorted rows come in runs of one key and status; a run may also be
    /// broken by another status and resume, or continue into the next batch.
    #[test]
    fn runs_of_one_group_are_summed_once_each_and_merged() {
        let a = rows(
            &[
                Some("a"),
                Some("a"),
                Some("a"),
                Some("a"),
                Some("b"),
                Some("b"),
            ],
            &[
                Some(200),
                Some(200),
                Some(404),
                Some(200),
                Some(200),
                Some(200),
            ],
            &[Some(1), Some(2), Some(4), Some(8), Some(16), Some(32)],
        );
        let b = rows(&[Some("b"), None], &[Some(200), None], &[Some(64), None]);
        let out = decode(encode_hour(Hour::from_epoch_hours(7), &[a, b]).unwrap()).unwrap();
        let out = &out[0];
        let keys: Vec<Option<&str>> = out.column(1).as_string::<i32>().iter().collect();
        let statuses: Vec<Option<i16>> = out.column(3).as_primitive::<Int16Type>().iter().collect();
        let requests: Vec<i64> = out.column(4).as_primitive::<Int64Type>().values().to_vec();
        let bytes_out: Vec<i64> = out.column(5).as_primitive::<Int64Type>().values().to_vec();
        let hints: Vec<Option<&str>> = out.column(2).as_string::<i32>().iter().collect();
        assert_eq!(keys, vec![None, Some("a"), Some("a"), Some("b")]);
        assert_eq!(hints, vec![None, Some("a"), Some("a"), Some("b")]);
        assert_eq!(statuses, vec![None, Some(200), Some(404), Some(200)]);
        assert_eq!(requests, vec![1, 3, 1, 3]);
        assert_eq!(bytes_out, vec![0, 1 + 2 + 8, 4, 16 + 32 + 64]);
    }

    /// One request's grouped fields: method, Host header, cs(Host), path, edge.
    type Dims = (
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
    );

    /// [`rows`] of one key and status, with these methods, hosts, paths and edges.
    fn requests_with(dims: &[Dims]) -> RecordBatch {
        let n = dims.len();
        let base = rows(&vec![Some("k"); n], &vec![Some(200); n], &vec![Some(10); n]);
        let schema = base.schema();
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| -> Arc<dyn Array> {
                let pick = |get: fn(&Dims) -> Option<&'static str>| -> Arc<dyn Array> {
                    Arc::new(StringArray::from(dims.iter().map(get).collect::<Vec<_>>()))
                };
                match f.name().as_str() {
                    "cs_method" => pick(|d| d.0),
                    "x_host_header" => pick(|d| d.1),
                    "cs_host" => pick(|d| d.2),
                    "cs_uri_stem" => pick(|d| d.3),
                    "x_edge_location" => pick(|d| d.4),
                    _ => base.column(i).clone(),
                }
            })
            .collect();
        RecordBatch::try_new(schema, columns).unwrap()
    }

    /// The group columns (method, host, endpoint, edge) and request counts of
    /// a rollup batch.
    fn groups_of(out: &RecordBatch) -> Vec<(Vec<Option<String>>, i64)> {
        let requests = out.column(4).as_primitive::<Int64Type>();
        (0..out.num_rows())
            .map(|row| {
                let dims = (7..=10)
                    .map(|c| {
                        let column = out.column(c).as_string::<i32>();
                        column.is_valid(row).then(|| column.value(row).to_string())
                    })
                    .collect();
                (dims, requests.value(row))
            })
            .collect()
    }

    /// Hosts in any case, and cs(Host) where the Host header is missing, are
    /// one lowercased host; paths that differ only in ids are one endpoint.
    #[test]
    fn groups_by_method_lowercased_host_endpoint_template_and_edge() {
        let cf = Some("D1.cloudfront.net");
        let batch = requests_with(&[
            (
                Some("GET"),
                Some("API.example.com"),
                cf,
                Some("/v1/users/1"),
                Some("FRA2-C1"),
            ),
            (
                Some("GET"),
                Some("api.example.com"),
                cf,
                Some("/v1/users/22"),
                Some("FRA2-C1"),
            ),
            (
                Some("GET"),
                Some("api.example.com"),
                cf,
                Some("/v1/users/22"),
                Some("SFO53-P9"),
            ),
            (
                Some("POST"),
                Some("api.example.com"),
                cf,
                Some("/v1/users/3"),
                Some("FRA2-C1"),
            ),
            (Some("GET"), None, cf, Some("/v1/users/4"), Some("FRA2-C1")),
            (Some("GET"), None, None, None, None),
        ]);
        let out = totals(Hour::from_epoch_hours(7), std::slice::from_ref(&batch), &[]).unwrap();
        let s = |v: &str| Some(v.to_string());
        let users = s("/v1/users/{id}");
        let want = vec![
            (vec![s("GET"), None, None, None], 1),
            (
                vec![s("GET"), s("api.example.com"), users.clone(), s("FRA2-C1")],
                2,
            ),
            (
                vec![s("GET"), s("api.example.com"), users.clone(), s("SFO53-P9")],
                1,
            ),
            (
                vec![
                    s("GET"),
                    s("d1.cloudfront.net"),
                    users.clone(),
                    s("FRA2-C1"),
                ],
                1,
            ),
            (
                vec![s("POST"), s("api.example.com"), users, s("FRA2-C1")],
                1,
            ),
        ];
        assert_eq!(groups_of(&out), want);
        // Sums of sums: the rows a file at a time, then summed again, give
        // the same rollup as all rows at once.
        let (first, rest) = (batch.slice(0, 2), batch.slice(2, 4));
        let partial = [
            totals(Hour::from_epoch_hours(7), &[first], &[]).unwrap(),
            totals(Hour::from_epoch_hours(7), &[rest], &[]).unwrap(),
        ];
        let again = totals(Hour::from_epoch_hours(7), &[], &partial).unwrap();
        assert_eq!(again, out);
    }

    /// `n` requests of pseudo-random keys, statuses, bytes and dimensions
    /// (nulls among them), from `seed`.
    fn random_requests(seed: u64, n: usize) -> RecordBatch {
        let mut state = seed;
        let mut pick = move |k: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % k
        };
        let text = |i: u64, of: &'static [&'static str]| of.get(i as usize).copied();
        let mut keys = Vec::new();
        let mut statuses = Vec::new();
        let mut bytes = Vec::new();
        let mut dims: Vec<Dims> = Vec::new();
        for _ in 0..n {
            keys.push(text(pick(6), &["ka", "kb", "kab", "k", "zz"]));
            statuses.push([Some(200), Some(404), Some(500), None][pick(4) as usize]);
            bytes.push((pick(5) > 0).then(|| pick(1000) as i64));
            dims.push((
                text(pick(3), &["GET", "POST"]),
                text(pick(3), &["API.example.com", "api.example.com"]),
                text(pick(2), &["d1.cloudfront.net"]),
                text(pick(4), &["/v1/users/7", "/v1/users/8", "/health"]),
                text(pick(3), &["FRA2-C1", "SFO53-P9"]),
            ));
        }
        let with_dims = requests_with(&dims);
        let base = rows(&keys, &statuses, &bytes);
        let schema = base.schema();
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| match f.name().as_str() {
                "cs_method" | "x_host_header" | "cs_host" | "cs_uri_stem" | "x_edge_location" => {
                    with_dims.column(i).clone()
                }
                _ => base.column(i).clone(),
            })
            .collect();
        RecordBatch::try_new(schema, columns).unwrap()
    }

    /// Merging sorted sums and walking them for a difference give what
    /// hashing every group and an ordered map give; sums out of order (not
    /// written by [`totals`]) take those ways and get the same.
    #[test]
    fn sorted_sums_merge_as_hashing_every_group_does() {
        let hour = Hour::from_epoch_hours(480_000);
        for seed in 0..40 {
            let all = random_requests(seed, 300);
            let cut = 50 + seed as usize * 5;
            let (first, rest) = (all.slice(0, cut), all.slice(cut, 300 - cut));
            let late = random_requests(seed + 1_000, 1 + seed as usize);
            let partial = [
                totals(hour, std::slice::from_ref(&first), &[]).unwrap(),
                totals(hour, std::slice::from_ref(&rest), &[]).unwrap(),
            ];
            let merged = totals(hour, std::slice::from_ref(&late), &partial).unwrap();
            let hashed = totals_hashed(hour, std::slice::from_ref(&late), &partial).unwrap();
            assert_eq!(merged, hashed, "seed {seed}");
            let whole = totals(hour, std::slice::from_ref(&all), &[]).unwrap();
            assert_eq!(totals(hour, &[], &partial).unwrap(), whole, "seed {seed}");

            let empty = totals(hour, &[], &[]).unwrap();
            let same = difference(hour, &whole, &empty).unwrap();
            assert_eq!(same.as_ref(), Some(&whole), "seed {seed}");
            assert_eq!(same, difference_mapped(hour, &whole, &empty).unwrap());
            let walked = difference(hour, &whole, &partial[1]).unwrap();
            let mapped = difference_mapped(hour, &whole, &partial[1]).unwrap();
            assert_eq!(walked, mapped, "seed {seed}");
            assert_eq!(walked.as_ref(), Some(&partial[0]), "seed {seed}");
            // Late rows are no part of the whole: refused both ways.
            let stranger = totals(hour, std::slice::from_ref(&late), &[]).unwrap();
            let refused = difference(hour, &partial[0], &stranger).unwrap();
            assert_eq!(
                refused,
                difference_mapped(hour, &partial[0], &stranger).unwrap()
            );

            // The same sums backwards: not sorted, so summed by hashing.
            let reversed: Vec<usize> = (0..partial[1].num_rows()).rev().collect();
            let indices = datafusion::arrow::array::UInt32Array::from_iter_values(
                reversed.iter().map(|&i| i as u32),
            );
            let backwards =
                datafusion::arrow::compute::take_record_batch(&partial[1], &indices).unwrap();
            let again = totals(hour, &[], &[partial[0].clone(), backwards.clone()]).unwrap();
            assert_eq!(again, whole, "seed {seed}");
            assert_eq!(
                difference(hour, &whole, &backwards).unwrap().as_ref(),
                Some(&partial[0]),
                "seed {seed}"
            );
        }
        // Rows that are not sums (another schema) are refused, not misread.
        let raw = random_requests(7, 10);
        let sums = totals(hour, std::slice::from_ref(&raw), &[]).unwrap();
        let refused = |e: Error| e.to_string().contains("another schema than the rollup's");
        assert!(refused(
            totals(hour, &[], std::slice::from_ref(&raw)).unwrap_err()
        ));
        assert!(refused(difference(hour, &sums, &raw).unwrap_err()));
        assert!(refused(difference(hour, &raw, &sums).unwrap_err()));
    }

    #[test]
    fn a_rollup_is_named_for_the_set_of_files_it_sums() {
        let files = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let a = file_name_for(&files(&["dt=2019-12-04/hour=21/part-a.parquet"]));
        let ab = file_name_for(&files(&[
            "dt=2019-12-04/hour=21/part-a.parquet",
            "dt=2019-12-04/hour=21/part-b.parquet",
        ]));
        assert!(a.starts_with("rollup-") && a.ends_with(".parquet"));
        assert_ne!(a, ab);
        assert_eq!(digest_of_name(&a), Some(&a[7..a.len() - 8]));
        assert_eq!(digest_of_name("part-0000000001.parquet"), None);
        // A rollup of the layout before this one (named for the paths alone)
        // never pairs with the same files.
        let before = Sha256::digest(b"dt=2019-12-04/hour=21/part-a.parquet");
        assert_ne!(
            digest_of_name(&a),
            Some(hex::encode(&before[..16]).as_str())
        );
    }

    /// The sums of the whole less those of a part are the sums of the rest,
    /// as summing the rest gives them; a part the whole does not hold is
    /// refused.
    #[test]
    fn the_difference_of_sums_is_the_sum_of_the_rest() {
        let hour = Hour::from_epoch_hours(480_000);
        let kept = rows(
            &[Some("b"), Some("a"), None, Some("a")],
            &[Some(200), Some(200), Some(200), Some(404)],
            &[Some(10), Some(20), None, Some(5)],
        );
        let rewritten = rows(
            &[Some("a"), None, Some("c")],
            &[Some(200), None, Some(500)],
            &[Some(7), Some(3), None],
        );
        let whole = totals(hour, &[kept.clone(), rewritten.clone()], &[]).unwrap();
        let part = totals(hour, std::slice::from_ref(&rewritten), &[]).unwrap();
        let rest = difference(hour, &whole, &part).unwrap().unwrap();
        // Summed again with the rewritten rows: the whole, to the byte.
        let again = totals(hour, &[rewritten], std::slice::from_ref(&rest)).unwrap();
        assert_eq!(again, whole);
        assert_eq!(rest, totals(hour, &[kept], &[]).unwrap());
        // A group the whole lacks, or more than it counts: not its part.
        let stranger = totals(hour, &[rows(&[Some("z")], &[Some(200)], &[Some(1)])], &[]).unwrap();
        assert_eq!(difference(hour, &whole, &stranger).unwrap(), None);
        let twice = totals(hour, &[], &[part.clone(), part.clone(), part]).unwrap();
        assert_eq!(difference(hour, &whole, &twice).unwrap(), None);
    }

    #[test]
    fn sums_by_key_and_status_across_batches() {
        let a = rows(
            &[Some("b"), Some("a"), None, Some("a")],
            &[Some(200), Some(200), Some(200), Some(404)],
            &[Some(10), Some(20), None, Some(5)],
        );
        let b = rows(&[Some("a"), None], &[Some(200), None], &[Some(7), Some(3)]);
        // Only the columns it names are read: those alone give the same file.
        let project = |batch: &RecordBatch| {
            let schema = batch.schema();
            let columns = REQUESTS_COLUMNS.map(|name| schema.index_of(name).unwrap());
            batch.project(&columns).unwrap()
        };
        let projected =
            encode_hour(Hour::from_epoch_hours(480_000), &[project(&a), project(&b)]).unwrap();
        let file = encode_hour(Hour::from_epoch_hours(480_000), &[a, b]).unwrap();
        assert_eq!(projected, file);
        let out = decode(file).unwrap();
        assert_eq!(out.len(), 1);
        let out = &out[0];
        let keys: Vec<Option<&str>> = out.column(1).as_string::<i32>().iter().collect();
        let statuses: Vec<Option<i16>> = out.column(3).as_primitive::<Int16Type>().iter().collect();
        let requests: Vec<i64> = out.column(4).as_primitive::<Int64Type>().values().to_vec();
        let bytes_out: Vec<i64> = out.column(5).as_primitive::<Int64Type>().values().to_vec();
        let bytes_in: Vec<i64> = out.column(6).as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(keys, vec![None, None, Some("a"), Some("a"), Some("b")]);
        assert_eq!(
            statuses,
            vec![None, Some(200), Some(200), Some(404), Some(200)]
        );
        assert_eq!(requests, vec![1, 1, 2, 1, 1]);
        assert_eq!(bytes_out, vec![3, 0, 27, 5, 10]);
        assert_eq!(bytes_in, vec![1, 1, 2, 1, 1]);
        let starts = out
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>();
        assert!(starts.values().iter().all(|&t| t == 480_000 * 3_600_000));
    }
}
