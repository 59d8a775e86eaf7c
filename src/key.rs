//! Finding the API key in a request, turning it into its stored identity, and
//! redacting it from every stored field.
//!
//! The raw key lives only in memory between parsing and hashing: the lake holds
//! `api_key_id` (hex SHA-256 of the key, or HMAC-SHA256 keyed by
//! `EDGEMETER_KEY_SECRET`) and `api_key_hint` (its last 4 characters, only for
//! keys of at least 16 characters, so that the hint and a hash without a
//! secret cannot be searched back to a short key).

use datafusion::common::HashMap;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// What replaces a key's value wherever it appears in a stored field.
pub(crate) const REDACTED: &str = "REDACTED";

/// The environment variable holding the HMAC secret for key ids.
pub(crate) const KEY_SECRET_ENV: &str = "EDGEMETER_KEY_SECRET";
/// The environment variable naming a file that holds the secret.
pub(crate) const KEY_SECRET_FILE_ENV: &str = "EDGEMETER_KEY_SECRET_FILE";

/// Keys shorter than this get no `api_key_hint`: with a short key, 4 known
/// characters leave too few unknown ones for the hash to protect.
pub(crate) const MIN_HINTED_KEY_CHARS: usize = 16;

/// The environment variable naming a secret in AWS Secrets Manager (its name
/// or ARN) whose value is the secret; read once at start
/// ([`load_managed_secret`]).
pub(crate) const KEY_SECRET_ID_ENV: &str = "EDGEMETER_KEY_SECRET_ID";

/// The secret read from AWS Secrets Manager, once per process.
static MANAGED_SECRET: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// The secret, from (in this order) [`KEY_SECRET_ENV`], the file named by
/// [`KEY_SECRET_FILE_ENV`], or AWS Secrets Manager ([`KEY_SECRET_ID_ENV`]).
fn secret_from_env() -> Option<Vec<u8>> {
    if let Ok(secret) = std::env::var(KEY_SECRET_ENV) {
        return Some(secret.into_bytes());
    }
    if std::env::var_os(KEY_SECRET_FILE_ENV).is_none() {
        return MANAGED_SECRET.get().cloned();
    }
    let path = std::env::var_os(KEY_SECRET_FILE_ENV)?;
    match std::fs::read(&path) {
        Ok(mut secret) => {
            while secret.last().is_some_and(|b| b.is_ascii_whitespace()) {
                secret.pop();
            }
            Some(secret)
        }
        Err(e) => {
            // Not fatal here: the lake's keying check refuses the run.
            tracing::error!(path = %std::path::Path::new(&path).display(), error = %e, "cannot read the key secret file");
            None
        }
    }
}

/// A Secrets Manager client from aws-config's standard chain (credentials,
/// region, and `AWS_ENDPOINT_URL_SECRETS_MANAGER` for other endpoints).
async fn secrets_manager() -> aws_sdk_secretsmanager::Client {
    let region =
        aws_config::meta::region::RegionProviderChain::default_provider().or_else("us-east-1");
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(region)
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&shared)
}

/// Reads the secret named by [`KEY_SECRET_ID_ENV`] from AWS Secrets Manager,
/// when that is where it comes from (neither of the other variables is set).
/// A secret that cannot be read stops the command: hashing without it would
/// give every key another id.
pub(crate) async fn load_managed_secret() -> crate::error::Result<()> {
    if std::env::var_os(KEY_SECRET_ENV).is_some() || std::env::var_os(KEY_SECRET_FILE_ENV).is_some()
    {
        return Ok(());
    }
    let Ok(id) = std::env::var(KEY_SECRET_ID_ENV) else {
        return Ok(());
    };
    let unreadable = |why: String| {
        crate::error::Error::Config(format!(
            "{KEY_SECRET_ID_ENV}={id}: cannot read the key secret from AWS Secrets Manager: {why}"
        ))
    };
    let out = secrets_manager()
        .await
        .get_secret_value()
        .secret_id(&id)
        .send()
        .await
        .map_err(|e| {
            unreadable(aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string())
        })?;
    let secret = match (out.secret_string(), out.secret_binary()) {
        (Some(text), _) => text.trim().as_bytes().to_vec(),
        (None, Some(binary)) => binary.as_ref().to_vec(),
        (None, None) => Vec::new(),
    };
    if secret.is_empty() {
        return Err(unreadable("the secret has no value".into()));
    }
    let _ = MANAGED_SECRET.set(secret);
    Ok(())
}

