//! `edgemeter ingest`: list new log objects, fetch them concurrently, parse them
//! on CPU threads, merge their rows into hour partitions and commit each batch
//! to the `requests` Delta table in one commit, then its rollups, then the
//! objects to the ingested record. See the design section of the README for
//! why this order keeps every request counted exactly once, with any number
//! of runs writing the same lake at once.
//!
//! [`ingest`] runs the steps in order, one file each: `plan` (the checkpoint,
//! the listing, what the lake has committed already), `fetch`, `decode`
//! (`format` decides each object's format and parses it into rows), `commit`
//! (rows merged into their hours and committed, objects recorded as
//! ingested); `pipeline` overlaps fetching and parsing with committing;
//! `summary` is what the run reports. A queue of S3 event notifications
//! (`--source sqs://…`) stands in for the listing in `queue`, which deletes
//! each message once the objects it names are recorded.

mod commit;
mod decode;
mod fetch;
mod pipeline;
mod plan;
mod queue;
pub(crate) mod summary;

pub(crate) use summary::IngestSummary;

use crate::aws::S3Settings;
use crate::error::Result;
use crate::format::ParseOptions;
use crate::key::KeyHasher;
use crate::lake::Lake;
use crate::lake::layout;
use crate::source::{LogObject, Source};
use crate::time::Clock;
use chrono::{DateTime, SecondsFormat, Utc};
use commit::Tables;
use indicatif::{ProgressBar, ProgressStyle};
use pipeline::Pipeline;
use plan::{Plan, Retry};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

/// Ingests every object under `options.source` that the lake has not committed yet.
/// An `sqs://` source reads the objects its queue's notifications name
/// instead (see `queue`).
pub(crate) async fn ingest(options: &IngestOptions) -> Result<IngestSummary> {
    let started = Instant::now();
    if options.low_memory {
        crate::memory::return_freed_memory();
    }
    let run_id = new_run_id(options.clock.now());
    let queue = crate::source::sqs::QueueUrl::of_source(&options.source).transpose()?;
    let lake = Lake::open_or_create(&options.lake, &options.s3).await?;
    if let Some(queue) = queue {
        return queue::ingest_queue(options, &lake, &queue, run_id, started).await;
    }
    let source = Source::open(&options.source, &options.s3).await?;
    ingest_into(options, &lake, &source, run_id, started).await
}

async fn ingest_into(
    options: &IngestOptions,
    lake: &Lake,
    source: &Source,
    run_id: String,
    started: Instant,
) -> Result<IngestSummary> {
    let (tables, rollups_rebuilt, hasher) = prepare(lake).await?;
    let now = options.clock.now();
    let Plan {
        mut summary,
        pending,
        done,
        retry,
        earlier_hours,
    } = plan::plan(options, lake, source, &run_id, now, rollups_rebuilt).await?;
    let input_bytes: u64 = pending.iter().map(|object| object.size).sum();
    if !options.low_memory && input_bytes >= crate::memory::HUGE_PAGES_FROM_BYTES {
        crate::memory::with_huge_pages();
    }

    let bar = progress_bar(options.progress, pending.len() as u64);
    let pipeline = Pipeline {
        options,
        lake,
        source,
        run_id: &run_id,
        tables: &tables,
        hasher: &hasher,
        earlier_hours: &earlier_hours,
        bar: &bar,
    };
    let batches = futures::stream::iter(batches(pending, options.batch_bytes));
    pipeline
        .run(batches, &mut summary, &pipeline::Unobserved)
        .await?;
    bar.finish_and_clear();
    let finish = Finish {
        retry: &retry,
        already_ingested: &done,
        now,
        started,
        // The next lookback run lists from this run's start minus the
        // lookback (a reingest lists a range of its own, and moves nothing).
        save_checkpoint: options.reingest_until.is_none(),
    };
    finish.run(options, lake, summary).await
}

