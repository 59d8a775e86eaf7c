//! Finding the API key in a request, turning it into its stored identity, and
//! redacting it from every stored field.
//!
//! The raw key lives only in memory between parsing and hashing: the lake holds
//! `api_key_id` (hex SHA-256 of the key, or HMAC-SHA256 keyed by
//! `EDGEMETER_KEY_SECRET`) and `api_key_hint` (its last 4 characters, only for keys
//! long enough that the hint never reveals more than half of the key).

use datafusion::common::HashMap;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::borrow::Cow;

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
        let secret = self.secret.as_deref();
        self.cache
            .entry_ref(raw)
            .or_insert_with(|| identity_of(secret, raw))
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

/// Where an API key may be found in a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum KeySource {
    /// A query parameter (`cs-uri-query`, or the query part of `cs-uri-stem`).
    Query(String),
    /// A request header in `cs-headers` (name matched case-insensitively).
    Header(String),
    /// A cookie in `cs(Cookie)`.
    Cookie(String),
    /// A `name=value&…` pair in `viewer-request-log-data` (set by a CloudFront Function).
    LogData(String),
}

impl std::str::FromStr for KeySource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, name) = s.split_once(':').ok_or_else(|| {
            format!("{s:?}: use query:NAME, header:NAME, cookie:NAME or log-data:NAME")
        })?;
        if name.is_empty() {
            return Err(format!("{s:?}: the name is empty"));
        }
        let name = name.to_string();
        match kind {
            "query" => Ok(Self::Query(name)),
            "header" => Ok(Self::Header(name)),
            "cookie" => Ok(Self::Cookie(name)),
            "log-data" => Ok(Self::LogData(name)),
            _ => Err(format!(
                "{s:?}: use query:NAME, header:NAME, cookie:NAME or log-data:NAME"
            )),
        }
    }
}

impl TryFrom<String> for KeySource {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<KeySource> for String {
    fn from(k: KeySource) -> String {
        match k {
            KeySource::Query(n) => format!("query:{n}"),
            KeySource::Header(n) => format!("header:{n}"),
            KeySource::Cookie(n) => format!("cookie:{n}"),
            KeySource::LogData(n) => format!("log-data:{n}"),
        }
    }
}

/// The default key sources, tried in order.
pub fn default_sources() -> Vec<KeySource> {
    vec![
        KeySource::Query("api_key".into()),
        KeySource::Header("x-api-key".into()),
        KeySource::LogData("api_key".into()),
    ]
}

/// The fields of a request that can carry a key, as logged.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyFields<'a> {
    pub query: Option<&'a str>,
    pub stem: Option<&'a str>,
    pub headers: Option<&'a str>,
    pub cookie: Option<&'a str>,
    pub log_data: Option<&'a str>,
}

/// The key found, and the fields to store with every key source's value
/// redacted (`None`: store the field unchanged).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FoundKey<'a> {
    /// Decoded; borrowed from the field when it needed no decoding.
    pub key: Option<Cow<'a, [u8]>>,
    pub query: Option<String>,
    pub stem: Option<String>,
    pub headers: Option<String>,
    pub cookie: Option<String>,
    pub log_data: Option<String>,
}

/// Looks for a key through `sources` in order and redacts all of them.
pub fn find_key<'a>(sources: &[KeySource], fields: KeyFields<'a>) -> FoundKey<'a> {
    KeyFinder::new(sources).find(fields)
}

/// Key sources sorted by the field they read, made once per object so that
/// each line only splits its fields.
#[derive(Debug, Clone)]
pub struct KeyFinder<'s> {
    sources: &'s [KeySource],
    query: Vec<&'s str>,
    header: Vec<&'s str>,
    cookie: Vec<&'s str>,
    log_data: Vec<&'s str>,
}

impl<'s> KeyFinder<'s> {
    pub fn new(sources: &'s [KeySource]) -> Self {
        let mut finder = Self {
            sources,
            query: Vec::new(),
            header: Vec::new(),
            cookie: Vec::new(),
            log_data: Vec::new(),
        };
        for source in sources {
            let (names, name) = match source {
                KeySource::Query(n) => (&mut finder.query, n),
                KeySource::Header(n) => (&mut finder.header, n),
                KeySource::Cookie(n) => (&mut finder.cookie, n),
                KeySource::LogData(n) => (&mut finder.log_data, n),
            };
            names.push(name.as_str());
        }
        finder
    }

