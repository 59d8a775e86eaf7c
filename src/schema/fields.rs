//! The field catalogue: every CloudFront log field edgemeter knows, the lake
//! column it lands in, and that column's type. The parser maps headers
//! through it and the lake's schema is derived from it; the positions the
//! parser reads directly and the real-time field order are `format`'s.
//!
//! CloudFront only ever appended fields (12 → 15 → 18 → 19 → 23 → 24 → 26 → 33,
//! then 34/35 and the v2 additions), so files are mapped by their `#Fields:`
//! header through this table, never by position. Fields that are not in the
//! table are ignored; a field in the table that a file lacks is null.

/// The Arrow type a lake column is stored as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnType {
    Utf8,
    Int16,
    Int32,
    Int64,
    Float64,
}

/// One known log field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldSpec {
    /// The lake column (snake_case).
    pub(crate) column: &'static str,
    /// The names the field goes by in `#Fields:` headers (W3C spelling first).
    pub(crate) names: &'static [&'static str],
    pub(crate) ty: ColumnType,
}

use ColumnType::*;

macro_rules! field {
    ($col:literal, $ty:expr, [$($name:literal),+]) => {
        FieldSpec { column: $col, names: &[$($name),+], ty: $ty }
    };
}

/// Every log field that becomes a lake column, in lake column order.
///
/// `date` and `time` are not here: together they become the `timestamp` column.
pub(crate) const FIELDS: &[FieldSpec] = &[
    // The 12 fields of the first era (2008–2012).
    field!("x_edge_location", Utf8, ["x-edge-location"]),
    field!("sc_bytes", Int64, ["sc-bytes"]),
    field!("c_ip", Utf8, ["c-ip"]),
    field!("cs_method", Utf8, ["cs-method"]),
    field!("cs_host", Utf8, ["cs(Host)", "cs-host"]),
    field!("cs_uri_stem", Utf8, ["cs-uri-stem"]),
    field!("sc_status", Int16, ["sc-status"]),
    field!("cs_referer", Utf8, ["cs(Referer)", "cs-referer"]),
    field!("cs_user_agent", Utf8, ["cs(User-Agent)", "cs-user-agent"]),
    field!("cs_uri_query", Utf8, ["cs-uri-query"]),
    // Appended 2012–2019.
    field!("cs_cookie", Utf8, ["cs(Cookie)", "cs-cookie"]),
    field!("x_edge_result_type", Utf8, ["x-edge-result-type"]),
    field!("x_edge_request_id", Utf8, ["x-edge-request-id"]),
    field!("x_host_header", Utf8, ["x-host-header"]),
    field!("cs_protocol", Utf8, ["cs-protocol"]),
    field!("cs_bytes", Int64, ["cs-bytes"]),
    field!("time_taken", Float64, ["time-taken"]),
    field!("x_forwarded_for", Utf8, ["x-forwarded-for"]),
    field!("ssl_protocol", Utf8, ["ssl-protocol"]),
    field!("ssl_cipher", Utf8, ["ssl-cipher"]),
    field!(
        "x_edge_response_result_type",
        Utf8,
        ["x-edge-response-result-type"]
    ),
    field!("cs_protocol_version", Utf8, ["cs-protocol-version"]),
    field!("fle_status", Utf8, ["fle-status"]),
    field!("fle_encrypted_fields", Int32, ["fle-encrypted-fields"]),
    field!("c_port", Int32, ["c-port"]),
    field!("time_to_first_byte", Float64, ["time-to-first-byte"]),
    field!(
        "x_edge_detailed_result_type",
        Utf8,
        ["x-edge-detailed-result-type"]
    ),
    field!("sc_content_type", Utf8, ["sc-content-type"]),
    field!("sc_content_len", Int64, ["sc-content-len"]),
    field!("sc_range_start", Int64, ["sc-range-start"]),
    field!("sc_range_end", Int64, ["sc-range-end"]),
    // Fields 34 and 35 of standard logs, and the v2 / real-time additions.
    field!("origin_fbl", Float64, ["origin-fbl"]),
    field!("origin_lbl", Float64, ["origin-lbl"]),
    field!("c_country", Utf8, ["c-country"]),
    field!("asn", Int64, ["asn"]),
    field!(
        "cache_behavior_path_pattern",
        Utf8,
        ["cache-behavior-path-pattern"]
    ),
    field!("viewer_request_log_data", Utf8, ["viewer-request-log-data"]),
    // Real-time log fields (and their v2 counterparts).
    field!("s_ip", Utf8, ["s-ip"]),
    field!("c_ip_version", Utf8, ["c-ip-version"]),
    field!("cs_accept_encoding", Utf8, ["cs-accept-encoding"]),
    field!("cs_accept", Utf8, ["cs-accept"]),
    field!("cs_headers", Utf8, ["cs-headers"]),
    field!("cs_header_names", Utf8, ["cs-header-names"]),
    field!("cs_headers_count", Int32, ["cs-headers-count"]),
    field!("primary_distribution_id", Utf8, ["primary-distribution-id"]),
    field!(
        "primary_distribution_dns_name",
        Utf8,
        ["primary-distribution-dns-name"]
    ),
];

/// Index of a field in [`FIELDS`], by any of its header names.
pub(crate) fn field_index(name: &str) -> Option<usize> {
    FIELDS
        .iter()
        .position(|f| f.names.iter().any(|n| n.eq_ignore_ascii_case(name)) || f.column == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for f in FIELDS {
            assert!(seen.insert(f.column), "duplicate column {}", f.column);
            assert!(
                f.column
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{} is not snake_case",
                f.column
            );
        }
    }

    #[test]
    fn header_names_resolve() {
        assert_eq!(
            FIELDS[field_index("cs(User-Agent)").unwrap()].column,
            "cs_user_agent"
        );
        assert_eq!(
            FIELDS[field_index("sc-status").unwrap()].column,
            "sc_status"
        );
        assert_eq!(field_index("x-event"), None);
    }
}
