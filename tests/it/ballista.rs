//! The named queries on a Ballista cluster: the test starts `edgemeter
//! scheduler` and two `edgemeter executor`s (the built binary) on loopback,
//! waits until both executors are registered, and runs every file of
//! `queries/` with the parameter sets of `tests/sql/params.toml` through
//! `edgemeter query --cluster`, each compared with the in-process `edgemeter
//! query` over the same lake (which `sql.rs` holds to its snapshots and to
//! DuckDB's count of the raw logs). Then ad hoc SQL, the read-only guard and
//! parameter typing, `--as-of`, output formats, a lake without its rollups,
//! partition pruning on a lake whose other partitions' files are corrupt, and
//! a lake on S3 read by the executors.
//! One cluster serves every case; a guard kills its processes, also when
//! the test panics.

use crate::cli::{Run, edgemeter};
use crate::logs::example_lines;
use crate::s3::TestS3;
use crate::sql::{fixture_lake, parameter_sets, query_files};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A scheduler and its executors, killed (and reaped) when dropped.
struct Cluster {
    processes: Vec<Child>,
    /// `df://127.0.0.1:PORT`.
    url: String,
    /// `http://127.0.0.1:PORT`: the scheduler's /readyz.
    http: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.processes {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `edgemeter ARGS` with `env`; its stderr lines arrive on the
/// receiver (read by a thread, so the process never blocks on the pipe).
fn spawn(env: &[(&str, String)], args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_edgemeter"));
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("EDGEMETER_KEY_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // Should the test process itself be killed (where no guard runs), the
    // kernel ends the cluster with it.
    // SAFETY: prctl is async-signal-safe and touches only the child.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                // Nobody listens any more: keep draining the pipe.
                continue;
            }
        }
    });
    (child, receive)
}

/// A port free on loopback right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    /// A scheduler on a free port and `executors` executors, each running
    /// two tasks at once, all with `env`; returns once the scheduler's
    /// /readyz counts every executor.
    async fn start(env: &[(&str, String)], executors: usize, work: &Path) -> Self {
        let (scheduler, lines) = spawn(
            env,
            &["scheduler", "--bind-host", "127.0.0.1", "--port", "0"],
        );
        let mut cluster = Cluster {
            processes: vec![scheduler],
            url: String::new(),
            http: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = loop {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the scheduler says where it listens within a minute");
            if let Some(at) = line.strip_prefix("edgemeter: scheduler listening on ") {
                break at.to_string();
            }
        };
        cluster.url = format!("df://{address}");
        cluster.http = format!("http://{address}");
        for i in 0..executors {
            let dir = work.join(format!("executor-{i}"));
            let (flight, grpc) = (free_port().to_string(), free_port().to_string());
            let (child, _) = spawn(
                env,
                &[
                    "executor",
                    "--scheduler",
                    &address,
                    "--bind-host",
                    "127.0.0.1",
                    "--external-host",
                    "127.0.0.1",
                    "--port",
                    &flight,
                    "--grpc-port",
                    &grpc,
                    "--concurrent-tasks",
                    "2",
                    "--work-dir",
                    dir.to_str().unwrap(),
                ],
            );
            cluster.processes.push(child);
        }
        let client = reqwest::Client::new();
        let ready = format!("ready: {executors} executors registered");
        loop {
            let answer = match client.get(format!("{}/readyz", cluster.http)).send().await {
                Ok(response) => response.text().await.unwrap_or_default(),
                Err(e) => e.to_string(),
            };
            if answer.trim() == ready {
                break;
            }
            for child in &mut cluster.processes {
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "a cluster process ended: {answer}"
                );
            }
            assert!(
                Instant::now() < deadline,
                "executors not registered within a minute: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cluster
    }
}

/// `edgemeter query` over `lake` (on the cluster when given), with `args`
/// after the lake and format.
async fn query(
    env: &[(&str, String)],
    lake: &str,
    cluster: Option<&str>,
    format: &str,
    args: &[&str],
) -> Run {
    let mut all = vec!["query", "--lake", lake, "--format", format];
    if let Some(url) = cluster {
        // A job the cluster loses fails the test in minutes, not hours.
        all.extend(["--cluster", url, "--timeout-secs", "120"]);
    }
    all.extend_from_slice(args);
    edgemeter(env, &all).await
}

/// `NAME --param k=v …` for a parameter set given as `k=v k=v`.
fn named_args<'a>(name: &'a str, given: &'a str) -> Vec<&'a str> {
    let mut args = vec![name];
    for param in given.split_whitespace() {
        args.extend(["--param", param]);
    }
    args
}

/// CSV output as records (the header first), sorted after the header when
/// the order is not the statement's.
fn records(csv: &str, ordered: bool) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv.as_bytes());
    let mut out: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    if !ordered && out.len() > 1 {
        out[1..].sort();
    }
    out
}

