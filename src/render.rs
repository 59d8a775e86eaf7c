//! Human-readable output: the text the commands print for people (summaries,
//! reports of what was done), as pure functions of the values the library
//! returns. Tables of rows are `query::output`'s; JSON is serde's.

use crate::ingest::IngestSummary;

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

/// The human-readable run summary.
pub(crate) fn ingest_summary(s: &IngestSummary) -> String {
    use std::fmt::Write;
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
    if s.objects_listed == 0 && s.objects_retried == 0 && s.listing == "full" {
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
