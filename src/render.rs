//! Human-readable output: the text the commands print for people (summaries,
//! reports of what was done), as pure functions of the values the library
//! returns. Tables of rows are `query::output`'s; JSON is serde's.

use crate::alerts::CheckReport;
use crate::export::ExportReport;
use crate::ingest::IngestSummary;
use crate::lake::maintain::MaintainSummary;
use crate::lake::migrate::MigrateSummary;
use crate::query::library::NamedQuery;
use std::fmt::Write;
use std::path::Path;

/// A byte count in the unit that suits it: `512 B`, `1.5 KiB`, `12.3 MiB`.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// "1 object", "2 objects".
pub(crate) fn plural(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        _ => format!("{n} {noun}s"),
    }
}

/// The meters of a plans file: one block per meter, built-in ones first.
pub(crate) fn meters(plans: &crate::billing::plans::Plans) -> String {
    let mut out = String::new();
    for meter in plans.meters.iter() {
        let what = match meter.value {
            Some(value) => format!("{}({value})", meter.aggregation.name()),
            None => meter.aggregation.name().to_string(),
        };
        let kind = if meter.builtin { "  (built-in)" } else { "" };
        let _ = writeln!(out, "{}: {what}{kind}", meter.slug);
        if !meter.description.is_empty() {
            let _ = writeln!(out, "  {}", meter.description);
        }
        let f = &meter.filter;
        let list = |values: &[String]| values.join(", ");
        let globs: Vec<String> = f.endpoint.iter().map(|g| g.glob.clone()).collect();
        let status = f.status.as_ref().map(|s| {
            s.0.iter()
                .map(|(lo, hi)| match (lo, hi) {
                    (lo, hi) if lo == hi => lo.to_string(),
                    (lo, hi) if lo % 100 == 0 && *hi == lo + 99 => format!("{}xx", lo / 100),
                    (lo, hi) => format!("{lo}-{hi}"),
                })
                .collect::<Vec<_>>()
                .join(",")
        });
        for (name, values) in [
            ("endpoint", list(&globs)),
            ("method", list(&f.method)),
            ("status", status.unwrap_or_default()),
            ("host", list(&f.host)),
            ("edge", list(&f.edge)),
            ("result_type", list(&f.result_type)),
            ("protocol", list(&f.protocol)),
            ("content_type", list(&f.content_type)),
        ] {
            if !values.is_empty() {
                let _ = writeln!(out, "  {name:<13}{values}");
            }
        }
        let charged: Vec<&str> = plans
            .plans
            .values()
            .filter(|p| p.charges.contains_key(&meter.slug))
            .map(|p| p.name.as_str())
            .collect();
        if !charged.is_empty() {
            let _ = writeln!(out, "  {:<13}{}", "charged in", charged.join(", "));
        }
    }
    out
}

