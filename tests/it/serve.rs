//! `edgemeter serve` over real HTTP on loopback: the binary serves a lake
//! ingested from `examples/logs` (600 requests on 2025-10-05 09:00–10:59 UTC,
//! three keys), and every number it answers is checked against counts made
//! here from the raw log lines, and against `edgemeter usage`, `export` and
//! `check` over the same lake.

use crate::cli::{edgemeter, ingest};
use crate::logs::{ExampleLine, Req, example_lines, log_text, sha256_hex};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const ACME: &str = "ak_live_acme_7f3k2";
const GLOBEX: &str = "ak_live_globex_99qz";
const INITECH: &str = "ak_test_initech_0001";
const ADMIN: &str = "admin-token-for-tests-0001";
const SECRET: &str = "portal-secret-of-the-tests-0123456789";

/// Acme has a subject of its own, Globex is its id, Initech's key belongs
/// to no customer (its subject is its api_key_id).
fn plans_toml() -> String {
    format!(
        r#"
[billing]
currency = "USD"
billable = "2xx"

[meters.search_calls]
aggregation = "count"
filter = {{ endpoint = ["/v1/search*"], method = ["GET", "POST"], status = "2xx" }}

[plans.pro]
base_fee = "10.00"
included_requests = 50
price_per_1k_requests = "2.00"
monthly_quota = 200
daily_quota = 100

[[customers]]
id = "cus_acme"
name = "Acme"
plan = "pro"
keys = ["{ACME}"]
openmeter_subject = "acme"

[[customers]]
id = "cus_globex"
name = "Globex"
plan = "pro"
keys = ["{GLOBEX}"]
"#
    )
}

fn tokens_toml() -> String {
    format!(
        "portal_secret = \"{SECRET}\"\n\n[[tokens]]\nname = \"tests\"\nrole = \"admin\"\ntoken_sha256 = \"{}\"\n",
        sha256_hex(ADMIN)
    )
}

/// The fixture's lines, with the count of those without a key checked.
fn fixture_lines() -> Vec<ExampleLine> {
    let lines = example_lines();
    // 126 + 161 + 159 requests carry one of the three keys, 154 none.
    assert_eq!(lines.iter().filter(|l| l.key.is_none()).count(), 154);
    lines
}

/// The subject each fixture key is reported under (`""`: no key, no subject).
fn subject_of(key: &Option<String>) -> String {
    match key.as_deref() {
        Some(ACME) => "acme".into(),
        Some(GLOBEX) => "cus_globex".into(),
        Some(other) => sha256_hex(other),
        None => String::new(),
    }
}

/// A lake of the fixture, its plans and tokens files.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let f = Self { dir };
        let source = format!("{}/examples/logs", env!("CARGO_MANIFEST_DIR"));
        let run = ingest(&[], &source, &f.lake(), &[]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        std::fs::write(f.plans(), plans_toml()).unwrap();
        std::fs::write(f.tokens(), tokens_toml()).unwrap();
        f
    }

    fn lake(&self) -> String {
        self.dir.path().join("lake").to_str().unwrap().to_string()
    }

    fn plans(&self) -> PathBuf {
        self.dir.path().join("plans.toml")
    }

    fn tokens(&self) -> PathBuf {
        self.dir.path().join("tokens.toml")
    }

    fn plans_arg(&self) -> String {
        self.plans().to_str().unwrap().to_string()
    }
}

/// A running `edgemeter serve`, stopped when dropped.
struct Server {
    child: tokio::process::Child,
    base: String,
    client: reqwest::Client,
}

