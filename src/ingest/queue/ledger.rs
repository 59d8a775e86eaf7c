//! The books of a queue run: which messages it holds, which objects each is
//! waiting for, and what became of every object named so far. It decides
//! when a message may go: deleted once every object it names is recorded
//! as ingested (by this run or an earlier one), dead-lettered (or left to
//! the queue's redrive policy) once every object is settled and one of
//! them failed. It makes no request itself; [`Action`]s say what to do.

use super::super::decode::ObjectFailure;
use super::super::summary::{MalformedMessage, QueueSummary};
use crate::source::LogObject;
use crate::source::notification::Notice;
use crate::source::sqs::Received;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// What to do with a message the run is done with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    /// Every object it names is recorded as ingested, or it names none.
    Delete { id: String, receipt: String },
    /// To the dead-letter queue, then deleted: `failures` are the objects
    /// it names that could not be read (none when the message itself is
    /// no notification), `reason` says why in one line.
    DeadLetter {
        id: String,
        receipt: String,
        body: String,
        reason: String,
        failures: Vec<ObjectFailure>,
    },
}

/// A message received and not yet done with.
#[derive(Debug)]
struct Held {
    receipt: String,
    body: String,
    /// Objects it names whose rows are not recorded yet.
    waiting: BTreeSet<String>,
    /// Objects it names that failed.
    failed: Vec<ObjectFailure>,
    /// When SQS makes it visible again unless its visibility is extended.
    hidden_until: Instant,
}

/// What became of an object this run.
#[derive(Debug, Clone)]
enum ObjectState {
    /// Being read (or queued to be).
    Pending,
    /// Its rows are committed and recorded, by this run or an earlier one.
    Recorded,
    Failed(ObjectFailure),
}

/// An object a notification names, as the run found it before admitting
/// the message: what a listing would give, or why it cannot be had.
pub(super) type Lookup = Result<LogObject, String>;

/// A received message and what its body says.
pub(super) struct Arrival {
    pub(super) message: Received,
    pub(super) notice: Result<Notice, String>,
}

#[derive(Debug)]
pub(super) struct Ledger {
    held: HashMap<String, Held>,
    /// Failed messages left for the queue's redrive policy: kept hidden
    /// while the run lasts, so that each run is one receipt of them (one
    /// attempt), and let go when it ends.
    parked: HashMap<String, Held>,
    objects: HashMap<String, ObjectState>,
    /// Whether failed messages go to a dead-letter queue (else they are
    /// left in the queue, for its redrive policy).
    dead_letter: bool,
    /// Objects the ingested record held already, unchanged.
    pub(super) already_recorded: Vec<LogObject>,
    /// Objects that failed before they could be read (gone, or their
    /// lookup failed): the pipeline never saw them.
    pub(super) failed_early: Vec<ObjectFailure>,
    pub(super) summary: QueueSummary,
}

impl Ledger {
    pub(super) fn new(queue: &str, dead_letter: bool) -> Self {
        Self {
            held: HashMap::new(),
            parked: HashMap::new(),
            objects: HashMap::new(),
            dead_letter,
            already_recorded: Vec::new(),
            failed_early: Vec::new(),
            summary: QueueSummary {
                queue: queue.to_string(),
                ..Default::default()
            },
        }
    }

    /// Messages held: received and not yet done with (not those left for
    /// the redrive policy).
    pub(super) fn held(&self) -> usize {
        self.held.len()
    }

    /// Marks objects the run reads without a message (the retry record's),
    /// so that messages naming them wait for that reading.
    pub(super) fn expect(&mut self, objects: &[LogObject]) {
        for object in objects {
            self.objects
                .insert(object.uri.clone(), ObjectState::Pending);
        }
    }

    /// True for a message this run holds now, or has left for the redrive policy.
    pub(super) fn holds(&self, id: &str) -> bool {
        self.held.contains_key(id) || self.parked.contains_key(id)
    }

    /// True for an object this run has met already.
    pub(super) fn knows(&self, uri: &str) -> bool {
        self.objects.contains_key(uri)
    }