/// The human-readable run summary.
pub(crate) fn ingest_summary(s: &IngestSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {}: {} listed, {} ingested, {} already ingested, {} unreadable ({:.2} s)",
        s.run_id,
        plural(s.objects_listed, "object"),
        s.objects_ingested,
        s.objects_skipped,
        s.objects_unreadable,
        s.elapsed_ms as f64 / 1000.0
    );
    let _ = writeln!(out, "  listing:  {}", s.listing);
    if s.objects_outside_window > 0 {
        let _ = writeln!(
            out,
            "  left out: {} named for hours before the listing window; \
             --since DATE, a longer --lookback or --full-listing takes them in",
            plural(s.objects_outside_window, "object")
        );
    }
    if let Some(shard) = &s.shard {
        let _ = writeln!(
            out,
            "  shard:    {shard}; {} of the other shards left to their workers",
            plural(s.objects_other_shards, "object")
        );
    }
    if s.objects_in_lake > 0 {
        let _ = writeln!(
            out,
            "  left out: {} of the lake itself, which is inside the source",
            plural(s.objects_in_lake, "file")
        );
    }
    if s.objects_not_logs > 0 {
        let _ = writeln!(
            out,
            "  skipped:  {} not CloudFront logs (skipped while unchanged; edgemeter unreadable lists them)",
            plural(s.objects_not_logs, "object")
        );
    }
    for n in &s.not_logs {
        let _ = writeln!(out, "    {}: {}", n.object, n.reason);
    }
    if let Some(q) = &s.queue {
        let _ = writeln!(
            out,
            "  queue:    {} received ({} redelivered), {} deleted ({} not about new objects), \
             {} dead-lettered, {} left in the queue",
            plural(q.messages_received, "message"),
            q.messages_redelivered,
            q.messages_deleted,
            q.messages_ignored,
            q.messages_dead_lettered,
            q.messages_left
        );
        let _ = writeln!(
            out,
            "            {} named {} ({} named before in this run); visibility extended {} times",
            plural(q.messages_received, "message"),
            plural(q.notifications, "object"),
            q.repeated_notifications,
            q.visibility_extensions
        );
        if q.messages_received_again > 0 {
            let _ = writeln!(
                out,
                "  WARNING {} received again while held: their visibility was not extended in time",
                plural(q.messages_received_again, "message")
            );
        }
        for m in &q.malformed {
            let _ = writeln!(
                out,
                "  not a notification: message {}: {}",
                m.message_id, m.reason
            );
        }
    }
    if s.listing == "queue" && s.objects_listed == 0 && s.objects_retried == 0 {
        let _ = writeln!(
            out,
            "  nothing found: no notifications of new objects on the queue"
        );
    } else if s.objects_listed == 0 && s.objects_retried == 0 && s.listing == "full" {
        let _ = writeln!(out, "  nothing found: no log objects under the source");
    } else if s.objects_listed == 0 && s.objects_retried == 0 {
        let _ = writeln!(
            out,
            "  nothing found: no log objects in this listing; \
             older ones need --lookback, --since or --full-listing"
        );
    }
    let _ = writeln!(
        out,
        "  bytes:    {} read, {} of log text",
        size(s.bytes_read),
        size(s.bytes_decompressed)
    );
    let _ = writeln!(
        out,
        "  lines:    {} ({} bad), {} requests ({} damaged values stored as null), {} without an API key",
        s.lines, s.bad_lines, s.requests, s.field_errors, s.keyless_requests
    );
    let _ = writeln!(
        out,
        "  rows:     {} written, {} duplicate requests skipped, {} touched",
        s.rows_written,
        s.duplicates,
        plural(s.partitions_touched.len() as u64, "partition")
    );
    if s.rows_replaced > 0 {
        let _ = writeln!(
            out,
            "  replaced: {} rows of the objects read again",
            s.rows_replaced
        );
    }
    for (key, n) in &s.conflicting_keys {
        let _ = writeln!(
            out,
            "  {n} requests billed to {key} also carried another key"
        );
    }
    for (object, n) in &s.bad_lines_by_object {
        let _ = writeln!(out, "  bad lines in {object}: {n}");
    }
    for b in &s.bad_line_samples {
        let _ = writeln!(out, "    {}:{}: {}", b.object, b.line, b.reason);
    }
    for f in &s.field_error_samples {
        let _ = writeln!(
            out,
            "    {}:{}: field {}: {}",
            f.object, f.line, f.field, f.reason
        );
    }
    for p in &s.partitions_dropped {
        let _ = writeln!(out, "  retention dropped {p}");
    }
    if !s.partitions_kept_from_retention.is_empty() {
        let _ = writeln!(
            out,
            "  retention kept {} older than --retain-days that this run wrote ({}); \
             the next run with the same retention drops them",
            plural(s.partitions_kept_from_retention.len() as u64, "day"),
            s.partitions_kept_from_retention.join(", ")
        );
    }
    for u in &s.unreadable {
        let _ = writeln!(out, "  unreadable {}: {}", u.object, u.reason);
    }
    for k in &s.mostly_keyless {
        let _ = writeln!(
            out,
            "  WARNING {}: {} of {} requests have no API key; are --key-from / --key-param right? \
             (fix them, then `edgemeter reingest` reads such objects again)",
            k.object, k.keyless, k.requests
        );
    }
    if s.unreadable_outstanding > 0 {
        let _ = writeln!(
            out,
            "  {} unreadable objects are retried by every run until read or acknowledged (edgemeter unreadable)",
            s.unreadable_outstanding
        );
    }
    out
}

/// `export`'s line per file written (to stdout: "stdout").
pub(crate) fn export_files(report: &ExportReport, to_stdout: bool) -> String {
    let mut out = String::new();
    for file in &report.files {
        let _ = writeln!(
            out,
            "wrote {} ({}, {})",
            if to_stdout { "stdout" } else { file },
            match report.events {
                Some(n) => plural(n as u64, "event"),
                None => plural(report.lines as u64, "invoice line"),
            },
            report.status
        );
    }
    out
}

