//! DataFusion over the lake: the session with the lake's tables registered
//! read-only, the named queries of `queries/`, time-range parameters, and the
//! guard that keeps ad hoc SQL from changing anything. A session runs its
//! queries in this process or on a Ballista cluster ([`cluster`], with the
//! tables as their snapshots' file lists, [`files`]); everything else about
//! it is the same either way.

pub(crate) mod cluster;
pub(crate) mod files;
pub mod library;
pub(crate) mod output;
pub(crate) mod udf;
pub(crate) mod usage;

use crate::error::{Error, Result};
use crate::lake::daily::{self, DAY_ROLLUPS, DayRollup};
use crate::lake::day_totals::{self, DAY_TOTALS_TABLE};
use crate::lake::delta::{self, AsOf, TableDef};
use crate::lake::ingested::INGESTED_TABLE;
use crate::lake::layout::{self, dt_of_partition_dir, hour_of_partition};
use crate::lake::meter_days::{self, METERS_DAILY_TABLE};
use crate::lake::rollup::{self, ROLLUPS, Rollup};
use crate::lake::{Lake, REQUESTS_TABLE};
use crate::schema::status::StatusClass;
use crate::time::{self, Hour, TimeRange};
use chrono::{DateTime, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast as arrow_cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{DataFrame, SQLOptions, SessionConfig, SessionContext};
use deltalake::DeltaTable;
use deltalake::delta_datafusion::{DeltaScanConfig, DeltaScanNext, FileSelection};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Where a session's queries run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Engine {
    /// In this process.
    #[default]
    InProcess,
    /// On the Ballista cluster at this `df://host:port` ([`cluster`]).
    Cluster(String),
}

/// The dimensions `usage_hourly` groups by besides key and status, as
/// (expression over `requests`, column); `usage_hourly_keys` has none.
const DIMENSIONS: [(&str, &str); 4] = [
    ("cs_method", "cs_method"),
    ("lower(coalesce(x_host_header, cs_host))", "host"),
    ("endpoint_template(cs_uri_stem)", "endpoint"),
    ("x_edge_location", "x_edge_location"),
];

/// A rollup's rows for the hours that have no exact rollup, summed from their
/// raw rows by key, status and `dimensions`; `hours` lists those partitions
/// (`'dt/hour', …`).
fn rollup_from_raw(dimensions: &[(&str, &str)], hours: &str) -> String {
    let select: String = dimensions
        .iter()
        .map(|(expr, column)| format!(",\n    {expr} AS {column}"))
        .collect();
    let group: String = dimensions
        .iter()
        .map(|(expr, _)| format!(", {expr}"))
        .collect();
    format!(
        "SELECT
    CAST(date_trunc('hour', \"timestamp\") AS TIMESTAMP(3) WITH TIME ZONE) AS hour_start,
    api_key_id,
    max(api_key_hint) AS api_key_hint,
    sc_status,
    count(*) AS requests,
    coalesce(sum(sc_bytes), 0) AS bytes_out,
    coalesce(sum(cs_bytes), 0) AS bytes_in{select},
    dt,
    hour
FROM requests
WHERE concat(dt, '/', hour) IN ({hours})
GROUP BY date_trunc('hour', \"timestamp\"), api_key_id, sc_status{group}, dt, hour"
    )
}

/// The versions of the lake's tables a session reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct LakeVersions {
    /// `requests`' version; `None` on a lake with no table yet.
    pub(crate) requests: Option<u64>,
    pub(crate) usage_hourly: Option<u64>,
    pub(crate) usage_hourly_keys: Option<u64>,
    pub(crate) usage_daily: Option<u64>,
    pub(crate) usage_daily_keys: Option<u64>,
    pub(crate) ingested: Option<u64>,
    /// `None` on a lake without meters kept per day.
    pub(crate) meters_daily: Option<u64>,
    pub(crate) usage_daily_totals: Option<u64>,
}

/// What one query may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueryLimits {
    /// Memory of the query's operators, in MiB.
    pub(crate) memory_mib: u64,
    /// Wall time, in seconds.
    pub(crate) timeout_secs: u64,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            memory_mib: DEFAULT_QUERY_MEMORY_MIB,
            timeout_secs: DEFAULT_QUERY_TIMEOUT_SECS,
        }
    }
}

/// Default memory pool of a query: a quarter of the smallest machine the
/// benchmark runs on leaves room for ingest beside it.
pub(crate) const DEFAULT_QUERY_MEMORY_MIB: u64 = 4096;
/// Default time limit of a query.
pub(crate) const DEFAULT_QUERY_TIMEOUT_SECS: u64 = 600;

