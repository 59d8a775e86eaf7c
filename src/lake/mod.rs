//! The lake, on local disk or S3, behind one `object_store` interface: three
//! Delta Lake tables and a few small records of edgemeter's own.
//!
//! Where each table and record lies is [`layout`]'s.
//!
//! This module owns locations and storage; [`delta`] owns opening tables and
//! committing to them, [`partition`] the merge of new rows into an hour,
//! [`rollup`] the hourly sums, [`ingested`] the record of committed objects,
//! [`maintain`] checkpoints, compaction and vacuum, [`migrate`] the
//! conversion of lakes written before Delta.

pub(crate) mod checkpoint;
pub(crate) mod daily;
pub(crate) mod day_totals;
pub(crate) mod delta;
pub(crate) mod ingested;
pub(crate) mod keying;
pub(crate) mod layout;
pub(crate) mod log_store;
pub(crate) mod maintain;
pub(crate) mod meter_days;
pub(crate) mod migrate;
pub(crate) mod parquet_io;
pub(crate) mod partition;
pub(crate) mod retention;
pub mod rollup;
pub(crate) mod runs;
pub(crate) mod stores;
pub(crate) mod unreadable;

use crate::aws::S3Settings;
use crate::error::{Error, Result};
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AwsCredential};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use std::sync::Arc;
use url::Url;

/// The raw rows' Delta table.
pub(crate) const REQUESTS_TABLE: delta::TableDef = delta::TableDef {
    dir: layout::REQUESTS_DIR,
    file_schema: crate::schema::requests_schema,
    partition_by: &crate::schema::PARTITION_COLUMNS,
    stats_columns: &partition::STATS_COLUMNS,
};

/// A lake: where it is and how to reach it.
#[derive(Debug, Clone)]
pub(crate) struct Lake {
    store: Arc<dyn ObjectStore>,
    /// The lake's root inside `store`.
    root: Path,
    /// The lake's root as a URL ending in `/` (`file:///…/` or `s3://bucket/prefix/`).
    url: Url,
}

impl Lake {
    /// Opens the lake at a directory or `s3://bucket/prefix/`, which must
    /// already be one: every command but `ingest` and `init` reads or
    /// maintains a lake, and a mistyped `--lake` is an error naming the path,
    /// never a new empty lake.
    pub(crate) async fn open(location: &str, s3: &S3Settings) -> Result<Self> {
        if !location.starts_with("s3://") && !std::path::Path::new(location).is_dir() {
            return Err(Error::NotALake {
                location: location.to_string(),
                reason: "no such directory".into(),
            });
        }
        let lake = Self::locate(location, s3, false).await?;
        if !lake.is_lake().await? {
            return Err(Error::NotALake {
                location: location.to_string(),
                reason: "it holds no requests table and no edgemeter records".into(),
            });
        }
        Ok(lake)
    }

    /// Opens the lake at a location, starting a new one there when there is
    /// none (`ingest` and `init`).
    pub(crate) async fn open_or_create(location: &str, s3: &S3Settings) -> Result<Self> {
        Self::locate(location, s3, true).await
    }

    /// True when the location holds a lake: a `requests` table (or the files
    /// of a lake written before Delta) or edgemeter's own records.
    async fn is_lake(&self) -> Result<bool> {
        use futures::StreamExt;
        // The common case without a listing of every data file (on a local
        // disk the listing below `stat`s up to 1,024 files before its first).
        if delta::has_log(self, &REQUESTS_TABLE).await? {
            return Ok(true);
        }
        for dir in [layout::REQUESTS_DIR, layout::RECORDS_DIR] {
            let mut listed = self.store.list(Some(&self.path(dir)));
            match listed.next().await {
                Some(Ok(_)) => return Ok(true),
                Some(Err(object_store::Error::NotFound { .. })) | None => {}
                Some(Err(e)) => return Err(e.into()),
            }
        }
        Ok(false)
    }

    async fn locate(location: &str, s3: &S3Settings, create: bool) -> Result<Self> {
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let prefix = prefix.trim_end_matches('/');
            if bucket.is_empty() {
                return Err(Error::Config("an s3:// lake needs a bucket".into()));
            }
            let store = s3_store(bucket, s3).await?;
            let url = if prefix.is_empty() {
                format!("s3://{bucket}/")
            } else {
                format!("s3://{bucket}/{prefix}/")
            };
            let url = Url::parse(&url)
                .map_err(|e| Error::Config(format!("bad lake location {location}: {e}")))?;
            Ok(Self {
                store: Arc::new(store),
                root: Path::from(prefix),
                url,
            })
        } else {
            let dir = std::path::Path::new(location);
            if create {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            let dir = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
            let url = Url::from_directory_path(&dir)
                .map_err(|()| Error::Config(format!("bad lake directory {location}")))?;
            let root = Path::from_url_path(url.path())
                .map_err(|e| Error::Config(format!("bad lake directory {location}: {e}")))?;
            Ok(Self {
                store: Arc::new(LocalFileSystem::new()),
                root,
                url,
            })
        }
    }

