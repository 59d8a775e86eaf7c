//! Endpoint templates: a request path with its ids folded out
//! (`/v1/users/123` → `/v1/users/{id}`), what analytics group by and meters
//! filter on. The SQL function `endpoint_template` (`query::udf`) and the
//! hourly rollup (`lake::rollup`) both compute it here, so they agree.

/// Replaces id-like path segments with `{id}`.
pub(crate) fn endpoint_template(stem: &str) -> String {
    let mut out = String::with_capacity(stem.len());
    endpoint_template_into(stem, &mut out);
    out
}

/// [`endpoint_template`], appended to `out` (a buffer reused across rows).
pub(crate) fn endpoint_template_into(stem: &str, out: &mut String) {
    for (i, segment) in stem.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if is_id(segment) {
            out.push_str("{id}");
        } else {
            out.push_str(segment);
        }
    }
}

fn is_id(segment: &str) -> bool {
    let s = segment.as_bytes();
    if s.is_empty() {
        return false;
    }
    if s.iter().all(u8::is_ascii_digit) {
        return true;
    }
    // 8-4-4-4-12 hex: a UUID.
    let uuid = s.len() == 36
        && s.iter().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if uuid {
        return true;
    }
    // Long hex (≥ 16) with a digit, or long base62 tokens (≥ 20) mixing digits and letters.
    let hex =
        s.len() >= 16 && s.iter().all(u8::is_ascii_hexdigit) && s.iter().any(u8::is_ascii_digit);
    let base62 = s.len() >= 20
        && s.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
        && s.iter().any(u8::is_ascii_digit)
        && s.iter().any(u8::is_ascii_alphabetic);
    hex || base62
}