impl QueryLimits {
    fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }

    /// Runs `work` under the time limit.
    pub(crate) async fn timed<T>(
        &self,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(std::time::Duration::from_secs(self.timeout_secs), work).await {
            Ok(done) => done,
            Err(_) => Err(crate::Error::QueryTimeout(self.timeout_secs)),
        }
    }
}

/// A DataFusion session over one lake, with `requests`, `usage_hourly` and
/// `ingested` registered read-only, each at one Delta version.
///
/// Public so that tests run the named queries in-process
/// ([`LakeSession::open_location`], [`LakeSession::named_from_text`]).
pub struct LakeSession {
    ctx: SessionContext,
    versions: LakeVersions,
    /// When the `requests` version read was committed.
    read_at: Option<DateTime<Utc>>,
    /// The `requests` files of each day (`dt`) of the version read, paths
    /// in order: what a day's derived files are named for.
    requests_days: BTreeMap<String, Vec<String>>,
    /// `meters_daily` at the session's instant, and its files.
    meter_days: Option<DeltaTable>,
    meter_day_files: BTreeSet<String>,
    lake: Lake,
    engine: Engine,
}

impl LakeSession {
    /// A session over the newest version of the lake at a directory or
    /// `s3://bucket/prefix/`, with S3 reached as the environment says.
    pub async fn open_location(location: &str) -> Result<Self> {
        let lake = Lake::open(location, &crate::aws::S3Settings::default()).await?;
        Self::open(&lake).await
    }

    /// A session over the newest version of every table.
    pub(crate) async fn open(lake: &Lake) -> Result<Self> {
        Self::open_as_of(lake, AsOf::Latest).await
    }

    /// A session over the lake as of a version of `requests` or a time: the
    /// other tables are read as of the same instant.
    pub(crate) async fn open_as_of(lake: &Lake, as_of: AsOf) -> Result<Self> {
        Self::open_with(lake, as_of, &QueryLimits::default()).await
    }

    /// [`LakeSession::open_as_of`] under a memory pool of `limits`.
    pub(crate) async fn open_with(lake: &Lake, as_of: AsOf, limits: &QueryLimits) -> Result<Self> {
        Self::open_on(lake, as_of, limits, &Engine::InProcess).await
    }

