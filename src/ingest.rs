//! `edgemeter ingest`: list new log objects, fetch them concurrently, parse them
//! on CPU threads, merge their rows into hour partitions and commit each batch
//! to the `requests` Delta table in one commit, then its rollups, then the
//! objects to the ingested record. See the design section of the README for
//! why this order keeps every request counted exactly once, with any number
//! of runs writing the same lake at once.

use crate::aws::S3Settings;
use crate::error::Result;
use crate::format::ObjectError;
use crate::format::{ParseOptions, ParseStats};
use crate::key::KeyHasher;
use crate::lake::delta::{self, Committed};
use crate::lake::ingested::{self, INGESTED_TABLE, IngestedObject};
use crate::lake::layout;
use crate::lake::partition::{self, HourMerge, MergeOutcome, merge_hour};
use crate::lake::rollup::{self, HourRollup, ROLLUP_TABLE};
use crate::lake::unreadable::Unreadable;
use crate::lake::{Lake, REQUESTS_TABLE};
use crate::source::{Listing, LogObject, Source};
use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::arrow::array::RecordBatch;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Batches in memory at once, from fetch to commit. Measured on the benchmark
/// (2 cores, one object per batch), three kept both cores busy from the first
/// batch on, where two left one core idle whenever one stage waited for the
/// other; four were no faster.
const BATCHES_IN_MEMORY: usize = 3;

/// Batches committed at once. Merging is most of a commit's work (over half of
/// the CPU time of an ingest), so with one commit at a time the commits were
/// the longest chain in a run, and the parse stage waited on them with a core
/// idle. Two commits merge side by side (4.59 s → 4.14 s on the benchmark);
/// [`HourLocks`] keeps them out of the same hour.
const COMMITS_IN_FLIGHT: usize = 2;

/// Default [`IngestOptions::part_bytes`]: CloudFront's own objects stay far
/// below it (a busy distribution writes many objects an hour rather than
/// large ones), so nearly every object is one part.
pub(crate) const DEFAULT_PART_BYTES: u64 = 128 << 20;

/// How many bad-line and unreadable-object samples a summary keeps.
const MAX_SAMPLES: usize = 20;

/// Everything `ingest` needs.
#[derive(Debug, Clone)]
pub(crate) struct IngestOptions {
    pub(crate) source: String,
    pub(crate) lake: String,
    pub(crate) s3: S3Settings,
    pub(crate) parse: ParseOptions,
    /// Objects fetched at once.
    pub(crate) concurrency: usize,
    /// Compressed bytes of source objects processed (and committed) per batch.
    pub(crate) batch_bytes: u64,
    /// Cap on one object's decompressed size.
    pub(crate) max_object_bytes: u64,
    /// Log text of one object parsed and committed at a time.
    pub(crate) part_bytes: u64,
    /// How large one data file of an hour may grow.
    pub(crate) file_limits: crate::lake::partition::FileLimits,
    /// Which objects to list.
    pub(crate) window: Window,
    /// Drop `requests` partitions older than this many days (UTC dates).
    pub(crate) retain_days: Option<u32>,
    /// Objects with a larger share of keyless requests make the run partial.
    pub(crate) max_keyless_share: f64,
    /// Show a progress bar (on a terminal).
    pub(crate) progress: bool,
    /// Read the objects named for hours up to this one (exclusive) again,
    /// from `window`'s `Since`, replacing their rows (`edgemeter reingest`).
    pub(crate) reingest_until: Option<DateTime<Utc>>,
}

/// Which source objects a run lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Window {
    /// Objects named for the `lookback` before the source's last finished
    /// listing; everything when the source was never listed to the end.
    Lookback(std::time::Duration),
    /// Objects named for this hour or later (backfills).
    Since(DateTime<Utc>),
    /// Everything under the source.
    Full,
}

