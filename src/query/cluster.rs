//! The named queries and ad hoc SQL on a Ballista cluster, and the cluster's
//! processes, run from edgemeter's own binary.
//!
//! What runs where:
//! - the client (`edgemeter query --cluster df://host:port`) reads the Delta
//!   logs, turns each table version into the list of its files
//!   ([`super::files::LakeFiles`]), plans the SQL (read-only guard, bound
//!   parameters) as in-process and sends the logical plan to the scheduler;
//! - the scheduler (`edgemeter scheduler`) decodes the plan with
//!   [`LakeCodec`] and edgemeter's SQL functions, prunes partitions, plans
//!   the stages and hands their tasks to executors;
//! - the executors (`edgemeter executor`) read the Parquet files, local or on
//!   S3 ([`crate::lake::stores::LakeStores`]), run edgemeter's functions and
//!   return the rows, which the client prints as in-process.
//!
//! The table list, `SHOW` and `information_schema` are answered by the client.

use super::udf;
use crate::aws::S3Settings;
use crate::error::{Error, Result};
use crate::lake::stores::LakeStores;
use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::planner::BallistaQueryPlanner;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::serde::BallistaLogicalExtensionCodec;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF, WindowUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::protobuf::LogicalPlanNode;
use std::sync::Arc;

/// How a cluster's address is written: `df://host:port`.
pub(crate) const CLUSTER_SCHEME: &str = "df://";
/// A cluster's port when its address names none (Ballista's).
const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// Checks a `--cluster` address: `df://host:port` (the port 50050 when none).
pub(crate) fn parse_cluster_url(text: &str) -> Result<String> {
    let bad = |why: &str| Error::Config(format!("--cluster {text:?}: {why}; give df://host:port"));
    if !text.starts_with(CLUSTER_SCHEME) {
        return Err(bad("not a df:// address"));
    }
    let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err(bad("a path or query after host:port"));
    }
    Ok(text.to_string())
}

/// Marks a table provider of edgemeter's in the plans the codec writes.
const LAKE_FILES_TAG: &[u8] = b"edgemeter.lake_files.v1:";

