//! The lake's layout: every path below its root, in one place. The rest of
//! the crate names these constants and functions, never the strings.
//!
//! ```text
//! requests/_delta_log/                                       Delta log of the raw rows
//! requests/dt=YYYY-MM-DD/hour=HH/part-<uuid>.parquet         raw rows, sorted by api_key_id, timestamp
//! usage_hourly/dt=YYYY-MM-DD/hour=HH/rollup-<digest>.parquet sums of one file of that hour, by key, status and dimensions
//! usage_hourly_keys/dt=YYYY-MM-DD/hour=HH/rollup-<digest>.parquet  the same file's sums by key and status
//! usage_daily/dt=YYYY-MM-DD/day-<digest>.parquet               usage_hourly's rows of exactly that day's requests files
//! usage_daily_keys/dt=YYYY-MM-DD/day-<digest>.parquet          the same of usage_hourly_keys
//! usage_daily_totals/dt=YYYY-MM-DD/day-<digest>.parquet        that day's sums by key and status, without the hour
//! _edgemeter/ingested/day=YYYY-MM-DD/<run-id>-<uuid>.parquet one row per source object committed
//! _edgemeter/runs/<run-id>.json                              one record per ingest run
//! _edgemeter/sources/<id>.json                               when each source was last fully listed
//! _edgemeter/unreadable/<id>.json                            objects that could not be read yet
//! _edgemeter/keying.json                                     how the lake's key ids are hashed
//! _edgemeter/exports/<period>-<zone>.json                    the figures of a period's last export
//! _edgemeter/alerts/<period>.json, <period>/<digest>.json    alerts sent, and claims of alerts
//! ```
//!
//! Paths are relative to the lake root ([`super::Lake::path`]); a table's
//! files are named relative to its directory.

use crate::time::Hour;

/// The raw rows' table.
pub(crate) const REQUESTS_DIR: &str = "requests";
/// The hourly rollup's table.
pub(crate) const USAGE_HOURLY_DIR: &str = "usage_hourly";
/// The narrow rollup: per hour, key and status only.
pub(crate) const USAGE_HOURLY_KEYS_DIR: &str = "usage_hourly_keys";
/// One file per day of `usage_hourly`.
pub(crate) const USAGE_DAILY_DIR: &str = "usage_daily";
/// One file per day of `usage_hourly_keys`.
pub(crate) const USAGE_DAILY_KEYS_DIR: &str = "usage_daily_keys";
/// One file per day of `usage_daily_keys` summed over the day's hours.
pub(crate) const USAGE_DAILY_TOTALS_DIR: &str = "usage_daily_totals";
/// One file per day of the values of a plans file's meters.
pub(crate) const METERS_DAILY_DIR: &str = "meters_daily";
/// A table's Delta log, below the table's directory.
pub(crate) const DELTA_LOG_DIR: &str = "_delta_log";
/// edgemeter's own records (not tables of rows).
pub(crate) const RECORDS_DIR: &str = "_edgemeter";
/// The ingested-object record's table.
pub(crate) const INGESTED_DIR: &str = "_edgemeter/ingested";
/// One record per ingest run.
pub(crate) const RUNS_DIR: &str = "_edgemeter/runs";
/// The retry record of objects that could not be read.
pub(crate) const UNREADABLE_DIR: &str = "_edgemeter/unreadable";
/// How the lake's key ids are hashed.
pub(crate) const KEYING_FILE: &str = "_edgemeter/keying.json";
/// Files of lakes written before Delta that `migrate` deletes.
pub(crate) const PRE_DELTA_LEFTOVERS: [&str; 2] = ["_edgemeter/lock", "_edgemeter/rollup-complete"];

/// The Delta log of the table in `table_dir`.
pub(crate) fn delta_log(table_dir: &str) -> String {
    format!("{table_dir}/{DELTA_LOG_DIR}")
}

/// True when an object-store location lies in a Delta log.
pub(crate) fn in_delta_log(location: &str) -> bool {
    location.contains(&format!("/{DELTA_LOG_DIR}/"))
}

