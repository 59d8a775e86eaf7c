//! The lake's tables as Delta Lake tables: opening them (at the newest
//! version or as of an older one), creating them, listing their files by
//! partition, and committing actions with optimistic concurrency.
//!
//! edgemeter writes each data file itself (its own sort order, statistics and
//! encoding, see [`super::parquet_io`]) and commits it with delta-rs's
//! transaction API. A commit is made on top of exactly the version its actions
//! were computed from ([`commit`] never lets delta-rs retry on its own): when
//! another writer committed first, the caller re-reads the partitions it
//! touches at the new version and decides what to redo. Every engine that
//! reads Delta then sees each commit whole or not at all.

use super::Lake;
use crate::error::{Error, Result};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Add, Remove, StructField, StructType};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError, TableProperty};
use object_store::ObjectStoreExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use url::Url;

/// One of the lake's Delta tables.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableDef {
    /// Directory below the lake root.
    pub(crate) dir: &'static str,
    /// The schema of its data files (partition columns excluded).
    pub(crate) file_schema: fn() -> SchemaRef,
    /// Its partition columns, all strings.
    pub(crate) partition_by: &'static [&'static str],
    /// The columns the log's statistics cover, as the table's
    /// `delta.dataSkippingStatsColumns` (see [`TableDef::properties`]): on
    /// `requests` those whose range edgemeter writes with each file. The other
    /// tables' files carry row counts only; they name the column readers look
    /// their files up by, so that the statistics keep the least and greatest
    /// values' shape that delta-rs's scans expect (with no column at all, it
    /// warns on every filtered scan that it cannot prune).
    pub(crate) stats_columns: &'static [&'static str],
}

impl TableDef {
    /// The table properties edgemeter gives its tables.
    ///
    /// - `delta.checkpointInterval`: [`CHECKPOINT_INTERVAL`].
    /// - Which columns the log's statistics cover: the ones edgemeter writes
    ///   ([`TableDef::stats_columns`]). Readers (delta-rs among them) parse
    ///   every file's statistics when they replay a log, with a JSON decoder
    ///   shaped by these properties; by default that shape has the first 32
    ///   columns (three times over: least, greatest, null count), though
    ///   edgemeter fills two of them at most. Ingesting 480 hours into a new
    ///   lake took 64 s with the default shape and 46 s with this one.
    pub(crate) fn properties(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                TableProperty::CheckpointInterval.as_ref(),
                CHECKPOINT_INTERVAL.to_string(),
            ),
            (
                TableProperty::DataSkippingStatsColumns.as_ref(),
                self.stats_columns.join(","),
            ),
        ]
    }

    /// The table's full schema: file columns, then partition columns.
    pub(crate) fn schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = (self.file_schema)()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.extend(
            self.partition_by
                .iter()
                .map(|c| Field::new(*c, DataType::Utf8, false)),
        );
        Arc::new(Schema::new(fields))
    }
}

/// Which version of a table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum AsOf {
    /// The newest committed version.
    #[default]
    Latest,
    /// A version number of the table.
    Version(u64),
    /// The newest version committed at or before this instant.
    Time(chrono::DateTime<chrono::Utc>),
}

impl AsOf {
    /// Parses `--as-of`: a version number, a date (midnight UTC) or RFC 3339.
    pub(crate) fn parse(text: &str) -> Result<Self> {
        if let Ok(version) = text.parse::<u64>() {
            return Ok(AsOf::Version(version));
        }
        crate::time::parse_instant(text)
            .map(AsOf::Time)
            .map_err(|_| Error::Config(format!("--as-of {}", Self::not_as_of(text))))
    }

    /// Why `text` is neither a version nor a time.
    pub(crate) fn not_as_of(text: &str) -> String {
        format!("{text:?} is neither a table version (42) nor a time (2025-03-01 or RFC 3339)")
    }
}

/// The URL of a table's directory, ending in `/`.
fn table_url(lake: &Lake, def: &TableDef) -> Result<Url> {
    Url::parse(&lake.table_url(def.dir))
        .map_err(|e| Error::Config(format!("bad table location {}: {e}", def.dir)))
}