    /// The first key found through the sources in order, and every source redacted.
    pub fn find<'a>(&self, fields: KeyFields<'a>) -> FoundKey<'a> {
        fn present(f: Option<&str>) -> Option<&str> {
            f.filter(|v| !v.is_empty() && *v != "-")
        }
        let (stem_path, stem_query) = match present(fields.stem).and_then(|s| s.split_once('?')) {
            Some((path, q)) => (Some(path), Some(q)),
            None => (None, None),
        };
        let mut out = FoundKey::default();
        let q = present(fields.query).map(|q| pairs(q, '&', &self.query, false));
        let sq = stem_query.map(|q| pairs(q, '&', &self.query, false));
        let h = present(fields.headers).map(|h| headers(h, &self.header));
        let c = present(fields.cookie).map(|c| pairs(c, ';', &self.cookie, true));
        let l = present(fields.log_data).map(|l| pairs(l, '&', &self.log_data, false));
        for source in self.sources {
            let found = match source {
                KeySource::Query(n) => q
                    .as_ref()
                    .and_then(|p| p.get(n))
                    .or_else(|| sq.as_ref().and_then(|p| p.get(n))),
                KeySource::Header(n) => h.as_ref().and_then(|p| p.get(n)),
                KeySource::Cookie(n) => c.as_ref().and_then(|p| p.get(n)),
                KeySource::LogData(n) => l.as_ref().and_then(|p| p.get(n)),
            };
            if let Some(key) = found {
                out.key = Some(key.clone());
                break;
            }
        }
        out.query = q.and_then(|p| p.redacted);
        out.stem = sq
            .and_then(|p| p.redacted)
            .map(|rq| format!("{}?{rq}", stem_path.unwrap_or_default()));
        out.headers = h.and_then(|p| p.redacted);
        out.cookie = c.and_then(|p| p.redacted);
        out.log_data = l.and_then(|p| p.redacted);
        out
    }
}

/// Name/value pairs of one field, and the field with matching values redacted.
struct Pairs<'n, 'a> {
    /// (name as matched, decoded value) of the pairs whose name is wanted.
    found: Vec<(&'n str, Cow<'a, [u8]>)>,
    redacted: Option<String>,
}

impl<'a> Pairs<'_, 'a> {
    fn get(&self, name: &str) -> Option<&Cow<'a, [u8]>> {
        self.found
            .iter()
            .find(|(n, v)| *n == name && !v.is_empty())
            .map(|(_, v)| v)
    }
}

/// Splits on `sep` then `=`, decoding names and values twice (CloudFront's
/// encoding, then the client's); cookies may have `%20` or spaces after `;`.
fn pairs<'n, 'a>(raw: &'a str, sep: char, names: &[&'n str], cookie: bool) -> Pairs<'n, 'a> {
    let mut found = Vec::new();
    // The redacted copy, started only when a wanted pair turns up (most fields
    // have none, and then nothing is allocated).
    let mut out: Option<String> = None;
    let mut offset = 0;
    for (i, part) in raw.split(sep).enumerate() {
        let start = offset;
        offset += part.len() + sep.len_utf8();
        let (lead, body) = if cookie {
            let trimmed = part.trim_start_matches([' ']).trim_start_matches("%20");
            part.split_at(part.len() - trimmed.len())
        } else {
            ("", part)
        };
        let (name, value) = body.split_once('=').unwrap_or((body, ""));
        let decoded = decode_twice(name.as_bytes());
        let wanted = names.iter().find(|n| n.as_bytes() == decoded.as_ref());
        let out = match (&mut out, wanted) {
            (None, None) => continue,
            (None, Some(_)) => {
                // Everything before this pair, its separator included, is kept as is.
                let mut copy = String::with_capacity(raw.len() + REDACTED.len());
                copy.push_str(&raw[..start]);
                out.insert(copy)
            }
            (Some(out), _) => {
                if i > 0 {
                    out.push(sep);
                }
                out
            }
        };
        match wanted {
            Some(n) => {
                found.push((*n, decode_twice(value.as_bytes())));
                out.push_str(lead);
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
            }
            None => out.push_str(part),
        }
    }
    Pairs {
        found,
        redacted: out,
    }
}

/// `cs-headers`: `Name:Value` pairs separated by `%0A`, values percent-encoded
/// once. CloudFront truncates the field at 800 bytes: a last pair without its
/// `%0A` may be cut, so it never yields a key (but is still redacted).
fn headers<'n, 'a>(raw: &'a str, names: &[&'n str]) -> Pairs<'n, 'a> {
    let mut found = Vec::new();
    let mut redact = false;
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while !rest.is_empty() {
        let (segment, complete, next) = match find_newline(rest) {
            Some(at) => (&rest[..at], true, &rest[at + 3..]),
            None => (rest, false, ""),
        };
        let (name, value) = segment.split_once(':').unwrap_or((segment, ""));
        let wanted = names.iter().find(|n| n.eq_ignore_ascii_case(name));
        match wanted {
            Some(n) => {
                redact = true;
                if complete {
                    let value = Cow::from(percent_encoding::percent_decode(value.as_bytes()));
                    found.push((*n, value));
                }
                out.push_str(name);
                out.push(':');
                out.push_str(REDACTED);
            }
            None => out.push_str(segment),
        }
        if complete {
            out.push_str(&rest[segment.len()..segment.len() + 3]);
        }
        rest = next;
    }
    Pairs {
        found,
        redacted: redact.then_some(out),
    }
}