/// When a source was last fully listed; `id` is a digest of its location
/// (and shard).
pub(crate) fn source_checkpoint(id: &str) -> String {
    format!("{}/{id}.json", source_checkpoints())
}

/// The folder of the sources' checkpoints.
pub(crate) fn source_checkpoints() -> String {
    format!("{RECORDS_DIR}/sources")
}

/// The figures of a period's last export (`label` `YYYY-MM`, in zone `tz`).
pub(crate) fn export_record(label: &str, tz: &str) -> String {
    format!(
        "{RECORDS_DIR}/exports/{label}-{}.json",
        tz.replace('/', "_")
    )
}

/// The ids of the alerts sent for a period (the record of older versions).
pub(crate) fn alerts_sent(period: &str) -> String {
    format!("{RECORDS_DIR}/alerts/{period}.json")
}

/// The claim of one alert for a period; `digest` is a digest of its id.
pub(crate) fn alert_claim(period: &str, digest: &str) -> String {
    format!("{RECORDS_DIR}/alerts/{period}/{digest}.json")
}

/// The directory of one day's record of ingested objects, relative to
/// its table.
pub(crate) fn ingested_day_dir(day: &str) -> String {
    format!("day={day}")
}

/// The directory of one day of a table partitioned by `dt` and `hour`,
/// relative to the lake root.
pub(crate) fn day_dir(table_dir: &str, dt: &str) -> String {
    format!("{table_dir}/dt={dt}")
}

/// The `dt` of a partition directory (`dt=2025-10-05/hour=01` → `2025-10-05`).
pub(crate) fn dt_of_partition_dir(dir: &str) -> Option<&str> {
    dir.split('/').find_map(|part| part.strip_prefix("dt="))
}

/// `dt` and `hour` partition values of an hour.
pub(crate) fn partition_values(hour: Hour) -> (String, String) {
    (hour.dt(), hour.hour_of_day())
}

/// The partition of an hour, as [`super::delta::files_by_partition`] keys it.
pub(crate) fn partition_key(hour: Hour) -> Vec<String> {
    let (dt, hh) = partition_values(hour);
    vec![dt, hh]
}

/// The hour of a partition key `[dt, hour]`.
pub(crate) fn hour_of_partition(key: &[String]) -> Option<Hour> {
    let [dt, hour] = key else { return None };
    Hour::of_partition(dt, hour)
}

/// The directory of an hour's partition of a table, relative to the table.
pub(crate) fn partition_dir(hour: Hour) -> String {
    let (dt, hh) = partition_values(hour);
    format!("dt={dt}/hour={hh}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_are_utc_date_and_hour() {
        // 2019-12-04T21:00:00Z is 1575493200 s since the epoch.
        let hour = Hour::from_epoch_hours(1_575_493_200 / 3600);
        assert_eq!(
            partition_values(hour),
            ("2019-12-04".to_string(), "21".to_string())
        );
        assert_eq!(
            partition_dir(Hour::from_epoch_hours(0)),
            "dt=1970-01-01/hour=00"
        );
        assert_eq!(hour_of_partition(&partition_key(hour)), Some(hour));
    }

    #[test]
    fn record_paths() {
        assert_eq!(delta_log(REQUESTS_DIR), "requests/_delta_log");
        assert!(in_delta_log(
            "lake/requests/_delta_log/00000000000000000000.json"
        ));
        assert!(!in_delta_log(
            "lake/requests/dt=2025-01-01/hour=00/part-a.parquet"
        ));
        assert_eq!(
            export_record("2025-03", "Europe/Berlin"),
            "_edgemeter/exports/2025-03-Europe_Berlin.json"
        );
        assert_eq!(
            alert_claim("2025-03", "ab"),
            "_edgemeter/alerts/2025-03/ab.json"
        );
        assert_eq!(
            day_dir(USAGE_HOURLY_DIR, "2025-03-01"),
            "usage_hourly/dt=2025-03-01"
        );
        assert_eq!(
            dt_of_partition_dir("dt=2025-10-05/hour=01"),
            Some("2025-10-05")
        );
    }
}
