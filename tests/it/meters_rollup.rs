//! Meters answered from the `usage_hourly` rollup give the numbers raw rows
//! give: each rollup meter has a twin whose filter adds every logged
//! `result_type` (so it keeps the same rows but only raw rows can answer it),
//! and both must equal what the test computes from the requests it logged.

use crate::cli::{edgemeter, ingest, summary};
use crate::logs::{HEADER, gzip, sha256_hex};
use std::collections::BTreeMap;

/// One logged request, with what its meters look at as the test knows it.
#[derive(Debug, Clone)]
struct Logged {
    /// `YYYY-MM-DDTHH:MM:SSZ`
    instant: String,
    key: Option<&'static str>,
    method: &'static str,
    /// The host a filter matches: the Host header, else cs(Host), lowercased.
    host: &'static str,
    /// The endpoint template of the logged path.
    endpoint: &'static str,
    status: u16,
    edge: &'static str,
    result_type: &'static str,
    sc_bytes: Option<i64>,
    cs_bytes: i64,
    client: String,
}

const KEYS: [&str; 3] = [
    "ak_test_rollup_alpha_01",
    "ak_test_rollup_bravo_02",
    "ak_test_rollup_charlie_3",
];
const METHODS: [&str; 4] = ["GET", "POST", "GET", "DELETE"];
/// (logged Host header, logged cs(Host), the host a filter matches)
const HOSTS: [(&str, &str, &str); 4] = [
    ("api.example.com", "d1.cloudfront.net", "api.example.com"),
    ("API.Example.COM", "d1.cloudfront.net", "api.example.com"),
    ("dl.example.com", "d1.cloudfront.net", "dl.example.com"),
    ("-", "D1.cloudfront.net", "d1.cloudfront.net"),
];
const STATUSES: [u16; 7] = [200, 201, 206, 304, 404, 429, 500];
const EDGES: [&str; 4] = ["SFO53-P9", "FRA56-P4", "IAD89-C1", "FRA2-C1"];
const RESULTS: [&str; 3] = ["Hit", "Miss", "Error"];

/// A path the generator logs for `n`, and its endpoint template.
fn path(kind: usize, n: usize) -> (String, &'static str) {
    match kind % 6 {
        0 => ("/v1/search".into(), "/v1/search"),
        1 => ("/v1/searches".into(), "/v1/searches"),
        2 => (format!("/v1/users/{}", 1000 + n), "/v1/users/{id}"),
        3 => (format!("/v1/users/{n}/orders"), "/v1/users/{id}/orders"),
        4 => (
            format!("/v1/files/{:08x}-1111-2222-3333-444455556666/content", n),
            "/v1/files/{id}/content",
        ),
        _ => ("/health".into(), "/health"),
    }
}

