//! The `usage_hourly` rollup: per hour, per API key and per status, the request
//! count and bytes of that hour's rows in `requests`.
//!
//! A rollup file is always computed from every row of its hour (see
//! [`super::partition`]), so it is exact by construction and carries the same
//! generation number as the `requests` file it summarises. Usage and billing
//! read rollups for whole hours and raw rows only for the partial hours at the
//! edges of a range.

use super::Lake;
use super::parquet_io::{decode, encode, writer_properties};
use super::view::{newest_by_dir, part_file_name};
use crate::error::{Error, Result};
use bytes::Bytes;
use datafusion::arrow::array::{
    Array, AsArray, Int16Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int16Type, Int64Type, Schema, SchemaRef};
use datafusion::parquet::file::metadata::SortingColumn;
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

/// The rollup's table directory in the lake.
pub const ROLLUP_TABLE: &str = "usage_hourly";

/// Present once every hour of `requests` has its rollup. A lake written before
/// rollups existed lacks it: readers then derive `usage_hourly` from the raw
/// rows, and the next ingest builds the missing rollups and writes it.
pub const COMPLETE_MARKER: &str = "_edgemeter/rollup-complete";

/// True when every hour of the lake's `requests` has its rollup.
pub async fn is_complete(lake: &Lake) -> Result<bool> {
    match lake.store().head(&lake.path(COMPLETE_MARKER)).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Builds the rollup of every hour whose newest `requests` generation has none,
/// then writes [`COMPLETE_MARKER`]; a no-op once the marker exists. Returns the
/// number of hours rolled up.
pub async fn complete(lake: &Lake) -> Result<u64> {
    if is_complete(lake).await? {
        return Ok(0);
    }
    let requests = newest_generations(lake, "requests").await?;
    let rollups = newest_generations(lake, ROLLUP_TABLE).await?;
    let mut built = 0;
    for (dir, (generation, path)) in requests {
        if rollups.get(&dir).map(|(g, _)| *g) == Some(generation) {
            continue;
        }
        let Some(hour) = hour_of_dir(&dir) else {
            continue;
        };
        let rows = decode(lake.store().get(&path).await?.bytes().await?)?;
        let file = tokio::task::spawn_blocking(move || encode_hour(hour, &rows)).await??;
        let target = lake.path(&format!(
            "{ROLLUP_TABLE}/{dir}/{}",
            part_file_name(generation)
        ));
        lake.store().put(&target, PutPayload::from(file)).await?;
        built += 1;
    }
    let marker = serde_json::json!({"table": ROLLUP_TABLE, "version": 1}).to_string();
    lake.store()
        .put(&lake.path(COMPLETE_MARKER), PutPayload::from(marker))
        .await?;
    Ok(built)
}

/// The newest partition file of each `dt=…/hour=…` directory of a table, by
/// that directory relative to the table.
async fn newest_generations(
    lake: &Lake,
    table: &str,
) -> Result<HashMap<String, (u64, object_store::path::Path)>> {
    let root = lake.path(table).as_ref().to_string() + "/";
    let listed: Vec<_> = lake
        .store()
        .list(Some(&lake.path(table)))
        .try_collect()
        .await?;
    Ok(newest_by_dir(&listed)
        .into_iter()
        .filter_map(|(dir, (generation, path))| {
            let dir = dir.strip_prefix(root.as_str())?;
            Some((dir.to_string(), (generation, path.clone())))
        })
        .collect())
}

/// The hour number of a partition directory `dt=YYYY-MM-DD/hour=HH`.
fn hour_of_dir(dir: &str) -> Option<i64> {
    let (dt, hour) = dir.split_once('/')?;
    let date = chrono::NaiveDate::parse_from_str(dt.strip_prefix("dt=")?, "%Y-%m-%d").ok()?;
    let hour: i64 = hour.strip_prefix("hour=")?.parse().ok()?;
    let day = date.and_time(Default::default()).and_utc().timestamp() / 3600;
    (0..24).contains(&hour).then_some(day + hour)
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("hour_start", super::schema::timestamp_type(), false),
        Field::new("api_key_id", DataType::Utf8, true),
        Field::new("api_key_hint", DataType::Utf8, true),
        Field::new("sc_status", DataType::Int16, true),
        Field::new("requests", DataType::Int64, false),
        Field::new("bytes_out", DataType::Int64, false),
        Field::new("bytes_in", DataType::Int64, false),
    ]))
});

