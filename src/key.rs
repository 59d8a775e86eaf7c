//! Finding the API key in a request, turning it into its stored identity, and
//! redacting it from every stored field.
//!
//! The raw key lives only in memory between parsing and hashing: the lake holds
//! `api_key_id` (hex SHA-256 of the key, or HMAC-SHA256 keyed by
//! `EDGEMETER_KEY_SECRET`) and `api_key_hint` (its last 4 characters, only for keys
//! long enough that the hint never reveals more than half of the key).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::HashMap;

/// What replaces a key's value wherever it appears in a stored field.
pub const REDACTED: &str = "REDACTED";

/// The environment variable holding the HMAC secret for key ids.
pub const KEY_SECRET_ENV: &str = "EDGEMETER_KEY_SECRET";

/// The stored identity of one API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIdentity {
    /// Lowercase hex SHA-256 (or HMAC-SHA256) of the decoded key.
    pub id: String,
    /// The key's last 4 characters, when the key has at least 8.
    pub hint: Option<String>,
}

/// Hashes raw keys into [`KeyIdentity`]s, with a cache: there are far fewer
/// distinct keys than requests.
#[derive(Clone)]
pub struct KeyHasher {
    secret: Option<Vec<u8>>,
    cache: HashMap<Vec<u8>, KeyIdentity>,
}

impl std::fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret or the cached raw keys.
        f.debug_struct("KeyHasher")
            .field("hmac", &self.secret.is_some())
            .field("cached", &self.cache.len())
            .finish()
    }
}

impl KeyHasher {
    /// A hasher using plain SHA-256, or HMAC-SHA256 when `secret` is given.
    pub fn new(secret: Option<Vec<u8>>) -> Self {
        Self {
            secret: secret.filter(|s| !s.is_empty()),
            cache: HashMap::new(),
        }
    }

    /// A hasher configured from `EDGEMETER_KEY_SECRET`.
    pub fn from_env() -> Self {
        Self::new(std::env::var(KEY_SECRET_ENV).ok().map(String::into_bytes))
    }

    /// The identity of a decoded raw key.
    pub fn identify(&mut self, raw: &[u8]) -> &KeyIdentity {
        if !self.cache.contains_key(raw) {
            let identity = identity_of(self.secret.as_deref(), raw);
            self.cache.insert(raw.to_vec(), identity);
        }
        &self.cache[raw]
    }

    /// The `api_key_id` of a raw key given as text (for `--key-raw`, plans).
    pub fn id_of(&self, raw: &str) -> String {
        identity_of(self.secret.as_deref(), raw.as_bytes()).id
    }
}

fn identity_of(secret: Option<&[u8]>, raw: &[u8]) -> KeyIdentity {
    let digest: [u8; 32] = match secret {
        Some(secret) => {
            // HMAC accepts keys of any length.
            let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
                Ok(mac) => mac,
                Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
            };
            mac.update(raw);
            mac.finalize().into_bytes().into()
        }
        None => Sha256::digest(raw).into(),
    };
    let text = String::from_utf8_lossy(raw);
    let chars: Vec<char> = text.chars().collect();
    let hint = (chars.len() >= 8).then(|| chars[chars.len() - 4..].iter().collect());
    KeyIdentity {
        id: hex::encode(digest),
        hint,
    }
}

/// The outcome of looking for a key in a query string.
#[derive(Debug, PartialEq, Eq)]
pub struct QueryKey<'a> {
    /// The decoded key, if a non-empty key parameter was present.
    pub key: Option<Vec<u8>>,
    /// The query string to store: every key parameter's value replaced by
    /// [`REDACTED`]. Borrowed when nothing needed redacting.
    pub redacted: Cow<'a, str>,
}

