//! Day rollups: `usage_daily` and `usage_daily_keys`, one file per day of
//! each hourly rollup ([`super::rollup`]).
//!
//! An hourly rollup has a file per `requests` file, so a month of usage
//! reads hundreds of small files, and opening each costs more than summing
//! its rows (a month of the benchmark's 10× lake: 528 files per rollup).
//! A day rollup holds, in one file, the rows of every hourly rollup file of
//! one day, with the hour as a column of its own. It is named for the exact
//! set of that day's `requests` files (`day-<digest>.parquet`, the digest of
//! their paths), and a reader takes it in place of the day's hourly rollups
//! only while that set is the day's set in the `requests` snapshot it reads
//! ([`pair`]). A late file, a merge or a dropped hour changes the set, and the
//! day is read from its hourly rollups (and raw rows) again until a day
//! rollup of the new set is committed. So a day rollup is exact whenever it
//! is read, for the same reason an hourly one is: it is the sum of exactly
//! the files it is named for.
//!
//! They are written at the end of every ingest run and by `maintain`, for
//! every day that lacks one (the days a run wrote to, or a lake made before
//! day rollups), from the day's hourly rollup files: two days at a time,
//! each with its input files' bytes, one of them decoded and the day's
//! output in memory, and only for days whose every hour has its hourly
//! rollups. A day whose hourly rollups hold more than
//! [`MAX_DAY_INPUT_BYTES`] keeps them and gets no day rollup.
//!
//! A day that has only gained files since its file was written (late logs
//! into hours whose files stay as they are, the common case) is not built
//! again: its new file is the old one's row groups, copied as encoded
//! bytes, and one row group of the new files' hourly rollups ([`append`]).
//! The old file's footer lists the `requests` files it holds, and the list
//! is trusted only while it hashes to the file's name. So a late file costs
//! its day about its own rows; a day whose file lost one of its files is
//! built whole again, and so is one with [`MAX_ROW_GROUPS`] row groups or
//! more than [`MAX_APPEND_BYTES`] of added hourly rollups (the added row group
//! is decoded whole, while a day built whole is decoded an hour at a time).

use super::Lake;
use super::REQUESTS_TABLE;
use super::delta::{self, AsOf, DataFile, TableDef};
use super::layout::{USAGE_DAILY_DIR, USAGE_DAILY_KEYS_DIR, dt_of_partition_dir};
use super::parquet_io::{self, decode_as, rollup_writer_properties};
use super::rollup::{self, BY_KEY, DETAIL, Rollup};
use crate::error::{Error, Result};
use bytes::Bytes;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::metadata::{KeyValue, ParquetMetaData};
use datafusion::parquet::file::properties::WriterProperties;
use deltalake::DeltaTable;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};

/// A day's hourly rollup files larger than this, together, are left as
/// they are: the day rollup is built with the day's input in memory.
pub(crate) const MAX_DAY_INPUT_BYTES: u64 = 64 << 20;

/// One of the day rollups: its table, the hourly rollup it is made of, and
/// the version of what one file holds (part of its name's digest, so a file
/// of another layout never pairs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DayRollup {
    pub(crate) table: TableDef,
    pub(crate) hourly: Rollup,
    layout: &'static str,
}

/// The partition column of the day rollups.
const DAY_PARTITION: [&str; 1] = ["dt"];

/// `usage_daily`: the days of `usage_hourly`.
pub(crate) const DAY_DETAIL: DayRollup = DayRollup {
    table: TableDef {
        dir: USAGE_DAILY_DIR,
        file_schema: detail_day_schema,
        partition_by: &DAY_PARTITION,
        stats_columns: &["api_key_id"],
    },
    hourly: DETAIL,
    layout: "usage_daily/1 a day's requests files; usage_hourly rows and hour",
};

/// `usage_daily_keys`: the days of `usage_hourly_keys`.
pub(crate) const DAY_KEYS: DayRollup = DayRollup {
    table: TableDef {
        dir: USAGE_DAILY_KEYS_DIR,
        file_schema: keys_day_schema,
        partition_by: &DAY_PARTITION,
        stats_columns: &["api_key_id"],
    },
    hourly: BY_KEY,
    layout: "usage_daily_keys/1 a day's requests files; usage_hourly_keys rows and hour",
};

/// The day rollups, in the order of [`rollup::ROLLUPS`] (the hourly rollup
/// each is made of).
pub(crate) const DAY_ROLLUPS: [DayRollup; 2] = [DAY_DETAIL, DAY_KEYS];

