//! The CloudFront text log parser: standard logs (legacy W3C and v2 `w3c`
//! output, mapped by their `#Fields:` header), v2 JSON lines (one object per
//! line, keyed by field name), and real-time records (no header; the
//! configured fields in AWS's canonical order).
//!
//! It owns line-level validation. A line is a request when its time (`date`
//! and `time`, or `timestamp`) and `sc-status` are valid: a damaged value in
//! any other field is stored as null and counted as a [`FieldError`], so the
//! request is still billed. A line that is not a request is a [`BadLine`],
//! counted with its line number and skipped; a whole object that is not such a
//! log is an [`ObjectError`]. Reasons never quote a logged value (any of them
//! may hold a key). Key extraction and redaction are delegated to [`crate::key`].

use super::fields::{idx, other_client_text_fields, realtime_order};
use super::rows::{HourlyRows, Row, Value, parse_value};
use super::{ObjectError, object_error};
use crate::key::{KeyFields, KeyFinder, KeyHasher, KeySource};
use crate::schema::fields::{FIELDS, field_index};
use datafusion::arrow::array::RecordBatch;
use std::collections::BTreeMap;
use std::io::BufRead;

/// How many malformed lines of one object are kept as samples.
pub(crate) const MAX_BAD_LINE_SAMPLES: usize = 5;

/// Which log format objects are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// Per object: standard logs by their header lines, JSON lines by `{`,
    /// Parquet by its magic bytes.
    Auto,
    /// Real-time records carrying these configured fields.
    Realtime(Vec<String>),
}

/// What the parser needs to know beyond the bytes.
#[derive(Debug, Clone)]
pub(crate) struct ParseOptions {
    /// Where API keys are looked for, in order of preference.
    pub(crate) key_sources: Vec<KeySource>,
    pub(crate) format: LogFormat,
    /// Longest line accepted: a longer one is a bad line, skipped without
    /// ever being held whole.
    pub(crate) max_line_bytes: usize,
}

/// Default [`ParseOptions::max_line_bytes`]: CloudFront's own lines stay
/// under a few KiB (`cs-headers` is cut at 800 bytes, user agents are short).
pub(crate) const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// A malformed line: where it is and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct BadLine {
    pub(crate) line: u64,
    pub(crate) reason: String,
}

/// A damaged value in a line that is still a request: the field was stored
/// as null.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct FieldError {
    pub(crate) line: u64,
    /// The field's W3C name, or `(beyond the header)`.
    pub(crate) field: String,
    pub(crate) reason: String,
}

/// The first and last instants a request may have: CloudFront started in
/// 2008, and a year past 2099 is a damaged line, not a request.
const FIRST_VALID_MS: i64 = 946_684_800_000; // 2000-01-01T00:00:00Z
const END_VALID_MS: i64 = 4_102_444_800_000; // 2100-01-01T00:00:00Z

/// Counts for one object.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct ParseStats {
    /// Decompressed bytes read.
    pub(crate) bytes: u64,
    /// Non-empty lines (or Parquet rows) that are not comments or headers.
    pub(crate) lines: u64,
    /// Lines that became rows.
    pub(crate) requests: u64,
    /// Requests without an API key.
    pub(crate) keyless: u64,
    /// Lines that could not be parsed.
    pub(crate) bad_lines: u64,
    /// The first few bad lines.
    pub(crate) bad_samples: Vec<BadLine>,
    /// Damaged values of requests, each stored as null.
    pub(crate) field_errors: u64,
    /// The first few field errors.
    pub(crate) field_error_samples: Vec<FieldError>,
    /// Requests that carried another key besides the one billed, by the
    /// billed key's `api_key_id`.
    pub(crate) conflicting_keys: BTreeMap<String, u64>,
}

/// The rows of one object, routed by hour (hours since the epoch, UTC).
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) hours: BTreeMap<i64, Vec<RecordBatch>>,
    pub(crate) stats: ParseStats,
}

/// Where each position of a line goes.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Date,
    Time,
    /// `timestamp`: epoch seconds with a fraction (real-time, v2).
    EpochSeconds,
    /// `timestamp(ms)`: epoch milliseconds (v2).
    EpochMillis,
    Field(usize),
    Ignored,
}