    /// [`LakeSession::open_with`], its queries run by `engine`: the same
    /// tables, views, functions and read-only guard either way. On a cluster
    /// the memory pool is the executors' own.
    pub(crate) async fn open_on(
        lake: &Lake,
        as_of: AsOf,
        limits: &QueryLimits,
        engine: &Engine,
    ) -> Result<Self> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()));
        let ctx = match engine {
            Engine::InProcess => {
                // Operators that can spill (sorts, hash aggregates, joins) share the
                // pool fairly and spill to the OS temp directory; the others fail
                // with DataFusion's "Resources exhausted" naming the pool's size.
                let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
                    .with_memory_pool(Arc::new(
                        datafusion::execution::memory_pool::FairSpillPool::new(
                            limits.memory_bytes(),
                        ),
                    ))
                    .build_arc()?;
                let ctx = SessionContext::new_with_config_rt(config, runtime);
                udf::register(&ctx);
                ctx
            }
            Engine::Cluster(url) => cluster::remote_context(url, config).await?,
        };
        let tables = Tables {
            ctx: &ctx,
            lake,
            engine,
        };
        // The tables read beside `requests`, in the order they are named below.
        let beside = [
            ROLLUPS[0].table,
            ROLLUPS[1].table,
            DAY_ROLLUPS[0].table,
            DAY_ROLLUPS[1].table,
            METERS_DAILY_TABLE,
            DAY_TOTALS_TABLE,
        ];
        // Each open lists its log and reads a checkpoint and the commits
        // after it (about 10 ms); they run side by side. A rollup is exact
        // read at any version, its files paired with the `requests` files
        // they count, so the rollups are opened with `requests` unless the
        // lake is read as of a version, whose instant `requests` gives.
        let open = |def: TableDef, at: AsOf| {
            let lake = lake.clone();
            tokio::spawn(async move { delta::open(&lake, &def, at).await.ok().flatten() })
        };
        let early = match as_of {
            AsOf::Version(_) => None,
            AsOf::Latest | AsOf::Time(_) => Some(beside.map(|def| open(def, as_of))),
        };
        let requests = delta::open(lake, &REQUESTS_TABLE, as_of).await?;
        // The instant the other tables are read at.
        let instant = match (as_of, &requests) {
            (AsOf::Version(v), Some(table)) => table
                .snapshot()?
                .version_timestamp(v)
                .and_then(DateTime::from_timestamp_millis)
                .map_or(AsOf::Latest, AsOf::Time),
            (other, _) => other,
        };
        // `ingested` no older than `requests`, as it always was read.
        let ingested = open(INGESTED_TABLE, instant);
        let opening = early.unwrap_or_else(|| beside.map(|def| open(def, instant)));
        let mut opened = Vec::with_capacity(opening.len());
        for task in opening {
            // The rollups are read only beside a `requests` table.
            let table = task.await?;
            opened.push(table.filter(|_| requests.is_some()));
        }
        let ingested = ingested.await?;
        let [hourly, keys, daily, daily_keys, meter_days, totals]: [Option<DeltaTable>; 6] = opened
            .try_into()
            .map_err(|_| Error::Lake("a table was not opened".to_string()))?;
        // Each hourly rollup and its day rollup, in the order of `ROLLUPS`.
        let rollups = [hourly, keys];
        let days = [daily, daily_keys];
        let read_at = requests.as_ref().and_then(|t| {
            let snapshot = t.snapshot().ok()?;
            snapshot
                .version_timestamp(snapshot.version())
                .and_then(DateTime::from_timestamp_millis)
        });
        let versions = LakeVersions {
            requests: requests.as_ref().and_then(DeltaTable::version),
            usage_hourly: rollups[0].as_ref().and_then(DeltaTable::version),
            usage_hourly_keys: rollups[1].as_ref().and_then(DeltaTable::version),
            usage_daily: days[0].as_ref().and_then(DeltaTable::version),
            usage_daily_keys: days[1].as_ref().and_then(DeltaTable::version),
            ingested: ingested.as_ref().and_then(DeltaTable::version),
            meters_daily: meter_days.as_ref().and_then(DeltaTable::version),
            usage_daily_totals: totals.as_ref().and_then(DeltaTable::version),
        };
        tables
            .register("requests", &REQUESTS_TABLE, requests.as_ref(), None)
            .await?;
        let dimensions: [&[(&str, &str)]; 2] = [&DIMENSIONS, &[]];
        for (i, dimensions) in dimensions.into_iter().enumerate() {
            let read = RollupRead {
                hourly: &ROLLUPS[i],
                day: &DAY_ROLLUPS[i],
                table: rollups[i].as_ref(),
                days: days[i].as_ref(),
                dimensions,
            };
            tables.register_rollup(&read, requests.as_ref()).await?;
        }
        tables
            .register_day_totals(requests.as_ref(), totals.as_ref())
            .await?;
        tables
            .register("ingested", &INGESTED_TABLE, ingested.as_ref(), None)
            .await?;
        let requests_days = match &requests {
            Some(table) => daily::requests_by_day(table)?,
            None => BTreeMap::new(),
        };
        Ok(Self {
            ctx,
            versions,
            read_at,
            requests_days,
            meter_day_files: meter_days::present(meter_days.as_ref())?,
            meter_days,
            lake: lake.clone(),
            engine: engine.clone(),
        })
    }

    /// The table versions this session reads.
    pub(crate) fn versions(&self) -> LakeVersions {
        self.versions
    }

    /// When the version of `requests` this session reads was committed.
    pub(crate) fn read_at(&self) -> Option<DateTime<Utc>> {
        self.read_at
    }

    /// The `requests` files of each day of the version read.
    pub(crate) fn requests_days(&self) -> &BTreeMap<String, Vec<String>> {
        &self.requests_days
    }

    /// Whether `meters_daily`, as read, holds the file at `path`.
    pub(crate) fn has_meter_day(&self, path: &str) -> bool {
        self.meter_day_files.contains(path)
    }

    /// Registers the files `paths` of `meters_daily`, as read, under
    /// `name` (a name that always stands for the same files).
    pub(crate) async fn register_meter_days(&self, name: &str, paths: &[String]) -> Result<()> {
        if self.ctx.table_exist(name)? {
            return Ok(());
        }
        let tables = Tables {
            ctx: &self.ctx,
            lake: &self.lake,
            engine: &self.engine,
        };
        tables
            .register(
                name,
                &METERS_DAILY_TABLE,
                self.meter_days.as_ref(),
                Some(paths),
            )
            .await
    }

    pub(crate) fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Plans read-only SQL: DDL, DML (`INSERT`, `COPY … TO`, …) and statements
    /// (`SET`, transactions) are refused before anything runs.
    pub(crate) async fn read_only_sql(&self, sql: &str) -> Result<DataFrame> {
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
    pub(crate) async fn named(
        &self,
        name: &str,
        params: Vec<(String, ScalarValue)>,
    ) -> Result<SendableRecordBatchStream> {
        let query = library::get(name)?;
        let df = self.read_only_sql(query.sql).await?;
        let df = df
            .with_param_values(with_status_params(params))
            .map_err(|e| Error::Query {
                name: name.to_string(),
                reason: e.to_string(),
            })?;
        execute(df).await
    }
}

