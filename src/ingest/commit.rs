//! Committing a batch to the lake: its parse results are tallied into the
//! run's summary and its rows gathered by hour; the hours are merged with
//! their files and committed to `requests` in one Delta commit, then their
//! rollups, then the batch's objects to the ingested record (after which
//! later runs skip them). See the design section of the README for why this
//! order keeps every request counted exactly once.

use super::decode::{Failure, ObjectFailure, ObjectOutcome};
use super::summary::{BadLineSample, FieldErrorSample, IngestSummary, MAX_SAMPLES, MostlyKeyless};
use super::{IngestOptions, OBJECTS_COMMITTED};
use crate::error::{Error, Result};
use crate::lake::delta::{self, Committed, TableDef};
use crate::lake::ingested::{self, INGESTED_TABLE, IngestedObject};
use crate::lake::layout;
use crate::lake::partition::{self, HourMerge, MergeOutcome, merge_hour};
use crate::lake::rollup::{self, KEYS_TABLE, ROLLUP_TABLE};
use crate::lake::{Lake, REQUESTS_TABLE};
use crate::time::Hour;
use datafusion::arrow::array::RecordBatch;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The lake's tables as one run writes them, each handle at the version it
/// last read or committed. A batch merges against a copy, and holds the
/// lock while it commits, so that the run's batches commit to a table one
/// at a time, each on top of the last.
pub(super) struct Tables {
    requests: tokio::sync::Mutex<deltalake::DeltaTable>,
    rollups: tokio::sync::Mutex<deltalake::DeltaTable>,
    keys: tokio::sync::Mutex<deltalake::DeltaTable>,
    ingested: tokio::sync::Mutex<deltalake::DeltaTable>,
}

impl Tables {
    /// Opens (creating, on a new lake) the four tables, before any data
    /// file is written, so that no reader ever finds files without a log.
    pub(super) async fn open(lake: &Lake) -> Result<Self> {
        // `requests` first: a lake of the layout before Delta fails there,
        // before any other table is made in it. The others side by side:
        // each open reads its own log (a few ms each).
        let requests = delta::open_or_create(lake, &REQUESTS_TABLE).await?;
        let open = |def: TableDef| {
            let lake = lake.clone();
            tokio::spawn(async move { delta::open_or_create(&lake, &def).await })
        };
        let opening = [ROLLUP_TABLE, KEYS_TABLE, INGESTED_TABLE].map(open);
        let mut opened = Vec::with_capacity(opening.len());
        for task in opening {
            opened.push(tokio::sync::Mutex::new(task.await??));
        }
        let [rollups, keys, ingested]: [_; 3] = opened
            .try_into()
            .map_err(|_| Error::Lake("a table was not opened".to_string()))?;
        Ok(Self {
            requests: requests.into(),
            rollups,
            keys,
            ingested,
        })
    }

    /// A copy of a table's handle at the newest version this run knows of:
    /// its own last commit (or the version it opened). Not read again from
    /// the log first: another writer's commit since then makes this run's
    /// commit conflict, and the commit reads the newer versions then.
    pub(super) async fn newest(
        table: &tokio::sync::Mutex<deltalake::DeltaTable>,
    ) -> Result<deltalake::DeltaTable> {
        Ok(table.lock().await.clone())
    }

    /// Keeps a handle that has moved on, so the next batch reads less log.
    pub(super) async fn keep(
        table: &tokio::sync::Mutex<deltalake::DeltaTable>,
        newer: deltalake::DeltaTable,
    ) {
        let mut held = table.lock().await;
        if newer.version() > held.version() {
            *held = newer;
        }
    }
}

/// Writes the rollups of hours where one is missing (a writer stopped
/// between a batch's commits), before the run commits anything; how many
/// hours.
pub(super) async fn repair_rollups(lake: &Lake, tables: &Tables) -> Result<u64> {
    let mut requests = Tables::newest(&tables.requests).await?;
    let mut rollups = Tables::newest(&tables.rollups).await?;
    let mut keys = Tables::newest(&tables.keys).await?;
    let rebuilt = rollup::repair(lake, &mut requests, [&mut rollups, &mut keys]).await?;
    Tables::keep(&tables.requests, requests).await;
    Tables::keep(&tables.rollups, rollups).await;
    Tables::keep(&tables.keys, keys).await;
    if rebuilt > 0 {
        tracing::info!(
            hours = rebuilt,
            "rebuilt the usage_hourly rollup of hours whose rollup was missing"
        );
    }
    Ok(rebuilt)
}