/// An hourly rollup's file schema with `hour` (the partition value of the
/// hour each row came from) after its columns.
fn with_hour(hourly: SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = hourly.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("hour", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

static DETAIL_DAY_SCHEMA: LazyLock<SchemaRef> =
    LazyLock::new(|| with_hour(rollup::rollup_schema()));
static KEYS_DAY_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| with_hour(rollup::keys_schema()));

/// The schema of the Parquet files under `usage_daily/`: `usage_hourly`'s
/// columns and `hour`.
pub(crate) fn detail_day_schema() -> SchemaRef {
    DETAIL_DAY_SCHEMA.clone()
}

/// The schema of the Parquet files under `usage_daily_keys/`:
/// `usage_hourly_keys`' columns and `hour`.
pub(crate) fn keys_day_schema() -> SchemaRef {
    KEYS_DAY_SCHEMA.clone()
}

/// The `requests` files of each day (`dt`) of a snapshot, paths in order.
pub(crate) fn requests_by_day(requests: &DeltaTable) -> Result<BTreeMap<String, Vec<String>>> {
    let mut days: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (partition, files) in delta::files_by_partition(requests, &REQUESTS_TABLE)? {
        let Some(dt) = partition.first() else {
            continue;
        };
        days.entry(dt.clone())
            .or_default()
            .extend(files.into_iter().map(|f| f.path));
    }
    for files in days.values_mut() {
        files.sort_unstable();
    }
    Ok(days)
}

/// The path (relative to its table) of `day`'s file that holds exactly the
/// `requests` files `files` (paths relative to `requests`, in order) of `dt`.
pub(crate) fn path_for(day: &DayRollup, dt: &str, files: &[String]) -> String {
    day_path(day.layout, dt, files)
}

/// The path of a day file of `layout` (the version of what one holds) that
/// stands for exactly the `requests` files `files` of `dt`.
pub(crate) fn day_path(layout: &str, dt: &str, files: &[String]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(layout.as_bytes());
    for file in files {
        hasher.update(b"\n");
        hasher.update(file.as_bytes());
    }
    let digest = hasher.finalize();
    format!("dt={dt}/day-{}.parquet", hex::encode(&digest[..16]))
}

/// The day rollup files that pair with a `requests` snapshot.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct DayPairing {
    /// Files (relative to their table) that hold exactly their day's files.
    pub(crate) valid: Vec<String>,
    /// The days (`dt`) those files stand for.
    pub(crate) days: BTreeSet<String>,
}

/// Pairs every day of `requests` (as [`requests_by_day`] gives them) with
/// its file in `daily`, the table of `day`.
pub(crate) fn pair(
    requests: &BTreeMap<String, Vec<String>>,
    daily: Option<&DeltaTable>,
    day: &DayRollup,
) -> Result<DayPairing> {
    pair_named(requests, daily, &day.table, |dt, files| {
        path_for(day, dt, files)
    })
}

/// Pairs every day of `requests` with its file in `table` (of `def`, one
/// file per day), the file of a day's `requests` files being the one `path`
/// names for them.
pub(crate) fn pair_named(
    requests: &BTreeMap<String, Vec<String>>,
    table: Option<&DeltaTable>,
    def: &TableDef,
    path: impl Fn(&str, &[String]) -> String,
) -> Result<DayPairing> {
    let mut pairing = DayPairing::default();
    let Some(table) = table else {
        return Ok(pairing);
    };
    let present: BTreeSet<String> = delta::files_by_partition(table, def)?
        .into_values()
        .flatten()
        .map(|f| f.path)
        .collect();
    for (dt, files) in requests {
        let path = path(dt, files);
        if present.contains(&path) {
            pairing.valid.push(path);
            pairing.days.insert(dt.clone());
        }
    }
    Ok(pairing)
}

/// Writes the day rollups that are missing, in both day rollups, then the
/// day totals ([`super::day_totals`]) of their days, and takes
/// out those of sets of files that are gone; returns how many files it
/// wrote.
pub(crate) async fn roll_up(lake: &Lake) -> Result<u64> {
    let Some(mut requests) = delta::open(lake, &REQUESTS_TABLE, AsOf::Latest).await? else {
        return Ok(0);
    };
    let mut written = 0;
    let mut day_keys = None;
    for day in &DAY_ROLLUPS {
        let Some(hourly) = delta::open(lake, &day.hourly.table, AsOf::Latest).await? else {
            continue;
        };
        let mut daily = delta::open_or_create(lake, &day.table).await?;
        written += roll_up_one(lake, &mut requests, &hourly, &mut daily, day).await?;
        if day.table.dir == DAY_KEYS.table.dir {
            day_keys = Some(daily);
        }
    }
    // The day totals, from the day rollups just committed.
    if let Some(day_keys) = &day_keys {
        written += super::day_totals::write(lake, &mut requests, day_keys).await?;
    }
    Ok(written)
}

