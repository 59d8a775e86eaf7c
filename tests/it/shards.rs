//! Sharded ingest (`--shard I/N`): four workers at once over one source and
//! one lake, their objects spread over the same hours, some of them
//! re-deliveries of others' requests under another name. Each worker reads
//! exactly its shard (by the documented hash, recomputed here), the lake
//! holds every request once, and resharding starts from the old shards'
//! checkpoints rather than a full listing.

use crate::cli::{Run, ingest, query_csv, summary, usage};
use crate::logs::{Req, expected, gzip, log_text, requests_at, sha256_hex};
use crate::s3::TestS3;

/// The documented assignment: the first 8 bytes of the name's SHA-256,
/// big-endian, modulo `count`.
fn shard_of(name: &str, count: u64) -> u64 {
    u64::from_str_radix(&sha256_hex(name)[..16], 16).unwrap() % count
}

/// `objects` log objects of `date` over `hours`, each of `lines` requests;
/// every third one also repeats 30 requests of the one before (a re-delivered
/// log). Returns (name, gzipped body) and the distinct requests.
fn objects(
    date: &str,
    tag: &str,
    hours: &[u32],
    objects: usize,
    lines: usize,
) -> (Vec<(String, Vec<u8>)>, Vec<Req>) {
    let mut out = Vec::new();
    let mut distinct = Vec::new();
    let mut previous: Vec<Req> = Vec::new();
    for i in 0..objects {
        let hour = hours[i % hours.len()];
        let mut reqs = requests_at(date, hour, lines, &format!("{tag}{i}"));
        distinct.extend(reqs.iter().cloned());
        if i % 3 == 2 {
            reqs.extend(previous[..30].iter().cloned());
        }
        let name = format!("E2SHARD.{date}-{hour:02}.{tag}{i:03}.gz");
        out.push((name, gzip(&log_text(&reqs))));
        previous = reqs;
    }
    (out, distinct)
}

fn write_dir(dir: &std::path::Path, objects: &[(String, Vec<u8>)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, body) in objects {
        std::fs::write(dir.join(name), body).unwrap();
    }
}

/// Runs `count` workers at once, shard `i/count` each, with `flags`.
async fn workers(
    env: &[(&str, String)],
    source: &str,
    lake: &str,
    count: u64,
    flags: &[&str],
) -> Vec<Run> {
    let shards: Vec<String> = (0..count).map(|i| format!("{i}/{count}")).collect();
    let runs = futures::future::join_all(shards.iter().map(|shard| {
        let args = [&["--shard", shard.as_str(), "--json"], flags].concat();
        async move { ingest(env, source, lake, &args).await }
    }))
    .await;
    for run in &runs {
        assert_eq!(run.code, 0, "a worker failed: {}", run.stderr);
    }
    runs
}

/// Each worker listed exactly its shard's objects of `names`, and read the
/// ones not yet ingested (`fresh` of them in all).
fn assert_each_read_its_shard(runs: &[Run], names: &[String], fresh: u64) {
    let count = runs.len() as u64;
    let mut ingested = 0;
    for (i, run) in runs.iter().enumerate() {
        let s = summary(run);
        let mine = names
            .iter()
            .filter(|n| shard_of(n, count) == i as u64)
            .count() as u64;
        assert_eq!(s["shard"], format!("{i}/{count}"), "{s}");
        assert_eq!(s["objects_listed"], mine, "shard {i}: {s}");
        assert_eq!(
            s["objects_other_shards"].as_u64().unwrap_or(0),
            names.len() as u64 - mine,
            "shard {i}: {s}"
        );
        ingested += s["objects_ingested"].as_u64().unwrap();
    }
    assert_eq!(ingested, fresh);
}

