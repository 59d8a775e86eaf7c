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
//! Each `requests` file has its own rollup file, computed from every row of
//! that file when it is written, so it is exact by construction; it is named
//! for the file it sums (`rollup-<digest>.parquet`, the digest of the
//! file's path). A file's rows never change, so neither does its rollup:
//! late logs into an hour add a `requests` file and its rollup beside the
//! hour's others, and cost their own rows, not the hour's. A rollup row is
//! therefore one group's sums in one file, and a group of an hour may have
//! rows in several rollup files; readers sum them (every query does).
//!
//! A second, narrow rollup, `usage_hourly_keys`, sums the same files by key
//! and status alone (the first seven columns of `usage_hourly`): per-key
//! usage, billing by status class and the named queries that need no other
//! dimension read it, a fifth of the rows on the benchmark. It is written,
//! named, paired and repaired the same way, as a table of its own.
//!
//! `requests` and each rollup are Delta tables of their own, so new files and
//! their rollups are separate commits, the rollups after. A reader pairs the two
//! snapshots: an hour's rollups count only while every `requests` file of the
//! hour has its rollup; an hour where one lacks it (a writer crashed between
//! the two commits, or another writer changed the hour since) is summed from
//! its raw rows instead. So edgemeter's usage is exact at every instant, and
//! the next ingest repairs what is missing ([`repair`]), summing only the
//! files without a rollup. Usage and billing read rollups for whole hours and
//! raw rows only for the partial hours at the edges of a range.

use super::Lake;
use super::REQUESTS_TABLE;
use super::delta::{self, DataFile, TableDef};
use super::layout::{
    USAGE_HOURLY_DIR, USAGE_HOURLY_KEYS_DIR, hour_of_partition, partition_dir, partition_key,
};
use super::parquet_io::{decode_columns, encode, rollup_writer_properties};
use crate::error::{Error, Result};
use crate::schema::PARTITION_COLUMNS;
use crate::time::Hour;
use bytes::Bytes;
use datafusion::arrow::array::{
    Array, AsArray, Int16Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int16Type, Int64Type, Schema, SchemaRef};
use datafusion::parquet::file::metadata::SortingColumn;
use deltalake::DeltaTable;
use object_store::{ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, LazyLock};

/// The rollup's Delta table.
pub(crate) const ROLLUP_TABLE: TableDef = TableDef {
    dir: USAGE_HOURLY_DIR,
    file_schema: rollup_schema,
    partition_by: &PARTITION_COLUMNS,
    stats_columns: &["api_key_id"],
};

/// The narrow rollup's Delta table.
pub(crate) const KEYS_TABLE: TableDef = TableDef {
    dir: USAGE_HOURLY_KEYS_DIR,
    file_schema: keys_schema,
    partition_by: &PARTITION_COLUMNS,
    stats_columns: &["api_key_id"],
};

/// One of the two rollups: its table, and the version of its files' columns
/// and of what one file sums, part of their names' digest (a rollup of
/// another layout never pairs, so its hour is summed from raw rows until
/// [`repair`] writes it again in this one).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rollup {
    pub(crate) table: TableDef,
    layout: &'static str,
}

/// `usage_hourly`: by key, status, method, host, endpoint and edge.
pub(crate) const DETAIL: Rollup = Rollup {
    table: ROLLUP_TABLE,
    layout: "usage_hourly/3 one requests file; key status method host endpoint edge",
};

/// `usage_hourly_keys`: by key and status.
pub(crate) const BY_KEY: Rollup = Rollup {
    table: KEYS_TABLE,
    layout: "usage_hourly_keys/1 one requests file; key status",
};

/// Both rollups, in the order their commits are made and their files held.
pub(crate) const ROLLUPS: [Rollup; 2] = [DETAIL, BY_KEY];

/// The name of `rollup`'s file that sums exactly this `requests` file (its
/// path relative to the table).
pub(crate) fn file_name_for(rollup: &Rollup, requests_file: &str) -> String {
    let digest = Sha256::digest(format!("{}\n{requests_file}", rollup.layout).as_bytes());
    format!("rollup-{}.parquet", hex::encode(&digest[..16]))
}