#[derive(Debug)]
pub(crate) struct Header {
    slots: Vec<Slot>,
    /// Fewest fields a line needs: up to the last of the time fields and sc-status.
    min_fields: usize,
}

impl Header {
    fn parse(line: &str) -> Result<Self, ObjectError> {
        let names: Vec<&str> = line["#Fields:".len()..].split_ascii_whitespace().collect();
        Self::from_names(&names)
    }

    /// A header from field names (W3C spellings or their snake_case forms).
    pub(crate) fn from_names(names: &[&str]) -> Result<Self, ObjectError> {
        if names.contains(&"x-event") || names.contains(&"x-sname") {
            return Err(ObjectError::Unsupported(
                "RTMP streaming distribution log (retired by CloudFront in 2020)".into(),
            ));
        }
        let slots: Vec<Slot> = names
            .iter()
            .map(|name| match *name {
                "date" => Slot::Date,
                "time" => Slot::Time,
                "timestamp" => Slot::EpochSeconds,
                "timestamp(ms)" | "timestamp_ms" => Slot::EpochMillis,
                other => field_index(other).map_or(Slot::Ignored, Slot::Field),
            })
            .collect();
        let position = |wanted: fn(&Slot) -> bool| slots.iter().position(wanted);
        let time_end = match (
            position(|s| matches!(s, Slot::Date)),
            position(|s| matches!(s, Slot::Time)),
            position(|s| matches!(s, Slot::EpochSeconds | Slot::EpochMillis)),
        ) {
            (_, _, Some(epoch)) => Some(epoch),
            (Some(date), Some(time), None) => Some(date.max(time)),
            _ => None,
        };
        let status = position(|s| matches!(s, Slot::Field(i) if *i == idx::SC_STATUS));
        let (Some(time_end), Some(status)) = (time_end, status) else {
            return Err(ObjectError::Unsupported(format!(
                "the header's {} fields lack a time (date and time, or timestamp) or sc-status",
                names.len()
            )));
        };
        Ok(Self {
            min_fields: time_end.max(status) + 1,
            slots,
        })
    }
}

/// Parses one text log object (standard, JSON lines or real-time).
///
/// `object` names the object in rows (`source_object`) and nowhere else.
#[cfg(test)]
pub(crate) fn parse(
    reader: impl BufRead,
    object: &str,
    options: &ParseOptions,
    hasher: &mut KeyHasher,
) -> Result<Parsed, ObjectError> {
    let mut parts = TextParts::new(reader, options)?;
    let (parsed, _) = parts.next_part(object, options, hasher, u64::MAX)?;
    Ok(parsed)
}

/// A text log object read a part at a time: each part holds the rows of
/// about a given amount of log text, so that an object of any size is
/// parsed (and committed) in bounded memory.
pub(crate) struct TextParts<R> {
    reader: R,
    saved: Option<Saved>,
    line_no: u64,
    saw_header: bool,
    json: Option<bool>,
    realtime: bool,
    comments: u64,
    /// A line that straddles two reads, copied here.
    carry: Vec<u8>,
    /// Bytes of an overlong line seen so far, while its end is skipped to.
    overlong: Option<u64>,
    done: bool,
}

impl<R: BufRead> TextParts<R> {
    pub(crate) fn new(reader: R, options: &ParseOptions) -> Result<Self, ObjectError> {
        let realtime = matches!(options.format, LogFormat::Realtime(_));
        Ok(Self {
            reader,
            saved: Some(Saved::new(options)?),
            line_no: 0,
            saw_header: realtime,
            json: None,
            realtime,
            comments: 0,
            carry: Vec::new(),
            overlong: None,
            done: false,
        })
    }

    /// Parses on from where the last part ended until at least `part_bytes`
    /// of log text have been read, or to the end: the part's rows and counts,
    /// and whether the object goes on. The counts are the part's own; a part
    /// of an object that goes on holds at least one request.
    pub(crate) fn next_part(
        &mut self,
        object: &str,
        options: &ParseOptions,
        hasher: &mut KeyHasher,
        part_bytes: u64,
    ) -> Result<(Parsed, bool), ObjectError> {
        let Some(saved) = self.saved.take() else {
            return Ok((Parsed::default(), false));
        };
        let mut parser = LineParser::resume(object, options, hasher, saved);
        let more = self.read(&mut parser, options.max_line_bytes, part_bytes)?;
        let (part, saved) = parser.take_part();
        if more {
            self.saved = Some(saved);
            return Ok((part, true));
        }
        if !self.saw_header && (part.stats.lines > 0 || self.comments > 0) {
            return Err(ObjectError::NotALog(
                "no #Fields header line (real-time logs need --format realtime)".into(),
            ));
        }
        Ok((part, false))
    }