impl Server {
    async fn start(f: &Fixture, flags: &[&str]) -> Self {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgemeter"))
            .args(["serve", "--lake", &f.lake(), "--plans", &f.plans_arg()])
            .args(["--tokens", f.tokens().to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0"])
            .args(flags)
            .env_remove("EDGEMETER_KEY_SECRET")
            .env_remove("EDGEMETER_PORTAL_SECRET")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(at) = line.strip_prefix("edgemeter: serving on ") {
                    return at.to_string();
                }
                eprintln!("{line}");
            }
            panic!("the server ended before it listened");
        })
        .await
        .expect("the server listens within a minute");
        // Keep reading its log, so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            base,
            client: reqwest::Client::new(),
        }
    }

    async fn send(&self, path: &str, token: Option<&str>, accept: &str) -> (u16, String) {
        let mut request = self
            .client
            .get(format!("{}{path}", self.base))
            .header("Accept", accept);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// GET as the admin, which must answer 200 with JSON.
    async fn get(&self, path: &str) -> serde_json::Value {
        self.get_as(path, ADMIN).await
    }

    async fn get_as(&self, path: &str, token: &str) -> serde_json::Value {
        let (status, body) = self.send(path, Some(token), "application/json").await;
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    async fn portal_token(&self, body: serde_json::Value) -> String {
        let response = self
            .client
            .post(format!("{}/api/v1/portal/tokens", self.base))
            .bearer_auth(ADMIN)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let json: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        json["token"].as_str().unwrap().to_string()
    }
}

/// The rows of a query answer by (windowStart, subject, groupBy as text).
fn rows(answer: &serde_json::Value) -> BTreeMap<(String, String, String), f64> {
    answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r["windowStart"].as_str().unwrap().to_string(),
                    r["subject"].as_str().unwrap_or("").to_string(),
                    r["groupBy"].to_string(),
                ),
                r["value"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// Values by subject of an answer without windows or groups.
fn by_subject(answer: &serde_json::Value) -> BTreeMap<String, f64> {
    rows(answer)
        .into_iter()
        .map(|((_, s, _), v)| (s, v))
        .collect()
}

fn count_by<K: Ord>(
    lines: &[ExampleLine],
    keep: impl Fn(&ExampleLine) -> bool,
    key: impl Fn(&ExampleLine) -> K,
) -> BTreeMap<K, f64> {
    let mut out = BTreeMap::new();
    for l in lines.iter().filter(|l| keep(l)) {
        *out.entry(key(l)).or_insert(0.0) += 1.0;
    }
    out
}

const DAY: &str = "from=2025-10-05T00:00:00Z&to=2025-10-06T00:00:00Z";

#[tokio::test]
async fn openmeter_queries_equal_usage_and_the_raw_logs() {
    let f = Fixture::new().await;
    let lines = fixture_lines();
    let server = Server::start(&f, &[]).await;

    // Meters: the four built-in ones, then the plans file's.
    let meters = server.get("/api/v1/meters").await;
    let slugs: Vec<&str> = meters
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["slug"].as_str().unwrap())
        .collect();
    assert_eq!(
        slugs,
        [
            "requests",
            "billable_requests",
            "bytes_out",
            "bytes_in",
            "search_calls"
        ]
    );
    let bytes_out = server.get("/api/v1/meters/bytes_out").await;
    assert_eq!(bytes_out["aggregation"], "SUM");
    assert_eq!(bytes_out["valueProperty"], "$.sc_bytes");
    assert_eq!(bytes_out["eventType"], "request");
    // By id as well as by slug.
    let id = bytes_out["id"].as_str().unwrap();
    assert_eq!(server.get(&format!("/api/v1/meters/{id}")).await, bytes_out);
    let (status, body) = server
        .send("/api/v1/meters/nope", Some(ADMIN), "application/json")
        .await;
    assert_eq!(status, 404, "{body}");

    // Totals per subject, three meters, against the raw lines.
    let per_subject = |keep: &dyn Fn(&ExampleLine) -> bool, value: &dyn Fn(&ExampleLine) -> f64| {
        let mut out: BTreeMap<String, f64> = BTreeMap::new();
        for l in lines.iter().filter(|l| keep(l)) {
            *out.entry(subject_of(&l.key)).or_default() += value(l);
        }
        out
    };
    let raw_requests = per_subject(&|_| true, &|_| 1.0);
    let raw_search = per_subject(
        &|l| l.stem == "/v1/search" && (200..300).contains(&l.status),
        &|_| 1.0,
    );
    let raw_bytes = per_subject(&|_| true, &|l| l.sc_bytes as f64);
    assert_eq!(raw_requests["acme"], 126.0);
    assert_eq!(raw_requests["cus_globex"], 161.0);
    assert_eq!(raw_requests[&sha256_hex(INITECH)], 159.0);
    let query = |meter: &str, extra: &str| {
        format!("/api/v1/meters/{meter}/query?{DAY}&groupBy=subject{extra}")
    };
    let served_requests = by_subject(&server.get(&query("requests", "")).await);
    let served_bytes = by_subject(&server.get(&query("bytes_out", "")).await);
    let mut served_search = by_subject(&server.get(&query("search_calls", "")).await);
    assert_eq!(served_requests, raw_requests);
    assert_eq!(served_bytes, raw_bytes);
    // A subject with no search calls has no row, the raw count none.
    served_search.retain(|_, v| *v > 0.0);
    assert_eq!(served_search, raw_search);

    // The same as `edgemeter usage --meter … --per customer`.
    let usage = edgemeter(
        &[],
        &[
            "usage",
            "--lake",
            &f.lake(),
            "--plans",
            &f.plans_arg(),
            "--per",
            "customer",
            "--meter",
            "requests",
            "--meter",
            "search_calls",
            "--meter",
            "bytes_out",
            "--format",
            "csv",
        ],
    )
    .await;
    assert_eq!(usage.code, 0, "{}", usage.stderr);
    let mut reader = csv::Reader::from_reader(usage.stdout.as_bytes());
    let mut from_usage = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for record in reader.records() {
        let r = record.unwrap();
        let subject = match &r[0] {
            "cus_acme" => "acme".to_string(),
            "" => r[1].to_string(),
            other => other.to_string(),
        };
        let n = |i: usize| r[i].parse::<f64>().unwrap();
        from_usage.0.insert(subject.clone(), n(2));
        if n(3) > 0.0 {
            from_usage.1.insert(subject.clone(), n(3));
        }
        from_usage.2.insert(subject, n(4));
    }
    assert_eq!(from_usage, (served_requests, served_search, served_bytes));

    // Without groupBy=subject: one total over everyone, subject null.
    let total = server
        .get(&format!("/api/v1/meters/requests/query?{DAY}"))
        .await;
    assert_eq!(total["data"].as_array().unwrap().len(), 1);
    assert_eq!(total["data"][0]["value"], 600);
    assert!(total["data"][0]["subject"].is_null());
    assert_eq!(total["data"][0]["windowStart"], "2025-10-05T00:00:00Z");
    assert_eq!(total["data"][0]["windowEnd"], "2025-10-06T00:00:00Z");

    // HOUR windows per subject (subject= filters and groups by subject).
    let hourly = server
        .get(&format!(
            "/api/v1/meters/requests/query?{DAY}&windowSize=HOUR&subject=acme&subject=cus_globex"
        ))
        .await;
    assert_eq!(hourly["windowSize"], "HOUR");
    let expected = count_by(
        &lines,
        |l| l.key.as_deref() == Some(ACME) || l.key.as_deref() == Some(GLOBEX),
        |l| {
            (
                format!("2025-10-05T{:02}:00:00Z", l.hour),
                subject_of(&l.key),
                "{}".to_string(),
            )
        },
    );
    assert_eq!(rows(&hourly), expected);
    for row in hourly["data"].as_array().unwrap() {
        let start = row["windowStart"].as_str().unwrap();
        let end_hour: u32 = start[11..13].parse::<u32>().unwrap() + 1;
        assert_eq!(row["windowEnd"], format!("2025-10-05T{end_hour:02}:00:00Z"));
    }

    // MINUTE windows: 09:00 holds the first requests of the day.
    let minutes = server
        .get(&format!(
            "/api/v1/meters/requests/query?{DAY}&windowSize=MINUTE"
        ))
        .await;
    let sum: f64 = rows(&minutes).values().sum();
    assert_eq!(sum, 600.0);
    assert_eq!(minutes["data"][0]["windowStart"], "2025-10-05T09:00:00Z");
    assert_eq!(minutes["data"][0]["windowEnd"], "2025-10-05T09:01:00Z");

    // groupBy method and status, filterGroupBy[method]=GET.
    let grouped = server
        .get(&format!(
            "/api/v1/meters/requests/query?{DAY}&groupBy=status&filterGroupBy%5Bmethod%5D=GET"
        ))
        .await;
    let expected = count_by(
        &lines,
        |l| l.method == "GET",
        |l| {
            (
                "2025-10-05T00:00:00Z".to_string(),
                String::new(),
                serde_json::json!({ "status": l.status.to_string() }).to_string(),
            )
        },
    );
    assert_eq!(rows(&grouped), expected);

    // groupBy endpoint: stems with ids folded into templates (by hand:
    // numbers and UUIDs are ids).
    let endpoints = server
        .get(&format!(
            "/api/v1/meters/requests/query?{DAY}&groupBy=endpoint&groupBy=method"
        ))
        .await;
    let template = |stem: &str| {
        match stem {
            "/v1/users/123" => "/v1/users/{id}",
            "/v1/users/456/orders" => "/v1/users/{id}/orders",
            "/v1/reports/8f14e45f-ceea-467f-a0e6-1b1f2c3d4e5f" => "/v1/reports/{id}",
            other => other,
        }
        .to_string()
    };
    let expected = count_by(
        &lines,
        |_| true,
        |l| {
            (
                "2025-10-05T00:00:00Z".to_string(),
                String::new(),
                serde_json::json!({ "endpoint": template(&l.stem), "method": l.method })
                    .to_string(),
            )
        },
    );
    assert_eq!(rows(&endpoints), expected);

    // CSV: the same rows as the JSON.
    let (status, text) = server
        .send(
            &format!(
                "/api/v1/meters/requests/query?{DAY}&windowSize=HOUR&groupBy=subject&groupBy=method"
            ),
            Some(ADMIN),
            "text/csv",
        )
        .await;
    assert_eq!(status, 200);
    let json = server
        .get(&format!(
            "/api/v1/meters/requests/query?{DAY}&windowSize=HOUR&groupBy=subject&groupBy=method"
        ))
        .await;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["window_start", "window_end", "subject", "method", "value"]
    );
    let from_csv: BTreeMap<(String, String, String), f64> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                (
                    r[0].to_string(),
                    r[2].to_string(),
                    serde_json::json!({ "method": &r[3] }).to_string(),
                ),
                r[4].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(from_csv, rows(&json));
    assert_eq!(from_csv.values().sum::<f64>(), 600.0);

    // Subjects: the two customers, then the key of no customer.
    let subjects = server.get("/api/v1/subjects").await;
    let keys: Vec<&str> = subjects
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    let initech = sha256_hex(INITECH);
    assert_eq!(keys, ["acme", "cus_globex", initech.as_str()]);
    // No raw key anywhere in what was served.
    for body in [subjects.to_string(), text, json.to_string()] {
        for raw in [ACME, GLOBEX, INITECH] {
            assert!(!body.contains(raw));
        }
    }

    // The official OpenMeter Python SDK, unchanged, against the server.
    let deps = crate::delta::ensure_python_packages(
        "openmeter-sdk",
        "openmeter",
        &["openmeter==1.0.0b236"],
    );
    let script = r#"
import datetime, json, sys
from openmeter import Client
client = Client(endpoint=sys.argv[1], token=sys.argv[2])
utc = datetime.timezone.utc
result = client.meters.query_json(
    "requests",
    from_parameter=datetime.datetime(2025, 10, 5, tzinfo=utc),
    to=datetime.datetime(2025, 10, 6, tzinfo=utc),
    window_size="HOUR",
    subject=["acme"],
)
print(json.dumps([[r.window_start.isoformat(), r.subject, r.value] for r in result.data]))
"#;
    let out = tokio::process::Command::new("python3")
        .args(["-c", script, &server.base, ADMIN])
        .env("PYTHONPATH", deps)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sdk: Vec<(String, String, f64)> = serde_json::from_slice(&out.stdout).unwrap();
    let expected: Vec<(String, String, f64)> = count_by(
        &lines,
        |l| l.key.as_deref() == Some(ACME),
        |l| format!("{:02}", l.hour),
    )
    .into_iter()
    .map(|(h, n)| (format!("2025-10-05T{h}:00:00+00:00"), "acme".to_string(), n))
    .collect();
    assert_eq!(sdk, expected);
}

