//! How edgemeter reaches AWS: the S3 settings sources, lakes and outputs
//! share, and aws-config's shared configuration built from them (the
//! standard credential chain, the region, an S3-compatible endpoint).
//!
//! The clients are their users': the source's aws-sdk-s3 client
//! (`source::s3`), the lake's `object_store` store (`lake`).

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;

/// Settings for reaching S3 (sources and lakes share them).
#[derive(Debug, Clone, Default)]
pub(crate) struct S3Settings {
    /// An S3-compatible endpoint (MinIO, R2, a test server); path-style addressing is used with it.
    pub(crate) endpoint_url: Option<String>,
    /// Region, when neither the environment nor a profile names one.
    pub(crate) region: Option<String>,
}

/// aws-config's shared configuration: the standard credential chain, the region
/// (`us-east-1` when none is configured), and `--endpoint-url` / `AWS_ENDPOINT_URL`.
pub(crate) async fn shared_config(settings: &S3Settings) -> aws_config::SdkConfig {
    let region = RegionProviderChain::first_try(
        settings.region.clone().map(aws_sdk_s3::config::Region::new),
    )
    .or_default_provider()
    .or_else("us-east-1");
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region);
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}