/// Five hours (22:00 on the 4th to 02:59 on the 5th), 600 requests an hour,
/// one every 6 seconds, the fields varied by co-prime strides so that every
/// combination turns up; one log file per hour.
fn write_logs(dir: &std::path::Path) -> Vec<Logged> {
    let mut all = Vec::new();
    for (date, hour) in [
        ("2025-10-04", 22),
        ("2025-10-04", 23),
        ("2025-10-05", 0),
        ("2025-10-05", 1),
        ("2025-10-05", 2),
    ] {
        let mut text = HEADER.to_string();
        for i in 0..600usize {
            let x = i * 7 + hour * 13;
            let key = (i % 11 != 3).then(|| KEYS[x % 3]);
            let (host_header, cs_host, host) = HOSTS[(x / 3) % 4];
            let (stem, endpoint) = path(i / 2 + hour, i);
            let sc_bytes = (i % 13 != 0).then_some(100 + (x % 977) as i64);
            let sec = i * 6;
            let time = format!("{hour:02}:{:02}:{:02}", sec / 60, sec % 60);
            let r = Logged {
                instant: format!("{date}T{time}Z"),
                key,
                method: METHODS[(i / 5) % 4],
                host,
                endpoint,
                status: STATUSES[(x / 2) % 7],
                edge: EDGES[i % 4],
                result_type: RESULTS[(i / 3) % 3],
                sc_bytes,
                cs_bytes: 40 + (x % 301) as i64,
                client: format!("10.0.{}.{}", hour % 2, i % 9),
            };
            let query = key.map_or("page=1".to_string(), |k| format!("api_key={k}"));
            let sc = sc_bytes.map_or("-".into(), |b| b.to_string());
            let line = format!(
                "{date}\t{time}\t{edge}\t{sc}\t{client}\t{method}\t{cs_host}\t{stem}\t{status}\t-\tcurl/8.7.1\t{query}\t-\t{result}\trq{date}{hour}x{i}\t{host_header}\thttps\t{cs}\t0.010\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\t{result}\tHTTP/2.0\t-\t-\t5000\t0.005\t{result}\tapplication/json\t10\t-\t-\n",
                edge = r.edge,
                client = r.client,
                method = r.method,
                status = r.status,
                result = r.result_type,
                cs = r.cs_bytes,
            );
            text.push_str(&line);
            all.push(r);
        }
        let name = format!("E2METER.{date}-{hour:02}.0001.gz");
        std::fs::write(dir.join(name), gzip(&text)).unwrap();
    }
    all
}

/// A meter as the test evaluates it: which rows it keeps and what it adds.
struct Expect {
    slug: &'static str,
    keeps: fn(&Logged) -> bool,
    adds: fn(&Logged) -> i64,
}

fn one(_: &Logged) -> i64 {
    1
}
fn bytes_out(r: &Logged) -> i64 {
    r.sc_bytes.unwrap_or(0)
}
fn bytes_in(r: &Logged) -> i64 {
    r.cs_bytes
}

/// The meters the rollup answers, as the test understands their filters.
const EXPECT: [Expect; 10] = [
    Expect {
        slug: "requests",
        keeps: |_| true,
        adds: one,
    },
    Expect {
        slug: "billable_requests",
        keeps: |r| (200..300).contains(&r.status),
        adds: one,
    },
    Expect {
        slug: "bytes_out",
        keeps: |_| true,
        adds: bytes_out,
    },
    Expect {
        slug: "bytes_in",
        keeps: |_| true,
        adds: bytes_in,
    },
    // `/v1/search*` is /v1/search and /v1/searches, never a deeper path.
    Expect {
        slug: "search_calls",
        keeps: |r| {
            ["/v1/search", "/v1/searches"].contains(&r.endpoint)
                && ["GET", "POST"].contains(&r.method)
                && (200..300).contains(&r.status)
        },
        adds: one,
    },
    // `/v1/users/**` crosses segments: both user endpoints.
    Expect {
        slug: "user_reads",
        keeps: |r| r.endpoint.starts_with("/v1/users/") && r.method == "GET",
        adds: one,
    },
    // Host headers in any case, and cs(Host) where no header was logged.
    Expect {
        slug: "api_host",
        keeps: |r| r.host == "api.example.com",
        adds: one,
    },
    Expect {
        slug: "distribution_host",
        keeps: |r| r.host == "d1.cloudfront.net",
        adds: one,
    },
    // Edge prefix FRA: FRA56-P4 and FRA2-C1.
    Expect {
        slug: "fra_bytes",
        keeps: |r| r.edge.starts_with("FRA"),
        adds: bytes_out,
    },
    Expect {
        slug: "download_bytes",
        keeps: |r| r.endpoint == "/v1/files/{id}/content" && [200, 201, 206].contains(&r.status),
        adds: bytes_out,
    },
];

/// Each meter the rollup answers, and its twin (suffix `_raw`) that only raw
/// rows answer: the same filter and every result type the logs hold.
const PLANS: &str = r#"
[billing]
currency = "USD"

[meters.search_calls]
aggregation = "count"
filter = { endpoint = ["/v1/search*"], method = ["GET", "POST"], status = "2xx" }
[meters.search_calls_raw]
aggregation = "count"
filter = { endpoint = ["/v1/search*"], method = ["GET", "POST"], status = "2xx", result_type = ["Hit", "Miss", "Error"] }

