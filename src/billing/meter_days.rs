//! Meters kept per day: computing the files of `meters_daily`
//! ([`crate::lake::meter_days`]) for a plans file's meters, and which meters
//! they can hold.
//!
//! Every meter whose value over many days follows from its values per day
//! is kept: counts, sums, maxima and minima of integer columns, and distinct
//! counts (as each day's distinct values, so that a month counts a value
//! seen on many days once, each marked when it is the first of its UTC month
//! for its key and meter: the days of a month are written in order, and a
//! day's values are checked against the first-seen values of the month's
//! earlier days). Averages and aggregates of floating-point
//! columns are not: their values over a month are read from raw rows, as
//! the sum of a float column per day would not add up to the same digits.

use super::meters::{self, Aggregation, Meter, Meters};
use super::plans::Plans;
use crate::error::{Error, Result};
use crate::lake::delta::{self, AsOf};
use crate::lake::meter_days::{self, METERS_DAILY_TABLE, PRESENCE};
use crate::lake::parquet_io::{decode_as, rollup_writer_properties};
use crate::lake::{Lake, REQUESTS_TABLE};
use bytes::Bytes;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::{cast, filter_record_batch, not};
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::ArrowWriter;
use object_store::{ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The meters of a plans file, or only the built-in ones without one (with
/// the default billable statuses).
pub(crate) fn meters_of(plans: Option<&Plans>) -> Meters {
    match plans {
        Some(plans) => plans.meters.clone(),
        None => Meters::builtin(
            &super::plans::StatusSet::parse(
                &crate::schema::status::StatusClass::DEFAULT_BILLABLE.label(),
            )
            .expect("the default billable class parses"),
        ),
    }
}

/// Whether a day's values of `meter` give its value over any set of days.
pub(crate) fn kept(meter: &Meter) -> bool {
    let integer = || {
        meter.value.is_some_and(|column| {
            crate::schema::requests_schema()
                .field_with_name(column)
                .is_ok_and(|f| f.data_type().is_integer())
        })
    };
    match meter.aggregation {
        Aggregation::Count | Aggregation::UniqueCount => true,
        Aggregation::Sum | Aggregation::Max | Aggregation::Min => integer(),
        Aggregation::Avg => false,
    }
}

/// The digest of the definitions of the meters of `meters` that are
/// [`kept`] (`None` when none is): what a day's file is named for, so that
/// it pairs only with readers of the same definitions.
pub(crate) fn digest(meters: &Meters) -> Option<String> {
    let mut hasher = Sha256::new();
    let mut any = false;
    for meter in meters.0.values().filter(|m| kept(m)) {
        any = true;
        hasher.update(
            format!(
                "{}\u{1f}{}\u{1f}{:?}\u{1f}{:?}\n",
                meter.slug,
                meter.aggregation.name(),
                meter.value,
                meter.filter
            )
            .as_bytes(),
        );
    }
    any.then(|| hex::encode(&hasher.finalize()[..16]))
}

/// How a day's values are computed: as one stream, when memory counts more
/// than time (`--low-memory`: a day computed after an ingest run's batches
/// adds its memory to theirs), or one per core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Streams {
    One,
    PerCore,
}

impl Streams {
    fn count(self) -> usize {
        match self {
            Streams::One => 1,
            Streams::PerCore => std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// Writes the file of every day that lacks one for `meters`, and takes out
/// those of sets of files that are gone; returns how many files it wrote.
pub(crate) async fn write(lake: &Lake, meters: &Meters, streams: Streams) -> Result<u64> {
    let Some(digest) = digest(meters) else {
        return Ok(0);
    };
    let Some(mut requests) = delta::open(lake, &REQUESTS_TABLE, AsOf::Latest).await? else {
        return Ok(0);
    };
    let mut daily = delta::open_or_create(lake, &METERS_DAILY_TABLE).await?;
    let present = meter_days::present(Some(&daily))?;
    let by_day = crate::lake::daily::requests_by_day(&requests)?;
    let kept: Vec<&Meter> = meters.0.values().filter(|m| kept(m)).collect();
    let paths = meter_days::paths(&digest, &by_day);
    let any_unique = kept
        .iter()
        .any(|m| m.aggregation == Aggregation::UniqueCount);
    // The last day of each month that needs a file: the month's kept days
    // before it are read for the values they have seen.
    let mut last_wanted: HashMap<&str, &str> = HashMap::new();
    for (dt, path) in &paths {
        if !present.contains(path) {
            last_wanted.insert(month_of(dt), dt);
        }
    }
    let mut seen = Seen::default();
    let mut month = "";
    let mut made = HashMap::new();
    for (dt, files) in &by_day {
        if month_of(dt) != month {
            month = month_of(dt);
            seen = Seen::default();
        }
        let path = &paths[dt];
        if present.contains(path) {
            let later = last_wanted
                .get(month)
                .is_some_and(|last| *last > dt.as_str());
            if any_unique && later {
                seen.add_file(lake, path, &kept).await?;
            }
            continue;
        }
        let file = day_file(&requests, files, &kept, &mut seen, streams)
            .await
            .map_err(|e| Error::Lake(format!("{}: day {dt}: {e}", METERS_DAILY_TABLE.dir)))?;
        let size = file.len();
        let location = delta::file_location(lake, &METERS_DAILY_TABLE, path);
        lake.store().put(&location, PutPayload::from(file)).await?;
        made.insert(path.clone(), size);
    }
    meter_days::commit(&mut requests, &mut daily, &digest, &made).await?;
    Ok(made.len() as u64)
}

/// The UTC month (`YYYY-MM`) of a day (`YYYY-MM-DD`).
fn month_of(dt: &str) -> &str {
    dt.get(..7).unwrap_or(dt)
}

/// The distinct values of the `unique_count` meters seen on the earlier days
/// of a month: (the meter's index among the kept ones, key, value).
#[derive(Default)]
struct Seen(HashSet<(usize, Option<String>, String)>);

impl Seen {
    /// Adds the values a kept day's file saw first in its month: those of
    /// every earlier day of the month are first on one of them, so the days
    /// before a day, read in order, give all it has seen.
    async fn add_file(&mut self, lake: &Lake, path: &str, kept: &[&Meter]) -> Result<()> {
        let location = delta::file_location(lake, &METERS_DAILY_TABLE, path);
        let data = lake.store().get(&location).await?.bytes().await?;
        let batches = decode_as(data, &meter_days::file_schema())
            .map_err(|e| Error::Lake(format!("{location}: {e}")))?;
        for batch in batches {
            let meter = batch.column(0).as_string::<i32>();
            let key = batch.column(1).as_string::<i32>();
            let value = batch.column(4).as_string::<i32>();
            let first = batch.column(5).as_boolean();
            for row in 0..batch.num_rows() {
                if value.is_null(row) || !(first.is_valid(row) && first.value(row)) {
                    continue;
                }
                let Some(index) = kept.iter().position(|m| m.slug == meter.value(row)) else {
                    continue;
                };
                let key = key.is_valid(row).then(|| key.value(row).to_string());
                self.0.insert((index, key, value.value(row).to_string()));
            }
        }
        Ok(())
    }
}

/// One day's file: the values of `kept` over the `requests` files `files`;
/// a distinct value is first in its month unless `seen` has it, and is
/// added to it.
async fn day_file(
    requests: &deltalake::DeltaTable,
    files: &[String],
    kept: &[&Meter],
    seen: &mut Seen,
    streams: Streams,
) -> Result<Bytes> {
    let ctx = crate::query::requests_files_context(requests, files, streams.count())?;
    let mut params = Vec::new();
    let (unique, additive): (Vec<&Meter>, Vec<&Meter>) = kept
        .iter()
        .partition(|m| m.aggregation == Aggregation::UniqueCount);
    let mut select = vec![
        "api_key_id".to_string(),
        "max(api_key_hint) AS api_key_hint".to_string(),
        "count(*) AS presence".to_string(),
    ];
    for (i, meter) in additive.iter().enumerate() {
        let condition = meter.condition(&meters::RAW, &format!("m{i}"), &mut params);
        select.push(format!("{} AS m{i}", meter.measure(&condition)));
    }
    let sql = format!(
        "SELECT {} FROM requests GROUP BY api_key_id",
        select.join(", ")
    );
    let totals = ctx
        .sql(&sql)
        .await?
        .with_param_values(params)?
        .collect()
        .await?;
    let schema = meter_days::file_schema();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(
        &mut out,
        schema.clone(),
        Some(rollup_writer_properties(None)),
    )?;
    for batch in &totals {
        let keys = batch.column(0);
        let hints = cast(batch.column(1), &DataType::Utf8)?;
        let rows = batch.num_rows();
        let mut columns: Vec<(&str, ArrayRef)> =
            vec![(PRESENCE, cast(batch.column(2), &DataType::Int64)?)];
        for (i, meter) in additive.iter().enumerate() {
            columns.push((
                meter.slug.as_str(),
                cast(batch.column(3 + i), &DataType::Int64)?,
            ));
        }
        for (slug, values) in columns {
            let hint: ArrayRef = match slug == PRESENCE {
                true => hints.clone(),
                false => Arc::new(StringArray::new_null(rows)),
            };
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(vec![slug; rows])),
                    cast(keys, &DataType::Utf8)?,
                    hint,
                    values,
                    Arc::new(StringArray::new_null(rows)),
                    Arc::new(BooleanArray::new_null(rows)),
                ],
            )?;
            writer.write(&batch)?;
        }
    }
    // Three row groups: counts and sums, first-in-month values, the other
    // values. A reader of one kind skips the others by their statistics.
    writer.flush()?;
    let mut not_first = Vec::new();
    for (i, meter) in unique.iter().enumerate() {
        let index = kept
            .iter()
            .position(|m| m.slug == meter.slug)
            .unwrap_or_default();
        let mut params = Vec::new();
        let condition = meter.condition(&meters::RAW, &format!("u{i}"), &mut params);
        let value = meter.value.ok_or_else(|| {
            Error::Config(format!("meters.{}: unique_count needs a value", meter.slug))
        })?;
        let sql = format!(
            "SELECT DISTINCT api_key_id, CAST({value} AS VARCHAR) AS v FROM requests \
             WHERE ({condition}) AND {value} IS NOT NULL"
        );
        let distinct = ctx
            .sql(&sql)
            .await?
            .with_param_values(params)?
            .collect()
            .await?;
        for batch in distinct {
            let rows = batch.num_rows();
            let keys = cast(batch.column(0), &DataType::Utf8)?;
            let values = cast(batch.column(1), &DataType::Utf8)?;
            let first: BooleanArray = {
                let (keys, values) = (keys.as_string::<i32>(), values.as_string::<i32>());
                (0..rows)
                    .map(|row| {
                        let key = keys.is_valid(row).then(|| keys.value(row).to_string());
                        let value = values.value(row).to_string();
                        Some(seen.0.insert((index, key, value)))
                    })
                    .collect()
            };
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(vec![meter.slug.as_str(); rows])),
                    keys,
                    Arc::new(StringArray::new_null(rows)),
                    Arc::new(Int64Array::new_null(rows)),
                    values,
                    Arc::new(first.clone()),
                ],
            )?;
            writer.write(&filter_record_batch(&batch, &first)?)?;
            not_first.push(filter_record_batch(&batch, &not(&first)?)?);
        }
    }
    writer.flush()?;
    for batch in not_first {
        writer.write(&batch)?;
    }
    writer.close()?;
    Ok(Bytes::from(out))
}