/// A day whose file a run writes.
struct DayToWrite<'a> {
    /// The file's path, named for `files`.
    path: String,
    dt: &'a str,
    /// The day's `requests` files.
    files: &'a [String],
    /// Their hourly rollup files.
    inputs: &'a [&'a DataFile],
    /// The day's file before, if it has one.
    base: Option<&'a DataFile>,
}

/// [`roll_up`] of one day rollup.
async fn roll_up_one(
    lake: &Lake,
    requests: &mut DeltaTable,
    hourly: &DeltaTable,
    daily: &mut DeltaTable,
    day: &DayRollup,
) -> Result<u64> {
    let by_day = requests_by_day(requests)?;
    let hours = rollup::pair(requests, Some(hourly), &day.hourly)?;
    let stale: BTreeSet<&str> = hours
        .stale
        .iter()
        .filter_map(|p| p.first())
        .map(String::as_str)
        .collect();
    let mut inputs: BTreeMap<&str, Vec<&DataFile>> = BTreeMap::new();
    let hourly_files = delta::files_by_partition(hourly, &day.hourly.table)?;
    let valid: BTreeSet<&str> = hours.valid.iter().map(String::as_str).collect();
    for file in hourly_files.values().flatten() {
        if valid.contains(file.path.as_str())
            && let Some(dt) = dt_of_partition_dir(&file.path)
        {
            inputs.entry(dt).or_default().push(file);
        }
    }
    let present = pair(&by_day, Some(daily), day)?.days;
    let current = delta::files_by_partition(daily, &day.table)?;
    let mut wanted = Vec::new();
    for (dt, files) in &by_day {
        if stale.contains(dt.as_str()) || present.contains(dt) {
            continue;
        }
        let Some(inputs) = inputs.get(dt.as_str()) else {
            continue;
        };
        let bytes: u64 = inputs
            .iter()
            .map(|f| u64::try_from(f.size).unwrap_or(0))
            .sum();
        if bytes > MAX_DAY_INPUT_BYTES {
            tracing::info!(
                dt,
                bytes,
                "{}: a day too large for a day rollup; its hours are read instead",
                day.table.dir
            );
            continue;
        }
        // The day's file before this change, if it has one: what it holds
        // is kept as it is when only files were added since.
        let base = current
            .get(std::slice::from_ref(dt))
            .and_then(|files| files.first());
        wanted.push(DayToWrite {
            path: path_for(day, dt, files),
            dt,
            files,
            inputs,
            base,
        });
    }
    // Two days at a time: encoding a day's strings is the cost, one core each.
    let made: HashMap<String, usize> = futures::stream::iter(wanted)
        .map(|wanted| async move {
            let DayToWrite {
                path,
                dt,
                files,
                inputs,
                base,
            } = wanted;
            let file = match base {
                Some(base) => append(lake, day, dt, files, inputs, base).await?,
                None => None,
            };
            let file = match file {
                Some(file) => file,
                None => build(lake, day, files, inputs).await?,
            };
            let size = file.len();
            let location = delta::file_location(lake, &day.table, &path);
            lake.store().put(&location, PutPayload::from(file)).await?;
            Ok::<_, Error>((path, size))
        })
        .buffer_unordered(2)
        .try_collect()
        .await?;
    commit(requests, daily, day, &made).await?;
    Ok(made.len() as u64)
}

/// The key of a day file's footer metadata that lists the `requests` files
/// it holds, one path per line, in order: what [`append`] needs to know of a
/// day file to add to it. The file's name is the digest of the same list, so
/// the list is trusted only while it hashes to the name.
const FILES_KEY: &str = "edgemeter.requests_files";

/// The `requests` files a day file's footer lists ([`FILES_KEY`]), if it
/// lists them; the caller trusts the list only while it hashes to the
/// file's name.
pub(crate) fn files_held(footer: &ParquetMetaData) -> Option<Vec<String>> {
    footer
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == FILES_KEY))
        .and_then(|kv| kv.value.as_deref())
        .map(|list| list.lines().map(str::to_string).collect())
}

/// Row groups a day file may reach by [`append`]: each late file adds one,
/// and past this many the day is written whole again (one row group).
const MAX_ROW_GROUPS: usize = 32;

/// Bytes of hourly rollup files a day file may be added to by [`append`]
/// (about three busy hours of the benchmark set); more is written whole.
pub(crate) const MAX_APPEND_BYTES: u64 = 4 << 20;

