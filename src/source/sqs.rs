//! An SQS queue of S3 event notifications, read with aws-sdk-sqs through
//! the same aws-config credential chain as S3: receiving (long polling),
//! deleting, extending a message's visibility, and sending to a
//! dead-letter queue. What a message means is `notification`'s; when a
//! message may be deleted is the ingest's.
//!
//! A queue is named by its URL as SQS gives it; requests go to that URL's
//! host (so a local SQS-compatible server needs no other setting), signed
//! for the region an AWS queue URL names (`sqs.<region>.amazonaws.com`),
//! else for the configured one. `AWS_ENDPOINT_URL_SQS`, when set, is where
//! requests go instead (a VPC endpoint, say).

use crate::aws::{S3Settings, shared_config};
use crate::error::{Error, Result};
use crate::source::s3::error_chain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use std::time::Duration;

/// The prefix of a queue source: `sqs://` then the queue URL.
pub(crate) const SCHEME: &str = "sqs://";

/// A queue as a source names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueueUrl {
    /// The queue URL as SQS gives it (`https://sqs.eu-west-1.amazonaws.com/123456789012/logs`).
    pub(crate) url: String,
    /// Where requests go: the URL's scheme, host and port.
    endpoint: String,
    /// The region an AWS queue URL names.
    region: Option<String>,
}

impl QueueUrl {
    /// A queue source, `sqs://https://…` (`sqs://` then the queue URL;
    /// `sqs://sqs.eu-west-1.amazonaws.com/…` without a scheme is https):
    /// `None` for other sources, `Err` for a queue URL that is not one.
    pub(crate) fn of_source(source: &str) -> Option<Result<Self>> {
        let rest = source.strip_prefix(SCHEME)?;
        let url = if rest.starts_with("http://") || rest.starts_with("https://") {
            rest.to_string()
        } else {
            format!("https://{rest}")
        };
        Some(Self::parse(&url).map_err(|reason| {
            Error::Config(format!(
                "{source}: {reason}; give sqs:// then the queue URL, e.g. \
                 sqs://https://sqs.eu-west-1.amazonaws.com/123456789012/logs"
            ))
        }))
    }

    /// A queue URL (`https://host/account/name`).
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("a queue URL is http or https".into());
        }
        let Some(host) = parsed.host_str() else {
            return Err("a queue URL names a host".into());
        };
        let path: Vec<&str> = parsed.path().trim_matches('/').split('/').collect();
        if path.len() != 2 || path.iter().any(|p| p.is_empty()) {
            return Err("a queue URL's path is /ACCOUNT/QUEUE".into());
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err("a queue URL has no query or fragment".into());
        }
        let endpoint = match parsed.port() {
            Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
            None => format!("{}://{host}", parsed.scheme()),
        };
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            endpoint,
            region: region_of_host(host),
        })
    }
}

/// The region of an AWS queue host: `sqs.eu-west-1.amazonaws.com`, the
/// legacy `eu-west-1.queue.amazonaws.com`, and `queue.amazonaws.com`
/// (us-east-1).
fn region_of_host(host: &str) -> Option<String> {
    let labels: Vec<&str> = host.split('.').collect();
    let aws = host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn");
    match labels.as_slice() {
        _ if !aws => None,
        ["sqs", region, ..] => Some(region.to_string()),
        ["queue", ..] => Some("us-east-1".into()),
        [region, "queue", ..] => Some(region.to_string()),
        _ => None,
    }
}

/// One received message.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) id: String,
    /// What deleting it, or extending its visibility, takes (a new one per receipt).
    pub(crate) receipt: String,
    pub(crate) body: String,
    /// Times SQS has handed it out, this receipt included.
    pub(crate) receive_count: u64,
}

/// A queue, reached with its own client.
#[derive(Debug, Clone)]
pub(crate) struct Queue {
    client: Client,
    url: String,
}

