//! `usage_daily_totals`: a day's usage by key and status, without the hour.
//!
//! A day rollup of `usage_hourly_keys` ([`super::daily`]) keeps a row per
//! hour, key and status, so a month of per-key usage still sums a row per
//! key and status for every hour of the month (2.41 million on the
//! benchmark's 10× lake). What sums whole UTC days and nothing finer (usage
//! without windows, or by day or month in UTC) needs only each day's totals:
//! a row per key and status and day, about a twentieth of the rows.
//!
//! A day's totals are the sums of its `usage_daily_keys` file over the
//! hours (with each key's greatest hint of the day), and are named, like it, for the exact set of the day's `requests`
//! files (`day-<digest>.parquet`, with a layout of their own in the digest).
//! A reader takes a day's totals only while that set is the day's set in the
//! `requests` snapshot it reads ([`pair`]), and reads the day from
//! `usage_hourly_keys` otherwise; so the totals are exact whenever they are
//! read, for the reason the day rollups are. They are written after the day
//! rollups, at the end of every ingest run and by `maintain`, for every day
//! whose `usage_daily_keys` file pairs and that lacks totals of the same set,
//! from that file alone (decoded a batch at a time; the totals of a day are
//! held in memory, a row per key and status). A day that has only gained
//! files since its totals were written (late logs, the common case) is
//! summed from its old totals and the added files' hourly rollups instead
//! ([`add_to`]): the old file's footer lists the `requests` files it sums,
//! trusted only while the list hashes to its name, as the day rollups'.
//!
//! The totals are a table of their own, not rows in the day rollup's file:
//! any engine that sums a table sums every row of it.

use super::Lake;
use super::daily::{self, DAY_KEYS, DayPairing};
use super::delta::{self, TableDef};
use super::layout::{USAGE_DAILY_TOTALS_DIR, dt_of_partition_dir};
use super::parquet_io;
use super::rollup::{self, BY_KEY};
use crate::error::{Error, Result};
use bytes::Bytes;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int16Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{Field, Int16Type, Int64Type, Schema, SchemaRef};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::{ArrowWriter, ProjectionMask};
use deltalake::DeltaTable;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, PutPayload};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};

/// The version of what a file holds: part of its name's digest, so a file
/// of another layout never pairs.
const LAYOUT: &str =
    "usage_daily_totals/1 a day's requests files; usage_hourly_keys sums by key and status";

/// `usage_hourly_keys`' columns with `day_start` in place of `hour_start`.
static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let fields: Vec<Field> = rollup::keys_schema()
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "hour_start" => f.as_ref().clone().with_name("day_start"),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
});

/// The schema of the Parquet files under `usage_daily_totals/`.
pub(crate) fn file_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// The `usage_daily_totals` table, partitioned by day.
pub(crate) const DAY_TOTALS_TABLE: TableDef = TableDef {
    dir: USAGE_DAILY_TOTALS_DIR,
    file_schema,
    partition_by: &["dt"],
    stats_columns: &["api_key_id"],
};

/// The path (relative to the table) of the totals of the `requests` files
/// `files` (paths relative to `requests`, in order) of `dt`.
pub(crate) fn path_for(dt: &str, files: &[String]) -> String {
    daily::day_path(LAYOUT, dt, files)
}

/// Pairs every day of `requests` (as [`daily::requests_by_day`] gives them)
/// with its totals in `totals`.
pub(crate) fn pair(
    requests: &BTreeMap<String, Vec<String>>,
    totals: Option<&DeltaTable>,
) -> Result<DayPairing> {
    daily::pair_named(requests, totals, &DAY_TOTALS_TABLE, path_for)
}

