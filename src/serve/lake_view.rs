//! The lake as the server reads it: one DataFusion session shared by all
//! requests, opened again when `requests` has a newer version.
//!
//! Whether a newer version exists costs one HEAD request: the Delta log
//! entry of the version after the session's. Delta versions are consecutive,
//! so that entry exists exactly when an ingest has committed since.

use crate::billing::plans::Plans;
use crate::error::{Error, Result};
use crate::lake::delta::AsOf;
use crate::lake::{Lake, REQUESTS_TABLE};
use crate::query::{LakeSession, QueryLimits};
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use object_store::ObjectStoreExt;
use std::sync::Arc;

/// The table of which subject each owned key belongs to, registered in
/// every session the server opens.
pub(crate) const SUBJECTS_TABLE: &str = "edgemeter_subjects";

pub(crate) struct LakeView {
    lake: Lake,
    plans: Arc<Plans>,
    limits: QueryLimits,
    current: tokio::sync::Mutex<Option<Arc<LakeSession>>>,
}

impl LakeView {
    pub(crate) fn new(lake: Lake, plans: Arc<Plans>, limits: QueryLimits) -> Self {
        Self {
            lake,
            plans,
            limits,
            current: tokio::sync::Mutex::new(None),
        }
    }

    pub(crate) fn lake(&self) -> &Lake {
        &self.lake
    }

    /// A session over the newest version of the lake.
    pub(crate) async fn session(&self) -> Result<Arc<LakeSession>> {
        // The check runs outside the lock, so requests do not queue behind
        // each other's HEAD requests; only opening a session is one at a time.
        let seen = self.current.lock().await.clone();
        if let Some(session) = &seen
            && !self.moved_on(session.versions().requests).await?
        {
            return Ok(session.clone());
        }
        let mut current = self.current.lock().await;
        if let (Some(now), Some(before)) = (current.as_ref(), seen.as_ref())
            && !Arc::ptr_eq(now, before)
        {
            // Another request opened a newer session meanwhile.
            return Ok(now.clone());
        }
        let session = LakeSession::open_with(&self.lake, AsOf::Latest, &self.limits).await?;
        register_subjects(&session, &self.plans)?;
        let session = Arc::new(session);
        *current = Some(session.clone());
        Ok(session)
    }

    /// Whether `requests` has a version after `version`.
    async fn moved_on(&self, version: Option<u64>) -> Result<bool> {
        let log = |v: u64| {
            self.lake
                .path(&format!("{}/_delta_log/{v:020}.json", REQUESTS_TABLE.dir))
        };
        let next = version.map_or(0, |v| v + 1);
        match self.lake.store().head(&log(next)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks that the version the server reads is still there to read: its
    /// Delta log entry answers (a lake moved or deleted under the server, or
    /// storage that fails, does not).
    pub(crate) async fn readable(&self) -> Result<Arc<LakeSession>> {
        let session = self.session().await?;
        let Some(version) = session.versions().requests else {
            return Err(Error::Lake(
                "the lake has no requests table yet (nothing ingested)".into(),
            ));
        };
        let entry = self.lake.path(&format!(
            "{}/_delta_log/{version:020}.json",
            REQUESTS_TABLE.dir
        ));
        self.lake.store().head(&entry).await?;
        Ok(session)
    }
}

/// The subject a key's usage is reported under: its customer's
/// `openmeter_subject`, or the customer's id.
pub(crate) fn subject_of(customer: &crate::billing::plans::Customer) -> &str {
    customer
        .openmeter_subject
        .as_deref()
        .unwrap_or(&customer.id)
}

/// Registers the table of owned keys and their subjects.
fn register_subjects(session: &LakeSession, plans: &Plans) -> Result<()> {
    let (keys, subjects): (Vec<&str>, Vec<&str>) = plans
        .customers
        .iter()
        .flat_map(|c| c.key_ids.iter().map(move |k| (k.as_str(), subject_of(c))))
        .unzip();
    let schema = Arc::new(Schema::new(vec![
        Field::new("owned_key_id", DataType::Utf8, false),
        Field::new("owner_subject", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(keys)),
            Arc::new(StringArray::from(subjects)),
        ],
    )?;
    session.context().register_table(
        SUBJECTS_TABLE,
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    Ok(())
}