    /// The underlying store, whose root is the file system's or the bucket's.
    pub(crate) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The lake's location as a user gave it (a directory or `s3://…`).
    pub(crate) fn display_location(&self) -> String {
        match self.url.scheme() {
            "file" => self
                .url
                .to_file_path()
                .map_or_else(|()| self.url.to_string(), |p| p.display().to_string()),
            _ => self.url.to_string(),
        }
    }

    /// True when a directory below the root holds any file other than a
    /// Delta log's.
    pub(crate) async fn holds_files_under(&self, relative: &str) -> Result<bool> {
        use futures::TryStreamExt;
        let mut listed = self.store.list(Some(&self.path(relative)));
        while let Some(meta) = listed.try_next().await? {
            if !layout::in_delta_log(meta.location.as_ref()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// True when a source location (`s3://bucket/key` or an absolute local
    /// path) is one of the lake's own files.
    pub(crate) fn holds_location(&self, location: &str) -> bool {
        match self.url.scheme() {
            "file" => self
                .url
                .to_file_path()
                .is_ok_and(|root| std::path::Path::new(location).starts_with(&root)),
            _ => location.starts_with(self.url.as_str()),
        }
    }

    /// The lake root URL, ending in `/`.
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// The URL of a table directory, ending in `/`.
    pub(crate) fn table_url(&self, table: &str) -> String {
        format!("{}{table}/", self.url)
    }

    /// A path below the lake root.
    pub(crate) fn path(&self, relative: &str) -> Path {
        relative
            .split('/')
            .filter(|p| !p.is_empty())
            .fold(self.root.clone(), |p, part| p.join(part))
    }
}

/// An S3 store for the lake, with aws-config's credentials and endpoint settings.
async fn s3_store(bucket: &str, settings: &S3Settings) -> Result<object_store::aws::AmazonS3> {
    let config = crate::aws::shared_config(settings).await;
    s3_store_with(bucket, settings, &config)
}

/// An S3 store for a bucket from aws-config's configuration, loaded once
/// ([`crate::aws::shared_config`]) for every bucket a process reaches.
fn s3_store_with(
    bucket: &str,
    settings: &S3Settings,
    config: &aws_config::SdkConfig,
) -> Result<object_store::aws::AmazonS3> {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(
            config
                .region()
                .map_or_else(|| "us-east-1".to_string(), |r| r.to_string()),
        )
        .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch)
        // As the source's SDK client: a few attempts with backoff, then the
        // error, instead of object_store's ten over three minutes (an
        // unreachable lake fails as fast as an unreachable source).
        .with_retry(object_store::RetryConfig {
            backoff: Default::default(),
            max_retries: 5,
            retry_timeout: std::time::Duration::from_secs(30),
        })
        .with_client_options(
            object_store::ClientOptions::new()
                .with_connect_timeout(std::time::Duration::from_secs(10)),
        );
    let endpoint = settings
        .endpoint_url
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
    if let Some(endpoint) = endpoint {
        builder = builder
            .with_allow_http(endpoint.starts_with("http://"))
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false);
    }
    if let Some(provider) = config.credentials_provider() {
        builder = builder.with_credentials(Arc::new(AwsConfigCredentials(provider)));
    }
    Ok(builder.build()?)
}

/// Bridges aws-config's credential chain (env, profiles, SSO, IMDS) into object_store.
#[derive(Debug)]
struct AwsConfigCredentials(aws_credential_types::provider::SharedCredentialsProvider);

#[async_trait::async_trait]
impl object_store::CredentialProvider for AwsConfigCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        use aws_credential_types::provider::ProvideCredentials;
        let creds =
            self.0
                .provide_credentials()
                .await
                .map_err(|e| object_store::Error::Generic {
                    store: "S3",
                    source: Box::new(e),
                })?;
        Ok(Arc::new(AwsCredential {
            key_id: creds.access_key_id().to_string(),
            secret_key: creds.secret_access_key().to_string(),
            token: creds.session_token().map(str::to_string),
        }))
    }
}

/// Writes a whole file to a local path or an `s3://bucket/key` location
/// (exports and their manifests), atomically either way; `-` is stdout.
pub(crate) async fn write_output(
    location: &str,
    bytes: bytes::Bytes,
    s3: &S3Settings,
) -> Result<()> {
    use object_store::{ObjectStoreExt, PutPayload};
    if location == "-" {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        return out
            .write_all(&bytes)
            .and_then(|()| out.flush())
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::BrokenPipe => Error::OutputClosed,
                _ => Error::io("<stdout>", e),
            });
    }
    if let Some(rest) = location.strip_prefix("s3://") {
        let (bucket, key) = rest
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
            .ok_or_else(|| {
                Error::Config(format!(
                    "{location}: an s3:// output needs a bucket and a key"
                ))
            })?;
        let store = s3_store(bucket, s3).await?;
        store.put(&Path::from(key), PutPayload::from(bytes)).await?;
        Ok(())
    } else {
        let path = std::path::Path::new(location);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let tmp = path.with_extension("edgemeter-tmp");
        std::fs::write(&tmp, &bytes).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    }
}
