//! The lake as Delta tables: read back by an independent Delta reader (the
//! Python `deltalake` package, which the tests install themselves), writers
//! racing on one lake (local and S3), a writer paused with SIGSTOP, `kill -9`
//! while a reader polls, time travel and the conversion of an old lake.

use crate::cli::{Run, edgemeter, ingest, query_csv, summary, usage};
use crate::logs::{Req, Totals, expected, gzip, hour_of_requests, log_text, requests_at};
use crate::s3::TestS3;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// Installs `packages` from PyPI into `<CARGO_TARGET_TMPDIR>/<dir>` unless
/// Python, with that directory on its path, already imports `modules` (a
/// later test run finds them there); returns the directory.
pub fn ensure_python_packages(dir: &str, modules: &str, packages: &[&str]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    let importable = |dir: &Path| {
        std::process::Command::new("python3")
            .args(["-c", &format!("import {modules}")])
            .env("PYTHONPATH", dir)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !importable(&dir) {
        let status = std::process::Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--target", dir.to_str().unwrap()])
            .args(packages)
            .status()
            .expect("python3 runs");
        assert!(status.success(), "installing {packages:?} failed");
        assert!(
            importable(&dir),
            "{modules} does not import after installing"
        );
    }
    dir
}

/// The `deltalake` and `pyarrow` packages of the independent reader.
pub fn ensure_python_reader() -> &'static Path {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY.get_or_init(|| {
        ensure_python_packages(
            "pydeps",
            "deltalake, pyarrow",
            &["deltalake==1.6.6", "pyarrow==26.0.1"],
        )
    })
}

fn reader_script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/readers/delta_totals.py")
}

/// What the independent reader sees of a lake.
#[derive(Debug, serde::Deserialize)]
pub struct ReaderView {
    pub version: Option<i64>,
    /// api_key_id (`""` for keyless) → [requests, billable, bytes_out].
    pub keys: BTreeMap<String, [i64; 3]>,
    pub repeated_ids: i64,
    #[serde(default)]
    error: Option<String>,
}

