//! How a lake's `api_key_id`s were made, `_edgemeter/keying.json`: plain
//! SHA-256, or HMAC-SHA256 with a secret known by its fingerprint (never by
//! itself). The first run that writes a lake records it; every later run
//! must hash the same way, or one customer's usage would split into two ids.

use super::Lake;
use super::layout::KEYING_FILE;
use crate::error::{Error, Result};
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};

/// The hashing a lake's ids were written with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Keying {
    /// `sha256` or `hmac-sha256`.
    pub(crate) mode: String,
    /// HMAC-SHA256 of a fixed text under the secret, first 16 hex digits.
    pub(crate) secret_fingerprint: Option<String>,
}

impl Keying {
    /// The keying of a hasher with this secret fingerprint (`None`: no
    /// secret, plain SHA-256).
    pub(crate) fn of(fingerprint: Option<String>) -> Self {
        match fingerprint {
            Some(f) => Self {
                mode: "hmac-sha256".into(),
                secret_fingerprint: Some(f),
            },
            None => Self {
                mode: "sha256".into(),
                secret_fingerprint: None,
            },
        }
    }

    fn describe(&self) -> String {
        match &self.secret_fingerprint {
            Some(f) => format!("HMAC-SHA256 with the secret of fingerprint {f}"),
            None => "plain SHA-256 (no EDGEMETER_KEY_SECRET)".into(),
        }
    }
}

/// The lake's recorded keying, if any run has recorded one.
pub(crate) async fn load(lake: &Lake) -> Result<Option<Keying>> {
    match lake.store().get(&lake.path(KEYING_FILE)).await {
        Ok(found) => {
            let data = found.bytes().await?;
            serde_json::from_slice(&data)
                .map(Some)
                .map_err(|e| Error::Lake(format!("{KEYING_FILE} is unreadable: {e}")))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Records the keying of a hasher with this secret fingerprint (`None`: no
/// secret) in a lake that has none, or checks that it is the one recorded.
/// Two first runs at once both create it conditionally: one wins, and the
/// other compares against the winner.
pub(crate) async fn check_or_record(lake: &Lake, fingerprint: Option<String>) -> Result<()> {
    let mine = Keying::of(fingerprint);
    let recorded = match load(lake).await? {
        Some(recorded) => recorded,
        None => {
            let body = serde_json::to_vec_pretty(&mine)?;
            let create = PutOptions::from(PutMode::Create);
            match lake
                .store()
                .put_opts(&lake.path(KEYING_FILE), PutPayload::from(body), create)
                .await
            {
                Ok(_) => return Ok(()),
                Err(object_store::Error::AlreadyExists { .. }) => load(lake)
                    .await?
                    .ok_or_else(|| Error::Lake(format!("{KEYING_FILE} vanished")))?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    if recorded != mine {
        return Err(Error::Config(format!(
            "the lake's api_key_ids were made with {}, but this run would use {}: set EDGEMETER_KEY_SECRET (or EDGEMETER_KEY_SECRET_FILE) to the lake's secret",
            recorded.describe(),
            mine.describe()
        )));
    }
    Ok(())
}
