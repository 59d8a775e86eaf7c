//! Builds CloudFront standard log files for tests from the real 2025 33-field
//! line (tests/fixtures/cloudfront/standard-2025-33.log), varying only key,
//! status, bytes, time and request id, and keeps the expected per-key totals
//! alongside, computed independently of edgemeter.

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;

pub const HEADER: &str = "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end\n";

/// One request to log.
#[derive(Debug, Clone)]
pub struct Req {
    /// `YYYY-MM-DD`, `HH:MM:SS`
    pub date: String,
    pub time: String,
    /// The query string as CloudFront logs it (already encoded).
    pub query: String,
    /// The decoded key, if the query carries one.
    pub key: Option<String>,
    pub status: &'static str,
    pub sc_bytes: Option<i64>,
    pub cs_bytes: i64,
    pub request_id: String,
    /// Seconds, as `time-taken`.
    pub time_taken: f64,
}

impl Req {
    pub fn line(&self) -> String {
        let sc = self.sc_bytes.map_or("-".to_string(), |b| b.to_string());
        format!(
            "{}\t{}\tSFO53-P9\t{sc}\t32.142.164.10\tPOST\td3o60fb1dwgq5k.cloudfront.net\t/data\t{}\t-\tcurl/8.7.1\t{}\t-\tMiss\t{}\td3o60fb1dwgq5k.cloudfront.net\thttps\t{}\t{:.3}\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tMiss\tHTTP/2.0\t-\t-\t54726\t0.133\tMiss\tapplication/json\t121\t-\t-\n",
            self.date,
            self.time,
            self.status,
            self.query,
            self.request_id,
            self.cs_bytes,
            self.time_taken
        )
    }
}

/// Expected usage of one key, as `edgemeter usage` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub hint: String,
    pub requests: i64,
    pub billable: i64,
    pub client_errors: i64,
    pub server_errors: i64,
    pub bytes_out: i64,
    pub bytes_in: i64,
}

pub fn sha256_hex(raw: &str) -> String {
    Sha256::digest(raw.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Totals by api_key_id (`""` for requests without a key).
pub fn expected(requests: &[&Req]) -> BTreeMap<String, Totals> {
    // The hint is kept only for keys of 16 characters or more.
    expected_with_hints_from(requests, 16)
}

/// [`expected`], for a lake written when keys of `min_hint_chars` or more
/// got a hint.
pub fn expected_with_hints_from(
    requests: &[&Req],
    min_hint_chars: usize,
) -> BTreeMap<String, Totals> {
    let mut out: BTreeMap<String, Totals> = BTreeMap::new();
    for r in requests {
        let id = r.key.as_deref().map(sha256_hex).unwrap_or_default();
        let t = out.entry(id).or_default();
        if let Some(k) = &r.key {
            let chars: Vec<char> = k.chars().collect();
            if chars.len() >= min_hint_chars {
                t.hint = chars[chars.len() - 4..].iter().collect();
            }
        }
        let status: i64 = r.status.parse().unwrap();
        t.requests += 1;
        t.billable += i64::from((200..300).contains(&status));
        t.client_errors += i64::from((400..500).contains(&status));
        t.server_errors += i64::from((500..600).contains(&status));
        t.bytes_out += r.sc_bytes.unwrap_or(0);
        t.bytes_in += r.cs_bytes;
    }
    out
}

/// [`expected`] for a lake whose ids are HMAC-SHA256 under `secret`,
/// computed here independently.
pub fn expected_under_secret(requests: &[&Req], secret: &str) -> BTreeMap<String, Totals> {
    use hmac::{Hmac, Mac};
    let hmac_hex = |raw: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(raw.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let plain = expected(requests);
    requests
        .iter()
        .map(|r| r.key.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|k| match k {
            Some(k) => (hmac_hex(&k), plain[&sha256_hex(&k)].clone()),
            None => (String::new(), plain[""].clone()),
        })
        .collect()
}

pub fn log_text(requests: &[Req]) -> String {
    let mut text = HEADER.to_string();
    for r in requests {
        text.push_str(&r.line());
    }
    text
}

pub fn gzip(text: &str) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

/// Keys as clients send them (decoded) and as CloudFront logs them in the query.
pub const KEYS: [(&str, &str); 4] = [
    ("ak_live_alpha0001", "ak_live_alpha0001"),
    ("ak_live_b+/=2", "ak_live_b%252B%252F%253D2"),
    ("ak live gamma 33", "ak%2520live%2520gamma%252033"),
    ("k3y5z", "k3y5z"),
];

/// A deterministic set of requests in one hour of 2025-10-05, with every
/// status class, a keyless request per 17, and `-` bytes per 23.
pub fn hour_of_requests(hour: u32, n: usize, id_prefix: &str) -> Vec<Req> {
    requests_at("2025-10-05", hour, n, id_prefix)
}

/// Like [`hour_of_requests`], on any date.
pub fn requests_at(date: &str, hour: u32, n: usize, id_prefix: &str) -> Vec<Req> {
    const STATUSES: [&str; 9] = [
        "200", "201", "204", "304", "404", "429", "500", "503", "000",
    ];
    (0..n)
        .map(|i| {
            let (key, query) = if i % 17 == 5 {
                (None, "page=2".to_string())
            } else {
                let (raw, logged) = KEYS[i % KEYS.len()];
                (
                    Some(raw.to_string()),
                    format!("x=1&api_key={logged}&y=%2520"),
                )
            };
            Req {
                date: date.to_string(),
                time: format!("{hour:02}:{:02}:{:02}", (i / 60) % 60, i % 60),
                query,
                key,
                status: STATUSES[i % STATUSES.len()],
                sc_bytes: (i % 23 != 7).then_some(100 + i as i64 * 3),
                cs_bytes: 50 + i as i64,
                request_id: format!("{id_prefix}-{hour}-{i}"),
                time_taken: 0.133,
            }
        })
        .collect()
}

/// One request line of `examples/logs` (600 requests of 2025-10-05, three
/// keys in the query string), read from the gzipped files themselves: what
/// tests count by, independently of edgemeter.
#[derive(Debug, Clone)]
pub struct ExampleLine {
    /// The UTC hour (9 or 10).
    pub hour: u32,
    pub method: String,
    pub stem: String,
    pub status: u16,
    pub sc_bytes: i64,
    /// The raw key of `api_key=`; `None` for the requests without one.
    pub key: Option<String>,
}

impl ExampleLine {
    /// The `api_key_id` edgemeter stores for the line (`""` for none).
    pub fn key_id(&self) -> String {
        self.key.as_deref().map_or(String::new(), sha256_hex)
    }
}

/// Every request line of `examples/logs`.
pub fn example_lines() -> Vec<ExampleLine> {
    use std::io::Read;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/logs");
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(entry.unwrap().path()).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split('\t').collect();
            lines.push(ExampleLine {
                hour: f[1][..2].parse().unwrap(),
                method: f[5].to_string(),
                stem: f[7].to_string(),
                status: f[8].parse().unwrap(),
                sc_bytes: f[3].parse().unwrap(),
                key: f[11]
                    .split('&')
                    .find_map(|p| p.strip_prefix("api_key="))
                    .map(str::to_string),
            });
        }
    }
    assert_eq!(lines.len(), 600);
    lines
}
