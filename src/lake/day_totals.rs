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
//! hours, and are named, like it, for the exact set of the day's `requests`
//! files (`day-<digest>.parquet`, with a layout of their own in the digest).
//! A reader takes a day's totals only while that set is the day's set in the
//! `requests` snapshot it reads ([`pair`]), and reads the day from
//! `usage_hourly_keys` otherwise; so the totals are exact whenever they are
//! read, for the reason the day rollups are. They are written after the day
//! rollups, at the end of every ingest run and by `maintain`, for every day
//! whose `usage_daily_keys` file pairs and that lacks totals of the same set,
//! from that file alone (decoded a batch at a time; the totals of a day are
//! held in memory, a row per key and status).
//!
//! The totals are a table of their own, not rows in the day rollup's file:
//! any engine that sums a table sums every row of it.

use super::Lake;
use super::daily::{self, DAY_KEYS, DayPairing};
use super::delta::{self, AsOf, TableDef};
use super::layout::{USAGE_DAILY_TOTALS_DIR, dt_of_partition_dir};
use super::parquet_io::rollup_writer_properties;
use crate::error::{Error, Result};
use bytes::Bytes;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int16Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{
    DataType, Field, Int16Type, Int64Type, Schema, SchemaRef, TimeUnit,
};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::DeltaTable;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, PutPayload};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};

/// The version of what a file holds: part of its name's digest, so a file
/// of another layout never pairs.
const LAYOUT: &str =
    "usage_daily_totals/1 a day's requests files; usage_hourly_keys sums by key and status";

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(
            "day_start",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("api_key_id", DataType::Utf8, true),
        Field::new("api_key_hint", DataType::Utf8, true),
        Field::new("sc_status", DataType::Int16, true),
        Field::new("requests", DataType::Int64, false),
        Field::new("bytes_out", DataType::Int64, false),
        Field::new("bytes_in", DataType::Int64, false),
    ]))
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
    let mut pairing = DayPairing::default();
    let Some(totals) = totals else {
        return Ok(pairing);
    };
    let present: BTreeSet<String> = delta::files_by_partition(totals, &DAY_TOTALS_TABLE)?
        .into_values()
        .flatten()
        .map(|f| f.path)
        .collect();
    for (dt, files) in requests {
        let path = path_for(dt, files);
        if present.contains(&path) {
            pairing.valid.push(path);
            pairing.days.insert(dt.clone());
        }
    }
    Ok(pairing)
}

/// Writes the totals of every day whose `usage_daily_keys` file pairs with
/// `requests` and that lacks them, and takes out those of sets of files that
/// are gone; returns how many files it wrote.
pub(crate) async fn write(lake: &Lake, requests: &mut DeltaTable) -> Result<u64> {
    let Some(day_keys) = delta::open(lake, &DAY_KEYS.table, AsOf::Latest).await? else {
        return Ok(0);
    };
    let by_day = daily::requests_by_day(requests)?;
    let sources = daily::pair(&by_day, Some(&day_keys), &DAY_KEYS)?;
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
    let by_day = &by_day;
    let made: HashMap<String, usize> = futures::stream::iter(wanted)
        .map(|(dt, source)| async move {
            let files = by_day.get(dt).map(Vec::as_slice).unwrap_or(&[]);
            let location = delta::file_location(lake, &DAY_KEYS.table, source);
            let data = lake.store().get(&location).await?.bytes().await?;
            let day = dt.to_string();
            let file = crate::cpu::run(move || sum_day(&day, data))
                .await?
                .map_err(|e| Error::Lake(format!("{location}: {e}")))?;
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

/// A key and status of a day.
type Group = (Option<String>, Option<i16>);

/// The sums of one [`Group`]: the greatest hint, requests, bytes out and in.
#[derive(Default)]
struct Sums {
    hint: Option<String>,
    requests: i64,
    bytes_out: i64,
    bytes_in: i64,
}

/// The totals file of the day `dt` from its `usage_daily_keys` file `data`:
/// its rows summed over the hours by key and status, ordered by key (keyless
/// last) and status.
fn sum_day(dt: &str, data: Bytes) -> Result<Bytes> {
    let day_start = chrono::NaiveDate::parse_from_str(dt, "%Y-%m-%d")
        .map_err(|e| Error::Lake(format!("day {dt:?}: {e}")))?
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .timestamp_millis();
    let reader = ParquetRecordBatchReaderBuilder::try_new(data)?
        .with_batch_size(64 * 1024)
        .build()?;
    let mut sums: HashMap<Group, Sums> = HashMap::new();
    for batch in reader {
        add_rows(&mut sums, &batch?)?;
    }
    let mut groups: Vec<(Group, Sums)> = sums.into_iter().collect();
    groups.sort_unstable_by(|(a, _), (b, _)| {
        (a.0.is_none(), &a.0, a.1.is_none(), a.1).cmp(&(b.0.is_none(), &b.0, b.1.is_none(), b.1))
    });
    let rows = groups.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from(vec![day_start; rows]).with_timezone("UTC")),
        Arc::new(StringArray::from_iter(
            groups.iter().map(|((key, _), _)| key.as_deref()),
        )),
        Arc::new(StringArray::from_iter(
            groups.iter().map(|(_, sums)| sums.hint.as_deref()),
        )),
        Arc::new(Int16Array::from_iter(
            groups.iter().map(|((_, status), _)| *status),
        )),
        Arc::new(Int64Array::from_iter_values(
            groups.iter().map(|(_, s)| s.requests),
        )),
        Arc::new(Int64Array::from_iter_values(
            groups.iter().map(|(_, s)| s.bytes_out),
        )),
        Arc::new(Int64Array::from_iter_values(
            groups.iter().map(|(_, s)| s.bytes_in),
        )),
    ];
    let batch = RecordBatch::try_new(file_schema(), columns)?;
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(
        &mut out,
        file_schema(),
        Some(rollup_writer_properties(None)),
    )?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(Bytes::from(out))
}

/// Adds the rows of a batch of a `usage_daily_keys` file to `sums`.
fn add_rows(sums: &mut HashMap<Group, Sums>, batch: &RecordBatch) -> Result<()> {
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
    let count = |name: &'static str| {
        column(name)?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| mistyped(name))
    };
    let [requests, bytes_out, bytes_in] =
        [count("requests")?, count("bytes_out")?, count("bytes_in")?];
    let add = |total: &mut i64, value: i64, name: &str| {
        *total = total
            .checked_add(value)
            .ok_or_else(|| Error::Lake(format!("the day's {name} overflow a 64-bit sum")))?;
        Ok::<_, Error>(())
    };
    for row in 0..batch.num_rows() {
        let group = (
            key.is_valid(row).then(|| key.value(row).to_string()),
            status.is_valid(row).then(|| status.value(row)),
        );
        let sums = sums.entry(group).or_default();
        if hint.is_valid(row) && sums.hint.as_deref() < Some(hint.value(row)) {
            sums.hint = Some(hint.value(row).to_string());
        }
        add(&mut sums.requests, requests.value(row), "requests")?;
        add(&mut sums.bytes_out, bytes_out.value(row), "bytes_out")?;
        add(&mut sums.bytes_in, bytes_in.value(row), "bytes_in")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::parquet_io::decode;

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
    /// the greatest hint, keyless and statusless rows kept as groups of
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
        assert_eq!(strings(2), [some("…a1"), some("…a2"), some("…b1"), None]);
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
