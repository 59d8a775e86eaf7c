//! A text object's lines. They are read where the decompressor put them, a
//! part of the object at a time (so that an object of any size is parsed in
//! bounded memory), and each goes to what owns it: a `#Fields:` line to
//! [`Header`], a JSON object to `json`, a tab-separated line to the line
//! parser (`w3c`); other `#` lines are comments, and a line over the limit is
//! a bad line, skipped without being held. An object whose lines are neither
//! standard nor JSON logs (no header) is no log.

use super::decompress::object_error;
use super::header::Header;
use super::json;
use super::w3c::{LineParser, Saved};
use super::{LogFormat, ObjectError, ParseOptions, Parsed};
use crate::key::KeyHasher;
use std::io::BufRead;

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
    pub(super) fn new(reader: R, options: &ParseOptions) -> Result<Self, ObjectError> {
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
    pub(super) fn next_part(
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
            if lines.parser.part_is_full(part_bytes) {
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
                if lines.parser.part_is_full(part_bytes) {
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
        self.parser.read_bytes(bytes);
        let reason = format!("{bytes} bytes long, over the {limit}-byte line limit");
        self.parser.bad_line(reason, self.line_no);
    }

    /// One line, with its end of line if it has one.
    fn line(&mut self, raw: &[u8]) -> Result<(), ObjectError> {
        self.line_no += 1;
        self.parser.read_bytes(raw.len() as u64);
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
                self.parser.set_header(Header::parse(&text)?);
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
            json::parse_line(self.parser, line, self.line_no);
        } else {
            self.parser.line(line, self.line_no);
        }
        Ok(())
    }
}

/// Checks, without keeping any row, that a text object reads to its end
/// within `max_bytes` and that each of its `#Fields:` lines is a header the
/// parser takes: what makes [`TextParts::next_part`] fail part-way. Before an
/// object's first part is committed, so that an object that cannot be read
/// whole has no rows in the lake.
pub(super) fn check_text(mut reader: impl BufRead, max_line: usize) -> Result<(), ObjectError> {
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

/// Parses one text log object (standard, JSON lines or real-time).
///
/// `object` names the object in rows (`source_object`) and nowhere else.
#[cfg(test)]
pub(super) fn parse(
    reader: impl BufRead,
    object: &str,
    options: &ParseOptions,
    hasher: &mut KeyHasher,
) -> Result<Parsed, ObjectError> {
    let mut parts = TextParts::new(reader, options)?;
    let (parsed, _) = parts.next_part(object, options, hasher, u64::MAX)?;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::super::decompress::open_object;
    use super::super::testing::*;
    use super::super::{DEFAULT_MAX_LINE_BYTES, ParseStats};
    use super::*;
    use crate::time::Hour;
    use datafusion::arrow::array::RecordBatch;
    use std::collections::BTreeMap;

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
                BTreeMap::<Hour, Vec<RecordBatch>>::new(),
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
                assert_eq!(got, want, "{part_bytes}: hour {hour:?}");
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
