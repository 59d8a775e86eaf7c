//! What one run reports: counts, samples of bad lines and damaged values,
//! the objects it could not read or found not to be logs. The steps of the
//! run fill it in; `cli` prints it, `metrics` exports it, the lake keeps it
//! as the run's record.

use crate::source::LogObject;
use std::collections::{BTreeMap, BTreeSet};

/// How many bad-line and unreadable-object samples a summary keeps.
pub(super) const MAX_SAMPLES: usize = 20;

/// A malformed line, located.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct BadLineSample {
    pub(crate) object: String,
    pub(crate) line: u64,
    pub(crate) reason: String,
}

/// A damaged value of a request that was still counted, located.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct FieldErrorSample {
    pub(crate) object: String,
    pub(crate) line: u64,
    pub(crate) field: String,
    pub(crate) reason: String,
}

/// An object that could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct UnreadableObject {
    pub(crate) object: String,
    pub(crate) reason: String,
}

/// An object most of whose requests had no API key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct MostlyKeyless {
    pub(crate) object: String,
    pub(crate) requests: u64,
    pub(crate) keyless: u64,
}

/// An object found not to be a log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct NotALog {
    pub(crate) object: String,
    #[serde(skip)]
    pub(crate) etag: String,
    pub(crate) reason: String,
}

/// A message of a queue that is no S3 event notification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct MalformedMessage {
    pub(crate) message_id: String,
    pub(crate) reason: String,
}

/// What a run of an `sqs://` source did with the queue's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct QueueSummary {
    /// The queue URL.
    pub(crate) queue: String,
    /// Messages received (each counted once, however often it came).
    pub(crate) messages_received: u64,
    /// Of those, messages SQS had handed out before (to a run that
    /// stopped, or that left them).
    pub(crate) messages_redelivered: u64,
    /// Messages received again by this run while it held them: a
    /// visibility extension came too late.
    pub(crate) messages_received_again: u64,
    /// Deleted once every object they name was recorded as ingested.
    pub(crate) messages_deleted: u64,
    /// Test events and events other than `ObjectCreated` (deleted too).
    pub(crate) messages_ignored: u64,
    /// Sent to the dead-letter queue (and deleted): an object they name
    /// could not be read, or they are no notifications.
    pub(crate) messages_dead_lettered: u64,
    /// Left in the queue for its redrive policy (no `--dead-letter-queue`;
    /// hidden while the run lasts, so each run is one receipt of them), or
    /// because deleting or dead-lettering them failed.
    pub(crate) messages_left: u64,
    /// Objects named, over all messages.
    pub(crate) notifications: u64,
    /// Of those, naming an object another message of this run named already.
    pub(crate) repeated_notifications: u64,
    /// Visibility timeouts extended while messages' objects were read.
    pub(crate) visibility_extensions: u64,
    /// Messages that are no S3 event notifications.
    pub(crate) malformed: Vec<MalformedMessage>,
}

