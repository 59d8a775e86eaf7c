//! The two stages of a run, overlapped: batches of objects are fetched and
//! parsed while up to [`COMMITS_IN_FLIGHT`] earlier batches are merged and
//! committed. Where the batches come from (a listing, a queue of
//! notifications) is the caller's; a [`BatchObserver`] hears which objects
//! each batch failed on and which it recorded as ingested.

use super::IngestOptions;
use super::commit::{RunMerging, Tables, commit_batch, tally_batch};
use super::decode::{ObjectFailure, ObjectOutcome, PartSink};
use super::fetch;
use super::summary::IngestSummary;
use crate::error::Result;
use crate::key::KeyHasher;
use crate::lake::Lake;
use crate::source::{LogObject, Source};
use crate::time::Hour;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use indicatif::ProgressBar;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Hears what became of each batch's objects, as the run goes.
pub(super) trait BatchObserver: Sync {
    /// Objects that gave no rows, each with why and whether it is not a
    /// log at all; known once the batch is parsed.
    fn failed(&self, _objects: &[ObjectFailure]) {}
    /// Objects whose rows are committed and that the ingested record now
    /// holds.
    fn recorded(&self, _objects: &[String]) {}
}

/// A run's observer that listens to nothing.
pub(super) struct Unobserved;

impl BatchObserver for Unobserved {}

/// What every batch of one run shares.
pub(super) struct Pipeline<'a> {
    pub(super) options: &'a IngestOptions,
    pub(super) lake: &'a Lake,
    pub(super) source: &'a Source,
    pub(super) run_id: &'a str,
    pub(super) tables: &'a Tables,
    pub(super) hasher: &'a KeyHasher,
    /// When reingesting: the hours that hold rows of each object now.
    pub(super) earlier_hours: &'a HashMap<String, BTreeSet<Hour>>,
    pub(super) bar: &'a ProgressBar,
}

