//! `meters_daily`: the values of a plans file's meters, one file per day.
//!
//! A meter whose filter reads a column the rollups do not keep (the result
//! type, say), or that counts distinct values, is otherwise answered from
//! raw rows: a month of the benchmark's 10× lake is 24,000,000 of them. A
//! meter day file holds, for one day, each meter's value per key (and, for a
//! `unique_count`, the key's distinct values), so a month of any such meter
//! reads a file per day.
//!
//! A file is named for the digest of the meters it holds (their definitions,
//! `billing::meter_days` computes it) and of the exact set of `requests`
//! files it was computed from, that day's and those of the earlier days of
//! its UTC month ([`paths`]): `dt=<day>/meters-<digest>.parquet`, as day
//! rollups are ([`super::daily`]). A reader takes it only when both match:
//! the meters it asks for come from the same definitions, and the files in
//! the `requests` snapshot it reads are the ones the file was computed from.
//! A late file, a merge, a dropped day or an edited meter changes the digest,
//! and the meters are read from raw rows again until a file of the new digest
//! is committed. Each day keeps at most one file: the one its last writer
//! computed.
//!
//! Rows, per day: for every `api_key_id` with requests that day (and one for
//! requests without a key) one row of meter `""` (its request count and
//! hint: the keys a query over the day has groups for); one row per key and
//! meter counted or summed; one row per key and distinct value of each
//! `unique_count` meter (`distinct_value`, as text), marked `first_in_month`
//! when no earlier day of the UTC month has that value for that key and
//! meter. A month's first-seen rows hold each value once, so a distinct count
//! per key over days from a month's first counts them and not every day's.

use super::delta::{self, TableDef};
use super::layout::METERS_DAILY_DIR;
use crate::error::Result;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::DeltaTable;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};

/// The version of what a file holds: part of its name's digest, so a file of
/// another layout never pairs.
const LAYOUT: &str = "meters_daily/2 the month's requests files to the day; meter, key, hint, value, distinct, first";

/// The meter of the rows that say which keys a day has.
pub(crate) const PRESENCE: &str = "";

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("meter", DataType::Utf8, false),
        Field::new("api_key_id", DataType::Utf8, true),
        Field::new("api_key_hint", DataType::Utf8, true),
        Field::new("value", DataType::Int64, true),
        Field::new("distinct_value", DataType::Utf8, true),
        Field::new("first_in_month", DataType::Boolean, true),
    ]))
});

/// The schema of the Parquet files under `meters_daily/`.
pub(crate) fn file_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// The `meters_daily` table, partitioned by day.
pub(crate) const METERS_DAILY_TABLE: TableDef = TableDef {
    dir: METERS_DAILY_DIR,
    file_schema,
    partition_by: &["dt"],
    stats_columns: &["api_key_id"],
};

/// The path (relative to the table) of each day's file of the meters whose
/// definitions digest to `meters`, for the `requests` files of each day
/// `by_day` gives (paths relative to `requests`, in order). A day's file is
/// named for its own files and those of the days before it in its UTC
/// month (its `first_in_month` rows depend on them): a change to any day
/// renames the files of that day and of the month's later days.
pub(crate) fn paths(
    meters: &str,
    by_day: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chain: Option<(&str, [u8; 32])> = None;
    for (dt, files) in by_day {
        let month = dt.get(..7).unwrap_or(dt);
        let mut hasher = Sha256::new();
        hasher.update(LAYOUT.as_bytes());
        hasher.update(b"\n");
        hasher.update(meters.as_bytes());
        hasher.update(b"\n");
        hasher.update(dt.as_bytes());
        if let Some((_, before)) = chain.filter(|(m, _)| *m == month) {
            hasher.update(b"\n");
            hasher.update(before);
        }
        for file in files {
            hasher.update(b"\n");
            hasher.update(file.as_bytes());
        }
        let digest: [u8; 32] = hasher.finalize().into();
        chain = Some((month, digest));
        out.insert(
            dt.clone(),
            format!("dt={dt}/meters-{}.parquet", hex::encode(&digest[..16])),
        );
    }
    out
}

/// The paths of the files a snapshot of the table holds.
pub(crate) fn present(table: Option<&DeltaTable>) -> Result<BTreeSet<String>> {
    let Some(table) = table else {
        return Ok(BTreeSet::new());
    };
    Ok(delta::files_by_partition(table, &METERS_DAILY_TABLE)?
        .into_values()
        .flatten()
        .map(|f| f.path)
        .collect())
}

/// Commits the files `made` (path → size) and takes out every other file:
/// each day keeps at most the file of `meters` over its current files and
/// those of its month's earlier days ([`paths`]; a file of other meters or of
/// older files pairs with no reader of these), and a day `requests` no
/// longer has keeps none.
pub(crate) async fn commit(
    requests: &mut DeltaTable,
    daily: &mut DeltaTable,
    meters: &str,
    made: &HashMap<String, usize>,
) -> Result<()> {
    let wanted = |by_day: &BTreeMap<String, Vec<String>>| paths(meters, by_day);
    super::daily::commit_day_files(requests, daily, &METERS_DAILY_TABLE, wanted, made).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(days: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        days.iter()
            .map(|(dt, files)| {
                (
                    dt.to_string(),
                    files.iter().map(|f| f.to_string()).collect(),
                )
            })
            .collect()
    }

    /// A day's name changes with the meters' digest, with any file of the
    /// day, and with any file of an earlier day of its month, not of
    /// another month or of a later day.
    #[test]
    fn a_file_is_named_for_its_meters_and_its_months_files_to_the_day() {
        let lake = days(&[
            ("2025-10-31", &["a"]),
            ("2025-11-01", &["b"]),
            ("2025-11-02", &["c"]),
        ]);
        let p = paths("m1", &lake);
        assert!(
            p["2025-11-01"].starts_with("dt=2025-11-01/meters-"),
            "{p:?}"
        );
        assert_eq!(p, paths("m1", &lake));
        let other = paths("m2", &lake);
        assert!(p.keys().all(|dt| p[dt] != other[dt]));
        // A late file into 2025-11-01 renames it and 2025-11-02.
        let late = paths(
            "m1",
            &days(&[
                ("2025-10-31", &["a"]),
                ("2025-11-01", &["b", "b2"]),
                ("2025-11-02", &["c"]),
            ]),
        );
        assert_eq!(p["2025-10-31"], late["2025-10-31"]);
        assert_ne!(p["2025-11-01"], late["2025-11-01"]);
        assert_ne!(p["2025-11-02"], late["2025-11-02"]);
        // One into October's last day renames only that day.
        let october = paths(
            "m1",
            &days(&[
                ("2025-10-31", &["a", "a2"]),
                ("2025-11-01", &["b"]),
                ("2025-11-02", &["c"]),
            ]),
        );
        assert_ne!(p["2025-10-31"], october["2025-10-31"]);
        assert_eq!(p["2025-11-01"], october["2025-11-01"]);
        assert_eq!(p["2025-11-02"], october["2025-11-02"]);
    }
}
