//! `--source sqs://QUEUE-URL`: S3 event notifications on a queue of a real
//! SQS-compatible server (moto's, started here on loopback once for these
//! tests), naming objects in the in-process S3 test server. The tests send
//! the notifications themselves (S3's own JSON, wrapped by SNS, and
//! EventBridge's), repeated, shuffled, made visible again, malformed, and
//! check exact per-key totals against `logs::expected` and the queues'
//! contents against what they sent.

use crate::cli::{Run, edgemeter, query_csv, summary, usage};
use crate::logs::{Req, expected, gzip, hour_of_requests, log_text};
use crate::s3::{ACCESS_KEY, SECRET_KEY, TestS3};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// moto's server, shared by these tests. It exits by itself when this test
/// process does (its parent changes): see [`WATCHED_SERVER`].
struct Moto {
    endpoint: String,
    _child: Mutex<std::process::Child>,
}

/// moto's server, with a thread that ends it once its parent is gone.
const WATCHED_SERVER: &str = "\
import os, sys, threading, time
parent = os.getppid()
def watch():
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
from moto.server import main
main(['-H', '127.0.0.1', '-p', sys.argv[1]])
";

fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let pythonpath = crate::secrets::ensure_moto();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new("python3")
            .args(["-c", WATCHED_SERVER, &port.to_string()])
            .env("PYTHONPATH", pythonpath)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..600 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Moto {
                    endpoint: format!("http://127.0.0.1:{port}"),
                    _child: Mutex::new(child),
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("moto's server did not start on port {port}");
    })
}

/// The tests' own SQS client.
fn sqs() -> Client {
    let config = aws_sdk_sqs::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto().endpoint)
        .build();
    Client::from_conf(config)
}

/// A new queue (the name made unique) with this visibility timeout and,
/// given a dead-letter queue's URL, a redrive policy to it; its URL.
async fn create_queue(name: &str, visibility_secs: u32, redrive: Option<(&str, u32)>) -> String {
    let name = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut request = sqs().create_queue().queue_name(name).attributes(
        QueueAttributeName::VisibilityTimeout,
        visibility_secs.to_string(),
    );
    if let Some((dead_letter, max_receives)) = redrive {
        let arn = sqs()
            .get_queue_attributes()
            .queue_url(dead_letter)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes()
            .unwrap()[&QueueAttributeName::QueueArn]
            .clone();
        let policy = json!({"deadLetterTargetArn": arn, "maxReceiveCount": max_receives});
        request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
    }
    request
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string()
}

/// Sends a message; its id.
async fn send(queue: &str, body: &str) -> String {
    sqs()
        .send_message()
        .queue_url(queue)
        .message_body(body)
        .send()
        .await
        .unwrap()
        .message_id()
        .unwrap()
        .to_string()
}