    /// Takes in received messages: `lookups` gives each object met for the
    /// first time (see [`Self::knows`]), `recorded` what the ingested record
    /// holds of them. Returns the objects to read and what to do with the
    /// messages that need nothing more.
    pub(super) fn admit(
        &mut self,
        arrivals: Vec<Arrival>,
        lookups: &HashMap<String, Lookup>,
        recorded: &HashMap<String, (String, u64)>,
        hidden_until: Instant,
    ) -> (Vec<LogObject>, Vec<Action>) {
        let mut to_read = Vec::new();
        let mut actions = Vec::new();
        for Arrival { message, notice } in arrivals {
            let again = self.held.get_mut(&message.id);
            let again = match again {
                Some(held) => Some(held),
                None => self.parked.get_mut(&message.id),
            };
            if let Some(held) = again {
                // Received again while held: an extension came too late.
                // Only the newest receipt deletes it.
                held.receipt = message.receipt;
                held.hidden_until = hidden_until;
                self.summary.messages_received_again += 1;
                tracing::warn!(message_id = %message.id, "message received again while its objects are read");
                continue;
            }
            self.summary.messages_received += 1;
            if message.receive_count > 1 {
                self.summary.messages_redelivered += 1;
            }
            let objects = match notice {
                Err(reason) => {
                    tracing::error!(message_id = %message.id, %reason, "message is no S3 event notification");
                    self.summary.malformed.push(MalformedMessage {
                        message_id: message.id.clone(),
                        reason: reason.clone(),
                    });
                    let held = Held {
                        receipt: message.receipt,
                        body: message.body,
                        waiting: BTreeSet::new(),
                        failed: Vec::new(),
                        hidden_until,
                    };
                    actions.extend(self.done_with(
                        message.id,
                        held,
                        format!("not an S3 event notification: {reason}"),
                    ));
                    continue;
                }
                Ok(Notice::Ignored(what)) => {
                    tracing::info!(message_id = %message.id, event = %what, "message names no created object: deleted");
                    self.summary.messages_ignored += 1;
                    actions.push(Action::Delete {
                        id: message.id,
                        receipt: message.receipt,
                    });
                    continue;
                }
                Ok(Notice::Created(objects)) => objects,
            };
            let mut held = Held {
                receipt: message.receipt,
                body: message.body,
                waiting: BTreeSet::new(),
                failed: Vec::new(),
                hidden_until,
            };
            for named in objects {
                let uri = named.uri();
                self.summary.notifications += 1;
                let state = match self.objects.get(&uri) {
                    Some(state) => {
                        self.summary.repeated_notifications += 1;
                        state.clone()
                    }
                    None => {
                        let state = self.first_met(&uri, lookups, recorded, &mut to_read);
                        self.objects.insert(uri.clone(), state.clone());
                        state
                    }
                };
                match state {
                    ObjectState::Pending => {
                        held.waiting.insert(uri);
                    }
                    ObjectState::Recorded => {}
                    ObjectState::Failed(failure) => held.failed.push(failure),
                }
            }
            if held.waiting.is_empty() {
                actions.extend(self.done_with(message.id, held, String::new()));
            } else {
                self.held.insert(message.id, held);
            }
        }
        (to_read, actions)
    }

    /// The state of an object met for the first time.
    fn first_met(
        &mut self,
        uri: &str,
        lookups: &HashMap<String, Lookup>,
        recorded: &HashMap<String, (String, u64)>,
        to_read: &mut Vec<LogObject>,
    ) -> ObjectState {
        match lookups.get(uri) {
            Some(Ok(object)) => {
                if recorded.get(uri) == Some(&(object.etag.clone(), object.size)) {
                    self.already_recorded.push(object.clone());
                    ObjectState::Recorded
                } else {
                    to_read.push(object.clone());
                    ObjectState::Pending
                }
            }
            Some(Err(reason)) => {
                let failure = ObjectFailure {
                    object: uri.to_string(),
                    etag: String::new(),
                    reason: reason.clone(),
                    not_a_log: false,
                };
                self.failed_early.push(failure.clone());
                ObjectState::Failed(failure)
            }
            None => {
                let failure = ObjectFailure {
                    object: uri.to_string(),
                    etag: String::new(),
                    reason: "not looked up before its message was admitted".into(),
                    not_a_log: false,
                };
                self.failed_early.push(failure.clone());
                ObjectState::Failed(failure)
            }
        }
    }

    /// Objects whose rows are committed and recorded.
    pub(super) fn recorded(&mut self, uris: &[String]) -> Vec<Action> {
        for uri in uris {
            self.objects.insert(uri.clone(), ObjectState::Recorded);
        }
        self.settle(|held| {
            for uri in uris {
                held.waiting.remove(uri);
            }
        })
    }

    /// Objects that could not be read.
    pub(super) fn failed(&mut self, failures: &[ObjectFailure]) -> Vec<Action> {
        for failure in failures {
            self.objects
                .insert(failure.object.clone(), ObjectState::Failed(failure.clone()));
        }
        self.settle(|held| {
            for failure in failures {
                if held.waiting.remove(&failure.object) {
                    held.failed.push(failure.clone());
                }
            }
        })
    }

