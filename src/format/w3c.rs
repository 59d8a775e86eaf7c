//! The line parser: one tab-separated line (legacy W3C and v2 `w3c` standard
//! logs, real-time records) under its [`Header`], to one row. The formats of
//! named fields (JSON lines, Parquet rows) go through it too, each record
//! written as such a line under a header of its names
//! ([`LineParser::record_counted`]), so every rule below applies to them
//! unchanged. Which lines reach it, and in what parts, is `framing`'s.
//!
//! It owns line-level validation. A line is a request when its time (`date`
//! and `time`, or `timestamp`) and `sc-status` are valid: a damaged value in
//! any other field is stored as null and counted as a [`FieldError`], so the
//! request is still billed. A line that is not a request is a [`BadLine`],
//! counted with its line number and skipped; a whole object that is not such a
//! log is an [`ObjectError`]. Reasons never quote a logged value (any of them
//! may hold a key). Key extraction and redaction are delegated to [`crate::key`].

use super::fields::{idx, other_client_text_fields};
use super::header::{Header, Slot};
use super::realtime;
use super::rows::{HourlyRows, Row, Value, parse_value};
use super::timestamps::{END_VALID_MS, FIRST_VALID_MS, parse_epoch, parse_timestamp};
use super::{BadLine, FieldError, MAX_BAD_LINE_SAMPLES, ObjectError, ParseStats, Parsed};
use super::{LogFormat, ParseOptions};
use crate::key::{KeyFields, KeyFinder, KeyHasher};
use crate::schema::fields::FIELDS;

/// Parses the lines of one object, or of one part of it, into rows by hour.
pub(super) struct LineParser<'a, 'h> {
    object: &'a str,
    hasher: &'h mut KeyHasher,
    keys: KeyFinder<'a>,
    header: Option<Header>,
    rows: HourlyRows,
    stats: ParseStats,
    /// Reused per line: the byte range of each field.
    fields: Vec<(usize, usize)>,
    /// The field names of the last JSON or Parquet record (their header).
    record_names: Vec<String>,
    record_line: String,
}

/// What the framing of text objects (`framing`) drives: parts, lines, headers.
impl<'a, 'h> LineParser<'a, 'h> {
    /// A parser that goes on from where [`Self::take_part`] left one.
    pub(super) fn resume(
        object: &'a str,
        options: &'a ParseOptions,
        hasher: &'h mut KeyHasher,
        saved: Saved,
    ) -> Self {
        Self {
            object,
            hasher,
            keys: KeyFinder::new(&options.key_sources),
            header: saved.header,
            rows: saved.rows,
            stats: ParseStats::default(),
            fields: saved.fields,
            record_names: saved.record_names,
            record_line: saved.record_line,
        }
    }

    /// The rows and counts so far, and what the next part goes on from.
    pub(super) fn take_part(self) -> (Parsed, Saved) {
        let part = Parsed {
            hours: self.rows.finish(),
            stats: self.stats,
        };
        let saved = Saved {
            header: self.header,
            rows: HourlyRows::default(),
            fields: self.fields,
            record_names: self.record_names,
            record_line: self.record_line,
        };
        (part, saved)
    }

    /// Counts `bytes` of the object as read.
    #[inline]
    pub(super) fn read_bytes(&mut self, bytes: u64) {
        self.stats.bytes += bytes;
    }

    /// Whether the part so far holds at least `part_bytes` of log text and a
    /// request (a part of an object that goes on holds one).
    #[inline]
    pub(super) fn part_is_full(&self, part_bytes: u64) -> bool {
        self.stats.bytes >= part_bytes && self.stats.requests > 0
    }

    /// The header the lines that follow are read under.
    pub(super) fn set_header(&mut self, header: Header) {
        self.header = Some(header);
    }

    /// One tab-separated line, without its end of line.
    #[inline]
    pub(super) fn line(&mut self, line: &[u8], line_no: u64) {
        self.stats.lines += 1;
        let result = match std::str::from_utf8(line) {
            Ok(text) => self.try_line(text, line_no),
            Err(_) => Err("not valid UTF-8".to_string()),
        };
        self.count(result, line_no);
    }
}