/// Messages waiting in a queue: (visible, received and hidden).
async fn queue_counts(queue: &str) -> (u64, u64) {
    let out = sqs()
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let attributes = out.attributes().unwrap();
    let n = |name: QueueAttributeName| attributes[&name].parse::<u64>().unwrap();
    (
        n(QueueAttributeName::ApproximateNumberOfMessages),
        n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

/// Every message of a queue (received and deleted): body and attributes.
async fn drain(queue: &str) -> Vec<(String, HashMap<String, String>)> {
    let mut out = Vec::new();
    loop {
        let got = sqs()
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            return out;
        }
        for m in got.messages() {
            let attributes = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.clone(), v.string_value().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            out.push((m.body().unwrap().to_string(), attributes));
            sqs()
                .delete_message()
                .queue_url(queue)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

/// An object put into the S3 test server, as S3 describes it.
#[derive(Debug, Clone)]
struct Put {
    bucket: String,
    key: String,
    size: u64,
    etag: String,
}

async fn put(s3: &TestS3, bucket: &str, key: &str, body: Vec<u8>) -> Put {
    s3.put(bucket, key, body).await;
    let head = s3
        .client()
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    Put {
        bucket: bucket.into(),
        key: key.into(),
        size: head.content_length().unwrap() as u64,
        etag: head.e_tag().unwrap().trim_matches('"').to_string(),
    }
}

/// A gzip log of `requests` at `key`.
async fn put_log(s3: &TestS3, bucket: &str, key: &str, requests: &[Req]) -> Put {
    put(s3, bucket, key, gzip(&log_text(requests))).await
}

/// A key as S3 event notifications carry it: URL-encoded as a form value.
fn encoded(key: &str) -> String {
    url::form_urlencoded::byte_serialize(key.as_bytes()).collect()
}

/// S3's own event, one record per object.
fn direct(objects: &[&Put]) -> String {
    direct_event("ObjectCreated:Put", objects)
}

fn direct_event(name: &str, objects: &[&Put]) -> String {
    let records: Vec<Value> = objects
        .iter()
        .map(|p| {
            json!({
                "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                "eventTime": "2025-10-05T13:05:01.123Z", "eventName": name,
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
                "s3": {
                    "s3SchemaVersion": "1.0", "configurationId": "edgemeter-logs",
                    "bucket": {"name": p.bucket, "arn": format!("arn:aws:s3:::{}", p.bucket)},
                    "object": {"key": encoded(&p.key), "size": p.size, "eTag": p.etag, "sequencer": "0055AED6DCD90281E5"}
                }
            })
        })
        .collect();
    json!({ "Records": records }).to_string()
}

/// S3's event as older schemas give it: the key alone, no size or ETag
/// (the object is looked up before it is read).
fn key_only(p: &Put) -> String {
    json!({"Records": [{
        "eventVersion": "2.0", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": p.bucket}, "object": {"key": encoded(&p.key)}}
    }]})
    .to_string()
}

/// A notification as SNS delivers it to a queue it fans out to.
fn sns(message: &str) -> String {
    json!({
        "Type": "Notification",
        "MessageId": uuid::Uuid::new_v4().to_string(),
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:edgemeter-logs",
        "Subject": "Amazon S3 Notification",
        "Message": message,
        "Timestamp": "2025-10-05T13:05:01.200Z",
    })
    .to_string()
}

/// EventBridge's S3 event, as a rule's SQS target receives it.
fn eventbridge(p: &Put) -> String {
    json!({
        "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": "Object Created",
        "source": "aws.s3", "account": "123456789012", "time": "2025-10-05T13:05:01Z",
        "region": "us-east-1", "resources": [format!("arn:aws:s3:::{}", p.bucket)],
        "detail": {
            "version": "0", "bucket": {"name": p.bucket},
            "object": {"key": encoded(&p.key), "size": p.size, "etag": p.etag, "sequencer": "00617F08299329D189"},
            "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "reason": "PutObject"
        }
    })
    .to_string()
}

/// What S3 sends when a notification configuration is saved.
const TEST_EVENT: &str = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2025-10-05T13:00:00.000Z","Bucket":"logs","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YYGhwOFDQw=="}"#;

/// A pseudo-random permutation (a fixed seed: runs are repeatable).
fn shuffled<T>(mut items: Vec<T>, seed: u64) -> Vec<T> {
    let mut state = seed;
    for i in (1..items.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        items.swap(i, (state >> 33) as usize % (i + 1));
    }
    items
}

/// `edgemeter ingest` of the queue into `lake`, a receive waiting 1 s.
fn queue_args(queue: &str, lake: &str, more: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "ingest",
        "--source",
        &format!("sqs://{queue}"),
        "--lake",
        lake,
        "--wait-secs",
        "1",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(more.iter().map(|s| s.to_string()));
    args
}

async fn ingest_queue(env: &[(&str, String)], queue: &str, lake: &str, more: &[&str]) -> Run {
    let args = queue_args(queue, lake, more);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    edgemeter(env, &args).await
}

/// Every summary a run printed (one per source).
fn summaries(run: &Run) -> Vec<Value> {
    serde_json::Deserializer::from_str(&run.stdout)
        .into_iter::<Value>()
        .map(|v| v.unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr)))
        .collect()
}

/// The requests of several objects, for `expected`.
fn all<'a>(objects: &[&'a Vec<Req>]) -> Vec<&'a Req> {
    objects.iter().flat_map(|reqs| reqs.iter()).collect()
}

