//! A run of an `sqs://` source: the objects that S3 event notifications on
//! an SQS queue name, read through the same batches and commits as a
//! listing's, each message deleted only once every object it names is
//! recorded as ingested.
//!
//! Four tasks share the run. The receiver long-polls the queue, reads each
//! message's notification, looks up the objects it meets for the first time
//! (the ingested record, and S3 when a notification lacks size or ETag) and
//! hands the rest to the pipeline in batches; it stops once a receive finds
//! nothing while the run holds no message (or after `--max-messages`). The
//! pipeline fetches, parses and commits. The keeper extends the visibility
//! of every message held, before it runs out, so no other consumer gets it
//! meanwhile. The acker deletes the messages the [`Ledger`] is done with,
//! and sends those whose objects failed to the dead-letter queue (their
//! objects first entered in the retry record), or leaves them to the queue's
//! redrive policy when there is none.
//!
//! Messages are at least once, in any order: an object named twice is read
//! once per run, and one the ingested record holds unchanged is not read
//! again; a message redelivered after a crash names objects that are either
//! recorded (it is deleted) or not (they are read again, and the merge's
//! de-duplication by request id makes any rows already committed a no-op).

mod ledger;

use super::decode::ObjectFailure;
use super::pipeline::{BatchObserver, Pipeline};
use super::plan::Retry;
use super::summary::IngestSummary;
use super::{Finish, IngestOptions};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::lake::ingested;
use crate::source::notification::{self, Notice};
use crate::source::s3::S3Objects;
use crate::source::sqs::{MAX_BATCH, Queue, QueueUrl};
use crate::source::{LogObject, Source};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use ledger::{Action, Arrival, Ledger, Lookup};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Ingests the objects the notifications on `queue` name.
pub(super) async fn ingest_queue(
    options: &IngestOptions,
    lake: &Lake,
    queue_url: &QueueUrl,
    run_id: String,
    started: Instant,
) -> Result<IngestSummary> {
    let (tables, rollups_rebuilt, hasher) = super::prepare(lake).await?;
    let now = options.clock.now();
    let source = Source::Notified(S3Objects::new(&options.s3).await);
    let queue = Queue::connect(queue_url, &options.s3).await;
    let dead_letter = match &options.queue.dead_letter_queue {
        Some(url) => {
            let url = QueueUrl::parse(url)
                .map_err(|reason| Error::Config(format!("--dead-letter-queue {url}: {reason}")))?;
            Some(Queue::connect(&url, &options.s3).await)
        }
        None => None,
    };
    // A queue whose timeout is 0 hides nothing; extensions still do.
    let timeout = queue
        .visibility_timeout()
        .await?
        .max(Duration::from_secs(1));
    let mut retry = Retry::load(lake, &source, &options.source, &|_| true, &[], Vec::new()).await?;
    let refetch = retry.take_refetch();
    let mut summary = IngestSummary {
        run_id: run_id.clone(),
        source: options.source.clone(),
        started_at: now.to_rfc3339_opts(SecondsFormat::Millis, true),
        listing: "queue".into(),
        objects_retried: refetch.len() as u64,
        rollups_rebuilt,
        ..Default::default()
    };
    for (object, reason) in &retry.failed {
        summary.note_unreadable(object, reason);
    }
    let mut ledger = Ledger::new(queue.url(), dead_letter.is_some());
    ledger.expect(&refetch);
    let ledger = Mutex::new(ledger);
    let bar = super::progress_bar(options.progress, refetch.len() as u64);
    let run = QueueRun {
        options,
        lake,
        source: &source,
        queue: &queue,
        dead_letter: dead_letter.as_ref(),
        retry: &retry,
        ledger: &ledger,
        timeout,
        now,
        bar: &bar,
    };
    let pipeline = Pipeline {
        options,
        lake,
        source: &source,
        run_id: &run_id,
        tables: &tables,
        hasher: &hasher,
        earlier_hours: &HashMap::new(),
        bar: &bar,
    };

    // The receiver hands batches on one at a time: it receives more only as
    // the pipeline takes them, so the messages held stay few.
    let (batch_tx, batch_rx) = mpsc::channel::<Vec<LogObject>>(1);
    let batches = futures::stream::unfold(batch_rx, |mut rx| async move {
        rx.recv().await.map(|batch| (batch, rx))
    });
    // Unbounded, but never longer than the messages held.
    let (action_tx, action_rx) = mpsc::unbounded_channel::<Action>();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = AtomicBool::new(false);
    let observer = Observer {
        ledger: &ledger,
        actions: action_tx.clone(),
    };
    let work = async {
        let receiving = run.receive(batch_tx, action_tx, refetch, &stopped);
        let piping = async {
            let piped = pipeline.run(batches, &mut summary, &observer).await;
            stopped.store(true, Ordering::Relaxed);
            piped
        };
        let results = tokio::join!(receiving, piping);
        // Every sender gone: the acker finishes what is queued and ends.
        drop(observer);
        results
    };
    let main = async {
        let results = tokio::join!(run.ack(action_rx), work);
        let _ = stop_tx.send(true);
        results
    };
    let ((acked, (received, piped)), extensions) = tokio::join!(main, run.keep_hidden(stop_rx));
    bar.finish_and_clear();
    piped?;
    received?;

    let ledger = ledger.into_inner().unwrap_or_else(|e| e.into_inner());
    for failure in &ledger.failed_early {
        summary.note_unreadable(&failure.object, &failure.reason);
    }
    let mut queue_summary = ledger.summary;
    queue_summary.messages_deleted = acked.deleted;
    queue_summary.messages_dead_lettered = acked.dead_lettered;
    queue_summary.messages_left += acked.left;
    queue_summary.visibility_extensions = extensions;
    summary.objects_listed = queue_summary.notifications - queue_summary.repeated_notifications;
    summary.objects_skipped = ledger.already_recorded.len() as u64;
    summary.queue = Some(queue_summary);
    let finish = Finish {
        retry: &retry,
        already_ingested: &ledger.already_recorded,
        now,
        started,
        save_checkpoint: false,
    };
    finish.run(options, lake, summary).await
}