impl LineParser<'_, '_> {
    /// One line under the header, to one row; why not, when it is no request.
    fn try_line(&mut self, line: &str, line_no: u64) -> Result<(), String> {
        let Some(header) = &self.header else {
            return Err("line before any #Fields header".into());
        };

        self.fields.clear();
        split_tabs(line.as_bytes(), &mut self.fields);
        // A trailing tab (or several) adds empty fields past the header's end.
        while self.fields.len() > header.slots.len()
            && self.fields.last().is_some_and(|(s, e)| s == e)
        {
            self.fields.pop();
        }
        if self.fields.len() < header.min_fields {
            return Err(format!(
                "{} fields, too short to hold the time and sc-status",
                self.fields.len()
            ));
        }
        // Field errors are kept aside until the line turns out to be a request.
        let mut damaged: Vec<(String, String)> = Vec::new();
        if self.fields.len() > header.slots.len() {
            damaged.push((
                "(beyond the header)".into(),
                format!(
                    "{} fields, but the header names {}: the extra ones are ignored",
                    self.fields.len(),
                    header.slots.len()
                ),
            ));
        }

        let mut values = [Value::Null; FIELDS.len()];
        let (mut date, mut time, mut epoch) = ("", "", None);
        for (slot, &(s, e)) in header.slots.iter().zip(&self.fields) {
            let raw = &line[s..e];
            match *slot {
                Slot::Date => date = raw,
                Slot::Time => time = raw,
                Slot::EpochSeconds => epoch = Some((raw, 1000)),
                Slot::EpochMillis => epoch = Some((raw, 1)),
                Slot::Field(i) => match parse_value(FIELDS[i].ty, raw) {
                    Ok(value) => values[i] = value,
                    Err(why) if i == idx::SC_STATUS => {
                        return Err(format!("sc-status {why}"));
                    }
                    Err(why) => damaged.push((
                        FIELDS[i].names[0].to_string(),
                        format!("{why} ({} bytes); stored as null", raw.len()),
                    )),
                },
                Slot::Ignored => {}
            }
        }
        let timestamp_ms = match epoch {
            Some((raw, scale)) => {
                parse_epoch(raw, scale).ok_or("timestamp is not epoch seconds (or milliseconds)")?
            }
            None => parse_timestamp(date, time)
                .ok_or("date and time are not a valid YYYY-MM-DD HH:MM:SS")?,
        };
        if !(FIRST_VALID_MS..END_VALID_MS).contains(&timestamp_ms) {
            return Err("the request time is outside the years 2000 to 2099".into());
        }
        for (field, reason) in damaged {
            self.stats.field_errors += 1;
            if self.stats.field_error_samples.len() < MAX_BAD_LINE_SAMPLES {
                self.stats.field_error_samples.push(FieldError {
                    line: line_no,
                    field,
                    reason,
                });
            }
        }

        let text = |i: usize| match values[i] {
            Value::Str(s) => Some(s),
            _ => None,
        };
        let found = self.keys.find(KeyFields {
            query: text(idx::CS_URI_QUERY),
            stem: text(idx::CS_URI_STEM),
            headers: text(idx::CS_HEADERS),
            cookie: text(idx::CS_COOKIE),
            log_data: text(idx::VIEWER_REQUEST_LOG_DATA),
            referer: text(idx::CS_REFERER),
            user_agent: text(idx::CS_USER_AGENT),
        });
        for (i, redacted) in [
            (idx::CS_URI_QUERY, &found.query),
            (idx::CS_URI_STEM, &found.stem),
            (idx::CS_HEADERS, &found.headers),
            (idx::CS_COOKIE, &found.cookie),
            (idx::VIEWER_REQUEST_LOG_DATA, &found.log_data),
            (idx::CS_REFERER, &found.referer),
            (idx::CS_USER_AGENT, &found.user_agent),
        ] {
            if let Some(r) = redacted {
                values[i] = Value::Str(r);
            }
        }
        let mut others: Vec<(usize, String)> = Vec::new();
        if found.redacts_elsewhere() {
            for &i in other_client_text_fields() {
                if let Value::Str(s) = values[i]
                    && let Some(r) = found.redact(s)
                {
                    others.push((i, r));
                }
            }
        }
        for (i, r) in &others {
            values[*i] = Value::Str(r);
        }
        let conflicting_key_id = found
            .conflicting
            .as_ref()
            .map(|raw| self.hasher.identify(raw).id.clone());
        let key = match &found.key {
            Some(raw) => {
                let key = self.hasher.identify(raw);
                if conflicting_key_id.is_some() {
                    *self
                        .stats
                        .conflicting_keys
                        .entry(key.id.clone())
                        .or_default() += 1;
                }
                Some(key)
            }
            None => {
                self.stats.keyless += 1;
                None
            }
        };
        self.rows.append(&Row {
            timestamp_ms,
            key,
            values: &values,
            source_object: self.object,
            source_line: line_no,
            conflicting_key_id: conflicting_key_id.as_deref(),
        });
        Ok(())
    }