    /// Reads lines into `parser` until the part is full (true) or the object
    /// ends (false).
    fn read(
        &mut self,
        parser: &mut LineParser<'_, '_>,
        max_line: usize,
        part_bytes: u64,
    ) -> Result<bool, ObjectError> {
        // Lines are handled where the decompressor put them; only a line that
        // straddles two reads is copied, into `carry`.
        let mut lines = Lines {
            parser,
            line_no: self.line_no,
            saw_header: self.saw_header,
            comments: self.comments,
            json: self.json,
            realtime: self.realtime,
        };
        let carry = &mut self.carry;
        let overlong = &mut self.overlong;
        let full = loop {
            if self.done {
                break false;
            }
            if lines.parser.stats.bytes >= part_bytes && lines.parser.stats.requests > 0 {
                break true;
            }
            let chunk = match self.reader.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) => {
                    self.done = true;
                    return Err(object_error(e));
                }
            };
            if chunk.is_empty() {
                self.done = true;
                if let Some(seen) = overlong.take() {
                    lines.overlong(seen, max_line);
                } else if !carry.is_empty() {
                    lines.line(carry)?;
                    carry.clear();
                }
                break false;
            }
            let read = chunk.len();
            let mut start = 0;
            if let Some(seen) = *overlong {
                let Some(end) = memchr::memchr(b'\n', chunk) else {
                    *overlong = Some(seen + read as u64);
                    self.reader.consume(read);
                    continue;
                };
                lines.overlong(seen + end as u64 + 1, max_line);
                *overlong = None;
                start = end + 1;
            } else if !carry.is_empty() {
                let Some(end) = memchr::memchr(b'\n', chunk) else {
                    if carry.len() + read > max_line {
                        *overlong = Some((carry.len() + read) as u64);
                        *carry = Vec::new();
                    } else {
                        carry.extend_from_slice(chunk);
                    }
                    self.reader.consume(read);
                    continue;
                };
                if carry.len() + end + 1 > max_line {
                    lines.overlong((carry.len() + end + 1) as u64, max_line);
                    *carry = Vec::new();
                } else {
                    carry.extend_from_slice(&chunk[..=end]);
                    lines.line(carry)?;
                    carry.clear();
                }
                start = end + 1;
            }
            let base = start;
            let mut part_full = false;
            for end in memchr::memchr_iter(b'\n', &chunk[base..]) {
                let line = &chunk[start..=base + end];
                if line.len() > max_line {
                    lines.overlong(line.len() as u64, max_line);
                } else {
                    lines.line(line)?;
                }
                start = base + end + 1;
                if lines.parser.stats.bytes >= part_bytes && lines.parser.stats.requests > 0 {
                    part_full = true;
                    break;
                }
            }
            if part_full {
                // The rest of the read is the next part's.
                self.reader.consume(start);
                break true;
            }
            let rest = &chunk[start..];
            if rest.len() > max_line {
                *overlong = Some(rest.len() as u64);
            } else {
                carry.extend_from_slice(rest);
            }
            self.reader.consume(read);
        };
        (self.line_no, self.saw_header, self.comments, self.json) =
            (lines.line_no, lines.saw_header, lines.comments, lines.json);
        Ok(full)
    }
}