/// Stores a new secret in AWS Secrets Manager under `name` (never replacing
/// one); returns its ARN.
pub(crate) async fn create_managed_secret(
    name: &str,
    secret: &str,
) -> crate::error::Result<String> {
    let out = secrets_manager()
        .await
        .create_secret()
        .name(name)
        .description("edgemeter: HMAC secret of a lake's api_key_ids")
        .secret_string(secret)
        .send()
        .await
        .map_err(|e| {
            let exists = e
                .as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception());
            crate::error::Error::Config(match exists {
                true => format!(
                    "AWS Secrets Manager already holds a secret named {name}: init never replaces one; \
                     choose another name, or run with {KEY_SECRET_ID_ENV}={name} if it is this lake's"
                ),
                false => format!(
                    "cannot create the secret {name} in AWS Secrets Manager: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                ),
            })
        })?;
    Ok(out.arn().unwrap_or(name).to_string())
}

/// A new random secret: 32 bytes as 64 hex digits.
pub(crate) fn generate_secret() -> String {
    let a = uuid::Uuid::new_v4().into_bytes();
    let b = uuid::Uuid::new_v4().into_bytes();
    hex::encode([a, b].concat())
}

/// The stored identity of one API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyIdentity {
    /// Lowercase hex SHA-256 (or HMAC-SHA256) of the decoded key.
    pub(crate) id: String,
    /// The key's last 4 characters, when the key has at least [`MIN_HINTED_KEY_CHARS`].
    pub(crate) hint: Option<String>,
}

/// Hashes raw keys into [`KeyIdentity`]s, with a cache: there are far fewer
/// distinct keys than requests.
#[derive(Clone)]
pub(crate) struct KeyHasher {
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
    pub(crate) fn new(secret: Option<Vec<u8>>) -> Self {
        Self {
            secret: secret.filter(|s| !s.is_empty()),
            cache: HashMap::new(),
        }
    }

    /// A hasher configured from `EDGEMETER_KEY_SECRET`, or from the file
    /// `EDGEMETER_KEY_SECRET_FILE` names (its trailing newline dropped).
    pub(crate) fn from_env() -> Self {
        Self::new(secret_from_env())
    }

    /// Whether ids are HMACs (a secret is set).
    pub(crate) fn is_keyed(&self) -> bool {
        self.secret.is_some()
    }

    /// A fingerprint of the secret that does not reveal it: the first 16 hex
    /// digits of HMAC-SHA256 of a fixed text under it.
    pub(crate) fn fingerprint(&self) -> Option<String> {
        let secret = self.secret.as_deref()?;
        let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
        };
        mac.update(b"edgemeter secret fingerprint");
        Some(hex::encode(&mac.finalize().into_bytes()[..8]))
    }

    /// The identity of a decoded raw key.
    pub(crate) fn identify(&mut self, raw: &[u8]) -> &KeyIdentity {
        let secret = self.secret.as_deref();
        self.cache
            .entry_ref(raw)
            .or_insert_with(|| identity_of(secret, raw))
    }

    /// The `api_key_id` of a raw key given as text (for `--key-raw`, plans).
    pub(crate) fn id_of(&self, raw: &str) -> String {
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
    let hint =
        (chars.len() >= MIN_HINTED_KEY_CHARS).then(|| chars[chars.len() - 4..].iter().collect());
    KeyIdentity {
        id: hex::encode(digest),
        hint,
    }
}

/// Where an API key may be found in a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub(crate) enum KeySource {
    /// A query parameter (`cs-uri-query`, or the query part of `cs-uri-stem`).
    Query(String),
    /// A request header in `cs-headers` (name matched case-insensitively).
    Header(String),
    /// A cookie in `cs(Cookie)`.
    Cookie(String),
    /// A `name=value&…` pair in `viewer-request-log-data` (set by a CloudFront Function).
    LogData(String),
}