/// The path (relative to its table) of `rollup`'s file that sums exactly the
/// `requests` file at `requests_file`: the same partition, named by
/// [`file_name_for`].
pub(crate) fn path_for(rollup: &Rollup, requests_file: &str) -> String {
    let dir = requests_file.rsplit_once('/').map_or("", |(dir, _)| dir);
    format!("{dir}/{}", file_name_for(rollup, requests_file))
}

/// The file name at the end of a path relative to a table.
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// How a `requests` snapshot and a rollup's snapshot pair up.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Pairing {
    /// Rollup files (relative to their table) of the hours whose every
    /// `requests` file has its rollup: together they sum those hours exactly.
    pub(crate) valid: Vec<String>,
    /// `requests` partitions (`[dt, hour]`) where a file lacks its rollup.
    pub(crate) stale: Vec<Vec<String>>,
}

/// Pairs every `requests` hour with its files' rollups in `rollups`, the
/// table of `rollup`.
pub(crate) fn pair(
    requests: &DeltaTable,
    rollups: Option<&DeltaTable>,
    rollup: &Rollup,
) -> Result<Pairing> {
    let hours = delta::files_by_partition(requests, &REQUESTS_TABLE)?;
    let rollup_files = match rollups {
        Some(table) => delta::files_by_partition(table, &rollup.table)?,
        None => BTreeMap::new(),
    };
    let mut pairing = Pairing::default();
    for (partition, files) in &hours {
        let rollups: HashMap<&str, &str> = rollup_files
            .get(partition)
            .into_iter()
            .flatten()
            .map(|r| (file_name(&r.path), r.path.as_str()))
            .collect();
        let paired: Option<Vec<&str>> = files
            .iter()
            .map(|f| {
                rollups
                    .get(file_name_for(rollup, &f.path).as_str())
                    .copied()
            })
            .collect();
        match paired {
            Some(paths) => pairing.valid.extend(paths.into_iter().map(str::to_string)),
            None => pairing.stale.push(partition.clone()),
        }
    }
    Ok(pairing)
}

/// The rollups of one `requests` file.
#[derive(Debug, Clone)]
pub(crate) struct FileRollup {
    pub(crate) hour: Hour,
    /// The `requests` file they sum, relative to that table.
    pub(crate) requests_file: String,
    /// Its rollup file of each of [`ROLLUPS`], where one is to be written.
    pub(crate) files: [Option<Bytes>; 2],
}

impl FileRollup {
    /// Both rollups of a file from its sums ([`totals`]).
    fn of_sums(hour: Hour, requests_file: String, sums: RecordBatch) -> Result<Self> {
        Ok(Self {
            hour,
            requests_file,
            files: rollup_files(hour, sums)?.map(Some),
        })
    }
}

/// Both rollup files (in the order of [`ROLLUPS`]) of a file's sums
/// ([`totals`]).
fn rollup_files(hour: Hour, sums: RecordBatch) -> Result<[Bytes; 2]> {
    let by_key = encode_sums(&BY_KEY, by_key(hour, &sums)?)?;
    Ok([encode_sums(&DETAIL, sums)?, by_key])
}

/// Both rollup files (in the order of [`ROLLUPS`]) of `requests` rows of
/// `hour` (of which only [`REQUESTS_COLUMNS`] are read).
pub(crate) fn encode_hour(hour: Hour, batches: &[RecordBatch]) -> Result<[Bytes; 2]> {
    rollup_files(hour, totals(hour, batches)?)
}

/// Commits the rollups of new `requests` files, and takes out of `hours` the
/// rollups of files no longer in them: one commit to each rollup's table
/// (`tables`, in the order of [`ROLLUPS`]). A rollup whose `requests` file is
/// no longer in the table (another writer merged it away since) is left out,
/// so a slower writer never puts back sums of rows that are gone.
pub(crate) async fn commit(
    lake: &Lake,
    requests: &mut DeltaTable,
    tables: [&mut DeltaTable; 2],
    hours: &[Hour],
    files: Vec<FileRollup>,
) -> Result<()> {
    for (i, (rollup, table)) in ROLLUPS.iter().zip(tables).enumerate() {
        let written = files
            .iter()
            .filter_map(|f| Some((f.hour, f.requests_file.as_str(), f.files[i].clone()?)));
        commit_one(lake, requests, table, rollup, hours, written).await?;
    }
    Ok(())
}