/// The writer settings of a day file that holds `files`.
pub(crate) fn day_file_properties(files: &[String]) -> WriterProperties {
    rollup_writer_properties(None)
        .into_builder()
        .set_key_value_metadata(Some(vec![KeyValue::new(
            FILES_KEY.to_string(),
            files.join("\n"),
        )]))
        .build()
}

/// An hourly rollup file's bytes, with the hour it is of.
struct HourlyFile {
    location: object_store::path::Path,
    hour: String,
    data: Bytes,
}

/// Reads the hourly rollup files `inputs` of `day`.
async fn read_hourly(
    lake: &Lake,
    day: &DayRollup,
    inputs: &[&DataFile],
) -> Result<Vec<HourlyFile>> {
    let mut read = Vec::with_capacity(inputs.len());
    for file in inputs {
        let location = delta::file_location(lake, &day.hourly.table, &file.path);
        let hour = file
            .path
            .split('/')
            .find_map(|part| part.strip_prefix("hour="))
            .ok_or_else(|| Error::Lake(format!("{location}: not in an hour's partition")))?
            .to_string();
        let data = lake.store().get(&location).await?.bytes().await?;
        read.push(HourlyFile {
            location,
            hour,
            data,
        });
    }
    Ok(read)
}

/// The rows of one hourly rollup file, with the hour it came from, as
/// batches of the day rollup's `schema`.
fn hour_rows(
    hourly_schema: &SchemaRef,
    schema: &SchemaRef,
    file: HourlyFile,
) -> Result<Vec<RecordBatch>> {
    let batches = decode_as(file.data, hourly_schema)
        .map_err(|e| Error::Lake(format!("{}: {e}", file.location)))?;
    batches
        .into_iter()
        .map(|batch| {
            let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
            columns.push(Arc::new(StringArray::from(vec![
                file.hour.as_str();
                batch.num_rows()
            ])));
            Ok(RecordBatch::try_new(schema.clone(), columns)?)
        })
        .collect()
}

/// One day's file: the rows of its hourly rollup files `inputs` (those of
/// the `requests` files `files`), each with the hour it came from.
async fn build(
    lake: &Lake,
    day: &DayRollup,
    files: &[String],
    inputs: &[&DataFile],
) -> Result<Bytes> {
    let data = read_hourly(lake, day, inputs).await?;
    let hourly_schema = (day.hourly.table.file_schema)();
    let schema = (day.table.file_schema)();
    let properties = day_file_properties(files);
    crate::cpu::run(move || {
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, schema.clone(), Some(properties))?;
        // An hour at a time: a day's rows are never all decoded at once.
        for file in data {
            for batch in hour_rows(&hourly_schema, &schema, file)? {
                writer.write(&batch)?;
            }
        }
        writer.close()?;
        Ok::<_, Error>(Bytes::from(out))
    })
    .await?
}