[meters.user_reads]
aggregation = "count"
filter = { endpoint = "/v1/users/**", method = "GET" }
[meters.user_reads_raw]
aggregation = "count"
filter = { endpoint = "/v1/users/**", method = "GET", result_type = ["Hit", "Miss", "Error"] }

[meters.api_host]
aggregation = "count"
filter = { host = "API.example.com" }
[meters.api_host_raw]
aggregation = "count"
filter = { host = "api.example.com", result_type = ["Hit", "Miss", "Error"] }

[meters.distribution_host]
aggregation = "count"
filter = { host = "d1.cloudfront.net" }
[meters.distribution_host_raw]
aggregation = "count"
filter = { host = "d1.cloudfront.net", result_type = ["Hit", "Miss", "Error"] }

[meters.fra_bytes]
aggregation = "sum"
value = "sc_bytes"
filter = { edge = "FRA" }
[meters.fra_bytes_raw]
aggregation = "sum"
value = "sc_bytes"
filter = { edge = "FRA", result_type = ["Hit", "Miss", "Error"] }

[meters.download_bytes]
aggregation = "sum"
value = "sc_bytes"
filter = { endpoint = ["/v1/files/*/content"], status = "2xx,206" }
[meters.download_bytes_raw]
aggregation = "sum"
value = "sc_bytes"
filter = { endpoint = ["/v1/files/*/content"], status = "2xx,206", result_type = ["Hit", "Miss", "Error"] }

[meters.requests_raw]
aggregation = "count"
filter = { result_type = ["Hit", "Miss", "Error"] }
[meters.billable_requests_raw]
aggregation = "count"
filter = { status = "2xx", result_type = ["Hit", "Miss", "Error"] }
[meters.bytes_out_raw]
aggregation = "sum"
value = "sc_bytes"
filter = { result_type = ["Hit", "Miss", "Error"] }
[meters.bytes_in_raw]
aggregation = "sum"
value = "cs_bytes"
filter = { result_type = ["Hit", "Miss", "Error"] }

[meters.active_clients]
aggregation = "unique_count"
value = "c_ip"
"#;

/// A row of `usage --meter … --format csv`: its leading columns (window,
/// key) joined by `|`, then each meter's value by slug.
type Table = BTreeMap<String, BTreeMap<String, String>>;

/// `edgemeter usage` with every meter of [`PLANS`] and `extra` flags.
async fn meters_csv(lake: &str, plans: &str, extra: &[&str]) -> crate::cli::Run {
    let mut args = vec!["usage", "--lake", lake, "--plans", plans, "--format", "csv"];
    for e in &EXPECT {
        args.extend(["--meter", e.slug]);
    }
    let twins: Vec<String> = EXPECT.iter().map(|e| format!("{}_raw", e.slug)).collect();
    for twin in &twins {
        args.extend(["--meter", twin.as_str()]);
    }
    args.extend(["--meter", "active_clients"]);
    args.extend_from_slice(extra);
    edgemeter(&[], &args).await
}

fn parse(csv_text: &str) -> Table {
    // The meters' columns start with the first of [`EXPECT`].
    parse_from(csv_text, EXPECT[0].slug)
}

/// [`parse`] of a CSV whose meters' columns start with `first`.
fn parse_from(csv_text: &str, first: &str) -> Table {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let lead = headers
        .iter()
        .position(|h| h == first)
        .expect("the first meter's column");
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            let id: Vec<&str> = record
                .iter()
                .zip(&headers)
                .take(lead)
                .filter(|(_, h)| *h != "api_key_hint")
                .map(|(v, _)| v)
                .collect();
            let values = headers[lead..]
                .iter()
                .cloned()
                .zip(record.iter().skip(lead).map(String::from))
                .collect();
            (id.join("|"), values)
        })
        .collect()
}