/// [`commit`] to one rollup's table.
async fn commit_one(
    lake: &Lake,
    requests: &mut DeltaTable,
    rollups: &mut DeltaTable,
    rollup: &Rollup,
    hours: &[Hour],
    files: impl Iterator<Item = (Hour, &str, Bytes)>,
) -> Result<()> {
    let def = &rollup.table;
    let mut written: HashMap<String, (Hour, usize)> = HashMap::new();
    for (hour, requests_file, file) in files {
        let path = format!(
            "{}/{}",
            partition_dir(hour),
            file_name_for(rollup, requests_file)
        );
        let location = delta::file_location(lake, def, &path);
        let size = file.len();
        lake.store().put(&location, PutPayload::from(file)).await?;
        written.insert(path, (hour, size));
    }
    let mut touched: Vec<Hour> = hours
        .iter()
        .copied()
        .chain(written.values().map(|(hour, _)| *hour))
        .collect();
    touched.sort_unstable();
    touched.dedup();
    for attempt in 0..delta::MAX_ATTEMPTS {
        delta::catch_up(requests).await?;
        let current = delta::files_by_partition(requests, &REQUESTS_TABLE)?;
        let existing = delta::files_by_partition(rollups, def)?;
        let mut actions = Vec::new();
        for &hour in &touched {
            let partition = partition_key(hour);
            let dir = partition_dir(hour);
            let wanted: HashSet<String> = current
                .get(&partition)
                .into_iter()
                .flatten()
                .map(|f| format!("{dir}/{}", file_name_for(rollup, &f.path)))
                .collect();
            let olds = existing.get(&partition).map(Vec::as_slice).unwrap_or(&[]);
            for old in olds.iter().filter(|f| !wanted.contains(&f.path)) {
                actions.push(delta::remove_action(def, &partition, old));
            }
            let mut new: Vec<(&String, usize)> = written
                .iter()
                .filter(|(path, (h, _))| *h == hour && wanted.contains(*path))
                .filter(|(path, _)| !olds.iter().any(|f| &f.path == *path))
                .map(|(path, (_, size))| (path, *size))
                .collect();
            new.sort_unstable();
            for (path, size) in new {
                actions.push(delta::add_action(def, &partition, path.clone(), size, None));
            }
        }
        if delta::commit_replacing(rollups, def, actions, attempt).await? {
            return Ok(());
        }
    }
    Err(delta::gave_up(def.dir))
}

/// The sums of one `requests` file of an hour, by key and status (a batch of
/// [`totals`]), read from the columns the rollup needs.
pub(crate) async fn sum_file(lake: &Lake, file: &DataFile, hour: Hour) -> Result<RecordBatch> {
    let location = delta::file_location(lake, &REQUESTS_TABLE, &file.path);
    let data = lake.store().get(&location).await?.bytes().await?;
    crate::cpu::run(move || {
        let rows = decode_columns(data, &REQUESTS_COLUMNS)
            .map_err(|e| Error::Lake(format!("{location}: {e}")))?;
        totals(hour, &rows)
    })
    .await?
}