impl KeySource {
    fn place_and_name(&self) -> (Place, &str) {
        match self {
            KeySource::Query(n) => (Place::Query, n),
            KeySource::Header(n) => (Place::Header, n),
            KeySource::Cookie(n) => (Place::Cookie, n),
            KeySource::LogData(n) => (Place::LogData, n),
        }
    }
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

/// The default key sources, in order of precedence: the header first, as the
/// origin authenticates with it in the CloudFront Function setup of `infra/`;
/// then the log data that function writes, a cookie, and the query last (a
/// client can add any query parameter without it reaching the origin's check).
pub(crate) fn default_sources() -> Vec<KeySource> {
    vec![
        KeySource::Header("x-api-key".into()),
        KeySource::LogData("api_key".into()),
        KeySource::Cookie("api_key".into()),
        KeySource::Query("api_key".into()),
    ]
}

/// Request headers whose whole value is redacted in `cs-headers`, whatever
/// the configured sources: they carry credentials by convention.
const SECRET_HEADERS: [&str; 3] = ["x-api-key", "authorization", "proxy-authorization"];

/// Values shorter than this are redacted only where they are found by name:
/// searching every field for a two-letter value would blank ordinary text.
const MIN_VALUE_REDACTION: usize = 6;

/// The fields of a request that can carry a key, as logged.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct KeyFields<'a> {
    pub(crate) query: Option<&'a str>,
    pub(crate) stem: Option<&'a str>,
    pub(crate) headers: Option<&'a str>,
    pub(crate) cookie: Option<&'a str>,
    pub(crate) log_data: Option<&'a str>,
    pub(crate) referer: Option<&'a str>,
    pub(crate) user_agent: Option<&'a str>,
}

/// The key found, and the fields to store with every key redacted (`None`:
/// store the field unchanged).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct FoundKey<'a> {
    /// Decoded; borrowed from the field when it needed no decoding.
    pub(crate) key: Option<Cow<'a, [u8]>>,
    /// Another, different key the request carried through some configured
    /// source (the first in precedence after `key`'s); the request was
    /// billed to `key`, the one of highest precedence.
    pub(crate) conflicting: Option<Cow<'a, [u8]>>,
    pub(crate) query: Option<String>,
    pub(crate) stem: Option<String>,
    pub(crate) headers: Option<String>,
    pub(crate) cookie: Option<String>,
    pub(crate) log_data: Option<String>,
    pub(crate) referer: Option<String>,
    pub(crate) user_agent: Option<String>,
    /// The values found by name that are redacted wherever they appear
    /// (decoded, sorted, each at least [`MIN_VALUE_REDACTION`] bytes), for
    /// [`FoundKey::redact`].
    values: Vec<FoundValue<'a>>,
}

/// A value found by name, to redact wherever else it appears.
#[derive(Debug, PartialEq, Eq)]
struct FoundValue<'a> {
    /// Decoded.
    bytes: Cow<'a, [u8]>,
    /// Where `bytes` holds its longest run of ASCII letters and digits, which
    /// [`redact_values`] searches a text for first: found once per line
    /// rather than once per field searched.
    anchor: std::ops::Range<usize>,
}

impl<'a> FoundValue<'a> {
    fn new(bytes: Cow<'a, [u8]>) -> Self {
        let anchor = longest_alphanumeric_run(&bytes);
        Self { bytes, anchor }
    }
}

impl FoundKey<'_> {
    /// True when some value found by name is redacted from other fields too.
    pub(crate) fn redacts_elsewhere(&self) -> bool {
        !self.values.is_empty()
    }

    /// `text` with every value found by name redacted, or `None` when it
    /// holds none.
    pub(crate) fn redact(&self, text: &str) -> Option<String> {
        redact_values(text, &self.values)
    }
}

/// Looks for a key through `sources` in order and redacts all of them.
#[cfg(test)]
pub(crate) fn find_key<'a>(sources: &[KeySource], fields: KeyFields<'a>) -> FoundKey<'a> {
    KeyFinder::new(sources).find(fields)
}

/// Key sources sorted by the field they read, made once per object so that
/// each line only splits its fields.
#[derive(Debug, Clone)]
pub(crate) struct KeyFinder<'s> {
    sources: &'s [KeySource],
    query: Vec<&'s str>,
    header: Vec<&'s str>,
    cookie: Vec<&'s str>,
    log_data: Vec<&'s str>,
    /// Every configured name: a pair of any of these names is redacted in
    /// every field that holds pairs, whichever source it was configured for.
    any: Vec<&'s str>,
}