/// A builder for a table of the lake, on the lake's own object store.
pub(crate) fn builder(lake: &Lake, def: &TableDef) -> Result<DeltaTableBuilder> {
    super::log_store::register();
    let url = table_url(lake, def)?;
    Ok(DeltaTableBuilder::from_url(url.clone())?.with_storage_backend(lake.store().clone(), url))
}

/// Opens a table at `as_of`; `None` when it has never been created.
///
/// A table directory that holds data files but no Delta log was written by an
/// earlier version of edgemeter: that is an error naming `edgemeter migrate`.
pub(crate) async fn open(lake: &Lake, def: &TableDef, as_of: AsOf) -> Result<Option<DeltaTable>> {
    if !has_log(lake, def).await? {
        if lake.holds_files_under(def.dir).await? {
            // Another writer may have made the table between the two
            // listings (and a directory listing can miss a log entry renamed
            // into place while it runs): only a log still missing a moment
            // later means a lake of the old layout.
            for _ in 0..3 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                if has_log(lake, def).await? {
                    return Box::pin(open(lake, def, as_of)).await;
                }
            }
            return Err(Error::Unconverted(lake.display_location()));
        }
        return Ok(None);
    }
    let mut table = builder(lake, def)?.build()?;
    let loaded = match as_of {
        AsOf::Latest => table.load().await,
        AsOf::Version(v) => table.load_version(v).await,
        AsOf::Time(t) => table.load_with_datetime(t).await,
    };
    match loaded {
        Ok(()) => Ok(Some(table)),
        Err(e) => Err(as_of_error(def, as_of, e)),
    }
}