/// Writes the rollups of every `requests` file that lacks one (a crash
/// between a batch's commits, or a lake of an earlier layout) and takes out
/// rollups of files that are gone, in both rollups' tables (`tables`, in the
/// order of [`ROLLUPS`]); returns the number of hours where a rollup was
/// missing.
pub(crate) async fn repair(
    lake: &Lake,
    requests: &mut DeltaTable,
    tables: [&mut DeltaTable; 2],
) -> Result<u64> {
    let [detail, keys] = tables;
    let hours = delta::files_by_partition(requests, &REQUESTS_TABLE)?;
    let mut stale: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut present: [HashSet<String>; 2] = Default::default();
    for ((rollup, table), present) in ROLLUPS.iter().zip([&*detail, &*keys]).zip(&mut present) {
        let pairing = pair(requests, Some(table), rollup)?;
        stale.extend(pairing.stale);
        *present = delta::files_by_partition(table, &rollup.table)?
            .into_values()
            .flatten()
            .map(|f| file_name(&f.path).to_string())
            .collect();
    }
    let mut stale_hours = Vec::new();
    let mut built = Vec::new();
    for partition in &stale {
        let (Some(hour), Some(files)) = (hour_of_partition(partition), hours.get(partition)) else {
            continue;
        };
        stale_hours.push(hour);
        // A file at a time, so that an hour of any size is summed in the
        // memory of one file's rollup columns.
        for file in files {
            let missing =
                [0, 1].map(|i| !present[i].contains(&file_name_for(&ROLLUPS[i], &file.path)));
            if missing == [false, false] {
                continue;
            }
            let sums = sum_file(lake, file, hour).await?;
            let path = file.path.clone();
            let mut rollups =
                crate::cpu::run(move || FileRollup::of_sums(hour, path, sums)).await??;
            for (file, missing) in rollups.files.iter_mut().zip(missing) {
                if !missing {
                    *file = None;
                }
            }
            built.push(rollups);
        }
        // Committed a few hundred at a time, so that the rollups waiting
        // for their commit stay few.
        if built.len() >= 256 {
            let files = std::mem::take(&mut built);
            commit(
                lake,
                requests,
                [&mut *detail, &mut *keys],
                &stale_hours,
                files,
            )
            .await?;
            stale_hours.clear();
        }
    }
    commit(lake, requests, [detail, keys], &stale_hours, built).await?;
    Ok(stale.len() as u64)
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

static KEYS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let fields: Vec<_> = SCHEMA.fields().iter().take(7).cloned().collect();
    Arc::new(Schema::new(fields))
});

/// The schema of the Parquet files under `usage_hourly_keys/` (without
/// partition columns): `usage_hourly`'s first seven columns.
pub fn keys_schema() -> SchemaRef {
    KEYS_SCHEMA.clone()
}

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

/// Encodes sums as a rollup file of `rollup`, sorted by key then status.
fn encode_sums(rollup: &Rollup, sums: RecordBatch) -> Result<Bytes> {
    let sorted_on = |column_idx| SortingColumn {
        column_idx,
        descending: false,
        nulls_first: true,
    };
    encode(
        &(rollup.table.file_schema)(),
        &[sums],
        rollup_writer_properties(Some(vec![sorted_on(1), sorted_on(3)])),
    )
}

/// [`totals`] (sorted by key then status first) summed again by key and
/// status alone: the rows of [`BY_KEY`]'s file, in one pass.
fn by_key(hour: Hour, sums: &RecordBatch) -> Result<RecordBatch> {
    let keys = sums.column(1).as_string::<i32>();
    let hints = sums.column(2).as_string::<i32>();
    let statuses = sums.column(3).as_primitive::<Int16Type>();
    let counts = [4, 5, 6].map(|i| sums.column(i).as_primitive::<Int64Type>());
    let mut groups: Vec<(GroupText<'_>, Totals<'_>)> = Vec::new();
    for row in 0..sums.num_rows() {
        let group = (
            at(keys, row),
            statuses.is_valid(row).then(|| statuses.value(row)),
            None,
            None,
            None,
            None,
        );
        let [requests, bytes_out, bytes_in] = counts.map(|c| c.value(row));
        let totals = Totals {
            hint: at(hints, row),
            requests,
            bytes_out,
            bytes_in,
        };
        match groups.last_mut() {
            Some((last, sum)) if *last == group => sum.add(&totals),
            Some((last, _)) if *last > group => {
                return Err(Error::Lake("sums not sorted by key and status".into()));
            }
            _ => groups.push((group, totals)),
        }
    }
    let detail = sums_batch(hour, &groups)?;
    Ok(detail.project(&[0, 1, 2, 3, 4, 5, 6])?)
}

