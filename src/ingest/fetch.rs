//! Fetching one object from the source; its bytes go on to `decode`.

use super::IngestOptions;
use super::decode::{self, Failure, ObjectOutcome, PartSink};
use crate::key::KeyHasher;
use crate::source::{LogObject, Source};

/// Fetches an object and decodes it (see [`decode::decode`]); an object that
/// cannot be fetched is unreadable.
pub(super) async fn fetch_and_decode(
    source: &Source,
    object: LogObject,
    options: &IngestOptions,
    hasher: KeyHasher,
    parts: PartSink<'_>,
) -> ObjectOutcome {
    let data = match source.fetch(&object).await {
        Ok(data) => data,
        Err(e) => {
            return ObjectOutcome {
                object,
                result: Err(Failure::unreadable(e)),
                part: None,
            };
        }
    };
    decode::decode(data, object, options, hasher, parts).await
}