/// What the test computes: rows keyed as [`parse`] keys them, `window` giving
/// the leading window column of a request (none without `--by`).
fn expected(kept: &[&Logged], window: &dyn Fn(&Logged) -> Option<String>) -> Table {
    expected_per(kept, window, &|r| r.key.map(sha256_hex).unwrap_or_default())
}

/// [`expected`], rows keyed by `owner` of a request rather than its key.
fn expected_per(
    kept: &[&Logged],
    window: &dyn Fn(&Logged) -> Option<String>,
    owner: &dyn Fn(&Logged) -> String,
) -> Table {
    let mut out = Table::new();
    let mut clients: BTreeMap<String, std::collections::BTreeSet<&str>> = BTreeMap::new();
    for r in kept {
        let key = owner(r);
        let id = match window(r) {
            Some(w) => format!("{w}|{key}"),
            None => key,
        };
        let row = out.entry(id.clone()).or_default();
        for e in &EXPECT {
            let add = if (e.keeps)(r) { (e.adds)(r) } else { 0 };
            for slug in [e.slug.to_string(), format!("{}_raw", e.slug)] {
                let v = row.entry(slug).or_insert_with(|| "0".into());
                *v = (v.parse::<i64>().unwrap() + add).to_string();
            }
        }
        clients.entry(id).or_default().insert(&r.client);
    }
    for (id, set) in clients {
        out.get_mut(&id)
            .unwrap()
            .insert("active_clients".into(), set.len().to_string());
    }
    out
}

fn in_range<'a>(all: &'a [Logged], from: &str, to: &str) -> Vec<&'a Logged> {
    let kept: Vec<&Logged> = all
        .iter()
        .filter(|r| from <= r.instant.as_str() && r.instant.as_str() < to)
        .collect();
    assert!(!kept.is_empty(), "{from}..{to} should hold requests");
    kept
}

const RANGES: [(&str, &str); 4] = [
    // Whole hours only.
    ("2025-10-04T23:00:00Z", "2025-10-05T02:00:00Z"),
    // Partial hours at both edges, crossing midnight.
    ("2025-10-04T22:30:03Z", "2025-10-05T01:15:00Z"),
    // Inside one hour; across one hour boundary without a whole hour.
    ("2025-10-05T00:10:00Z", "2025-10-05T00:20:03Z"),
    ("2025-10-05T01:50:00Z", "2025-10-05T02:10:00Z"),
];