/// An hourly rollup as a session reads it: with its day rollup, each table
/// at the session's version, and the dimensions it groups by besides key
/// and status.
#[derive(Clone, Copy)]
struct RollupRead<'a> {
    hourly: &'a Rollup,
    day: &'a DayRollup,
    table: Option<&'a DeltaTable>,
    days: Option<&'a DeltaTable>,
    dimensions: &'a [(&'a str, &'a str)],
}

/// Where a session's tables are registered, and how they are read.
struct Tables<'a> {
    ctx: &'a SessionContext,
    lake: &'a Lake,
    engine: &'a Engine,
}

impl Tables<'_> {
    /// Registers an hourly rollup's table under its name: the day rollup's
    /// files that pair with `requests` for their days, the hourly files that
    /// pair for the other hours, and, when some hours have no exact rollup,
    /// those hours summed from their raw rows by key, status and the
    /// rollup's dimensions (so usage is exact at every instant). Each hour is
    /// read from exactly one of the three.
    async fn register_rollup(
        &self,
        read: &RollupRead<'_>,
        requests: Option<&DeltaTable>,
    ) -> Result<()> {
        let RollupRead {
            hourly: rollup,
            day,
            table,
            days,
            dimensions,
        } = *read;
        let name = rollup.table.dir;
        let Some(requests) = requests else {
            return self.register(name, &rollup.table, None, None).await;
        };
        let by_day = daily::pair(&daily::requests_by_day(requests)?, days, day)?;
        let covered = |dt: Option<&str>| dt.is_some_and(|dt| by_day.days.contains(dt));
        let mut pairing = rollup::pair(requests, table, rollup)?;
        pairing
            .valid
            .retain(|path| !covered(dt_of_partition_dir(path)));
        pairing
            .stale
            .retain(|partition| !covered(partition.first().map(String::as_str)));
        let files = Some(pairing.valid.as_slice());
        let exact = table.filter(|_| !pairing.valid.is_empty());
        if pairing.stale.is_empty() && by_day.valid.is_empty() {
            return self.register(name, &rollup.table, exact, files).await;
        }
        let paired = format!("{name}_files");
        self.register(&paired, &rollup.table, exact, files).await?;
        let mut parts = vec![format!("SELECT * FROM {paired}")];
        if !by_day.valid.is_empty() {
            // The day files' columns in the hourly table's order (their `hour`
            // is a column of the file, their `dt` the partition).
            let in_days = format!("{}_files", day.table.dir);
            self.register(&in_days, &day.table, days, Some(&by_day.valid))
                .await?;
            let columns: Vec<String> = rollup
                .table
                .schema()
                .fields()
                .iter()
                .map(|f| format!("\"{}\"", f.name()))
                .collect();
            parts.push(format!("SELECT {} FROM {in_days}", columns.join(", ")));
        }
        if !pairing.stale.is_empty() {
            let hours = pairing
                .stale
                .iter()
                .filter(|p| hour_of_partition(p).is_some())
                .map(|p| format!("'{}/{}'", p[0], p[1]))
                .collect::<Vec<_>>()
                .join(", ");
            parts.push(rollup_from_raw(dimensions, &hours));
        }
        let view = format!("CREATE VIEW {name} AS {}", parts.join(" UNION ALL "));
        self.ctx.sql(&view).await?;
        Ok(())
    }

    /// Registers `usage_daily_totals`: a row per day, key and status, each
    /// day read from exactly one of its totals' files (those that pair with
    /// `requests` for their day) or `usage_hourly_keys` (registered before),
    /// whose rows of the other days stand at their day's start. Either way a
    /// day's rows sum to its exact usage.
    async fn register_day_totals(
        &self,
        requests: Option<&DeltaTable>,
        totals: Option<&DeltaTable>,
    ) -> Result<()> {
        let name = DAY_TOTALS_TABLE.dir;
        let Some(requests) = requests else {
            return self.register(name, &DAY_TOTALS_TABLE, None, None).await;
        };
        let by_day = daily::requests_by_day(requests)?;
        let pairing = day_totals::pair(&by_day, totals)?;
        let columns = "api_key_id, api_key_hint, sc_status, requests, bytes_out, bytes_in, dt";
        let mut parts = Vec::new();
        if !pairing.valid.is_empty() {
            let files = format!("{name}_files");
            self.register(&files, &DAY_TOTALS_TABLE, totals, Some(&pairing.valid))
                .await?;
            parts.push(format!("SELECT day_start, {columns} FROM {files}"));
        }
        let others: Vec<String> = by_day
            .keys()
            .filter(|dt| !pairing.days.contains(*dt))
            .map(|dt| format!("'{}'", dt.replace('\'', "''")))
            .collect();
        if !others.is_empty() || parts.is_empty() {
            let only = match pairing.days.is_empty() {
                true => String::new(),
                false => format!("\nWHERE dt IN ({})", others.join(", ")),
            };
            parts.push(format!(
                "SELECT CAST(date_trunc('day', hour_start) AS TIMESTAMP(3) WITH TIME ZONE) AS day_start, {columns}
FROM {}{only}",
                ROLLUPS[1].table.dir
            ));
        }
        let view = format!("CREATE VIEW {name} AS {}", parts.join(" UNION ALL "));
        self.ctx.sql(&view).await?;
        Ok(())
    }

    /// Registers a Delta table (or, for a table not created yet, an empty
    /// one of its schema) under `name`, restricted to the files (paths
    /// relative to the table) `only` lists when given: as its snapshot's
    /// file list ([`files`]) on a cluster and, in process, for the rollups;
    /// read by delta-rs in process otherwise.
    ///
    /// The rollups are edgemeter's own tables (no deletion vectors, no column
    /// mapping, which [`files::LakeFiles`] refuses rather than misreads), and
    /// DataFusion's Parquet scan of their files gives each file's partition
    /// values as constants, where delta-rs's scan builds them row by row: a
    /// month of per-key usage over the benchmark's 10× lake (2.4 million
    /// rollup rows) took 15% less time, the same month by day 19% less.
    async fn register(
        &self,
        name: &str,
        def: &TableDef,
        table: Option<&DeltaTable>,
        only: Option<&[String]>,
    ) -> Result<()> {
        let provider: Arc<dyn TableProvider> = match self.engine {
            Engine::Cluster(_) => {
                Arc::new(files::LakeFiles::of_snapshot(self.lake, def, table, only)?)
            }
            Engine::InProcess if is_rollup(def) && table.is_some() => {
                // The files' store, under the scheme and bucket they name.
                self.ctx
                    .register_object_store(self.lake.url(), self.lake.store().clone());
                Arc::new(
                    files::LakeFiles::of_snapshot(self.lake, def, table, only)?
                        .with_file_strings_as_views(),
                )
            }
            Engine::InProcess => delta_provider(self.ctx, def, table, only)?,
        };
        self.ctx.register_table(name, provider)?;
        Ok(())
    }
}

