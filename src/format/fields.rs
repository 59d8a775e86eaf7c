//! What the parser needs of the field catalogue ([`crate::schema::fields`])
//! beyond the catalogue itself: the positions it reads directly, the text
//! fields a found key is also redacted from, and the canonical order of
//! real-time log fields.

use crate::schema::fields::field_index;

/// The fields of CloudFront real-time logs in AWS's canonical order: records
/// carry the configured fields in this order, whatever order the
/// configuration lists them in.
pub(crate) const REALTIME_CANONICAL: &[&str] = &[
    "timestamp",
    "c-ip",
    "s-ip",
    "time-to-first-byte",
    "sc-status",
    "sc-bytes",
    "cs-method",
    "cs-protocol",
    "cs-host",
    "cs-uri-stem",
    "cs-bytes",
    "x-edge-location",
    "x-edge-request-id",
    "x-host-header",
    "time-taken",
    "cs-protocol-version",
    "c-ip-version",
    "cs-user-agent",
    "cs-referer",
    "cs-cookie",
    "cs-uri-query",
    "x-edge-response-result-type",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-result-type",
    "fle-encrypted-fields",
    "fle-status",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
    "c-port",
    "x-edge-detailed-result-type",
    "c-country",
    "cs-accept-encoding",
    "cs-accept",
    "cache-behavior-path-pattern",
    "cs-headers",
    "cs-header-names",
    "cs-headers-count",
    "primary-distribution-id",
    "primary-distribution-dns-name",
    "origin-fbl",
    "origin-lbl",
    "asn",
];

/// Orders configured real-time fields canonically; unknown names are an error.
pub(crate) fn realtime_order(fields: &[String]) -> Result<Vec<&'static str>, String> {
    for f in fields {
        if !REALTIME_CANONICAL.contains(&f.as_str()) {
            return Err(format!("{f:?} is not a real-time log field"));
        }
    }
    Ok(REALTIME_CANONICAL
        .iter()
        .copied()
        .filter(|c| fields.iter().any(|f| f == c))
        .collect())
}

/// Positions in [`FIELDS`] of the fields the parser reads directly
/// (checked against the table by a test).
pub(crate) mod idx {
    #[cfg(test)]
    pub(crate) const SC_BYTES: usize = 1;
    pub(crate) const SC_STATUS: usize = 6;
    pub(crate) const CS_REFERER: usize = 7;
    pub(crate) const CS_USER_AGENT: usize = 8;
    pub(crate) const CS_URI_QUERY: usize = 9;
    pub(crate) const CS_URI_STEM: usize = 5;
    pub(crate) const CS_COOKIE: usize = 10;
    #[cfg(test)]
    pub(crate) const X_EDGE_REQUEST_ID: usize = 12;
    pub(crate) const VIEWER_REQUEST_LOG_DATA: usize = 36;
    pub(crate) const CS_HEADERS: usize = 41;
}

/// Text fields a client writes that hold no key source: a key found in the
/// request is also redacted from them. (The key sources themselves, referer
/// and user agent are redacted by [`crate::key`].)
pub(crate) fn other_client_text_fields() -> &'static [usize] {
    static FIELDS_BY_NAME: std::sync::LazyLock<Vec<usize>> = std::sync::LazyLock::new(|| {
        [
            "cs-method",
            "cs(Host)",
            "x-host-header",
            "x-forwarded-for",
            "cs-accept-encoding",
            "cs-accept",
            "cs-header-names",
        ]
        .iter()
        .map(|name| field_index(name).expect("a field of the table"))
        .collect()
    });
    &FIELDS_BY_NAME
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::fields::FIELDS;

    #[test]
    fn fixed_positions_match_the_table() {
        assert_eq!(FIELDS[idx::SC_BYTES].column, "sc_bytes");
        assert_eq!(FIELDS[idx::SC_STATUS].column, "sc_status");
        assert_eq!(FIELDS[idx::CS_URI_QUERY].column, "cs_uri_query");
        assert_eq!(FIELDS[idx::CS_REFERER].column, "cs_referer");
        assert_eq!(FIELDS[idx::CS_USER_AGENT].column, "cs_user_agent");
        assert_eq!(FIELDS[idx::X_EDGE_REQUEST_ID].column, "x_edge_request_id");
        assert_eq!(FIELDS[idx::CS_URI_STEM].column, "cs_uri_stem");
        assert_eq!(FIELDS[idx::CS_COOKIE].column, "cs_cookie");
        assert_eq!(
            FIELDS[idx::VIEWER_REQUEST_LOG_DATA].column,
            "viewer_request_log_data"
        );
        assert_eq!(FIELDS[idx::CS_HEADERS].column, "cs_headers");
    }
}

#[cfg(test)]
mod realtime_tests {
    use super::*;

    #[test]
    fn configured_fields_are_put_in_canonical_order() {
        let shuffled: Vec<String> = [
            "cs-headers",
            "sc-status",
            "timestamp",
            "c-ip",
            "cs-uri-query",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            realtime_order(&shuffled).unwrap(),
            [
                "timestamp",
                "c-ip",
                "sc-status",
                "cs-uri-query",
                "cs-headers"
            ]
        );
        assert!(realtime_order(&["sc-bytez".to_string()]).is_err());
        for name in REALTIME_CANONICAL.iter().filter(|n| **n != "timestamp") {
            assert!(field_index(name).is_some(), "{name} has a lake column");
        }
    }
}