    fn count(&mut self, result: Result<(), String>, line_no: u64) {
        match result {
            Ok(()) => self.stats.requests += 1,
            Err(reason) => {
                self.stats.bad_lines += 1;
                if self.stats.bad_samples.len() < MAX_BAD_LINE_SAMPLES {
                    self.stats.bad_samples.push(BadLine {
                        line: line_no,
                        reason,
                    });
                }
            }
        }
    }
}

/// Pushes the byte range of each tab-separated field of `line` onto `fields`.
///
/// Scans eight bytes at a time and takes every tab of a word from one bit
/// mask: a line holds some thirty short fields, and a search call per tab
/// costs more than the scan.
fn split_tabs(line: &[u8], fields: &mut Vec<(usize, usize)>) {
    const LOW_BITS: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const TABS: u64 = 0x0909_0909_0909_0909;
    let (words, rest) = line.as_chunks::<8>();
    let mut start = 0;
    for (w, word) in words.iter().enumerate() {
        // Tab bytes become zero; then exactly the zero bytes get their high
        // bit set (the sums cannot carry from one byte into the next).
        let x = u64::from_le_bytes(*word) ^ TABS;
        let mut tabs = !(((x & LOW_BITS) + LOW_BITS) | x | LOW_BITS);
        while tabs != 0 {
            let end = w * 8 + (tabs.trailing_zeros() / 8) as usize;
            fields.push((start, end));
            start = end + 1;
            tabs &= tabs - 1;
        }
    }
    let base = words.len() * 8;
    for (i, &b) in rest.iter().enumerate() {
        if b == b'\t' {
            fields.push((start, base + i));
            start = base + i + 1;
        }
    }
    fields.push((start, line.len()));
}

/// What a [`LineParser`] carries from one part of an object to the next.
pub(super) struct Saved {
    header: Option<Header>,
    rows: HourlyRows,
    fields: Vec<(usize, usize)>,
    record_names: Vec<String>,
    record_line: String,
}

impl Saved {
    pub(super) fn new(options: &ParseOptions) -> Result<Self, ObjectError> {
        let header = match &options.format {
            LogFormat::Realtime(fields) => Some(realtime::header(fields)?),
            LogFormat::Auto => None,
        };
        Ok(Self {
            header,
            rows: HourlyRows::default(),
            fields: Vec::with_capacity(64),
            record_names: Vec::new(),
            record_line: String::new(),
        })
    }
}

/// The interface for records of named fields (JSON lines, Parquet rows): each
/// record is parsed like a line under a header of its names.
impl<'a, 'h> LineParser<'a, 'h> {
    /// A parser of one object's records.
    pub(super) fn new(
        object: &'a str,
        options: &'a ParseOptions,
        hasher: &'h mut KeyHasher,
    ) -> Result<Self, ObjectError> {
        Ok(Self::resume(object, options, hasher, Saved::new(options)?))
    }

    /// Counts and parses one record of named fields (a JSON object, a
    /// Parquet row).
    pub(super) fn record_counted(&mut self, record: &[(String, Option<String>)], line_no: u64) {
        self.stats.lines += 1;
        let result = self.record(record, line_no);
        self.count(result, line_no);
    }

