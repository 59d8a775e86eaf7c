//! What must hold for any input: the bodies of the fuzz targets under
//! `fuzz/`, also run over the committed corpus (and mutations of it) by the
//! tests.
//!
//! [`object`] parses bytes exactly as ingest does and panics when an
//! invariant breaks: the counts add up (every line is a request or a bad
//! line, every request is one row), and no raw key that was found in a
//! request is stored in any field a client writes or in any sample. The corpus
//! spells its keys as [`KEYS`], so that mutations keep them findable.
//! [`plans`] parses a plans file and must only ever return an error.

use crate::billing::plans::Plans;
use crate::format::{LogFormat, ParseOptions, Parsed};
use crate::key::{KeyHasher, decode_twice, default_sources};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;

/// The raw keys the corpus carries: one long enough for a hint, one short.
/// Lower-case letters and digits, so that no key overlaps `REDACTED`.
pub const KEYS: [&str; 2] = ["fz0live0key0abcdefgh0123", "fzshort9"];

/// Line limit for fuzzing: small, so that long lines take the overlong path.
const MAX_LINE_BYTES: usize = 4096;

/// Decompressed-size limit for fuzzing.
const MAX_OBJECT_BYTES: u64 = 1 << 20;

/// Parses `data` as a log object and checks every invariant; panics on a
/// broken one. The first byte chooses the format: odd bytes mean real-time
/// records with all fields, anything else is detected as ingest detects it.
pub fn object(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let format = if first % 2 == 1 {
        LogFormat::Realtime(
            crate::format::realtime::REALTIME_CANONICAL
                .iter()
                .map(|f| f.to_string())
                .collect(),
        )
    } else {
        LogFormat::Auto
    };
    let options = ParseOptions {
        key_sources: default_sources(),
        format,
        max_line_bytes: MAX_LINE_BYTES,
    };
    let mut hasher = KeyHasher::new(None);
    let parsed = crate::format::parse_object(
        bytes::Bytes::copy_from_slice(rest),
        "s3://fuzz/object.gz",
        &options,
        MAX_OBJECT_BYTES,
        &mut hasher,
    );
    match &parsed {
        Ok(parsed) => check(parsed, &hasher),
        Err(e) => assert_no_key(&e.to_string(), "object error"),
    }
    parts_match_whole(rest, &options, &parsed);
}

/// Log text per part when fuzzing: small, so that objects come in parts.
const PART_BYTES: u64 = 300;

/// Read in parts as ingest reads a large object, the object gives what it
/// gives read whole; and once it was checked whole, no later part fails (an
/// object is either committed whole or not at all).
fn parts_match_whole(
    data: &[u8],
    options: &ParseOptions,
    whole: &Result<Parsed, crate::format::ObjectError>,
) {
    let data = bytes::Bytes::copy_from_slice(data);
    let mut parts = match crate::format::ObjectParts::open(data, options, MAX_OBJECT_BYTES) {
        Ok(parts) => parts,
        Err(e) => {
            assert_eq!(whole.as_ref().err(), Some(&e), "opened in parts");
            return;
        }
    };
    let mut hasher = KeyHasher::new(None);
    let (mut lines, mut requests, mut bad_lines, mut rows) = (0u64, 0u64, 0u64, 0usize);
    let mut checked = false;
    loop {
        let (part, more) =
            match parts.next_part("s3://fuzz/object.gz", options, &mut hasher, PART_BYTES) {
                Ok(next) => next,
                Err(e) => {
                    assert!(
                        !checked,
                        "a part failed after the object was checked whole: {e}"
                    );
                    assert_eq!(whole.as_ref().err(), Some(&e), "read in parts");
                    return;
                }
            };
        if more && !checked {
            if let Err(e) = parts.check_whole(options) {
                assert!(
                    whole.is_err(),
                    "the check refused an object that reads whole: {e}"
                );
                return;
            }
            checked = true;
        }
        lines += part.stats.lines;
        requests += part.stats.requests;
        bad_lines += part.stats.bad_lines;
        rows += part
            .hours
            .values()
            .flatten()
            .map(|b| b.num_rows())
            .sum::<usize>();
        if !more {
            break;
        }
    }
    let whole = match whole {
        Ok(whole) => whole,
        Err(e) => panic!("read in parts, but not whole: {e}"),
    };
    let stats = &whole.stats;
    assert_eq!(
        (lines, requests, bad_lines),
        (stats.lines, stats.requests, stats.bad_lines),
        "parts add up to the whole"
    );
    let whole_rows: usize = whole.hours.values().flatten().map(|b| b.num_rows()).sum();
    assert_eq!(rows, whole_rows);
}