/// A session of this process with `requests` registered as only the files
/// `only` (paths relative to the table) of `table`'s version, and
/// edgemeter's functions: what a day's derived files are computed over.
/// Its scans and aggregates run as `partitions` streams.
pub(crate) fn requests_files_context(
    table: &DeltaTable,
    only: &[String],
    partitions: usize,
) -> Result<SessionContext> {
    let config = SessionConfig::new().with_target_partitions(partitions.max(1));
    let ctx = SessionContext::new_with_config(config);
    udf::register(&ctx);
    let provider = delta_provider(&ctx, &REQUESTS_TABLE, Some(table), Some(only))?;
    ctx.register_table("requests", provider)?;
    Ok(ctx)
}

/// A Delta table read by delta-rs, restricted to `only` when given; an
/// empty table of its schema when it does not exist yet.
fn delta_provider(
    ctx: &SessionContext,
    def: &TableDef,
    table: Option<&DeltaTable>,
    only: Option<&[String]>,
) -> Result<Arc<dyn TableProvider>> {
    Ok(match table {
        Some(table) => {
            table.update_datafusion_session(&ctx.state())?;
            // Read as edgemeter's own schema: strings as `Utf8` (views on the
            // rollups, see `scanned_schema`), timestamps in milliseconds as
            // the files hold them, partition values as plain strings; the
            // same types a lake without a table yet has (below).
            let config = DeltaScanConfig::new()
                .with_schema(scanned_schema(def))
                .with_wrap_partition_values(false);
            let config = DeltaScanConfig {
                schema_force_view_types: is_rollup(def),
                ..config
            };
            let snapshot = table.snapshot()?.snapshot().clone();
            let mut scan = DeltaScanNext::new(snapshot, config)?;
            if let Some(only) = only {
                scan = scan.with_file_selection(FileSelection::from_file_paths(only.to_vec()));
            }
            Arc::new(scan)
        }
        None => Arc::new(MemTable::try_new(scanned_schema(def), vec![vec![]])?),
    })
}