/// Runs the reader script over `lake` with `args`; parses its JSON output.
fn run_reader<T: serde::de::DeserializeOwned>(lake: &str, args: &[&str]) -> T {
    let out = std::process::Command::new("python3")
        .arg(reader_script())
        .arg(lake)
        .args(args)
        .env("PYTHONPATH", ensure_python_reader())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn read_with_python(lake: &str) -> ReaderView {
    run_reader(lake, &[])
}

/// The same per-key figures summed from a rollup table (`usage_hourly` or
/// `usage_hourly_keys`) as any Delta reader sees it: every current file,
/// without edgemeter's pairing with `requests`.
pub fn read_rollup_with_python(lake: &str, table: &str) -> ReaderView {
    run_reader(lake, &["--rollup", table])
}

/// The data files of `requests` in its newest version, as the independent
/// reader lists them (relative to the table).
pub fn current_files(lake: &str) -> Vec<String> {
    run_reader(lake, &["--files"])
}

/// The data files of one of the lake's tables in its newest version, as the
/// independent reader lists them (relative to the table).
pub fn current_files_of(lake: &str, table: &str) -> Vec<String> {
    run_reader(lake, &["--files", table])
}

/// The reader's figures of the expected totals.
pub fn reader_figures(want: &BTreeMap<String, Totals>) -> BTreeMap<String, [i64; 3]> {
    want.iter()
        .map(|(k, t)| (k.clone(), [t.requests, t.billable, t.bytes_out]))
        .collect()
}

/// Writes `objects` gzip files into `dir`, cycling over `hours` of
/// 2025-10-05, named with `tag`; every third object repeats the first 40
/// requests of the object before it. Returns the distinct requests.
fn write_objects(dir: &Path, tag: &str, hours: &[u32], objects: usize, lines: usize) -> Vec<Req> {
    std::fs::create_dir_all(dir).unwrap();
    let mut distinct = Vec::new();
    let mut previous: Vec<Req> = Vec::new();
    for i in 0..objects {
        let hour = hours[i % hours.len()];
        let mut reqs = hour_of_requests(hour, lines, &format!("{tag}{i}"));
        distinct.extend(reqs.iter().cloned());
        if i % 3 == 2 {
            reqs.extend(previous[..40].iter().cloned());
        }
        let name = format!("E2DELTA.2025-10-05-{hour:02}.{tag}{i:03}.gz");
        std::fs::write(dir.join(name), gzip(&log_text(&reqs))).unwrap();
        previous = reqs;
    }
    distinct
}

/// Small batches, so that every run makes many commits.
const SMALL_BATCHES: [&str; 5] = ["--batch-bytes", "6000", "--since", "2025-10-05", "--json"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_delta_reader_gets_exactly_the_per_key_totals() {
    let logs = tempfile::tempdir().unwrap();
    let distinct = write_objects(logs.path(), "r", &[3, 4, 5], 9, 300);
    let want = expected(&distinct.iter().collect::<Vec<_>>());
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let run = ingest(
        &conflicts_logged(),
        logs.path().to_str().unwrap(),
        lake,
        &SMALL_BATCHES,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // One writer's batches commit one after another, each on top of the
    // last: none of them is beaten by another (the racing test below shows
    // what a beaten commit logs).
    assert_eq!(conflicts(&run), 0, "{}", run.stderr);
    assert_eq!(usage(&[], lake, &[]).await, want);
    let seen = read_with_python(lake);
    assert_eq!(seen.keys, reader_figures(&want));
    assert_eq!(seen.repeated_ids, 0);
    assert!(seen.version.is_some_and(|v| v >= 3), "{seen:?}");
}

/// Four source directories over the same hours: each holds the same shared
/// objects (the same requests under other names, as a re-delivered or copied
/// log is) and objects of its own.
fn racing_sources(root: &Path) -> (Vec<String>, BTreeMap<String, Totals>) {
    let mut distinct = Vec::new();
    let mut sources = Vec::new();
    for w in 0..4 {
        let dir = root.join(format!("source{w}"));
        let shared = write_objects(&dir, "shared", &[1, 2, 3], 6, 120);
        let own = write_objects(&dir, &format!("own{w}-"), &[2, 3, 4], 3, 90);
        if w == 0 {
            distinct.extend(shared);
        }
        distinct.extend(own);
        sources.push(dir.to_str().unwrap().to_string());
    }
    let want = expected(&distinct.iter().collect::<Vec<_>>());
    (sources, want)
}

/// Runs one ingest per source at once against `lake`; every run must succeed.
async fn race(env: &[(&str, String)], sources: &[String], lake: &str) -> Vec<Run> {
    let runs = futures::future::join_all(
        sources
            .iter()
            .map(|source| ingest(env, source, lake, &SMALL_BATCHES)),
    )
    .await;
    for run in &runs {
        assert_eq!(run.code, 0, "a racing run failed: {}", run.stderr);
    }
    runs
}

/// Logs each commit that another writer beat (`lake::delta`'s debug event).
fn conflicts_logged() -> [(&'static str, String); 1] {
    [(
        "EDGEMETER_LOG",
        "warn,edgemeter::lake::delta=debug".to_string(),
    )]
}

/// The commits that `run` found beaten by another writer.
fn conflicts(run: &Run) -> usize {
    run.stderr.matches("another writer committed first").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_ingests_racing_over_the_same_hours_are_exact_every_time() {
    let root = tempfile::tempdir().unwrap();
    let (sources, want) = racing_sources(root.path());
    let mut beaten = 0;
    for round in 0..20 {
        let lake_dir = tempfile::tempdir().unwrap();
        let lake = lake_dir.path().to_str().unwrap();
        let runs = race(&conflicts_logged(), &sources, lake).await;
        beaten += runs.iter().map(conflicts).sum::<usize>();
        assert_eq!(usage(&[], lake, &[]).await, want, "round {round}");
        // Every object of every source is recorded, and only after its rows.
        let recorded = query_csv(&[], lake, "SELECT count(DISTINCT source) FROM ingested").await;
        assert_eq!(recorded.lines().nth(1), Some("36"), "round {round}");
        if round % 5 == 0 {
            let seen = read_with_python(lake);
            assert_eq!(seen.keys, reader_figures(&want), "round {round}");
            assert_eq!(seen.repeated_ids, 0, "round {round}");
        }
    }
    // The writers did race: commits were beaten and made again.
    assert!(beaten > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_ingests_racing_on_an_s3_lake_are_exact() {
    let s3 = TestS3::start().await;
    s3.create_bucket("lake").await;
    let env = s3.env();
    let root = tempfile::tempdir().unwrap();
    let (sources, want) = racing_sources(root.path());
    for round in 0..5 {
        let lake = format!("s3://lake/round{round}/");
        race(&env, &sources, &lake).await;
        assert_eq!(usage(&env, &lake, &[]).await, want, "round {round}");
        let dups = query_csv(
            &env,
            &lake,
            "SELECT count(*) - count(DISTINCT x_edge_request_id) FROM requests",
        )
        .await;
        assert_eq!(dups.lines().nth(1), Some("0"), "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_s3_server_refuses_a_second_conditional_create() {
    let s3 = TestS3::start().await;
    s3.create_bucket("cas").await;
    let create = || {
        s3.client()
            .put_object()
            .bucket("cas")
            .key("_delta_log/00000000000000000001.json")
            .if_none_match("*")
            .body(b"{}".to_vec().into())
            .send()
    };
    assert!(create().await.is_ok());
    let second = create().await.expect_err("the second create is refused");
    let status = second.raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(412), "{second:?}");
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: sending a signal to a child process of this test.
    let rc = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_paused_past_any_timeout_loses_no_other_writers_rows() {
    let root = tempfile::tempdir().unwrap();
    let (sources, want) = racing_sources(root.path());
    for (round, pause_after_ms) in [40u64, 120, 250, 400].into_iter().enumerate() {
        let lake_dir = tempfile::tempdir().unwrap();
        let lake = lake_dir.path().to_str().unwrap();
        let paused = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgemeter"))
            .args(["ingest", "--source", &sources[0], "--lake", lake])
            .args(SMALL_BATCHES)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = paused.id().unwrap();
        tokio::time::sleep(Duration::from_millis(pause_after_ms)).await;
        signal(pid, libc::SIGSTOP);
        // While it is stopped, the other writers run to the end (far longer
        // than any lock timeout the old lake had would matter: no lock).
        race(&[], &sources[1..], lake).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        signal(pid, libc::SIGCONT);
        let done = paused.wait_with_output().await.unwrap();
        assert!(
            done.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        assert_eq!(usage(&[], lake, &[]).await, want, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_an_external_reader_polls_never_shows_a_request_twice() {
    let logs = tempfile::tempdir().unwrap();
    let distinct = write_objects(logs.path(), "k", &[6, 7, 8, 9], 24, 900);
    let want = expected(&distinct.iter().collect::<Vec<_>>());
    let truth = reader_figures(&want);
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let source = logs.path().to_str().unwrap();

    let stop = lake_dir.path().join("stop-reading");
    let reader = tokio::process::Command::new("python3")
        .arg(reader_script())
        .args([lake, "--watch", stop.to_str().unwrap()])
        .env("PYTHONPATH", ensure_python_reader())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    // Each run is killed at a random point within an eighth of a whole run's
    // time (measured here, on a lake of its own). Every run goes on from what
    // the killed ones committed, so the kills fall all along the ingest, and
    // ten of them land while work remains however fast the build and machine.
    let scratch = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let whole = ingest(
        &[],
        source,
        scratch.path().to_str().unwrap(),
        &SMALL_BATCHES,
    )
    .await;
    assert_eq!(whole.code, 0, "{}", whole.stderr);
    let span_ms = (started.elapsed().as_millis() as u64 / 8).max(40);
    let mut seed: u64 = 0xde17a;
    let mut kills = 0;
    let mut attempts = 0;
    while kills < 10 && attempts < 40 {
        attempts += 1;
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let delay = Duration::from_millis(span_ms / 5 + (seed >> 33) % span_ms);
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgemeter"))
            .args(["ingest", "--source", source, "--lake", lake])
            .args(SMALL_BATCHES)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(delay).await;
        if child.try_wait().unwrap().is_none() {
            kills += 1;
        }
        child.start_kill().unwrap(); // SIGKILL
        child.wait().await.unwrap();
    }
    assert!(
        kills >= 10,
        "only {kills} of {attempts} kills landed mid-run"
    );
    let run = ingest(&[], source, lake, &SMALL_BATCHES).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(&stop, "").unwrap();
    let polled = reader.wait_with_output().await.unwrap();
    assert!(
        polled.status.success(),
        "{}",
        String::from_utf8_lossy(&polled.stderr)
    );

    let views: Vec<ReaderView> = String::from_utf8(polled.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        views.len() >= 20,
        "the reader polled only {} times",
        views.len()
    );
    let mut versions = std::collections::BTreeSet::new();
    for view in &views {
        assert_eq!(view.error, None, "a read failed");
        assert_eq!(view.repeated_ids, 0, "a reader saw a request twice");
        for (key, [requests, billable, bytes]) in &view.keys {
            let [r, b, by] = truth[key];
            assert!(
                *requests <= r && *billable <= b && *bytes <= by,
                "version {:?}: {key} over-counted",
                view.version
            );
        }
        versions.extend(view.version);
    }
    assert!(
        versions.len() >= 5,
        "the reader saw only {} versions",
        versions.len()
    );
    let last = views.last().unwrap();
    assert_eq!(last.keys, truth, "the final read is exact");
    assert_eq!(usage(&[], lake, &[]).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_reads_and_re_exports_an_old_version_byte_for_byte() {
    let logs = tempfile::tempdir().unwrap();
    let first = requests_at("2025-10-05", 10, 120, "first");
    std::fs::write(
        logs.path().join("E2ASOF.2025-10-05-10.a.gz"),
        gzip(&log_text(&first)),
    )
    .unwrap();
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let source = logs.path().to_str().unwrap();
    let run = ingest(&[], source, lake, &["--full-listing"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);

    let plans = lake_dir.path().join("plans.toml");
    std::fs::write(
        &plans,
        "[billing]\ncurrency = \"USD\"\nbillable = \"2xx\"\n\n[plans.metered]\nprice_per_1k_requests = \"2.00\"\n",
    )
    .unwrap();
    let out = lake_dir.path().join("out");
    let export = |output: PathBuf, as_of: Option<String>| {
        let plans = plans.clone();
        async move {
            let mut args = vec![
                "export".to_string(),
                "--lake".into(),
                lake.to_string(),
                "--period".into(),
                "2025-10".into(),
                "--plans".into(),
                plans.to_str().unwrap().to_string(),
                "--output".into(),
                output.to_str().unwrap().to_string(),
            ];
            if let Some(v) = as_of {
                args.extend(["--as-of".to_string(), v]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            edgemeter(&[], &args).await
        }
    };
    std::fs::create_dir_all(&out).unwrap();
    let run = export(out.join("first.csv"), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("first.csv.manifest.json")).unwrap())
            .unwrap();
    let version = manifest["lake_versions"]["requests"].as_i64().unwrap();
    let first_bytes = std::fs::read(out.join("first.csv")).unwrap();

    // A late file for the same hour arrives, and is ingested.
    let late = requests_at("2025-10-05", 10, 60, "late");
    std::fs::write(
        logs.path().join("E2ASOF.2025-10-05-10.b.gz"),
        gzip(&log_text(&late)),
    )
    .unwrap();
    let run = ingest(&[], source, lake, &["--full-listing"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);

    let old = usage(&[], lake, &["--as-of", &version.to_string()]).await;
    assert_eq!(old, expected(&first.iter().collect::<Vec<_>>()));
    let all: Vec<&Req> = first.iter().chain(&late).collect();
    assert_eq!(usage(&[], lake, &[]).await, expected(&all));

    let run = export(out.join("again.csv"), Some(version.to_string())).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(out.join("again.csv")).unwrap(), first_bytes);
    // Without --as-of, the export sees the late requests and says so.
    let run = export(out.join("now.csv"), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("restated"), "{}", run.stdout);
    assert_ne!(std::fs::read(out.join("now.csv")).unwrap(), first_bytes);

    let bad = edgemeter(&[], &["usage", "--lake", lake, "--as-of", "999"]).await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("--as-of 999"), "{}", bad.stderr);
}

/// Copies a directory tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The logs the old-layout fixture lake was ingested from (see
/// tests/fixtures/lake-v1/README.md): three hours, the second ingested twice
/// with more rows the second time (two generations of it were on disk).
pub fn old_lake_requests() -> Vec<Req> {
    let mut all = hour_of_requests(1, 80, "v1");
    all.extend(hour_of_requests(2, 120, "v1"));
    all.extend(hour_of_requests(3, 50, "v1"));
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_converts_a_lake_of_the_previous_layout_exactly() {
    let lake_dir = tempfile::tempdir().unwrap();
    copy_tree(
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/lake-v1"
        )),
        lake_dir.path(),
    );
    let lake = lake_dir.path().to_str().unwrap();
    let old = edgemeter(&[], &["usage", "--lake", lake]).await;
    assert_eq!(old.code, 1);
    assert!(
        old.stderr.contains("edgemeter migrate --lake"),
        "{}",
        old.stderr
    );
    let run = edgemeter(&[], &["migrate", "--lake", lake]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The fixture was written when keys of 8 or more characters got a hint;
    // migration keeps stored values as they were written.
    let want =
        crate::logs::expected_with_hints_from(&old_lake_requests().iter().collect::<Vec<_>>(), 8);
    assert_eq!(usage(&[], lake, &[]).await, want);
    let seen = read_with_python(lake);
    assert_eq!(seen.keys, reader_figures(&want));
    // Converted once: a second run changes nothing.
    let again = edgemeter(&[], &["migrate", "--lake", lake]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(usage(&[], lake, &[]).await, want);
    // The record came along, each object once (the fixture recorded them
    // under the directory they were ingested from).
    let names = query_csv(
        &[],
        lake,
        "SELECT regexp_replace(source, '^.*/', '') AS name, rows FROM ingested ORDER BY 1",
    )
    .await;
    assert_eq!(
        names,
        "name,rows\nE2V1.2025-10-05-01.a.gz,80\nE2V1.2025-10-05-02.a.gz,70\n\
         E2V1.2025-10-05-02.b.gz,120\nE2V1.2025-10-05-03.a.gz,50\n"
    );
    // The same logs ingested again, from elsewhere, add nothing.
    let logs = tempfile::tempdir().unwrap();
    crate::delta::write_old_lake_logs(logs.path());
    let run = ingest(
        &[],
        logs.path().to_str().unwrap(),
        lake,
        &["--full-listing", "--json"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(
        (s["rows_written"].as_u64(), s["duplicates"].as_u64()),
        (Some(0), Some(320)),
        "{s}"
    );
    assert_eq!(usage(&[], lake, &[]).await, want);
    // What the old layout left is gone: one generation per hour, no lock.
    assert!(!lake_dir.path().join("_edgemeter/lock").exists());
    assert!(
        !lake_dir
            .path()
            .join("requests/dt=2025-10-05/hour=02/part-0000000001.parquet")
            .exists()
    );
}

/// The log objects of the old-layout fixture, under the names it recorded.
pub fn write_old_lake_logs(dir: &Path) {
    let hour = |h: u32, n: usize| hour_of_requests(h, n, "v1");
    let files = [
        ("E2V1.2025-10-05-01.a.gz", hour(1, 80)),
        ("E2V1.2025-10-05-02.a.gz", hour(2, 70)),
        ("E2V1.2025-10-05-02.b.gz", hour(2, 120)),
        ("E2V1.2025-10-05-03.a.gz", hour(3, 50)),
    ];
    for (name, reqs) in files {
        std::fs::write(dir.join(name), gzip(&log_text(&reqs))).unwrap();
    }
}

/// Writes the fixture's logs to `$EDGEMETER_OLD_LOGS` (how
/// tests/fixtures/lake-v1 was made, see its README).
#[test]
#[ignore = "a tool: regenerates the inputs of tests/fixtures/lake-v1"]
fn write_the_logs_of_the_old_lake_fixture() {
    let dir = std::env::var("EDGEMETER_OLD_LOGS").expect("EDGEMETER_OLD_LOGS");
    write_old_lake_logs(Path::new(&dir));
}

/// Parquet files on disk under a directory of the lake (logs excluded).
pub fn parquet_on_disk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "_delta_log") {
            continue;
        }
        if path.is_dir() {
            out.extend(parquet_on_disk(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintain_checkpoints_compacts_the_record_and_vacuums_replaced_files() {
    let logs = tempfile::tempdir().unwrap();
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let source = logs.path().to_str().unwrap();
    // Three runs, each with a late file for the same two hours: every run
    // replaces both hours' files.
    let mut all = Vec::new();
    for run in 0..3 {
        for hour in [4, 5] {
            let reqs = requests_at("2025-10-05", hour, 40, &format!("m{run}"));
            let name = format!("E2MAINT.2025-10-05-{hour:02}.{run}.gz");
            std::fs::write(logs.path().join(name), gzip(&log_text(&reqs))).unwrap();
            all.extend(reqs);
        }
        let run = ingest(&[], source, lake, &["--full-listing"]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let want = expected(&all.iter().collect::<Vec<_>>());
    let requests_dir = lake_dir.path().join("requests");
    assert_eq!(
        parquet_on_disk(&requests_dir).len(),
        6,
        "3 generations of 2 hours"
    );
    assert_eq!(current_files(lake).len(), 2);
    let record_day = lake_dir.path().join("_edgemeter/ingested/day=2025-10-05");
    assert_eq!(
        parquet_on_disk(&record_day).len(),
        3,
        "one record file per run"
    );

    // The requests table's commits, made to look 40 days old: past the log's
    // retention (30 days), so the checkpoint lets maintain remove them.
    let log_dir = requests_dir.join("_delta_log");
    let commits = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&log_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect()
    };
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(40 * 86_400);
    for commit in commits() {
        let file = std::fs::File::options().append(true).open(&commit).unwrap();
        file.set_modified(long_ago).unwrap();
    }
    let versions = commits().len() as u64;
    let run = edgemeter(
        &[],
        &[
            "maintain",
            "--lake",
            lake,
            "--retain-versions-hours",
            "0",
            "--json",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["record_files_compacted"], 3, "{s}");
    // Every aged commit before the checkpoint's is removed (by vacuum's own
    // commit here, or by maintain when vacuum had nothing to do); the
    // checkpoint's commit and those made since stay.
    let checkpoint = s["checkpoints"][0][1].as_u64().unwrap();
    assert_eq!(s["checkpoints"][0][0], "requests");
    let mut left: Vec<u64> = commits()
        .iter()
        .map(|p| p.file_stem().unwrap().to_str().unwrap().parse().unwrap())
        .collect();
    left.sort();
    assert_eq!(left.first(), Some(&checkpoint), "{left:?}");
    assert!(versions > checkpoint, "{versions} commits were aged");
    let vacuumed: BTreeMap<String, u64> = s["files_vacuumed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_u64().unwrap()))
        .collect();
    assert_eq!(vacuumed["requests"], 4, "{s}");
    assert_eq!(vacuumed["_edgemeter/ingested"], 3, "{s}");
    // Each run wrote the day's rollups and totals again: two of each day
    // table's three files were replaced.
    assert_eq!(vacuumed["usage_daily"], 2, "{s}");
    assert_eq!(vacuumed["usage_daily_keys"], 2, "{s}");
    assert_eq!(vacuumed["usage_daily_totals"], 2, "{s}");
    assert_eq!(s["checkpoints"].as_array().unwrap().len(), 7, "{s}");

    // Only the current files are left, and every reader still gets the truth.
    let mut on_disk: Vec<String> = parquet_on_disk(&requests_dir)
        .iter()
        .map(|p| {
            p.strip_prefix(&requests_dir)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, current_files(lake));
    assert_eq!(parquet_on_disk(&record_day).len(), 1);
    let checkpoints = std::fs::read_dir(requests_dir.join("_delta_log"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(".checkpoint.parquet")
        })
        .count();
    assert_eq!(checkpoints, 1);
    assert_eq!(usage(&[], lake, &[]).await, want);
    assert_eq!(read_with_python(lake).keys, reader_figures(&want));
    let run = ingest(&[], source, lake, &["--full-listing", "--json"]).await;
    assert_eq!(summary(&run)["objects_skipped"], 6);
    assert_eq!(summary(&run)["rows_written"], 0);
}

/// `n` requests of one hour whose user agents are `ua_bytes` long.
fn long_agent_log(hour: u32, n: usize, ua_bytes: usize, tag: &str) -> (Vec<Req>, String) {
    let reqs = requests_at("2025-10-06", hour, n, tag);
    let agent = "Mozilla/5.0%20".repeat(ua_bytes / 14 + 1)[..ua_bytes].to_string();
    let mut text = crate::logs::HEADER.to_string();
    for r in &reqs {
        text.push_str(&r.line().replace("\tcurl/8.7.1\t", &format!("\t{agent}\t")));
    }
    (reqs, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hour_is_split_into_files_by_rows_and_by_bytes_and_reads_exactly() {
    let logs = tempfile::tempdir().unwrap();
    let (by_bytes, text) = long_agent_log(1, 400, 3000, "ua");
    std::fs::write(logs.path().join("E2BIG.2025-10-06-01.a.gz"), gzip(&text)).unwrap();
    let (by_rows, text) = long_agent_log(2, 230, 10, "rows");
    // Hour 02's rows are small: 100 to a file.
    std::fs::write(logs.path().join("E2BIG.2025-10-06-02.a.gz"), gzip(&text)).unwrap();
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let flags = [
        "--full-listing",
        "--max-file-rows",
        "100",
        "--max-file-bytes",
        "200000",
    ];
    let run = ingest(&[], logs.path().to_str().unwrap(), lake, &flags).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let all: Vec<&Req> = by_bytes.iter().chain(&by_rows).collect();
    assert_eq!(usage(&[], lake, &[]).await, expected(&all));
    let files = current_files(lake);
    let count = |prefix: &str| files.iter().filter(|f| f.starts_with(prefix)).count();
    // Hour 01: 400 rows of 3,000 bytes of agent and 100 to 500 bytes of
    // other strings each; a file ends at the first row past 200,000 bytes,
    // so it holds 58 to 65 rows (never 100): 7 files.
    assert_eq!(count("dt=2025-10-06/hour=01/"), 7, "{files:?}");
    // Hour 02: small rows, 100 a file: 230 rows make 3 files.
    assert_eq!(count("dt=2025-10-06/hour=02/"), 3, "{files:?}");
    let per_file = query_csv(
        &[],
        lake,
        "SELECT count(*) AS n, count(DISTINCT x_edge_request_id) AS ids FROM requests",
    )
    .await;
    assert_eq!(per_file, "n,ids\n630,630\n");
    // A late file for the split hour merges into it again, exactly.
    let (late, text) = long_agent_log(1, 120, 3000, "late");
    std::fs::write(logs.path().join("E2BIG.2025-10-06-01.b.gz"), gzip(&text)).unwrap();
    let run = ingest(&[], logs.path().to_str().unwrap(), lake, &flags).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let all: Vec<&Req> = by_bytes.iter().chain(&by_rows).chain(&late).collect();
    assert_eq!(usage(&[], lake, &[]).await, expected(&all));
    assert_eq!(read_with_python(lake).keys, reader_figures(&expected(&all)));
}

/// One hour holding more than 2 GiB of user-agent text (9 KB agents, 240,000
/// requests), which one Arrow string array cannot hold: it is split into
/// files and counted exactly. Heavy (several GiB of memory, minutes in a
/// debug build): run with `cargo test --release -- --ignored two_gib`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "heavy: 2.2 GB of log text"]
async fn an_hour_of_more_than_two_gib_of_user_agents_ingests_and_queries_exactly() {
    let logs = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for part in 0..8 {
        let (reqs, text) = long_agent_log(3, 30_000, 9_000, &format!("p{part}-"));
        let name = format!("E2HUGE.2025-10-06-03.{part}.gz");
        std::fs::write(logs.path().join(name), gzip(&text)).unwrap();
        all.extend(reqs);
    }
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let run = ingest(
        &[],
        logs.path().to_str().unwrap(),
        lake,
        &["--full-listing"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        usage(&[], lake, &[]).await,
        expected(&all.iter().collect::<Vec<_>>())
    );
    let bytes = query_csv(
        &[],
        lake,
        "SELECT sum(length(cs_user_agent)) AS b FROM requests",
    )
    .await;
    assert_eq!(bytes, format!("b\n{}\n", 240_000u64 * 9_000));
}
