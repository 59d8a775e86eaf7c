//! The key secret in AWS Secrets Manager: `init --secret-manager` stores a new
//! one there (never in the lake, never printed), and runs read it through
//! `EDGEMETER_KEY_SECRET_ID`. Against moto's server over HTTP on loopback,
//! started here; the secret is read back with boto3, another client.

use crate::cli::{edgemeter, ingest, usage};
use crate::hardening::walk;
use crate::logs::{expected_under_secret, gzip, hour_of_requests, log_text};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// moto's server (and boto3, which it depends on), from PyPI unless Python
/// already has them.
pub fn ensure_moto() -> &'static Path {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY.get_or_init(|| {
        crate::delta::ensure_python_packages(
            "pydeps-moto",
            "moto.server, boto3",
            &["moto[server]==5.2.1"],
        )
    })
}

/// moto's server on a free loopback port, stopped when dropped.
struct Moto {
    child: std::process::Child,
    url: String,
}

impl Moto {
    async fn start() -> Self {
        let pythonpath = ensure_moto();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .env("PYTHONPATH", pythonpath)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self {
                    child,
                    url: format!("http://127.0.0.1:{port}"),
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("moto's server did not start on port {port}");
    }

    /// What edgemeter needs to reach it.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", self.url.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ]
    }

    /// The secret's value, read with boto3.
    fn secret_value(&self, name: &str) -> String {
        let script = format!(
            "import boto3; print(boto3.client('secretsmanager', endpoint_url='{}', region_name='us-east-1', \
             aws_access_key_id='testing', aws_secret_access_key='testing')\
             .get_secret_value(SecretId='{name}')['SecretString'])",
            self.url
        );
        let out = std::process::Command::new("python3")
            .args(["-c", &script])
            .env("PYTHONPATH", ensure_moto())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_stores_the_secret_in_secrets_manager_and_runs_read_it_there() {
    let moto = Moto::start().await;
    let aws = moto.env();
    let logs = tempfile::tempdir().unwrap();
    let source = logs.path().to_str().unwrap();
    let reqs = hour_of_requests(9, 80, "sm");
    std::fs::write(
        logs.path().join("E2SM.2025-10-05-09.a.gz"),
        gzip(&log_text(&reqs)),
    )
    .unwrap();
    let lakes = tempfile::tempdir().unwrap();
    let lake = lakes.path().join("lake");
    let lake = lake.to_str().unwrap();

    let init = edgemeter(
        &aws,
        &[
            "init",
            "--lake",
            lake,
            "--secret-manager",
            "edgemeter/lake-a",
        ],
    )
    .await;
    assert_eq!(init.code, 0, "{}", init.stderr);
    assert!(
        init.stdout
            .contains("EDGEMETER_KEY_SECRET_ID=edgemeter/lake-a"),
        "{}",
        init.stdout
    );
    let secret = moto.secret_value("edgemeter/lake-a");
    assert_eq!(secret.len(), 64, "{secret}");
    assert!(!init.stdout.contains(&secret) && !init.stderr.contains(&secret));
    for file in walk(Path::new(lake)) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds the secret",
            file.display()
        );
    }

    // A run reads the secret from Secrets Manager: ids are HMAC-SHA256 under
    // it, computed here independently.
    let mut with_id = aws.clone();
    with_id.push(("EDGEMETER_KEY_SECRET_ID", "edgemeter/lake-a".into()));
    let run = ingest(&with_id, source, lake, &["--full-listing"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let want = expected_under_secret(&reqs.iter().collect::<Vec<_>>(), &secret);
    assert_eq!(usage(&with_id, lake, &[]).await, want);

    // A secret that is not there stops the command before it reads anything.
    let mut missing = aws.clone();
    missing.push(("EDGEMETER_KEY_SECRET_ID", "edgemeter/nope".into()));
    let refused = ingest(&missing, source, lake, &["--full-listing"]).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("EDGEMETER_KEY_SECRET_ID=edgemeter/nope")
            && refused.stderr.contains("ResourceNotFound"),
        "{}",
        refused.stderr
    );
    // Without it, the lake refuses the run (it records the secret's fingerprint).
    let unkeyed = ingest(&aws, source, lake, &["--full-listing"]).await;
    assert_ne!(unkeyed.code, 0, "{}", unkeyed.stderr);

    // init never replaces a secret.
    let other = lakes.path().join("other");
    let again = edgemeter(
        &aws,
        &[
            "init",
            "--lake",
            other.to_str().unwrap(),
            "--secret-manager",
            "edgemeter/lake-a",
        ],
    )
    .await;
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(
        again.stderr.contains("already holds a secret"),
        "{}",
        again.stderr
    );
    assert_eq!(moto.secret_value("edgemeter/lake-a"), secret);
}