/// `export`'s warnings: why the figures are not final, and keys that belong
/// to no customer.
pub(crate) fn export_warnings(report: &ExportReport) -> String {
    let mut out = String::new();
    for w in &report.warnings {
        let _ = writeln!(out, "warning: not final: {w}");
    }
    if !report.unassigned_keys.is_empty() {
        let _ = writeln!(
            out,
            "warning: {} with usage belong to no customer of --plans{}: {}",
            plural(report.unassigned_keys.len() as u64, "key"),
            match report.events {
                Some(_) => " and are in no event",
                None => " (lines without a customer)",
            },
            report.unassigned_keys.join(", ")
        );
    }
    out
}

/// `export`'s line per customer whose figures changed since the last export.
pub(crate) fn export_restatements(report: &ExportReport) -> String {
    let mut out = String::new();
    for r in &report.restatements {
        let _ = writeln!(
            out,
            "restated {} [{}]: billable {} -> {}, total {} -> {}",
            if r.customer_id.is_empty() {
                "(no customer)"
            } else {
                &r.customer_id
            },
            r.api_key_ids.join(";"),
            r.billable_before,
            r.billable_after,
            r.total_before,
            r.total_after
        );
    }
    out
}

/// `check`'s quota use per customer, then the alerts due.
pub(crate) fn check_report(report: &CheckReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "quota use for {}:", report.period);
    for q in &report.quotas {
        let of = |quota: Option<u64>| quota.map_or("no quota".to_string(), |q| format!("of {q}"));
        let _ = writeln!(
            out,
            "  {}: {} requests this month ({}), {} today ({})",
            q.customer_id,
            q.month_requests,
            of(q.monthly_quota),
            q.day_requests,
            of(q.daily_quota)
        );
    }
    for l in &report.limits {
        let _ = writeln!(
            out,
            "  {}: {} {} {} (limit {})",
            l.customer_id,
            l.meter,
            l.used.normalize(),
            match l.window {
                "monthly" => "this month",
                _ => "today",
            },
            l.limit
        );
    }
    for a in &report.alerts {
        let _ = writeln!(out, "ALERT {}", a.text);
    }
    out
}