/// Adds a batch's parse results to the summary, and gathers its rows by hour
/// and the objects that gave none.
pub(super) fn tally_batch(
    run_id: &str,
    outcomes: Vec<ObjectOutcome>,
    options: &IngestOptions,
    summary: &mut IngestSummary,
) -> TalliedBatch {
    let mut by_hour: BTreeMap<Hour, Vec<RecordBatch>> = BTreeMap::new();
    let mut objects = Vec::new();
    let mut first_reads = Vec::new();
    let mut waits = Vec::new();
    let mut signals = Vec::new();
    let mut failures = Vec::new();
    let mut finished = 0;
    let now_ms = options.clock.now().timestamp_millis();
    for ObjectOutcome {
        object,
        result,
        part,
    } in outcomes
    {
        let last = part.as_ref().is_none_or(|p| p.last);
        if last {
            summary.bytes_read += object.size;
            finished += 1;
        }
        if let Some(part) = &part {
            if part.index > 0 {
                waits.push((part.committed.clone(), part.index));
            }
            if !part.last {
                signals.push(part.committed.clone());
            }
        }
        match result {
            Ok((hours, stats)) => {
                for (hour, rows) in hours {
                    by_hour.entry(hour).or_default().extend(rows);
                }
                if part.as_ref().is_none_or(|p| p.index == 0) {
                    first_reads.push(object.uri.clone());
                }
                summary.bytes_decompressed += stats.bytes;
                summary.lines += stats.lines;
                summary.requests += stats.requests;
                summary.bad_lines += stats.bad_lines;
                summary.field_errors += stats.field_errors;
                for (key, n) in &stats.conflicting_keys {
                    *summary.conflicting_keys.entry(key.clone()).or_default() += n;
                }
                summary.keyless_requests += stats.keyless;
                if stats.bad_lines > 0 {
                    *summary
                        .bad_lines_by_object
                        .entry(object.uri.clone())
                        .or_default() += stats.bad_lines;
                    tracing::warn!(object = %object.uri, bad_lines = stats.bad_lines, "object has malformed lines");
                }
                for bad in &stats.bad_samples {
                    if summary.bad_line_samples.len() < MAX_SAMPLES {
                        summary.bad_line_samples.push(BadLineSample {
                            object: object.uri.clone(),
                            line: bad.line,
                            reason: bad.reason.clone(),
                        });
                    }
                }
                for damaged in &stats.field_error_samples {
                    if summary.field_error_samples.len() < MAX_SAMPLES {
                        summary.field_error_samples.push(FieldErrorSample {
                            object: object.uri.clone(),
                            line: damaged.line,
                            field: damaged.field.clone(),
                            reason: damaged.reason.clone(),
                        });
                    }
                }
                if stats.field_errors > 0 {
                    tracing::warn!(object = %object.uri, field_errors = stats.field_errors, "object has damaged values, stored as null");
                }
                if !last {
                    continue;
                }
                // The whole object's counts, over all its parts.
                let mut counts = part.map(|p| p.earlier).unwrap_or_default();
                counts.add(&stats);
                summary.objects_ingested += 1;
                if counts.requests > 0
                    && counts.keyless as f64 > options.max_keyless_share * counts.requests as f64
                {
                    tracing::warn!(object = %object.uri, requests = counts.requests, keyless = counts.keyless, "most requests of the object have no API key: check --key-from / --key-param");
                    summary.mostly_keyless.push(MostlyKeyless {
                        object: object.uri.clone(),
                        requests: counts.requests,
                        keyless: counts.keyless,
                    });
                }
                summary.ingested.insert(object.uri.clone());
                objects.push(IngestedObject {
                    source: object.uri,
                    etag: object.etag,
                    size: object.size,
                    lines: counts.lines,
                    rows: counts.requests,
                    bad_lines: counts.bad_lines,
                    run_id: run_id.to_string(),
                    ingested_at_ms: now_ms,
                    requests_version: 0,
                });
            }
            Err(Failure { reason, not_a_log }) => {
                match not_a_log {
                    true => summary.note_not_a_log(&object, &reason),
                    false => summary.note_unreadable(&object.uri, &reason),
                }
                failures.push(ObjectFailure {
                    object: object.uri,
                    etag: object.etag,
                    reason,
                    not_a_log,
                });
            }
        }
    }
    TalliedBatch {
        finished,
        failures,
        by_hour,
        objects,
        first_reads,
        waits,
        signals,
        replacing: Arc::default(),
    }
}