/// Parses `data` as a plans file: errors are fine, panics are not.
pub fn plans(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Plans::parse(text, &KeyHasher::new(None));
    }
}

fn check(parsed: &Parsed, hasher: &KeyHasher) {
    let stats = &parsed.stats;
    assert_eq!(
        stats.lines,
        stats.requests + stats.bad_lines,
        "every line is a request or a bad line: {stats:?}"
    );
    let rows: usize = parsed.hours.values().flatten().map(|b| b.num_rows()).sum();
    assert_eq!(rows as u64, stats.requests, "one row per request");
    assert!(stats.keyless <= stats.requests);
    assert!(stats.field_error_samples.len() as u64 <= stats.field_errors);
    assert!(stats.bad_samples.len() as u64 <= stats.bad_lines);
    for bad in &stats.bad_samples {
        assert_no_key(&bad.reason, "bad line sample");
    }
    for error in &stats.field_error_samples {
        assert_no_key(&error.reason, "field error sample");
        assert_no_key(&error.field, "field error sample");
    }
    let ids: Vec<String> = KEYS.iter().map(|k| hasher.id_of(k)).collect();
    for (hour, batch) in parsed
        .hours
        .iter()
        .flat_map(|(h, bs)| bs.iter().map(move |b| (h, b)))
    {
        let schema = batch.schema();
        let key_ids = batch
            .column_by_name("api_key_id")
            .expect("rows have api_key_id")
            .as_string::<i32>();
        for row in 0..batch.num_rows() {
            if key_ids.is_null(row) {
                continue;
            }
            let Some(which) = ids.iter().position(|id| id == key_ids.value(row)) else {
                continue;
            };
            let key = KEYS[which];
            for (field, column) in schema.fields().iter().zip(batch.columns()) {
                if !client_written(field.name()) || *field.data_type() != DataType::Utf8 {
                    continue;
                }
                let values = column.as_string::<i32>();
                if values.is_null(row) {
                    continue;
                }
                let value = values.value(row);
                let decoded = decode_twice(value.as_bytes());
                let decoded = String::from_utf8_lossy(&decoded);
                assert!(
                    !value.contains(key) && !decoded.contains(key),
                    "hour {}, row {row}: the key found in the request is stored in {}: {value:?}",
                    hour.epoch_hours(),
                    field.name()
                );
            }
        }
    }
}

/// Whether a client's request decides the column's text (CloudFront writes
/// the others: ids, locations, result types, TLS details).
fn client_written(column: &str) -> bool {
    use crate::format::fields::{idx, other_client_text_fields};
    use crate::schema::fields::FIELDS;
    [
        idx::CS_URI_QUERY,
        idx::CS_URI_STEM,
        idx::CS_HEADERS,
        idx::CS_COOKIE,
        idx::VIEWER_REQUEST_LOG_DATA,
        idx::CS_REFERER,
        idx::CS_USER_AGENT,
    ]
    .iter()
    .chain(other_client_text_fields())
    .any(|&i| FIELDS[i].column == column)
}

