//! A real S3-compatible server over HTTP on loopback: s3s serving a temp
//! directory through s3s-fs, started inside the test process.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use bytes::Bytes;

use http::{Method, Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tempfile::TempDir;
use tokio::net::TcpListener;

pub const ACCESS_KEY: &str = "AKIDEDGEMETERTEST";
pub const SECRET_KEY: &str = "edgemeter-test-secret";

pub struct TestS3 {
    pub endpoint: String,
    root: TempDir,
    task: tokio::task::JoinHandle<()>,
    /// Requests seen per path and query, by the fault-injecting front.
    attempts: Arc<Mutex<HashMap<String, u32>>>,
}

impl Drop for TestS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestS3 {
    /// A well-behaved server.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// A server whose reads from `bucket` go through a fault-injecting front
    /// (see [`FaultyFront`]); other buckets behave.
    pub async fn start_faulty(bucket: &str) -> Self {
        Self::start_with(Some(bucket.to_string())).await
    }

    async fn start_with(faulty_bucket: Option<String>) -> Self {
        let root = tempfile::tempdir().unwrap();
        let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let attempts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let service = FaultyFront {
            inner: builder.build(),
            faulty_bucket,
            attempts: attempts.clone(),
            conditional_puts: Arc::default(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = ConnBuilder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Self {
            endpoint,
            root,
            task,
            attempts,
        }
    }

    /// GET requests the faulty bucket received for `bucket/key` objects.
    pub fn get_attempts(&self, bucket: &str, key: &str) -> u32 {
        let path = format!("/{bucket}/{key}?x-id=GetObject");
        self.attempts
            .lock()
            .unwrap()
            .get(&path)
            .copied()
            .unwrap_or(0)
    }

    /// The directory s3s-fs serves (one subdirectory per bucket).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn client(&self) -> Client {
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .build();
        Client::from_conf(config)
    }

    pub async fn create_bucket(&self, bucket: &str) {
        self.client()
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
    }

    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) {
        self.client()
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
    }

    /// Environment for an `edgemeter` process talking to this server, isolated
    /// from any AWS configuration of the machine.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_CONFIG_FILE", "/nonexistent/edgemeter-test".into()),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/edgemeter-test".into(),
            ),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("EDGEMETER_ENDPOINT_URL", self.endpoint.clone()),
        ]
    }
}

/// Injects S3 faults in front of the real server, per object, in a fixed
/// sequence, so every GetObject of a key sees: a 503 SlowDown, then a reset
/// connection, then a body cut short (Content-Length promises more bytes than
/// are sent), then a stall of 3 s before answering (longer than the read
/// timeout the test sets), and only then the object. The first ListObjectsV2 of each prefix
/// gets a 503 too.
#[derive(Clone)]
pub struct FaultyFront {
    inner: s3s::service::S3Service,
    faulty_bucket: Option<String>,
    attempts: Arc<Mutex<HashMap<String, u32>>>,
    /// Held through every conditional PUT: s3s-fs checks `If-None-Match`
    /// before it writes, so two creates racing for one key could both pass.
    /// One at a time, its check is atomic, as S3's is.
    conditional_puts: Arc<tokio::sync::Mutex<()>>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type FrontBody = BoxBody<Bytes, BoxError>;

enum Fault {
    SlowDown,
    Reset,
    CutShort,
    Stall,
}

impl FaultyFront {
    fn fault_for(&self, req: &Request<Incoming>) -> Option<Fault> {
        let bucket = req.uri().path().trim_start_matches('/').split('/').next();
        if req.method() != Method::GET || bucket != self.faulty_bucket.as_deref() {
            return None;
        }
        let key = format!("{}?{}", req.uri().path(), req.uri().query().unwrap_or(""));
        let is_list = req.uri().query().is_some_and(|q| q.contains("list-type=2"));
        let is_object = req.uri().path().trim_start_matches('/').contains('/');
        let n = {
            let mut attempts = self.attempts.lock().unwrap();
            let n = attempts.entry(key).or_insert(0);
            *n += 1;
            *n
        };
        match (is_list, is_object, n) {
            (true, _, 1) => Some(Fault::SlowDown),
            (false, true, 1) => Some(Fault::SlowDown),
            (false, true, 2) => Some(Fault::Reset),
            (false, true, 3) => Some(Fault::CutShort),
            (false, true, 4) => Some(Fault::Stall),
            _ => None,
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for FaultyFront {
    type Response = Response<FrontBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let fault = self.fault_for(&req);
        let inner = self.inner.clone();
        let conditional = req.method() == Method::PUT
            && (req.headers().contains_key("if-none-match")
                || req.headers().contains_key("if-match"));
        let conditional_puts = self.conditional_puts.clone();
        Box::pin(async move {
            let _one_at_a_time = match conditional {
                true => Some(conditional_puts.lock_owned().await),
                false => None,
            };
            match fault {
                Some(Fault::SlowDown) => {
                    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                    let body = Full::new(Bytes::from(xml)).map_err(|e| match e {}).boxed();
                    Ok(Response::builder().status(503).body(body).unwrap())
                }
                Some(Fault::Reset) => Err("injected connection reset".into()),
                Some(Fault::Stall) => {
                    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                    let resp = hyper::service::Service::call(&inner, req).await?;
                    let (parts, body) = resp.into_parts();
                    Ok(Response::from_parts(
                        parts,
                        body.map_err(BoxError::from).boxed(),
                    ))
                }
                Some(Fault::CutShort) => {
                    let resp = hyper::service::Service::call(&inner, req).await?;
                    let (parts, body) = resp.into_parts();
                    let data = BodyExt::collect(body).await?.to_bytes();
                    let half = data.slice(..data.len() / 2);
                    // The head and half the body reach the client before the
                    // connection drops.
                    let frames = futures::StreamExt::chain(
                        futures::stream::iter([Ok(Frame::data(half))]),
                        futures::stream::once(async {
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            Err::<Frame<Bytes>, BoxError>("injected cut".into())
                        }),
                    );
                    Ok(Response::from_parts(parts, StreamBody::new(frames).boxed()))
                }
                None => {
                    let resp = hyper::service::Service::call(&inner, req).await?;
                    let (parts, body) = resp.into_parts();
                    Ok(Response::from_parts(
                        parts,
                        body.map_err(BoxError::from).boxed(),
                    ))
                }
            }
        })
    }
}