/// A parsed batch, tallied into the run's summary and ready to commit.
pub(super) struct TalliedBatch {
    /// Objects the batch ends (whole objects and last parts), read or not.
    pub(super) finished: u64,
    /// Objects that gave no rows.
    pub(super) failures: Vec<ObjectFailure>,
    /// New rows by hour (and, when reingesting, every hour that holds rows
    /// of the objects read again, whether or not they have new rows there).
    by_hour: BTreeMap<Hour, Vec<RecordBatch>>,
    /// The batch's readable objects, recorded as ingested by the commit
    /// (an object read in parts, with its last part).
    objects: Vec<IngestedObject>,
    /// Objects whose rows the batch starts (whole objects and first parts).
    first_reads: Vec<String>,
    /// Parts whose object's earlier parts must be committed first: the
    /// earlier parts' semaphore and how many there are.
    waits: Vec<(Arc<Semaphore>, u32)>,
    /// Parts whose commit later parts wait for.
    pub(super) signals: Vec<Arc<Semaphore>>,
    /// Objects read again whose earlier rows the commit takes out.
    replacing: Arc<std::collections::HashSet<String>>,
}

impl TalliedBatch {
    /// The objects the batch's commit records as ingested.
    pub(super) fn recorded(&self) -> Vec<String> {
        self.objects.iter().map(|o| o.source.clone()).collect()
    }

    /// Makes the commit take out the earlier rows of the batch's objects,
    /// in every hour that holds any.
    pub(super) fn replace_earlier_rows(&mut self, earlier_hours: &HashMap<String, BTreeSet<Hour>>) {
        // Not for later parts: the first part took those rows out, and the
        // earlier parts' rows are the new ones.
        let objects: std::collections::HashSet<String> = self.first_reads.iter().cloned().collect();
        for object in &objects {
            for hour in earlier_hours.get(object).into_iter().flatten() {
                self.by_hour.entry(*hour).or_default();
            }
        }
        self.replacing = Arc::new(objects);
    }
}

/// What the batches of one run share while merging: one lock per hour
/// partition, so that two batches committing at once never merge into the
/// same hour together (only to save work: were they to, the second commit
/// would conflict and merge again, as it does against other runs), and the
/// run's [`MERGES_AT_ONCE`] merge slots.
pub(super) struct RunMerging {
    locks: std::sync::Mutex<HashMap<Hour, Arc<tokio::sync::Mutex<()>>>>,
    slots: Semaphore,
}

/// Hours merged at once in a run, across its batches: as many as there are
/// commits in flight, so that a batch of many small hours (late logs of a
/// day) merges two at a time, both cores busy, while a run's memory still
/// holds at most two hours being merged.
const MERGES_AT_ONCE: usize = super::pipeline::COMMITS_IN_FLIGHT;

impl Default for RunMerging {
    fn default() -> Self {
        Self {
            locks: Default::default(),
            slots: Semaphore::new(MERGES_AT_ONCE),
        }
    }
}

impl RunMerging {
    fn of(&self, hour: Hour) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(hour).or_default().clone()
    }
}