/// What the tasks of one queue run share.
struct QueueRun<'a> {
    options: &'a IngestOptions,
    lake: &'a Lake,
    source: &'a Source,
    queue: &'a Queue,
    dead_letter: Option<&'a Queue>,
    retry: &'a Retry,
    ledger: &'a Mutex<Ledger>,
    /// The queue's visibility timeout.
    timeout: Duration,
    now: DateTime<Utc>,
    bar: &'a indicatif::ProgressBar,
}

/// The ledger, even after a task panicked holding it (its books stay whole:
/// no method leaves them half-changed).
fn books(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the acker did.
#[derive(Debug, Default)]
struct Acked {
    deleted: u64,
    dead_lettered: u64,
    /// Not deleted after all: a request failed (they come back).
    left: u64,
}

impl QueueRun<'_> {
    /// Receives until a receive finds nothing while no message is held,
    /// `--max-messages` are in, or the pipeline stopped; hands the objects
    /// to read to the pipeline (the retry record's first) and what to do
    /// with finished messages to the acker.
    async fn receive(
        &self,
        batches: mpsc::Sender<Vec<LogObject>>,
        actions: mpsc::UnboundedSender<Action>,
        refetch: Vec<LogObject>,
        stopped: &AtomicBool,
    ) -> Result<()> {
        let batch_bytes = self.options.batch_bytes;
        let hand_on = |objects: Vec<LogObject>| {
            let batches = &batches;
            async move {
                for batch in super::batches(objects, batch_bytes) {
                    if batches.send(batch).await.is_err() {
                        return false; // the pipeline stopped
                    }
                }
                true
            }
        };
        if !hand_on(refetch).await {
            return Ok(());
        }
        let mut records = RecordCache::default();
        let mut pending: Vec<LogObject> = Vec::new();
        loop {
            let received = books(self.ledger).summary.messages_received;
            let room = match self.options.queue.max_messages {
                Some(max) if received >= max => break,
                Some(max) => (max - received).min(MAX_BATCH as u64) as i32,
                None => MAX_BATCH,
            };
            if stopped.load(Ordering::Relaxed) {
                break;
            }
            let asked_at = Instant::now();
            let messages = self
                .queue
                .receive(self.options.queue.wait_secs, room)
                .await?;
            if messages.is_empty() {
                if !hand_on(std::mem::take(&mut pending)).await {
                    return Ok(());
                }
                if books(self.ledger).held() == 0 {
                    break;
                }
                continue;
            }
            let full = messages.len() as i32 >= room;
            let arrivals: Vec<Arrival> = messages
                .into_iter()
                .map(|message| Arrival {
                    notice: notification::parse(&message.body),
                    message,
                })
                .collect();
            let (lookups, recorded) = self.look_up(&arrivals, &mut records).await?;
            let (to_read, done) =
                books(self.ledger).admit(arrivals, &lookups, &recorded, asked_at + self.timeout);
            for action in done {
                let _ = actions.send(action);
            }
            self.bar.inc_length(to_read.len() as u64);
            pending.extend(to_read);
            let bytes: u64 = pending.iter().map(|o| o.size).sum();
            // A queue that gave all it was asked for has more: gather a
            // full batch before handing it on.
            if (!full || bytes >= batch_bytes) && !hand_on(std::mem::take(&mut pending)).await {
                return Ok(());
            }
        }
        hand_on(pending).await;
        Ok(())
    }

    /// The objects of `arrivals` met for the first time, as S3 has them
    /// (from the notification, else by HeadObject), and what the ingested
    /// record holds of them.
    async fn look_up(
        &self,
        arrivals: &[Arrival],
        records: &mut RecordCache,
    ) -> Result<(HashMap<String, Lookup>, HashMap<String, (String, u64)>)> {
        let named: Vec<&notification::NotifiedObject> = {
            let ledger = books(self.ledger);
            let mut seen = HashSet::new();
            arrivals
                .iter()
                .filter(|a| !ledger.holds(&a.message.id))
                .filter_map(|a| match &a.notice {
                    Ok(Notice::Created(objects)) => Some(objects),
                    _ => None,
                })
                .flatten()
                .filter(|o| !ledger.knows(&o.uri()) && seen.insert(o.uri()))
                .collect()
        };
        let lookups: HashMap<String, Lookup> = futures::stream::iter(named)
            .map(|named| async move {
                let uri = named.uri();
                let found = match (&named.etag, named.size) {
                    (Some(etag), Some(size)) => Ok(LogObject {
                        uri: uri.clone(),
                        etag: etag.clone(),
                        size,
                    }),
                    _ => match self.source.stat(&uri).await {
                        Ok(Some(object)) => Ok(object),
                        Ok(None) => Err("no longer exists at the source".to_string()),
                        Err(reason) => Err(reason),
                    },
                };
                (uri, found)
            })
            .buffer_unordered(LOOKUPS_AT_ONCE)
            .collect()
            .await;
        let uris: Vec<&str> = lookups.keys().map(String::as_str).collect();
        let recorded = records.get(self.lake, &uris).await?;
        Ok((lookups, recorded))
    }

    /// Extends the visibility of every held message before it runs out,
    /// until `stop`; how many extensions were made.
    async fn keep_hidden(&self, mut stop: tokio::sync::watch::Receiver<bool>) -> u64 {
        let tick = (self.timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(10));
        let margin = self.timeout / 2;
        let mut extended = 0;
        while !*stop.borrow() {
            tokio::select! {
                _ = stop.changed() => continue,
                _ = tokio::time::sleep(tick) => {}
            }
            let now = Instant::now();
            let due = books(self.ledger).due(now, margin, now + self.timeout);
            extended += futures::stream::iter(due)
                .map(|(id, receipt)| async move {
                    match self.queue.extend(&receipt, self.timeout).await {
                        Ok(()) => 1,
                        // Deleted meanwhile, or the queue unreachable: the
                        // message may come back, and is then received again.
                        Err(e) => {
                            tracing::debug!(message_id = %id, error = %e, "visibility not extended");
                            0
                        }
                    }
                })
                .buffer_unordered(REQUESTS_AT_ONCE)
                .fold(0, |n, one| async move { n + one })
                .await;
        }
        extended
    }

    /// Carries out the ledger's actions until every sender is gone.
    async fn ack(&self, actions: mpsc::UnboundedReceiver<Action>) -> Acked {
        let actions = futures::stream::unfold(actions, |mut rx| async move {
            rx.recv().await.map(|action| (action, rx))
        });
        actions
            .map(|action| self.act(action))
            .buffer_unordered(REQUESTS_AT_ONCE)
            .fold(Acked::default(), |mut acked, done| async move {
                match done {
                    Done::Deleted => acked.deleted += 1,
                    Done::DeadLettered => acked.dead_lettered += 1,
                    Done::Left => acked.left += 1,
                }
                acked
            })
            .await
    }

    async fn act(&self, action: Action) -> Done {
        match action {
            Action::Delete { id, receipt } => match self.queue.delete(&receipt).await {
                Ok(()) => Done::Deleted,
                Err(e) => {
                    tracing::warn!(message_id = %id, error = %e, "message not deleted: it comes back, and its objects are skipped then");
                    Done::Left
                }
            },
            Action::DeadLetter {
                id,
                receipt,
                body,
                reason,
                failures,
            } => {
                self.dead_letter(&id, &receipt, &body, &reason, &failures)
                    .await
            }
        }
    }

    /// Enters a message's failed objects in the retry record, sends the
    /// message to the dead-letter queue, then deletes it: a crash between
    /// leaves it in both queues, never in neither.
    async fn dead_letter(
        &self,
        id: &str,
        receipt: &str,
        body: &str,
        reason: &str,
        failures: &[ObjectFailure],
    ) -> Done {
        let Some(dead_letter) = self.dead_letter else {
            return Done::Left;
        };
        for failure in failures {
            let recorded = if failure.not_a_log {
                crate::lake::unreadable::record_not_a_log(
                    self.lake,
                    &self.options.source,
                    &failure.object,
                    &failure.etag,
                    &failure.reason,
                    self.now,
                )
                .await
            } else {
                crate::lake::unreadable::record_failure(
                    self.lake,
                    self.retry.previous(&failure.object),
                    &self.options.source,
                    &failure.object,
                    &failure.reason,
                    self.now,
                )
                .await
                .map(|_| ())
            };
            if let Err(e) = recorded {
                tracing::error!(message_id = %id, object = %failure.object, error = %e, "retry record not written: message left in the queue");
                return Done::Left;
            }
        }
        let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
        let attributes = [
            ("edgemeter-reason", reason.as_str()),
            ("edgemeter-message-id", id),
            ("edgemeter-queue", self.queue.url()),
        ];
        if let Err(e) = dead_letter.send(body, &attributes).await {
            tracing::error!(message_id = %id, error = %e, "message not sent to the dead-letter queue: left in the queue");
            return Done::Left;
        }
        tracing::warn!(message_id = %id, %reason, dead_letter_queue = %dead_letter.url(), "message sent to the dead-letter queue");
        if let Err(e) = self.queue.delete(receipt).await {
            tracing::warn!(message_id = %id, error = %e, "dead-lettered message not deleted: it comes back");
        }
        Done::DeadLettered
    }
}