/// True when two cells hold the same value: the same text, or the same
/// floating-point number up to the last digits. A sum (or average) of
/// floats depends on the order of its terms, which differs between one
/// process and a cluster; every other value must be equal to the letter.
fn same_cell(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let float = |s: &str| {
        (s.contains('.') || s.contains('e'))
            .then(|| s.parse::<f64>().ok())
            .flatten()
    };
    match (float(a), float(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
        _ => false,
    }
}

/// Asserts that two CSV outputs hold the same rows.
fn assert_same_rows(got: &str, want: &str, ordered: bool, what: &str) {
    let (got_rows, want_rows) = (records(got, ordered), records(want, ordered));
    let same = got_rows.len() == want_rows.len()
        && got_rows
            .iter()
            .zip(&want_rows)
            .all(|(g, w)| g.len() == w.len() && g.iter().zip(w).all(|(a, b)| same_cell(a, b)));
    assert!(
        same,
        "{what}:\n on the cluster: {got}\n in-process:     {want}"
    );
}

/// True when a statement fixes the order of its rows.
fn is_ordered(sql: &str) -> bool {
    let code: String = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    code.to_ascii_uppercase().contains("ORDER BY")
}

/// Runs `args` in-process and on the cluster and asserts the same rows;
/// returns how many data rows were compared.
async fn same_rows(
    env: &[(&str, String)],
    lake: &str,
    cluster: &Cluster,
    args: &[&str],
    ordered: bool,
) -> usize {
    let local = query(env, lake, None, "csv", args).await;
    assert_eq!(local.code, 0, "{args:?} in-process: {}", local.stderr);
    let remote = query(env, lake, Some(&cluster.url), "csv", args).await;
    assert_eq!(remote.code, 0, "{args:?} on the cluster: {}", remote.stderr);
    assert_same_rows(&remote.stdout, &local.stdout, ordered, &format!("{args:?}"));
    records(&local.stdout, ordered).len().saturating_sub(1)
}

/// The files below `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Copies the directory `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    for file in files_under(from) {
        let target = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_named_query_on_a_ballista_cluster_equals_in_process() {
    let lake = fixture_lake().await;
    let s3 = TestS3::start().await;
    let env = s3.env();
    let work = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&env, 2, work.path()).await;

    // Every file of queries/, every parameter set of tests/sql/params.toml.
    let sets = parameter_sets();
    let files = query_files();
    assert_eq!(
        files.iter().collect::<Vec<_>>(),
        sets.keys().collect::<Vec<_>>(),
        "a query without parameter sets"
    );
    let mut cases = Vec::new();
    for name in &files {
        let sql =
            std::fs::read_to_string(Path::new(ROOT).join(format!("queries/{name}.sql"))).unwrap();
        for (label, given) in &sets[name] {
            cases.push((name.clone(), label.clone(), given.clone(), is_ordered(&sql)));
        }
    }
    let counted: Vec<(String, usize)> = futures::stream::iter(&cases)
        .map(|(name, _, given, ordered)| {
            let env = &env;
            let cluster = &cluster;
            async move {
                let args = named_args(name, given);
                (
                    name.clone(),
                    same_rows(env, lake, cluster, &args, *ordered).await,
                )
            }
        })
        .buffer_unordered(3)
        .collect()
        .await;
    let mut by_query: BTreeMap<String, usize> = BTreeMap::new();
    for (name, n) in counted {
        *by_query.entry(name).or_default() += n;
    }
    // The fixture has no request with two keys: conflicting_keys also runs
    // over a lake that has some.
    let (conflicts, expected) = conflicts_lake(work.path()).await;
    for given in sets["conflicting_keys"].values() {
        let args = named_args("conflicting_keys", given);
        let n = same_rows(&env, &conflicts, &cluster, &args, true).await;
        *by_query.entry("conflicting_keys".into()).or_default() += n;
    }
    let listed = query(
        &env,
        &conflicts,
        Some(&cluster.url),
        "csv",
        &["conflicting_keys"],
    )
    .await;
    let requests: usize = records(&listed.stdout, true)[1..]
        .iter()
        .map(|r| r[3].parse::<usize>().unwrap())
        .sum();
    assert_eq!(requests, expected, "{}", listed.stdout);
    for (name, n) in &by_query {
        assert!(*n > 0, "{name}: no rows compared in any parameter set");
    }
    let total: usize = by_query.values().sum();
    assert!(total > 150, "only {total} rows compared");
    assert_eq!(by_query.len(), files.len());
    // Both executors ran tasks: each wrote a job's shuffle files.
    for i in 0..2 {
        let dir = work.path().join(format!("executor-{i}"));
        let written = files_under(&dir)
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "arrow"))
            .count();
        assert!(written > 0, "executor {i} wrote no shuffle file");
    }
    // --cluster runs nothing in-process: without a scheduler it fails.
    let dead = format!("df://127.0.0.1:{}", free_port());
    let refused = query(&env, lake, Some(&dead), "csv", &["usage_by_key"]).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("127.0.0.1"), "{}", refused.stderr);

    // Ad hoc SQL: an aggregate without ORDER BY (rows compared in any order),
    // and a join of the rollup with the raw rows, which the cluster shuffles.
    let ad_hoc = [
        "SELECT api_key_id, count(*) AS requests, sum(sc_bytes) AS bytes_out, \
         count(DISTINCT endpoint_template(cs_uri_stem)) AS endpoints FROM requests GROUP BY api_key_id",
        "SELECT r.api_key_id, r.dt, r.hour, count(*) AS raw, max(h.requests) AS rolled \
         FROM requests r JOIN (SELECT api_key_id, dt, hour, sum(requests) AS requests \
         FROM usage_hourly GROUP BY api_key_id, dt, hour) h \
         ON r.api_key_id = h.api_key_id AND r.dt = h.dt AND r.hour = h.hour \
         GROUP BY r.api_key_id, r.dt, r.hour ORDER BY r.dt, r.hour, r.api_key_id",
    ];
    for sql in ad_hoc {
        assert!(
            same_rows(&env, lake, &cluster, &[sql], is_ordered(sql)).await > 2,
            "{sql}"
        );
    }
    // The counts themselves, from the raw log lines: 600 requests of
    // examples/logs in hours 09 and 10, 5 + 6 real lines in two other hours.
    let lines = example_lines();
    let hourly = query(
        &env,
        lake,
        Some(&cluster.url),
        "csv",
        &[
            "SELECT dt, hour, count(*) AS n, sum(sc_bytes) AS bytes FROM requests \
           WHERE dt = '2025-10-05' GROUP BY dt, hour ORDER BY hour",
        ],
    )
    .await;
    assert_eq!(hourly.code, 0, "{}", hourly.stderr);
    let count = |h: u32| lines.iter().filter(|l| l.hour == h).count();
    let bytes = |h: u32| -> i64 {
        lines
            .iter()
            .filter(|l| l.hour == h)
            .map(|l| l.sc_bytes)
            .sum()
    };
    let real = query(
        &env,
        lake,
        Some(&cluster.url),
        "csv",
        &["SELECT count(*) AS n FROM requests WHERE dt = '2025-10-05' AND hour = '01'"],
    )
    .await;
    let (real_lines, real_bytes) = real_lines_of_hour_01();
    assert_eq!(
        real.stdout,
        format!("n\r\n{real_lines}\r\n"),
        "{}",
        real.stderr
    );
    assert_eq!(
        hourly.stdout,
        format!(
            "dt,hour,n,bytes\r\n2025-10-05,01,{real_lines},{real_bytes}\r\n2025-10-05,09,{},{}\r\n2025-10-05,10,{},{}\r\n",
            count(9),
            bytes(9),
            count(10),
            bytes(10)
        )
    );

    // The read-only guard and parameter typing, as in-process (exit 2).
    for args in [
        vec!["DROP TABLE requests"],
        vec!["COPY (SELECT 1) TO '/tmp/edgemeter-ballista-copy.csv'"],
        vec!["INSERT INTO requests SELECT * FROM requests"],
        vec!["top_keys", "--param", "limit=3; DROP TABLE requests"],
        vec!["usage_by_key", "--param", "from=yesterday"],
        vec!["usage_by_key", "--param", "billable_lo=100"],
    ] {
        let local = query(&env, lake, None, "csv", &args).await;
        let remote = query(&env, lake, Some(&cluster.url), "csv", &args).await;
        assert_eq!(
            (local.code, remote.code),
            (2, 2),
            "{args:?}: {}",
            remote.stderr
        );
        assert_eq!(local.stderr, remote.stderr, "{args:?}");
        assert!(remote.stdout.is_empty(), "{args:?}");
    }
    assert!(!Path::new("/tmp/edgemeter-ballista-copy.csv").exists());

    // --as-of reads the same table version on the cluster: the fixture's
    // version 0 is the empty table its first ingest created.
    for version in ["0", "1"] {
        let args = ["usage_by_key", "--as-of", version];
        let n = same_rows(&env, lake, &cluster, &args, true).await;
        assert_eq!(n == 0, version == "0", "--as-of {version}: {n} rows");
    }

    // Every output format gives what it gives in-process.
    for format in ["table", "json", "csv"] {
        let args = named_args("usage_by_key_window", "by=hour tz=Europe/Berlin");
        let local = query(&env, lake, None, format, &args).await;
        let remote = query(&env, lake, Some(&cluster.url), format, &args).await;
        assert_eq!(local.code, 0, "{}", local.stderr);
        assert_eq!(remote.code, 0, "{}", remote.stderr);
        assert_eq!(remote.stdout, local.stdout, "{format}");
    }

    rollups_missing_are_summed_from_raw_rows(&env, lake, &cluster, work.path()).await;
    pruning_reads_only_the_partitions_asked_for(&env, lake, &cluster, work.path()).await;
    an_s3_lake_is_read_by_the_executors(&s3, &env, lake, &cluster).await;
    drop(cluster);
}