/// True when the table's Delta log has an entry: the table exists.
pub(crate) async fn has_log(lake: &Lake, def: &TableDef) -> Result<bool> {
    use futures::TryStreamExt;
    let log = lake.path(&format!("{}/_delta_log", def.dir));
    // A log with a checkpoint names it in `_last_checkpoint`: one request.
    // Listing instead costs a request per 1,000 entries on S3 and, on a
    // local disk, a `stat` of each of the first 1,024: every commit of the
    // retention period (one day of usage over the benchmark's 10× lake,
    // whose logs hold 531 entries, took 84 ms with the listings, 66 without).
    match lake
        .store()
        .head(&log.clone().join("_last_checkpoint"))
        .await
    {
        Ok(_) => return Ok(true),
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(lake.store().list(Some(&log)).try_next().await?.is_some())
}

fn as_of_error(def: &TableDef, as_of: AsOf, e: DeltaTableError) -> Error {
    match (as_of, &e) {
        (AsOf::Latest, _) => e.into(),
        (AsOf::Version(v), _) => Error::Config(format!(
            "--as-of {v}: table {} has no such version ({e})",
            def.dir
        )),
        (AsOf::Time(t), _) => Error::Config(format!(
            "--as-of {}: table {} has no version that old ({e})",
            t.to_rfc3339(),
            def.dir
        )),
    }
}

/// Opens a table at its newest version, creating it first if needed. Two
/// writers creating it at once is fine: the one whose create loses loads the
/// other's table.
pub(crate) async fn open_or_create(lake: &Lake, def: &TableDef) -> Result<DeltaTable> {
    if let Some(table) = open(lake, def, AsOf::Latest).await? {
        let table = add_missing_columns(lake, def, table).await?;
        return set_missing_properties(lake, def, table).await;
    }
    let schema: StructType = def.schema().try_into_kernel()?;
    let table = builder(lake, def)?.build()?;
    let created = table
        .create()
        .with_columns(schema.fields().cloned())
        .with_partition_columns(def.partition_by.iter().copied())
        .with_configuration(
            def.properties()
                .into_iter()
                .map(|(key, value)| (key, Some(value))),
        )
        .with_save_mode(SaveMode::Ignore)
        .await;
    match created {
        Ok(table) => Ok(table),
        Err(e) if is_conflict(&e) => open(lake, def, AsOf::Latest)
            .await?
            .ok_or_else(|| Error::Lake(format!("{}: created, then not found", def.dir))),
        Err(e) => Err(e.into()),
    }
}

/// Adds to a table made by an earlier edgemeter the columns added since (they
/// come last; its older files read them as null), so that the files written
/// now match the table's schema. One commit, once per lake: when writers race
/// to make it, the losers find the columns there.
async fn add_missing_columns(lake: &Lake, def: &TableDef, table: DeltaTable) -> Result<DeltaTable> {
    let wanted: StructType = def.schema().try_into_kernel()?;
    let missing = |table: &DeltaTable| -> Result<Vec<StructField>> {
        let schema = table.snapshot()?.schema();
        Ok(wanted
            .fields()
            .filter(|f| schema.field(f.name()).is_none())
            .cloned()
            .collect())
    };
    let fields = missing(&table)?;
    if fields.is_empty() {
        return Ok(table);
    }
    let names: Vec<String> = fields.iter().map(|f| f.name().to_string()).collect();
    match table.add_columns().with_fields(fields).await {
        Ok(table) => {
            tracing::info!(table = def.dir, columns = ?names, "added columns to a table made by an earlier edgemeter");
            Ok(table)
        }
        Err(e) => {
            let table = open(lake, def, AsOf::Latest)
                .await?
                .ok_or_else(|| Error::Lake(format!("{}: not found", def.dir)))?;
            match missing(&table)?.is_empty() {
                true => Ok(table),
                false => Err(Error::Lake(format!(
                    "{}: cannot add the columns {names:?}: {e}",
                    def.dir
                ))),
            }
        }
    }
}

/// Commits between two checkpoints of a table's log (Delta's
/// `delta.checkpointInterval`, 100 unless a table says otherwise). A
/// checkpoint is written by the commit that reaches it, from the previous
/// checkpoint and every commit since, and delta-rs reads those commits all at
/// once, each with a JSON decoder of its own. In a heap profile of an ingest
/// (144 objects, three tables committed in step) those decoders were the
/// largest single item of the peak: 86 MB of 212 MB at 100, 49 MB at 10 (see
/// `bench/RESULTS.md`). At 10 a reader opening the table also replays at
/// most ten commits; each checkpoint costs one Parquet file of the table's
/// actions.
pub(crate) const CHECKPOINT_INTERVAL: u64 = 10;

/// Gives a table made by an earlier edgemeter the properties it lacks
/// ([`TableDef::properties`]): one metadata commit, once per lake. A property
/// the table's owner set is kept. When writers race to make the commit, the
/// losers find the properties set.
async fn set_missing_properties(
    lake: &Lake,
    def: &TableDef,
    table: DeltaTable,
) -> Result<DeltaTable> {
    let missing = |table: &DeltaTable| -> Result<HashMap<String, String>> {
        let snapshot = table.snapshot()?;
        let configuration = snapshot.metadata().configuration();
        Ok(def
            .properties()
            .into_iter()
            .filter(|(key, _)| !configuration.contains_key(*key))
            .map(|(key, value)| (key.to_string(), value))
            .collect())
    };
    let properties = missing(&table)?;
    if properties.is_empty() {
        return Ok(table);
    }
    let keys: Vec<String> = properties.keys().cloned().collect();
    match table.set_tbl_properties().with_properties(properties).await {
        Ok(table) => Ok(table),
        Err(e) => {
            let table = open(lake, def, AsOf::Latest)
                .await?
                .ok_or_else(|| Error::Lake(format!("{}: not found", def.dir)))?;
            match missing(&table)?.is_empty() {
                true => Ok(table),
                false => Err(Error::Lake(format!(
                    "{}: cannot set {keys:?}: {e}",
                    def.dir
                ))),
            }
        }
    }
}

/// True for the errors that mean another writer committed this version first.
fn is_conflict(e: &DeltaTableError) -> bool {
    matches!(
        e,
        DeltaTableError::VersionAlreadyExists(_)
            | DeltaTableError::Transaction {
                source: TransactionError::MaxCommitAttempts(_)
                    | TransactionError::VersionAlreadyExists(_)
                    | TransactionError::CommitConflict(_)
            }
    )
}

/// What [`commit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Committed {
    /// The actions are in this version of the table.
    At(u64),
    /// Another writer committed since the table was read; nothing was written.
    Conflict,
}