impl Window {
    fn listing(&self, checkpoint: Option<DateTime<Utc>>) -> Listing {
        match (*self, checkpoint) {
            (Window::Full, _) | (Window::Lookback(_), None) => Listing::Full,
            (Window::Lookback(d), Some(listed_at)) => {
                let since = listed_at - chrono::Duration::seconds(d.as_secs() as i64);
                let hour = since.timestamp().div_euclid(3600) * 3600;
                Listing::Since(DateTime::from_timestamp(hour, 0).unwrap_or(since))
            }
            (Window::Since(t), _) => Listing::Since(t),
        }
    }
}

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
    /// Partitions older than `--retain-days` that this run wrote, kept
    /// (the next run with the same retention drops them).
    pub(crate) partitions_kept_from_retention: Vec<String>,
    /// Every unreadable object of the run (the summary keeps samples).
    #[serde(skip)]
    failed: Vec<UnreadableObject>,
    /// Locations of the objects this run ingested.
    #[serde(skip)]
    ingested: std::collections::HashSet<String>,
    /// Partitions deleted by `--retain-days`.
    pub(crate) partitions_dropped: Vec<String>,
    /// Hours whose `usage_hourly` rollup was missing or stale at the start of
    /// the run (a writer stopped between an hour's two commits) and rebuilt.
    pub(crate) rollups_rebuilt: u64,
    pub(crate) elapsed_ms: u64,
}

impl IngestSummary {
    /// True when some object could not be read and no user has acknowledged
    /// it (the run's exit status says so).
    pub(crate) fn is_partial(&self) -> bool {
        self.unreadable_outstanding > 0 || !self.mostly_keyless.is_empty()
    }

    fn note_not_a_log(&mut self, object: &LogObject, reason: &str) {
        tracing::warn!(object = %object.uri, %reason, "not a log: skipped, and by later runs while it is unchanged");
        self.objects_not_logs += 1;
        self.not_logs.push(NotALog {
            object: object.uri.clone(),
            etag: object.etag.clone(),
            reason: reason.to_string(),
        });
    }

