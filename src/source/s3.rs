//! Log objects in S3 (or an S3-compatible server), read with aws-sdk-s3 through
//! aws-config's standard credential chain.
//!
//! Requests are retried by the SDK (standard mode: throttling, 5xx, timeouts);
//! reading a body is retried here, because a connection cut mid-body surfaces
//! after the SDK has returned. A body shorter than its Content-Length is never
//! handed on as a complete object.

use super::LogObject;
use crate::aws::{S3Settings, shared_config};
use crate::error::{Error, Result};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Attempts to read one object's body before giving up on it.
const BODY_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone)]
pub(crate) struct S3Source {
    client: Client,
    bucket: String,
    prefix: String,
}

/// An S3 client from [`shared_config`], with path-style addressing for custom endpoints.
pub(crate) fn client(shared: &aws_config::SdkConfig) -> Client {
    let custom_endpoint = shared.endpoint_url().is_some();
    let config = aws_sdk_s3::config::Builder::from(shared)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(6)
                .with_initial_backoff(Duration::from_millis(100)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(read_timeout_secs()))
                .operation_attempt_timeout(Duration::from_secs(300))
                .build(),
        )
        .force_path_style(custom_endpoint)
        .build();
    Client::from_conf(config)
}

/// Seconds S3 may take to start answering before the attempt is retried
/// (`EDGEMETER_S3_READ_TIMEOUT_SECS`, default 60).
fn read_timeout_secs() -> u64 {
    std::env::var("EDGEMETER_S3_READ_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(60)
}

/// Objects of any bucket, by location: those notifications name.
#[derive(Debug, Clone)]
pub(crate) struct S3Objects {
    client: Client,
}

impl S3Objects {
    pub(crate) async fn new(settings: &S3Settings) -> Self {
        Self {
            client: client(&shared_config(settings).await),
        }
    }

    /// The bucket of `uri` as a source (`s3://bucket/key`).
    fn bucket(&self, uri: &str) -> std::result::Result<S3Source, String> {
        let bucket = uri
            .strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
            .map(|(bucket, _)| bucket)
            .filter(|bucket| !bucket.is_empty())
            .ok_or_else(|| format!("{uri} is not an s3://bucket/key location"))?;
        Ok(S3Source {
            client: self.client.clone(),
            bucket: bucket.to_string(),
            prefix: String::new(),
        })
    }

    /// The object at `uri` now (HeadObject): `Ok(None)` when it is gone.
    pub(crate) async fn stat(&self, uri: &str) -> std::result::Result<Option<LogObject>, String> {
        self.bucket(uri)?.stat(uri).await
    }

    pub(crate) async fn fetch(&self, object: &LogObject) -> Result<Bytes> {
        let source = self.bucket(&object.uri).map_err(|reason| Error::Fetch {
            object: object.uri.clone(),
            reason,
        })?;
        source.fetch(object).await
    }
}

impl S3Source {
    pub(crate) async fn new(bucket: &str, prefix: &str, settings: &S3Settings) -> Result<Self> {
        if bucket.is_empty() {
            return Err(Error::Config("an s3:// source needs a bucket".into()));
        }
        Ok(Self {
            client: client(&shared_config(settings).await),
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// Lists every object under the prefix, page by page.
    pub(crate) async fn list(&self) -> Result<Vec<LogObject>> {
        Ok(self.list_prefix(&self.prefix, None).await?.0)
    }

    /// Lists CloudFront-named objects of the days from `since` on: one listing
    /// of the distributions under the prefix, then one per distribution and day.
    ///
    /// Legacy CloudFront files sit directly under the prefix. When anything
    /// under it lies in a deeper "directory" (v2 `AWSLogs/…/YYYY/MM/DD/HH/`,
    /// Hive-style `year=/month=/…`, Firehose `YYYY/MM/DD/HH/`), the prefix is
    /// listed in full and filtered by the hour in each path instead, so no
    /// layout can hide objects from a windowed run.
    pub(crate) async fn list_since(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<LogObject>> {
        let (_, distributions) = self.list_prefix(&self.prefix, Some(".")).await?;
        let nested = distributions
            .iter()
            .any(|d| d[self.prefix.len().min(d.len())..].contains('/'));
        if nested {
            return self.list().await;
        }
        let today = now.date_naive();
        let mut out = Vec::new();
        for distribution in distributions {
            let mut day = since.date_naive();
            while day <= today.succ_opt().unwrap_or(today) {
                let prefix = format!("{distribution}{}-", day.format("%Y-%m-%d"));
                out.extend(self.list_prefix(&prefix, None).await?.0);
                day = match day.succ_opt() {
                    Some(next) => next,
                    None => break,
                };
            }
        }
        Ok(out)
    }

    /// Objects under `prefix`, and the common prefixes up to `delimiter`.
    async fn list_prefix(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> Result<(Vec<LogObject>, Vec<String>)> {
        let location = format!("s3://{}/{}", self.bucket, prefix);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_delimiter(delimiter.map(str::to_string))
            .into_paginator()
            .send();
        let mut out = Vec::new();
        let mut prefixes = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Error::List {
                location: location.clone(),
                reason: error_chain(&e),
            })?;
            prefixes.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string)),
            );
            for obj in page.contents() {
                let Some(key) = obj.key() else { continue };
                if key.ends_with('/') {
                    continue;
                }
                out.push(LogObject {
                    uri: format!("s3://{}/{}", self.bucket, key),
                    etag: obj
                        .e_tag()
                        .unwrap_or_default()
                        .trim_matches('"')
                        .to_string(),
                    size: obj.size().unwrap_or(0).max(0) as u64,
                });
            }
        }
        Ok((out, prefixes))
    }

    pub(crate) fn holds(&self, uri: &str) -> bool {
        uri.strip_prefix("s3://")
            .and_then(|rest| rest.strip_prefix(self.bucket.as_str()))
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|key| key.starts_with(&self.prefix))
    }

    /// `uri`'s key below the prefix.
    pub(crate) fn name_of<'a>(&self, uri: &'a str) -> &'a str {
        uri.strip_prefix("s3://")
            .and_then(|rest| rest.strip_prefix(self.bucket.as_str()))
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|key| key.strip_prefix(self.prefix.as_str()))
            .map_or(uri, |name| name.trim_start_matches('/'))
    }

    /// The object at `uri` now (HeadObject): `Ok(None)` when it is gone.
    pub(crate) async fn stat(&self, uri: &str) -> std::result::Result<Option<LogObject>, String> {
        let Some(key) = uri.strip_prefix(&format!("s3://{}/", self.bucket)) else {
            return Err(format!("not in bucket {}", self.bucket));
        };
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => Ok(Some(LogObject {
                uri: uri.to_string(),
                etag: head
                    .e_tag()
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string(),
                size: head.content_length().unwrap_or(0).max(0) as u64,
            })),
            Err(e) => {
                let text = error_chain(&e);
                match e.into_service_error() {
                    err if err.is_not_found() => Ok(None),
                    _ => Err(text),
                }
            }
        }
    }

    /// Reads one object whole, retrying cut-short bodies with backoff and jitter.
    pub(crate) async fn fetch(&self, object: &LogObject) -> Result<Bytes> {
        let key = object
            .uri
            .strip_prefix(&format!("s3://{}/", self.bucket))
            .unwrap_or(&object.uri);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.fetch_once(key).await {
                Ok(bytes) => return Ok(bytes),
                Err(reason) if attempt < BODY_ATTEMPTS => {
                    tracing::warn!(object = %object.uri, attempt, %reason, "retrying object read");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(reason) => {
                    return Err(Error::Fetch {
                        object: object.uri.clone(),
                        reason,
                    });
                }
            }
        }
    }

    async fn fetch_once(&self, key: &str) -> Result<Bytes, String> {
        let resp = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        let expected = resp.content_length();
        let body = resp
            .body
            .collect()
            .await
            .map_err(|e| format!("body read failed: {}", error_chain(&e)))?
            .into_bytes();
        match expected {
            Some(n) if n >= 0 && body.len() as u64 != n as u64 => {
                Err(format!("body cut short: {} of {n} bytes", body.len()))
            }
            _ => Ok(body),
        }
    }
}

/// Exponential backoff with full jitter: up to 100 ms · 2^(attempt-1), capped at 5 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let cap = (100u64 << attempt.saturating_sub(1).min(6)).min(5_000);
    let jitter = uuid::Uuid::new_v4().as_u128() as u64 % (cap + 1);
    Duration::from_millis(jitter.max(cap / 4))
}

/// An error and all its sources on one line.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
