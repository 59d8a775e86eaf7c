//! CloudFront real-time logs: records without a header, carrying the fields
//! their configuration names in AWS's canonical order, whatever order the
//! configuration lists them in. Their header is built from that order.

use super::ObjectError;
use super::header::Header;

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

/// The header of real-time records carrying the configured `fields`.
pub(super) fn header(fields: &[String]) -> Result<Header, ObjectError> {
    let ordered = realtime_order(fields).map_err(ObjectError::Unsupported)?;
    Header::from_names(&ordered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::fields::field_index;

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