fn find_newline(s: &str) -> Option<usize> {
    s.as_bytes()
        .windows(3)
        .position(|w| w[0] == b'%' && w[1] == b'0' && (w[2] == b'A' || w[2] == b'a'))
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

    fn query(names: &[&str]) -> Vec<KeySource> {
        names
            .iter()
            .map(|n| KeySource::Query(n.to_string()))
            .collect()
    }

    fn in_query<'a>(q: &'a str, sources: &[KeySource]) -> FoundKey<'a> {
        find_key(
            sources,
            KeyFields {
                query: Some(q),
                ..Default::default()
            },
        )
    }

    #[test]
    fn double_encoded_key_is_decoded_twice_and_plus_stays() {
        let f = in_query("a=1&api_key=k%252B%252F&b=2", &query(&["api_key"]));
        assert_eq!(f.key.as_deref(), Some(&b"k+/"[..]));
        assert_eq!(f.query.as_deref(), Some("a=1&api_key=REDACTED&b=2"));
        let f = in_query("api_key=a+b", &query(&["api_key"]));
        assert_eq!(f.key.as_deref(), Some(&b"a+b"[..]));
    }

    #[test]
    fn splits_before_decoding() {
        let f = in_query("api_key=ab%2526cd&x=1", &query(&["api_key"]));
        assert_eq!(f.key.as_deref(), Some(&b"ab&cd"[..]));
        assert_eq!(f.query.as_deref(), Some("api_key=REDACTED&x=1"));
    }

    #[test]
    fn sources_are_tried_in_order_and_all_are_redacted() {
        let f = in_query("token=t1&key=k1", &query(&["key", "token"]));
        assert_eq!(f.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(f.query.as_deref(), Some("token=REDACTED&key=REDACTED"));
    }

    #[test]
    fn missing_or_empty_key_is_none() {
        let p = query(&["api_key"]);
        assert_eq!(in_query("-", &p).key, None);
        assert_eq!(in_query("a=b&c=d", &p), FoundKey::default());
        let f = in_query("api_key=&a=b", &p);
        assert_eq!(f.key, None);
        assert_eq!(f.query.as_deref(), Some("api_key=REDACTED&a=b"));
    }

    #[test]
    fn keys_from_headers_cookies_log_data_and_the_stem() {
        let sources: Vec<KeySource> = [
            "query:api_key",
            "header:x-api-key",
            "cookie:ak",
            "log-data:api_key",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        // The real 2025 record's header list (key replaced by a placeholder).
        let headers = "User-Agent:vscode-restclient%0AX-Api-Key:EXAMPLEKEY%2B1%0AHost:d.example%0A";
        let f = find_key(
            &sources,
            KeyFields {
                headers: Some(headers),
                ..Default::default()
            },
        );
        assert_eq!(f.key.as_deref(), Some(&b"EXAMPLEKEY+1"[..]));
        assert_eq!(
            f.headers.as_deref(),
            Some("User-Agent:vscode-restclient%0AX-Api-Key:REDACTED%0AHost:d.example%0A")
        );
        // Truncated at 800 bytes: the cut header is no key, but is redacted.
        let cut = "User-Agent:x%0AX-Api-Key:EXAMPLEKE";
        let f = find_key(
            &sources,
            KeyFields {
                headers: Some(cut),
                ..Default::default()
            },
        );
        assert_eq!(f.key, None);
        assert_eq!(
            f.headers.as_deref(),
            Some("User-Agent:x%0AX-Api-Key:REDACTED")
        );

        let f = find_key(
            &sources,
            KeyFields {
                cookie: Some("s=1;%20ak=c%252B1"),
                ..Default::default()
            },
        );
        assert_eq!(f.key.as_deref(), Some(&b"c+1"[..]));
        assert_eq!(f.cookie.as_deref(), Some("s=1;%20ak=REDACTED"));

        let f = find_key(
            &sources,
            KeyFields {
                log_data: Some("api_key=ld1&plan=pro"),
                ..Default::default()
            },
        );
        assert_eq!(f.key.as_deref(), Some(&b"ld1"[..]));
        assert_eq!(f.log_data.as_deref(), Some("api_key=REDACTED&plan=pro"));

        // Real-time logs may carry the query inside cs-uri-stem.
        let f = find_key(
            &sources,
            KeyFields {
                stem: Some("/i?e=pv&api_key=st1"),
                ..Default::default()
            },
        );
        assert_eq!(f.key.as_deref(), Some(&b"st1"[..]));
        assert_eq!(f.stem.as_deref(), Some("/i?e=pv&api_key=REDACTED"));

        // Order decides: the query wins over the header.
        let f = find_key(
            &sources,
            KeyFields {
                query: Some("api_key=q1"),
                headers: Some(headers),
                ..Default::default()
            },
        );
        assert_eq!(f.key.as_deref(), Some(&b"q1"[..]));
        assert!(
            f.headers.is_some(),
            "the header value is redacted even when not used"
        );
        assert!("bogus:x".parse::<KeySource>().is_err());
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