/// Whether `def` is one of the rollup tables.
fn is_rollup(def: &TableDef) -> bool {
    ROLLUPS.iter().any(|r| r.table.dir == def.dir)
        || DAY_ROLLUPS.iter().any(|r| r.table.dir == def.dir)
        || def.dir == METERS_DAILY_TABLE.dir
        || def.dir == DAY_TOTALS_TABLE.dir
}

/// The schema a table is read as in process by delta-rs, and an empty
/// table's: the table's own, but the rollups' strings as views (`Utf8View`;
/// [`files::LakeFiles::with_file_strings_as_views`] for their files). A month of rollup rows repeats each
/// 64-character key id once per hour and file; as views the keys are not
/// copied out of each file's dictionary: a month of per-key usage over the
/// benchmark's 10× lake took 5% less time, and 17% less with Snappy rollup
/// files (`bench/RESULTS.md`). Results leave the session with plain strings
/// ([`execute`]).
fn scanned_schema(def: &TableDef) -> SchemaRef {
    let schema = def.schema();
    match is_rollup(def) {
        true => retyped(&schema, &DataType::Utf8, DataType::Utf8View),
        false => schema,
    }
}

/// `schema` with every field of type `from` given type `to`.
fn retyped(schema: &Schema, from: &DataType, to: DataType) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() == from {
            true => f.as_ref().clone().with_data_type(to.clone()),
            false => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Runs `df`, its string views cast to plain strings (`Utf8`) batch by batch:
/// the type every caller of a session reads results as, whichever tables
/// they came from. The cast is made on the results, not planned on top of
/// the query: a projection over a sorted plan let DataFusion hand the sorted
/// batches back out of order.
pub(crate) async fn execute(df: DataFrame) -> Result<SendableRecordBatchStream> {
    Ok(plain_strings(df.execute_stream().await?))
}

fn plain_strings(stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
    let schema = stream.schema();
    if !schema
        .fields()
        .iter()
        .any(|f| f.data_type() == &DataType::Utf8View)
    {
        return stream;
    }
    let plain = retyped(&schema, &DataType::Utf8View, DataType::Utf8);
    let out = plain.clone();
    let batches = stream.map(move |batch| {
        let batch = batch?;
        let columns = batch
            .columns()
            .iter()
            .map(|c| match c.data_type() {
                DataType::Utf8View => arrow_cast(c, &DataType::Utf8),
                _ => Ok(c.clone()),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(out.clone(), columns)?)
    });
    Box::pin(RecordBatchStreamAdapter::new(plain, batches))
}

/// The bounds of the status classes the SQL counts ([`StatusClass::COUNTED`]):
/// `billable_lo` = 200, `billable_hi` = 299, `client_error_lo`, … as
/// `SMALLINT`, the type of `sc_status`. Every named query is given them.
pub(crate) fn status_params() -> Vec<(String, ScalarValue)> {
    StatusClass::COUNTED
        .iter()
        .flat_map(|(name, class)| {
            let (lo, hi) = class.range();
            let (lo_name, hi_name) = StatusClass::param_names(name);
            [
                (lo_name, ScalarValue::Int16(Some(lo))),
                (hi_name, ScalarValue::Int16(Some(hi))),
            ]
        })
        .collect()
}

/// `params` and the status classes' bounds: what a named query is run with.
fn with_status_params(mut params: Vec<(String, ScalarValue)>) -> Vec<(String, ScalarValue)> {
    params.extend(status_params());
    params
}

/// Query parameters of a [`TimeRange`]: the range itself belongs to
/// [`crate::time`], what the SQL of `queries/` binds for it to the queries.
impl TimeRange {
    /// The parameters of range queries:
    /// - `from`, `to`: the range; `from_dt`, `to_dt`: the same as inclusive
    ///   `dt` bounds, which only prune partitions (the timestamps decide);
    /// - `whole_from`, `whole_to`: the whole UTC hours inside the range, which
    ///   `usage_hourly` answers (empty when `whole_from >= whole_to`), and
    ///   the same hours as partitions, `whole_from_dt`/`whole_from_hour` to
    ///   `whole_to_dt`/`whole_to_hour` (exclusive): the rollup is chosen by
    ///   partition, so its rows are not compared one by one;
    /// - `head_dt`/`head_hour`, `tail_dt`/`tail_hour`: the partitions of the
    ///   partial hours at either edge, whose raw rows are read (empty strings,
    ///   matching no partition, when that edge is on the hour);
    /// - `days_from_dt` to `days_to_dt` (exclusive): the whole UTC days among
    ///   those hours, which `usage_daily_totals` answers (both empty when
    ///   there are none).
    pub(crate) fn params(&self) -> Vec<(String, ScalarValue)> {
        let ts = |t: DateTime<Utc>| {
            ScalarValue::TimestampMillisecond(Some(t.timestamp_millis()), Some("UTC".into()))
        };
        let text = |s: String| ScalarValue::Utf8(Some(s));
        let from = self.from.unwrap_or(time::epoch_floor());
        let to = self.to.unwrap_or(time::epoch_ceiling());
        let edge = |t: DateTime<Utc>| {
            if Hour::of(t).start() == Some(t) {
                return (String::new(), String::new());
            }
            layout::partition_values(Hour::of(t))
        };
        let hour_instant = |h: Hour| h.start().unwrap_or(time::epoch_ceiling());
        let aligned = edge(from).0.is_empty();
        let whole_from = hour_instant(if aligned {
            Hour::of(from)
        } else {
            Hour::of(from).next()
        });
        let whole_to = hour_instant(Hour::of(to));
        let (whole_from_dt, whole_from_hour) = layout::partition_values(Hour::of(whole_from));
        let (whole_to_dt, whole_to_hour) = layout::partition_values(Hour::of(whole_to));
        let (head_dt, head_hour) = edge(from);
        let (tail_dt, tail_hour) = edge(to);
        // The whole UTC days among the whole hours: from the first midnight
        // at or after `whole_from` to the last at or before `whole_to`.
        let midnight = |t: DateTime<Utc>| t.date_naive().and_time(chrono::NaiveTime::MIN).and_utc();
        let days_from = match midnight(whole_from) == whole_from {
            true => whole_from,
            false => midnight(whole_from) + chrono::Duration::days(1),
        };
        let days_to = midnight(whole_to);
        let (days_from_dt, days_to_dt) = match days_from < days_to {
            true => (
                days_from.format("%Y-%m-%d").to_string(),
                days_to.format("%Y-%m-%d").to_string(),
            ),
            false => (String::new(), String::new()),
        };
        vec![
            ("days_from_dt".into(), text(days_from_dt)),
            ("days_to_dt".into(), text(days_to_dt)),
            ("whole_from".into(), ts(whole_from)),
            ("whole_to".into(), ts(whole_to)),
            ("whole_from_dt".into(), text(whole_from_dt)),
            ("whole_from_hour".into(), text(whole_from_hour)),
            ("whole_to_dt".into(), text(whole_to_dt)),
            ("whole_to_hour".into(), text(whole_to_hour)),
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

/// Collects a stream (for tests and small results).
pub(crate) async fn collect(stream: SendableRecordBatchStream) -> Result<Vec<RecordBatch>> {
    Ok(datafusion::physical_plan::common::collect(stream).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray, Int64Array, StringViewArray};

    #[tokio::test]
    async fn results_leave_a_session_with_plain_strings() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("api_key_id", DataType::Utf8View, true),
            Field::new("requests", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringViewArray::from(vec![
                    Some("a key id longer than twelve bytes"),
                    None,
                ])),
                Arc::new(Int64Array::from(vec![3, 4])),
            ],
        )
        .unwrap();
        let ctx = SessionContext::new();
        ctx.register_table(
            "t",
            Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap()),
        )
        .unwrap();
        let df = ctx.sql("SELECT * FROM t").await.unwrap();
        let out = collect(execute(df).await.unwrap()).await.unwrap();
        let out = &out[0];
        assert_eq!(out.schema().field(0).name(), "api_key_id");
        assert_eq!(out.schema().field(0).data_type(), &DataType::Utf8);
        let ids = out.column(0).as_string::<i32>();
        assert_eq!(ids.value(0), "a key id longer than twelve bytes");
        assert!(ids.is_null(1));
        assert_eq!(
            out.column(1)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .values(),
            &[3, 4]
        );
    }

    #[tokio::test]
    async fn sorted_results_of_many_batches_stay_in_order_as_plain_strings() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "k",
            DataType::Utf8View,
            false,
        )]));
        // Two partitions of 20,000 keys each, in an order the sort must undo.
        let partitions: Vec<Vec<RecordBatch>> = (0..2)
            .map(|p| {
                let keys: Vec<String> = (0..20_000)
                    .map(|i| format!("key {:08} of the table", (i * 7919 + p) % 40_000))
                    .collect();
                let array = StringViewArray::from_iter_values(keys.iter());
                vec![RecordBatch::try_new(schema.clone(), vec![Arc::new(array)]).unwrap()]
            })
            .collect();
        let config = SessionConfig::new().with_target_partitions(2);
        let ctx = SessionContext::new_with_config(config);
        ctx.register_table(
            "t",
            Arc::new(MemTable::try_new(schema, partitions).unwrap()),
        )
        .unwrap();
        let df = ctx
            .sql("SELECT k, count(*) AS n FROM t GROUP BY k ORDER BY k")
            .await
            .unwrap();
        let batches = collect(execute(df).await.unwrap()).await.unwrap();
        assert!(
            batches.len() > 1,
            "one batch would not test the order of batches"
        );
        let keys: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                assert_eq!(b.column(0).data_type(), &DataType::Utf8);
                b.column(0)
                    .as_string::<i32>()
                    .iter()
                    .map(|k| k.unwrap().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut expected: Vec<String> = (0..2)
            .flat_map(|p| {
                (0..20_000).map(move |i| format!("key {:08} of the table", (i * 7919 + p) % 40_000))
            })
            .collect();
        expected.sort();
        expected.dedup();
        assert_eq!(keys, expected);
    }

    /// The whole UTC days of a range are those whose every hour is among
    /// its whole hours; none when there is no such day.
    #[test]
    fn a_ranges_whole_days_lie_within_its_whole_hours() {
        let days = |from: &str, to: &str| {
            let range = TimeRange {
                from: Some(from.parse().unwrap()),
                to: Some(to.parse().unwrap()),
            };
            let params = range.params();
            let text = |name: &str| match &params.iter().find(|(n, _)| n == name).unwrap().1 {
                ScalarValue::Utf8(Some(s)) => s.clone(),
                other => panic!("{name}: {other:?}"),
            };
            (text("days_from_dt"), text("days_to_dt"))
        };
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        // October, on midnights.
        assert_eq!(
            days("2025-10-01T00:00:00Z", "2025-11-01T00:00:00Z"),
            pair("2025-10-01", "2025-11-01")
        );
        // A second after midnight: the first day is not whole; a second
        // before midnight, nor is the last.
        assert_eq!(
            days("2025-10-01T00:00:01Z", "2025-10-05T23:59:59Z"),
            pair("2025-10-02", "2025-10-05")
        );
        // A Berlin month: from 22:00 UTC to 23:00 UTC.
        assert_eq!(
            days("2025-09-30T22:00:00Z", "2025-10-31T23:00:00Z"),
            pair("2025-10-01", "2025-10-31")
        );
        // Less than a whole day, or a day less a second.
        assert_eq!(
            days("2025-10-05T01:00:00Z", "2025-10-06T00:00:00Z"),
            pair("", "")
        );
        assert_eq!(
            days("2025-10-05T00:00:00Z", "2025-10-05T23:59:59Z"),
            pair("", "")
        );
        assert_eq!(
            days("2025-10-05T00:00:00Z", "2025-10-06T00:00:00Z"),
            pair("2025-10-05", "2025-10-06")
        );
    }

    #[test]
    fn only_the_rollups_are_read_as_string_views() {
        let views = |def: &TableDef| {
            scanned_schema(def)
                .fields()
                .iter()
                .filter(|f| f.data_type() == &DataType::Utf8View)
                .count()
        };
        assert_eq!(views(&REQUESTS_TABLE), 0);
        assert_eq!(views(&INGESTED_TABLE), 0);
        for rollup in &ROLLUPS {
            let strings = rollup
                .table
                .schema()
                .fields()
                .iter()
                .filter(|f| f.data_type() == &DataType::Utf8)
                .count();
            assert!(strings > 0);
            assert_eq!(views(&rollup.table), strings, "{}", rollup.table.dir);
        }
    }
}