    /// Counts a line (or record) that could not be read as a request.
    pub(super) fn bad_line(&mut self, reason: String, line_no: u64) {
        self.stats.lines += 1;
        self.count(Err(reason), line_no);
    }

    /// The object's rows and counts.
    pub(super) fn finish(self) -> Parsed {
        Parsed {
            hours: self.rows.finish(),
            stats: self.stats,
        }
    }

    /// A record of named fields (JSON lines, Parquet rows), parsed like a line
    /// under a header of its names.
    fn record(&mut self, record: &[(String, Option<String>)], line_no: u64) -> Result<(), String> {
        let same = record.len() == self.record_names.len()
            && record
                .iter()
                .zip(&self.record_names)
                .all(|((k, _), n)| k == n);
        if !same {
            self.record_names = record.iter().map(|(k, _)| k.clone()).collect();
            let names: Vec<&str> = self.record_names.iter().map(String::as_str).collect();
            // Not `e`: a damaged record's names may be anything, keys included.
            self.header = Some(Header::from_names(&names).map_err(|_| {
                "the record's fields lack a time (date and time, or timestamp) or sc-status"
                    .to_string()
            })?);
        }
        let mut line = std::mem::take(&mut self.record_line);
        line.clear();
        for (i, (_, value)) in record.iter().enumerate() {
            if i > 0 {
                line.push('\t');
            }
            match value.as_deref() {
                // Tabs cannot appear in logged values; escape them as CloudFront would.
                Some(v) => line.push_str(&v.replace('\t', "%09")),
                None => line.push('-'),
            }
        }
        let result = self.try_line(&line, line_no);
        self.record_line = line;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::key::KeyHasher;
    use crate::time::Hour;
    use datafusion::arrow::array::{Array, AsArray};

    /// The word-at-a-time split finds the same fields as splitting on each tab,
    /// wherever the tabs fall in a word, next to each other, at either end, and
    /// beside bytes with the high bit set (UTF-8) or equal to a tab's low bits.
    #[test]
    fn tab_split_matches_a_plain_split() {
        let pieces: [&[u8]; 8] = [
            b"",
            b"a",
            b"\t",
            b"\t\t",
            "é€".as_bytes(),
            b"\x89\x19\x08",
            b"0123456",
            b"-",
        ];
        let mut line = Vec::new();
        let mut fields = Vec::new();
        for seed in 0u64..2000 {
            line.clear();
            let mut x = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            for _ in 0..(seed % 23) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                line.extend_from_slice(pieces[(x % 8) as usize]);
            }
            fields.clear();
            split_tabs(&line, &mut fields);
            let got: Vec<&[u8]> = fields.iter().map(|&(s, e)| &line[s..e]).collect();
            let want: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
            assert_eq!(got, want, "line {line:?}");
        }
    }

    /// Expected counts were read off the fixtures with awk, independently of this parser.
    #[test]
    fn every_era_parses_with_exact_counts() {
        // (fixture, requests, hours, sum of sc_bytes, 2xx responses)
        let cases = [
            ("standard-2012-2016-eras.log", 5, 5, 6310, 5),
            ("standard-2014-24.log", 2, 1, 2_390_464, 1),
            ("standard-2016-23.log", 2, 1, 1293, 0),
            ("standard-2016-23-then-33.log", 2, 2, 224_673, 2),
            ("standard-2018-26.log.gz", 66, 1, 81_303, 3),
            ("standard-2019-33-trailing-tab.log", 3, 1, 1176, 3),
            ("standard-2020-33.log", 3, 1, 55_208, 3),
            ("standard-2025-33.log", 1, 1, 611, 1),
            ("standard-33-xff-escapes.log", 6, 2, 3876, 3),
            ("standard-aws-docs-33.log", 6, 2, 3876, 3),
        ];
        for (name, requests, hours, bytes, ok) in cases {
            let parsed = parse_bytes(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                parsed.stats.bad_lines, 0,
                "{name}: {:?}",
                parsed.stats.bad_samples
            );
            assert_eq!(parsed.stats.requests, requests, "{name}");
            assert_eq!(
                parsed.stats.keyless, requests,
                "{name}: no fixture carries api_key"
            );
            assert_eq!(parsed.hours.len(), hours, "{name}");
            let rows = all_rows(&parsed);
            assert_eq!(rows.num_rows() as u64, requests, "{name}");
            assert_eq!(i64_sum(&rows, "sc_bytes"), bytes, "{name}");
            let two_xx = statuses(&rows)
                .iter()
                .flatten()
                .filter(|s| (200..300).contains(*s))
                .count();
            assert_eq!(two_xx, ok, "{name}");
        }
    }