/// Checks, without keeping any row, that a text object reads to its end
/// within `max_bytes` and that each of its `#Fields:` lines is a header the
/// parser takes: what makes [`TextParts::next_part`] fail part-way. Before an
/// object's first part is committed, so that an object that cannot be read
/// whole has no rows in the lake.
pub(crate) fn check_text(mut reader: impl BufRead, max_line: usize) -> Result<(), ObjectError> {
    let mut at_line_start = true;
    // A `#` line being gathered (up to `max_line` bytes of it).
    let mut comment: Option<Vec<u8>> = None;
    let check = |line: &[u8]| -> Result<(), ObjectError> {
        let mut line = line;
        while let [rest @ .., b'\n' | b'\r'] = line {
            line = rest;
        }
        if line.starts_with(b"#Fields:") {
            Header::parse(&String::from_utf8_lossy(line))?;
        }
        Ok(())
    };
    loop {
        let chunk = reader.fill_buf().map_err(object_error)?;
        if chunk.is_empty() {
            break;
        }
        let read = chunk.len();
        let mut i = 0;
        while i < read {
            if let Some(line) = comment.as_mut() {
                let end = memchr::memchr(b'\n', &chunk[i..]);
                let upto = end.map_or(read, |e| i + e + 1);
                line.extend_from_slice(
                    &chunk[i..upto.min(i + (max_line + 1).saturating_sub(line.len()))],
                );
                i = upto;
                if end.is_some() {
                    if line.len() <= max_line {
                        check(line)?;
                    }
                    comment = None;
                    at_line_start = true;
                }
            } else if at_line_start {
                at_line_start = false;
                if chunk[i] == b'#' {
                    comment = Some(Vec::new());
                }
            } else {
                match memchr::memchr(b'\n', &chunk[i..]) {
                    Some(e) => {
                        i += e + 1;
                        at_line_start = true;
                    }
                    None => i = read,
                }
            }
        }
        reader.consume(read);
    }
    if let Some(line) = comment
        && line.len() <= max_line
    {
        check(&line)?;
    }
    Ok(())
}

/// What one object's lines have shown so far.
struct Lines<'p, 'a, 'h> {
    parser: &'p mut LineParser<'a, 'h>,
    line_no: u64,
    saw_header: bool,
    /// Decided by the first record: a JSON object per line, or tab-separated fields.
    json: Option<bool>,
    realtime: bool,
    /// `#` lines other than `#Fields:` (a text file of them is no log).
    comments: u64,
}

impl Lines<'_, '_, '_> {
    /// A line longer than the limit: a bad line, whose bytes were skipped.
    fn overlong(&mut self, bytes: u64, limit: usize) {
        self.line_no += 1;
        self.parser.stats.bytes += bytes;
        self.parser.stats.lines += 1;
        let reason = format!("{bytes} bytes long, over the {limit}-byte line limit");
        self.parser.count(Err(reason), self.line_no);
    }

    /// One line, with its end of line if it has one.
    fn line(&mut self, raw: &[u8]) -> Result<(), ObjectError> {
        self.line_no += 1;
        self.parser.stats.bytes += raw.len() as u64;
        let mut line = raw;
        while let [rest @ .., b'\n' | b'\r'] = line {
            line = rest;
        }
        if line.is_empty() {
            return Ok(());
        }
        if line[0] == b'#' {
            if line.starts_with(b"#Fields:") {
                let text = String::from_utf8_lossy(line);
                self.parser.header = Some(Header::parse(&text)?);
                self.saw_header = true;
            } else {
                self.comments += 1;
            }
            return Ok(());
        }
        let is_json = *self
            .json
            .get_or_insert(!self.realtime && !self.saw_header && line[0] == b'{');
        if is_json {
            self.saw_header = true;
            self.parser.json_line(line, self.line_no);
        } else {
            self.parser.line(line, self.line_no);
        }
        Ok(())
    }
}

/// What a [`LineParser`] carries from one part of an object to the next.
struct Saved {
    header: Option<Header>,
    rows: HourlyRows,
    fields: Vec<(usize, usize)>,
    record_names: Vec<String>,
    record_line: String,
}

