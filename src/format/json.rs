//! CloudFront standard logging v2 delivered as JSON lines: one object per
//! line, keyed by W3C field names or their snake_case forms, its values
//! strings (or null). Each object is handed to the line parser as a record of
//! named fields ([`LineParser::record_counted`]), so every rule of the text
//! formats (nulls, keys, redaction, bad lines) applies unchanged. `framing`
//! tells a JSON line from a tab-separated one.

use super::w3c::LineParser;

/// One JSON object whose values are strings (or null).
pub(super) fn parse_line(parser: &mut LineParser<'_, '_>, line: &[u8], line_no: u64) {
    let object: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(line) {
        Ok(object) => object,
        // serde_json's message may quote the line's text: give only where.
        Err(e) => {
            let reason = format!(
                "not a JSON object ({:?} error at column {})",
                e.classify(),
                e.column()
            );
            return parser.bad_line(reason, line_no);
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
    parser.record_counted(&record, line_no);
}