fn assert_no_key(text: &str, what: &str) {
    for key in KEYS {
        assert!(!text.contains(key), "a raw key in a {what}: {text:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The committed corpus of a target.
    fn corpus(target: &str) -> Vec<Vec<u8>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        paths.sort();
        let seeds: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
        assert!(!seeds.is_empty(), "{} is empty", dir.display());
        seeds
    }

    /// xorshift64*: deterministic, so a failure here reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Pieces that matter to the parser, spliced in by mutations.
    const TOKENS: &[&[u8]] = &[
        b"\t",
        b"\n",
        b"\r\n",
        b"-",
        b"%",
        b"%25",
        b"%0A",
        b";",
        b"&",
        b"=",
        b"#Fields: ",
        b"api_key=",
        b"API_KEY=",
        b"X-Api-Key:",
        b"Cookie:",
        b"Referer:",
        b"{",
        b"}",
        b"\"",
        b"9999-12-31",
        b"0.049",
        b"\xff",
        b"\x1f\x8b",
    ];

    fn mutate(rng: &mut Rng, seed: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
        let mut data = seed.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(data.len() + 1);
            match rng.below(7) {
                0 if !data.is_empty() => {
                    let i = rng.below(data.len());
                    data[i] ^= 1 << rng.below(8);
                }
                1 => {
                    let end = (at + rng.below(64)).min(data.len());
                    data.drain(at..end);
                }
                2 => {
                    let token = TOKENS[rng.below(TOKENS.len())];
                    data.splice(at..at, token.iter().copied());
                }
                3 => {
                    let key = KEYS[rng.below(KEYS.len())].as_bytes();
                    data.splice(at..at, key.iter().copied());
                }
                4 => {
                    let end = (at + rng.below(200)).min(data.len());
                    let copy = data[at..end].to_vec();
                    data.splice(at..at, copy);
                }
                5 => {
                    let other = &seeds[rng.below(seeds.len())];
                    let from = rng.below(other.len());
                    let end = (from + rng.below(400)).min(other.len());
                    data.splice(at..at, other[from..end].iter().copied());
                }
                _ => data.truncate(at),
            }
        }
        data
    }

    #[test]
    fn corpus_and_its_mutations_keep_every_invariant() {
        let seeds = corpus("object");
        for seed in &seeds {
            object(seed);
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..4000 {
            let seed = &seeds[round % seeds.len()];
            let data = mutate(&mut rng, seed, &seeds);
            if std::panic::catch_unwind(|| object(&data)).is_err() {
                panic!(
                    "mutation {round} broke an invariant; input: {:?}",
                    String::from_utf8_lossy(&data)
                );
            }
        }
    }

    #[test]
    fn plans_corpus_and_its_mutations_never_panic() {
        let seeds = corpus("plans");
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for round in 0..2000 {
            let data = mutate(&mut rng, &seeds[round % seeds.len()], &seeds);
            plans(&data);
        }
    }

    /// An object seed (its first byte 0: detected format) parsed as the
    /// target parses it, which must succeed; with the hasher that keyed it.
    fn parse_seed(seed: &[u8]) -> (crate::format::Parsed, KeyHasher) {
        let options = ParseOptions {
            key_sources: default_sources(),
            format: LogFormat::Auto,
            max_line_bytes: MAX_LINE_BYTES,
        };
        let mut hasher = KeyHasher::new(None);
        let parsed = crate::format::parse_object(
            bytes::Bytes::copy_from_slice(&seed[1..]),
            "seed",
            &options,
            MAX_OBJECT_BYTES,
            &mut hasher,
        )
        .unwrap();
        (parsed, hasher)
    }

    #[test]
    fn the_seeds_hold_their_keys_where_they_are_found() {
        // The corpus only checks redaction where its keys are found: counted
        // by hand from fuzz/seeds.py.
        let text = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/object/standard-keys.log"),
        )
        .unwrap();
        let (parsed, hasher) = parse_seed(&text);
        // Ten lines; the years 0000 and 9999 make two bad lines.
        assert_eq!(parsed.stats.lines, 10);
        assert_eq!(parsed.stats.bad_lines, 2);
        assert_eq!(parsed.stats.requests, 8);
        // c-port 0.049 and sc-content-len 570129.76.
        assert_eq!(parsed.stats.field_errors, 2);
        // `api_key%3D…` names no key.
        assert_eq!(parsed.stats.keyless, 1);
        let mut per_key = [0; 2];
        for batch in parsed.hours.values().flatten() {
            let ids = batch
                .column_by_name("api_key_id")
                .unwrap()
                .as_string::<i32>();
            for id in ids.iter().flatten() {
                for (i, key) in KEYS.iter().enumerate() {
                    per_key[i] += usize::from(id == hasher.id_of(key));
                }
            }
        }
        // The long key: query, cookie, path parameter, the conflicting line
        // (header-less, so the first query value) and the damaged line.
        assert_eq!(per_key, [5, 1]);
        check(&parsed, &hasher);
    }

    /// A v2 Parquet log (snake_case columns) with the keys in the query, a
    /// cookie and `cs_headers`: the seed `fuzz/corpus/object/v2.parquet`.
    fn parquet_seed() -> Vec<u8> {
        use datafusion::arrow::array::{RecordBatch, StringArray};
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use std::sync::Arc;
        let [long, short] = KEYS;
        let columns: [(&str, [Option<String>; 3]); 8] = [
            (
                "date",
                ["2025-10-05", "2025-10-05", "2025-10-05"].map(|v| Some(v.into())),
            ),
            (
                "time",
                ["02:00:00", "02:00:01", "02:00:02"].map(|v| Some(v.into())),
            ),
            ("sc_status", ["200", "404", "503"].map(|v| Some(v.into()))),
            ("sc_bytes", [Some("1000".into()), None, Some("-".into())]),
            (
                "cs_uri_query",
                [
                    Some(format!("api_key={long}&x=1")),
                    None,
                    Some("x=2".into()),
                ],
            ),
            (
                "cs_cookie",
                [None, Some(format!("theme=dark;%20api_key={short}")), None],
            ),
            (
                "cs_headers",
                [
                    None,
                    None,
                    Some(format!("Host:a.example%0AX-Api-Key:{long}%0A")),
                ],
            ),
            (
                "x_edge_request_id",
                ["p1", "p2", "p3"].map(|v| Some(v.into())),
            ),
        ];
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(name, _)| Field::new(*name, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let arrays = columns
            .iter()
            .map(|(_, values)| Arc::new(StringArray::from(values.to_vec())) as _)
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), arrays).unwrap();
        let mut out = vec![0u8];
        let mut writer =
            datafusion::parquet::arrow::ArrowWriter::try_new(&mut out, schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        out
    }

    #[test]
    fn the_parquet_seed_is_its_recipe_and_finds_its_keys() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/object/v2.parquet");
        let seed = parquet_seed();
        // EDGEMETER_BLESS_SEEDS=1 writes it again (after a parquet upgrade).
        if std::env::var_os("EDGEMETER_BLESS_SEEDS").is_some() {
            std::fs::write(&path, &seed).unwrap();
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            seed,
            "bless the Parquet seed again"
        );
        let (parsed, hasher) = parse_seed(&seed);
        assert_eq!(parsed.stats.requests, 3);
        let mut ids: Vec<String> = parsed
            .hours
            .values()
            .flatten()
            .flat_map(|b| {
                let ids = b.column_by_name("api_key_id").unwrap().as_string::<i32>();
                ids.iter()
                    .map(|id| id.unwrap_or("-").to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        ids.sort();
        // The query's long key, the cookie's short one, the header's long one.
        let mut want = vec![
            hasher.id_of(KEYS[0]),
            hasher.id_of(KEYS[0]),
            hasher.id_of(KEYS[1]),
        ];
        want.sort();
        assert_eq!(ids, want);
        check(&parsed, &hasher);
        object(&seed);
    }
}
