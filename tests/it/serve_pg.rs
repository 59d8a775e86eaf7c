//! `edgemeter serve --pg-listen` with psql (Debian's `postgresql-client`,
//! which `.ci/run` installs): the binary serves a lake ingested from
//! `examples/logs` (600 requests on 2025-10-05 09:00–10:59 UTC, three keys)
//! over the Postgres wire, and what psql reads is checked against counts
//! made here from the raw log lines and against `edgemeter usage`.

use crate::cli::{edgemeter, ingest, usage};
use crate::logs::{ExampleLine, Req, example_lines, log_text, sha256_hex};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const ADMIN: &str = "admin-token-for-pg-tests-0001";

const PLANS: &str = r#"
[billing]
currency = "USD"
billable = "2xx"

[meters.search_calls]
aggregation = "count"
filter = { endpoint = ["/v1/search*"], method = ["GET", "POST"], status = "2xx" }
"#;

fn count_by<K: Ord>(
    lines: &[ExampleLine],
    key: impl Fn(&ExampleLine) -> Option<K>,
) -> BTreeMap<K, f64> {
    let mut counts = BTreeMap::new();
    for k in lines.iter().filter_map(key) {
        *counts.entry(k).or_insert(0.0) += 1.0;
    }
    counts
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Self {
        let f = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let source = format!("{}/examples/logs", env!("CARGO_MANIFEST_DIR"));
        let run = ingest(&[], &source, &f.lake(), &[]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        std::fs::write(f.path("plans.toml"), PLANS).unwrap();
        std::fs::write(
            f.path("tokens.toml"),
            format!(
                "[[tokens]]\nname = \"bi\"\nrole = \"admin\"\ntoken_sha256 = \"{}\"\n",
                sha256_hex(ADMIN)
            ),
        )
        .unwrap();
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn lake(&self) -> String {
        self.path("lake").to_str().unwrap().to_string()
    }

    fn command(&self, flags: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgemeter"));
        command
            .args(["serve", "--lake", &self.lake()])
            .args(["--plans", self.path("plans.toml").to_str().unwrap()])
            .args(["--tokens", self.path("tokens.toml").to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0", "--pg-listen", "127.0.0.1:0"])
            .args(flags)
            .env_remove("EDGEMETER_KEY_SECRET")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Starts the server; the port its Postgres listener took.
    async fn serve(&self, flags: &[&str]) -> (tokio::process::Child, String) {
        let mut child = self.command(flags).spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let port = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(at) = line.strip_prefix("edgemeter: serving Postgres on 127.0.0.1:") {
                    return at.split_whitespace().next().unwrap().to_string();
                }
                eprintln!("{line}");
            }
            panic!("the server ended before it listened");
        })
        .await
        .expect("the server listens within a minute");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        (child, port)
    }
}

/// Installs Debian's `postgresql-client` when `psql` is missing (once per
/// test process; the tests run as root on the project's machines, as
/// `.ci/run` does).
fn ensure_psql() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let present = || {
        std::process::Command::new("psql")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    ONCE.call_once(|| {
        if present() {
            return;
        }
        let apt = |args: &[&str]| {
            std::process::Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        let _ = apt(&["update", "-qq"]);
        let _ = apt(&["install", "-y", "-qq", "postgresql-client"]);
    });
    assert!(
        present(),
        "psql is needed, and installing Debian's postgresql-client failed (apt-get needs root)"
    );
}

/// What psql answered: exit code, unaligned rows (`|`-separated), stderr.
struct Psql {
    code: i32,
    rows: Vec<String>,
    stderr: String,
}

/// Runs one command in psql with `conninfo` and `password` (none: psql is
/// told never to prompt).
async fn psql(port: &str, conninfo: &str, password: Option<&str>, command: &str) -> Psql {
    ensure_psql();
    let mut psql = tokio::process::Command::new("psql");
    psql.arg(format!(
        "host=127.0.0.1 port={port} user=grafana dbname=edgemeter {conninfo}"
    ))
    .args([
        "-X",
        "-w",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-v",
        "VERBOSITY=verbose",
    ])
    .args(["-c", command])
    .env_remove("PGPASSWORD")
    .env_remove("PGSSLMODE");
    if let Some(password) = password {
        psql.env("PGPASSWORD", password);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), psql.output())
        .await
        .expect("psql answers within a minute")
        .unwrap();
    Psql {
        code: out.status.code().unwrap_or(-1),
        rows: String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A read as the admin, which must succeed: rows of `key|number`.
async fn read(port: &str, conninfo: &str, sql: &str) -> BTreeMap<String, f64> {
    let out = psql(port, conninfo, Some(ADMIN), sql).await;
    assert_eq!(out.code, 0, "{sql}: {}", out.stderr);
    out.rows
        .iter()
        .map(|row| {
            let (k, v) = row.rsplit_once('|').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

/// Every file under `dir` with its size.
fn listing(dir: &Path) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                out.insert(entry.path(), meta.len());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_reads_the_lake_and_its_meters_and_is_refused_writes_and_bad_passwords() {
    let f = Fixture::new().await;
    let lines = example_lines();
    let (_server, port) = f.serve(&[]).await;

    // Requests per key: the raw lines counted by their key.
    let per_key = read(
        &port,
        "",
        "SELECT coalesce(api_key_id, ''), count(*) FROM requests GROUP BY 1 ORDER BY 1",
    )
    .await;
    let raw_per_key = count_by(&lines, |l| Some(l.key_id()));
    assert_eq!(per_key, raw_per_key);
    // 126 + 161 + 159 keyed requests and 154 without a key.
    let mut sizes: Vec<f64> = raw_per_key.values().copied().collect();
    sizes.sort_by(f64::total_cmp);
    assert_eq!(sizes, vec![126.0, 154.0, 159.0, 161.0]);

    // The user-defined meter's view: per key and hour, summed per key,
    // against the lines its filter matches (GET or POST to /v1/search*, 2xx).
    let search = read(
        &port,
        "",
        "SELECT coalesce(api_key_id, ''), sum(value) FROM meter_search_calls GROUP BY 1 HAVING sum(value) > 0",
    )
    .await;
    let raw_search = count_by(&lines, |l| {
        (l.stem.starts_with("/v1/search")
            && (l.method == "GET" || l.method == "POST")
            && (200..300).contains(&l.status))
        .then(|| l.key_id())
    });
    assert!(!raw_search.is_empty());
    assert_eq!(search, raw_search);

    // The built-in requests meter per UTC hour.
    let hourly = read(
        &port,
        "",
        "SELECT CAST(date_part('hour', window_start) AS BIGINT), sum(value) FROM meter_requests GROUP BY 1",
    )
    .await;
    let raw_hourly = count_by(&lines, |l| Some(l.hour.to_string()));
    assert_eq!(raw_hourly.keys().collect::<Vec<_>>(), vec!["10", "9"]);
    assert_eq!(hourly, raw_hourly);

    // The named query's view equals `edgemeter usage` over the same lake.
    let from_usage = usage(&[], &f.lake(), &[]).await;
    for (column, pick) in [
        (
            "requests",
            (|t: &crate::logs::Totals| t.requests) as fn(&_) -> i64,
        ),
        ("billable_requests", |t| t.billable),
        ("bytes_out", |t| t.bytes_out),
    ] {
        let served = read(
            &port,
            "",
            &format!("SELECT coalesce(api_key_id, ''), {column} FROM usage_by_key"),
        )
        .await;
        let expected: BTreeMap<String, f64> = from_usage
            .iter()
            .map(|(k, t)| (k.clone(), pick(t) as f64))
            .collect();
        assert_eq!(served, expected, "{column}");
    }

    // What psql and BI tools ask on connect.
    let tables = psql(&port, "", Some(ADMIN), "\\dt").await;
    assert_eq!(tables.code, 0, "{}", tables.stderr);
    assert!(
        tables.rows.iter().any(|r| r.contains("|requests|")),
        "{:?}",
        tables.rows
    );
    let version = psql(&port, "", Some(ADMIN), "SELECT version()").await;
    assert_eq!(version.code, 0, "{}", version.stderr);
    let shown = psql(
        &port,
        "",
        Some(ADMIN),
        "SET extra_float_digits = 3; SHOW search_path",
    )
    .await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);

    // Writes and session changes are refused, and the lake stays as it was.
    let before = listing(&f.path("lake"));
    let copied = f.path("copied.csv");
    for sql in [
        "INSERT INTO requests (api_key_id) VALUES ('x')".to_string(),
        "CREATE TABLE t AS SELECT 1".to_string(),
        "CREATE VIEW v AS SELECT 1".to_string(),
        format!("COPY (SELECT * FROM requests) TO '{}'", copied.display()),
        "DELETE FROM requests".to_string(),
        "DROP TABLE requests".to_string(),
        "SET datafusion.execution.target_partitions = 1".to_string(),
        "SET statement_timeout = 0".to_string(),
    ] {
        let out = psql(&port, "", Some(ADMIN), &sql).await;
        assert_ne!(out.code, 0, "{sql} ran");
        assert!(
            out.stderr.contains("25006") && out.stderr.contains("read-only"),
            "{sql}: {}",
            out.stderr
        );
    }
    assert!(!copied.exists());
    assert_eq!(listing(&f.path("lake")), before);
    let count = read(&port, "", "SELECT 'all', count(*) FROM requests").await;
    assert_eq!(count["all"], 600.0);

    // A wrong password, none and an empty one are refused.
    let wrong = psql(&port, "", Some("not-the-token"), "SELECT 1").await;
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(
        wrong
            .stderr
            .to_lowercase()
            .contains("password authentication failed"),
        "{}",
        wrong.stderr
    );
    let none = psql(&port, "", None, "SELECT 1").await;
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert!(
        none.stderr.contains("no password supplied"),
        "{}",
        none.stderr
    );
    let empty = psql(&port, "", Some(""), "SELECT 1").await;
    assert_eq!(empty.code, 2, "{}", empty.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_is_served_and_required_and_a_broken_certificate_stops_serve() {
    let f = Fixture::new().await;
    let (cert, key) = (f.path("cert.pem"), f.path("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .args([
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ])
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let cert_arg = cert.to_str().unwrap();
    let key_arg = key.to_str().unwrap();

    let (_server, port) = f
        .serve(&["--pg-tls-cert", cert_arg, "--pg-tls-key", key_arg])
        .await;
    // verify-full: TLS, with the server's certificate checked against ours.
    let secure = format!("sslmode=verify-full sslrootcert={cert_arg}");
    let count = read(&port, &secure, "SELECT 'all', count(*) FROM requests").await;
    assert_eq!(count["all"], 600.0);
    let plain = psql(&port, "sslmode=disable", Some(ADMIN), "SELECT 1").await;
    assert_eq!(plain.code, 2, "{}", plain.stderr);
    assert!(
        plain.stderr.contains("TLS connections only"),
        "{}",
        plain.stderr
    );

    // A certificate that cannot be loaded stops serve before it listens.
    let garbage = f.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = f.path("missing.pem");
    for (cert, key, named) in [
        (missing.to_str().unwrap(), key_arg, "--pg-tls-cert"),
        (garbage.to_str().unwrap(), key_arg, "--pg-tls-cert"),
        (cert_arg, garbage.to_str().unwrap(), "--pg-tls-key"),
    ] {
        let out = f
            .command(&["--pg-tls-cert", cert, "--pg-tls-key", key])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(named), "{stderr}");
        assert!(!stderr.contains("serving"), "{stderr}");
    }
    let alone = edgemeter(
        &[],
        &[
            "serve",
            "--lake",
            &f.lake(),
            "--plans",
            f.path("plans.toml").to_str().unwrap(),
            "--tokens",
            f.path("tokens.toml").to_str().unwrap(),
            "--pg-tls-cert",
            cert_arg,
            "--pg-tls-key",
            key_arg,
        ],
    )
    .await;
    assert_eq!(alone.code, 2, "{}", alone.stderr);
    assert!(alone.stderr.contains("--pg-listen"), "{}", alone.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_connection_reads_what_an_ingest_committed_under_the_server() {
    let f = Fixture::new().await;
    let (_server, port) = f.serve(&[]).await;
    let total = "SELECT 'all', count(*) FROM requests";
    assert_eq!(read(&port, "", total).await["all"], 600.0);

    // Six more requests of one key, at 04:30 … 09:30 UTC on 2 Nov.
    let key = "ak_live_acme_7f3k2";
    let more: Vec<Req> = (0..6)
        .map(|i| Req {
            date: "2025-11-02".into(),
            time: format!("{:02}:30:00", 4 + i),
            query: format!("api_key={key}"),
            key: Some(key.into()),
            status: "200",
            sc_bytes: Some(1000),
            cs_bytes: 10,
            request_id: format!("pg-more-{i}"),
            time_taken: 0.1,
        })
        .collect();
    let source = f.path("more");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("E2EXAMPLE.2025-11-02-04.more"), log_text(&more)).unwrap();
    let ingesting = {
        let lake = f.lake();
        let source = source.to_str().unwrap().to_string();
        tokio::spawn(async move { ingest(&[], &source, &lake, &[]).await })
    };
    // Connections keep being served while the ingest commits.
    while !ingesting.is_finished() {
        let n = read(&port, "", total).await["all"];
        assert!(n == 600.0 || n == 606.0, "{n}");
    }
    let run = ingesting.await.unwrap();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(read(&port, "", total).await["all"], 606.0);
    // The meter's view has the six hours of 2 Nov, one request each.
    let november = read(
        &port,
        "",
        &format!(
            "SELECT CAST(date_part('hour', window_start) AS BIGINT), sum(value) FROM meter_requests \
             WHERE window_start >= TIMESTAMP '2025-11-01 00:00:00' AND api_key_id = '{}' GROUP BY 1",
            sha256_hex(key)
        ),
    )
    .await;
    let expected: BTreeMap<String, f64> = (4..10).map(|h| (h.to_string(), 1.0)).collect();
    assert_eq!(november, expected);
}