/// The day's new file made from its old one, `base`, when the day has only
/// gained `requests` files since `base` was written (late logs into hours
/// whose files stay as they are): `base`'s row groups copied as they are,
/// encoded bytes and all, then one row group of the new files' hourly
/// rollups. So a late file costs the day its own rows, not the day's.
///
/// `None` (write the day whole) when `base` does not list its files (written
/// before the list was kept, or the list does not hash to its name), when a
/// file it holds is gone (a merge rewrote an hour, or rows were taken out),
/// when it has [`MAX_ROW_GROUPS`] row groups already, or when the added
/// hourly rollup files hold more than [`MAX_APPEND_BYTES`].
async fn append(
    lake: &Lake,
    day: &DayRollup,
    dt: &str,
    files: &[String],
    inputs: &[&DataFile],
    base: &DataFile,
) -> Result<Option<Bytes>> {
    let location = delta::file_location(lake, &day.table, &base.path);
    let old = lake.store().get(&location).await?.bytes().await?;
    let footer = match parquet_io::footer(&old) {
        Ok(footer) => footer,
        Err(e) => {
            tracing::warn!("{location}: {e}; the day is written whole");
            return Ok(None);
        }
    };
    let Some(held) = files_held(&footer).filter(|held| path_for(day, dt, held) == base.path) else {
        return Ok(None);
    };
    // Columns of another layout (a column added since) cannot be copied.
    let schema = (day.table.file_schema)();
    let columns = footer.file_metadata().schema_descr().columns();
    let same_columns = columns.len() == schema.fields().len()
        && columns
            .iter()
            .zip(schema.fields())
            .all(|(column, field)| column.path().string() == *field.name());
    let now: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    if !same_columns
        || footer.num_row_groups() >= MAX_ROW_GROUPS
        || held.iter().any(|f| !now.contains(f.as_str()))
    {
        return Ok(None);
    }
    // The hourly rollup file of each added `requests` file.
    let by_path: HashMap<&str, &DataFile> = inputs.iter().map(|f| (f.path.as_str(), *f)).collect();
    let held: BTreeSet<&str> = held.iter().map(String::as_str).collect();
    let mut added = Vec::new();
    for file in files.iter().filter(|f| !held.contains(f.as_str())) {
        match by_path.get(rollup::path_for(&day.hourly, file).as_str()) {
            Some(input) => added.push(*input),
            None => return Ok(None),
        }
    }
    // The added row group is decoded whole before it is encoded: past a few
    // hours' worth, writing the day whole (an hour at a time) holds less.
    let added_bytes: u64 = added
        .iter()
        .map(|f| u64::try_from(f.size).unwrap_or(u64::MAX))
        .sum();
    if added_bytes > MAX_APPEND_BYTES {
        return Ok(None);
    }
    let data = read_hourly(lake, day, &added).await?;
    let hourly_schema = (day.hourly.table.file_schema)();
    let properties = day_file_properties(files);
    let file = crate::cpu::run(move || {
        let mut rows = Vec::new();
        for file in data {
            rows.extend(hour_rows(&hourly_schema, &schema, file)?);
        }
        let rows = datafusion::arrow::compute::concat_batches(&schema, &rows)?;
        let mut out = Vec::new();
        let (mut writer, factory) =
            ArrowWriter::try_new(&mut out, schema.clone(), Some(properties))?
                .into_serialized_writer()?;
        parquet_io::copy_row_groups(&mut writer, &old, &footer)?;
        if rows.num_rows() > 0 {
            parquet_io::write_row_group(&mut writer, &factory, footer.num_row_groups(), &rows)?;
        }
        writer.close()?;
        Ok::<_, Error>(Bytes::from(out))
    })
    .await??;
    Ok(Some(file))
}

/// Commits the day files `made` (path → size) and takes out every other
/// file: each day keeps at most the file of its current set of `requests`
/// files, and a day that `requests` no longer has keeps none. A file made for
/// a set that another writer has changed since is not added.
async fn commit(
    requests: &mut DeltaTable,
    daily: &mut DeltaTable,
    day: &DayRollup,
    made: &HashMap<String, usize>,
) -> Result<()> {
    let wanted = |by_day: &BTreeMap<String, Vec<String>>| {
        by_day
            .iter()
            .map(|(dt, files)| (dt.clone(), path_for(day, dt, files)))
            .collect()
    };
    commit_day_files(requests, daily, &day.table, wanted, made).await
}

/// Commits to `table` (of `def`, partitioned by day) the files `made` (path
/// → size) and takes out every other file: each day keeps at most the file
/// `wanted` names for it from the days' `requests` files, and a day that
/// `requests` no longer has keeps none. `wanted` is asked again from the
/// newest `requests` at each attempt, so a file made for files another
/// writer has changed since is not added.
pub(crate) async fn commit_day_files(
    requests: &mut DeltaTable,
    table: &mut DeltaTable,
    def: &TableDef,
    wanted: impl Fn(&BTreeMap<String, Vec<String>>) -> BTreeMap<String, String>,
    made: &HashMap<String, usize>,
) -> Result<()> {
    for attempt in 0..delta::MAX_ATTEMPTS {
        delta::catch_up(requests).await?;
        let by_day = requests_by_day(requests)?;
        let wanted = wanted(&by_day);
        let existing = delta::files_by_partition(table, def)?;
        let days: BTreeSet<&str> = by_day
            .keys()
            .chain(existing.keys().filter_map(|p| p.first()))
            .map(String::as_str)
            .collect();
        let mut actions = Vec::new();
        for dt in days {
            let partition = vec![dt.to_string()];
            let wanted = wanted.get(dt);
            let olds = existing.get(&partition).map(Vec::as_slice).unwrap_or(&[]);
            for old in olds.iter().filter(|f| Some(&f.path) != wanted) {
                actions.push(delta::remove_action(def, &partition, old));
            }
            if let Some(wanted) = wanted
                && let Some(&size) = made.get(wanted)
                && !olds.iter().any(|f| &f.path == wanted)
            {
                actions.push(delta::add_action(
                    def,
                    &partition,
                    wanted.clone(),
                    size,
                    None,
                ));
            }
        }
        if delta::commit_replacing(table, def, actions, attempt).await? {
            return Ok(());
        }
    }
    Err(delta::gave_up(def.dir))
}