/// The sums of `batches` (`requests` rows of `hour`, of which only
/// [`REQUESTS_COLUMNS`] are read) by [`Group`]: one row of the rollup's
/// schema per group, sorted by key, status, method, host, endpoint and edge,
/// nulls first. Each group's rows are hashed once per run of rows that share
/// it (rows come sorted by key), then the groups are sorted.
pub(crate) fn totals(hour: Hour, batches: &[RecordBatch]) -> Result<RecordBatch> {
    let mut groups: datafusion::common::HashMap<Group, Totals<'_>> = Default::default();
    let mut interner = Interner::default();
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
        let out = totals(Hour::from_epoch_hours(7), &[batch]).unwrap();
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
        let [detail, _] = encode_hour(Hour::from_epoch_hours(7), &[a, b]).unwrap();
        let out = decode(detail).unwrap();
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
        let out = totals(Hour::from_epoch_hours(7), std::slice::from_ref(&batch)).unwrap();
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

    /// The groups of [`totals`] rows as a map, for comparing sums that
    /// come as several rows of one group.
    fn summed_by_group(batches: &[RecordBatch]) -> BTreeMap<String, (Option<String>, [i64; 3])> {
        let mut out: BTreeMap<String, (Option<String>, [i64; 3])> = BTreeMap::new();
        for batch in batches {
            let text = |i: usize| batch.column(i).as_string::<i32>();
            let statuses = batch.column(3).as_primitive::<Int16Type>();
            let sums = [4, 5, 6].map(|i| batch.column(i).as_primitive::<Int64Type>());
            for row in 0..batch.num_rows() {
                let group = format!(
                    "{:?}",
                    (
                        at(text(1), row),
                        statuses.is_valid(row).then(|| statuses.value(row)),
                        [7, 8, 9, 10].map(|i| at(text(i), row)),
                    )
                );
                let entry = out.entry(group).or_default();
                entry.0 = entry.0.clone().max(at(text(2), row).map(str::to_string));
                for (total, column) in entry.1.iter_mut().zip(&sums) {
                    *total += column.value(row);
                }
            }
        }
        out
    }

    /// An hour's rows split into files in any way: their rollups, summed by
    /// group as every reader sums them, give the sums of all the rows; and
    /// each file's rollup holds each of its groups once, sorted.
    #[test]
    fn the_rollups_of_an_hours_files_add_up_to_the_hours_sums() {
        let hour = Hour::from_epoch_hours(480_000);
        for seed in 0..40 {
            let all = random_requests(seed, 300);
            let whole = totals(hour, std::slice::from_ref(&all)).unwrap();
            let (a, b) = (40 + seed as usize * 3, 170 + seed as usize);
            let files = [all.slice(0, a), all.slice(a, b - a), all.slice(b, 300 - b)];
            let rollups: Vec<RecordBatch> = files
                .iter()
                .map(|f| totals(hour, std::slice::from_ref(f)).unwrap())
                .collect();
            assert_eq!(
                summed_by_group(&rollups),
                summed_by_group(std::slice::from_ref(&whole)),
                "seed {seed}"
            );
            // The whole's rows: one per group.
            assert_eq!(
                summed_by_group(std::slice::from_ref(&whole)).len(),
                whole.num_rows()
            );
            let total: i64 = rollups
                .iter()
                .map(|r| {
                    r.column(4)
                        .as_primitive::<Int64Type>()
                        .values()
                        .iter()
                        .sum::<i64>()
                })
                .sum();
            assert_eq!(total, 300);
        }
    }

    /// Rollup files are Snappy Parquet (read by every usage query, where a
    /// zstd reader's per-chunk contexts cost more than the chunks), each
    /// holding its table's rows of the sums.
    #[test]
    fn rollup_files_are_snappy_parquet_of_their_sums() {
        use datafusion::parquet::basic::Compression;
        use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
        let hour = Hour::from_epoch_hours(480_000);
        let sums = totals(hour, &[random_requests(7, 300)]).unwrap();
        let rows = [sums.num_rows(), by_key(hour, &sums).unwrap().num_rows()];
        assert!(rows[0] > rows[1] && rows[1] > 0, "{rows:?}");
        for (file, rows) in rollup_files(hour, sums).unwrap().into_iter().zip(rows) {
            let reader = SerializedFileReader::new(file).unwrap();
            let meta = reader.metadata();
            assert_eq!(meta.file_metadata().num_rows() as usize, rows);
            for chunk in meta.row_groups().iter().flat_map(|g| g.columns()) {
                assert_eq!(
                    chunk.compression(),
                    Compression::SNAPPY,
                    "{}",
                    chunk.column_path()
                );
            }
        }
    }

    /// The narrow rollup is the wide one summed by key and status, as
    /// summing the raw rows by key and status gives it: each pair once,
    /// sorted.
    #[test]
    fn the_narrow_rollup_sums_the_rows_by_key_and_status() {
        let hour = Hour::from_epoch_hours(480_000);
        for seed in 0..20 {
            let rows = random_requests(seed, 300);
            type KeyStatus = (Option<String>, Option<i16>);
            let mut want: BTreeMap<KeyStatus, [i64; 3]> = BTreeMap::new();
            let keys = rows
                .column_by_name("api_key_id")
                .unwrap()
                .as_string::<i32>();
            let statuses = rows.column_by_name("sc_status").unwrap();
            let statuses = statuses.as_primitive::<Int16Type>();
            let out = rows.column_by_name("sc_bytes").unwrap();
            let out = out.as_primitive::<Int64Type>();
            let inn = rows.column_by_name("cs_bytes").unwrap();
            let inn = inn.as_primitive::<Int64Type>();
            for row in 0..rows.num_rows() {
                let key = at(keys, row).map(str::to_string);
                let status = statuses.is_valid(row).then(|| statuses.value(row));
                let sums = want.entry((key, status)).or_default();
                sums[0] += 1;
                sums[1] += if out.is_valid(row) { out.value(row) } else { 0 };
                sums[2] += if inn.is_valid(row) { inn.value(row) } else { 0 };
            }
            let narrow = by_key(hour, &totals(hour, std::slice::from_ref(&rows)).unwrap()).unwrap();
            assert_eq!(narrow.schema(), keys_schema());
            let keys = narrow.column(1).as_string::<i32>();
            let statuses = narrow.column(3).as_primitive::<Int16Type>();
            let sums = [4, 5, 6].map(|i| narrow.column(i).as_primitive::<Int64Type>());
            let got: Vec<(KeyStatus, [i64; 3])> = (0..narrow.num_rows())
                .map(|row| {
                    let key = at(keys, row).map(str::to_string);
                    let status = statuses.is_valid(row).then(|| statuses.value(row));
                    ((key, status), sums.map(|c| c.value(row)))
                })
                .collect();
            assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "seed {seed}");
        }
    }

    #[test]
    fn a_rollup_is_named_for_the_file_it_sums() {
        let a = file_name_for(&DETAIL, "dt=2019-12-04/hour=21/part-a.parquet");
        let b = file_name_for(&DETAIL, "dt=2019-12-04/hour=21/part-b.parquet");
        // Each rollup's own name for the same file.
        assert_ne!(
            a,
            file_name_for(&BY_KEY, "dt=2019-12-04/hour=21/part-a.parquet")
        );
        assert!(a.starts_with("rollup-") && a.ends_with(".parquet"));
        assert_eq!(a.len(), "rollup-.parquet".len() + 32);
        assert_ne!(a, b);
        assert_eq!(
            a,
            file_name_for(&DETAIL, "dt=2019-12-04/hour=21/part-a.parquet")
        );
        assert_eq!(
            file_name("usage/dt=2019-12-04/hour=21/x.parquet"),
            "x.parquet"
        );
        // Its path: in the requests file's partition.
        assert_eq!(
            path_for(&DETAIL, "dt=2019-12-04/hour=21/part-a.parquet"),
            format!("dt=2019-12-04/hour=21/{a}")
        );
        // A rollup of the layouts before this one (named for the hour's set
        // of paths, with or without a layout line) never pairs with a file.
        for before in [
            "dt=2019-12-04/hour=21/part-a.parquet".to_string(),
            "usage_hourly/2 key status method host endpoint edge\ndt=2019-12-04/hour=21/part-a.parquet".to_string(),
        ] {
            let digest = Sha256::digest(before.as_bytes());
            assert_ne!(a, format!("rollup-{}.parquet", hex::encode(&digest[..16])));
        }
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
        let [detail, narrow] = file;
        let narrow = decode(narrow).unwrap();
        let narrow_keys: Vec<Option<&str>> =
            narrow[0].column(1).as_string::<i32>().iter().collect();
        let narrow_requests: Vec<i64> = narrow[0]
            .column(4)
            .as_primitive::<Int64Type>()
            .values()
            .to_vec();
        assert_eq!(narrow[0].schema(), keys_schema());
        assert_eq!(
            narrow_keys,
            vec![None, None, Some("a"), Some("a"), Some("b")]
        );
        assert_eq!(narrow_requests, vec![1, 1, 2, 1, 1]);
        let out = decode(detail).unwrap();
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