/// Finds the first of `params` in a logged `cs-uri-query` and redacts all of them.
///
/// The query is split on `&` and `=` first; then each name and value is decoded
/// twice: once for CloudFront's own encoding of the log field (`%25` → `%`) and once
/// for the client's URL encoding. `+` is kept as `+` (CloudFront logs a space as
/// `%20`, so a `+` in the log is a literal `+` of the request). Parameters are
/// tried in the order of `params`; the first one present with a non-empty value wins.
pub fn key_from_query<'a>(query: &'a str, params: &[String]) -> QueryKey<'a> {
    if query.is_empty() || query == "-" || params.is_empty() {
        return QueryKey {
            key: None,
            redacted: Cow::Borrowed(query),
        };
    }
    let mut found: Option<(usize, Vec<u8>)> = None;
    let mut redact = false;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode_twice(name.as_bytes());
        let Some(rank) = params.iter().position(|p| p.as_bytes() == name.as_ref()) else {
            continue;
        };
        redact = true;
        let value = decode_twice(value.as_bytes());
        if !value.is_empty() && found.as_ref().is_none_or(|(best, _)| rank < *best) {
            found = Some((rank, value.into_owned()));
        }
    }
    let redacted = if redact {
        Cow::Owned(redact_query(query, params))
    } else {
        Cow::Borrowed(query)
    };
    QueryKey {
        key: found.map(|(_, key)| key),
        redacted,
    }
}

fn redact_query(query: &str, params: &[String]) -> String {
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, _)) if is_param(name, params) => {
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(pair),
        }
    }
    out
}

fn is_param(name: &str, params: &[String]) -> bool {
    let name = decode_twice(name.as_bytes());
    params.iter().any(|p| p.as_bytes() == name.as_ref())
}

/// Undoes CloudFront's percent-encoding of the field and then the client's.
pub fn decode_twice(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.contains(&b'%') {
        return Cow::Borrowed(raw);
    }
    let once: Vec<u8> = percent_encoding::percent_decode(raw).collect();
    if !once.contains(&b'%') {
        return Cow::Owned(once);
    }
    Cow::Owned(percent_encoding::percent_decode(&once).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn double_encoded_key_is_decoded_twice_and_plus_stays() {
        let q = key_from_query("a=1&api_key=k%252B%252F&b=2", &params(&["api_key"]));
        assert_eq!(q.key.as_deref(), Some(&b"k+/"[..]));
        assert_eq!(q.redacted, "a=1&api_key=REDACTED&b=2");

        let q = key_from_query("api_key=a+b", &params(&["api_key"]));
        assert_eq!(q.key.as_deref(), Some(&b"a+b"[..]));
    }

    #[test]
    fn splits_before_decoding() {
        // An encoded `&` inside the value belongs to the value.
        let q = key_from_query("api_key=ab%2526cd&x=1", &params(&["api_key"]));
        assert_eq!(q.key.as_deref(), Some(&b"ab&cd"[..]));
        assert_eq!(q.redacted, "api_key=REDACTED&x=1");
    }

    #[test]
    fn parameters_are_tried_in_order_and_all_are_redacted() {
        let q = key_from_query("token=t1&key=k1", &params(&["key", "token"]));
        assert_eq!(q.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(q.redacted, "token=REDACTED&key=REDACTED");
    }

    #[test]
    fn missing_or_empty_key_is_none() {
        let p = params(&["api_key"]);
        assert_eq!(key_from_query("-", &p).key, None);
        assert_eq!(key_from_query("a=b&c=d", &p).key, None);
        assert_eq!(key_from_query("a=b&c=d", &p).redacted, "a=b&c=d");
        let q = key_from_query("api_key=&a=b", &p);
        assert_eq!(q.key, None);
        assert_eq!(q.redacted, "api_key=REDACTED&a=b");
    }

    #[test]
    fn ids_are_sha256_or_hmac() {
        let mut h = KeyHasher::new(None);
        // sha256("abc"), from FIPS 180-2.
        assert_eq!(
            h.identify(b"abc").id,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(h.identify(b"abc").hint, None);
        assert_eq!(
            h.identify(b"ak_live_12345678").hint.as_deref(),
            Some("5678")
        );

        // HMAC-SHA256 test case 2 of RFC 4231.
        let mut h = KeyHasher::new(Some(b"Jefe".to_vec()));
        assert_eq!(
            h.identify(b"what do ya want for nothing?").id,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
