//! Decoding one fetched object into rows, on the CPU pool: `format` decides
//! its format and parses it ([`crate::format::ObjectParts`], the part-wise
//! form of `format::parse_object`). An object of more than `part_bytes` of
//! log text is decoded a part at a time, every part but the last sent on to
//! be committed as a batch of its own; an object that cannot be read whole
//! gives no rows at all.

use super::IngestOptions;
use crate::format::{ObjectError, ParseStats};
use crate::key::KeyHasher;
use crate::source::LogObject;
use crate::time::Hour;
use datafusion::arrow::array::RecordBatch;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Decodes an object's bytes. One of more than `part_bytes` of log text is
/// parsed a part at a time: every part but the last is sent on to be
/// committed as soon as it is parsed; the outcome returned is the last.
pub(super) async fn decode(
    data: bytes::Bytes,
    object: LogObject,
    options: &IngestOptions,
    hasher: KeyHasher,
    parts: PartSink<'_>,
) -> ObjectOutcome {
    let failed = |object: LogObject, e: ObjectError| {
        let result = match e {
            e @ ObjectError::NotALog(_) if !named_like_a_log(&object.uri) => Err(Failure {
                reason: e.to_string(),
                not_a_log: true,
            }),
            e => Err(Failure::unreadable(e)),
        };
        ObjectOutcome {
            object,
            result,
            part: None,
        }
    };
    let parse = Arc::new(options.parse.clone());
    let opened = {
        let parse = parse.clone();
        let max = options.max_object_bytes;
        crate::cpu::run(move || crate::format::ObjectParts::open(data, &parse, max)).await
    };
    let mut reading = match opened {
        Ok(Ok(opened)) => (opened, hasher),
        Ok(Err(e)) => return failed(object, e),
        Err(e) => return failed(object, parser_failed(e)),
    };
    let mut part: Option<Part> = None;
    loop {
        // A part after the first takes its batch permit before it is
        // parsed, so that parts in memory, the one being parsed included,
        // are never more than the batches allowed (the first is parsed
        // before the object is known to have parts).
        let permit = match &part {
            None => None,
            Some(_) => {
                let Ok(permit) = parts.in_memory.clone().acquire_owned().await else {
                    unreachable!("the batch semaphore is never closed")
                };
                Some(permit)
            }
        };
        let (uri, parse, part_bytes) = (object.uri.clone(), parse.clone(), options.part_bytes);
        let first = part.is_none();
        let step = crate::cpu::run(move || {
            let (mut opened, mut hasher) = reading;
            let mut next = opened.next_part(&uri, &parse, &mut hasher, part_bytes);
            // Before the first part is committed: the object must read to
            // its end, or none of it is used.
            if first
                && matches!(next, Ok((_, true)))
                && let Err(e) = opened.check_whole(&parse)
            {
                next = Err(e);
            }
            ((opened, hasher), next)
        })
        .await;
        // A failure after parts were committed (which the check above makes
        // all but impossible) leaves those parts in the lake; the object is
        // read again, whole, and they are duplicates then.
        let (state, next) = match step {
            Ok(step) => step,
            Err(e) => return failed(object, parser_failed(e)),
        };
        reading = state;
        let (parsed, more) = match next {
            Ok(next) => next,
            Err(e) => return failed(object, e),
        };
        let this = match &part {
            None if !more => None,
            None => Some(Part {
                committed: Arc::new(Semaphore::new(0)),
                index: 0,
                last: false,
                earlier: PartCounts::default(),
            }),
            Some(earlier) => Some(Part {
                committed: earlier.committed.clone(),
                index: earlier.index + 1,
                last: !more,
                earlier: earlier.earlier,
            }),
        };
        if !more {
            return ObjectOutcome {
                object,
                result: Ok((parsed.hours, parsed.stats)),
                part: this,
            };
        }
        let Some(mut this) = this else {
            unreachable!("an object that goes on is read in parts")
        };
        let permit = match permit {
            Some(permit) => permit,
            None => {
                let Ok(permit) = parts.in_memory.clone().acquire_owned().await else {
                    unreachable!("the batch semaphore is never closed")
                };
                permit
            }
        };
        let counts = {
            let mut counts = this.earlier;
            counts.add(&parsed.stats);
            counts
        };
        let sent = ObjectOutcome {
            object: object.clone(),
            result: Ok((parsed.hours, parsed.stats)),
            part: Some(this.clone()),
        };
        tracing::debug!(object = %object.uri, part = this.index, "committing a part of a large object");
        if parts.tx.send((vec![sent], permit)).await.is_err() {
            // The committing stage stopped on an error: this object is
            // left unrecorded, to be read again by the next run.
            return failed(
                object,
                ObjectError::Decompress("the run stopped before the object was committed".into()),
            );
        }
        this.earlier = counts;
        part = Some(this);
    }
}