/// Writes the totals of every day whose file in `day_keys` (the table of
/// `usage_daily_keys`) pairs with `requests` and that lacks them, and takes
/// out those of sets of files that are gone; returns how many files it
/// wrote.
pub(crate) async fn write(
    lake: &Lake,
    requests: &mut DeltaTable,
    day_keys: &DeltaTable,
) -> Result<u64> {
    let by_day = daily::requests_by_day(requests)?;
    let sources = daily::pair(&by_day, Some(day_keys), &DAY_KEYS)?;
    let mut totals = delta::open_or_create(lake, &DAY_TOTALS_TABLE).await?;
    let present = pair(&by_day, Some(&totals))?.days;
    let wanted: Vec<(&str, &String)> = sources
        .valid
        .iter()
        .filter_map(|source| {
            let dt = dt_of_partition_dir(source)?;
            (!present.contains(dt)).then_some((dt, source))
        })
        .collect();
    // Each day's totals before, if it has them: added to when the day has
    // only gained files since.
    let current = delta::files_by_partition(&totals, &DAY_TOTALS_TABLE)?;
    let by_day = &by_day;
    let current = &current;
    let made: HashMap<String, usize> = futures::stream::iter(wanted)
        .map(|(dt, source)| async move {
            let files = by_day.get(dt).map(Vec::as_slice).unwrap_or(&[]);
            let base = current
                .get(&vec![dt.to_string()])
                .and_then(|files| files.first());
            let added = match base {
                Some(base) => add_to(lake, dt, files, &base.path).await?,
                None => None,
            };
            let file = match added {
                Some(file) => file,
                None => {
                    let location = delta::file_location(lake, &DAY_KEYS.table, source);
                    let data = lake.store().get(&location).await?.bytes().await?;
                    let (day, files) = (dt.to_string(), files.to_vec());
                    crate::cpu::run(move || {
                        let mut sums = DaySums::default();
                        sums.read(data)?;
                        sums.encode(&day, &files)
                    })
                    .await?
                    .map_err(|e| Error::Lake(format!("{location}: {e}")))?
                }
            };
            let path = path_for(dt, files);
            let size = file.len();
            let target = delta::file_location(lake, &DAY_TOTALS_TABLE, &path);
            lake.store().put(&target, PutPayload::from(file)).await?;
            Ok::<_, Error>((path, size))
        })
        .buffer_unordered(2)
        .try_collect()
        .await?;
    let wanted = |by_day: &BTreeMap<String, Vec<String>>| {
        by_day
            .iter()
            .map(|(dt, files)| (dt.clone(), path_for(dt, files)))
            .collect()
    };
    daily::commit_day_files(requests, &mut totals, &DAY_TOTALS_TABLE, wanted, &made).await?;
    Ok(made.len() as u64)
}