/// The operation a commit is recorded as in the table's history.
pub(crate) fn write_operation(
    def: &TableDef,
    mode: SaveMode,
    predicate: Option<String>,
) -> DeltaOperation {
    DeltaOperation::Write {
        mode,
        partition_by: Some(def.partition_by.iter().map(|c| c.to_string()).collect()),
        predicate,
    }
}

/// Commits `actions` as the version right after the one `table` holds, or
/// reports a conflict when another writer took that version. On success the
/// table is brought up to the new version.
pub(crate) async fn commit(
    table: &mut DeltaTable,
    actions: Vec<Action>,
    operation: DeltaOperation,
    app_metadata: HashMap<String, serde_json::Value>,
) -> Result<Committed> {
    let snapshot = table.snapshot()?.clone();
    // Checkpoints as delta-rs makes them, every `delta.checkpointInterval`
    // commits ([`CHECKPOINT_INTERVAL`] on edgemeter's tables), so opening a
    // table reads one checkpoint and fewer than ten commits however long its
    // history.
    // Expired log files are not cleaned up here: that lists the whole log on
    // every commit (tens of thousands of files on a month-old lake); `maintain`
    // does it.
    let properties = CommitProperties::default()
        .with_metadata(app_metadata)
        .with_max_retries(0)
        .with_create_checkpoint(true)
        .with_cleanup_expired_logs(Some(false));
    let committed = CommitBuilder::from(properties)
        .with_actions(actions)
        .build(Some(&snapshot), table.log_store(), operation)
        .await;
    match committed {
        Ok(done) => {
            // The commit's post-commit step has already brought a copy of
            // the snapshot to the new version: taken as it is, rather than
            // reading the log again, except when the commit has just written
            // a checkpoint: the table is then read again from it. delta-rs
            // 1.1 brings a snapshot forward by adding each commit's actions
            // to the ones it holds, and a run's later commits then worked on
            // an ever longer list: a 10× ingest (about 2,000 commits over the
            // tables) took 74.8 s kept that way and 50.4 s read again every
            // tenth commit (`bench/RESULTS.md`).
            let version = done.version();
            match version % CHECKPOINT_INTERVAL {
                0 => {
                    let mut fresh = DeltaTable::new(table.log_store());
                    fresh.load_version(version).await?;
                    *table = fresh;
                }
                _ => table.state = Some(done.snapshot),
            }
            Ok(Committed::At(version))
        }
        Err(e) if is_conflict(&e) => {
            tracing::debug!(
                base_version = snapshot.version(),
                "another writer committed first; reading its commits"
            );
            table.update_incremental(None).await?;
            Ok(Committed::Conflict)
        }
        Err(e) => Err(e.into()),
    }
}

/// Brings `table` to the newest version when another commit follows the one
/// it holds. Checking for the next version's log entry is one read, where
/// delta-rs's update lists the log (the whole `_delta_log` on a local lake).
pub(crate) async fn catch_up(table: &mut DeltaTable) -> Result<()> {
    let next = table.version().map_or(0, |v| v + 1);
    if table.log_store().read_commit_entry(next).await?.is_some() {
        table.update_incremental(None).await?;
    }
    Ok(())
}

/// Commits actions that stay right whatever else was committed meanwhile
/// (appends of new files): on a conflict they are committed again on top.
pub(crate) async fn commit_append(
    table: &mut DeltaTable,
    def: &TableDef,
    actions: Vec<Action>,
    app_metadata: HashMap<String, serde_json::Value>,
) -> Result<u64> {
    for attempt in 0..MAX_ATTEMPTS {
        let operation = write_operation(def, SaveMode::Append, None);
        match commit(table, actions.clone(), operation, app_metadata.clone()).await? {
            Committed::At(version) => return Ok(version),
            Committed::Conflict => backoff(attempt).await,
        }
    }
    Err(gave_up(def.dir))
}

/// Commits `actions`, which replace files of `table` (the rollups' way):
/// true when they are committed, or when there are none; false after a
/// conflict, once the pause before `attempt`'s retry is over (the caller
/// reads the newer version and works its actions out again).
pub(crate) async fn commit_replacing(
    table: &mut DeltaTable,
    def: &TableDef,
    actions: Vec<Action>,
    attempt: u32,
) -> Result<bool> {
    if actions.is_empty() {
        return Ok(true);
    }
    let operation = write_operation(def, SaveMode::Overwrite, None);
    match commit(table, actions, operation, HashMap::new()).await? {
        Committed::At(_) => Ok(true),
        Committed::Conflict => {
            backoff(attempt).await;
            Ok(false)
        }
    }
}