/// Merges a batch's rows into their hours and commits them all to `requests`
/// in one Delta commit, then their rollups, then records its objects as
/// ingested (after which later runs skip them).
///
/// The merge is made against the hours' files at the version the commit goes
/// on top of. When another writer commits first, the hours it changed are
/// merged again at the new version (the files of the superseded merge are
/// discarded) and the commit is tried again; hours it did not touch keep
/// their merge.
pub(super) async fn commit_batch(
    lake: &Lake,
    tables: &Tables,
    run_id: &str,
    mut batch: TalliedBatch,
    merging: &RunMerging,
    limits: partition::FileLimits,
) -> Result<Vec<MergeOutcome>> {
    for (committed, earlier) in &batch.waits {
        if committed.acquire_many(*earlier).await.is_err() {
            return Err(crate::error::Error::Lake(
                "an earlier part of an object read in parts was not committed".into(),
            ));
        }
    }
    // In ascending order, so two batches never wait on each other in a cycle.
    let locks: Vec<_> = batch.by_hour.keys().map(|&hour| merging.of(hour)).collect();
    let mut held = Vec::with_capacity(locks.len());
    for lock in &locks {
        held.push(lock.lock().await);
    }
    let mut requests = Tables::newest(&tables.requests).await?;
    let mut merges: BTreeMap<Hour, HourMerge> = BTreeMap::new();
    let mut version = None;
    for attempt in 0..delta::MAX_ATTEMPTS {
        let files = delta::files_by_partition(&requests, &REQUESTS_TABLE)?;
        let merged = remerge_changed(
            lake,
            &batch.by_hour,
            &batch.replacing,
            &files,
            &mut merges,
            limits,
            &merging.slots,
        )
        .await;
        if let Err(e) = merged {
            discard_all(lake, &merges).await;
            return Err(e);
        }
        let actions: Vec<_> = merges.values().flat_map(|m| m.actions.clone()).collect();
        if actions.is_empty() {
            version = requests.version();
            break;
        }
        let partitions: Vec<String> = merges
            .values()
            .filter(|m| !m.actions.is_empty())
            .map(|m| {
                let (dt, hour) = layout::partition_values(m.hour);
                format!("(dt = '{dt}' AND hour = '{hour}')")
            })
            .collect();
        let operation = delta::write_operation(
            &REQUESTS_TABLE,
            deltalake::protocol::SaveMode::Overwrite,
            Some(partitions.join(" OR ")),
        );
        let metadata = HashMap::from([("edgemeter.run_id".to_string(), run_id.into())]);
        // The run's other batches commit to the table one at a time, each on
        // top of the version the last one made: they never conflict with
        // each other (their hours differ), only with other writers.
        let mut newest = tables.requests.lock().await;
        if newest.version() > requests.version() {
            // A batch of this run committed since this merge began: its
            // hours are not this batch's, so the merge is checked against
            // the newer files (and kept) before committing on top of them.
            requests = newest.clone();
            continue;
        }
        let committed = delta::commit(&mut requests, actions, operation, metadata).await;
        if committed.is_ok() {
            *newest = requests.clone();
        }
        drop(newest);
        match committed {
            Ok(Committed::At(v)) => {
                version = Some(v);
                break;
            }
            Ok(Committed::Conflict) => delta::backoff(attempt).await,
            Err(e) => {
                discard_all(lake, &merges).await;
                return Err(e);
            }
        }
    }
    let Some(version) = version else {
        discard_all(lake, &merges).await;
        return Err(delta::gave_up(REQUESTS_TABLE.dir));
    };
    drop(held);
    let hours: Vec<_> = merges.values().map(|m| m.hour).collect();
    let files = merges
        .values_mut()
        .flat_map(|m| std::mem::take(&mut m.rollups))
        .collect();
    // The rollups and the record are small: each is committed with the
    // run's other batches waiting, so that they never conflict either.
    rollup::commit(
        lake,
        &mut requests,
        [
            &mut *tables.rollups.lock().await,
            &mut *tables.keys.lock().await,
        ],
        &hours,
        files,
    )
    .await?;
    for object in &mut batch.objects {
        object.requests_version = version;
    }
    ingested::record(
        lake,
        &mut *tables.ingested.lock().await,
        run_id,
        &batch.objects,
    )
    .await?;
    OBJECTS_COMMITTED.fetch_add(
        batch.objects.len() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    Tables::keep(&tables.requests, requests).await;
    Ok(merges.into_values().map(|m| m.outcome).collect())
}

/// Merges each hour of the batch whose files are not the ones its last merge
/// read (all of them, the first time), as many at once as `merging` allows.
/// Every merge that succeeded is in `merges` when one failed, so that the
/// caller discards its files.
async fn remerge_changed(
    lake: &Lake,
    by_hour: &BTreeMap<Hour, Vec<RecordBatch>>,
    replacing: &Arc<std::collections::HashSet<String>>,
    files: &BTreeMap<Vec<String>, Vec<delta::DataFile>>,
    merges: &mut BTreeMap<Hour, HourMerge>,
    limits: partition::FileLimits,
    merging: &Semaphore,
) -> Result<()> {
    use futures::StreamExt;
    let mut changed = Vec::new();
    for (&hour, rows) in by_hour {
        let current = files
            .get(&layout::partition_key(hour))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if merges.get(&hour).is_some_and(|m| m.read == current) {
            continue;
        }
        if let Some(stale) = merges.remove(&hour) {
            partition::discard(lake, &stale.written).await;
        }
        changed.push((hour, rows, current));
    }
    let mut merged = futures::stream::iter(changed)
        .map(|(hour, rows, current)| async move {
            let Ok(_slot) = merging.acquire().await else {
                unreachable!("the merge slots are never closed")
            };
            merge_hour(
                lake,
                &REQUESTS_TABLE,
                hour,
                current,
                rows.clone(),
                replacing.clone(),
                limits,
            )
            .await
        })
        .buffer_unordered(MERGES_AT_ONCE);
    let mut failed = None;
    while let Some(merge) = merged.next().await {
        match merge {
            Ok(merge) => {
                merges.insert(merge.hour, merge);
            }
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

async fn discard_all(lake: &Lake, merges: &BTreeMap<Hour, HourMerge>) {
    for merge in merges.values() {
        partition::discard(lake, &merge.written).await;
    }
}