fn parser_failed(e: crate::cpu::TaskFailed) -> ObjectError {
    ObjectError::Decompress(format!("parser failed: {e}"))
}

/// Where the parts of an object read in parts go: each takes a batch permit
/// and goes to the committing stage as a batch of its own.
#[derive(Clone, Copy)]
pub(super) struct PartSink<'a> {
    pub(super) in_memory: &'a Arc<Semaphore>,
    pub(super) tx: &'a tokio::sync::mpsc::Sender<(Vec<ObjectOutcome>, OwnedSemaphorePermit)>,
}

/// The result of fetching and parsing one object, or one part of it.
pub(super) struct ObjectOutcome {
    pub(super) object: LogObject,
    pub(super) result: std::result::Result<(BTreeMap<Hour, Vec<RecordBatch>>, ParseStats), Failure>,
    /// Set for a part of an object read in parts.
    pub(super) part: Option<Part>,
}

/// One of the parts of an object larger than [`IngestOptions::part_bytes`].
///
/// Each part is merged and committed as a batch of its own, in order: a part
/// waits until every earlier part of its object is committed (so that, when
/// reingesting, the first part's taking out of the object's earlier rows
/// comes before the later parts' rows). The last part records the object as
/// ingested. A crash before then leaves the object unrecorded; the next run
/// reads it whole again, and the parts already committed are duplicates.
#[derive(Clone)]
pub(super) struct Part {
    /// Earlier parts committed: one permit each.
    pub(super) committed: Arc<Semaphore>,
    /// This part's place, from 0.
    pub(super) index: u32,
    /// The last part, which records the object.
    pub(super) last: bool,
    /// The counts of the earlier parts, for the object's record.
    pub(super) earlier: PartCounts,
}

/// Counts summed over an object's parts.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct PartCounts {
    pub(super) lines: u64,
    pub(super) requests: u64,
    pub(super) bad_lines: u64,
    pub(super) keyless: u64,
}

impl PartCounts {
    pub(super) fn add(&mut self, stats: &ParseStats) {
        self.lines += stats.lines;
        self.requests += stats.requests;
        self.bad_lines += stats.bad_lines;
        self.keyless += stats.keyless;
    }
}

/// An object of a batch that gave no rows, as the run reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ObjectFailure {
    pub(super) object: String,
    pub(super) etag: String,
    pub(super) reason: String,
    /// Not a log, and not named like one (recorded, acknowledged, as such).
    pub(super) not_a_log: bool,
}

/// Why an object gave no rows.
pub(super) struct Failure {
    pub(super) reason: String,
    /// The object is not a log and is not named like one (a `README.md`
    /// beside the logs): reported once and remembered, not retried.
    pub(super) not_a_log: bool,
}

impl Failure {
    pub(super) fn unreadable(reason: impl ToString) -> Self {
        Self {
            reason: reason.to_string(),
            not_a_log: false,
        }
    }
}

/// True when a location is named as CloudFront (or Firehose) names log
/// objects: for an hour, or with a log's extension.
fn named_like_a_log(uri: &str) -> bool {
    let name = uri.rsplit('/').next().unwrap_or(uri).to_ascii_lowercase();
    crate::object_names::name_hour(uri).is_some()
        || [".gz", ".log", ".parquet", ".json", ".jsonl", ".txt"]
            .iter()
            .any(|ext| name.ends_with(ext))
}