    fn note_unreadable(&mut self, object: &str, reason: &str) {
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

/// The retry record as one run uses it.
struct Retry {
    /// Unacknowledged objects of this source, by location.
    records: HashMap<String, Unreadable>,
    /// Acknowledged objects of this source: their failures do not make a run partial.
    acknowledged: HashMap<String, Unreadable>,
    /// Recorded objects outside this run's listing, fetched again.
    refetch: Vec<LogObject>,
    /// Recorded or listed objects that could not even be reached.
    failed: Vec<(String, String)>,
}

impl Retry {
    /// No retry record (a reingest reads its range only); `problems` are
    /// the entries the listing could not reach.
    fn none(problems: Vec<(String, String)>) -> Self {
        Self {
            records: HashMap::new(),
            acknowledged: HashMap::new(),
            refetch: Vec::new(),
            failed: problems,
        }
    }

    /// True when an earlier run found this object, as it is now, not to be a log.
    fn is_remembered_not_a_log(&self, object: &LogObject) -> bool {
        self.acknowledged
            .get(&object.uri)
            .is_some_and(|r| r.not_a_log && r.etag.as_deref() == Some(object.etag.as_str()))
    }

    /// The record's objects under `source` that this run must try again.
    async fn load(
        lake: &Lake,
        source: &Source,
        listed: &[LogObject],
        problems: Vec<(String, String)>,
    ) -> Result<Self> {
        let (acknowledged, records): (HashMap<_, _>, HashMap<_, _>) =
            crate::lake::unreadable::load(lake)
                .await?
                .into_iter()
                .filter(|r| source.holds(&r.object))
                .map(|r| (r.object.clone(), r))
                .partition(|(_, r)| r.acknowledged_at.is_some());
        let listed: std::collections::HashSet<&str> =
            listed.iter().map(|o| o.uri.as_str()).collect();
        let unlisted: Vec<&str> = records
            .keys()
            .map(String::as_str)
            .filter(|o| !listed.contains(o))
            .filter(|o| !problems.iter().any(|(p, _)| p == o))
            .collect();
        let stats: Vec<(&str, std::result::Result<Option<LogObject>, String>)> =
            futures::stream::iter(unlisted)
                .map(|object| async move { (object, source.stat(object).await) })
                .buffer_unordered(16)
                .collect()
                .await;
        let mut failed = problems;
        let mut refetch = Vec::new();
        for (object, stat) in stats {
            match stat {
                Ok(Some(found)) => refetch.push(found),
                Ok(None) => {
                    failed.push((object.to_string(), "no longer exists at the source".into()))
                }
                Err(reason) => failed.push((object.to_string(), reason)),
            }
        }
        refetch.sort_by(|a, b| a.uri.cmp(&b.uri));
        failed.sort();
        Ok(Self {
            records,
            acknowledged,
            refetch,
            failed,
        })
    }

    /// After the run: every failure is recorded, every recorded object now in
    /// the ingested record (read by this run, or found already read) is
    /// forgotten, and the summary says how many remain unacknowledged.
    async fn settle(
        &self,
        lake: &Lake,
        source_name: &str,
        already_ingested: &[LogObject],
        summary: &mut IngestSummary,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let failed: HashMap<&str, &str> = summary
            .failed
            .iter()
            .map(|f| (f.object.as_str(), f.reason.as_str()))
            .collect();
        for found in &summary.not_logs {
            crate::lake::unreadable::record_not_a_log(
                lake,
                source_name,
                &found.object,
                &found.etag,
                &found.reason,
                now,
            )
            .await?;
        }
        let mut outstanding = 0;
        let mut acknowledged = 0;
        for (object, reason) in &failed {
            let previous = self.records.get(*object).or(self.acknowledged.get(*object));
            let record = crate::lake::unreadable::record_failure(
                lake,
                previous,
                source_name,
                object,
                reason,
                now,
            )
            .await?;
            if record.acknowledged_at.is_some() {
                acknowledged += 1;
            } else {
                outstanding += 1;
            }
        }
        let skipped: std::collections::HashSet<&str> =
            already_ingested.iter().map(|o| o.uri.as_str()).collect();
        for object in self.records.keys().chain(self.acknowledged.keys()) {
            if failed.contains_key(object.as_str()) {
                continue;
            }
            // Not failed this run: it was ingested by this run, or is in the
            // ingested record already (a race with another run).
            if skipped.contains(object.as_str()) || summary.ingested.contains(object) {
                crate::lake::unreadable::clear(lake, object).await?;
                summary.unreadable_resolved += 1;
            }
        }
        summary.unreadable_outstanding = outstanding;
        summary.unreadable_acknowledged = acknowledged;
        Ok(())
    }
}

/// The result of fetching and parsing one object, or one part of it.
struct ObjectOutcome {
    object: LogObject,
    result: std::result::Result<(BTreeMap<i64, Vec<RecordBatch>>, ParseStats), Failure>,
    /// Set for a part of an object read in parts.
    part: Option<Part>,
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
struct Part {
    /// Earlier parts committed: one permit each.
    committed: Arc<Semaphore>,
    /// This part's place, from 0.
    index: u32,
    /// The last part, which records the object.
    last: bool,
    /// The counts of the earlier parts, for the object's record.
    earlier: PartCounts,
}

/// Counts summed over an object's parts.
#[derive(Debug, Default, Clone, Copy)]
struct PartCounts {
    lines: u64,
    requests: u64,
    bad_lines: u64,
    keyless: u64,
}

impl PartCounts {
    fn add(&mut self, stats: &ParseStats) {
        self.lines += stats.lines;
        self.requests += stats.requests;
        self.bad_lines += stats.bad_lines;
        self.keyless += stats.keyless;
    }
}

/// Why an object gave no rows.
struct Failure {
    reason: String,
    /// The object is not a log and is not named like one (a `README.md`
    /// beside the logs): reported once and remembered, not retried.
    not_a_log: bool,
}

impl Failure {
    fn unreadable(reason: impl ToString) -> Self {
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

/// Source objects committed (rows and ingested record) by the runs of this
/// process so far: what an interrupted run reports as done.
pub static OBJECTS_COMMITTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The share of keyless requests in one object above which a run warns.
pub(crate) const DEFAULT_MAX_KEYLESS_SHARE: f64 = 0.5;

/// Ingests every object under `options.source` that the lake has not committed yet.
pub(crate) async fn ingest(options: &IngestOptions) -> Result<IngestSummary> {
    let started = Instant::now();
    let run_id = new_run_id();
    let lake = Lake::open_or_create(&options.lake, &options.s3).await?;
    let source = Source::open(&options.source, &options.s3).await?;
    ingest_into(options, &lake, &source, run_id, started).await
}

/// The lake's tables as one run writes them, each handle at the version it
/// last read or committed. A batch merges against a copy, and holds the
/// lock while it commits, so that the run's batches commit to a table one
/// at a time, each on top of the last.
struct Tables {
    requests: tokio::sync::Mutex<deltalake::DeltaTable>,
    rollups: tokio::sync::Mutex<deltalake::DeltaTable>,
    ingested: tokio::sync::Mutex<deltalake::DeltaTable>,
}

impl Tables {
    /// Opens (creating, on a new lake) the three tables, before any data
    /// file is written, so that no reader ever finds files without a log.
    async fn open(lake: &Lake) -> Result<Self> {
        Ok(Self {
            requests: delta::open_or_create(lake, &REQUESTS_TABLE).await?.into(),
            rollups: delta::open_or_create(lake, &ROLLUP_TABLE).await?.into(),
            ingested: delta::open_or_create(lake, &INGESTED_TABLE).await?.into(),
        })
    }

    /// A copy of a table's handle at the newest version this run knows of:
    /// its own last commit (or the version it opened). Not read again from
    /// the log first: another writer's commit since then makes this run's
    /// commit conflict, and the commit reads the newer versions then.
    async fn newest(
        table: &tokio::sync::Mutex<deltalake::DeltaTable>,
    ) -> Result<deltalake::DeltaTable> {
        Ok(table.lock().await.clone())
    }

    /// Keeps a handle that has moved on, so the next batch reads less log.
    async fn keep(table: &tokio::sync::Mutex<deltalake::DeltaTable>, newer: deltalake::DeltaTable) {
        let mut held = table.lock().await;
        if newer.version() > held.version() {
            *held = newer;
        }
    }
}

async fn ingest_into(
    options: &IngestOptions,
    lake: &Lake,
    source: &Source,
    run_id: String,
    started: Instant,
) -> Result<IngestSummary> {
    let tables = Tables::open(lake).await?;
    let rollups_rebuilt = {
        let mut requests = Tables::newest(&tables.requests).await?;
        let mut rollups = Tables::newest(&tables.rollups).await?;
        let rebuilt = rollup::repair(lake, &mut requests, &mut rollups).await?;
        Tables::keep(&tables.requests, requests).await;
        Tables::keep(&tables.rollups, rollups).await;
        if rebuilt > 0 {
            tracing::info!(
                hours = rebuilt,
                "rebuilt the usage_hourly rollup of hours whose rollup was missing"
            );
        }
        rebuilt
    };
    let hasher = KeyHasher::from_env();
    if !hasher.is_keyed() {
        tracing::warn!(
            "api_key_ids are plain SHA-256: anyone with the lake can test guessed keys against them; \
             create lakes with `edgemeter init` and set EDGEMETER_KEY_SECRET or EDGEMETER_KEY_SECRET_FILE"
        );
    }
    crate::lake::keying::check_or_record(lake, &hasher).await?;
    let now = Utc::now();
    let checkpoint = crate::lake::checkpoint::load(lake, &options.source).await?;
    let listing = options.window.listing(checkpoint);
    let crate::source::Listed {
        objects: mut listed,
        problems,
        outside_window,
    } = source.list(&listing).await?;
    // A lake inside the source directory: its own files are not logs.
    let before = listed.len();
    listed.retain(|o| !lake.holds_location(&o.uri));
    let objects_in_lake = (before - listed.len()) as u64;
    if let Some(until) = options.reingest_until {
        // Only objects named for an hour of the range: a name is what ties
        // an object to the hours its rows are in.
        listed.retain(|o| crate::object_names::name_hour(&o.uri).is_some_and(|h| h < until));
    }
    let objects_listed = listed.len() as u64;
    let retry = match options.reingest_until {
        Some(_) => Retry::none(problems),
        None => Retry::load(lake, source, &listed, problems).await?,
    };
    // Objects found not to be logs by an earlier run, unchanged since.
    let before = listed.len();
    listed.retain(|o| !retry.is_remembered_not_a_log(o));
    let remembered_not_logs = (before - listed.len()) as u64;
    listed.extend(retry.refetch.iter().cloned());
    let committed = ingested::load_for(lake, listed.iter().map(|o| o.uri.as_str())).await?;
    let mut summary = IngestSummary {
        run_id: run_id.clone(),
        source: options.source.clone(),
        started_at: now.to_rfc3339_opts(SecondsFormat::Millis, true),
        listing: match (listing, options.reingest_until) {
            (Listing::Since(t), Some(until)) => format!(
                "reingest since {} until {}",
                t.to_rfc3339_opts(SecondsFormat::Secs, true),
                until.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
            (Listing::Full, _) => "full".into(),
            (Listing::Since(t), _) => {
                format!("since {}", t.to_rfc3339_opts(SecondsFormat::Secs, true))
            }
        },
        objects_listed,
        objects_retried: retry.refetch.len() as u64,
        objects_not_logs: remembered_not_logs,
        objects_outside_window: outside_window,
        objects_in_lake,
        rollups_rebuilt,
        ..Default::default()
    };
    for (object, reason) in &retry.failed {
        summary.note_unreadable(object, reason);
    }
    let (pending, done): (Vec<LogObject>, Vec<LogObject>) = listed.into_iter().partition(|o| {
        options.reingest_until.is_some() || committed.get(&o.uri) != Some(&(o.etag.clone(), o.size))
    });
    // When reingesting: the hours that hold rows of each object now.
    let earlier_hours = match options.reingest_until {
        Some(until) => {
            let objects: Vec<&str> = pending.iter().map(|o| o.uri.as_str()).collect();
            Arc::new(hours_holding(lake, &objects, &listing, until).await?)
        }
        None => Arc::default(),
    };
    summary.objects_skipped = done.len() as u64;
    tracing::info!(
        run_id = %run_id,
        listed = summary.objects_listed,
        pending = pending.len(),
        "listed source objects"
    );

    let bar = progress_bar(options.progress, pending.len() as u64);
    // Two stages overlap: while up to COMMITS_IN_FLIGHT batches are merged
    // and committed, the next batches are fetched and parsed. A batch takes
    // one of BATCHES_IN_MEMORY permits before it is fetched and gives it back
    // once it is committed, so at most that many batches are in memory at
    // once, and both stages together keep every core busy even when a batch is
    // a single object (which one core parses). Commits may finish out of order:
    // each records only its own objects, after its own merges.
    let in_memory = Arc::new(Semaphore::new(BATCHES_IN_MEMORY));
    let (parsed_tx, parsed_rx) =
        tokio::sync::mpsc::channel::<(Vec<ObjectOutcome>, OwnedSemaphorePermit)>(BATCHES_IN_MEMORY);
    let produce = async {
        let mut parsed = futures::stream::iter(batches(pending, options.batch_bytes))
            .map(|batch| {
                let (in_memory, hasher, tx) = (in_memory.clone(), &hasher, &parsed_tx);
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
                            fetch_and_parse(source, object, options, hasher.clone(), parts)
                        })
                        .buffered(options.concurrency.max(1))
                        .collect()
                        .await;
                    (outcomes, permit)
                }
            })
            .buffered(BATCHES_IN_MEMORY - 1);
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
        let hour_locks = HourLocks::default();
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
                    // Objects the batch records (not the earlier parts of one).
                    let count = outcomes.iter().filter(|o| o.part.as_ref().is_none_or(|p| p.last)).count() as u64;
                    let mut batch = tally_batch(&run_id, outcomes, options.max_keyless_share, &mut summary);
                    if options.reingest_until.is_some() {
                        batch.replace_earlier_rows(&earlier_hours);
                    }
                    let signals = batch.signals.clone();
                    let (run_id, hour_locks, tables) = (&run_id, &hour_locks, &tables);
                    in_flight.push(async move {
                        let merged = commit_batch(lake, tables, run_id, batch, hour_locks, options.file_limits).await;
                        (merged, permit, count, signals)
                    });
                }
                Some((merged, permit, count, signals)) = in_flight.next() => {
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
    committed?;
    bar.finish_and_clear();
    if let Some(days) = options.retain_days {
        // Never what this run has just written: its days are kept, and
        // reported, until a later run.
        let written: BTreeSet<String> = summary
            .partitions_touched
            .iter()
            .filter_map(|p| layout::dt_of_partition_dir(p))
            .map(str::to_string)
            .collect();
        let retention = crate::lake::retention::drop_older_than(lake, days, now, &written).await?;
        summary.partitions_dropped = retention.dropped;
        summary.partitions_kept_from_retention = retention.kept;
    }
    retry
        .settle(lake, &options.source, &done, &mut summary, now)
        .await?;
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    summary.finished_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    crate::lake::runs::write(lake, &run_id, &summary).await?;
    // The next lookback run lists from this run's start minus the lookback
    // (a reingest lists a range of its own, and moves nothing).
    if options.reingest_until.is_none() {
        crate::lake::checkpoint::save(lake, &options.source, now).await?;
    }
    Ok(summary)
}

/// A parsed batch, tallied into the run's summary and ready to commit.
struct TalliedBatch {
    /// New rows by hour (and, when reingesting, every hour that holds rows
    /// of the objects read again, whether or not they have new rows there).
    by_hour: BTreeMap<i64, Vec<RecordBatch>>,
    /// The batch's readable objects, recorded as ingested by the commit
    /// (an object read in parts, with its last part).
    objects: Vec<IngestedObject>,
    /// Objects whose rows the batch starts (whole objects and first parts).
    first_reads: Vec<String>,
    /// Parts whose object's earlier parts must be committed first: the
    /// earlier parts' semaphore and how many there are.
    waits: Vec<(Arc<Semaphore>, u32)>,
    /// Parts whose commit later parts wait for.
    signals: Vec<Arc<Semaphore>>,
    /// Objects read again whose earlier rows the commit takes out.
    replacing: Arc<std::collections::HashSet<String>>,
}

impl TalliedBatch {
    /// Makes the commit take out the earlier rows of the batch's objects,
    /// in every hour that holds any.
    fn replace_earlier_rows(&mut self, earlier_hours: &HashMap<String, BTreeSet<i64>>) {
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

/// The hours of `requests` that hold rows of each of `objects`. Rows are in
/// the hours their requests happened, which CloudFront names its files for:
/// the days of the range and two either side are searched.
async fn hours_holding(
    lake: &Lake,
    objects: &[&str],
    listing: &Listing,
    until: DateTime<Utc>,
) -> Result<HashMap<String, BTreeSet<i64>>> {
    use datafusion::arrow::array::{Array, AsArray};
    let mut out: HashMap<String, BTreeSet<i64>> = HashMap::new();
    if objects.is_empty() {
        return Ok(out);
    }
    let since = match listing {
        Listing::Since(t) => *t,
        Listing::Full => DateTime::<Utc>::MIN_UTC,
    };
    let day = |t: DateTime<Utc>| t.format("%Y-%m-%d").to_string();
    let margin = chrono::Duration::days(2);
    let session = crate::query::LakeSession::open(lake).await?;
    let names = datafusion::arrow::array::StringArray::from_iter_values(objects.iter().copied());
    let batch = RecordBatch::try_from_iter([(
        "object",
        Arc::new(names) as datafusion::arrow::array::ArrayRef,
    )])?;
    session
        .context()
        .register_batch("reingest_objects", batch)?;
    let sql = format!(
        "SELECT DISTINCT r.source_object, CAST(r.dt AS VARCHAR), CAST(r.hour AS VARCHAR) \
         FROM requests r JOIN reingest_objects o ON r.source_object = o.object \
         WHERE r.dt >= '{}' AND r.dt <= '{}'",
        day(since.checked_sub_signed(margin).unwrap_or(since)),
        day(until.checked_add_signed(margin).unwrap_or(until)),
    );
    let found = session.context().sql(&sql).await?.collect().await?;
    for batch in found {
        let cast = |i: usize| {
            datafusion::arrow::compute::cast(
                batch.column(i),
                &datafusion::arrow::datatypes::DataType::Utf8,
            )
        };
        let (sources, dts, hours) = (cast(0)?, cast(1)?, cast(2)?);
        let (sources, dts, hours) = (
            sources.as_string::<i32>(),
            dts.as_string::<i32>(),
            hours.as_string::<i32>(),
        );
        for row in 0..batch.num_rows() {
            if !(sources.is_valid(row) && dts.is_valid(row) && hours.is_valid(row)) {
                continue;
            }
            let key = [dts.value(row).to_string(), hours.value(row).to_string()];
            if let Some(hour) = layout::hour_of_partition(&key) {
                out.entry(sources.value(row).to_string())
                    .or_default()
                    .insert(hour);
            }
        }
    }
    Ok(out)
}

/// Adds a batch's parse results to the summary, and gathers its rows by hour.
fn tally_batch(
    run_id: &str,
    outcomes: Vec<ObjectOutcome>,
    max_keyless_share: f64,
    summary: &mut IngestSummary,
) -> TalliedBatch {
    let mut by_hour: BTreeMap<i64, Vec<RecordBatch>> = BTreeMap::new();
    let mut objects = Vec::new();
    let mut first_reads = Vec::new();
    let mut waits = Vec::new();
    let mut signals = Vec::new();
    let now_ms = chrono::Utc::now().timestamp_millis();
    for ObjectOutcome {
        object,
        result,
        part,
    } in outcomes
    {
        let last = part.as_ref().is_none_or(|p| p.last);
        if last {
            summary.bytes_read += object.size;
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
                    && counts.keyless as f64 > max_keyless_share * counts.requests as f64
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
            Err(Failure {
                reason,
                not_a_log: true,
            }) => summary.note_not_a_log(&object, &reason),
            Err(Failure { reason, .. }) => summary.note_unreadable(&object.uri, &reason),
        }
    }
    TalliedBatch {
        by_hour,
        objects,
        first_reads,
        waits,
        signals,
        replacing: Arc::default(),
    }
}

/// One lock per hour partition, so that two batches of this run committing at
/// once never merge into the same hour together. Only to save work: were they
/// to, the second commit would conflict and merge again (as it does against
/// other runs).
#[derive(Default)]
struct HourLocks(std::sync::Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>);

impl HourLocks {
    fn of(&self, hour: i64) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .0
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
async fn commit_batch(
    lake: &Lake,
    tables: &Tables,
    run_id: &str,
    mut batch: TalliedBatch,
    hour_locks: &HourLocks,
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
    let locks: Vec<_> = batch
        .by_hour
        .keys()
        .map(|&hour| hour_locks.of(hour))
        .collect();
    let mut held = Vec::with_capacity(locks.len());
    for lock in &locks {
        held.push(lock.lock().await);
    }
    let mut requests = Tables::newest(&tables.requests).await?;
    let mut merges: BTreeMap<i64, HourMerge> = BTreeMap::new();
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
        return Err(crate::error::Error::Lake(format!(
            "requests: gave up committing after {} attempts, each beaten by another writer",
            delta::MAX_ATTEMPTS
        )));
    };
    drop(held);
    let hours: Vec<HourRollup> = merges
        .values()
        .filter_map(|m| {
            m.rollup.clone().map(|file| HourRollup {
                hour: m.hour,
                requests_files: m.files_after.clone(),
                file,
            })
        })
        .collect();
    // The rollups and the record are small: each is committed with the
    // run's other batches waiting, so that they never conflict either.
    rollup::commit(
        lake,
        &mut requests,
        &mut *tables.rollups.lock().await,
        hours,
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
/// read (all of them, the first time).
async fn remerge_changed(
    lake: &Lake,
    by_hour: &BTreeMap<i64, Vec<RecordBatch>>,
    replacing: &Arc<std::collections::HashSet<String>>,
    files: &BTreeMap<Vec<String>, Vec<delta::DataFile>>,
    merges: &mut BTreeMap<i64, HourMerge>,
    limits: partition::FileLimits,
) -> Result<()> {
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
        let merge = merge_hour(
            lake,
            &REQUESTS_TABLE,
            hour,
            current,
            rows.clone(),
            replacing.clone(),
            limits,
        )
        .await?;
        merges.insert(hour, merge);
    }
    Ok(())
}

async fn discard_all(lake: &Lake, merges: &BTreeMap<i64, HourMerge>) {
    for merge in merges.values() {
        partition::discard(lake, &merge.written).await;
    }
}

/// Where the parts of an object read in parts go: each takes a batch permit
/// and goes to the committing stage as a batch of its own.
#[derive(Clone, Copy)]
struct PartSink<'a> {
    in_memory: &'a Arc<Semaphore>,
    tx: &'a tokio::sync::mpsc::Sender<(Vec<ObjectOutcome>, OwnedSemaphorePermit)>,
}

/// Fetches and parses an object. One of more than `part_bytes` of log text
/// is parsed a part at a time: every part but the last is sent on to be
/// committed as soon as it is parsed; the outcome returned is the last.
async fn fetch_and_parse(
    source: &Source,
    object: LogObject,
    options: &IngestOptions,
    hasher: KeyHasher,
    parts: PartSink<'_>,
) -> ObjectOutcome {
    let data = match source.fetch(&object).await {
        Ok(data) => data,
        Err(e) => {
            return ObjectOutcome {
                object,
                result: Err(Failure::unreadable(e)),
                part: None,
            };
        }
    };
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
        let Ok(permit) = parts.in_memory.clone().acquire_owned().await else {
            unreachable!("the batch semaphore is never closed")
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

/// Splits objects into consecutive batches of about `max_bytes` (compressed).
fn batches(objects: Vec<LogObject>, max_bytes: u64) -> Vec<Vec<LogObject>> {
    let mut out: Vec<Vec<LogObject>> = Vec::new();
    let mut size = 0u64;
    for object in objects {
        if out.is_empty() || size + object.size > max_bytes && !out[out.len() - 1].is_empty() {
            out.push(Vec::new());
            size = 0;
        }
        size += object.size;
        if let Some(last) = out.last_mut() {
            last.push(object);
        }
    }
    out
}

fn progress_bar(enabled: bool, objects: u64) -> ProgressBar {
    use std::io::IsTerminal;
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(objects);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {pos}/{len} objects [{bar:40}] {elapsed_precise} (eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// A run id that sorts by start time.
pub(crate) fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", now.format("%Y%m%dT%H%M%S%.3fZ"), &suffix[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(uri: &str, size: u64) -> LogObject {
        LogObject {
            uri: uri.into(),
            etag: String::new(),
            size,
        }
    }

    #[test]
    fn batches_split_by_size_and_keep_order() {
        let got = batches(
            vec![obj("a", 6), obj("b", 5), obj("c", 20), obj("d", 1)],
            10,
        );
        let names: Vec<Vec<&str>> = got
            .iter()
            .map(|b| b.iter().map(|o| o.uri.as_str()).collect())
            .collect();
        assert_eq!(names, vec![vec!["a"], vec!["b"], vec!["c"], vec!["d"]]);
        let got = batches(vec![obj("a", 3), obj("b", 3), obj("c", 3)], 10);
        assert_eq!(got.len(), 1);
    }
}