/// Opens the lake's tables for a run: rollups left stale by a stopped run
/// rebuilt (how many hours), the key hashing checked against the lake's.
async fn prepare(lake: &Lake) -> Result<(Tables, u64, KeyHasher)> {
    let tables = Tables::open(lake).await?;
    let rollups_rebuilt = commit::repair_rollups(lake, &tables).await?;
    let hasher = KeyHasher::from_env();
    if !hasher.is_keyed() {
        tracing::warn!(
            "api_key_ids are plain SHA-256: anyone with the lake can test guessed keys against them; \
             create lakes with `edgemeter init` and set EDGEMETER_KEY_SECRET or EDGEMETER_KEY_SECRET_FILE"
        );
    }
    crate::lake::keying::check_or_record(lake, hasher.fingerprint()).await?;
    Ok((tables, rollups_rebuilt, hasher))
}

/// The end of a run, once its batches are committed: retention, the retry
/// record settled, the run record written, the listing recorded.
struct Finish<'a> {
    retry: &'a Retry,
    /// Objects found in the ingested record already, unchanged.
    already_ingested: &'a [LogObject],
    /// When the run started, by its clock and by the monotonic one.
    now: DateTime<Utc>,
    started: Instant,
    /// Whether the run listed its source, so the next lists from here.
    save_checkpoint: bool,
}

impl Finish<'_> {
    async fn run(
        self,
        options: &IngestOptions,
        lake: &Lake,
        mut summary: IngestSummary,
    ) -> Result<IngestSummary> {
        let now = self.now;
        if let Some(days) = options.retain_days {
            // Never what this run has just written: its days are kept, and
            // reported, until a later run.
            let written: BTreeSet<String> = summary
                .partitions_touched
                .iter()
                .filter_map(|p| layout::dt_of_partition_dir(p))
                .map(str::to_string)
                .collect();
            let retention =
                crate::lake::retention::drop_older_than(lake, days, now, &written).await?;
            summary.partitions_dropped = retention.dropped;
            summary.partitions_kept_from_retention = retention.kept;
        }
        // Day rollups of the days that lack one (those this run wrote to,
        // hours it rebuilt, a lake made before them), after retention so
        // that none is made for a day just dropped. They only speed reads
        // up: one that cannot be written now is a warning, the days are read
        // from their hourly rollups, and the next run or `maintain` tries
        // again.
        summary.day_rollups_written = match crate::lake::daily::roll_up(lake).await {
            Ok(written) => written,
            Err(e) => {
                tracing::warn!("day rollups not written this run: {e}");
                0
            }
        };
        // The plans file's meters kept per day, likewise only a speed-up:
        // a day without a current file is read from raw rows.
        if let Some(meters) = &options.meters {
            let streams = match options.low_memory {
                true => crate::billing::meter_days::Streams::One,
                false => crate::billing::meter_days::Streams::PerCore,
            };
            summary.meter_days_written =
                match crate::billing::meter_days::write(lake, meters, streams).await {
                    Ok(written) => written,
                    Err(e) => {
                        tracing::warn!("meters kept per day not written this run: {e}");
                        0
                    }
                };
        }
        self.retry
            .settle(
                lake,
                &options.source,
                self.already_ingested,
                &mut summary,
                now,
            )
            .await?;
        summary.elapsed_ms = self.started.elapsed().as_millis() as u64;
        summary.finished_at = options
            .clock
            .now()
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        crate::lake::runs::write(lake, &summary.run_id, &summary).await?;
        if self.save_checkpoint {
            crate::lake::checkpoint::save(lake, &options.source, options.shard, now).await?;
        }
        Ok(summary)
    }
}