    #[test]
    fn columns_follow_the_header_of_each_era() {
        let parsed = parse_bytes(&fixture("standard-2012-2016-eras.log")).unwrap();
        // Hours come out in time order: 2012 (12 fields) first, 2016 (23 fields) last.
        let first = &parsed.hours.values().next().unwrap()[0];
        assert_eq!(strings(first, "x_edge_location"), vec![Some("DFW3".into())]);
        assert_eq!(strings(first, "cs_method"), vec![Some("POST".into())]);
        assert_eq!(strings(first, "x_edge_request_id"), vec![None]);
        assert!(first.column_by_name("cs_bytes").unwrap().is_null(0));
        let last = &parsed.hours.values().last().unwrap()[0];
        assert_eq!(strings(last, "x_edge_location"), vec![Some("AMS50".into())]);
        assert_eq!(strings(last, "cs_protocol"), vec![Some("http".into())]);
        assert_eq!(
            strings(last, "x_edge_result_type"),
            vec![Some("Hit".into())],
            "the 23-field line maps by the second header"
        );
        // 2012-05-24T11:35:53Z
        let ts = first
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>();
        assert_eq!(ts.value(0), 1_337_859_353_000);
    }

    #[test]
    fn dash_is_null_and_000_is_a_request() {
        let header = "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken\n";
        let line = "2025-10-05\t01:06:21\tSFO53-P9\t-\t1.2.3.4\tGET\th\t/v1\t000\t-\tcurl\tapi_key=k%252B%252F\t-\tError\tid1\th\thttps\t-\t-\n";
        let parsed = parse_bytes(format!("{header}{line}").as_bytes()).unwrap();
        assert_eq!(parsed.stats.bad_lines, 0, "{:?}", parsed.stats.bad_samples);
        let rows = all_rows(&parsed);
        assert_eq!(statuses(&rows), vec![Some(0)]);
        assert!(rows.column_by_name("sc_bytes").unwrap().is_null(0));
        assert!(rows.column_by_name("cs_bytes").unwrap().is_null(0));
        assert!(rows.column_by_name("time_taken").unwrap().is_null(0));
        // The key `k+/` is hashed; its value never reaches the stored query.
        assert_eq!(
            strings(&rows, "api_key_id"),
            vec![Some(KeyHasher::new(None).id_of("k+/"))]
        );
        assert_eq!(
            strings(&rows, "cs_uri_query"),
            vec![Some("api_key=REDACTED".into())]
        );
        assert_eq!(parsed.stats.keyless, 0);
    }