/// What became of one action.
enum Done {
    Deleted,
    DeadLettered,
    Left,
}

/// Hears the pipeline's batches for the ledger, and passes the messages it
/// is then done with to the acker.
struct Observer<'a> {
    ledger: &'a Mutex<Ledger>,
    actions: mpsc::UnboundedSender<Action>,
}

impl BatchObserver for Observer<'_> {
    fn failed(&self, objects: &[ObjectFailure]) {
        for action in books(self.ledger).failed(objects) {
            let _ = self.actions.send(action);
        }
    }

    fn recorded(&self, objects: &[String]) {
        for action in books(self.ledger).recorded(objects) {
            let _ = self.actions.send(action);
        }
    }
}

/// The ingested record's objects, read a day partition at a time, each
/// day once per run. A day is read when an object named for it is first
/// met; objects another writer records later are read again by this run
/// if named again, which the merge's de-duplication makes a no-op.
#[derive(Default)]
struct RecordCache {
    days: BTreeSet<String>,
    objects: HashMap<String, (String, u64)>,
}

impl RecordCache {
    async fn get(&mut self, lake: &Lake, uris: &[&str]) -> Result<HashMap<String, (String, u64)>> {
        let missing: BTreeSet<String> = uris
            .iter()
            .map(|uri| ingested::day_of(uri))
            .filter(|day| !self.days.contains(day))
            .collect();
        if !missing.is_empty() {
            self.objects
                .extend(ingested::load_days_of(lake, &missing).await?);
            self.days.extend(missing);
        }
        Ok(uris
            .iter()
            .filter_map(|uri| Some((uri.to_string(), self.objects.get(*uri)?.clone())))
            .collect())
    }
}

/// Objects looked up in S3 at once (those whose notification lacks size or ETag).
const LOOKUPS_AT_ONCE: usize = 16;
/// Deletes, sends and visibility changes in flight at once.
const REQUESTS_AT_ONCE: usize = 8;
/// The longest reason a dead-lettered message carries.
const MAX_REASON_CHARS: usize = 1000;