async fn recorded(env: &[(&str, String)], lake: &str) -> String {
    query_csv(
        env,
        lake,
        "SELECT count(*), count(DISTINCT source) FROM ingested",
    )
    .await
    .lines()
    .nth(1)
    .unwrap()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_sharded_workers_over_the_same_hours_are_exact() {
    let root = tempfile::tempdir().unwrap();
    let source = root.path().join("logs");
    let (first, mut distinct) = objects("2025-10-05", "a", &[1, 2, 3], 24, 60);
    write_dir(&source, &first);
    let source = source.to_str().unwrap().to_string();
    let mut names: Vec<String> = first.iter().map(|(n, _)| n.clone()).collect();
    let flags = ["--since", "2025-10-05", "--batch-bytes", "4000"];
    // Logs each commit another writer beat (`lake::delta`'s debug event).
    let logged = [(
        "EDGEMETER_LOG",
        "warn,edgemeter::lake::delta=debug".to_string(),
    )];
    let mut beaten = 0;
    for round in 0..3 {
        let lake_dir = tempfile::tempdir().unwrap();
        let lake = lake_dir.path().to_str().unwrap();
        let runs = workers(&logged, &source, lake, 4, &flags).await;
        beaten += runs
            .iter()
            .map(|r| r.stderr.matches("another writer committed first").count())
            .sum::<usize>();
        assert_each_read_its_shard(&runs, &names[..24], 24);
        let want = expected(&distinct[..24 * 60].iter().collect::<Vec<_>>());
        assert_eq!(usage(&[], lake, &[]).await, want, "round {round}");
        assert_eq!(recorded(&[], lake).await, "24,24", "round {round}");
        if round > 0 {
            continue;
        }
        // Again: nothing new, nothing read twice.
        let runs = workers(&[], &source, lake, 4, &flags).await;
        assert_each_read_its_shard(&runs, &names, 0);
        assert_eq!(usage(&[], lake, &[]).await, want);
        // Late objects into hours already committed, one delivered twice.
        let (late, late_reqs) = objects("2025-10-05", "late", &[2, 3], 8, 45);
        write_dir(std::path::Path::new(&source), &late);
        names.extend(late.iter().map(|(n, _)| n.clone()));
        distinct.extend(late_reqs);
        let runs = workers(&[], &source, lake, 4, &flags).await;
        assert_each_read_its_shard(&runs, &names, 8);
        let want_all = expected(&distinct.iter().collect::<Vec<_>>());
        assert_eq!(usage(&[], lake, &[]).await, want_all);
        assert_eq!(recorded(&[], lake).await, "32,32");
        // An unsharded run finds everything ingested already.
        let run = ingest(&[], &source, lake, &["--since", "2025-10-05", "--json"]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(summary(&run)["objects_ingested"], 0);
        let dups = query_csv(
            &[],
            lake,
            "SELECT count(*) - count(DISTINCT x_edge_request_id) FROM requests",
        )
        .await;
        assert_eq!(dups.lines().nth(1), Some("0"));
        // Put the late objects away for the rounds on fresh lakes.
        for (name, _) in &late {
            std::fs::remove_file(std::path::Path::new(&source).join(name)).unwrap();
        }
        names.truncate(24);
        distinct.truncate(24 * 60);
    }
    // The workers wrote the same hours at once: commits were beaten and made again.
    assert!(beaten > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_sharded_workers_from_s3_into_an_s3_lake_are_exact() {
    let s3 = TestS3::start().await;
    s3.create_bucket("logs").await;
    s3.create_bucket("lake").await;
    let env = s3.env();
    let (objects, distinct) = objects("2025-10-05", "s", &[4, 5], 20, 50);
    for (name, body) in &objects {
        s3.put("logs", &format!("cf/{name}"), body.clone()).await;
    }
    let names: Vec<String> = objects.iter().map(|(n, _)| n.clone()).collect();
    let lake = "s3://lake/sharded/";
    let runs = workers(
        &env,
        "s3://logs/cf/",
        lake,
        4,
        &["--since", "2025-10-05", "--batch-bytes", "4000"],
    )
    .await;
    // Shards hash the name below the prefix, as on a local directory.
    assert_each_read_its_shard(&runs, &names, 20);
    let want = expected(&distinct.iter().collect::<Vec<_>>());
    assert_eq!(usage(&env, lake, &[]).await, want);
    assert_eq!(recorded(&env, lake).await, "20,20");
}

/// From 4 workers to 2: the new shards list from the old ones' checkpoints
/// (the earliest of the four), not the whole source, and still find a late
/// object of the last hours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_lists_from_the_old_shards_checkpoints() {
    let root = tempfile::tempdir().unwrap();
    let source = root.path().join("logs");
    let now = chrono::Utc::now() - chrono::Duration::hours(2);
    let today = now.format("%Y-%m-%d").to_string();
    let hour: u32 = now.format("%H").to_string().parse().unwrap();
    let (first, mut distinct) = objects(&today, "r", &[hour], 12, 40);
    write_dir(&source, &first);
    let source = source.to_str().unwrap();
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let runs = workers(&[], source, lake, 4, &["--lookback", "6h"]).await;
    for run in &runs {
        assert_eq!(summary(run)["listing"], "full");
    }
    let (late, late_reqs) = objects(&today, "l", &[hour], 4, 40);
    write_dir(std::path::Path::new(source), &late);
    distinct.extend(late_reqs);
    let runs = workers(&[], source, lake, 2, &["--lookback", "6h"]).await;
    let mut ingested = 0;
    for run in &runs {
        let s = summary(run);
        let listing = s["listing"].as_str().unwrap();
        assert!(listing.starts_with("since "), "{s}");
        ingested += s["objects_ingested"].as_u64().unwrap();
    }
    assert_eq!(ingested, 4);
    let want = expected(&distinct.iter().collect::<Vec<_>>());
    assert_eq!(usage(&[], lake, &[]).await, want);
}