/// Every file under `dir` with its size and modification time.
fn listing(dir: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::metadata(&path).unwrap();
        if meta.is_dir() {
            out.extend(listing(&path));
        } else {
            out.insert(path, (meta.len(), meta.modified().unwrap()));
        }
    }
    out
}

#[tokio::test]
async fn tokens_decide_who_sees_what() {
    let f = Fixture::new().await;

    // Bad settings stop the server at once, naming what is wrong (exit 2).
    let no_tokens = edgemeter(
        &[],
        &[
            "serve",
            "--lake",
            &f.lake(),
            "--plans",
            &f.plans_arg(),
            "--listen",
            "127.0.0.1:0",
        ],
    )
    .await;
    assert_eq!(no_tokens.code, 2, "{}", no_tokens.stderr);
    assert!(
        no_tokens.stderr.contains("--tokens"),
        "{}",
        no_tokens.stderr
    );
    let bad = f.dir.path().join("bad-tokens.toml");
    std::fs::write(
        &bad,
        "[[tokens]]\nname = \"ci\"\nrole = \"admin\"\ntoken_sha256 = \"abc\"\n",
    )
    .unwrap();
    let bad_tokens = edgemeter(
        &[],
        &[
            "serve",
            "--lake",
            &f.lake(),
            "--plans",
            &f.plans_arg(),
            "--listen",
            "127.0.0.1:0",
            "--tokens",
            bad.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(bad_tokens.code, 2, "{}", bad_tokens.stderr);
    assert!(
        bad_tokens
            .stderr
            .contains("tokens[0] (name = \"ci\"): token_sha256 is not 64 hex digits"),
        "{}",
        bad_tokens.stderr
    );

    let lake_before = listing(Path::new(&f.lake()));
    let server = Server::start(&f, &[]).await;
    let path = format!("/api/v1/meters/requests/query?{DAY}");

    // 401: no token, a wrong one, a non-Bearer scheme; the body says nothing
    // of what exists.
    for token in [None, Some("admin-token-for-tests-0002")] {
        let (status, body) = server.send(&path, token, "application/json").await;
        assert_eq!(status, 401, "{body}");
        let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(problem["status"], 401);
        assert_eq!(problem["title"], "Unauthorized");
        assert!(!body.contains("requests"));
    }
    // /health needs none.
    assert_eq!(
        server.send("/health", None, "application/json").await.0,
        200
    );

    // A portal token for Acme sees Acme's usage only.
    let acme = server
        .portal_token(serde_json::json!({ "subject": "acme" }))
        .await;
    let own = server
        .get_as(
            &format!("/api/v1/portal/meters/requests/query?{DAY}"),
            &acme,
        )
        .await;
    let admin_view = server.get(&format!("{path}&subject=acme")).await;
    assert_eq!(own["data"], admin_view["data"]);
    assert_eq!(own["data"][0]["subject"], "acme");
    assert_eq!(own["data"][0]["value"], 126);
    // Asking the admin route for its own subject works too.
    let own_too = server.get_as(&format!("{path}&subject=acme"), &acme).await;
    assert_eq!(own_too["data"], own["data"]);

    // 403: another subject, on either route, and admin-only routes.
    for probe in [
        format!("{path}&subject=cus_globex"),
        format!("{path}&subject=acme&subject=cus_globex"),
        format!("/api/v1/portal/meters/requests/query?{DAY}&subject=cus_globex"),
        "/api/v1/customers/cus_globex/invoice?period=2025-10".to_string(),
        "/api/v1/customers/cus_nobody/invoice?period=2025-10".to_string(),
        "/api/v1/meters".to_string(),
        "/api/v1/subjects".to_string(),
        "/api/v1/alerts".to_string(),
        "/metrics".to_string(),
    ] {
        let (status, body) = server.send(&probe, Some(&acme), "application/json").await;
        assert_eq!(status, 403, "{probe}: {body}");
    }
    // Its own customer's invoice it may see.
    let (status, _) = server
        .send(
            "/api/v1/customers/cus_acme/invoice?period=2025-10",
            Some(&acme),
            "application/json",
        )
        .await;
    assert_eq!(status, 200);

    // 401: a forged token (Globex's claims under Acme's signature), one
    // signed with another secret, and an expired one.
    let (_, signature) = acme.rsplit_once('.').unwrap();
    let claims = serde_json::json!({ "sub": "cus_globex", "exp": 4_102_444_800i64 });
    let forged = format!("emp.{}.{signature}", hex::encode(claims.to_string()));
    let (status, _) = server
        .send(
            &format!("/api/v1/portal/meters/requests/query?{DAY}"),
            Some(&forged),
            "application/json",
        )
        .await;
    assert_eq!(status, 401);
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let brief = server
        .portal_token(serde_json::json!({ "subject": "acme", "expiresAt": soon }))
        .await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (status, _) = server
        .send(
            &format!("/api/v1/portal/meters/requests/query?{DAY}"),
            Some(&brief),
            "application/json",
        )
        .await;
    assert_eq!(status, 401);
    // Issuing takes an admin token.
    let response = server
        .client
        .post(format!("{}/api/v1/portal/tokens", server.base))
        .bearer_auth(&acme)
        .body(r#"{"subject":"cus_globex"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);

    // 400 naming the parameter.
    for (query, name) in [
        ("windowSize=WEEK", "windowSize"),
        ("windowTimeZone=Mars%2FOlympus", "windowTimeZone"),
        ("groupBy=c_ip", "groupBy"),
        ("from=yesterday", "from"),
        ("filterGroupBy%5Bcolour%5D=red", "filterGroupBy[colour]"),
    ] {
        let (status, body) = server
            .send(
                &format!("/api/v1/meters/requests/query?{query}"),
                Some(ADMIN),
                "application/json",
            )
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{name}: ")),
            "{body}"
        );
    }
    // windows × groups are bounded: a month of minutes is 44,640 windows.
    let (status, body) = server
        .send(
            "/api/v1/meters/requests/query?from=2025-10-01T00:00:00Z&to=2025-10-31T00:00:00Z&windowSize=MINUTE",
            Some(ADMIN),
            "application/json",
        )
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("windowSize: "), "{body}");

    // A token removed from the file is refused at once.
    std::fs::write(f.tokens(), format!("portal_secret = \"{SECRET}\"\n")).unwrap();
    let (status, _) = server.send(&path, Some(ADMIN), "application/json").await;
    assert_eq!(status, 401);
    std::fs::write(f.tokens(), tokens_toml()).unwrap();
    assert_eq!(
        server.send(&path, Some(ADMIN), "application/json").await.0,
        200
    );

    // SIGHUP reads the file again even when its size and time look the same:
    // a token of the same length swapped in, the old time put back.
    let other = "admin-token-for-tests-0003";
    let stamp = std::fs::metadata(f.tokens()).unwrap().modified().unwrap();
    std::fs::write(
        f.tokens(),
        tokens_toml().replace(&sha256_hex(ADMIN), &sha256_hex(other)),
    )
    .unwrap();
    std::fs::File::options()
        .write(true)
        .open(f.tokens())
        .unwrap()
        .set_modified(stamp)
        .unwrap();
    assert_eq!(
        server.send(&path, Some(other), "application/json").await.0,
        401
    );
    let pid = server.child.id().unwrap() as libc::pid_t;
    // SAFETY: signals the server this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let mut status = 0;
    for _ in 0..50 {
        status = server.send(&path, Some(other), "application/json").await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
    assert_eq!(
        server.send(&path, Some(ADMIN), "application/json").await.0,
        401
    );
    std::fs::write(f.tokens(), tokens_toml()).unwrap();

    // Everything above only read the lake.
    assert_eq!(listing(Path::new(&f.lake())), lake_before);

    // Rate limits are per token: the fourth request of a minute is refused.
    let limited = Server::start(&f, &["--rate-per-minute", "3"]).await;
    for _ in 0..3 {
        assert_eq!(
            limited.send(&path, Some(ADMIN), "application/json").await.0,
            200
        );
    }
    assert_eq!(
        limited.send(&path, Some(ADMIN), "application/json").await.0,
        429
    );
    // SIGTERM: the server stops taking requests and exits 0.
    let mut limited = limited;
    let pid = limited.child.id().unwrap() as libc::pid_t;
    // SAFETY: signals the server this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(20), limited.child.wait())
        .await
        .expect("the server exits on SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn invoice_quota_alerts_health_and_metrics() {
    let f = Fixture::new().await;
    // Meters kept per day, so that their table has a version to report.
    let maintain = edgemeter(
        &[],
        &[
            "maintain",
            "--lake",
            &f.lake(),
            "--plans",
            &f.plans_arg(),
            "--quiet",
        ],
    )
    .await;
    assert_eq!(maintain.code, 0, "{}", maintain.stderr);
    let lines = fixture_lines();
    let server = Server::start(&f, &[]).await;

    // The invoice line is the one `export --format jsonl` writes.
    let served = server
        .get("/api/v1/customers/cus_acme/invoice?period=2025-10")
        .await;
    let export = edgemeter(
        &[],
        &[
            "export",
            "--lake",
            &f.lake(),
            "--plans",
            &f.plans_arg(),
            "--period",
            "2025-10",
            "--format",
            "jsonl",
            "--output",
            "-",
        ],
    )
    .await;
    assert_eq!(export.code, 0, "{}", export.stderr);
    let exported: serde_json::Value = export
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["customer_id"] == "cus_acme")
        .unwrap();
    assert_eq!(served, exported);
    // Acme: 126 requests, of which 2xx (billable) counted from the lines;
    // 50 included, the rest at 2.00 per 1,000, plus the base fee of 10.00.
    let billable = lines
        .iter()
        .filter(|l| l.key.as_deref() == Some(ACME) && (200..300).contains(&l.status))
        .count() as u64;
    assert_eq!(served["requests"], 126);
    assert_eq!(served["billable_requests"], billable);
    let (status, body) = server
        .send(
            "/api/v1/customers/cus_acme/invoice?period=October",
            Some(ADMIN),
            "application/json",
        )
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("period: "), "{body}");

    // Quota use and alerts as `check` computes them at noon that day.
    let at = "2025-10-05T12:00:00Z";
    let check = edgemeter(
        &[],
        &[
            "check",
            "--lake",
            &f.lake(),
            "--plans",
            &f.plans_arg(),
            "--at",
            at,
            "--json",
        ],
    )
    .await;
    assert_eq!(check.code, 0, "{}", check.stderr);
    let check: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    let quota = server
        .get(&format!("/api/v1/customers/cus_globex/quota?at={at}"))
        .await;
    let checked = check["quotas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["customer_id"] == "cus_globex")
        .unwrap();
    assert_eq!(&quota["quota"], checked);
    // Globex made all its 161 requests that morning: 161 of 200 a month, of 100 a day.
    assert_eq!(quota["quota"]["month_requests"], 161);
    assert_eq!(quota["quota"]["day_requests"], 161);
    let alerts = server.get(&format!("/api/v1/alerts?at={at}")).await;
    assert_eq!(alerts["alerts"], check["alerts"]);
    let ids: Vec<&str> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    // 161/200 = 80.5% of Globex's month (threshold 80); 161/100 and
    // Acme's 126/100 of their days (threshold 100); Acme's 126/200 = 63%
    // of its month crosses none.
    for id in [
        "quota:monthly:2025-10:cus_globex:80",
        "quota:daily:2025-10-05:cus_globex:100",
        "quota:daily:2025-10-05:cus_acme:100",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    assert!(
        !ids.iter()
            .any(|id| id.starts_with("quota:monthly:2025-10:cus_acme"))
    );

    // Metrics: the counter of a route moves with each answer.
    let counter = |text: &str, series: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).map(|v| v.trim().parse().unwrap()))
            .unwrap_or(0)
    };
    let series = "edgemeter_http_requests_total{route=\"/api/v1/customers/{id}/quota\",method=\"GET\",status=\"200\"}";
    let (_, before) = server.send("/metrics", Some(ADMIN), "text/plain").await;
    for _ in 0..2 {
        server
            .get(&format!("/api/v1/customers/cus_acme/quota?at={at}"))
            .await;
    }
    let (status, after) = server.send("/metrics", Some(ADMIN), "text/plain").await;
    assert_eq!(status, 200);
    assert_eq!(counter(&after, series), counter(&before, series) + 2);
    assert!(counter(&after, series) >= 3);
    assert!(after.contains("edgemeter_http_request_duration_seconds_bucket{route=\"/api/v1/customers/{id}/quota\",le=\"+Inf\"}"));
    // Each table's version is the newest commit in its Delta log on disk.
    for (table, dir) in [
        ("requests", "requests"),
        ("usage_hourly", "usage_hourly"),
        ("usage_hourly_keys", "usage_hourly_keys"),
        ("usage_daily", "usage_daily"),
        ("usage_daily_keys", "usage_daily_keys"),
        ("ingested", "_edgemeter/ingested"),
        ("meters_daily", "meters_daily"),
    ] {
        let newest =
            std::fs::read_dir(std::path::Path::new(&f.lake()).join(dir).join("_delta_log"))
                .unwrap()
                .filter_map(|e| {
                    let name = e.unwrap().file_name().into_string().unwrap();
                    name.strip_suffix(".json")?.parse::<u64>().ok()
                })
                .max()
                .unwrap();
        let series = format!("edgemeter_lake_version{{table=\"{table}\"}}");
        assert_eq!(counter(&after, &series), newest, "{table}");
    }
    assert!(after.contains("edgemeter_last_ingest_age_seconds "));

    // Health: 200 with the lake's version, 503 while the lake is gone.
    let health = server.get_as("/health", "").await;
    assert_eq!(health["status"], "ok");
    assert!(health["lastIngestAgeSeconds"].as_i64().unwrap() >= 0);
    let moved = format!("{}.moved", f.lake());
    std::fs::rename(f.lake(), &moved).unwrap();
    let (status, body) = server.send("/health", None, "application/json").await;
    assert_eq!(status, 503, "{body}");
    std::fs::rename(&moved, f.lake()).unwrap();
    assert_eq!(
        server.send("/health", None, "application/json").await.0,
        200
    );
}

