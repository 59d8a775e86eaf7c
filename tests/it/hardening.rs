//! Hostile and damaged inputs, end to end: objects that cannot be read are
//! retried by every run until read or acknowledged; keys never reach the
//! lake or any output; two keys in one request bill the one the origin
//! checks; queries stop at their limits; CSV cells never run as formulas.

use crate::cli::{edgemeter, ingest, query_csv, summary, usage};
use crate::logs::{
    Req, expected, expected_under_secret, gzip, hour_of_requests, log_text, sha256_hex,
};

/// An object named for an hour far outside any lookback, unreadable at
/// first, is fetched by every later run (whose listing no longer reaches
/// it) until it is repaired; then it is counted exactly once. A second one
/// is acknowledged and stops failing the runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_objects_are_retried_until_read_or_acknowledged() {
    let logs = tempfile::tempdir().unwrap();
    let lake_dir = tempfile::tempdir().unwrap();
    let (source, lake) = (
        logs.path().to_str().unwrap(),
        lake_dir.path().to_str().unwrap(),
    );
    let good = hour_of_requests(1, 300, "g");
    let late = hour_of_requests(4, 200, "l");
    let lost = hour_of_requests(6, 50, "x");
    std::fs::write(
        logs.path().join("E2.2025-10-05-01.a.gz"),
        gzip(&log_text(&good)),
    )
    .unwrap();
    let late_path = logs.path().join("E2.2025-10-05-04.b.gz");
    let late_bytes = gzip(&log_text(&late));
    std::fs::write(&late_path, &late_bytes[..late_bytes.len() / 2]).unwrap();
    let lost_path = logs.path().join("E2.2025-10-05-06.c.gz");
    let lost_bytes = gzip(&log_text(&lost));
    std::fs::write(&lost_path, &lost_bytes[..lost_bytes.len() / 3]).unwrap();
    let late_uri = std::fs::canonicalize(&late_path)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let lost_uri = std::fs::canonicalize(&lost_path)
        .unwrap()
        .to_string_lossy()
        .into_owned();

    // The first run lists everything: two objects fail.
    let run = ingest(&[], source, lake, &["--json"]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["objects_unreadable"], 2);
    assert_eq!(s["unreadable_outstanding"], 2);
    assert_eq!(s["rows_written"], 300);

    // Later runs list only the lookback (2025 is long past) but still fetch
    // both, and still exit 3.
    for attempt in 2..=3u64 {
        let run = ingest(&[], source, lake, &["--json", "--lookback", "2h"]).await;
        assert_eq!(run.code, 3, "{}", run.stderr);
        let s = summary(&run);
        assert_eq!(s["objects_listed"], 0, "the lookback lists nothing of 2025");
        assert_eq!(s["objects_retried"], 2);
        assert_eq!(s["objects_unreadable"], 2);
        let list = edgemeter(&[], &["unreadable", "--lake", lake, "--format", "csv"]).await;
        assert_eq!(list.code, 0, "{}", list.stderr);
        let mut rows = csv::Reader::from_reader(list.stdout.as_bytes());
        let got: Vec<(String, u64, String)> = rows
            .records()
            .map(|r| {
                let r = r.unwrap();
                (r[0].to_string(), r[4].parse().unwrap(), r[5].to_string())
            })
            .collect();
        let mut want = vec![
            (late_uri.clone(), attempt, String::new()),
            (lost_uri.clone(), attempt, String::new()),
        ];
        want.sort();
        assert_eq!(got, want);
    }

    // One object is acknowledged as lost, the other repaired.
    let ack = edgemeter(
        &[],
        &["unreadable", "--lake", lake, "--acknowledge", &lost_uri],
    )
    .await;
    assert_eq!(ack.code, 0, "{}", ack.stderr);
    std::fs::write(&late_path, &late_bytes).unwrap();
    let run = ingest(&[], source, lake, &["--json", "--lookback", "2h"]).await;
    assert_eq!(run.code, 0, "repaired and acknowledged: {}", run.stderr);
    let s = summary(&run);
    assert_eq!(
        s["objects_retried"], 1,
        "the acknowledged object is not fetched"
    );
    assert_eq!(s["objects_ingested"], 1);
    assert_eq!(s["unreadable_resolved"], 1);
    assert_eq!(s["unreadable_outstanding"], 0);
    assert_eq!(s["rows_written"], 200);
    let all: Vec<&Req> = good.iter().chain(&late).collect();
    assert_eq!(usage(&[], lake, &[]).await, expected(&all));

    // Nothing is left to retry; the acknowledged object stays listed.
    let run = ingest(&[], source, lake, &["--json", "--lookback", "2h"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run)["objects_retried"], 0);
    let list = edgemeter(&[], &["unreadable", "--lake", lake, "--format", "csv"]).await;
    let mut rows = csv::Reader::from_reader(list.stdout.as_bytes());
    let left: Vec<(String, bool)> = rows
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), !r[5].is_empty())
        })
        .collect();
    assert_eq!(left, vec![(lost_uri, true)]);
    assert_eq!(usage(&[], lake, &[]).await, expected(&all));
}

