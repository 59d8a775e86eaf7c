//! Who may ask: admin tokens from the tokens file, portal tokens signed with
//! its secret, and a rate limit per caller.
//!
//! ```toml
//! portal_secret = "…at least 32 characters…"
//!
//! [[tokens]]
//! name = "grafana"
//! role = "admin"
//! token_sha256 = "9f86d081…"   # or, for development, token = "…"
//! ```
//!
//! Presented tokens are hashed and compared with every admin digest in
//! constant time, so neither timing nor an early exit tells how close a guess
//! came. A portal token is `emp.<hex of its claims>.<hex HMAC-SHA256>`: the
//! server keeps no state for it, and it cannot be widened without the secret.

use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};
use subtle::ConstantTimeEq;

/// Environment variable holding the portal secret when the tokens file has none.
pub(crate) const PORTAL_SECRET_ENV: &str = "EDGEMETER_PORTAL_SECRET";
/// The fewest characters a portal secret may have.
const MIN_SECRET_CHARS: usize = 32;
const PORTAL_PREFIX: &str = "emp.";

/// A caller whose token was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    Admin {
        name: String,
    },
    /// A portal token: it sees one subject's usage only.
    Portal {
        subject: String,
        expires_at: DateTime<Utc>,
    },
}

impl Caller {
    /// The bucket its requests are rate limited in.
    pub(crate) fn rate_key(&self) -> String {
        match self {
            Caller::Admin { name } => format!("admin:{name}"),
            Caller::Portal { subject, .. } => format!("portal:{subject}"),
        }
    }
}

mod raw {
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct File {
        pub(super) portal_secret: Option<String>,
        #[serde(default)]
        pub(super) tokens: Vec<Token>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Token {
        pub(super) name: String,
        pub(super) role: String,
        pub(super) token_sha256: Option<String>,
        pub(super) token: Option<String>,
    }
}

struct AdminToken {
    name: String,
    digest: [u8; 32],
}

/// The tokens of one reading of the tokens file.
pub(crate) struct Tokens {
    admins: Vec<AdminToken>,
    portal_secret: Option<Vec<u8>>,
}

/// The claims a portal token carries.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Claims {
    sub: String,
    /// Expiry, seconds since the epoch.
    exp: i64,
}