impl Pipeline<'_> {
    /// Fetches, parses and commits every batch `batches` gives, in order of
    /// arrival, into `summary`; the first failed commit ends the run (after
    /// the other commit in flight) and is returned.
    pub(super) async fn run(
        &self,
        batches: impl futures::Stream<Item = Vec<LogObject>>,
        summary: &mut IngestSummary,
        observer: &dyn BatchObserver,
    ) -> Result<()> {
        let Pipeline {
            options,
            lake,
            source,
            run_id,
            tables,
            hasher,
            earlier_hours,
            bar,
        } = *self;
        // Two stages overlap: while up to COMMITS_IN_FLIGHT batches are merged
        // and committed, the next batches are fetched and parsed. A batch takes
        // one of `batches_in_memory` permits before it is fetched and gives it back
        // once it is committed, so at most that many batches are in memory at
        // once, and both stages together keep every core busy even when a batch is
        // a single object (which one core parses). Commits may finish out of order:
        // each records only its own objects, after its own merges.
        let batches_in_memory = match options.low_memory {
            true => LOW_MEMORY_BATCHES,
            false => BATCHES_IN_MEMORY,
        };
        let in_memory = Arc::new(Semaphore::new(batches_in_memory));
        let (parsed_tx, parsed_rx) = tokio::sync::mpsc::channel::<(
            Vec<ObjectOutcome>,
            OwnedSemaphorePermit,
        )>(batches_in_memory);
        let produce = async {
            let mut parsed = Box::pin(
                batches
                    .map(|batch| {
                        let (in_memory, hasher, tx) = (in_memory.clone(), hasher, &parsed_tx);
                        async move {
                            let permit = match in_memory.clone().acquire_owned().await {
                                Ok(permit) => permit,
                                Err(_) => unreachable!("the batch semaphore is never closed"),
                            };
                            if tx.is_closed() {
                                return (Vec::new(), permit); // the committing stage stopped on an error
                            }
                            let parts = PartSink {
                                in_memory: &in_memory,
                                tx,
                            };
                            let outcomes: Vec<ObjectOutcome> = futures::stream::iter(batch)
                                .map(|object| {
                                    fetch::fetch_and_decode(
                                        source,
                                        object,
                                        options,
                                        hasher.clone(),
                                        parts,
                                    )
                                })
                                .buffered(options.concurrency.max(1))
                                .collect()
                                .await;
                            (outcomes, permit)
                        }
                    })
                    .buffered(batches_in_memory - 1),
            );
            while let Some(batch) = parsed.next().await {
                if parsed_tx.send(batch).await.is_err() {
                    break; // the committing stage stopped on an error
                }
            }
            drop(parsed);
            drop(parsed_tx);
        };
        let commit = async {
            // Owned here, so that an error drops it and stops the producer.
            let mut parsed_rx = parsed_rx;
            let merging = RunMerging::default();
            let mut in_flight = FuturesUnordered::new();
            let mut failed = None;
            let mut receiving = true;
            // Until the producer is done (or a commit failed) and every commit in
            // flight has finished.
            while !in_flight.is_empty() || (receiving && failed.is_none()) {
                tokio::select! {
                    received = parsed_rx.recv(), if receiving && failed.is_none() && in_flight.len() < COMMITS_IN_FLIGHT => {
                        let Some((outcomes, permit)) = received else {
                            receiving = false;
                            continue;
                        };
                        let mut batch = tally_batch(run_id, outcomes, options, summary);
                        if !batch.failures.is_empty() {
                            observer.failed(&batch.failures);
                        }
                        if options.reingest_until.is_some() {
                            batch.replace_earlier_rows(earlier_hours);
                        }
                        let (count, signals) = (batch.finished, batch.signals.clone());
                        let recorded = batch.recorded();
                        let merging = &merging;
                        in_flight.push(async move {
                            let merged = commit_batch(lake, tables, run_id, batch, merging, options.file_limits).await;
                            (merged, permit, count, signals, recorded)
                        });
                    }
                    Some((merged, permit, count, signals, recorded)) = in_flight.next() => {
                        drop(permit);
                        // The later parts of an object read in parts go on (or,
                        // when this part failed, fail too).
                        for committed in &signals {
                            match merged.is_ok() {
                                true => committed.add_permits(1),
                                false => committed.close(),
                            }
                        }
                        let committed = match merged {
                            Ok(merges) => {
                                for merge in merges {
                                    summary.rows_replaced += merge.rows_replaced;
                                    summary.rows_written += merge.rows_added;
                                    summary.duplicates += merge.duplicates;
                                    summary.partitions_touched.insert(merge.partition);
                                }
                                bar.inc(count);
                                if !recorded.is_empty() {
                                    observer.recorded(&recorded);
                                }
                                Ok(())
                            }
                            Err(e) => Err(e),
                        };
                        // The first error ends the run once the other commit in
                        // flight has finished (so that nothing is left writing
                        // when the run exits); the producer stops at once.
                        if let Err(e) = committed {
                            failed.get_or_insert(e);
                            parsed_rx.close();
                        }
                    }
                }
            }
            match failed {
                Some(e) => Err(e),
                None => Ok::<_, crate::error::Error>(()),
            }
        };
        let ((), committed) = tokio::join!(produce, commit);
        committed
    }
}

/// Batches in memory at once, from fetch to commit. Measured on the benchmark
/// (2 cores, one object per batch), three kept both cores busy from the first
/// batch on, where two left one core idle whenever one stage waited for the
/// other; four were no faster.
const BATCHES_IN_MEMORY: usize = 3;

/// Batches in memory at once with `--low-memory`: a batch fewer, so the
/// parse stage waits for each commit (3% more time on the benchmark's set,
/// about 17 MiB less peak RSS on its ten-times set).
const LOW_MEMORY_BATCHES: usize = 2;

/// Batches committed at once. Merging is most of a commit's work (over half of
/// the CPU time of an ingest), so with one commit at a time the commits were
/// the longest chain in a run, and the parse stage waited on them with a core
/// idle. Two commits merge side by side (see `bench/RESULTS.md`);
/// [`RunMerging`] keeps them out of the same hour.
pub(super) const COMMITS_IN_FLIGHT: usize = 2;
