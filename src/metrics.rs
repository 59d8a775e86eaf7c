//! Prometheus text-format metrics of the last run, for schedulers and
//! node-exporter's textfile collector.

use crate::error::{Error, Result};
use crate::ingest::IngestSummary;
use std::fmt::Write;
use std::path::Path;

/// Writes the metrics of a run (all its sources summed) to `path`, atomically.
/// `edgemeter_last_success_timestamp_seconds` moves only when the run fully
/// succeeded; otherwise the previous value is kept.
pub(crate) fn write(path: &Path, summaries: &[IngestSummary], success: bool) -> Result<()> {
    let sum = |f: fn(&IngestSummary) -> u64| summaries.iter().map(f).sum::<u64>();
    let now = chrono::Utc::now().timestamp();
    let last_success = if success {
        Some(now)
    } else {
        previous_last_success(path)
    };
    let mut out = String::new();
    let mut metric = |name: &str, help: &str, value: String| {
        let _ = writeln!(out, "# HELP edgemeter_{name} {help}");
        let _ = writeln!(out, "# TYPE edgemeter_{name} gauge");
        let _ = writeln!(out, "edgemeter_{name} {value}");
    };
    metric(
        "objects_ingested",
        "Source objects ingested by the last run.",
        sum(|s| s.objects_ingested).to_string(),
    );
    metric(
        "objects_skipped",
        "Source objects already ingested, skipped by the last run.",
        sum(|s| s.objects_skipped).to_string(),
    );
    metric(
        "objects_unreadable",
        "Source objects the last run could not read.",
        sum(|s| s.objects_unreadable).to_string(),
    );
    metric(
        "objects_outside_window",
        "Source objects named for hours before the last run's listing window, left out.",
        sum(|s| s.objects_outside_window).to_string(),
    );
    metric(
        "objects_not_logs",
        "Source objects that are not logs (and not named like logs), skipped by the last run.",
        sum(|s| s.objects_not_logs).to_string(),
    );
    metric(
        "keyless_requests",
        "Requests without an API key in the last run.",
        sum(|s| s.keyless_requests).to_string(),
    );
    metric(
        "bytes_read",
        "Compressed bytes read by the last run.",
        sum(|s| s.bytes_read).to_string(),
    );
    metric(
        "lines",
        "Log lines read by the last run.",
        sum(|s| s.lines).to_string(),
    );
    metric(
        "bad_lines",
        "Malformed log lines in the last run.",
        sum(|s| s.bad_lines).to_string(),
    );
    metric(
        "field_errors",
        "Damaged values in requests of the last run, stored as null.",
        sum(|s| s.field_errors).to_string(),
    );
    metric(
        "rows_written",
        "Rows written to the lake by the last run.",
        sum(|s| s.rows_written).to_string(),
    );
    metric(
        "duplicates",
        "Requests of the last run already in the lake.",
        sum(|s| s.duplicates).to_string(),
    );
    if summaries.iter().any(|s| s.queue.is_some()) {
        let queue = |f: fn(&crate::ingest::summary::QueueSummary) -> u64| {
            summaries
                .iter()
                .filter_map(|s| s.queue.as_ref())
                .map(f)
                .sum::<u64>()
                .to_string()
        };
        metric(
            "queue_messages_received",
            "Notification messages the last run received from its queues.",
            queue(|q| q.messages_received),
        );
        metric(
            "queue_messages_deleted",
            "Messages the last run deleted, their objects recorded as ingested (or naming none).",
            queue(|q| q.messages_deleted),
        );
        metric(
            "queue_messages_dead_lettered",
            "Messages the last run sent to the dead-letter queue.",
            queue(|q| q.messages_dead_lettered),
        );
        metric(
            "queue_messages_malformed",
            "Messages of the last run that were no S3 event notifications.",
            queue(|q| q.malformed.len() as u64),
        );
    }
    metric(
        "duration_seconds",
        "Wall time of the last run.",
        format!("{:.3}", sum(|s| s.elapsed_ms) as f64 / 1000.0),
    );
    metric(
        "last_run_timestamp_seconds",
        "When the last run finished.",
        now.to_string(),
    );
    if let Some(t) = last_success {
        metric(
            "last_success_timestamp_seconds",
            "When a run last finished with every object read.",
            t.to_string(),
        );
    }
    let tmp = path.with_extension("prom.tmp");
    std::fs::write(&tmp, out).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn previous_last_success(path: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("edgemeter_last_success_timestamp_seconds "))
        .and_then(|v| v.trim().parse().ok())
}