/// Where a candidate key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Query,
    Header,
    Cookie,
    LogData,
}

impl<'s> KeyFinder<'s> {
    pub(crate) fn new(sources: &'s [KeySource]) -> Self {
        let mut finder = Self {
            sources,
            query: Vec::new(),
            header: Vec::new(),
            cookie: Vec::new(),
            log_data: Vec::new(),
            any: Vec::new(),
        };
        for source in sources {
            let (names, name) = match source {
                KeySource::Query(n) => (&mut finder.query, n),
                KeySource::Header(n) => (&mut finder.header, n),
                KeySource::Cookie(n) => (&mut finder.cookie, n),
                KeySource::LogData(n) => (&mut finder.log_data, n),
            };
            names.push(name.as_str());
            finder.any.push(name.as_str());
        }
        finder
    }

    /// The key of highest precedence, whether another key conflicts with
    /// it, and every field with every key redacted.
    pub(crate) fn find<'a>(&self, fields: KeyFields<'a>) -> FoundKey<'a> {
        fn present(f: Option<&str>) -> Option<&str> {
            f.filter(|v| !v.is_empty() && *v != "-")
        }
        let mut found: Vec<(Place, &str, Cow<'a, [u8]>)> = Vec::new();
        let mut out = FoundKey::default();
        let any = &self.any;
        if let Some(q) = present(fields.query) {
            out.query = pairs(q, b"&;", any, false, &mut |n, v| {
                found.push((Place::Query, n, v))
            });
        }
        if let Some(stem) = present(fields.stem) {
            out.stem = url(stem, any, &mut |n, v| found.push((Place::Query, n, v)));
        }
        if let Some(c) = present(fields.cookie) {
            out.cookie = pairs(c, b";", any, true, &mut |n, v| {
                found.push((Place::Cookie, n, v))
            });
        }
        if let Some(l) = present(fields.log_data) {
            out.log_data = pairs(l, b"&", any, false, &mut |n, v| {
                found.push((Place::LogData, n, v))
            });
        }
        if let Some(r) = present(fields.referer) {
            // A key in the referer's URL is a leak, never a key to bill.
            out.referer = url(r, any, &mut |_, _| {});
        }
        if let Some(h) = present(fields.headers) {
            out.headers = self.headers(h, &mut found);
        }
        for source in self.sources {
            let (place, name) = source.place_and_name();
            let hit = found
                .iter()
                .find(|(p, n, v)| *p == place && n.eq_ignore_ascii_case(name) && !v.is_empty());
            if let Some((_, _, key)) = hit {
                out.key = Some(key.clone());
                break;
            }
        }
        if let Some(key) = &out.key {
            out.conflicting = self.sources.iter().find_map(|source| {
                let (place, name) = source.place_and_name();
                found
                    .iter()
                    .find(|(p, n, v)| {
                        *p == place
                            && n.eq_ignore_ascii_case(name)
                            && !v.is_empty()
                            && v.as_ref() != key.as_ref()
                    })
                    .map(|(_, _, v)| v.clone())
            });
        }
        // Whatever was found by name is also removed wherever else its value
        // appears: a user agent, a path, a truncated header.
        let mut values: Vec<Cow<'a, [u8]>> = found
            .into_iter()
            .map(|(_, _, v)| v)
            .filter(|v| v.len() >= MIN_VALUE_REDACTION)
            .collect();
        values.sort_unstable();
        values.dedup();
        if !values.is_empty() {
            let values: Vec<FoundValue<'a>> = values.into_iter().map(FoundValue::new).collect();
            for (field, original) in [
                (&mut out.query, fields.query),
                (&mut out.stem, fields.stem),
                (&mut out.headers, fields.headers),
                (&mut out.cookie, fields.cookie),
                (&mut out.log_data, fields.log_data),
                (&mut out.referer, fields.referer),
                (&mut out.user_agent, fields.user_agent),
            ] {
                let current = field.as_deref().or(present(original));
                if let Some(text) = current
                    && let Some(replaced) = redact_values(text, &values)
                {
                    *field = Some(replaced);
                }
            }
            out.values = values;
        }
        out
    }

    /// `cs-headers`: `Name:Value` entries separated by `%0A`, values
    /// percent-encoded once. Configured and [`SECRET_HEADERS`] are redacted
    /// whole; the `Cookie` and `Referer` entries have their key pairs
    /// redacted. CloudFront truncates the field at 800 bytes: a last entry
    /// without its `%0A` may be cut, so it never yields a key (but is still
    /// redacted).
    fn headers<'a: 'n, 'n>(
        &'n self,
        raw: &'a str,
        found: &mut Vec<(Place, &'n str, Cow<'a, [u8]>)>,
    ) -> Option<String> {
        let mut changed = false;
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while !rest.is_empty() {
            let (segment, complete, next) = match find_newline(rest) {
                Some(at) => (&rest[..at], true, &rest[at + 3..]),
                None => (rest, false, ""),
            };
            let (name, value) = segment.split_once(':').unwrap_or((segment, ""));
            let configured = self.header.iter().any(|n| n.eq_ignore_ascii_case(name));
            let secret = SECRET_HEADERS.iter().any(|n| n.eq_ignore_ascii_case(name));
            if configured || secret {
                changed = true;
                if complete {
                    let value = Cow::from(percent_encoding::percent_decode(value.as_bytes()));
                    found.push((Place::Header, name, value));
                }
                out.push_str(name);
                out.push(':');
                out.push_str(REDACTED);
            } else if name.eq_ignore_ascii_case("cookie") || name.eq_ignore_ascii_case("referer") {
                let decoded =
                    percent_encoding::percent_decode(value.as_bytes()).decode_utf8_lossy();
                let mut cookie_keys = Vec::new();
                let redacted = if name.eq_ignore_ascii_case("cookie") {
                    pairs(&decoded, b";", &self.any, true, &mut |n, v| {
                        cookie_keys.push((n.to_string(), v.into_owned()))
                    })
                } else {
                    url(&decoded, &self.any, &mut |_, _| {})
                };
                if complete {
                    for (n, v) in cookie_keys {
                        if let Some(name) = self.any.iter().find(|c| c.eq_ignore_ascii_case(&n)) {
                            found.push((Place::Cookie, *name, Cow::Owned(v)));
                        }
                    }
                }
                match redacted {
                    Some(r) => {
                        changed = true;
                        out.push_str(name);
                        out.push(':');
                        out.extend(percent_encoding::utf8_percent_encode(&r, HEADER_VALUE));
                    }
                    None => out.push_str(segment),
                }
            } else {
                out.push_str(segment);
            }
            if complete {
                out.push_str(&rest[segment.len()..segment.len() + 3]);
            }
            rest = next;
        }
        changed.then_some(out)
    }
}