    #[test]
    fn malformed_lines_are_counted_with_their_line_numbers() {
        let text = "\
2019-12-04\t21:02:31\tbefore-header\n\
#Fields: date time x-edge-location sc-bytes sc-status\n\
2019-12-04\t21:02:31\tLAX1\t392\t200\n\
2019-12-04\t21:02:31\tLAX1\tlots\t200\n\
2019-12-04\t21:02:31\tLAX1\t392\t200\textra\n\
2019-13-04\t21:02:31\tLAX1\t392\t200\n\
2019-12-04\t21:02\n\
2019-12-04\t21:02:31\tLAX1\t392\t200\t\n";
        let parsed = parse_bytes(text.as_bytes()).unwrap();
        assert_eq!(parsed.stats.lines, 7);
        assert_eq!(
            parsed.stats.requests, 4,
            "lines 3, 4 (a damaged sc-bytes), 5 (an extra field) and the trailing-tab line 8"
        );
        assert_eq!(parsed.stats.bad_lines, 3);
        let lines: Vec<u64> = parsed.stats.bad_samples.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![1, 6, 7]);
        assert_eq!(parsed.stats.field_errors, 2);
        let damaged: Vec<(u64, &str)> = parsed
            .stats
            .field_error_samples
            .iter()
            .map(|f| (f.line, f.field.as_str()))
            .collect();
        assert_eq!(damaged, vec![(4, "sc-bytes"), (5, "(beyond the header)")]);
        let rows = all_rows(&parsed);
        assert_eq!(i64_sum(&rows, "sc_bytes"), 392 * 3);
        assert_eq!(statuses(&rows), vec![Some(200); 4]);
    }

    /// Damaged values taken from real logs: each request still counts, the
    /// damaged field is null, and no reason quotes a logged value.
    #[test]
    fn damaged_values_are_field_errors_not_lost_requests() {
        let header = "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end\n";
        let line = |port: &str, len: &str, fle: &str| {
            format!(
                "2025-10-05\t01:06:21\tSFO53-P9\t1200\t1.2.3.4\tGET\th\t/v1\t200\t-\tcurl\tapi_key=secretkey0123456789\t-\tMiss\tid-{port}\th\thttps\t90\t0.1\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tMiss\tHTTP/2.0\t-\t{fle}\t{port}\t0.1\tMiss\tapplication/json\t{len}\t-\t-\n"
            )
        };
        let text = format!(
            "{header}{}{}{}{}",
            line("443", "570129", "-"),
            line("0.049", "570129", "-"),
            line("443", "570129.76", "-"),
            line("443", "12", " -"),
        );
        let parsed = parse_bytes(text.as_bytes()).unwrap();
        assert_eq!(parsed.stats.requests, 4);
        assert_eq!(parsed.stats.bad_lines, 0);
        assert_eq!(parsed.stats.field_errors, 3);
        let damaged: Vec<(u64, &str)> = parsed
            .stats
            .field_error_samples
            .iter()
            .map(|f| (f.line, f.field.as_str()))
            .collect();
        assert_eq!(
            damaged,
            vec![
                (3, "c-port"),
                (4, "sc-content-len"),
                (5, "fle-encrypted-fields")
            ]
        );
        for f in &parsed.stats.field_error_samples {
            assert!(
                !f.reason.contains("0.049") && !f.reason.contains("570129"),
                "{f:?}"
            );
        }
        let rows = all_rows(&parsed);
        assert_eq!(i64_sum(&rows, "sc_bytes"), 4 * 1200);
        assert_eq!(i64_sum(&rows, "sc_content_len"), 570129 + 570129 + 12);
        assert_eq!(rows.column_by_name("c_port").unwrap().null_count(), 1);
    }

    #[test]
    fn out_of_range_times_are_bad_lines() {
        let text = "\
#Fields: date time x-edge-location sc-bytes sc-status\n\
0000-01-01\t00:00:00\tLAX1\t1\t200\n\
9999-12-31\t23:59:59\tLAX1\t2\t200\n\
1999-12-31\t23:59:59\tLAX1\t4\t200\n\
2025-10-05\t01:00:00\tLAX1\t8\t200\n\
2025-10-05\t01:00:00\tLAX1\t16\tOK\n\
2025-10-05\t1:00:00\tLAX1\t32\t200\n";
        let parsed = parse_bytes(text.as_bytes()).unwrap();
        assert_eq!(parsed.stats.requests, 1);
        assert_eq!(parsed.stats.bad_lines, 5);
        let reasons: Vec<(u64, &str)> = parsed
            .stats
            .bad_samples
            .iter()
            .map(|b| (b.line, b.reason.as_str()))
            .collect();
        let range = "the request time is outside the years 2000 to 2099";
        assert_eq!(
            reasons,
            vec![
                (2, range),
                (3, range),
                (4, range),
                (6, "sc-status is not a 16-bit integer"),
                (7, "date and time are not a valid YYYY-MM-DD HH:MM:SS"),
            ]
        );
        // Only the good line's hour, 2025-10-05T01.
        let hours: Vec<Hour> = parsed.hours.keys().copied().collect();
        assert_eq!(hours, vec![Hour::from_epoch_hours(1_759_626_000 / 3600)]);
        assert_eq!(i64_sum(&all_rows(&parsed), "sc_bytes"), 8);
    }
}