impl Tokens {
    /// Reads and validates a tokens file; the portal secret falls back to
    /// [`PORTAL_SECRET_ENV`].
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("--tokens {}: {e}", path.display())))?;
        let env_secret = std::env::var(PORTAL_SECRET_ENV).ok();
        Self::parse(&text, env_secret.as_deref())
            .map_err(|e| e.in_setting(&format!("--tokens {}", path.display())))
    }

    fn parse(text: &str, env_secret: Option<&str>) -> Result<Self> {
        let file: raw::File =
            toml::from_str(text).map_err(|e| Error::Config(e.message().to_string()))?;
        let mut admins: Vec<AdminToken> = Vec::new();
        for (i, t) in file.tokens.into_iter().enumerate() {
            let bad =
                |why: String| Error::Config(format!("tokens[{i}] (name = {:?}): {why}", t.name));
            if t.name.trim().is_empty() {
                return Err(Error::Config(format!("tokens[{i}]: name is empty")));
            }
            if admins.iter().any(|a| a.name == t.name) {
                return Err(bad("another token has this name".into()));
            }
            if t.role != "admin" {
                return Err(bad(format!(
                    "role = {:?}: the only role is \"admin\"",
                    t.role
                )));
            }
            let digest = match (&t.token_sha256, &t.token) {
                (Some(hex_digest), None) => hex::decode(hex_digest.trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| {
                        bad("token_sha256 is not 64 hex digits (a SHA-256 digest)".into())
                    })?,
                (None, Some(token)) if token.len() >= 16 => Sha256::digest(token.as_bytes()).into(),
                (None, Some(_)) => return Err(bad("token is shorter than 16 characters".into())),
                _ => return Err(bad("give exactly one of token_sha256 or token".into())),
            };
            admins.push(AdminToken {
                name: t.name,
                digest,
            });
        }
        let secret = file.portal_secret.or(env_secret.map(str::to_string));
        if let Some(s) = &secret
            && s.chars().count() < MIN_SECRET_CHARS
        {
            return Err(Error::Config(format!(
                "portal_secret (or {PORTAL_SECRET_ENV}) has fewer than {MIN_SECRET_CHARS} characters"
            )));
        }
        Ok(Self {
            admins,
            portal_secret: secret.map(String::into_bytes),
        })
    }

    /// No token at all: what a tokens file that became unreadable leaves.
    fn none() -> Self {
        Self {
            admins: Vec::new(),
            portal_secret: None,
        }
    }

    /// The caller a bearer token stands for, if any.
    pub(crate) fn caller(&self, token: &str, now: DateTime<Utc>) -> Option<Caller> {
        if token.starts_with(PORTAL_PREFIX) {
            return self.portal_caller(token, now);
        }
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        // Every digest is compared, the match or not.
        for admin in &self.admins {
            if bool::from(admin.digest.ct_eq(&presented)) {
                found = Some(admin.name.clone());
            }
        }
        found.map(|name| Caller::Admin { name })
    }

    fn mac(&self) -> Option<Hmac<Sha256>> {
        let secret = self.portal_secret.as_deref()?;
        Hmac::<Sha256>::new_from_slice(secret).ok()
    }

    /// A portal token for `subject` valid until `expires_at`; `None` when no
    /// portal secret is configured.
    pub(crate) fn issue(&self, subject: &str, expires_at: DateTime<Utc>) -> Option<String> {
        let claims = Claims {
            sub: subject.to_string(),
            exp: expires_at.timestamp(),
        };
        let body = format!(
            "{PORTAL_PREFIX}{}",
            hex::encode(serde_json::to_vec(&claims).ok()?)
        );
        let mut mac = self.mac()?;
        mac.update(body.as_bytes());
        Some(format!(
            "{body}.{}",
            hex::encode(mac.finalize().into_bytes())
        ))
    }

    fn portal_caller(&self, token: &str, now: DateTime<Utc>) -> Option<Caller> {
        let (body, signature) = token.rsplit_once('.')?;
        let mut mac = self.mac()?;
        mac.update(body.as_bytes());
        mac.verify_slice(&hex::decode(signature).ok()?).ok()?;
        let claims: Claims =
            serde_json::from_slice(&hex::decode(body.strip_prefix(PORTAL_PREFIX)?).ok()?).ok()?;
        let expires_at = DateTime::from_timestamp(claims.exp, 0)?;
        (expires_at > now).then_some(Caller::Portal {
            subject: claims.sub,
            expires_at,
        })
    }

    pub(crate) fn portal_enabled(&self) -> bool {
        self.portal_secret.is_some()
    }
}

/// The tokens file, read again when its modification time or size changes or
/// on SIGHUP ([`TokenFile::reload`]).
pub(crate) struct TokenFile {
    path: PathBuf,
    /// The file's stamp when read, and what it held.
    current: Mutex<(Option<Stamp>, Arc<Tokens>)>,
}

/// A file's modification time and size.
type Stamp = (SystemTime, u64);