/// Splits objects into consecutive batches of about `max_bytes` (compressed),
/// keeping together the objects named for one hour where they fit in a
/// batch. A listing gives an hour's objects one after another (their names
/// share the hour), and every batch that touches an hour merges it again: a
/// busy distribution's 40 small objects an hour, cut by size alone, left
/// nearly every hour in two batches, merged twice. An hour larger than a
/// batch is still cut by size, and objects whose names carry no hour are
/// batched by size alone.
fn batches(objects: Vec<LogObject>, max_bytes: u64) -> Vec<Vec<LogObject>> {
    // Runs of consecutive objects named for the same hour, with their size.
    let mut runs: Vec<(u64, Vec<LogObject>)> = Vec::new();
    let mut last_hour = None;
    for object in objects {
        let hour = crate::object_names::name_hour(&object.uri);
        match runs.last_mut() {
            Some((size, run)) if hour.is_some() && hour == last_hour => {
                *size += object.size;
                run.push(object);
            }
            _ => runs.push((object.size, vec![object])),
        }
        last_hour = hour;
    }
    let mut out: Vec<Vec<LogObject>> = Vec::new();
    let mut batch = Vec::new();
    let mut size = 0u64;
    for (run_size, run) in runs {
        if !batch.is_empty() && size + run_size > max_bytes {
            out.push(std::mem::take(&mut batch));
            size = 0;
        }
        for object in run {
            if !batch.is_empty() && size + object.size > max_bytes {
                out.push(std::mem::take(&mut batch));
                size = 0;
            }
            size += object.size;
            batch.push(object);
        }
    }
    if !batch.is_empty() {
        out.push(batch);
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
fn new_run_id(now: DateTime<Utc>) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", now.format("%Y%m%dT%H%M%S%.3fZ"), &suffix[..8])
}

/// Default [`IngestOptions::part_bytes`]: CloudFront's own objects stay far
/// below it (a busy distribution writes many objects an hour rather than
/// large ones), so nearly every object is one part.
pub(crate) const DEFAULT_PART_BYTES: u64 = 128 << 20;

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
    /// `--low-memory`: two batches in memory instead of three, and the
    /// allocator returns freed memory at once (its other effects are the
    /// defaults of the sizes above).
    pub(crate) low_memory: bool,
    /// The meters of `--plans`, kept per day after each run.
    pub(crate) meters: Option<Arc<crate::billing::meters::Meters>>,
    /// How large one data file of an hour may grow.
    pub(crate) file_limits: crate::lake::partition::FileLimits,
    /// Which objects to list.
    pub(crate) window: Window,
    /// Only the objects of this shard of the source.
    pub(crate) shard: Option<crate::source::shard::Shard>,
    /// Drop `requests` partitions older than this many days (UTC dates).
    pub(crate) retain_days: Option<u32>,
    /// Objects with a larger share of keyless requests make the run partial.
    pub(crate) max_keyless_share: f64,
    /// Show a progress bar (on a terminal).
    pub(crate) progress: bool,
    /// Read the objects named for hours up to this one (exclusive) again,
    /// from `window`'s `Since`, replacing their rows (`edgemeter reingest`).
    pub(crate) reingest_until: Option<DateTime<Utc>>,
    /// How a queue of notifications is read (for `sqs://` sources).
    pub(crate) queue: QueueOptions,
    /// Where "now" comes from: the run's id and start, the time the listing
    /// is recorded at (which the next lookback run lists from), retention's
    /// cut-off and the ingested record's times. The system clock; a fixed
    /// one in tests.
    pub(crate) clock: Arc<dyn Clock>,
}

/// How an `sqs://` source's queue is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueueOptions {
    /// Where messages whose objects cannot be read (or that are no
    /// notifications) are sent, before they are deleted; without one they
    /// are left to the queue's redrive policy.
    pub(crate) dead_letter_queue: Option<String>,
    /// Stop receiving after this many messages (the run still finishes
    /// those it received).
    pub(crate) max_messages: Option<u64>,
    /// Seconds one receive waits for a message (long polling, at most 20):
    /// the run ends after a receive that found none.
    pub(crate) wait_secs: u32,
}