/// The day's new totals made from its old ones, `base`, when the day has
/// only gained `requests` files since `base` was written (late logs into
/// hours whose files stay as they are): `base`'s rows and the hourly rollup
/// (`usage_hourly_keys`) files of the added files, summed. So a late file
/// costs the day's totals their own rows and the added file's, not the
/// day's rollup.
///
/// `None` (sum the day's rollup file whole) when `base` does not list its
/// files (or the list does not hash to its name), when a file it holds is
/// gone, when an added file's hourly rollup is missing, or when those hold
/// more than [`daily::MAX_APPEND_BYTES`].
async fn add_to(lake: &Lake, dt: &str, files: &[String], base: &str) -> Result<Option<Bytes>> {
    let location = delta::file_location(lake, &DAY_TOTALS_TABLE, base);
    let old = lake.store().get(&location).await?.bytes().await?;
    let footer = match parquet_io::footer(&old) {
        Ok(footer) => footer,
        Err(e) => {
            tracing::warn!("{location}: {e}; the day's totals are summed whole");
            return Ok(None);
        }
    };
    let Some(held) = daily::files_held(&footer).filter(|held| path_for(dt, held) == base) else {
        return Ok(None);
    };
    let now: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    if held.iter().any(|f| !now.contains(f.as_str())) {
        return Ok(None);
    }
    let held: BTreeSet<&str> = held.iter().map(String::as_str).collect();
    let mut added = Vec::new();
    let mut bytes = 0;
    for file in files.iter().filter(|f| !held.contains(f.as_str())) {
        let input = delta::file_location(lake, &BY_KEY.table, &rollup::path_for(&BY_KEY, file));
        let data = match lake.store().get(&input).await {
            Ok(got) => got.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        bytes += data.len() as u64;
        if bytes > daily::MAX_APPEND_BYTES {
            return Ok(None);
        }
        added.push((input, data));
    }
    tracing::debug!(
        dt,
        added = added.len(),
        "{}: the day's totals added to",
        DAY_TOTALS_TABLE.dir
    );
    let (day, files) = (dt.to_string(), files.to_vec());
    let file = crate::cpu::run(move || {
        let mut sums = DaySums::default();
        sums.read(old)
            .map_err(|e| Error::Lake(format!("{location}: {e}")))?;
        for (input, data) in added {
            sums.read(data)
                .map_err(|e| Error::Lake(format!("{input}: {e}")))?;
        }
        sums.encode(&day, &files)
    })
    .await??;
    Ok(Some(file))
}

/// A day's sums of one key (or of requests without one): the greatest
/// hint, and per status its requests, bytes out and bytes in.
#[derive(Default)]
struct KeySums {
    hint: Option<String>,
    statuses: Vec<(Option<i16>, [i64; 3])>,
}

impl KeySums {
    fn add(&mut self, hint: Option<&str>, status: Option<i16>, values: [i64; 3]) -> Result<()> {
        if hint.is_some() && self.hint.as_deref() < hint {
            self.hint = hint.map(str::to_string);
        }
        // A key has a handful of statuses in a day.
        let at = match self.statuses.iter().position(|(s, _)| *s == status) {
            Some(at) => at,
            None => {
                self.statuses.push((status, [0; 3]));
                self.statuses.len() - 1
            }
        };
        let sums = &mut self.statuses[at].1;
        for (i, (sum, value)) in sums.iter_mut().zip(values).enumerate() {
            *sum = sum.checked_add(value).ok_or_else(|| {
                Error::Lake(format!("the day's {} overflow a 64-bit sum", SUMMED[i]))
            })?;
        }
        Ok(())
    }
}

/// A row of a totals file: key, hint, status and the sums.
type TotalsRow<'a> = (Option<&'a str>, Option<&'a str>, Option<i16>, [i64; 3]);

/// A day's sums: per key, and of requests without a key.
#[derive(Default)]
struct DaySums {
    keys: HashMap<String, KeySums>,
    keyless: KeySums,
}

/// The columns summed, in the order of [`KeySums`]' sums.
const SUMMED: [&str; 3] = ["requests", "bytes_out", "bytes_in"];

/// The columns of a `usage_daily_keys` file the totals read.
const READ: [&str; 6] = [
    "api_key_id",
    "api_key_hint",
    "sc_status",
    "requests",
    "bytes_out",
    "bytes_in",
];

impl DaySums {
    /// Adds the rows of a Parquet file of key and status sums (of
    /// `usage_daily_keys`, `usage_hourly_keys` or these totals), read a
    /// batch at a time.
    fn read(&mut self, data: Bytes) -> Result<()> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(data)?;
        let read: Vec<usize> = builder
            .schema()
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| READ.contains(&f.name().as_str()))
            .map(|(i, _)| i)
            .collect();
        let projection = ProjectionMask::roots(builder.parquet_schema(), read);
        let reader = builder
            .with_projection(projection)
            .with_batch_size(64 * 1024)
            .build()?;
        for batch in reader {
            add_rows(self, &batch?)?;
        }
        Ok(())
    }

    /// The totals file of the day `dt`, that sums the `requests` files
    /// `files`: a row per key and status, ordered by key (keyless last) and
    /// status (none last).
    fn encode(&self, dt: &str, files: &[String]) -> Result<Bytes> {
        let day_start = chrono::NaiveDate::parse_from_str(dt, "%Y-%m-%d")
            .map_err(|e| Error::Lake(format!("day {dt:?}: {e}")))?
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis();
        let mut keys: Vec<(Option<&str>, &KeySums)> = self
            .keys
            .iter()
            .map(|(key, sums)| (Some(key.as_str()), sums))
            .collect();
        keys.sort_unstable_by_key(|(key, _)| *key);
        if !self.keyless.statuses.is_empty() {
            keys.push((None, &self.keyless));
        }
        let mut rows: Vec<TotalsRow<'_>> = Vec::new();
        for (key, sums) in keys {
            let mut statuses: Vec<&(Option<i16>, [i64; 3])> = sums.statuses.iter().collect();
            statuses.sort_unstable_by_key(|(status, _)| (status.is_none(), *status));
            for (status, values) in statuses {
                rows.push((key, sums.hint.as_deref(), *status, *values));
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(
                TimestampMillisecondArray::from(vec![day_start; rows.len()]).with_timezone("UTC"),
            ),
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.1))),
            Arc::new(Int16Array::from_iter(rows.iter().map(|r| r.2))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.3[0]))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.3[1]))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.3[2]))),
        ];
        let batch = RecordBatch::try_new(file_schema(), columns)?;
        let mut out = Vec::new();
        let properties = daily::day_file_properties(files);
        let mut writer = ArrowWriter::try_new(&mut out, file_schema(), Some(properties))?;
        writer.write(&batch)?;
        writer.close()?;
        Ok(Bytes::from(out))
    }
}

