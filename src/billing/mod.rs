//! What a customer owes, before any output format: the plans file
//! ([`plans`]), the arithmetic of prices ([`pricing`]), and per-key usage
//! over a range. `export` turns these into invoice lines; `check` compares
//! usage with quotas; `report` names keys by their customers.

pub(crate) mod meter_days;
pub(crate) mod metering;
pub(crate) mod meters;
pub(crate) mod plans;
pub(crate) mod pricing;

use crate::error::Result;
use crate::query::{LakeSession, collect};
use crate::schema::status::StatusClass::{ClientError, ServerError};
use crate::time::TimeRange;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Int16Type, Int64Type};
use plans::StatusSet;
use std::collections::BTreeMap;

/// Usage of one key (or of keyless requests) in a period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyUsage {
    pub(crate) requests: u64,
    pub(crate) billable_requests: u64,
    pub(crate) client_errors: u64,
    pub(crate) server_errors: u64,
    pub(crate) bytes_out: u64,
    pub(crate) bytes_in: u64,
}

impl KeyUsage {
    /// Adds another key's usage (a customer's keys summed).
    pub(crate) fn add(&mut self, other: &KeyUsage) {
        self.requests += other.requests;
        self.billable_requests += other.billable_requests;
        self.client_errors += other.client_errors;
        self.server_errors += other.server_errors;
        self.bytes_out += other.bytes_out;
        self.bytes_in += other.bytes_in;
    }
}

/// Per-key usage over `range` (`None` key: requests without a key).
pub(crate) async fn usage_by_key(
    session: &LakeSession,
    range: &TimeRange,
    billable: &StatusSet,
) -> Result<BTreeMap<Option<String>, KeyUsage>> {
    let batches = collect(session.named("usage_by_key_status", range.params()).await?).await?;
    let mut out: BTreeMap<Option<String>, KeyUsage> = BTreeMap::new();
    for batch in batches {
        let keys = batch.column(0).as_string::<i32>();
        let statuses = batch.column(1).as_primitive::<Int16Type>();
        let count = |i: usize| batch.column(i).as_primitive::<Int64Type>();
        let (requests, bytes_out, bytes_in) = (count(2), count(3), count(4));
        for row in 0..batch.num_rows() {
            let key = keys.is_valid(row).then(|| keys.value(row).to_string());
            let status = statuses.is_valid(row).then(|| statuses.value(row));
            let n = requests.value(row) as u64;
            let u = out.entry(key).or_default();
            u.requests += n;
            if let Some(s) = status {
                u.billable_requests += if billable.contains(s) { n } else { 0 };
                u.client_errors += if ClientError.contains(s) { n } else { 0 };
                u.server_errors += if ServerError.contains(s) { n } else { 0 };
            }
            u.bytes_out += bytes_out.value(row) as u64;
            u.bytes_in += bytes_in.value(row) as u64;
        }
    }
    Ok(out)
}