/// A local link that dangles or leaves the source is reported and retried;
/// the run goes on with every other object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_links_are_reported_per_entry() {
    let logs = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let lake_dir = tempfile::tempdir().unwrap();
    let (source, lake) = (
        logs.path().to_str().unwrap(),
        lake_dir.path().to_str().unwrap(),
    );
    let reqs = hour_of_requests(2, 120, "s");
    std::fs::write(
        logs.path().join("E2.2025-10-05-02.a.gz"),
        gzip(&log_text(&reqs)),
    )
    .unwrap();
    std::fs::write(outside.path().join("other.gz"), gzip(&log_text(&reqs))).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("other.gz"),
        logs.path().join("escape.gz"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        logs.path().join("nothing.gz"),
        logs.path().join("dangling.gz"),
    )
    .unwrap();
    std::os::unix::fs::symlink(logs.path(), logs.path().join("loop")).unwrap();
    let run = ingest(&[], source, lake, &["--json"]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["objects_ingested"], 1);
    assert_eq!(s["objects_unreadable"], 3);
    let mut reasons: Vec<(String, String)> = s["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let object = u["object"].as_str().unwrap();
            (
                object.rsplit('/').next().unwrap().to_string(),
                u["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    reasons.sort();
    assert_eq!(reasons[0].0, "dangling.gz");
    assert!(
        reasons[0].1.starts_with("dangling symbolic link"),
        "{reasons:?}"
    );
    assert_eq!(
        reasons[1],
        (
            "escape.gz".into(),
            "symbolic link leaves the source root; not followed".into()
        )
    );
    assert_eq!(
        reasons[2],
        ("loop".into(), "symbolic link loop; not followed".into())
    );
    assert_eq!(
        usage(&[], lake, &[]).await,
        expected(&reqs.iter().collect::<Vec<_>>())
    );
}

/// The same 33-field line as the other tests, with a referer, a user agent
/// and a cookie of our choosing.
fn line_with(r: &Req, referer: &str, agent: &str, cookie: &str) -> String {
    r.line()
        .replacen("\t-\tcurl/8.7.1\t", &format!("\t{referer}\t{agent}\t"), 1)
        .replacen(
            &format!("\t{}\t-\tMiss\t", r.query),
            &format!("\t{}\t{cookie}\tMiss\t", r.query),
            1,
        )
}

/// A key sent in any spelling, through any field, never reaches the lake,
/// the summary or the run records; a request with two keys is billed to the
/// one of highest precedence (the cookie before the query, by default) and
/// counted as conflicting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_reach_the_lake_and_conflicts_bill_the_trusted_key() {
    let logs = tempfile::tempdir().unwrap();
    let lake_dir = tempfile::tempdir().unwrap();
    let (source, lake) = (
        logs.path().to_str().unwrap(),
        lake_dir.path().to_str().unwrap(),
    );
    let secret = "sk_live_Zx81ed004ABCDEFGH";
    let junk = "junk_key_from_client";
    let base = hour_of_requests(3, 4, "k");
    let mut text = crate::logs::HEADER.to_string();
    let mut billed = Vec::new();
    // 1: upper-case name in a ;-separated query, the key echoed in the
    //    referer's query and in the user agent.
    let mut r = base[0].clone();
    r.query = format!("a=1;API_KEY={secret}");
    r.key = Some(secret.into());
    text.push_str(&line_with(
        &r,
        &format!("https://app.example/p?Api_Key={secret}"),
        &format!("bot%20{secret}"),
        "-",
    ));
    billed.push(r.clone());
    // 2: the key in a path parameter of the stem.
    let mut r = base[1].clone();
    r.query = "-".into();
    r.key = Some(secret.into());
    text.push_str(
        &r.line()
            .replacen("\t/data\t", &format!("\t/data;api_key={secret}\t"), 1),
    );
    billed.push(r.clone());
    // 3: a cookie key and a different query key: the cookie wins.
    let mut r = base[2].clone();
    r.query = format!("api_key={junk}");
    r.key = Some(secret.into());
    text.push_str(&line_with(
        &r,
        "-",
        "curl/8.7.1",
        &format!("api_key={secret}"),
    ));
    billed.push(r.clone());
    // 4: a damaged c-port carrying the key after a lost tab: a field error,
    //    still billed, and the sample names the field, not the value.
    let mut r = base[3].clone();
    r.query = format!("api_key={secret}");
    r.key = Some(secret.into());
    text.push_str(
        &r.line()
            .replacen("\t54726\t", &format!("\t54726{secret}\t"), 1),
    );
    billed.push(r.clone());
    std::fs::write(logs.path().join("E2.2025-10-05-03.k.gz"), gzip(&text)).unwrap();

    let run = ingest(&[], source, lake, &["--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["requests"], 4);
    assert_eq!(s["bad_lines"], 0);
    assert_eq!(s["field_errors"], 1);
    assert_eq!(s["field_error_samples"][0]["field"], "c-port");
    // Two header lines, then the fourth request.
    assert_eq!(s["field_error_samples"][0]["line"], 2 + 4);
    assert_eq!(s["conflicting_keys"][sha256_hex(secret)], 1);
    // The named query lists the conflict: billed to the cookie's key, the
    // query's kept as its id.
    let conflicts = edgemeter(
        &[],
        &[
            "query",
            "--lake",
            lake,
            "--format",
            "csv",
            "conflicting_keys",
            "--param",
            "from=2025-10-05",
        ],
    )
    .await;
    assert_eq!(conflicts.code, 0, "{}", conflicts.stderr);
    let time = format!("2025-10-05T{}Z", base[2].time);
    assert_eq!(
        conflicts.stdout.replace("\r\n", "\n"),
        format!(
            "api_key_id,api_key_hint,conflicting_key_id,requests,first_seen,last_seen\n\
             {},EFGH,{},1,{time},{time}\n",
            sha256_hex(secret),
            sha256_hex(junk)
        )
    );
    assert_eq!(
        usage(&[], lake, &[]).await,
        expected(&billed.iter().collect::<Vec<_>>())
    );

    // Nothing stored or printed holds either key.
    let everything = query_csv(&[], lake, "SELECT * FROM requests").await;
    for leaked in [secret, junk] {
        assert!(!everything.contains(leaked), "{everything}");
        assert!(!run.stdout.contains(leaked) && !run.stderr.contains(leaked));
    }
    for needle in [
        "a=1;API_KEY=REDACTED",
        "https://app.example/p?Api_Key=REDACTED",
        "bot%20REDACTED",
        "/data;api_key=REDACTED",
    ] {
        assert!(everything.contains(needle), "{needle} in {everything}");
    }
    let mut records = Vec::new();
    for entry in walk(lake_dir.path()) {
        if entry.extension().is_some_and(|e| e == "json") {
            records.push(std::fs::read_to_string(&entry).unwrap());
        }
    }
    assert!(!records.is_empty());
    for record in records {
        assert!(!record.contains(secret) && !record.contains(junk));
    }
    // A raw key given to --key is not echoed back.
    let wrong = edgemeter(&[], &["usage", "--lake", lake, "--key", secret]).await;
    assert_ne!(wrong.code, 0);
    assert!(!wrong.stderr.contains(secret), "{}", wrong.stderr);
}

pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Ad hoc SQL stops at its time limit and at its memory pool, each with an
/// error that says which; CSV output neutralises formula-shaped text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_stop_at_their_limits_and_csv_cells_are_not_formulas() {
    let logs = tempfile::tempdir().unwrap();
    let lake_dir = tempfile::tempdir().unwrap();
    let (source, lake) = (
        logs.path().to_str().unwrap(),
        lake_dir.path().to_str().unwrap(),
    );
    let reqs = hour_of_requests(5, 40, "q");
    std::fs::write(
        logs.path().join("E2.2025-10-05-05.q.gz"),
        gzip(&log_text(&reqs)),
    )
    .unwrap();
    assert_eq!(ingest(&[], source, lake, &[]).await.code, 0);

    let slow = edgemeter(
        &[],
        &[
            "query",
            "--lake",
            lake,
            "--timeout-secs",
            "1",
            "SELECT count(*) FROM generate_series(1, 100000000000)",
        ],
    )
    .await;
    assert_ne!(slow.code, 0);
    assert!(slow.stderr.contains("time limit"), "{}", slow.stderr);

    let big = edgemeter(
        &[],
        &[
            "query",
            "--lake",
            lake,
            "--memory-mib",
            "1",
            "SELECT array_agg(x) FROM generate_series(1, 5000000) AS t(x)",
        ],
    )
    .await;
    assert_ne!(big.code, 0);
    assert!(big.stderr.contains("Resources exhausted"), "{}", big.stderr);

    let csv = query_csv(
        &[],
        lake,
        "SELECT '=HYPERLINK(\"http://x\")' AS a, '-12.5' AS b, '@SUM(A1)' AS c, count(*) AS n FROM requests",
    )
    .await;
    assert_eq!(
        csv,
        "a,b,c,n\n\"'=HYPERLINK(\"\"http://x\"\")\",-12.5,'@SUM(A1),40\n"
    );
}

/// A lake records how its ids were made: a run with another secret (or
/// none) is refused instead of splitting a customer's usage in two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_refuses_runs_that_hash_keys_differently() {
    let logs = tempfile::tempdir().unwrap();
    let lakes = tempfile::tempdir().unwrap();
    let source = logs.path().to_str().unwrap();
    let reqs = hour_of_requests(7, 60, "h");
    std::fs::write(
        logs.path().join("E2.2025-10-05-07.h.gz"),
        gzip(&log_text(&reqs)),
    )
    .unwrap();

    // `init` writes the secret to a file of mode 0600, never into the lake.
    let keyed = lakes.path().join("keyed");
    let keyed = keyed.to_str().unwrap();
    let secret_file = lakes.path().join("secret");
    let init = edgemeter(
        &[],
        &[
            "init",
            "--lake",
            keyed,
            "--secret-file",
            secret_file.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(init.code, 0, "{}", init.stderr);
    let secret = std::fs::read_to_string(&secret_file)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(secret.len(), 64);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&secret_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    for file in walk(std::path::Path::new(keyed)) {
        assert!(!std::fs::read_to_string(file).unwrap().contains(&secret));
    }
    let again = edgemeter(&[], &["init", "--lake", keyed]).await;
    assert_ne!(again.code, 0, "a lake is initialised once");

    let refused = ingest(&[], source, keyed, &[]).await;
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("EDGEMETER_KEY_SECRET"),
        "{}",
        refused.stderr
    );
    let wrong = ingest(
        &[("EDGEMETER_KEY_SECRET", "another".into())],
        source,
        keyed,
        &[],
    )
    .await;
    assert_ne!(wrong.code, 0);
    let with_file = [(
        "EDGEMETER_KEY_SECRET_FILE",
        secret_file.to_str().unwrap().to_string(),
    )];
    let run = ingest(&with_file, source, keyed, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Ids are HMAC-SHA256 under the secret, computed here independently.
    let want = expected_under_secret(&reqs.iter().collect::<Vec<_>>(), &secret);
    assert_eq!(usage(&with_file, keyed, &[]).await, want);

    // A lake first written without a secret refuses a run with one.
    let plain_lake = lakes.path().join("plain");
    let plain_lake = plain_lake.to_str().unwrap();
    let first = ingest(&[], source, plain_lake, &[]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stderr.contains("plain SHA-256"),
        "a warning on every run: {}",
        first.stderr
    );
    let later = ingest(&with_file, source, plain_lake, &[]).await;
    assert_ne!(later.code, 0);
    assert!(later.stderr.contains("plain SHA-256"), "{}", later.stderr);
}