/// What a redacted `Cookie` or `Referer` entry of `cs-headers` is encoded
/// with again: controls, space, `%` and the characters that delimit entries.
const HEADER_VALUE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'%')
    .add(b'"')
    .add(b'\\')
    .add(b'\t');

/// A URL or path: its path parameters (`/v1/x;api_key=…`) and its query
/// (split on `&` and `;`) have their key pairs redacted.
fn url<'a>(
    raw: &'a str,
    names: &[&str],
    on_found: &mut dyn FnMut(&'a str, Cow<'a, [u8]>),
) -> Option<String> {
    let (path, query) = match raw.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (raw, None),
    };
    let new_path = if path.contains(';') {
        pairs(path, b"/;", names, false, on_found)
    } else {
        None
    };
    let new_query = query.and_then(|q| pairs(q, b"&;", names, false, on_found));
    if new_path.is_none() && new_query.is_none() {
        return None;
    }
    let mut out = new_path.unwrap_or_else(|| path.to_string());
    if let Some(q) = query {
        out.push('?');
        out.push_str(new_query.as_deref().unwrap_or(q));
    }
    Some(out)
}

/// Splits `raw` on any of `seps` then on `=`, decoding names and values twice
/// (CloudFront's encoding, then the client's); names match case-insensitively.
/// Reports each `name=value` pair with a wanted name to `on_found` and
/// returns the field with their values redacted (`None` when there were
/// none). Cookies may have `%20` or spaces after `;`.
fn pairs<'a>(
    raw: &'a str,
    seps: &[u8],
    names: &[&str],
    cookie: bool,
    on_found: &mut dyn FnMut(&'a str, Cow<'a, [u8]>),
) -> Option<String> {
    // The redacted copy, started only when a wanted pair turns up (most fields
    // have none, and then nothing is allocated).
    let mut out: Option<String> = None;
    let mut start = 0;
    while start < raw.len() {
        // The separators are ASCII, so every cut falls between characters.
        let (body_end, end) = match find_any(&raw.as_bytes()[start..], seps) {
            Some(at) => (start + at, start + at + 1),
            None => (raw.len(), raw.len()),
        };
        let (part, body, sep) = (&raw[start..end], &raw[start..body_end], &raw[body_end..end]);
        let at = start;
        start = end;
        let (lead, body) = if cookie {
            let trimmed = body.trim_start_matches([' ']).trim_start_matches("%20");
            body.split_at(body.len() - trimmed.len())
        } else {
            ("", body)
        };
        let wanted = body.split_once('=').filter(|(name, _)| {
            let decoded = decode_twice(name.as_bytes());
            names
                .iter()
                .any(|n| n.as_bytes().eq_ignore_ascii_case(decoded.as_ref()))
        });
        match (wanted, &mut out) {
            (None, None) => {}
            (None, Some(out)) => out.push_str(part),
            (Some((name, value)), _) => {
                on_found(name, decode_twice(value.as_bytes()));
                let out = out.get_or_insert_with(|| {
                    // Everything before this pair is kept as is.
                    let mut copy = String::with_capacity(raw.len() + REDACTED.len());
                    copy.push_str(&raw[..at]);
                    copy
                });
                out.push_str(lead);
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
                out.push_str(sep);
            }
        }
    }
    out
}