impl Queue {
    pub(crate) async fn connect(queue: &QueueUrl, settings: &S3Settings) -> Self {
        let shared = shared_config(settings).await;
        let mut config = aws_sdk_sqs::config::Builder::from(&shared)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(6)
                    .with_initial_backoff(Duration::from_millis(100)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    // A receive long-polls for up to 20 s before it answers.
                    .read_timeout(Duration::from_secs(MAX_WAIT_SECS as u64 + 20))
                    .build(),
            );
        if std::env::var_os("AWS_ENDPOINT_URL_SQS").is_none_or(|v| v.is_empty()) {
            config = config.endpoint_url(&queue.endpoint);
        }
        if let Some(region) = &queue.region {
            config = config.region(aws_sdk_sqs::config::Region::new(region.clone()));
        }
        Self {
            client: Client::from_conf(config.build()),
            url: queue.url.clone(),
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    fn failed(&self, action: &str, e: &(dyn std::error::Error + 'static)) -> Error {
        Error::Queue {
            queue: self.url.clone(),
            reason: format!("{action}: {}", error_chain(e)),
        }
    }

    /// The queue's visibility timeout: how long a received message stays
    /// hidden from other receivers unless extended.
    pub(crate) async fn visibility_timeout(&self) -> Result<Duration> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await
            .map_err(|e| self.failed("GetQueueAttributes", &e))?;
        let secs = out
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| Error::Queue {
                queue: self.url.clone(),
                reason: "GetQueueAttributes gave no VisibilityTimeout".into(),
            })?;
        Ok(Duration::from_secs(secs))
    }

    /// Up to `max` messages (at most [`MAX_BATCH`]), waiting up to
    /// `wait_secs` for the first.
    pub(crate) async fn receive(&self, wait_secs: u32, max: i32) -> Result<Vec<Received>> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, MAX_BATCH))
            .wait_time_seconds(wait_secs.min(MAX_WAIT_SECS) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| self.failed("ReceiveMessage", &e))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                Some(Received {
                    id: m.message_id()?.to_string(),
                    receipt: m.receipt_handle()?.to_string(),
                    body: m.body().unwrap_or_default().to_string(),
                    receive_count,
                })
            })
            .collect())
    }

    pub(crate) async fn delete(&self, receipt: &str) -> Result<()> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| self.failed("DeleteMessage", &e))?;
        Ok(())
    }

    /// Hides a received message for `timeout` from now.
    pub(crate) async fn extend(&self, receipt: &str, timeout: Duration) -> Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(timeout.as_secs().min(MAX_VISIBILITY_SECS) as i32)
            .send()
            .await
            .map_err(|e| self.failed("ChangeMessageVisibility", &e))?;
        Ok(())
    }

    /// Sends a message (to a dead-letter queue: a failed message's body,
    /// with string attributes saying why).
    pub(crate) async fn send(&self, body: &str, attributes: &[(&str, &str)]) -> Result<()> {
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body);
        for (name, value) in attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(*value)
                .build()
                .map_err(|e| self.failed("SendMessage", &e))?;
            request = request.message_attributes(*name, value);
        }
        request
            .send()
            .await
            .map_err(|e| self.failed("SendMessage", &e))?;
        Ok(())
    }
}

/// The most messages one receive returns (SQS's limit).
pub(crate) const MAX_BATCH: i32 = 10;
/// The longest long poll SQS allows.
pub(crate) const MAX_WAIT_SECS: u32 = 20;
/// The longest visibility timeout SQS allows (12 hours).
const MAX_VISIBILITY_SECS: u64 = 43_200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_sources_name_a_queue_url() {
        let aws =
            QueueUrl::of_source("sqs://https://sqs.eu-west-1.amazonaws.com/123456789012/logs")
                .unwrap()
                .unwrap();
        assert_eq!(
            aws.url,
            "https://sqs.eu-west-1.amazonaws.com/123456789012/logs"
        );
        assert_eq!(aws.endpoint, "https://sqs.eu-west-1.amazonaws.com");
        assert_eq!(aws.region.as_deref(), Some("eu-west-1"));
        let bare = QueueUrl::of_source("sqs://sqs.eu-west-1.amazonaws.com/123456789012/logs")
            .unwrap()
            .unwrap();
        assert_eq!(bare, aws);
        let local = QueueUrl::of_source("sqs://http://127.0.0.1:4566/000000000000/logs")
            .unwrap()
            .unwrap();
        assert_eq!(local.endpoint, "http://127.0.0.1:4566");
        assert_eq!(local.region, None);
        let legacy = QueueUrl::parse("https://us-west-2.queue.amazonaws.com/1/q").unwrap();
        assert_eq!(legacy.region.as_deref(), Some("us-west-2"));
        let first = QueueUrl::parse("https://queue.amazonaws.com/1/q").unwrap();
        assert_eq!(first.region.as_deref(), Some("us-east-1"));
        assert!(QueueUrl::of_source("s3://bucket/prefix/").is_none());
        assert!(QueueUrl::of_source("/var/logs").is_none());
        for bad in [
            "sqs://https://sqs.eu-west-1.amazonaws.com/logs",
            "sqs://https://sqs.eu-west-1.amazonaws.com/1/logs/more",
            "sqs://ftp://host/1/logs",
            "sqs://",
            "sqs://https://host/1/logs?x=1",
        ] {
            let err = QueueUrl::of_source(bad).unwrap().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