/// Ballista's logical codec, with edgemeter's tables ([`super::files::LakeFiles`])
/// encoded as their file lists. Client and scheduler must use it both.
#[derive(Debug, Default)]
pub(crate) struct LakeCodec {
    ballista: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for LakeCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> DfResult<Extension> {
        self.ballista.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> DfResult<()> {
        self.ballista.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn TableProvider>> {
        match buf.strip_prefix(LAKE_FILES_TAG) {
            Some(json) => {
                let wire = serde_json::from_slice(json).map_err(|e| {
                    DataFusionError::Plan(format!("table {table_ref}: bad lake file list: {e}"))
                })?;
                Ok(Arc::new(super::files::LakeFiles::from_wire(wire, schema)?))
            }
            None => self
                .ballista
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> DfResult<()> {
        match node.downcast_ref::<super::files::LakeFiles>() {
            Some(files) => {
                buf.extend_from_slice(LAKE_FILES_TAG);
                serde_json::to_writer(buf, files.wire())
                    .map_err(|e| DataFusionError::Plan(format!("table {table_ref}: {e}")))
            }
            None => self
                .ballista
                .try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn FileFormatFactory>> {
        self.ballista.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> DfResult<()> {
        self.ballista.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<ScalarUDF>> {
        self.ballista.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.ballista.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<AggregateUDF>> {
        self.ballista.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.ballista.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<WindowUDF>> {
        self.ballista.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.ballista.try_encode_udwf(node, buf)
    }
}

/// Ballista's planner for the plans that read tables; the client's own for
/// those that read none (`… LIMIT 0`, `… WHERE false`, `SELECT 1`), which
/// Ballista 55 answers with an empty schema instead of the plan's, and for
/// `EXPLAIN` (the plan the scheduler makes before cutting it into stages;
/// `EXPLAIN ANALYZE` runs on the cluster).
struct LakeQueryPlanner {
    cluster: BallistaQueryPlanner<LogicalPlanNode>,
    local: DefaultPhysicalPlanner,
}

impl std::fmt::Debug for LakeQueryPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeQueryPlanner")
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

/// True when a plan, its subqueries included, scans a table.
fn reads_a_table(plan: &LogicalPlan) -> DfResult<bool> {
    let mut found = false;
    plan.apply_with_subqueries(|node| {
        found = matches!(node, LogicalPlan::TableScan(_));
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    Ok(found)
}

#[async_trait::async_trait]
impl QueryPlanner for LakeQueryPlanner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        state: &dyn datafusion::catalog::Session,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if reads_a_table(plan)? && !matches!(plan, LogicalPlan::Explain(_)) {
            self.cluster.create_physical_plan(plan, state).await
        } else {
            self.local.create_physical_plan(plan, state).await
        }
    }
}

/// A client session whose queries run on the cluster at `url`
/// (`df://host:port`), with `config`'s settings and edgemeter's functions.
pub(crate) async fn remote_context(url: &str, config: SessionConfig) -> Result<SessionContext> {
    let parsed =
        url::Url::parse(url).map_err(|e| Error::Config(format!("--cluster {url}: {e}")))?;
    let scheduler = format!(
        "http://{}:{}",
        parsed.host_str().unwrap_or_default(),
        parsed.port().unwrap_or(DEFAULT_SCHEDULER_PORT)
    );
    let codec = Arc::new(LakeCodec::default());
    let config = config
        .upgrade_for_ballista()
        .with_ballista_adaptive_query_planner(false);
    let planner = LakeQueryPlanner {
        cluster: BallistaQueryPlanner::with_extension(
            scheduler,
            config.ballista_config(),
            codec.clone(),
        ),
        local: DefaultPhysicalPlanner::default(),
    };
    let config = config
        .with_ballista_logical_extension_codec(codec)
        .with_ballista_query_planner(Arc::new(planner));
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .build();
    let ctx = SessionContext::remote_with_state(url, state).await?;
    // After the upgrade, which sets Ballista's own list of functions.
    udf::register(&ctx);
    Ok(ctx)
}

/// A runtime that reaches lakes through `stores`, spilling to `temp` when given.
fn runtime(stores: &Arc<LakeStores>, temp: Option<&str>) -> DfResult<Arc<RuntimeEnv>> {
    let mut builder = RuntimeEnvBuilder::new().with_object_store_registry(stores.clone());
    if let Some(temp) = temp {
        builder = builder.with_temp_file_path(temp);
    }
    builder.build_arc()
}

/// The scheduler's session for a client's session: Ballista's default one
/// with edgemeter's functions and the lakes' stores.
fn scheduler_session(stores: &Arc<LakeStores>, config: SessionConfig) -> DfResult<SessionState> {
    let state = ballista_core::utils::default_session_builder(config)?;
    let mut state = SessionStateBuilder::new_from_existing(state)
        .with_runtime_env(runtime(stores, None)?)
        .build();
    for function in udf::all() {
        datafusion::execution::FunctionRegistry::register_udf(&mut state, Arc::new(function))?;
    }
    Ok(state)
}

/// Where the scheduler listens and how it is reached.
#[derive(Debug, Clone)]
pub(crate) struct SchedulerOptions {
    pub(crate) bind_host: String,
    /// 0 picks a free port.
    pub(crate) port: u16,
    /// The host executors and clients use to reach the scheduler.
    pub(crate) external_host: String,
    pub(crate) s3: S3Settings,
}

fn ballista_error(role: &'static str) -> impl Fn(ballista_core::error::BallistaError) -> Error {
    move |e| Error::Cluster {
        role,
        reason: e.to_string(),
    }
}

/// Runs a Ballista scheduler until the process ends. Prints
/// `edgemeter: scheduler listening on HOST:PORT` once it accepts connections.
pub(crate) async fn run_scheduler(options: SchedulerOptions) -> Result<()> {
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;
    use ballista_scheduler::scheduler_process::{
        create_scheduler, start_grpc_service_with_listener,
    };
    use datafusion_proto::protobuf::PhysicalPlanNode;
    let address = format!("{}:{}", options.bind_host, options.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|e| Error::io(&address, e))?;
    let bound = listener.local_addr().map_err(|e| Error::io(&address, e))?;
    let stores = Arc::new(LakeStores::new(&options.s3).await);
    let config = SchedulerConfig {
        bind_host: options.bind_host.clone(),
        bind_port: bound.port(),
        external_host: options.external_host.clone(),
        override_session_builder: Some(Arc::new(move |config| scheduler_session(&stores, config))),
        override_logical_codec: Some(Arc::new(LakeCodec::default())),
        ..SchedulerConfig::default()
    };
    config.validate().map_err(ballista_error("scheduler"))?;
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(ballista_error("scheduler"))?;
    let scheduler =
        create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config))
            .await
            .map_err(ballista_error("scheduler"))?;
    eprintln!("edgemeter: scheduler listening on {bound}");
    start_grpc_service_with_listener(listener, scheduler)
        .await
        .map_err(ballista_error("scheduler"))
}

/// Where an executor listens, and the scheduler it works for.
#[derive(Debug, Clone)]
pub(crate) struct ExecutorOptions {
    pub(crate) bind_host: String,
    /// The Arrow Flight port, which serves results and shuffle data.
    pub(crate) port: u16,
    /// The gRPC port (tasks pushed by a push-staged scheduler).
    pub(crate) grpc_port: u16,
    /// The host the scheduler and clients use to reach this executor; `None`:
    /// the address the scheduler sees it connect from.
    pub(crate) external_host: Option<String>,
    pub(crate) scheduler_host: String,
    pub(crate) scheduler_port: u16,
    /// Tasks run at once; 0: one per core.
    pub(crate) concurrent_tasks: usize,
    /// Shuffle files and spills.
    pub(crate) work_dir: std::path::PathBuf,
    pub(crate) s3: S3Settings,
}

/// edgemeter's functions beside DataFusion's, for decoding tasks' plans.
fn executor_functions() -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    for function in udf::all() {
        registry
            .scalar_functions
            .insert(function.name().to_string(), Arc::new(function));
    }
    registry
}

/// Runs a Ballista executor until the process ends (or the scheduler stops
/// it). Prints `edgemeter: executor ID serving on HOST:PORT` before it
/// registers.
pub(crate) async fn run_executor(options: ExecutorOptions) -> Result<()> {
    use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
    std::fs::create_dir_all(&options.work_dir).map_err(|e| Error::io(&options.work_dir, e))?;
    let work_dir = options
        .work_dir
        .to_str()
        .ok_or_else(|| Error::Config(format!("--work-dir {:?} is not UTF-8", options.work_dir)))?
        .to_string();
    let stores = Arc::new(LakeStores::new(&options.s3).await);
    let temp = work_dir.clone();
    let config = ExecutorProcessConfig {
        bind_host: options.bind_host.clone(),
        port: options.port,
        grpc_port: options.grpc_port,
        external_host: options.external_host.clone(),
        scheduler_host: options.scheduler_host.clone(),
        scheduler_port: options.scheduler_port,
        vcores: options.concurrent_tasks,
        work_dir: Some(work_dir),
        override_function_registry: Some(Arc::new(executor_functions())),
        override_runtime_producer: Some(Arc::new(move |_: &SessionConfig| {
            runtime(&stores, Some(&temp))
        })),
        ..ExecutorProcessConfig::default()
    };
    eprintln!(
        "edgemeter: executor {} serving on {}:{}, for the scheduler at {}:{}",
        config.executor_id,
        options.bind_host,
        options.port,
        options.scheduler_host,
        options.scheduler_port
    );
    start_executor_process(Arc::new(config))
        .await
        .map_err(ballista_error("executor"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_addresses_are_checked() {
        assert!(parse_cluster_url("df://localhost:50050").is_ok());
        assert!(parse_cluster_url("df://10.0.0.7").is_ok());
        for bad in [
            "localhost:50050",
            "http://localhost:50050",
            "df://",
            "df://host:port",
            "df://host:50050/x",
        ] {
            assert!(parse_cluster_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn executors_know_edgemeters_functions_and_datafusions() {
        use datafusion::execution::FunctionRegistry;
        let registry = executor_functions();
        for name in ["endpoint_template", "window_start", "date_trunc", "lower"] {
            assert!(registry.udf(name).is_ok(), "{name}");
        }
        assert!(registry.udaf("percentile_cont").is_ok());
    }
}