/// A lake of 30 requests of which every third with a key also sends another
/// key in a cookie (which is billed; the query's is the conflicting one),
/// and how many such requests there are.
async fn conflicts_lake(work: &Path) -> (String, usize) {
    let logs = work.join("conflict-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut text = crate::logs::HEADER.to_string();
    let mut conflicts = 0;
    for (i, request) in crate::logs::hour_of_requests(4, 30, "c").iter().enumerate() {
        let line = request.line();
        let mut fields: Vec<&str> = line.trim_end_matches('\n').split('\t').collect();
        let cookie = format!("api_key=cookie_key_{}", i % 2);
        if i % 3 == 0 && request.key.is_some() {
            // cs(Cookie), the 13th field.
            fields[12] = &cookie;
            conflicts += 1;
        }
        text.push_str(&fields.join("\t"));
        text.push('\n');
    }
    std::fs::write(
        logs.join("E2CONFLICT.2025-10-05-04.0001.gz"),
        crate::logs::gzip(&text),
    )
    .unwrap();
    let lake = work.join("conflicts-lake").to_str().unwrap().to_string();
    let flags = ["--quiet", "--max-keyless-share", "1"];
    let run = crate::cli::ingest(&[], logs.to_str().unwrap(), &lake, &flags).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(conflicts >= 8, "{conflicts}");
    (lake, conflicts)
}

/// The bytes (`sc-bytes`) of the one request of `standard-2025-33.log`.
/// The requests and their `sc-bytes` of the fixture lake's real lines of
/// 2025-10-05 01:00 (`standard-2025-33.log` and its two-key copy).
fn real_lines_of_hour_01() -> (usize, i64) {
    let mut lines = 0;
    let mut bytes = 0;
    for file in ["standard-2025-33.log", "standard-2025-33-two-keys.log"] {
        let text =
            std::fs::read_to_string(Path::new(ROOT).join("tests/fixtures/cloudfront").join(file))
                .unwrap();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            lines += 1;
            bytes += line.split('\t').nth(3).unwrap().parse::<i64>().unwrap();
        }
    }
    (lines, bytes)
}