/// What one ingest run did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub(crate) struct IngestSummary {
    pub(crate) run_id: String,
    /// The `--source` this run read.
    pub(crate) source: String,
    /// RFC 3339 start and end of the run.
    pub(crate) started_at: String,
    pub(crate) finished_at: String,
    /// `full`, or the first hour listed.
    pub(crate) listing: String,
    pub(crate) objects_listed: u64,
    /// Already ingested with the same ETag.
    pub(crate) objects_skipped: u64,
    pub(crate) objects_ingested: u64,
    pub(crate) objects_unreadable: u64,
    /// Bytes as stored at the source (compressed).
    pub(crate) bytes_read: u64,
    /// Bytes of log text after decompression.
    pub(crate) bytes_decompressed: u64,
    pub(crate) lines: u64,
    pub(crate) bad_lines: u64,
    /// Damaged values in lines that were still requests (each stored as null).
    pub(crate) field_errors: u64,
    pub(crate) keyless_requests: u64,
    /// Requests that carried a second, different key besides the one they
    /// were billed to (by the key of highest precedence), per billed `api_key_id`.
    pub(crate) conflicting_keys: BTreeMap<String, u64>,
    /// Requests parsed from the objects (before de-duplication).
    pub(crate) requests: u64,
    /// Rows newly written to the lake.
    pub(crate) rows_written: u64,
    /// Rows of objects read again by `reingest`, taken out and replaced by
    /// `rows_written` (those of the objects' new reading).
    pub(crate) rows_replaced: u64,
    /// Requests already in the lake (same request id), not counted again.
    pub(crate) duplicates: u64,
    pub(crate) partitions_touched: BTreeSet<String>,
    /// Bad lines per object, for objects that had any.
    pub(crate) bad_lines_by_object: BTreeMap<String, u64>,
    pub(crate) bad_line_samples: Vec<BadLineSample>,
    pub(crate) field_error_samples: Vec<FieldErrorSample>,
    pub(crate) unreadable: Vec<UnreadableObject>,
    /// Objects of the retry record (unreadable in an earlier run) outside
    /// this run's listing, fetched again.
    pub(crate) objects_retried: u64,
    /// Objects of the retry record read by this run (or found read by another).
    pub(crate) unreadable_resolved: u64,
    /// Unreadable objects not acknowledged: while any remain, the exit status is 3.
    pub(crate) unreadable_outstanding: u64,
    /// Unreadable objects a user has acknowledged with `edgemeter unreadable --acknowledge`.
    pub(crate) unreadable_acknowledged: u64,
    /// Objects ingested by this run in which more than `--max-keyless-share`
    /// of the requests had no API key: the key settings may be wrong. They
    /// make the run partial (exit 3); `edgemeter reingest` reads objects
    /// again with other settings.
    pub(crate) mostly_keyless: Vec<MostlyKeyless>,
    /// Objects under the source that are not logs and not named like logs
    /// (found by this run, or remembered from an earlier one): skipped.
    pub(crate) objects_not_logs: u64,
    /// The ones this run found (later runs skip them while unchanged).
    pub(crate) not_logs: Vec<NotALog>,
    /// Objects under the source named for hours before the listing window,
    /// left out (`--since`, a longer `--lookback` or `--full-listing` take them in).
    pub(crate) objects_outside_window: u64,
    /// The lake's own files under the source (a lake inside the source
    /// directory), never read as logs.
    pub(crate) objects_in_lake: u64,
    /// `I/N` when the run read shard `I` of `N` (`--shard`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) shard: Option<String>,
    /// Objects listed that belong to the other shards, left to their workers.
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) objects_other_shards: u64,
    /// Partitions older than `--retain-days` that this run wrote, kept
    /// (the next run with the same retention drops them).
    pub(crate) partitions_kept_from_retention: Vec<String>,
    /// Every unreadable object of the run (the summary keeps samples).
    #[serde(skip)]
    pub(super) failed: Vec<UnreadableObject>,
    /// Locations of the objects this run ingested.
    #[serde(skip)]
    pub(super) ingested: std::collections::HashSet<String>,
    /// Partitions deleted by `--retain-days`.
    pub(crate) partitions_dropped: Vec<String>,
    /// Hours whose `usage_hourly` rollup was missing or stale at the start of
    /// the run (a writer stopped between an hour's two commits) and rebuilt.
    pub(crate) rollups_rebuilt: u64,
    /// Day rollup and day totals files written (`usage_daily`,
    /// `usage_daily_keys`, `usage_daily_totals`): one for each day without
    /// one, in each (the days the run wrote to).
    pub(crate) day_rollups_written: u64,
    /// Files of the plans file's meters kept per day (`meters_daily`)
    /// written: one for each day without a current one (with `--plans`).
    pub(crate) meter_days_written: u64,
    /// For an `sqs://` source: what became of the queue's messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) queue: Option<QueueSummary>,
    pub(crate) elapsed_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl IngestSummary {
    /// True when some object could not be read and no user has acknowledged
    /// it (the run's exit status says so).
    pub(crate) fn is_partial(&self) -> bool {
        self.unreadable_outstanding > 0
            || !self.mostly_keyless.is_empty()
            || self.queue.as_ref().is_some_and(|q| !q.malformed.is_empty())
    }

    pub(super) fn note_not_a_log(&mut self, object: &LogObject, reason: &str) {
        tracing::warn!(object = %object.uri, %reason, "not a log: skipped, and by later runs while it is unchanged");
        self.objects_not_logs += 1;
        self.not_logs.push(NotALog {
            object: object.uri.clone(),
            etag: object.etag.clone(),
            reason: reason.to_string(),
        });
    }

    pub(super) fn note_unreadable(&mut self, object: &str, reason: &str) {
        tracing::error!(object = %object, %reason, "object could not be read");
        self.objects_unreadable += 1;
        let failed = UnreadableObject {
            object: object.to_string(),
            reason: reason.to_string(),
        };
        if self.unreadable.len() < MAX_SAMPLES {
            self.unreadable.push(failed.clone());
        }
        self.failed.push(failed);
    }
}