/// The first position in `haystack` of any of `seps` (one or two bytes).
fn find_any(haystack: &[u8], seps: &[u8]) -> Option<usize> {
    match *seps {
        [a] => memchr::memchr(a, haystack),
        [a, b] => memchr::memchr2(a, b, haystack),
        _ => haystack.iter().position(|c| seps.contains(c)),
    }
}

/// The ways a decoded value can appear in a logged field: as is, and
/// percent-encoded once or twice.
fn logged_forms(value: &[u8]) -> Vec<String> {
    let mut forms = Vec::with_capacity(3);
    if let Ok(text) = std::str::from_utf8(value) {
        forms.push(text.to_string());
    }
    let once: String =
        percent_encoding::percent_encode(value, percent_encoding::NON_ALPHANUMERIC).collect();
    let twice = once.replace('%', "%25");
    for form in [once, twice] {
        if !forms.contains(&form) {
            forms.push(form);
        }
    }
    forms
}

/// `text` with every form (see [`logged_forms`]) of each of `values`
/// replaced by [`REDACTED`], or `None` when none occurs.
///
/// Every form of a value holds its longest run of ASCII letters and digits
/// verbatim (percent-encoding changes only other bytes), so a text without
/// that run holds no form of the value, and its forms are not even made:
/// most fields of most lines hold none.
fn redact_values(text: &str, values: &[FoundValue<'_>]) -> Option<String> {
    let mut current: Option<String> = None;
    for value in values {
        let haystack = current.as_deref().unwrap_or(text).as_bytes();
        let anchor = &value.bytes[value.anchor.clone()];
        if !anchor.is_empty() && !contains(haystack, anchor) {
            continue;
        }
        for form in logged_forms(&value.bytes) {
            let haystack = current.as_deref().unwrap_or(text);
            if memchr::memmem::find(haystack.as_bytes(), form.as_bytes()).is_some() {
                current = Some(haystack.replace(form.as_str(), REDACTED));
            }
        }
    }
    current
}

/// True when `needle` (not empty) occurs in `haystack`. Most fields are
/// shorter than a substring searcher takes to set up: those are scanned for
/// the needle's first byte and compared where it occurs.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    const SHORT: usize = 256;
    if needle.len() > haystack.len() {
        return false;
    }
    if haystack.len() > SHORT {
        return memchr::memmem::find(haystack, needle).is_some();
    }
    let last_start = haystack.len() - needle.len();
    memchr::memchr_iter(needle[0], &haystack[..=last_start])
        .any(|at| haystack[at..at + needle.len()] == *needle)
}