async fn assert_ranges_exact(lake: &str, plans: &str, all: &[Logged]) {
    for (from, to) in RANGES {
        let run = meters_csv(lake, plans, &["--from", from, "--to", to]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        let want = expected(&in_range(all, from, to), &|_| None);
        assert_eq!(parse(&run.stdout), want, "meters {from} .. {to}");
    }
}

fn lake_and_plans() -> (tempfile::TempDir, tempfile::TempDir, Vec<Logged>, String) {
    let logs = tempfile::tempdir().unwrap();
    let all = write_logs(logs.path());
    let plans = logs.path().join("plans.toml");
    std::fs::write(&plans, PLANS).unwrap();
    let plans = plans.to_str().unwrap().to_string();
    (logs, tempfile::tempdir().unwrap(), all, plans)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollup_and_raw_rows_give_the_same_meters_at_any_range_edge() {
    let (logs, lake_dir, all, plans) = lake_and_plans();
    let lake = lake_dir.path().to_str().unwrap();
    let run = ingest(&[], logs.path().to_str().unwrap(), lake, &["--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run)["rows_written"], all.len());
    assert_ranges_exact(lake, &plans, &all).await;

    // Hand-checked corner of the arithmetic above: over everything, the
    // keyless rows are every 11th request from the 4th (i = 3, 14, …, 597:
    // 55 an hour, 275 in 5 hours).
    let run = meters_csv(lake, &plans, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got = parse(&run.stdout);
    assert_eq!(got[""]["requests"], "275");
    assert_eq!(got, expected(&all.iter().collect::<Vec<_>>(), &|_| None));

    // Rollups gone (a writer stopped between its two commits, or a lake of
    // the previous rollup layout): the same numbers from raw rows, until the
    // next run rebuilds every hour.
    std::fs::remove_dir_all(lake_dir.path().join("usage_hourly")).unwrap();
    assert_ranges_exact(lake, &plans, &all).await;
    let rerun = ingest(
        &[],
        logs.path().to_str().unwrap(),
        lake,
        &["--since", "2025-10-04", "--json"],
    )
    .await;
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    assert_eq!(summary(&rerun)["rollups_rebuilt"], 5);
    assert_ranges_exact(lake, &plans, &all).await;
}

/// `window_start` of a request in a zone of fixed offset `minutes` east of
/// UTC over the test's dates: the start of its local hour or day.
fn local_window(r: &Logged, minutes: i64, unit: &str) -> String {
    let utc = chrono::DateTime::parse_from_rfc3339(&r.instant).unwrap();
    let local = utc + chrono::Duration::minutes(minutes);
    let start = match unit {
        "hour" => local.format("%Y-%m-%dT%H:00:00").to_string(),
        _ => local.format("%Y-%m-%dT00:00:00").to_string(),
    };
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.abs();
    format!("{start}{sign}{:02}:{:02}", m / 60, m % 60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_in_a_zone_get_each_hour_once() {
    let (logs, lake_dir, all, plans) = lake_and_plans();
    let lake = lake_dir.path().to_str().unwrap();
    let run = ingest(&[], logs.path().to_str().unwrap(), lake, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (from, to) = ("2025-10-04T22:30:03Z", "2025-10-05T02:15:00Z");
    let kept = in_range(&all, from, to);
    // Berlin is UTC+2 all through these dates (summer time ends on the 26th):
    // every UTC hour lies in one local hour and day, so the rollup answers.
    // Kolkata is UTC+5:30: each UTC hour straddles two local hours (raw rows
    // answer), but all of them lie in the local day of the 5th. St John's is
    // UTC-2:30 (daylight time until November): its midnight falls at 02:30
    // UTC, inside the 02:00 hour, so raw rows answer days there.
    for (tz, minutes, unit) in [
        ("Europe/Berlin", 120, "day"),
        ("Europe/Berlin", 120, "hour"),
        ("Asia/Kolkata", 330, "hour"),
        ("Asia/Kolkata", 330, "day"),
        ("America/St_Johns", -150, "day"),
        ("America/St_Johns", -150, "hour"),
    ] {
        let run = meters_csv(
            lake,
            &plans,
            &["--from", from, "--to", to, "--by", unit, "--tz", tz],
        )
        .await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        let want = expected(&kept, &|r| Some(local_window(r, minutes, unit)));
        assert_eq!(parse(&run.stdout), want, "--by {unit} --tz {tz}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_hours_of_rollup_meters_never_read_raw_rows() {
    let (logs, lake_dir, all, plans) = lake_and_plans();
    let lake = lake_dir.path().to_str().unwrap();
    let run = ingest(&[], logs.path().to_str().unwrap(), lake, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Every requests file of 2025-10-05 00:00 and 01:00 UTC made unreadable;
    // the Delta log still lists them, so their rollups still pair.
    for hour in ["00", "01"] {
        let dir = lake_dir
            .path()
            .join(format!("requests/dt=2025-10-05/hour={hour}"));
        for file in std::fs::read_dir(dir).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|e| e == "parquet") {
                std::fs::write(&path, b"not parquet").unwrap();
            }
        }
    }
    let (from, to) = ("2025-10-04T23:20:00Z", "2025-10-05T02:00:00Z");
    let kept = in_range(&all, from, to);
    let want = expected(&kept, &|_| None);
    let slugs: Vec<&str> = EXPECT.iter().map(|e| e.slug).collect();
    let mut args = vec![
        "usage", "--lake", lake, "--plans", &plans, "--format", "csv", "--from", from, "--to", to,
    ];
    for slug in &slugs {
        args.extend(["--meter", slug]);
    }
    let run = edgemeter(&[], &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got = parse(&run.stdout);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (id, row) in &got {
        for slug in &slugs {
            assert_eq!(row[*slug], want[id][*slug], "{id} {slug}");
        }
    }
    // A meter only raw rows answer reads those files, and fails.
    let raw = edgemeter(
        &[],
        &[
            "usage",
            "--lake",
            lake,
            "--plans",
            &plans,
            "--from",
            from,
            "--to",
            to,
            "--meter",
            "requests_raw",
        ],
    )
    .await;
    assert_ne!(raw.code, 0, "{}", raw.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_customer_the_rollup_sums_each_customers_keys() {
    let (logs, lake_dir, all, plans) = lake_and_plans();
    let lake = lake_dir.path().to_str().unwrap();
    let run = ingest(&[], logs.path().to_str().unwrap(), lake, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Two keys of one customer; the third key belongs to no customer.
    let customers = format!(
        "{PLANS}\n[plans.basic]\nbase_fee = \"1.00\"\n\n[[customers]]\nid = \"cus_a\"\nname = \"A\"\nplan = \"basic\"\nkeys = [\"{}\", \"{}\"]\n",
        KEYS[0], KEYS[1]
    );
    std::fs::write(&plans, customers).unwrap();
    let (from, to) = ("2025-10-04T22:30:03Z", "2025-10-05T02:15:00Z");
    let run = meters_csv(
        lake,
        &plans,
        &["--from", from, "--to", to, "--per", "customer"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Rows are (customer_id, api_key_id): the key only for keys of no customer.
    let owner = |r: &Logged| match r.key {
        Some(k) if k == KEYS[0] || k == KEYS[1] => "cus_a|".to_string(),
        Some(k) => format!("|{}", sha256_hex(k)),
        None => "|".to_string(),
    };
    let want = expected_per(&in_range(&all, from, to), &|_| None, &owner);
    assert_eq!(want.len(), 3);
    assert_eq!(parse(&run.stdout), want);
}

/// Meters filtered on the status alone (the built-in ones), asked for on
/// their own, are summed from the narrow rollup (`usage_hourly_keys`): the
/// same numbers as their raw twins give in a run of every meter, which is
/// checked against the test's own counts, over everything, over a range cut
/// inside hours, and by day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_only_meters_from_the_narrow_rollup_match_their_raw_twins() {
    let (logs, lake_dir, all, plans) = lake_and_plans();
    let lake = lake_dir.path().to_str().unwrap();
    let run = ingest(&[], logs.path().to_str().unwrap(), lake, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let builtin = ["requests", "billable_requests", "bytes_out", "bytes_in"];
    let cut = [
        "--from",
        "2025-10-04T23:30:01Z",
        "--to",
        "2025-10-05T02:15:00Z",
    ];
    let by_day = ["--by", "day"];
    for extra in [&[][..], &cut[..], &by_day[..]] {
        let full = meters_csv(lake, &plans, extra).await;
        assert_eq!(full.code, 0, "{}", full.stderr);
        let full = parse(&full.stdout);
        if extra.is_empty() {
            assert_eq!(full, expected(&all.iter().collect::<Vec<_>>(), &|_| None));
        }
        let mut args = vec![
            "usage", "--lake", lake, "--plans", &plans, "--format", "csv",
        ];
        for slug in builtin {
            args.extend(["--meter", slug]);
        }
        args.extend_from_slice(extra);
        let narrow = edgemeter(&[], &args).await;
        assert_eq!(narrow.code, 0, "{}", narrow.stderr);
        let narrow = parse_from(&narrow.stdout, builtin[0]);
        for (id, values) in &narrow {
            for (slug, value) in values {
                let twin = &full[id][&format!("{slug}_raw")];
                assert_eq!(value, twin, "{slug} of {id} {extra:?}");
            }
            assert_eq!(values.len(), builtin.len());
        }
        assert_eq!(narrow.len(), full.len(), "{extra:?}");
    }
}