/// Acme's requests around New York's fall-back night (2025-11-02, 02:00
/// EDT → 01:00 EST, 06:00 UTC): New York's 2 November lasts 25 hours.
fn fall_back_night() -> Vec<Req> {
    [
        ("2025-11-02", "04:30:00"), // 00:30 EDT, 2 Nov
        ("2025-11-02", "05:30:00"), // 01:30 EDT, 2 Nov
        ("2025-11-02", "06:30:00"), // 01:30 EST, 2 Nov (the hour again)
        ("2025-11-02", "07:30:00"), // 02:30 EST, 2 Nov
        ("2025-11-03", "04:30:00"), // 23:30 EST, 2 Nov
        ("2025-11-03", "05:30:00"), // 00:30 EST, 3 Nov
    ]
    .iter()
    .enumerate()
    .map(|(i, (date, time))| Req {
        date: date.to_string(),
        time: time.to_string(),
        query: format!("api_key={ACME}"),
        key: Some(ACME.to_string()),
        status: "200",
        sc_bytes: Some(1000),
        cs_bytes: 10,
        request_id: format!("dst-{i}"),
        time_taken: 0.1,
    })
    .collect()
}

#[tokio::test]
async fn an_ingest_under_the_server_shows_at_once_and_dst_windows() {
    let f = Fixture::new().await;
    let server = Server::start(&f, &[]).await;
    let all_time = "/api/v1/meters/requests/query?subject=acme";
    let before = server.get(all_time).await;
    assert_eq!(before["data"][0]["value"], 126);

    let source = f.dir.path().join("more");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(
        source.join("E2EXAMPLE.2025-11-02-04.dst"),
        log_text(&fall_back_night()),
    )
    .unwrap();
    // Queries keep being answered while the ingest commits.
    let ingesting = {
        let lake = f.lake();
        let source = source.to_str().unwrap().to_string();
        tokio::spawn(async move { ingest(&[], &source, &lake, &[]).await })
    };
    while !ingesting.is_finished() {
        let value = server.get(all_time).await["data"][0]["value"]
            .as_i64()
            .unwrap();
        assert!(value == 126 || value == 132, "{value}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let run = ingesting.await.unwrap();
    assert_eq!(run.code, 0, "{}", run.stderr);
    // 126 + the 6 new requests.
    let after = server.get(all_time).await;
    assert_eq!(after["data"][0]["value"], 132);

    // DAY windows in New York: 2 Nov from 04:00Z to 05:00Z the next day (25
    // hours) holds five of the six; 3 Nov the last.
    let range = "from=2025-11-01T04:00:00Z&to=2025-11-04T05:00:00Z";
    let days = server
        .get(&format!(
            "/api/v1/meters/requests/query?{range}&windowSize=DAY&windowTimeZone=America%2FNew_York&subject=acme"
        ))
        .await;
    let windows: Vec<(String, String, i64)> = days["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["windowStart"].as_str().unwrap().to_string(),
                r["windowEnd"].as_str().unwrap().to_string(),
                r["value"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        windows,
        [
            (
                "2025-11-02T04:00:00Z".into(),
                "2025-11-03T05:00:00Z".into(),
                5
            ),
            (
                "2025-11-03T05:00:00Z".into(),
                "2025-11-04T05:00:00Z".into(),
                1
            ),
        ]
    );
    // In UTC the same requests fall 4 and 2.
    let utc = server
        .get(&format!(
            "/api/v1/meters/requests/query?{range}&windowSize=DAY&subject=acme"
        ))
        .await;
    let values: Vec<i64> = utc["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_i64().unwrap())
        .collect();
    assert_eq!(values, [4, 2]);
    // HOUR windows in New York: the repeated 01:00 is two windows, one per
    // offset (05:00Z EDT and 06:00Z EST), one request each.
    let hours = server
        .get(&format!(
            "/api/v1/meters/requests/query?{range}&windowSize=HOUR&windowTimeZone=America%2FNew_York"
        ))
        .await;
    let starts: Vec<&str> = hours["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["windowStart"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "2025-11-02T04:00:00Z",
            "2025-11-02T05:00:00Z",
            "2025-11-02T06:00:00Z",
            "2025-11-02T07:00:00Z",
            "2025-11-03T04:00:00Z",
            "2025-11-03T05:00:00Z",
        ]
    );
}
