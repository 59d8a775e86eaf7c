//! The log stores of the lake's Delta tables: how delta-rs reads and writes
//! their logs, on local disk and on S3 alike.

use bytes::Bytes;
use deltalake::kernel::Version;
use deltalake::kernel::transaction::TransactionError;
use deltalake::logstore::{
    CommitOrBytes, LogStore, LogStoreConfig, LogStoreFactory, ObjectStoreRef, StorageConfig,
    default_logstore, logstore_factories,
};
use std::sync::Arc;
use url::Url;

/// Makes the log store of every table of the lake, local (`file://`) or on
/// S3: delta-rs's plain log store, whose commits are conditional creates of
/// the next log entry (`If-None-Match: *` on S3), wrapped in a
/// [`FewReadsLogStore`]. delta-rs's own S3 support (the `s3` feature) brings
/// a second AWS stack; the lake already has its S3 store, built from
/// aws-config.
#[derive(Debug, Default)]
struct LakeLogStores;

impl LogStoreFactory for LakeLogStores {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> deltalake::DeltaResult<Arc<dyn LogStore>> {
        Ok(Arc::new(FewReadsLogStore(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))))
    }
}

/// Registers [`LakeLogStores`] for the lake's URL schemes, once.
pub(crate) fn register() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for scheme in ["s3://", "s3a://", "file://"] {
            if let Ok(url) = Url::parse(scheme) {
                logstore_factories().insert(url, Arc::new(LakeLogStores));
            }
        }
    });
}

/// Log files the kernel reads at once when it replays a table's log
/// (commits since the last checkpoint, or a checkpoint's parts).
///
/// delta-rs's engine reads up to 1,000 at once, each with a JSON decoder
/// sized for 1,000 actions of the whole action schema (about 2.4 MB). A log
/// replay reads at most [`CHECKPOINT_INTERVAL`](super::delta::CHECKPOINT_INTERVAL) commits, so that was ten
/// decoders per replay, and replays of three tables overlap in an ingest:
/// 27 MB of a 160 MB heap peak in a profile of an ingest into a lake of 480
/// hours. Four still overlap the requests to S3.
const LOG_FILES_AT_ONCE: std::num::NonZero<usize> = std::num::NonZero::new(4).unwrap();

/// A log store whose kernel engine reads [`LOG_FILES_AT_ONCE`] log files at
/// a time; everything else is the wrapped store's.
pub(crate) struct FewReadsLogStore(Arc<dyn LogStore>);

#[async_trait::async_trait]
impl LogStore for FewReadsLogStore {
    fn name(&self) -> String {
        self.0.name()
    }

    async fn refresh(&self) -> deltalake::DeltaResult<()> {
        self.0.refresh().await
    }

    async fn read_commit_entry(&self, version: Version) -> deltalake::DeltaResult<Option<Bytes>> {
        self.0.read_commit_entry(version).await
    }

    async fn write_commit_entry(
        &self,
        version: Version,
        commit_or_bytes: CommitOrBytes,
        operation_id: uuid::Uuid,
    ) -> std::result::Result<(), TransactionError> {
        self.0
            .write_commit_entry(version, commit_or_bytes, operation_id)
            .await
    }

    async fn abort_commit_entry(
        &self,
        version: Version,
        commit_or_bytes: CommitOrBytes,
        operation_id: uuid::Uuid,
    ) -> std::result::Result<(), TransactionError> {
        self.0
            .abort_commit_entry(version, commit_or_bytes, operation_id)
            .await
    }

    async fn get_latest_version(&self, start_version: Version) -> deltalake::DeltaResult<Version> {
        self.0.get_latest_version(start_version).await
    }

    fn object_store(&self, operation_id: Option<uuid::Uuid>) -> ObjectStoreRef {
        self.0.object_store(operation_id)
    }

    fn root_object_store(&self, operation_id: Option<uuid::Uuid>) -> ObjectStoreRef {
        self.0.root_object_store(operation_id)
    }

    fn engine(&self, operation_id: Option<uuid::Uuid>) -> Arc<dyn buoyant_kernel::Engine> {
        use buoyant_kernel_engine::DefaultEngineBuilder;
        use buoyant_kernel_engine::executor::tokio::{
            TokioBackgroundExecutor, TokioMultiThreadExecutor,
        };
        use tokio::runtime::{Handle, RuntimeFlavor};
        let builder = DefaultEngineBuilder::new(self.0.root_object_store(operation_id))
            .with_buffer_size(LOG_FILES_AT_ONCE);
        let handle = Handle::current();
        match handle.runtime_flavor() {
            RuntimeFlavor::CurrentThread => Arc::new(
                builder
                    .with_task_executor(Arc::new(TokioBackgroundExecutor::new()))
                    .build(),
            ),
            _ => Arc::new(
                builder
                    .with_task_executor(Arc::new(TokioMultiThreadExecutor::new(handle)))
                    .build(),
            ),
        }
    }

    fn to_uri(&self, location: &deltalake::Path) -> String {
        self.0.to_uri(location)
    }

    fn root_url(&self) -> &Url {
        self.0.root_url()
    }

    fn log_path(&self) -> &deltalake::Path {
        self.0.log_path()
    }

    fn transaction_url(&self, operation_id: Option<uuid::Uuid>) -> deltalake::DeltaResult<Url> {
        self.0.transaction_url(operation_id)
    }

    async fn is_delta_table_location(&self) -> deltalake::DeltaResult<bool> {
        self.0.is_delta_table_location().await
    }

    fn config(&self) -> &LogStoreConfig {
        self.0.config()
    }

    fn object_store_url(&self) -> datafusion::execution::object_store::ObjectStoreUrl {
        self.0.object_store_url()
    }
}