/// A copy of the lake without its rollup table, as a writer that crashed
/// before its rollups leaves it: `usage_hourly` is then the view summing every
/// hour from raw rows, beside the (empty) table of rollup files. The queries
/// that read it give the same rows on the cluster as in-process, and as over
/// the intact lake.
async fn rollups_missing_are_summed_from_raw_rows(
    env: &[(&str, String)],
    intact: &str,
    cluster: &Cluster,
    work: &Path,
) {
    let lake = work.join("lake-without-rollups");
    copy_dir(Path::new(intact), &lake);
    for table in ["usage_hourly", "usage_hourly_keys"] {
        std::fs::remove_dir_all(lake.join(table)).unwrap();
    }
    let lake = lake.to_str().unwrap();
    let sets = parameter_sets();
    let mut compared = 0;
    for name in ["usage_by_key", "usage_by_key_status"] {
        for given in sets[name].values() {
            let args = named_args(name, given);
            compared += same_rows(env, lake, cluster, &args, true).await;
            let whole = query(env, intact, None, "csv", &args).await;
            let remote = query(env, lake, Some(&cluster.url), "csv", &args).await;
            assert_eq!(remote.stdout, whole.stdout, "{args:?}");
        }
    }
    assert!(compared > 30, "only {compared} rows compared");
}