/// Where `init` put the new secret.
pub(crate) enum SecretKept<'a> {
    /// In this file (`--secret-file`).
    File(&'a Path),
    /// In AWS Secrets Manager under `name`, `stored` being its ARN.
    Manager { name: &'a str, stored: String },
    /// Nowhere: the secret itself, shown once.
    Shown(&'a str),
}

/// `init`'s report: the lake, the secret's fingerprint, and how runs read it.
pub(crate) fn initialised(lake: &str, fingerprint: &str, kept: &SecretKept<'_>) -> String {
    match kept {
        SecretKept::File(path) => format!(
            "initialised {lake} (secret fingerprint {fingerprint}); run with EDGEMETER_KEY_SECRET_FILE={}\n",
            path.display()
        ),
        SecretKept::Manager { name, stored } => format!(
            "initialised {lake} (secret fingerprint {fingerprint}); the secret is in AWS Secrets Manager as {stored}; run with EDGEMETER_KEY_SECRET_ID={name}\n",
        ),
        SecretKept::Shown(secret) => format!(
            "initialised {lake} (secret fingerprint {fingerprint}); keep this secret (in a secret manager) and run with it set:\nEDGEMETER_KEY_SECRET={secret}\n",
        ),
    }
}

/// `maintain`'s report of what was done.
pub(crate) fn maintain_summary(summary: &MaintainSummary) -> String {
    let mut out = String::new();
    for (table, version) in &summary.checkpoints {
        let _ = writeln!(out, "checkpointed {table} at version {version}");
    }
    for (table, n) in &summary.files_vacuumed {
        let _ = writeln!(out, "vacuumed {n} files of {table}");
    }
    for (table, n) in &summary.log_files_removed {
        let _ = writeln!(out, "removed {n} expired log files of {table}");
    }
    let _ = writeln!(
        out,
        "compacted {} ingested-record files",
        summary.record_files_compacted
    );
    let _ = writeln!(
        out,
        "wrote {} day rollup files",
        summary.day_rollups_written
    );
    let _ = writeln!(
        out,
        "wrote {} files of meters kept per day",
        summary.meter_days_written
    );
    for p in &summary.partitions_dropped {
        let _ = writeln!(out, "dropped {p}");
    }
    out
}

/// `migrate`'s report of what was converted in the lake at `location`.
pub(crate) fn migrate_summary(location: &str, summary: &MigrateSummary) -> String {
    format!(
        "converted {}: {} hour files ({} rows) into requests, {} ingested objects, \
         {} rollups rebuilt, {} old files deleted\n",
        location,
        summary.requests_files,
        summary.requests_rows,
        summary.ingested_objects,
        summary.rollups_built,
        summary.files_deleted
    )
}

/// The named queries, each with its parameters (defaults after `=`) and
/// its description, indented.
pub(crate) fn queries(queries: &[NamedQuery]) -> String {
    let mut out = String::new();
    for q in queries {
        let params: Vec<String> = q
            .params()
            .iter()
            .map(|p| match &p.default {
                Some(d) => format!("{}={d}", p.name),
                None => p.name.clone(),
            })
            .collect();
        let _ = writeln!(
            out,
            "{} ({})\n  {}\n",
            q.name,
            params.join(", "),
            q.description().replace('\n', "\n  ")
        );
    }
    out
}

/// A file written (`report`).
pub(crate) fn wrote(path: &str) -> String {
    format!("wrote {path}\n")
}

/// `unreadable --acknowledge`: how many objects were acknowledged.
pub(crate) fn acknowledged(n: usize) -> String {
    format!("acknowledged {n} objects\n")
}

#[cfg(test)]
mod tests {
    //! Snapshots of the text, built from fixed values (`src/snapshots/`);
    //! `INSTA_UPDATE=always cargo test render` rewrites them after a
    //! deliberate change, to be reviewed in the diff.

    use super::*;
    use crate::alerts::{Alert, LimitUse, QuotaUse};
    use crate::export::Restatement;
    use crate::ingest::summary::{
        BadLineSample, FieldErrorSample, MostlyKeyless, NotALog, UnreadableObject,
    };
    use rust_decimal::Decimal;

    #[test]
    fn sizes_and_plurals() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(12_900_000), "12.3 MiB");
        assert_eq!(plural(1, "object"), "1 object");
        assert_eq!(plural(0, "object"), "0 objects");
    }

    /// A run that met every case the summary reports.
    fn eventful_run() -> IngestSummary {
        // Its fields one by one: some are private to `ingest`.
        let mut s = IngestSummary::default();
        s.run_id = "20251105T093000Z-1a2b".into();
        s.listing = "lookback 48h".into();
        s.objects_listed = 7;
        s.objects_skipped = 2;
        s.objects_ingested = 3;
        s.objects_unreadable = 1;
        s.objects_outside_window = 4;
        s.objects_in_lake = 1;
        s.objects_not_logs = 1;
        s.not_logs = vec![NotALog {
            object: "logs/README.txt".into(),
            etag: "\"e1\"".into(),
            reason: "no #Fields line".into(),
        }];
        s.bytes_read = 1_572_864;
        s.bytes_decompressed = 12_900_000;
        s.lines = 10_000;
        s.bad_lines = 2;
        s.requests = 9_990;
        s.field_errors = 1;
        s.keyless_requests = 6_000;
        s.rows_written = 9_980;
        s.rows_replaced = 12;
        s.duplicates = 10;
        s.partitions_touched = ["dt=2025-11-04".into(), "dt=2025-11-05".into()].into();
        s.conflicting_keys = [("k_3f9a".to_string(), 4)].into();
        s.bad_lines_by_object = [("logs/E1.2025-11-05-09.a.gz".to_string(), 2)].into();
        s.bad_line_samples = vec![BadLineSample {
            object: "logs/E1.2025-11-05-09.a.gz".into(),
            line: 17,
            reason: "12 fields, the header names 33".into(),
        }];
        s.field_error_samples = vec![FieldErrorSample {
            object: "logs/E1.2025-11-05-09.a.gz".into(),
            line: 40,
            field: "sc-bytes".into(),
            reason: "not a number: \"12x\"".into(),
        }];
        s.partitions_dropped = vec!["dt=2024-10-01".into()];
        s.partitions_kept_from_retention = vec!["dt=2024-09-30".into()];
        s.unreadable = vec![UnreadableObject {
            object: "logs/E1.2025-11-05-10.b.gz".into(),
            reason: "truncated gzip".into(),
        }];
        s.mostly_keyless = vec![MostlyKeyless {
            object: "logs/E1.2025-11-05-09.a.gz".into(),
            requests: 9_990,
            keyless: 6_000,
        }];
        s.unreadable_outstanding = 1;
        s.elapsed_ms = 2_345;
        s
    }

    #[test]
    fn ingest_summary_of_an_eventful_run() {
        insta::assert_snapshot!(ingest_summary(&eventful_run()));
    }

    #[test]
    fn ingest_summary_of_runs_that_found_nothing() {
        let mut window = IngestSummary::default();
        window.run_id = "r1".into();
        window.listing = "lookback 48h".into();
        window.elapsed_ms = 120;
        let mut full = window.clone();
        full.listing = "full".into();
        insta::assert_snapshot!(format!(
            "{}{}",
            ingest_summary(&window),
            ingest_summary(&full)
        ));
    }

    #[test]
    fn ingest_summary_of_a_queue_run() {
        let mut run = IngestSummary::default();
        run.run_id = "r2".into();
        run.source = "sqs://https://sqs.eu-west-1.amazonaws.com/123456789012/logs".into();
        run.listing = "queue".into();
        run.objects_listed = 3;
        run.objects_ingested = 2;
        run.objects_skipped = 1;
        run.elapsed_ms = 2_300;
        run.queue = Some(crate::ingest::summary::QueueSummary {
            queue: "https://sqs.eu-west-1.amazonaws.com/123456789012/logs".into(),
            messages_received: 6,
            messages_redelivered: 1,
            messages_received_again: 1,
            messages_deleted: 4,
            messages_ignored: 1,
            messages_dead_lettered: 1,
            messages_left: 0,
            notifications: 5,
            repeated_notifications: 2,
            visibility_extensions: 3,
            malformed: vec![crate::ingest::summary::MalformedMessage {
                message_id: "5fea7756-0ea4-451a-a703-a558b933e274".into(),
                reason: "not JSON: expected value at line 1 column 1".into(),
            }],
        });
        let mut idle = IngestSummary::default();
        idle.run_id = "r3".into();
        idle.listing = "queue".into();
        idle.queue = Some(Default::default());
        insta::assert_snapshot!(format!("{}{}", ingest_summary(&run), ingest_summary(&idle)));
    }

    fn export_report(events: Option<usize>) -> ExportReport {
        ExportReport {
            files: vec!["out/2025-10.csv".into()],
            lines: 3,
            events,
            unassigned_keys: vec!["k_77aa".into(), "k_9c01".into()],
            restatements: vec![
                Restatement {
                    customer_id: "acme".into(),
                    api_key_ids: vec!["k_1".into(), "k_2".into()],
                    billable_before: 1_000,
                    billable_after: 1_200,
                    total_before: Decimal::new(1_000, 2),
                    total_after: Decimal::new(1_200, 2),
                },
                Restatement {
                    customer_id: String::new(),
                    api_key_ids: vec!["k_77aa".into()],
                    billable_before: 5,
                    billable_after: 6,
                    total_before: Decimal::ZERO,
                    total_after: Decimal::ZERO,
                },
            ],
            status: "provisional".into(),
            warnings: vec!["logs of 2025-10-31 may still arrive (grace period)".into()],
        }
    }

    #[test]
    fn export_reports_to_a_file_and_to_stdout() {
        let lines = export_report(None);
        let events = export_report(Some(1));
        insta::assert_snapshot!(format!(
            "-- to a file, invoice lines\n{}{}{}-- to stdout, events\n{}{}{}",
            export_files(&lines, false),
            export_warnings(&lines),
            export_restatements(&lines),
            export_files(&events, true),
            export_warnings(&events),
            export_restatements(&events),
        ));
    }

    #[test]
    fn check_report_of_quotas_and_alerts() {
        let report = CheckReport {
            period: "2025-11".into(),
            quotas: vec![
                QuotaUse {
                    customer_id: "acme".into(),
                    month_requests: 91_000,
                    monthly_quota: Some(100_000),
                    day_requests: 4_000,
                    daily_quota: Some(5_000),
                },
                QuotaUse {
                    customer_id: "globex".into(),
                    month_requests: 12,
                    monthly_quota: None,
                    day_requests: 0,
                    daily_quota: None,
                },
            ],
            limits: vec![LimitUse {
                customer_id: "acme".into(),
                meter: "search_calls".into(),
                window: "daily",
                used: rust_decimal::Decimal::from(950),
                limit: 1_000,
            }],
            alerts: vec![Alert {
                id: "quota-90:acme:2025-11".into(),
                text: "acme has used 91% of its monthly quota (91000 of 100000)".into(),
            }],
            delivered: false,
        };
        insta::assert_snapshot!(check_report(&report));
    }

    #[test]
    fn init_reports_where_the_secret_is() {
        let lake = "s3://lake/edge/";
        insta::assert_snapshot!(format!(
            "{}{}{}",
            initialised(
                lake,
                "9f86d081",
                &SecretKept::File(Path::new("/etc/edgemeter/secret"))
            ),
            initialised(
                lake,
                "9f86d081",
                &SecretKept::Manager {
                    name: "edgemeter/key",
                    stored:
                        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:edgemeter/key-AbCdEf"
                            .into(),
                }
            ),
            initialised(lake, "9f86d081", &SecretKept::Shown("c2VjcmV0")),
        ));
    }

    #[test]
    fn maintain_and_migrate_summaries() {
        let maintained = MaintainSummary {
            checkpoints: vec![("requests".into(), 120), ("ingested".into(), 80)],
            record_files_compacted: 31,
            day_rollups_written: 4,
            meter_days_written: 2,
            files_vacuumed: vec![("requests".into(), 14)],
            log_files_removed: vec![("requests".into(), 3)],
            partitions_dropped: vec!["dt=2024-10-01".into()],
        };
        let migrated = MigrateSummary {
            requests_files: 48,
            requests_rows: 1_000_000,
            ingested_objects: 96,
            files_deleted: 150,
            rollups_built: 48,
        };
        insta::assert_snapshot!(format!(
            "{}{}{}{}",
            maintain_summary(&maintained),
            maintain_summary(&MaintainSummary::default()),
            migrate_summary("/var/lake", &migrated),
            wrote("report.html") + &acknowledged(2),
        ));
    }

    #[test]
    fn the_list_of_named_queries() {
        let library = [
            NamedQuery {
                name: "top_keys",
                sql: "-- top_keys: the keys with the most requests over [$from, $to).\n\
                      -- @param from timestamp\n\
                      -- @param to timestamp\n\
                      -- @param limit int 10\n\
                      -- Returns: api_key_id, requests.\n\
                      SELECT 1",
            },
            NamedQuery {
                name: "everything",
                sql: "-- everything: every request.\nSELECT * FROM requests",
            },
        ];
        insta::assert_snapshot!(queries(&library));
    }

    /// Built-in meters (one charged through a plan's shorthand fields),
    /// defined ones of every filter kind, and the plans that charge them.
    #[test]
    fn meters_of_a_plans_file() {
        let plans = crate::billing::plans::Plans::parse(
            r#"
            [billing]
            currency = "USD"
            billable = "2xx,304"

            [meters.search_calls]
            description = "Successful calls to the search API"
            aggregation = "count"
            filter = { endpoint = ["/v1/search*", "/v2/search/**"], method = ["GET", "POST"], status = "2xx" }

            [meters.download_bytes]
            aggregation = "sum"
            value = "sc_bytes"
            filter = { endpoint = "/v1/files/*", status = "200-206,304", host = "Files.Example.com", edge = ["FRA", "IAD89"] }

            [meters.active_clients]
            aggregation = "unique_count"
            value = "c_ip"
            filter = { result_type = ["Hit", "Miss"], protocol = "https", content_type = "application/json" }

            [meters.slowest]
            aggregation = "max"
            value = "time_taken"

            [plans.starter]
            price_per_1k_requests = "0.50"

            [plans.pro]
            [plans.pro.charges.search_calls]
            included = 1000
            price_per_1k = "2.00"
            [plans.pro.charges.download_bytes]
            package = { size = 1000000000, price = "0.09" }
            monthly_limit = 500000000000

            [plans.enterprise.charges.search_calls]
            price_per_unit = "0.001"
            "#,
            &crate::key::KeyHasher::new(None),
        )
        .unwrap();
        insta::assert_snapshot!(meters(&plans));
    }
}
