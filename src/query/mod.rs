//! DataFusion over the lake: the session with the lake's tables registered
//! read-only, the named queries of `queries/`, time-range parameters, and the
//! guard that keeps ad hoc SQL from changing anything.

pub mod library;
pub mod output;
pub mod udf;
pub mod usage;

use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::lake::ingested::{INGESTED_DIR, ingested_schema};
use crate::lake::rollup::{ROLLUP_TABLE, rollup_schema};
use crate::lake::schema::{PARTITION_COLUMNS, requests_schema};
use crate::lake::view::LakeView;
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{DataFrame, SQLOptions, SessionConfig, SessionContext};
use std::sync::Arc;

/// `usage_hourly` computed from `requests`, for lakes whose rollups are not
/// complete yet (see [`crate::lake::rollup::COMPLETE_MARKER`]).
const ROLLUP_FROM_RAW: &str = "CREATE VIEW usage_hourly AS
SELECT
    CAST(date_trunc('hour', \"timestamp\") AS TIMESTAMP(3) WITH TIME ZONE) AS hour_start,
    api_key_id,
    max(api_key_hint) AS api_key_hint,
    sc_status,
    count(*) AS requests,
    coalesce(sum(sc_bytes), 0) AS bytes_out,
    coalesce(sum(cs_bytes), 0) AS bytes_in,
    dt,
    hour
FROM requests
GROUP BY date_trunc('hour', \"timestamp\"), api_key_id, sc_status, dt, hour";

/// A DataFusion session over one lake, with `requests` and `ingested` registered.
pub struct LakeSession {
    ctx: SessionContext,
}

impl LakeSession {
    pub async fn open(lake: &Lake) -> Result<Self> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()));
        let ctx = SessionContext::new_with_config(config);
        udf::register(&ctx);
        ctx.register_object_store(
            &lake.store_url(),
            Arc::new(LakeView::new(lake.store().clone())),
        );
        let partitioned: Vec<(String, DataType)> = PARTITION_COLUMNS
            .iter()
            .map(|c| (c.to_string(), DataType::Utf8))
            .collect();
        register(
            &ctx,
            lake,
            "requests",
            "requests",
            requests_schema(),
            partitioned,
        )
        .await?;
        if crate::lake::rollup::is_complete(lake).await? {
            register(
                &ctx,
                lake,
                ROLLUP_TABLE,
                ROLLUP_TABLE,
                rollup_schema(),
                PARTITION_COLUMNS
                    .iter()
                    .map(|c| (c.to_string(), DataType::Utf8))
                    .collect(),
            )
            .await?;
        } else {
            // A lake from before rollups, not ingested since: the same figures,
            // derived from the raw rows.
            ctx.sql(ROLLUP_FROM_RAW).await?;
        }
        register(
            &ctx,
            lake,
            "ingested",
            INGESTED_DIR,
            ingested_schema(),
            vec![],
        )
        .await?;
        Ok(Self { ctx })
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Plans read-only SQL: DDL, DML (`INSERT`, `COPY … TO`, …) and statements
    /// (`SET`, transactions) are refused before anything runs.
    pub async fn read_only_sql(&self, sql: &str) -> Result<DataFrame> {
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        self.ctx
            .sql_with_options(sql, options)
            .await
            .map_err(|e| match e.find_root() {
                datafusion::error::DataFusionError::Plan(msg)
                    if msg.contains("not supported") || msg.contains("not allowed") =>
                {
                    Error::ReadOnly(format!(
                        "only read-only queries run here (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE): {msg}"
                    ))
                }
                _ => Error::DataFusion(e),
            })
    }

    /// Runs a named query with parameters given as `name=value` text, typed by
    /// the query's declarations.
    pub async fn named_from_text(
        &self,
        name: &str,
        given: &[(String, String)],
    ) -> Result<SendableRecordBatchStream> {
        let params = library::get(name)?.bind(given)?;
        self.named(name, params).await
    }

    /// Runs a named query from the library with bound parameters.
    pub async fn named(
        &self,
        name: &str,
        params: Vec<(String, ScalarValue)>,
    ) -> Result<SendableRecordBatchStream> {
        let query = library::get(name)?;
        let df = self.read_only_sql(query.sql).await?;
        let df = df.with_param_values(params).map_err(|e| Error::Query {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        Ok(df.execute_stream().await?)
    }
}

async fn register(
    ctx: &SessionContext,
    lake: &Lake,
    name: &str,
    dir: &str,
    schema: SchemaRef,
    partition_cols: Vec<(String, DataType)>,
) -> Result<()> {
    // A fresh local lake has no table directories yet; an empty one lists as empty.
    if lake.url().scheme() == "file" {
        let dir = std::path::PathBuf::from(lake.url().path()).join(dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(dir, e))?;
    }
    let url = ListingTableUrl::parse(lake.table_url(dir))?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(partition_cols);
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
    Ok(())
}

/// A half-open UTC time range `[from, to)`; open ends mean "all".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl TimeRange {
    /// Parses optional bounds, each a date (`2025-03-01`, midnight UTC) or RFC 3339.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self> {
        let range = Self {
            from: from.map(parse_instant).transpose()?,
            to: to.map(parse_instant).transpose()?,
        };
        if let (Some(f), Some(t)) = (range.from, range.to)
            && f > t
        {
            return Err(Error::Config(format!("--from {f} is after --to {t}")));
        }
        Ok(range)
    }

    /// The parameters of range queries:
    /// - `from`, `to`: the range; `from_dt`, `to_dt`: the same as inclusive
    ///   `dt` bounds, which only prune partitions (the timestamps decide);
    /// - `whole_from`, `whole_to`: the whole UTC hours inside the range, which
    ///   `usage_hourly` answers (empty when `whole_from >= whole_to`);
    /// - `head_dt`/`head_hour`, `tail_dt`/`tail_hour`: the partitions of the
    ///   partial hours at either edge, whose raw rows are read (empty strings,
    ///   matching no partition, when that edge is on the hour).
    pub fn params(&self) -> Vec<(String, ScalarValue)> {
        let ts = |t: DateTime<Utc>| {
            ScalarValue::TimestampMillisecond(Some(t.timestamp_millis()), Some("UTC".into()))
        };
        let text = |s: String| ScalarValue::Utf8(Some(s));
        let from = self.from.unwrap_or(epoch_floor());
        let to = self.to.unwrap_or(epoch_ceiling());
        let floor_hour = |t: DateTime<Utc>| t.timestamp().div_euclid(3600);
        let edge = |t: DateTime<Utc>| {
            if t.timestamp_subsec_nanos() == 0 && t.timestamp().rem_euclid(3600) == 0 {
                return (String::new(), String::new());
            }
            crate::lake::partition::partition_values(floor_hour(t))
        };
        let hour_instant =
            |h: i64| DateTime::from_timestamp(h * 3600, 0).unwrap_or(epoch_ceiling());
        let aligned = edge(from).0.is_empty();
        let whole_from = hour_instant(floor_hour(from) + i64::from(!aligned));
        let whole_to = hour_instant(floor_hour(to));
        let (head_dt, head_hour) = edge(from);
        let (tail_dt, tail_hour) = edge(to);
        vec![
            ("whole_from".into(), ts(whole_from)),
            ("whole_to".into(), ts(whole_to)),
            ("head_dt".into(), text(head_dt)),
            ("head_hour".into(), text(head_hour)),
            ("tail_dt".into(), text(tail_dt)),
            ("tail_hour".into(), text(tail_hour)),
            ("from".into(), ts(from)),
            ("to".into(), ts(to)),
            (
                "from_dt".into(),
                ScalarValue::Utf8(Some(from.format("%Y-%m-%d").to_string())),
            ),
            (
                "to_dt".into(),
                ScalarValue::Utf8(Some(to.format("%Y-%m-%d").to_string())),
            ),
        ]
    }
}

fn epoch_floor() -> DateTime<Utc> {
    DateTime::from_timestamp(0, 0).unwrap_or_default()
}

fn epoch_ceiling() -> DateTime<Utc> {
    // 9999-12-31T00:00:00Z: past any log, within every timestamp type.
    DateTime::from_timestamp(253_402_214_400, 0).unwrap_or_default()
}

/// A date (midnight UTC) or an RFC 3339 instant.
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_time(Default::default()).and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            Error::Config(format!(
                "{text:?} is neither a date (2025-03-01) nor RFC 3339 (2025-03-01T12:00:00Z)"
            ))
        })
}

/// Per-key usage over a time range (`queries/usage_by_key.sql`).
pub async fn usage(lake: &Lake, range: &TimeRange) -> Result<SendableRecordBatchStream> {
    let session = LakeSession::open(lake).await?;
    session.named("usage_by_key", range.params()).await
}

/// Collects a stream (for tests and small results).
pub async fn collect(stream: SendableRecordBatchStream) -> Result<Vec<RecordBatch>> {
    Ok(datafusion::physical_plan::common::collect(stream).await?)
}
