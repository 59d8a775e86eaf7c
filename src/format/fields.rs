//! What the parser needs of the field catalogue ([`crate::schema::fields`])
//! beyond the catalogue itself: the positions it reads directly and the text
//! fields a found key is also redacted from.

use crate::schema::fields::field_index;

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