/// Adds the rows of a batch of a `usage_daily_keys` file to `day`.
fn add_rows(day: &mut DaySums, batch: &RecordBatch) -> Result<()> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| Error::Lake(format!("the file lacks column {name}")))
    };
    let mistyped = |name: &str| Error::Lake(format!("column {name} is not of its type"));
    let key = column("api_key_id")?
        .as_string_opt::<i32>()
        .ok_or_else(|| mistyped("api_key_id"))?;
    let hint = column("api_key_hint")?
        .as_string_opt::<i32>()
        .ok_or_else(|| mistyped("api_key_hint"))?;
    let status = column("sc_status")?
        .as_primitive_opt::<Int16Type>()
        .ok_or_else(|| mistyped("sc_status"))?;
    let summed = |name: &'static str| {
        column(name)?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| mistyped(name))
    };
    let summed = [summed(SUMMED[0])?, summed(SUMMED[1])?, summed(SUMMED[2])?];
    for row in 0..batch.num_rows() {
        let sums = match key.is_valid(row) {
            true => {
                let key = key.value(row);
                // The key's string is copied once, when the day first has it.
                if !day.keys.contains_key(key) {
                    day.keys.insert(key.to_string(), KeySums::default());
                }
                day.keys
                    .get_mut(key)
                    .ok_or_else(|| Error::Lake(format!("key {key} not kept")))?
            }
            false => &mut day.keyless,
        };
        sums.add(
            hint.is_valid(row).then(|| hint.value(row)),
            status.is_valid(row).then(|| status.value(row)),
            summed.map(|column| column.value(row)),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::parquet_io::decode;
    use datafusion::arrow::datatypes::DataType;

    fn sum_day(dt: &str, data: Bytes) -> Result<Bytes> {
        let mut sums = DaySums::default();
        sums.read(data)?;
        sums.encode(dt, &[])
    }

    /// A `usage_daily_keys` file of rows (hour, key, hint, status,
    /// requests, bytes out, bytes in), written as one row group per batch.
    type DayRow = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        Option<i16>,
        i64,
        i64,
        i64,
    );

    fn day_keys_file(batches: &[&[DayRow]]) -> Bytes {
        let schema = daily::keys_day_schema();
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, schema.clone(), None).unwrap();
        for rows in batches {
            let hour_start = |h: &str| {
                let hour: i64 = h.parse().unwrap();
                1_759_622_400_000 + hour * 3_600_000
            };
            let columns: Vec<ArrayRef> = vec![
                Arc::new(
                    TimestampMillisecondArray::from_iter_values(
                        rows.iter().map(|r| hour_start(r.0)),
                    )
                    .with_timezone("UTC"),
                ),
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.1))),
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.2))),
                Arc::new(Int16Array::from_iter(rows.iter().map(|r| r.3))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.4))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.5))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.6))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            ];
            writer
                .write(&RecordBatch::try_new(schema.clone(), columns).unwrap())
                .unwrap();
            writer.flush().unwrap();
        }
        writer.close().unwrap();
        Bytes::from(out)
    }

    /// A day's hours are summed by key and status, across row groups, with
    /// the key's greatest hint, keyless and statusless rows kept as groups of
    /// their own, ordered by key (keyless last) and status.
    #[test]
    fn a_days_totals_are_its_hours_summed_by_key_and_status() {
        let file = day_keys_file(&[
            &[
                ("00", Some("aa"), Some("…a1"), Some(200), 3, 30, 3),
                ("01", Some("aa"), Some("…a1"), Some(200), 2, 20, 2),
                ("01", Some("aa"), None, Some(404), 1, 5, 1),
                ("02", None, None, Some(200), 4, 40, 4),
            ],
            &[
                ("03", Some("bb"), Some("…b1"), None, 1, 0, 0),
                ("03", None, None, Some(200), 1, 1, 1),
                ("23", Some("aa"), Some("…a2"), Some(404), 7, 70, 7),
            ],
        ]);
        let totals = sum_day("2025-10-05", file).unwrap();
        let batches = decode(totals).unwrap();
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        assert_eq!(batch.schema(), file_schema());
        let day = batch
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>();
        assert!(day.iter().all(|d| d == Some(1_759_622_400_000)));
        let strings = |i: usize| -> Vec<Option<String>> {
            batch
                .column(i)
                .as_string::<i32>()
                .iter()
                .map(|s| s.map(str::to_string))
                .collect()
        };
        let ints = |i: usize| -> Vec<i64> {
            batch
                .column(i)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        };
        let some = |s: &str| Some(s.to_string());
        assert_eq!(strings(1), [some("aa"), some("aa"), some("bb"), None]);
        // The key's greatest hint of the day, on each of its rows.
        assert_eq!(strings(2), [some("…a2"), some("…a2"), some("…b1"), None]);
        let status: Vec<Option<i16>> = batch.column(3).as_primitive::<Int16Type>().iter().collect();
        assert_eq!(status, [Some(200), Some(404), None, Some(200)]);
        assert_eq!(ints(4), [5, 8, 1, 5]);
        assert_eq!(ints(5), [50, 75, 0, 41]);
        assert_eq!(ints(6), [5, 8, 0, 5]);
    }

    /// A file that is not a day rollup of keys is an error naming what it
    /// lacks, not totals of nothing.
    #[test]
    fn a_file_without_the_columns_is_refused() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, schema.clone(), None).unwrap();
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let error = sum_day("2025-10-05", Bytes::from(out)).unwrap_err();
        assert!(
            error.to_string().contains("lacks column api_key_id"),
            "{error}"
        );
    }
}