/// The error of a writer that lost [`MAX_ATTEMPTS`] commits in a row to
/// other writers, on the table at `dir`.
pub(crate) fn gave_up(dir: &str) -> Error {
    Error::Lake(format!(
        "{dir}: gave up committing after {MAX_ATTEMPTS} attempts, each beaten by another writer"
    ))
}

/// How many times a writer tries to commit before giving up. Each failed
/// attempt means another writer's commit succeeded, so the lake as a whole
/// always moves on.
pub(crate) const MAX_ATTEMPTS: u32 = 1_000;

/// A short, growing, jittered pause before trying again after a conflict, so
/// that racing writers spread out.
pub(crate) async fn backoff(attempt: u32) {
    let base = 5u64 << attempt.min(6);
    let jitter = u64::from(uuid::Uuid::new_v4().as_fields().0) % base.max(1);
    tokio::time::sleep(std::time::Duration::from_millis(base + jitter)).await;
}

/// One data file of a table, as its snapshot lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DataFile {
    /// Relative to the table root.
    pub(crate) path: String,
    pub(crate) size: i64,
    pub(crate) rows: Option<usize>,
}

/// The files of a table's snapshot, by partition values (in the order of
/// `def.partition_by`).
pub(crate) fn files_by_partition(
    table: &DeltaTable,
    def: &TableDef,
) -> Result<BTreeMap<Vec<String>, Vec<DataFile>>> {
    let mut out: BTreeMap<Vec<String>, Vec<DataFile>> = BTreeMap::new();
    let snapshot = table.snapshot()?;
    for file in snapshot.log_data().iter() {
        let values = file.partition_values_map();
        let key = def
            .partition_by
            .iter()
            .map(|c| values.get(*c).cloned().flatten().unwrap_or_default())
            .collect();
        out.entry(key).or_default().push(DataFile {
            path: file.path().into_owned(),
            size: file.size(),
            rows: file.num_records(),
        });
    }
    for files in out.values_mut() {
        files.sort_by(|a, b| a.path.cmp(&b.path));
    }
    Ok(out)
}

/// The object-store location of a table's data file.
pub(crate) fn file_location(lake: &Lake, def: &TableDef, path: &str) -> object_store::path::Path {
    lake.path(&format!("{}/{path}", def.dir))
}

/// A partition's values as Delta actions carry them, by column.
fn partition_values(def: &TableDef, partition: &[String]) -> HashMap<String, Option<String>> {
    def.partition_by
        .iter()
        .zip(partition)
        .map(|(c, v)| (c.to_string(), Some(v.clone())))
        .collect()
}

/// An Add action for a file written to a partition.
pub(crate) fn add_action(
    def: &TableDef,
    partition: &[String],
    path: String,
    size: usize,
    stats: Option<String>,
) -> Action {
    let partition_values = partition_values(def, partition);
    Action::Add(Add {
        path,
        partition_values,
        size: size as i64,
        modification_time: chrono::Utc::now().timestamp_millis(),
        data_change: true,
        stats,
        ..Default::default()
    })
}

/// A Remove action for a file of a partition.
pub(crate) fn remove_action(def: &TableDef, partition: &[String], file: &DataFile) -> Action {
    let partition_values = partition_values(def, partition);
    Action::Remove(Remove {
        path: file.path.clone(),
        deletion_timestamp: Some(chrono::Utc::now().timestamp_millis()),
        data_change: true,
        extended_file_metadata: Some(true),
        partition_values: Some(partition_values),
        size: Some(file.size),
        ..Default::default()
    })
}