/// Default [`QueueOptions::wait_secs`]: SQS's longest long poll.
pub(crate) const DEFAULT_WAIT_SECS: u32 = crate::source::sqs::MAX_WAIT_SECS;

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            dead_letter_queue: None,
            max_messages: None,
            wait_secs: DEFAULT_WAIT_SECS,
        }
    }
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

/// Source objects committed (rows and ingested record) by the runs of this
/// process so far: what an interrupted run reports as done.
pub static OBJECTS_COMMITTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The share of keyless requests in one object above which a run warns.
pub(crate) const DEFAULT_MAX_KEYLESS_SHARE: f64 = 0.5;

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

    #[test]
    fn batches_keep_an_hours_objects_together() {
        let name = |hour: u32, i: u32| format!("logs/E2X.2025-10-01-{hour:02}.{i:08x}.gz");
        // Hours of 4 objects of 3 bytes (12 bytes each), batches of 20: by
        // size alone the second batch would start inside hour 1; here each
        // batch holds one whole hour.
        let objects: Vec<LogObject> = (0..3)
            .flat_map(|hour| (0..4).map(move |i| (hour, i)))
            .map(|(hour, i)| obj(&name(hour, i), 3))
            .collect();
        let got = batches(objects, 20);
        let hours: Vec<Vec<u32>> = got
            .iter()
            .map(|b| {
                b.iter()
                    .map(|o| o.uri[20..22].parse::<u32>().unwrap())
                    .collect()
            })
            .collect();
        assert_eq!(hours, vec![vec![0; 4], vec![1; 4], vec![2; 4]]);
        // Small hours share a batch; an hour larger than a batch is cut by size.
        let mut objects = vec![obj(&name(0, 0), 2), obj(&name(1, 0), 2)];
        objects.extend((0..5).map(|i| obj(&name(2, i), 6)));
        let sizes: Vec<usize> = batches(objects, 20).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 3, 2]);
    }

    /// A log object of 2025-10-05 named for `hour`, with `n` requests.
    fn write_log(dir: &std::path::Path, hour: u32, name: &str, n: u32) {
        use std::io::Write;
        let mut text = String::from(
            "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) \
             cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) \
             x-edge-result-type x-edge-request-id\n",
        );
        for i in 0..n {
            text.push_str(&format!(
                "2025-10-05\t{hour:02}:{i:02}:00\tLAX1\t100\t192.0.2.1\tGET\td.cloudfront.net\t/v1\t200\t-\tcurl\tapi_key=ak_clock_test\t-\tMiss\t{name}{hour}r{i}==\n"
            ));
        }
        let file =
            std::fs::File::create(dir.join(format!("E2CLOCK.2025-10-05-{hour:02}.{name}.gz")))
                .unwrap();
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap();
    }

    /// Default settings for a run from `dir/logs` into `dir/lake`.
    fn test_options(dir: &std::path::Path, window: Window, clock: Arc<dyn Clock>) -> IngestOptions {
        IngestOptions {
            source: dir.join("logs").to_str().unwrap().into(),
            lake: dir.join("lake").to_str().unwrap().into(),
            s3: S3Settings::default(),
            parse: ParseOptions {
                key_sources: crate::key::default_sources(),
                format: crate::format::LogFormat::Auto,
                max_line_bytes: crate::format::DEFAULT_MAX_LINE_BYTES,
            },
            concurrency: 2,
            batch_bytes: 8 << 20,
            max_object_bytes: 1 << 30,
            part_bytes: DEFAULT_PART_BYTES,
            low_memory: false,
            meters: None,
            file_limits: Default::default(),
            window,
            shard: None,
            retain_days: None,
            max_keyless_share: DEFAULT_MAX_KEYLESS_SHARE,
            progress: false,
            reingest_until: None,
            queue: QueueOptions::default(),
            clock,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_lookback_counts_from_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("logs");
        std::fs::create_dir(&source).unwrap();
        for (hour, name) in [(8, "a"), (11, "b"), (13, "c")] {
            write_log(&source, hour, name, 3);
        }
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        let mut options = test_options(
            dir.path(),
            Window::Lookback(std::time::Duration::from_secs(3 * 3600)),
            Arc::new(crate::time::FixedClock(at("2025-10-05T13:30:00Z"))),
        );
        // Never listed to the end before: everything is read.
        let first = ingest(&options).await.unwrap();
        assert_eq!(first.listing, "full");
        assert_eq!((first.objects_ingested, first.requests), (3, 9));
        assert_eq!(first.started_at, "2025-10-05T13:30:00.000Z");
        assert!(
            first.run_id.starts_with("20251005T133000.000Z-"),
            "{}",
            first.run_id
        );

        // An hour later by the clock, a late object named for 08:00 and a new
        // one for 14:00 arrive. The run lists from 3 hours before the last
        // listing (13:30), from 10:00 on: the 08:00 objects are outside its
        // window, the 11:00 and 13:00 ones are already in the lake.
        write_log(&source, 8, "late", 2);
        write_log(&source, 14, "d", 4);
        options.clock = Arc::new(crate::time::FixedClock(at("2025-10-05T14:30:00Z")));
        let second = ingest(&options).await.unwrap();
        assert_eq!(second.listing, "since 2025-10-05T10:00:00Z");
        assert_eq!(
            (
                second.objects_listed,
                second.objects_skipped,
                second.objects_ingested,
                second.objects_outside_window,
                second.requests
            ),
            (3, 2, 1, 2, 4)
        );
        assert_eq!(second.finished_at, "2025-10-05T14:30:00.000Z");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn vacuum_keeps_a_week_of_versions_by_the_clock() {
        use crate::lake::maintain::{MaintainOptions, maintain};
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("logs");
        std::fs::create_dir(&source).unwrap();
        write_log(&source, 13, "c", 3);
        let options = test_options(dir.path(), Window::Full, Arc::new(crate::time::SystemClock));
        ingest(&options).await.unwrap();
        // A late object for the same hour: the hour's requests file and its
        // rollup are replaced (each removed now, by the wall clock).
        write_log(&source, 13, "late", 2);
        assert_eq!(ingest(&options).await.unwrap().requests, 2);
        let lake = Lake::open(&options.lake, &options.s3).await.unwrap();
        let vacuumed = |days: i64| {
            let maintain_options = MaintainOptions {
                retain_versions: chrono::Duration::days(7),
                retain_days: None,
                clock: Arc::new(crate::time::FixedClock(
                    Utc::now() + chrono::Duration::days(days),
                )),
            };
            let lake = &lake;
            async move {
                let summary = maintain(lake, &maintain_options).await.unwrap();
                let mut got = summary.files_vacuumed;
                got.sort();
                got
            }
        };
        let named = |counts: [u64; 7]| {
            let tables = [
                "_edgemeter/ingested",
                "requests",
                "usage_hourly",
                "usage_hourly_keys",
                "usage_daily",
                "usage_daily_keys",
                "usage_daily_totals",
            ];
            let mut want: Vec<(String, u64)> =
                tables.into_iter().map(String::from).zip(counts).collect();
            want.sort();
            want
        };
        // Six days on, every removed file is still needed by a version of the
        // last week. (This maintenance folds the ingested record's two files
        // of the day into one, removing both.)
        assert_eq!(vacuumed(6).await, named([0; 7]));
        // Eight days on, the files removed more than a week before are gone:
        // the hour's first requests file, its two rollups, the day's two
        // day rollups and its totals, and the record's two.
        assert_eq!(vacuumed(8).await, named([2, 1, 1, 1, 1, 1, 1]));
        let hour_dir = dir.path().join("lake/requests/dt=2025-10-05/hour=13");
        let files = std::fs::read_dir(hour_dir).unwrap().count();
        assert_eq!(files, 1);
    }
}