async fn assert_no_visible_duplicates(lake: &str) {
    let dups = query_csv(
        &[],
        lake,
        "SELECT count(*) - count(DISTINCT x_edge_request_id) AS dups FROM requests",
    )
    .await;
    assert_eq!(dups.lines().nth(1), Some("0"), "{dups}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_reordered_and_redelivered_notifications_give_exact_totals() {
    let s3 = TestS3::start().await;
    let bucket = "sqs-dupes";
    s3.create_bucket(bucket).await;
    let mut requests = Vec::new();
    let mut puts = Vec::new();
    for i in 0..8u32 {
        let hour = 10 + i % 4;
        let reqs = hour_of_requests(hour, 150, &format!("d{i}"));
        // One key a notification must decode: a space and a plus.
        let key = match i {
            3 => "cf/E2SQS.2025-10-05-13.with space+plus.gz".to_string(),
            _ => format!("cf/E2SQS.2025-10-05-{hour:02}.{i:04}.gz"),
        };
        puts.push(put_log(&s3, bucket, &key, &reqs).await);
        requests.push(reqs);
    }
    let queue = create_queue("dupes", 30, None).await;
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let env = s3.env();
    let p = &puts;

    // Objects 0–5, each named once or more, in three forms, shuffled, with
    // a test event and an event that is no creation.
    let first = vec![
        direct(&[&p[0]]),
        sns(&direct(&[&p[1]])),
        eventbridge(&p[2]),
        direct(&[&p[3], &p[4]]),
        direct(&[&p[4]]),
        eventbridge(&p[0]),
        sns(&direct(&[&p[5]])),
        direct(&[&p[5]]),
        TEST_EVENT.to_string(),
        direct_event("ObjectRemoved:Delete", &[&p[1]]),
    ];
    for body in shuffled(first, 7) {
        send(&queue, &body).await;
    }
    // One message handed out and made visible again, as after a consumer
    // that stopped: SQS redelivers it.
    let got = sqs()
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(1)
        .send()
        .await
        .unwrap();
    let handed_out = &got.messages()[0];
    sqs()
        .change_message_visibility()
        .queue_url(&queue)
        .receipt_handle(handed_out.receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();

    let run = ingest_queue(&env, &queue, lake, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["listing"], "queue");
    assert_eq!(s["objects_listed"], 6);
    assert_eq!(s["objects_ingested"], 6);
    assert_eq!(s["objects_skipped"], 0);
    assert_eq!(s["duplicates"], 0);
    let q = &s["queue"];
    assert_eq!(q["messages_received"], 10);
    assert_eq!(q["messages_redelivered"], 1);
    assert_eq!(q["messages_received_again"], 0);
    assert_eq!(q["messages_deleted"], 10);
    assert_eq!(q["messages_ignored"], 2);
    assert_eq!(q["messages_dead_lettered"], 0);
    assert_eq!(q["messages_left"], 0);
    // 9 objects named, 6 of them distinct.
    assert_eq!(q["notifications"], 9);
    assert_eq!(q["repeated_notifications"], 3);
    assert_eq!(q["malformed"], json!([]));
    let want = expected(&all(&requests[..6].iter().collect::<Vec<_>>()));
    assert_eq!(usage(&[], lake, &[]).await, want);
    assert_eq!(queue_counts(&queue).await, (0, 0));

    // Notifications of objects already ingested come again (a delete that
    // was lost), with new objects, one of them named twice.
    let second = vec![
        direct(&[&p[0]]),
        eventbridge(&p[1]),
        direct(&[&p[6]]),
        sns(&key_only(&p[7])),
        direct(&[&p[6]]),
    ];
    for body in shuffled(second, 11) {
        send(&queue, &body).await;
    }
    let run = ingest_queue(&env, &queue, lake, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["objects_listed"], 4);
    assert_eq!(s["objects_skipped"], 2);
    assert_eq!(s["objects_ingested"], 2);
    assert_eq!(s["queue"]["messages_received"], 5);
    assert_eq!(s["queue"]["messages_deleted"], 5);
    assert_eq!(s["queue"]["repeated_notifications"], 1);
    let want = expected(&all(&requests.iter().collect::<Vec<_>>()));
    assert_eq!(usage(&[], lake, &[]).await, want);
    assert_no_visible_duplicates(lake).await;
    assert_eq!(queue_counts(&queue).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_then_rerun_gives_exact_totals_and_drains_the_queue() {
    let s3 = TestS3::start().await;
    let bucket = "sqs-crash";
    s3.create_bucket(bucket).await;
    let mut distinct = Vec::new();
    let mut bodies = Vec::new();
    let mut previous: Vec<Req> = Vec::new();
    for i in 0..32u32 {
        let hour = 10 + i % 4;
        let mut reqs = hour_of_requests(hour, 600, &format!("k{i}"));
        distinct.extend(reqs.iter().cloned());
        // Every fifth object repeats requests of the one before (same ids).
        if i % 5 == 4 {
            reqs.extend(previous[..50].iter().cloned());
        }
        let key = format!("cf/E2CRASH.2025-10-05-{hour:02}.{i:04}.gz");
        let p = put_log(&s3, bucket, &key, &reqs).await;
        bodies.push(match i % 3 {
            0 => direct(&[&p]),
            1 => sns(&direct(&[&p])),
            _ => eventbridge(&p),
        });
        if i % 4 == 0 {
            bodies.push(eventbridge(&p));
        }
        previous = reqs;
    }
    let want = expected(&distinct.iter().collect::<Vec<_>>());
    // A short visibility timeout: what a killed run held comes back soon.
    let queue = create_queue("crash", 2, None).await;
    for body in shuffled(bodies, 3) {
        send(&queue, &body).await;
    }
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let env = s3.env();
    let args = queue_args(&queue, lake, &["--batch-bytes", "20000"]);

    let mut seed: u64 = 0x5eed_05a5;
    let mut interrupted = 0;
    let mut rounds = Vec::new();
    for round in 0..8 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let delay = Duration::from_millis(50 + (seed >> 33) % 700);
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgemeter"))
            .args(&args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(delay).await;
        child.start_kill().unwrap(); // SIGKILL
        child.wait().await.unwrap();
        if !Path::new(lake).join("requests/_delta_log").exists() {
            continue;
        }
        assert_no_visible_duplicates(lake).await;
        let partial = usage(&[], lake, &[]).await;
        for (key, got) in &partial {
            let full = &want[key];
            assert!(
                got.requests <= full.requests && got.bytes_out <= full.bytes_out,
                "round {round}: {key} over-counted"
            );
        }
        let counted: i64 = partial.values().map(|t| t.requests).sum();
        rounds.push((delay.as_millis(), counted));
        interrupted += usize::from(partial != want);
    }
    assert!(
        interrupted >= 3,
        "only {interrupted} kills landed mid-run: the test lost its teeth ({rounds:?})"
    );

    // What the killed runs held becomes visible again after the timeout.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = edgemeter(&env, &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(usage(&[], lake, &[]).await, want);
    assert_no_visible_duplicates(lake).await;
    crate::exactly_once::assert_rollup_matches_rows(lake).await;
    assert_eq!(queue_counts(&queue).await, (0, 0));
    let run = edgemeter(&env, &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["rows_written"], 0);
    assert_eq!(s["queue"]["messages_received"], 0);
    assert_eq!(usage(&[], lake, &[]).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_objects_and_malformed_messages_go_to_the_dead_letter_queue() {
    let s3 = TestS3::start().await;
    let bucket = "sqs-dead";
    s3.create_bucket(bucket).await;
    let good: Vec<Vec<Req>> = (0..3)
        .map(|i| hour_of_requests(9, 100, &format!("g{i}")))
        .collect();
    let mut g = Vec::new();
    for (i, reqs) in good.iter().enumerate() {
        let key = format!("cf/E2DEAD.2025-10-05-09.good{i}.gz");
        g.push(put_log(&s3, bucket, &key, reqs).await);
    }
    // A gzip cut in half, named like a log: unreadable.
    let whole = gzip(&log_text(&hour_of_requests(9, 100, "cut")));
    let bad_key = "cf/E2DEAD.2025-10-05-09.bad.gz";
    let bad = put(&s3, bucket, bad_key, whole[..whole.len() / 2].to_vec()).await;
    // Named by a notification, never put.
    let gone = Put {
        bucket: bucket.into(),
        key: "cf/E2DEAD.2025-10-05-09.gone.gz".into(),
        size: 1234,
        etag: "0123456789abcdef0123456789abcdef".into(),
    };
    let dead_letters = create_queue("dead-dlq", 30, None).await;
    let queue = create_queue("dead", 30, None).await;
    let mut ids = BTreeMap::new();
    for (name, body) in [
        ("good0", direct(&[&g[0]])),
        ("good1", sns(&direct(&[&g[1]]))),
        ("bad", eventbridge(&bad)),
        ("good2+bad", direct(&[&g[2], &bad])),
        ("gone", direct(&[&gone])),
        ("not json", "this is no notification".to_string()),
        (
            "no key",
            r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"sqs-dead"}}}]}"#
                .to_string(),
        ),
    ] {
        ids.insert(name, (send(&queue, &body).await, body));
    }
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let env = s3.env();
    let run = ingest_queue(&env, &queue, lake, &["--dead-letter-queue", &dead_letters]).await;
    assert_eq!(
        run.code, 3,
        "unreadable objects and malformed messages: {}",
        run.stderr
    );
    let s = summary(&run);
    assert_eq!(s["objects_ingested"], 3);
    assert_eq!(s["objects_unreadable"], 2);
    assert_eq!(s["unreadable_outstanding"], 2);
    let q = &s["queue"];
    assert_eq!(q["messages_received"], 7);
    assert_eq!(q["messages_deleted"], 2);
    assert_eq!(q["messages_dead_lettered"], 5);
    assert_eq!(q["messages_left"], 0);
    // Each malformed message is reported with its id and why.
    let mut malformed: Vec<(String, String)> = q["malformed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["message_id"].as_str().unwrap().to_string(),
                m["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    malformed.sort();
    let mut want_malformed = vec![
        (ids["not json"].0.clone(), "not JSON".to_string()),
        (
            ids["no key"].0.clone(),
            "Records[0] has no s3.object.key".to_string(),
        ),
    ];
    want_malformed.sort();
    assert_eq!(malformed.len(), 2, "{malformed:?}");
    for ((id, reason), (want_id, want_reason)) in malformed.iter().zip(&want_malformed) {
        assert_eq!(id, want_id);
        assert!(reason.starts_with(want_reason.as_str()), "{reason}");
    }
    assert!(run.stderr.contains(&ids["not json"].0), "{}", run.stderr);

    // The dead-letter queue holds exactly the five failed messages, as sent,
    // each naming its original id; the queue itself is empty.
    let mut dead: Vec<(String, String, String)> = drain(&dead_letters)
        .await
        .into_iter()
        .map(|(body, attributes)| {
            (
                attributes["edgemeter-message-id"].clone(),
                body,
                attributes["edgemeter-reason"].clone(),
            )
        })
        .collect();
    dead.sort();
    let mut want_dead: Vec<(String, String)> = ["bad", "good2+bad", "gone", "not json", "no key"]
        .iter()
        .map(|name| ids[name].clone())
        .collect();
    want_dead.sort();
    assert_eq!(
        dead.iter()
            .map(|(id, body, _)| (id.clone(), body.clone()))
            .collect::<Vec<_>>(),
        want_dead
    );
    let reason_of = |name: &str| {
        dead.iter()
            .find(|(id, _, _)| *id == ids[name].0)
            .unwrap()
            .2
            .clone()
    };
    assert!(
        reason_of("gone").contains(&gone.key),
        "{}",
        reason_of("gone")
    );
    assert!(reason_of("good2+bad").contains(bad_key));
    assert!(!reason_of("good2+bad").contains("good2"));
    assert_eq!(queue_counts(&queue).await, (0, 0));

    // Both objects are in the retry record, under the queue's source.
    let listed = edgemeter(&[], &["unreadable", "--lake", lake, "--format", "json"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let records: BTreeMap<String, Value> = listed
        .stdout
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            (v["object"].as_str().unwrap().to_string(), v)
        })
        .collect();
    let uri = |key: &str| format!("s3://{bucket}/{key}");
    assert_eq!(
        records.keys().cloned().collect::<Vec<_>>(),
        vec![uri(bad_key), uri(&gone.key)]
    );
    for record in records.values() {
        assert_eq!(record["source"], format!("sqs://{queue}"));
        assert_eq!(record["attempts"], 1);
    }
    let want = expected(&all(&good.iter().collect::<Vec<_>>()));
    assert_eq!(usage(&[], lake, &[]).await, want);

    // Every later run of the queue tries them again: the repaired object
    // is read; the missing one stays in the record.
    let fixed = hour_of_requests(9, 100, "fixed");
    put_log(&s3, bucket, bad_key, &fixed).await;
    let run = ingest_queue(&env, &queue, lake, &["--dead-letter-queue", &dead_letters]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    let s = summary(&run);
    assert_eq!(s["objects_retried"], 1);
    assert_eq!(s["objects_ingested"], 1);
    assert_eq!(s["unreadable_resolved"], 1);
    assert_eq!(s["unreadable_outstanding"], 1);
    assert_eq!(s["unreadable"][0]["object"], uri(&gone.key));
    assert_eq!(
        s["unreadable"][0]["reason"],
        "no longer exists at the source"
    );
    let mut with_fixed: Vec<&Vec<Req>> = good.iter().collect();
    with_fixed.push(&fixed);
    assert_eq!(usage(&[], lake, &[]).await, expected(&all(&with_fixed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_dead_letter_queue_failed_messages_are_left_to_the_redrive_policy() {
    let s3 = TestS3::start().await;
    let bucket = "sqs-redrive";
    s3.create_bucket(bucket).await;
    let reqs = hour_of_requests(8, 120, "rd");
    let good = put_log(&s3, bucket, "cf/E2RD.2025-10-05-08.good.gz", &reqs).await;
    let bad = put(
        &s3,
        bucket,
        "cf/E2RD.2025-10-05-08.bad.gz",
        b"\x1f\x8b\x08\x00junk".to_vec(),
    )
    .await;
    let dead_letters = create_queue("redrive-dlq", 30, None).await;
    // Handed out twice at most, then moved to the dead-letter queue. A run
    // keeps what it leaves hidden until it ends: one receipt each.
    let queue = create_queue("redrive", 1, Some((&dead_letters, 2))).await;
    let bodies = [direct(&[&good]), eventbridge(&bad), "{}".to_string()];
    for body in &bodies {
        send(&queue, body).await;
    }
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let env = s3.env();
    let want = expected(&reqs.iter().collect::<Vec<_>>());
    for (round, (received, redelivered, left)) in
        [(3, 0, 2), (2, 2, 2), (0, 0, 0)].into_iter().enumerate()
    {
        let run = ingest_queue(&env, &queue, lake, &[]).await;
        assert_eq!(run.code, 3, "round {round}: {}", run.stderr);
        let q = &summary(&run)["queue"];
        assert_eq!(q["messages_received"], received, "round {round}");
        assert_eq!(q["messages_redelivered"], redelivered, "round {round}");
        assert_eq!(q["messages_left"], left, "round {round}");
        assert_eq!(q["messages_dead_lettered"], 0, "round {round}");
        assert_eq!(usage(&[], lake, &[]).await, want, "round {round}");
        // Past the visibility timeout, what was left comes back.
        tokio::time::sleep(Duration::from_millis(1300)).await;
    }
    let dead: BTreeSet<String> = drain(&dead_letters)
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    assert_eq!(dead, BTreeSet::from([bodies[1].clone(), bodies[2].clone()]));
    assert_eq!(queue_counts(&queue).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_ingests_an_object_whose_notification_never_came() {
    let s3 = TestS3::start().await;
    let bucket = "sqs-reconcile";
    s3.create_bucket(bucket).await;
    let mut requests = Vec::new();
    let mut puts = Vec::new();
    for i in 0..4u32 {
        let reqs = hour_of_requests(14, 90, &format!("r{i}"));
        let key = format!("cf/E2REC.2025-10-05-14.{i:04}.gz");
        puts.push(put_log(&s3, bucket, &key, &reqs).await);
        requests.push(reqs);
    }
    let queue = create_queue("reconcile", 30, None).await;
    // No notification for the last object.
    for body in [
        direct(&[&puts[0]]),
        sns(&direct(&[&puts[1]])),
        eventbridge(&puts[2]),
    ] {
        send(&queue, &body).await;
    }
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let listing = format!("s3://{bucket}/cf/");
    let run = ingest_queue(&s3.env(), &queue, lake, &["--reconcile", &listing]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let runs = summaries(&run);
    assert_eq!(runs.len(), 2, "{}", run.stdout);
    assert_eq!(runs[0]["source"], format!("sqs://{queue}"));
    assert_eq!(runs[0]["objects_ingested"], 3);
    assert_eq!(runs[1]["source"], listing);
    assert_eq!(runs[1]["objects_listed"], 4);
    // The S3 test server lists no ETags, so the listing cannot match the
    // three objects the notifications recorded (S3 lists the ETags its
    // events carry, and skips them): it reads them again, and the merge
    // finds every one of their requests in the lake already. Only the
    // object no notification named adds rows.
    assert_eq!(runs[1]["rows_written"], 90);
    assert_eq!(runs[1]["duplicates"], 270);
    assert_eq!(
        usage(&[], lake, &[]).await,
        expected(&all(&requests.iter().collect::<Vec<_>>()))
    );
    assert_eq!(queue_counts(&queue).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_stays_hidden_while_its_slow_object_is_read() {
    // Every read of this bucket's objects meets a 503, a reset, a body cut
    // short and a 3 s stall before it succeeds: longer than the queue's 2 s
    // visibility timeout.
    let bucket = "sqs-slow";
    let s3 = TestS3::start_faulty(bucket).await;
    s3.create_bucket(bucket).await;
    let reqs = hour_of_requests(7, 120, "slow");
    let key = "cf/E2SLOW.2025-10-05-07.0001.gz";
    let p = put_log(&s3, bucket, key, &reqs).await;
    let queue = create_queue("slow", 2, None).await;
    send(&queue, &direct(&[&p])).await;
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = lake_dir.path().to_str().unwrap();
    let mut env = s3.env();
    env.push(("EDGEMETER_S3_READ_TIMEOUT_SECS", "10".into()));
    let started = Instant::now();
    let run = ingest_queue(&env, &queue, lake, &[]);
    // Meanwhile, another consumer's view: once the run has the message,
    // the queue must never show it visible again.
    let watch = async {
        let mut held = false;
        let mut visible_again = 0;
        while started.elapsed() < Duration::from_secs(30) {
            let (visible, hidden) = queue_counts(&queue).await;
            held |= hidden > 0;
            if held && visible > 0 {
                visible_again += 1;
            }
            if held && visible == 0 && hidden == 0 {
                break; // deleted
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (held, visible_again)
    };
    let (run, (held, visible_again)) = tokio::join!(run, watch);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(held, "the watcher never saw the message held");
    assert_eq!(
        visible_again, 0,
        "the message became visible while its object was read"
    );
    let s = summary(&run);
    let q = &s["queue"];
    assert_eq!(q["messages_received"], 1);
    assert_eq!(q["messages_received_again"], 0);
    assert_eq!(q["messages_deleted"], 1);
    assert!(q["visibility_extensions"].as_u64().unwrap() >= 2, "{q}");
    // The read took several visibility timeouts: without extensions the
    // message would have come back.
    assert!(s["elapsed_ms"].as_u64().unwrap() >= 3000, "{s}");
    assert!(s3.get_attempts(bucket, key) >= 4);
    assert_eq!(
        usage(&[], lake, &[]).await,
        expected(&reqs.iter().collect::<Vec<_>>())
    );
    // Asked by another consumer now, the queue has nothing.
    let later = sqs()
        .receive_message()
        .queue_url(&queue)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .unwrap();
    assert!(later.messages().is_empty());
}