/// A fresh, never-reused file name for a new data file.
pub(crate) fn new_file_name(prefix: &str) -> String {
    format!("{prefix}-{}.parquet", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::REQUESTS_TABLE;

    fn interval(table: &DeltaTable) -> Option<String> {
        property(table, TableProperty::CheckpointInterval.as_ref())
    }

    fn property(table: &DeltaTable, key: &str) -> Option<String> {
        let snapshot = table.snapshot().unwrap();
        let configuration = snapshot.metadata().configuration();
        configuration.get(key).cloned()
    }

    /// An empty lake in a directory of its own.
    async fn new_lake() -> (tempfile::TempDir, Lake) {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open_or_create(dir.path().to_str().unwrap(), &Default::default())
            .await
            .unwrap();
        (dir, lake)
    }

    /// Commits one more `requests` file, `f{i}.parquet` of `partition`.
    async fn append_one(table: &mut DeltaTable, partition: &[String], i: u64) -> Committed {
        let add = add_action(&REQUESTS_TABLE, partition, format!("f{i}.parquet"), 1, None);
        let operation = write_operation(&REQUESTS_TABLE, SaveMode::Append, None);
        commit(table, vec![add], operation, HashMap::new())
            .await
            .unwrap()
    }

    /// `def`'s table as a release before the tables' properties made it:
    /// its columns and partitions, and only the `properties` given.
    async fn made_before_properties(
        lake: &Lake,
        def: &TableDef,
        properties: impl IntoIterator<Item = (TableProperty, &'static str)>,
    ) -> DeltaTable {
        let schema: StructType = def.schema().try_into_kernel().unwrap();
        let mut create = builder(lake, def)
            .unwrap()
            .build()
            .unwrap()
            .create()
            .with_columns(schema.fields().cloned())
            .with_partition_columns(def.partition_by.iter().copied());
        for (key, value) in properties {
            create = create.with_configuration_property(key, Some(value));
        }
        create.await.unwrap()
    }

    /// A table made without the interval (as an earlier edgemeter made
    /// them) gets it once; from then on the log is checkpointed every
    /// [`CHECKPOINT_INTERVAL`] commits, and a fresh reader of the table
    /// finds every file committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tables_are_checkpointed_every_ten_commits() {
        let (dir, lake) = new_lake().await;
        let old = made_before_properties(&lake, &REQUESTS_TABLE, []).await;
        assert_eq!((old.version(), interval(&old)), (Some(0), None));

        let mut table = open_or_create(&lake, &REQUESTS_TABLE).await.unwrap();
        assert_eq!(table.version(), Some(1));
        assert_eq!(interval(&table), Some("10".to_string()));
        assert_eq!(
            property(&table, TableProperty::DataSkippingStatsColumns.as_ref()).as_deref(),
            Some("timestamp,api_key_id")
        );
        let again = open_or_create(&lake, &REQUESTS_TABLE).await.unwrap();
        assert_eq!(again.version(), Some(1), "set once");

        let partition = vec!["2025-10-05".to_string(), "13".to_string()];
        for i in 0..25 {
            let committed = append_one(&mut table, &partition, i).await;
            assert_eq!(committed, Committed::At(i + 2));
        }
        let log = dir.path().join("requests/_delta_log");
        let mut checkpoints: Vec<String> = std::fs::read_dir(&log)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".checkpoint.parquet"))
            .collect();
        checkpoints.sort();
        assert_eq!(
            checkpoints,
            [9, 19].map(|v| format!("{v:020}.checkpoint.parquet"))
        );
        let reader = open(&lake, &REQUESTS_TABLE, AsOf::Latest)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reader.version(), Some(26));
        let files = files_by_partition(&reader, &REQUESTS_TABLE).unwrap();
        assert_eq!(files[&partition].len(), 25);
    }

    /// A table exists while its log has an entry: found from
    /// `_last_checkpoint` once there is one, from a listing before.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_table_is_found_by_its_checkpoint_or_its_first_commit() {
        let (dir, lake) = new_lake().await;
        assert!(!has_log(&lake, &REQUESTS_TABLE).await.unwrap());
        let data = dir.path().join("requests/dt=2025-10-05/hour=13");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("part-0.parquet"), b"PAR1").unwrap();
        assert!(
            !has_log(&lake, &REQUESTS_TABLE).await.unwrap(),
            "data files only"
        );
        std::fs::remove_dir_all(dir.path().join("requests")).unwrap();

        let mut table = open_or_create(&lake, &REQUESTS_TABLE).await.unwrap();
        let log = dir.path().join("requests/_delta_log");
        assert!(!log.join("_last_checkpoint").exists());
        assert!(
            has_log(&lake, &REQUESTS_TABLE).await.unwrap(),
            "no checkpoint yet"
        );
        let partition = vec!["2025-10-05".to_string(), "13".to_string()];
        for i in 0..CHECKPOINT_INTERVAL {
            append_one(&mut table, &partition, i).await;
        }
        assert!(log.join("_last_checkpoint").exists());
        // The commits a checkpoint covers may be cleaned up: the checkpoint
        // alone still says the table exists.
        for entry in std::fs::read_dir(&log).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                std::fs::remove_file(path).unwrap();
            }
        }
        assert!(has_log(&lake, &REQUESTS_TABLE).await.unwrap(), "checkpoint");
        std::fs::remove_file(log.join("_last_checkpoint")).unwrap();
        assert!(has_log(&lake, &REQUESTS_TABLE).await.unwrap(), "listed");
    }

    /// The log's statistics cover the columns edgemeter writes them for and
    /// no others, on new tables and on tables made before; an owner's choice
    /// of columns is kept. What readers parse from the log is shaped by it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn statistics_cover_the_columns_edgemeter_fills() {
        use crate::lake::ingested::INGESTED_TABLE;
        use crate::lake::rollup::ROLLUP_TABLE;
        let (dir, lake) = new_lake().await;
        let requests = open_or_create(&lake, &REQUESTS_TABLE).await.unwrap();
        assert_eq!(requests.version(), Some(0), "made with its properties");
        let store = requests.log_store();
        assert!(
            store
                .clone()
                .as_any()
                .is::<crate::lake::log_store::FewReadsLogStore>(),
            "local tables read their log through {}",
            store.name()
        );
        assert_eq!(
            property(&requests, TableProperty::DataSkippingStatsColumns.as_ref()).as_deref(),
            Some("timestamp,api_key_id")
        );
        for (def, columns) in [(&ROLLUP_TABLE, "api_key_id"), (&INGESTED_TABLE, "source")] {
            let table = open_or_create(&lake, def).await.unwrap();
            assert_eq!(
                property(&table, TableProperty::DataSkippingStatsColumns.as_ref()).as_deref(),
                Some(columns),
                "{}",
                def.dir
            );
        }
        // A table whose owner chose the columns keeps them.
        std::fs::remove_dir_all(dir.path().join(ROLLUP_TABLE.dir)).unwrap();
        let chosen = [(
            TableProperty::DataSkippingStatsColumns,
            "api_key_id,sc_status",
        )];
        made_before_properties(&lake, &ROLLUP_TABLE, chosen).await;
        let table = open_or_create(&lake, &ROLLUP_TABLE).await.unwrap();
        assert_eq!(table.version(), Some(1), "the interval was missing");
        assert_eq!(interval(&table), Some("10".to_string()));
        assert_eq!(
            property(&table, TableProperty::DataSkippingStatsColumns.as_ref()).as_deref(),
            Some("api_key_id,sc_status")
        );
    }

    /// Writers of a release that sets the properties, opening a table made
    /// before it all at once: each gets a table with the properties, and the
    /// log holds them from one version on, whoever's commit won.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_racing_to_upgrade_a_table_all_find_its_properties() {
        let (_dir, lake) = new_lake().await;
        made_before_properties(&lake, &REQUESTS_TABLE, []).await;
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let lake = lake.clone();
                tokio::spawn(async move { open_or_create(&lake, &REQUESTS_TABLE).await })
            })
            .collect();
        for writer in writers {
            let table = writer.await.unwrap().unwrap();
            assert_eq!(interval(&table), Some("10".to_string()));
            assert_eq!(
                property(&table, TableProperty::DataSkippingStatsColumns.as_ref()).as_deref(),
                Some("timestamp,api_key_id")
            );
        }
        let newest = open(&lake, &REQUESTS_TABLE, AsOf::Latest)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            property(&newest, TableProperty::DataSkippingStatsColumns.as_ref()).as_deref(),
            Some("timestamp,api_key_id")
        );
    }
}