/// The schema of the Parquet files under `usage_hourly/` (without partition columns).
pub fn rollup_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// A rollup row's group: API key id and status.
type Group<'a> = (Option<&'a str>, Option<i16>);

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

/// The columns of `requests` that [`encode_hour`] reads; it needs no others.
pub const REQUESTS_COLUMNS: [&str; 5] = [
    "api_key_id",
    "api_key_hint",
    "sc_status",
    "sc_bytes",
    "cs_bytes",
];

/// Sums an hour's `requests` rows by key and status and encodes the result as
/// one Parquet file, sorted by key then status.
pub fn encode_hour(hour: i64, batches: &[RecordBatch]) -> Result<Bytes> {
    let mut groups: datafusion::common::HashMap<Group<'_>, Totals<'_>> = Default::default();
    for batch in batches {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| Error::Lake(format!("requests rows lack column {name}")))
        };
        let keys = column("api_key_id")?.as_string::<i32>();
        let hints = column("api_key_hint")?.as_string::<i32>();
        let statuses = column("sc_status")?.as_primitive::<Int16Type>();
        let sc_bytes = column("sc_bytes")?.as_primitive::<Int64Type>();
        let cs_bytes = column("cs_bytes")?.as_primitive::<Int64Type>();
        // Rows come sorted by key, so consecutive rows mostly share their
        // group: each run of them is summed here and added to `groups` once.
        let mut run: Option<(Group<'_>, Totals<'_>)> = None;
        for row in 0..batch.num_rows() {
            let key = keys.is_valid(row).then(|| keys.value(row));
            let status = statuses.is_valid(row).then(|| statuses.value(row));
            let group = (key, status);
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
    // Sorted by key then status, keyless (None) first.
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_unstable_by_key(|(a, _)| *a);
    let keys = || groups.iter().map(|(k, _)| k);
    let values = || groups.iter().map(|(_, v)| v);
    let start = hour * 3_600_000;
    let columns: Vec<Arc<dyn Array>> = vec![
        Arc::new(
            TimestampMillisecondArray::from_iter_values(keys().map(|_| start)).with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter(keys().map(|(k, _)| *k))),
        Arc::new(StringArray::from_iter(values().map(|t| t.hint))),
        Arc::new(Int16Array::from_iter(keys().map(|(_, s)| *s))),
        Arc::new(Int64Array::from_iter_values(values().map(|t| t.requests))),
        Arc::new(Int64Array::from_iter_values(values().map(|t| t.bytes_out))),
        Arc::new(Int64Array::from_iter_values(values().map(|t| t.bytes_in))),
    ];
    let batch = RecordBatch::try_new(rollup_schema(), columns)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::parquet_io::decode;
    use crate::lake::schema::requests_schema;
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
        let out = decode(encode_hour(7, &[a, b]).unwrap()).unwrap();
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

    #[test]
    fn partition_directories_name_their_hour() {
        // 2019-12-04T21:00:00Z is hour 437637 since the epoch.
        assert_eq!(hour_of_dir("dt=2019-12-04/hour=21"), Some(437_637));
        assert_eq!(hour_of_dir("dt=2019-12-04/hour=24"), None);
        assert_eq!(hour_of_dir("dt=2019-12-04"), None);
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
        let projected = encode_hour(480_000, &[project(&a), project(&b)]).unwrap();
        let file = encode_hour(480_000, &[a, b]).unwrap();
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