/// Where the longest run of ASCII letters and digits in `value` is (the
/// first of equal length; empty when it has none).
fn longest_alphanumeric_run(value: &[u8]) -> std::ops::Range<usize> {
    let mut best = 0..0;
    let mut start = 0;
    for (at, byte) in value.iter().enumerate() {
        if !byte.is_ascii_alphanumeric() {
            start = at + 1;
        } else if at + 1 - start > best.len() {
            best = start..at + 1;
        }
    }
    best
}

fn find_newline(s: &str) -> Option<usize> {
    s.as_bytes()
        .windows(3)
        .position(|w| w[0] == b'%' && w[1] == b'0' && (w[2] == b'A' || w[2] == b'a'))
}

/// Undoes CloudFront's percent-encoding of the field and then the client's.
pub(crate) fn decode_twice(raw: &[u8]) -> Cow<'_, [u8]> {
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

    /// The plain way: every form of every value, replaced in turn.
    fn replace_every_form(text: &str, values: &[Cow<'_, [u8]>]) -> Option<String> {
        let mut current: Option<String> = None;
        for form in values.iter().flat_map(|v| logged_forms(v)) {
            let haystack = current.as_deref().unwrap_or(text);
            if haystack.contains(form.as_str()) {
                current = Some(haystack.replace(form.as_str(), REDACTED));
            }
        }
        current
    }

    #[test]
    fn redaction_skips_only_texts_without_any_form() {
        // Values and texts drawn from a small alphabet of letters, digits,
        // encoded and plain punctuation, so that forms overlap, repeat and
        // straddle each other often.
        let pieces = [
            "ak", "_", "%5F", "%255F", "7", "x", "-", "%2D", "é", "==", "%", "25",
        ];
        fn next(state: &mut u64, n: usize) -> usize {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            (*state % n as u64) as usize
        }
        let draw = |state: &mut u64, len: usize| -> String {
            (0..len)
                .map(|_| pieces[next(state, pieces.len())])
                .collect()
        };
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let st = &mut state;
        let mut redacted = 0;
        for _ in 0..20_000 {
            let (la, lb) = (3 + next(st, 4), 2 + next(st, 5));
            let (a, b) = (draw(st, la), draw(st, lb));
            let mut values: Vec<Cow<'_, [u8]>> =
                vec![Cow::Owned(a.into_bytes()), Cow::Owned(b.into_bytes())];
            values.sort_unstable();
            values.dedup();
            let forms: Vec<String> = values.iter().flat_map(|v| logged_forms(v)).collect();
            let lead = next(st, 6);
            let mut text = draw(st, lead);
            for _ in 0..next(st, 3) {
                text.push_str(&forms[next(st, forms.len())]);
                let gap = next(st, 3);
                text.push_str(&draw(st, gap));
            }
            let expected = replace_every_form(&text, &values);
            let found: Vec<_> = values.iter().cloned().map(FoundValue::new).collect();
            redacted += usize::from(expected.is_some());
            assert_eq!(
                redact_values(&text, &found),
                expected,
                "{text:?} {values:?}"
            );
        }
        // Both outcomes were exercised many times.
        assert!(redacted > 5_000 && redacted < 19_000, "{redacted}");
    }

    #[test]
    fn contains_finds_needles_in_short_and_long_texts() {
        for pad in [0, 10, 300] {
            let filler = "c9".repeat(pad);
            let text = format!("{filler}xc9b8ef6709e9y{filler}");
            assert!(contains(text.as_bytes(), b"c9b8ef6709e9"));
            assert!(contains(text.as_bytes(), b"9y"));
            assert!(!contains(text.as_bytes(), b"c9b8ef6709e8"));
            // A needle that starts at every other byte and matches nowhere.
            let near = format!("{}cz", "c9".repeat(20));
            assert!(!contains(text.as_bytes(), near.as_bytes()));
        }
        assert!(contains(b"ab", b"ab"));
        assert!(!contains(b"a", b"ab"));
    }

    #[test]
    fn longest_alphanumeric_run_is_the_first_longest() {
        let run = |v: &'static [u8]| &v[longest_alphanumeric_run(v)];
        assert_eq!(run(b"ak_live_000701_c9b8ef6709e9"), b"c9b8ef6709e9");
        assert_eq!(run(b"ab-cd"), b"ab");
        assert_eq!(run(b"--"), b"");
        assert_eq!(run("é1é".as_bytes()), b"1");
        assert_eq!(run(b"x-abc1"), b"abc1");
        assert_eq!(run(b"abc1"), b"abc1");
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
    fn names_match_in_any_case_and_queries_split_on_semicolons() {
        let p = query(&["api_key"]);
        let f = in_query("API_KEY=upper1&b=2", &p);
        assert_eq!(f.key.as_deref(), Some(&b"upper1"[..]));
        assert_eq!(f.query.as_deref(), Some("API_KEY=REDACTED&b=2"));
        let f = in_query("a=1;Api_Key=mixed1;b=2", &p);
        assert_eq!(f.key.as_deref(), Some(&b"mixed1"[..]));
        assert_eq!(f.query.as_deref(), Some("a=1;Api_Key=REDACTED;b=2"));
    }

    /// Every place a key can leak to is redacted, by name or by value,
    /// whether or not a source is configured for it.
    #[test]
    fn a_key_is_redacted_wherever_it_appears() {
        let key = "sk_live_0123456789abcdef";
        let headers = format!(
            "Host:d.example%0ACookie:theme=dark;%20api_key={key}%0AReferer:https://app.example/p?API_KEY={key}%0AAuthorization:Bearer%20tok123456%0AX-Api-Key:{key}%0A"
        );
        let stem = format!("/v1/x;api_key={key}/y");
        let referer = format!("https://app.example/page?x=1;api_key={key}");
        let user_agent = format!("curl/8.0 (key {key})");
        let f = find_key(
            &default_sources(),
            KeyFields {
                stem: Some(&stem),
                headers: Some(&headers),
                referer: Some(&referer),
                user_agent: Some(&user_agent),
                ..Default::default()
            },
        );
        assert_eq!(f.key.as_deref(), Some(key.as_bytes()));
        assert!(f.conflicting.is_none(), "every source carries the same key");
        assert_eq!(f.stem.as_deref(), Some("/v1/x;api_key=REDACTED/y"));
        assert_eq!(
            f.referer.as_deref(),
            Some("https://app.example/page?x=1;api_key=REDACTED")
        );
        assert_eq!(f.user_agent.as_deref(), Some("curl/8.0 (key REDACTED)"));
        assert_eq!(
            f.headers.as_deref(),
            Some(
                "Host:d.example%0ACookie:theme=dark;%20api_key=REDACTED%0AReferer:https://app.example/p?API_KEY=REDACTED%0AAuthorization:REDACTED%0AX-Api-Key:REDACTED%0A"
            )
        );
        for stored in [&f.stem, &f.referer, &f.user_agent, &f.headers] {
            assert!(!stored.as_deref().unwrap().contains(key));
        }
    }

    /// The header the origin authenticates with wins over a query parameter
    /// a client added, and the request is marked as carrying two keys.
    #[test]
    fn precedence_is_header_then_log_data_then_cookie_then_query() {
        let f = find_key(
            &default_sources(),
            KeyFields {
                query: Some("api_key=junk_key_0000"),
                headers: Some("X-Api-Key:real_key_1111%0A"),
                ..Default::default()
            },
        );
        assert_eq!(f.key.as_deref(), Some(&b"real_key_1111"[..]));
        assert!(f.conflicting.is_some());
        assert_eq!(f.query.as_deref(), Some("api_key=REDACTED"));
        let f = find_key(
            &default_sources(),
            KeyFields {
                query: Some("api_key=q_key_22222"),
                cookie: Some("api_key=c_key_33333"),
                log_data: Some("api_key=ld_key_4444"),
                ..Default::default()
            },
        );
        assert_eq!(f.key.as_deref(), Some(&b"ld_key_4444"[..]));
        assert!(f.conflicting.is_some());
        // An Authorization header is redacted but is not a second key.
        let f = find_key(
            &default_sources(),
            KeyFields {
                query: Some("api_key=q_key_22222"),
                headers: Some("Authorization:Basic%20eDp5%0A"),
                ..Default::default()
            },
        );
        assert_eq!(f.key.as_deref(), Some(&b"q_key_22222"[..]));
        assert!(f.conflicting.is_none());
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
        assert_eq!(h.identify(b"ak_live_1234567").hint, None, "15 characters");
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
