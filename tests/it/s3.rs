//! A real S3-compatible server over HTTP on loopback: s3s serving a temp
//! directory through s3s-fs, started inside the test process.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use std::path::Path;
use tempfile::TempDir;
use tokio::net::TcpListener;

pub const ACCESS_KEY: &str = "AKIDEDGEMETERTEST";
pub const SECRET_KEY: &str = "edgemeter-test-secret";

pub struct TestS3 {
    pub endpoint: String,
    root: TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestS3 {
    pub async fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
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
        }
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