impl TokenFile {
    /// Reads the file once; a bad file stops the server from starting.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let tokens = Tokens::load(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            current: Mutex::new((stamp(path), Arc::new(tokens))),
        })
    }

    /// The tokens as the file now holds them. A file that became unreadable
    /// or invalid accepts no token until it is fixed: a revocation must not be
    /// lost to a typo.
    pub(crate) fn tokens(&self) -> Arc<Tokens> {
        let now = stamp(&self.path);
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if now != current.0 || now.is_none() {
            let tokens = match Tokens::load(&self.path) {
                Ok(tokens) => tokens,
                Err(e) => {
                    tracing::error!(error = %e, "the tokens file is unreadable; every token is refused until it is fixed");
                    Tokens::none()
                }
            };
            *current = (now, Arc::new(tokens));
        }
        current.1.clone()
    }

    /// Forgets the file's stamp, so the next request reads it again.
    pub(crate) fn reload(&self) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current.0 = None;
    }
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// A token bucket per caller: `per_minute` requests a minute, in bursts of
/// up to that many.
pub(crate) struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub(crate) fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the caller may make one more request now.
    pub(crate) fn allow(&self, key: &str) -> bool {
        let capacity = f64::from(self.per_minute);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, at) = buckets.entry(key.to_string()).or_insert((capacity, now));
        let refill = now.duration_since(*at).as_secs_f64() * capacity / 60.0;
        *tokens = (*tokens + refill).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn tokens() -> Tokens {
        let text = format!(
            "portal_secret = \"{SECRET}\"\n\
             [[tokens]]\nname = \"dev\"\nrole = \"admin\"\ntoken = \"dev-token-0123456789\"\n\
             [[tokens]]\nname = \"ci\"\nrole = \"admin\"\ntoken_sha256 = \"{}\"\n",
            hex::encode(Sha256::digest(b"ci-token-0123456789"))
        );
        Tokens::parse(&text, None).unwrap()
    }

    #[test]
    fn admin_tokens_match_by_digest_only() {
        let t = tokens();
        let now = Utc::now();
        assert_eq!(
            t.caller("dev-token-0123456789", now),
            Some(Caller::Admin { name: "dev".into() })
        );
        assert_eq!(
            t.caller("ci-token-0123456789", now),
            Some(Caller::Admin { name: "ci".into() })
        );
        assert_eq!(t.caller("ci-token-012345678", now), None);
        assert_eq!(t.caller("", now), None);
    }

    #[test]
    fn portal_tokens_carry_their_subject_and_expire() {
        let t = tokens();
        let now = Utc::now();
        let token = t.issue("acme", now + chrono::Duration::hours(1)).unwrap();
        assert!(matches!(
            t.caller(&token, now),
            Some(Caller::Portal { subject, .. }) if subject == "acme"
        ));
        assert_eq!(t.caller(&token, now + chrono::Duration::hours(2)), None);
        // Another subject under the same signature is refused.
        let (_, signature) = token.rsplit_once('.').unwrap();
        let forged = format!(
            "{PORTAL_PREFIX}{}.{signature}",
            hex::encode(br#"{"sub":"globex","exp":99999999999}"#)
        );
        assert_eq!(t.caller(&forged, now), None);
        // A token signed with another secret is refused.
        let other = Tokens::parse(&format!("portal_secret = \"{SECRET}x\""), None).unwrap();
        let theirs = other
            .issue("acme", now + chrono::Duration::hours(1))
            .unwrap();
        assert_eq!(t.caller(&theirs, now), None);
    }

    #[test]
    fn bad_files_name_the_entry() {
        let err = |text: &str| Tokens::parse(text, None).err().unwrap().to_string();
        assert!(
            err("[[tokens]]\nname = \"a\"\nrole = \"viewer\"\ntoken = \"0123456789abcdefg\"")
                .contains("tokens[0] (name = \"a\"): role = \"viewer\"")
        );
        assert!(
            err("[[tokens]]\nname = \"a\"\nrole = \"admin\"\ntoken_sha256 = \"abc\"")
                .contains("not 64 hex digits")
        );
        assert!(err("[[tokens]]\nname = \"a\"\nrole = \"admin\"").contains("exactly one"));
        assert!(err("portal_secret = \"short\"").contains("fewer than 32"));
    }

    #[test]
    fn the_bucket_refuses_past_its_capacity() {
        let limiter = RateLimiter::new(3);
        assert!((0..3).all(|_| limiter.allow("a")));
        assert!(!limiter.allow("a"));
        assert!(limiter.allow("b"));
    }
}