/// A copy of the lake whose `requests` files outside dt=2025-10-05/hour=09
/// are zeros of the same size: a scan that touched them would fail.
/// Queries filtered to that hour still answer exactly, and one over every
/// hour fails, so the corruption is there to be hit.
async fn pruning_reads_only_the_partitions_asked_for(
    env: &[(&str, String)],
    intact: &str,
    cluster: &Cluster,
    work: &Path,
) {
    let lake = work.join("pruned-lake");
    copy_dir(Path::new(intact), &lake);
    let mut corrupted = 0;
    for file in files_under(&lake.join("requests")) {
        let path = file.to_string_lossy();
        if path.ends_with(".parquet") && !path.contains("dt=2025-10-05/hour=09/") {
            let size = std::fs::metadata(&file).unwrap().len();
            std::fs::write(&file, vec![0u8; size as usize]).unwrap();
            corrupted += 1;
        }
    }
    assert!(corrupted >= 3, "only {corrupted} files corrupted");
    let lake = lake.to_str().unwrap();

    let lines = example_lines();
    let nine: Vec<_> = lines.iter().filter(|l| l.hour == 9).collect();
    let sql = "SELECT count(*) AS n, sum(sc_bytes) AS bytes FROM requests \
               WHERE dt = '2025-10-05' AND hour = '09'";
    let one_hour = query(env, lake, Some(&cluster.url), "csv", &[sql]).await;
    assert_eq!(one_hour.code, 0, "{}", one_hour.stderr);
    assert_eq!(
        one_hour.stdout,
        format!(
            "n,bytes\r\n{},{}\r\n",
            nine.len(),
            nine.iter().map(|l| l.sc_bytes).sum::<i64>()
        )
    );
    // The cluster's own metrics say the same: one file opened, that hour's.
    let explained = query(
        env,
        lake,
        Some(&cluster.url),
        "csv",
        &[&format!("EXPLAIN ANALYZE {sql}")],
    )
    .await;
    assert_eq!(explained.code, 0, "{}", explained.stderr);
    let plan = explained.stdout;
    assert!(plan.contains("SuccessfulStage"), "{plan}");
    assert!(plan.contains("files_opened=1,"), "{plan}");
    assert_eq!(plan.matches(".parquet").count(), 1, "{plan}");
    assert!(plan.contains("requests/dt=2025-10-05/hour=09/"), "{plan}");
    // A named query inside that hour reads only its partition of `requests`
    // (and the rollup, left intact): the same rows as over the intact lake.
    let args = named_args(
        "usage_by_key",
        "from=2025-10-05T09:15:00Z to=2025-10-05T09:45:00.500Z",
    );
    let want = query(env, intact, None, "csv", &args).await;
    let got = query(env, lake, Some(&cluster.url), "csv", &args).await;
    assert_eq!(got.code, 0, "{}", got.stderr);
    assert_eq!(got.stdout, want.stdout);
    assert!(want.stdout.lines().count() > 2, "{}", want.stdout);
    // Every hour: the corrupt files are read, and the query fails.
    let all = query(
        env,
        lake,
        Some(&cluster.url),
        "csv",
        &["SELECT sum(sc_bytes) AS bytes FROM requests"],
    )
    .await;
    assert_ne!(
        all.code, 0,
        "a scan of the corrupt files succeeded: {}",
        all.stdout
    );
}

/// The fixture lake uploaded to a bucket of the test's S3 server: the
/// client reads its Delta logs, the executors its files, each with the
/// endpoint and credentials of its environment.
async fn an_s3_lake_is_read_by_the_executors(
    s3: &TestS3,
    env: &[(&str, String)],
    local: &str,
    cluster: &Cluster,
) {
    s3.create_bucket("lake-on-s3").await;
    for file in files_under(Path::new(local)) {
        let key = format!(
            "prefix/{}",
            file.strip_prefix(local).unwrap().to_string_lossy()
        );
        s3.put("lake-on-s3", &key, std::fs::read(&file).unwrap())
            .await;
    }
    let lake = "s3://lake-on-s3/prefix/";
    for (name, given) in [
        ("usage_by_key", ""),
        (
            "usage_by_key",
            "from=2025-10-05T00:30:00Z to=2025-10-05T10:15:30Z",
        ),
        ("usage_by_key_window", "by=hour"),
        ("latency_by_endpoint", ""),
    ] {
        let args = named_args(name, given);
        let on_disk = query(env, local, None, "csv", &args).await;
        assert_eq!(on_disk.code, 0, "{}", on_disk.stderr);
        let remote = query(env, lake, Some(&cluster.url), "csv", &args).await;
        assert_eq!(remote.code, 0, "{name} {given}: {}", remote.stderr);
        assert_same_rows(
            &remote.stdout,
            &on_disk.stdout,
            true,
            &format!("{name} {given}"),
        );
    }
}