    /// Applies `change` to every held message; those left waiting for
    /// nothing are done with.
    fn settle(&mut self, mut change: impl FnMut(&mut Held)) -> Vec<Action> {
        let mut done = Vec::new();
        for (id, held) in &mut self.held {
            change(held);
            if held.waiting.is_empty() {
                done.push(id.clone());
            }
        }
        let mut actions = Vec::new();
        for id in done {
            if let Some(held) = self.held.remove(&id) {
                actions.extend(self.done_with(id, held, String::new()));
            }
        }
        actions
    }

    /// What to do with a message waiting for nothing more; `reason`, when
    /// not empty, is why the message itself failed.
    fn done_with(&mut self, id: String, held: Held, reason: String) -> Option<Action> {
        if held.failed.is_empty() && reason.is_empty() {
            return Some(Action::Delete {
                id,
                receipt: held.receipt,
            });
        }
        let reason = if reason.is_empty() {
            held.failed
                .iter()
                .map(|f| format!("{}: {}", f.object, f.reason))
                .collect::<Vec<_>>()
                .join("; ")
        } else {
            reason
        };
        if !self.dead_letter {
            tracing::warn!(message_id = %id, %reason, "message left in the queue for its redrive policy");
            self.summary.messages_left += 1;
            self.parked.insert(id, held);
            return None;
        }
        Some(Action::DeadLetter {
            id,
            receipt: held.receipt,
            body: held.body,
            reason,
            failures: held.failed,
        })
    }