impl Saved {
    fn new(options: &ParseOptions) -> Result<Self, ObjectError> {
        let header = match &options.format {
            LogFormat::Realtime(fields) => {
                let ordered = realtime_order(fields).map_err(ObjectError::Unsupported)?;
                Some(Header::from_names(&ordered)?)
            }
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

pub(crate) struct LineParser<'a, 'h> {
    object: &'a str,
    hasher: &'h mut KeyHasher,
    keys: KeyFinder<'a>,
    pub(crate) header: Option<Header>,
    rows: HourlyRows,
    pub(crate) stats: ParseStats,
    /// Reused per line: the byte range of each field.
    fields: Vec<(usize, usize)>,
    /// The field names of the last JSON or Parquet record (their header).
    record_names: Vec<String>,
    record_line: String,
}

impl<'a, 'h> LineParser<'a, 'h> {
    pub(crate) fn new(
        object: &'a str,
        options: &'a ParseOptions,
        hasher: &'h mut KeyHasher,
    ) -> Result<Self, ObjectError> {
        Ok(Self::resume(object, options, hasher, Saved::new(options)?))
    }

    pub(crate) fn finish(self) -> Parsed {
        Parsed {
            hours: self.rows.finish(),
            stats: self.stats,
        }
    }

    /// A parser that goes on from where [`Self::take_part`] left one.
    fn resume(
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
    fn take_part(self) -> (Parsed, Saved) {
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

    fn line(&mut self, line: &[u8], line_no: u64) {
        self.stats.lines += 1;
        let result = match std::str::from_utf8(line) {
            Ok(text) => self.try_line(text, line_no),
            Err(_) => Err("not valid UTF-8".to_string()),
        };
        self.count(result, line_no);
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

    /// One JSON object whose values are strings (or null).
    fn json_line(&mut self, line: &[u8], line_no: u64) {
        self.stats.lines += 1;
        let object: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(line)
        {
            Ok(object) => object,
            // serde_json's message may quote the line's text: give only where.
            Err(e) => {
                let reason = format!(
                    "not a JSON object ({:?} error at column {})",
                    e.classify(),
                    e.column()
                );
                return self.count(Err(reason), line_no);
            }
        };
        let record: Vec<(String, Option<String>)> = object
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s),
                    other => Some(other.to_string()),
                };
                (k, v)
            })
            .collect();
        let result = self.record(&record, line_no);
        self.count(result, line_no);
    }

    /// Counts and parses one record of named fields (a Parquet row).
    pub(crate) fn record_counted(&mut self, record: &[(String, Option<String>)], line_no: u64) {
        self.stats.lines += 1;
        let result = self.record(record, line_no);
        self.count(result, line_no);
    }

    /// A record of named fields (JSON lines, Parquet rows), parsed like a line
    /// under a header of its names.
    pub(crate) fn record(
        &mut self,
        record: &[(String, Option<String>)],
        line_no: u64,
    ) -> Result<(), String> {
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

/// Epoch seconds with an optional fraction (`1759687234.191`), times 1000 /
/// `scale`; `scale` 1 reads whole milliseconds.
fn parse_epoch(raw: &str, scale: i64) -> Option<i64> {
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    if scale == 1 {
        return (fraction.is_empty()).then_some(whole);
    }
    let mut ms = 0i64;
    for (i, b) in fraction.bytes().take(3).enumerate() {
        ms += i64::from(b - b'0') * 10i64.pow(2 - i as u32);
    }
    // A number too large for milliseconds is no time (found by fuzzing:
    // unchecked, it wrapped into a plausible instant in release builds).
    whole.checked_mul(scale)?.checked_add(ms)
}

/// `YYYY-MM-DD` and `HH:MM:SS` (UTC) to milliseconds since the epoch.
pub(crate) fn parse_timestamp(date: &str, time: &str) -> Option<i64> {
    let d = date.as_bytes();
    let t = time.as_bytes();
    if d.len() != 10 || d[4] != b'-' || d[7] != b'-' || t.len() != 8 || t[2] != b':' || t[5] != b':'
    {
        return None;
    }
    let num = |b: &[u8]| -> Option<i64> {
        b.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (num(&d[0..4])?, num(&d[5..7])?, num(&d[8..10])?);
    let (h, m, s) = (num(&t[0..2])?, num(&t[3..5])?, num(&t[6..8])?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + h) * 60 + m) * 60_000 + s * 1000)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::open_object;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Int16Type, Int64Type};

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/cloudfront/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn parse_bytes(data: &[u8]) -> Result<Parsed, ObjectError> {
        let options = ParseOptions {
            key_sources: crate::key::default_sources(),
            format: LogFormat::Auto,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        };
        parse(
            open_object(data, 1 << 30),
            "test-object",
            &options,
            &mut KeyHasher::new(None),
        )
    }

    fn all_rows(parsed: &Parsed) -> RecordBatch {
        let batches: Vec<_> = parsed.hours.values().flatten().cloned().collect();
        datafusion::arrow::compute::concat_batches(&crate::schema::requests_schema(), &batches)
            .unwrap()
    }

    fn i64_sum(batch: &RecordBatch, column: &str) -> i64 {
        batch
            .column_by_name(column)
            .unwrap()
            .as_primitive::<Int64Type>()
            .iter()
            .flatten()
            .sum()
    }

    fn statuses(batch: &RecordBatch) -> Vec<Option<i16>> {
        batch
            .column_by_name("sc_status")
            .unwrap()
            .as_primitive::<Int16Type>()
            .iter()
            .collect()
    }

    fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
        batch
            .column_by_name(column)
            .unwrap()
            .as_string::<i32>()
            .iter()
            .map(|s| s.map(str::to_string))
            .collect()
    }

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
    fn epoch_times_too_large_for_milliseconds_are_no_times() {
        assert_eq!(parse_epoch("1759687234.191", 1000), Some(1_759_687_234_191));
        assert_eq!(parse_epoch("1759687234191", 1), Some(1_759_687_234_191));
        // 17596872375968723 s is more milliseconds than an i64 holds.
        assert_eq!(parse_epoch("17596872375968723.191", 1000), None);
        assert_eq!(parse_epoch("9223372036854775807.999", 1000), None);
        assert_eq!(parse_epoch("99999999999999999999", 1), None);
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
        let hours: Vec<i64> = parsed.hours.keys().copied().collect();
        assert_eq!(hours, vec![1_759_626_000 / 3600]);
        assert_eq!(i64_sum(&all_rows(&parsed), "sc_bytes"), 8);
    }

    /// Lines are split where the decompressor's reads end, so a line may start
    /// in one read and end in another (or several later): every way of cutting
    /// the text gives the same rows, line numbers and byte count.
    #[test]
    fn lines_across_read_boundaries_parse_the_same() {
        let text = "\
#Fields: date time x-edge-location sc-bytes sc-status cs-uri-query\r\n\
2019-12-04\t21:02:31\tLAX1\t392\t200\tapi_key=a\r\n\
2019-12-04\t21:02:32\tLAX1\tlots\t200\t-\n\
\n\
2019-12-04\t22:02:33\tSFO5\t17\t404\tapi_key=b\n\
2019-12-04\t22:02:34\tSFO5\t1000\t200\tapi_key=a";
        let options = ParseOptions {
            key_sources: crate::key::default_sources(),
            format: LogFormat::Auto,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        };
        let parse_in_reads_of = |size: usize| {
            let reader = std::io::BufReader::with_capacity(size, text.as_bytes());
            parse(reader, "test-object", &options, &mut KeyHasher::new(None)).unwrap()
        };
        for size in [1, 2, 3, 7, 40, 64, 1 << 16] {
            let parsed = parse_in_reads_of(size);
            assert_eq!(parsed.stats.bytes, text.len() as u64, "reads of {size}");
            assert_eq!(parsed.stats.lines, 4, "reads of {size}");
            assert_eq!(parsed.stats.requests, 4, "reads of {size}");
            assert_eq!(parsed.stats.bad_lines, 0, "reads of {size}");
            let damaged: Vec<u64> = parsed
                .stats
                .field_error_samples
                .iter()
                .map(|f| f.line)
                .collect();
            assert_eq!(damaged, vec![3], "reads of {size}");
            let rows = all_rows(&parsed);
            assert_eq!(
                i64_sum(&rows, "sc_bytes"),
                392 + 17 + 1000,
                "reads of {size}"
            );
            assert_eq!(
                statuses(&rows),
                vec![Some(200), Some(200), Some(404), Some(200)]
            );
            let hasher = KeyHasher::new(None);
            assert_eq!(
                strings(&rows, "api_key_id"),
                vec![
                    Some(hasher.id_of("a")),
                    None,
                    Some(hasher.id_of("b")),
                    Some(hasher.id_of("a"))
                ],
                "reads of {size}"
            );
        }
    }

    /// A line over the limit is one bad line however the reads cut it, and
    /// its bytes are never gathered: the lines around it parse as usual.
    #[test]
    fn overlong_lines_are_bad_lines_without_being_held() {
        let long_agent = "A".repeat(5000);
        let text = format!(
            "#Fields: date time x-edge-location sc-bytes sc-status cs(User-Agent)\n\
2019-12-04\t21:02:31\tLAX1\t1\t200\tshort\n\
2019-12-04\t21:02:32\tLAX1\t2\t200\t{long_agent}\n\
2019-12-04\t21:02:33\tLAX1\t4\t200\tshort\n\
2019-12-04\t21:02:34\tLAX1\t8\t200\t{long_agent}"
        );
        let options = ParseOptions {
            key_sources: crate::key::default_sources(),
            format: LogFormat::Auto,
            max_line_bytes: 1000,
        };
        for size in [1, 7, 999, 1000, 1001, 4096, 1 << 16] {
            let reader = std::io::BufReader::with_capacity(size, text.as_bytes());
            let parsed = parse(reader, "o", &options, &mut KeyHasher::new(None)).unwrap();
            assert_eq!(parsed.stats.bytes, text.len() as u64, "reads of {size}");
            assert_eq!(parsed.stats.lines, 4, "reads of {size}");
            assert_eq!(parsed.stats.requests, 2, "reads of {size}");
            let bad: Vec<u64> = parsed.stats.bad_samples.iter().map(|b| b.line).collect();
            assert_eq!(bad, vec![3, 5], "reads of {size}");
            assert!(
                parsed.stats.bad_samples[0]
                    .reason
                    .contains("1000-byte line limit")
            );
            assert_eq!(
                i64_sum(&all_rows(&parsed), "sc_bytes"),
                1 + 4,
                "reads of {size}"
            );
        }
    }

    #[test]
    fn other_formats_are_refused_not_misparsed() {
        assert!(matches!(
            parse_bytes(&fixture("rtmp-17.log")),
            Err(ObjectError::Unsupported(_))
        ));
        assert!(matches!(
            parse_bytes(&fixture("realtime-2025-44.log")),
            Err(ObjectError::NotALog(_))
        ));
        // Markdown headings are `#` lines, but no `#Fields:` header.
        assert!(matches!(
            parse_bytes(b"# Our logs\n\n## Retention\n"),
            Err(ObjectError::NotALog(_))
        ));
        assert!(matches!(
            parse_bytes(b"<html>hello</html>\n"),
            Err(ObjectError::NotALog(_))
        ));
        // An empty object is a log with no requests.
        assert_eq!(parse_bytes(b"").unwrap().stats.requests, 0);
    }

    #[test]
    fn timestamps_are_validated() {
        assert_eq!(parse_timestamp("1970-01-01", "00:00:00"), Some(0));
        assert_eq!(
            parse_timestamp("2024-02-29", "23:59:59"),
            Some(1_709_251_199_000)
        );
        assert_eq!(parse_timestamp("2023-02-29", "00:00:00"), None);
        assert_eq!(parse_timestamp("2023-01-01", "24:00:00"), None);
        assert_eq!(parse_timestamp("2023-1-01", "00:00:00"), None);
    }

    /// Every standard fixture in one object (its header changes on the way),
    /// three times over, with malformed lines and one line over the limit.
    fn mixed_object() -> Vec<u8> {
        let mut text = Vec::new();
        for round in 0..3 {
            for name in [
                "standard-2012-2016-eras.log",
                "standard-2016-23-then-33.log",
                "standard-2020-33.log",
                "standard-2025-33.log",
                "standard-33-xff-escapes.log",
            ] {
                text.extend(fixture(name));
                if !text.ends_with(b"\n") {
                    text.push(b'\n');
                }
                text.extend(format!("not a request {round}\n").as_bytes());
            }
            text.extend(vec![b'x'; 9_000]);
            text.push(b'\n');
        }
        text
    }

    fn options(max_line_bytes: usize) -> ParseOptions {
        ParseOptions {
            key_sources: crate::key::default_sources(),
            format: LogFormat::Auto,
            max_line_bytes,
        }
    }

    /// An object read in parts gives, part after part, the rows and counts of
    /// the object read whole, whatever the part size.
    #[test]
    fn an_object_read_in_parts_is_the_object_read_whole() {
        let data = mixed_object();
        let options = options(4_096);
        let whole = parse(
            open_object(&data, 1 << 30),
            "o",
            &options,
            &mut KeyHasher::new(None),
        )
        .unwrap();
        assert!(whole.stats.requests > 40, "{:?}", whole.stats);
        assert!(
            whole.stats.bad_lines >= 18,
            "15 lines of text and 3 overlong, at least"
        );
        for part_bytes in [1, 700, 5_000, 1 << 20] {
            let mut parts = TextParts::new(open_object(&data, 1 << 30), &options).unwrap();
            let mut hasher = KeyHasher::new(None);
            let (mut rows, mut stats) = (
                BTreeMap::<i64, Vec<RecordBatch>>::new(),
                ParseStats::default(),
            );
            let mut n = 0;
            loop {
                let (part, more) = parts
                    .next_part("o", &options, &mut hasher, part_bytes)
                    .unwrap();
                n += 1;
                if more {
                    assert!(
                        part.stats.requests > 0,
                        "a part that goes on holds a request"
                    );
                }
                for (hour, batches) in part.hours {
                    rows.entry(hour).or_default().extend(batches);
                }
                stats.bytes += part.stats.bytes;
                stats.lines += part.stats.lines;
                stats.requests += part.stats.requests;
                stats.bad_lines += part.stats.bad_lines;
                stats.field_errors += part.stats.field_errors;
                stats.keyless += part.stats.keyless;
                stats.bad_samples.extend(part.stats.bad_samples);
                if !more {
                    break;
                }
            }
            let expect_parts = match part_bytes {
                1 => whole.stats.requests as usize,
                _ if part_bytes >= data.len() as u64 => 1,
                _ => 2,
            };
            assert!(n >= expect_parts, "{part_bytes}: {n} parts");
            assert_eq!(
                (stats.bytes, stats.lines, stats.requests, stats.bad_lines),
                (
                    whole.stats.bytes,
                    whole.stats.lines,
                    whole.stats.requests,
                    whole.stats.bad_lines
                ),
                "{part_bytes}"
            );
            assert_eq!(
                (stats.field_errors, stats.keyless),
                (whole.stats.field_errors, whole.stats.keyless)
            );
            assert_eq!(
                stats.bad_samples[..5],
                whole.stats.bad_samples[..],
                "{part_bytes}"
            );
            let schema = crate::schema::requests_schema();
            assert_eq!(
                rows.keys().collect::<Vec<_>>(),
                whole.hours.keys().collect::<Vec<_>>()
            );
            for (hour, batches) in &rows {
                let got = datafusion::arrow::compute::concat_batches(&schema, batches).unwrap();
                let want = datafusion::arrow::compute::concat_batches(&schema, &whole.hours[hour])
                    .unwrap();
                assert_eq!(got, want, "{part_bytes}: hour {hour}");
            }
        }
    }

    /// What would make an object fail part-way is found before any part is
    /// used: a damaged end, a header the parser refuses, the size cap.
    #[test]
    fn checking_an_object_whole_finds_what_fails_part_way() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let data = mixed_object();
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(check_text(open_object(&gz, 1 << 30), 4_096), Ok(()));
        assert_eq!(check_text(open_object(&data, 1 << 30), 4_096), Ok(()));
        assert!(matches!(
            check_text(open_object(&gz[..gz.len() - 100], 1 << 30), 4_096),
            Err(ObjectError::Decompress(_))
        ));
        assert_eq!(
            check_text(open_object(&gz, 10_000), 4_096),
            Err(ObjectError::TooLarge(10_000))
        );
        let mut refused = data.clone();
        refused.extend(b"#Fields: x-edge-location sc-bytes\n2025-01-01\t00:00:00\n");
        let whole = parse(
            open_object(&refused, 1 << 30),
            "o",
            &options(4_096),
            &mut KeyHasher::new(None),
        );
        let checked = check_text(open_object(&refused, 1 << 30), 4_096);
        assert!(whole.is_err(), "{whole:?}");
        assert_eq!(checked.unwrap_err(), whole.unwrap_err());
        // A `#Fields:` line over the line limit is a bad line, not a header.
        let mut long = data.clone();
        long.extend(b"#Fields: ");
        long.extend(vec![b'y'; 5_000]);
        long.push(b'\n');
        assert_eq!(check_text(open_object(&long, 1 << 30), 4_096), Ok(()));
    }
}
