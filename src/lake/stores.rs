//! The object stores of lakes named by URL, for DataFusion sessions that are
//! handed file locations instead of a [`super::Lake`]: the processes of a
//! Ballista cluster (`edgemeter scheduler`, `edgemeter executor`) read
//! whichever lake a query names, a local directory (`file://`) or `s3://`,
//! reaching S3 with the settings they were started with (`--endpoint-url`,
//! `--region`, aws-config's credential chain), as every other command does.
//!
//! A bucket's store is built on first use and kept; stores registered by hand
//! (DataFusion's `register_object_store`) take precedence.

use crate::aws::S3Settings;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::ObjectStoreRegistry;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use url::Url;

/// An [`ObjectStoreRegistry`] that reaches local files and any S3 bucket.
#[derive(Debug)]
pub(crate) struct LakeStores {
    settings: S3Settings,
    /// aws-config's configuration, loaded once (credentials are refreshed
    /// by its provider as they expire).
    aws: aws_config::SdkConfig,
    local: Arc<dyn ObjectStore>,
    /// Stores by `scheme://host`.
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl LakeStores {
    /// A registry reaching S3 as `settings` and the environment say.
    pub(crate) async fn new(settings: &S3Settings) -> Self {
        Self {
            settings: settings.clone(),
            aws: crate::aws::shared_config(settings).await,
            local: Arc::new(LocalFileSystem::new()),
            stores: Mutex::default(),
        }
    }

    fn stores(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<dyn ObjectStore>>> {
        // The map stays whole whatever a panicking holder did: a store is
        // inserted in one step.
        self.stores.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The key of a store: `s3://bucket`, `file://`.
fn key(url: &Url) -> String {
    format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default())
}

impl ObjectStoreRegistry for LakeStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.stores().insert(key(url), store)
    }

    fn deregister_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        self.stores().remove(&key(url)).ok_or_else(|| {
            DataFusionError::Execution(format!("no object store registered for {url}"))
        })
    }

    fn get_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        if let Some(store) = self.stores().get(&key(url)) {
            return Ok(store.clone());
        }
        match (url.scheme(), url.host_str()) {
            ("file", _) => Ok(self.local.clone()),
            ("s3" | "s3a", Some(bucket)) if !bucket.is_empty() => {
                let store: Arc<dyn ObjectStore> = Arc::new(
                    super::s3_store_with(bucket, &self.settings, &self.aws)
                        .map_err(|e| DataFusionError::External(Box::new(e)))?,
                );
                Ok(self.stores().entry(key(url)).or_insert(store).clone())
            }
            _ => Err(DataFusionError::Configuration(format!(
                "edgemeter reads lakes on local disk (file://) or S3 (s3://bucket), not {url}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_and_s3_stores_are_found_and_others_refused() {
        let settings = S3Settings {
            endpoint_url: Some("http://127.0.0.1:9".into()),
            region: Some("eu-west-1".into()),
        };
        let stores = LakeStores::new(&settings).await;
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(stores.get_store(&url("file:///")).is_ok());
        let first = stores.get_store(&url("s3://bucket-a/")).unwrap();
        let again = stores.get_store(&url("s3://bucket-a/x/y")).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "a bucket's store is kept");
        let other = stores.get_store(&url("s3://bucket-b/")).unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        assert!(first.to_string().contains("bucket-a"), "{first}");
        assert!(stores.get_store(&url("gs://bucket/")).is_err());
        assert!(stores.get_store(&url("s3:///")).is_err());
    }
}