    /// Messages whose visibility runs out within `margin` of `now`, with
    /// their receipts, marked hidden until `hidden_until` (the extension
    /// about to be made).
    pub(super) fn due(
        &mut self,
        now: Instant,
        margin: Duration,
        hidden_until: Instant,
    ) -> Vec<(String, String)> {
        let mut due = Vec::new();
        for (id, held) in self.held.iter_mut().chain(self.parked.iter_mut()) {
            if held.hidden_until <= now + margin {
                held.hidden_until = hidden_until;
                due.push((id.clone(), held.receipt.clone()));
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::notification::NotifiedObject;

    fn object(name: &str) -> LogObject {
        LogObject {
            uri: format!("s3://logs/{name}"),
            etag: format!("etag-{name}"),
            size: 10,
        }
    }

    fn arrival(id: &str, names: &[&str]) -> Arrival {
        Arrival {
            message: Received {
                id: id.into(),
                receipt: format!("r-{id}"),
                body: format!("body of {id}"),
                receive_count: 1,
            },
            notice: Ok(Notice::Created(
                names
                    .iter()
                    .map(|n| NotifiedObject {
                        bucket: "logs".into(),
                        key: n.to_string(),
                        size: Some(10),
                        etag: Some(format!("etag-{n}")),
                    })
                    .collect(),
            )),
        }
    }

    fn lookups(names: &[&str]) -> HashMap<String, Lookup> {
        names
            .iter()
            .map(|n| (object(n).uri, Ok(object(n))))
            .collect()
    }

    fn delete(id: &str) -> Action {
        Action::Delete {
            id: id.into(),
            receipt: format!("r-{id}"),
        }
    }

    #[test]
    fn a_message_is_deleted_only_once_every_object_it_names_is_recorded() {
        let mut ledger = Ledger::new("q", true);
        let now = Instant::now();
        let (to_read, actions) = ledger.admit(
            vec![arrival("m1", &["a", "b"]), arrival("m2", &["b"])],
            &lookups(&["a", "b"]),
            &HashMap::new(),
            now,
        );
        // b is read once, though two messages name it.
        assert_eq!(to_read, vec![object("a"), object("b")]);
        assert!(actions.is_empty());
        assert_eq!(ledger.summary.repeated_notifications, 1);
        assert_eq!(ledger.recorded(&[object("b").uri]), vec![delete("m2")]);
        assert_eq!(ledger.held(), 1);
        assert_eq!(ledger.recorded(&[object("a").uri]), vec![delete("m1")]);
        // A later message naming a recorded object goes at once.
        let (to_read, actions) = ledger.admit(
            vec![arrival("m3", &["a"])],
            &HashMap::new(),
            &HashMap::new(),
            now,
        );
        assert!(to_read.is_empty());
        assert_eq!(actions, vec![delete("m3")]);
    }

    #[test]
    fn objects_the_record_holds_unchanged_are_not_read_again() {
        let mut ledger = Ledger::new("q", true);
        let recorded = HashMap::from([
            (object("a").uri, ("etag-a".to_string(), 10)),
            (object("b").uri, ("older".to_string(), 10)),
        ]);
        let (to_read, actions) = ledger.admit(
            vec![arrival("m1", &["a"]), arrival("m2", &["b"])],
            &lookups(&["a", "b"]),
            &recorded,
            Instant::now(),
        );
        assert_eq!(to_read, vec![object("b")]);
        assert_eq!(actions, vec![delete("m1")]);
        assert_eq!(ledger.already_recorded, vec![object("a")]);
    }

    #[test]
    fn a_failed_object_sends_its_messages_to_the_dead_letter_queue() {
        let mut ledger = Ledger::new("q", true);
        ledger.admit(
            vec![arrival("m1", &["a", "bad"]), arrival("m2", &["a"])],
            &lookups(&["a", "bad"]),
            &HashMap::new(),
            Instant::now(),
        );
        let failure = ObjectFailure {
            object: object("bad").uri,
            etag: String::new(),
            reason: "truncated gzip".into(),
            not_a_log: false,
        };
        assert!(ledger.failed(std::slice::from_ref(&failure)).is_empty());
        let mut actions = ledger.recorded(&[object("a").uri]);
        actions.sort_by_key(|a| format!("{a:?}"));
        assert_eq!(
            actions,
            vec![
                Action::DeadLetter {
                    id: "m1".into(),
                    receipt: "r-m1".into(),
                    body: "body of m1".into(),
                    reason: "s3://logs/bad: truncated gzip".into(),
                    failures: vec![failure],
                },
                delete("m2"),
            ]
        );
        // Without a dead-letter queue, the message is left for the redrive policy.
        let mut ledger = Ledger::new("q", false);
        ledger.admit(
            vec![arrival("m1", &["gone"])],
            &HashMap::from([(object("gone").uri, Err("no longer exists".to_string()))]),
            &HashMap::new(),
            Instant::now(),
        );
        assert_eq!(ledger.summary.messages_left, 1);
        assert_eq!(ledger.failed_early.len(), 1);
        // It no longer keeps the run going, but stays hidden while it lasts.
        assert_eq!(ledger.held(), 0);
        let later = Instant::now() + Duration::from_secs(60);
        assert_eq!(
            ledger.due(later, Duration::ZERO, later),
            vec![("m1".to_string(), "r-m1".to_string())]
        );
    }

    #[test]
    fn malformed_and_ignored_messages_are_done_with_at_once() {
        let mut ledger = Ledger::new("q", true);
        let mut malformed = arrival("bad", &[]);
        malformed.notice = Err("not JSON".into());
        let mut test_event = arrival("test", &[]);
        test_event.notice = Ok(Notice::Ignored("s3:TestEvent".into()));
        let (_, actions) = ledger.admit(
            vec![malformed, test_event],
            &HashMap::new(),
            &HashMap::new(),
            Instant::now(),
        );
        assert_eq!(
            actions,
            vec![
                Action::DeadLetter {
                    id: "bad".into(),
                    receipt: "r-bad".into(),
                    body: "body of bad".into(),
                    reason: "not an S3 event notification: not JSON".into(),
                    failures: vec![],
                },
                delete("test"),
            ]
        );
        assert_eq!(ledger.summary.malformed.len(), 1);
        assert_eq!(ledger.summary.messages_ignored, 1);
    }

    #[test]
    fn a_message_received_again_keeps_its_newest_receipt_and_is_counted() {
        let mut ledger = Ledger::new("q", true);
        let now = Instant::now();
        ledger.admit(
            vec![arrival("m1", &["a"])],
            &lookups(&["a"]),
            &HashMap::new(),
            now,
        );
        let mut again = arrival("m1", &["a"]);
        again.message.receipt = "r-m1-again".into();
        let (to_read, actions) = ledger.admit(vec![again], &HashMap::new(), &HashMap::new(), now);
        assert!(to_read.is_empty() && actions.is_empty());
        assert_eq!(ledger.summary.messages_received, 1);
        assert_eq!(ledger.summary.messages_received_again, 1);
        assert_eq!(
            ledger.recorded(&[object("a").uri]),
            vec![Action::Delete {
                id: "m1".into(),
                receipt: "r-m1-again".into()
            }]
        );
    }

    #[test]
    fn visibility_is_extended_before_it_runs_out() {
        let mut ledger = Ledger::new("q", true);
        let now = Instant::now();
        let timeout = Duration::from_secs(30);
        ledger.admit(
            vec![arrival("m1", &["a"])],
            &lookups(&["a"]),
            &HashMap::new(),
            now + timeout,
        );
        let margin = timeout / 2;
        assert!(ledger.due(now, margin, now + timeout).is_empty());
        let later = now + Duration::from_secs(16);
        assert_eq!(
            ledger.due(later, margin, later + timeout),
            vec![("m1".to_string(), "r-m1".to_string())]
        );
        assert!(ledger.due(later, margin, later + timeout).is_empty());
    }
}
