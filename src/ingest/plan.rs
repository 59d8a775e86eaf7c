//! Planning a run, before anything is fetched: the source is listed from the
//! checkpoint (or as the window says), the lake's own files and objects
//! remembered not to be logs are left out, objects of the retry record are
//! added, and what the ingested record holds already, unchanged, is skipped.
//! When reingesting, the hours holding the objects' earlier rows are found.

use super::summary::IngestSummary;
use super::{IngestOptions, Window};
use crate::error::Result;
use crate::lake::Lake;
use crate::lake::ingested;
use crate::lake::layout;
use crate::lake::unreadable::Unreadable;
use crate::source::{Listing, LogObject, Source};
use crate::time::Hour;
use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::arrow::array::RecordBatch;
use futures::StreamExt;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What a run reads, and the summary it starts with.
pub(super) struct Plan {
    pub(super) summary: IngestSummary,
    /// The objects to read, in order (those of the retry record last).
    pub(super) pending: Vec<LogObject>,
    /// Listed objects the ingested record holds already, unchanged since.
    pub(super) done: Vec<LogObject>,
    pub(super) retry: Retry,
    /// When reingesting: the hours that hold rows of each pending object now.
    pub(super) earlier_hours: Arc<HashMap<String, BTreeSet<Hour>>>,
}

/// Lists the source and decides what the run reads.
pub(super) async fn plan(
    options: &IngestOptions,
    lake: &Lake,
    source: &Source,
    run_id: &str,
    now: DateTime<Utc>,
    rollups_rebuilt: u64,
) -> Result<Plan> {
    let checkpoint = crate::lake::checkpoint::load(lake, &options.source, options.shard).await?;
    let listing = options.window.listing(checkpoint);
    let crate::source::Listed {
        objects: mut listed,
        problems,
        outside_window,
    } = source.list(&listing, now).await?;
    // A lake inside the source directory: its own files are not logs.
    let before = listed.len();
    listed.retain(|o| !lake.holds_location(&o.uri));
    let objects_in_lake = (before - listed.len()) as u64;
    if let Some(until) = options.reingest_until {
        // Only objects named for an hour of the range: a name is what ties
        // an object to the hours its rows are in.
        listed.retain(|o| {
            crate::object_names::name_hour(&o.uri)
                .and_then(Hour::start)
                .is_some_and(|h| h < until)
        });
    }
    // A sharded worker: only its shard's objects (and retries, below).
    let in_shard = |uri: &str| options.shard.is_none_or(|s| s.holds(source.name_of(uri)));
    let before = listed.len();
    listed.retain(|o| in_shard(&o.uri));
    let objects_other_shards = (before - listed.len()) as u64;
    let objects_listed = listed.len() as u64;
    let retry = match options.reingest_until {
        Some(_) => Retry::none(problems),
        None => Retry::load(lake, source, &options.source, &in_shard, &listed, problems).await?,
    };
    // Objects found not to be logs by an earlier run, unchanged since.
    let before = listed.len();
    listed.retain(|o| !retry.is_remembered_not_a_log(o));
    let remembered_not_logs = (before - listed.len()) as u64;
    listed.extend(retry.refetch.iter().cloned());
    let uris: Vec<&str> = listed.iter().map(|o| o.uri.as_str()).collect();
    let committed = ingested::load_for(lake, &uris).await?;
    let mut summary = IngestSummary {
        run_id: run_id.to_string(),
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
        shard: options.shard.map(|s| s.to_string()),
        objects_other_shards,
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
    Ok(Plan {
        summary,
        pending,
        done,
        retry,
        earlier_hours,
    })
}

/// The retry record as one run uses it.
pub(super) struct Retry {
    /// Unacknowledged objects of this source, by location.
    records: HashMap<String, Unreadable>,
    /// Acknowledged objects of this source: their failures do not make a run partial.
    acknowledged: HashMap<String, Unreadable>,
    /// Recorded objects outside this run's listing, fetched again.
    pub(super) refetch: Vec<LogObject>,
    /// Recorded or listed objects that could not even be reached.
    pub(super) failed: Vec<(String, String)>,
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

    /// The record's entry for an object, as the run found it at its start.
    pub(super) fn previous(&self, object: &str) -> Option<&Unreadable> {
        self.records
            .get(object)
            .or_else(|| self.acknowledged.get(object))
    }

    /// Objects of the record fetched again by this run.
    pub(super) fn take_refetch(&mut self) -> Vec<LogObject> {
        std::mem::take(&mut self.refetch)
    }

    /// True when an earlier run found this object, as it is now, not to be a log.
    fn is_remembered_not_a_log(&self, object: &LogObject) -> bool {
        self.acknowledged
            .get(&object.uri)
            .is_some_and(|r| r.not_a_log && r.etag.as_deref() == Some(object.etag.as_str()))
    }

    /// The record's objects under `source` (or recorded by a source named
    /// `source_name`: a queue's objects lie under no prefix) that this run
    /// must try again.
    pub(super) async fn load(
        lake: &Lake,
        source: &Source,
        source_name: &str,
        in_shard: &dyn Fn(&str) -> bool,
        listed: &[LogObject],
        problems: Vec<(String, String)>,
    ) -> Result<Self> {
        let (acknowledged, records): (HashMap<_, _>, HashMap<_, _>) =
            crate::lake::unreadable::load(lake)
                .await?
                .into_iter()
                .filter(|r| {
                    (source.holds(&r.object) || r.source == source_name) && in_shard(&r.object)
                })
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
    pub(super) async fn settle(
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
            let previous = self.previous(object);
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

/// The hours of `requests` that hold rows of each of `objects`. Rows are in
/// the hours their requests happened, which CloudFront names its files for:
/// the days of the range and two either side are searched.
async fn hours_holding(
    lake: &Lake,
    objects: &[&str],
    listing: &Listing,
    until: DateTime<Utc>,
) -> Result<HashMap<String, BTreeSet<Hour>>> {
    use datafusion::arrow::array::{Array, AsArray};
    let mut out: HashMap<String, BTreeSet<Hour>> = HashMap::new();
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

/// What a window lists, given the source's checkpoint.
impl Window {
    fn listing(&self, checkpoint: Option<DateTime<Utc>>) -> Listing {
        match (*self, checkpoint) {
            (Window::Full, _) | (Window::Lookback(_), None) => Listing::Full,
            (Window::Lookback(d), Some(listed_at)) => {
                let since = listed_at - chrono::Duration::seconds(d.as_secs() as i64);
                Listing::Since(Hour::of(since).start().unwrap_or(since))
            }
            (Window::Since(t), _) => Listing::Since(t),
        }
    }
}
