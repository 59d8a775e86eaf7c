//! `edgemeter export`: priced invoice lines per customer for a billing period,
//! in CSV/JSON lines/Parquet or the event formats Stripe, OpenMeter and Lago
//! ingest, with a manifest that makes every export reproducible.
//!
//! [`crate::billing`] owns the plans file, the prices and per-key usage,
//! [`formats`] the bytes of each output format (`events` those of billing
//! systems); this module assembles lines and writes them with their manifest.

mod events;
pub(crate) mod formats;

use crate::billing::metering::{self, MeterValues, Per};
use crate::billing::meters::{Aggregation, Meter};
use crate::billing::plans::{self, Plans};
use crate::billing::{KeyUsage, pricing, usage_by_key};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::query::{LakeSession, library};
use crate::time::{Clock, Period, SystemClock};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// One invoice line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct InvoiceLine {
    pub(crate) period: String,
    pub(crate) customer_id: String,
    pub(crate) customer_name: String,
    pub(crate) plan: String,
    pub(crate) api_key_ids: Vec<String>,
    pub(crate) requests: u64,
    pub(crate) billable_requests: u64,
    pub(crate) client_errors: u64,
    pub(crate) server_errors: u64,
    pub(crate) bytes_out: u64,
    pub(crate) bytes_in: u64,
    pub(crate) included_requests: u64,
    pub(crate) overage_requests: u64,
    pub(crate) base_fee: Decimal,
    pub(crate) request_charge: Decimal,
    pub(crate) bandwidth_charge: Decimal,
    /// One per meter of [`charged_meters`], in its order.
    pub(crate) meters: Vec<MeterLine>,
    pub(crate) total: Decimal,
    pub(crate) currency: String,
    pub(crate) status: String,
}

/// A meter's quantity on an invoice line and what the line's plan charges for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct MeterLine {
    pub(crate) slug: String,
    /// `None`: a `max`, `min` or `avg` over no requests.
    pub(crate) quantity: Option<Decimal>,
    pub(crate) charge: Decimal,
    /// Whether the line's plan charges the meter in a `charges` table (its
    /// customer then gets billing-system events for it).
    pub(crate) charged: bool,
}

/// The meters some plan charges in a `charges` table, by slug: each gives
/// invoice lines the columns `<slug>_quantity` and `<slug>_charge`. Meters
/// charged only through a plan's shorthand fields have columns of their own
/// already (`request_charge`, `bandwidth_charge`).
pub(crate) fn charged_meters(plans: &Plans) -> Vec<&Meter> {
    let slugs: std::collections::BTreeSet<&str> = plans
        .plans
        .values()
        .flat_map(|p| p.charges.values())
        .filter(|c| !c.shorthand)
        .map(|c| c.meter.as_str())
        .collect();
    slugs
        .into_iter()
        .filter_map(|slug| plans.meters.get(slug))
        .collect()
}

/// The charged meters and their values per customer (and per key of no
/// customer), as [`metering::evaluate`] gives them with [`Per::Customer`].
pub(crate) struct Metered<'a> {
    pub(crate) meters: Vec<&'a Meter>,
    pub(crate) values: MeterValues,
}

impl<'a> Metered<'a> {
    /// Evaluates every meter charged in `plans` over `range` in one query
    /// (none when no plan charges a meter in a `charges` table).
    pub(crate) async fn evaluate(
        session: &LakeSession,
        plans: &'a Plans,
        range: &crate::time::TimeRange,
    ) -> Result<Self> {
        let meters = charged_meters(plans);
        let values = match meters.is_empty() {
            true => MeterValues::default(),
            false => {
                metering::evaluate(session, range, &meters, Per::Customer, Some(plans)).await?
            }
        };
        Ok(Self { meters, values })
    }

    /// The quantities of (customer, key): a customer's row has no key, a key
    /// of no customer no customer, requests without a key neither. A row the
    /// lake has none for counts 0, or nothing for `max`, `min` and `avg`.
    fn quantities(&self, customer: Option<&str>, key: Option<&str>) -> Vec<Option<Decimal>> {
        let id = (customer.map(str::to_string), key.map(str::to_string));
        match self.values.rows.get(&id) {
            Some(values) => values.clone(),
            None => self
                .meters
                .iter()
                .map(|m| match m.aggregation {
                    Aggregation::Count | Aggregation::Sum | Aggregation::UniqueCount => {
                        Some(Decimal::ZERO)
                    }
                    Aggregation::Max | Aggregation::Min | Aggregation::Avg => None,
                })
                .collect(),
        }
    }

    /// Meter lines of (customer, key), priced by `plan`'s `charges` tables.
    fn lines(
        &self,
        customer: Option<&str>,
        key: Option<&str>,
        plan: Option<&plans::Plan>,
    ) -> Vec<MeterLine> {
        self.meters
            .iter()
            .zip(self.quantities(customer, key))
            .map(|(meter, quantity)| {
                let charge = plan
                    .and_then(|p| p.charges.get(&meter.slug))
                    .filter(|c| !c.shorthand);
                MeterLine {
                    slug: meter.slug.clone(),
                    quantity,
                    charge: charge.map_or(Decimal::ZERO, |c| pricing::charge(c, quantity)),
                    charged: charge.is_some(),
                }
            })
            .collect()
    }
}

/// The invoice lines of a period: one per customer (by id), then one per key
/// with usage but no customer (by key id), then one for requests without a key.
///
/// Lines are `final` only when the period is [`Completeness::Complete`].
pub(crate) fn invoice_lines(
    plans: &Plans,
    period: &Period,
    usage: &BTreeMap<Option<String>, KeyUsage>,
    metered: &Metered,
    completeness: &Completeness,
) -> Vec<InvoiceLine> {
    let status = match completeness {
        Completeness::Complete => "final",
        Completeness::Provisional(_) => "provisional",
    };
    let line =
        |customer_id: &str, name: &str, plan: &str, keys: Vec<String>, u: &KeyUsage| InvoiceLine {
            period: period.label.clone(),
            customer_id: customer_id.to_string(),
            customer_name: name.to_string(),
            plan: plan.to_string(),
            api_key_ids: keys,
            requests: u.requests,
            billable_requests: u.billable_requests,
            client_errors: u.client_errors,
            server_errors: u.server_errors,
            bytes_out: u.bytes_out,
            bytes_in: u.bytes_in,
            included_requests: 0,
            overage_requests: 0,
            base_fee: Decimal::ZERO,
            request_charge: Decimal::ZERO,
            bandwidth_charge: Decimal::ZERO,
            meters: Vec::new(),
            total: Decimal::ZERO,
            currency: plans.currency.clone(),
            status: status.to_string(),
        };
    let mut lines = Vec::new();
    let mut owned = std::collections::HashSet::new();
    for c in &plans.customers {
        let mut total = KeyUsage::default();
        for id in &c.key_ids {
            owned.insert(id.as_str());
            if let Some(u) = usage.get(&Some(id.clone())) {
                total.add(u);
            }
        }
        let mut l = line(&c.id, &c.name, &c.plan, c.key_ids.clone(), &total);
        let plan = plans.plans.get(&c.plan);
        l.meters = metered.lines(Some(&c.id), None, plan);
        if let Some(plan) = plan {
            let charges = pricing::price(plan, total.billable_requests, total.bytes_out);
            l.included_requests = plan.included_requests;
            l.overage_requests = charges.overage_requests;
            l.base_fee = charges.base_fee;
            l.request_charge = charges.request_charge;
            l.bandwidth_charge = charges.bandwidth_charge;
            l.total = charges.total + l.meters.iter().map(|m| m.charge).sum::<Decimal>();
        }
        lines.push(l);
    }
    for (key, u) in usage {
        match key {
            Some(id) if !owned.contains(id.as_str()) => {
                let mut l = line("", "", "", vec![id.clone()], u);
                l.meters = metered.lines(None, Some(id), None);
                lines.push(l);
            }
            _ => {}
        }
    }
    if let Some(u) = usage.get(&None) {
        let mut l = line("", "", "", vec![], u);
        l.meters = metered.lines(None, None, None);
        lines.push(l);
    }
    lines
}

/// Whether a period's figures can change any more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Completeness {
    /// The grace period is over and the lake was ingested after it.
    Complete,
    /// Why the figures may still change (empty: only because the grace
    /// period is not over yet, which is no cause for a warning).
    Provisional(Vec<String>),
}

impl Completeness {
    /// A period is complete when its grace period (for late log files) is
    /// over, an ingest run started after that, no object the lake knows of
    /// is unreadable, and the period holds requests at all. `now` is the
    /// time the export is made as of.
    pub(crate) async fn of(
        lake: &Lake,
        plans: &Plans,
        period: &Period,
        usage: &BTreeMap<Option<String>, KeyUsage>,
        now: DateTime<Utc>,
        unreadable_outstanding: usize,
    ) -> Result<Self> {
        let grace_end = period.end + chrono::Duration::hours(i64::from(plans.grace_hours));
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut reasons = Vec::new();
        if usage.values().all(|u| u.requests == 0) {
            reasons.push(format!(
                "the lake holds no requests in {} ({}): is the period or --lake right, \
                 and has it been ingested?",
                period.label, period.tz
            ));
        }
        if now >= grace_end {
            match crate::lake::runs::newest_start(lake, now).await? {
                Some(start) if start >= grace_end => {}
                Some(start) => reasons.push(format!(
                    "the newest ingest run started at {}, before the period's late log files \
                     are all in ({} + {} grace hours = {}): run an ingest, then export again",
                    time(start),
                    time(period.end),
                    plans.grace_hours,
                    time(grace_end)
                )),
                None => reasons.push("the lake has no record of any ingest run".into()),
            }
        } else if reasons.is_empty() {
            return Ok(Self::Provisional(Vec::new()));
        }
        if unreadable_outstanding > 0 {
            reasons.push(format!(
                "{unreadable_outstanding} source objects could not be read yet \
                 (see `edgemeter unreadable`)"
            ));
        }
        Ok(if reasons.is_empty() && now >= grace_end {
            Self::Complete
        } else {
            Self::Provisional(reasons)
        })
    }

    /// The warnings to show (none for a period still in its grace period).
    pub(crate) fn warnings(&self) -> &[String] {
        match self {
            Self::Complete => &[],
            Self::Provisional(reasons) => reasons,
        }
    }
}

/// Everything `export` needs.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub(crate) lake: String,
    pub(crate) s3: crate::aws::S3Settings,
    /// The billing period, parsed from `--period` in `--tz`.
    pub(crate) period: Period,
    pub(crate) plans: std::path::PathBuf,
    pub(crate) format: formats::Format,
    pub(crate) output: String,
    /// The lake as of which to export (the newest version by default).
    pub(crate) as_of: crate::lake::delta::AsOf,
}

impl ExportOptions {
    /// The export of `period` (YYYY-MM, UTC) of the newest version of the
    /// lake at `lake`, priced by the plans file `plans`, in `format` (as
    /// `--format` names it), to `output`; S3 is reached as the environment
    /// says. For tests and embedding: the CLI fills the fields from its flags.
    pub fn try_new(
        lake: &str,
        period: &str,
        plans: impl Into<std::path::PathBuf>,
        format: &str,
        output: &str,
    ) -> Result<Self> {
        let format = <formats::Format as clap::ValueEnum>::from_str(format, true)
            .map_err(|e| Error::Config(format!("--format {format:?}: {e}")))?;
        Ok(Self {
            lake: lake.to_string(),
            s3: crate::aws::S3Settings::default(),
            period: Period::month(period, None)?,
            plans: plans.into(),
            format,
            output: output.to_string(),
            as_of: crate::lake::delta::AsOf::Latest,
        })
    }
}

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportReport {
    pub(crate) files: Vec<String>,
    pub(crate) lines: usize,
    /// Events written, for the formats of billing systems.
    pub(crate) events: Option<usize>,
    /// Keys with usage that no customer of the plans owns: lines of their
    /// own, and left out of billing-system events.
    pub(crate) unassigned_keys: Vec<String>,
    pub(crate) restatements: Vec<Restatement>,
    /// `final`, or `provisional` (with `warnings` when more than the grace
    /// period is the reason).
    pub(crate) status: String,
    pub(crate) warnings: Vec<String>,
}

/// A customer whose figures changed since the period was last exported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Restatement {
    pub(crate) customer_id: String,
    pub(crate) api_key_ids: Vec<String>,
    pub(crate) billable_before: u64,
    pub(crate) billable_after: u64,
    pub(crate) total_before: Decimal,
    pub(crate) total_after: Decimal,
}

/// Runs an export end to end, as of the system clock.
pub(crate) async fn export(options: &ExportOptions) -> Result<ExportReport> {
    export_with_clock(options, &SystemClock).await
}

/// Runs an export end to end as of the instant `clock` gives: it decides
/// whether the period is complete (its grace period over) and, for Stripe,
/// the event time and whether Stripe still takes it (the past 35 days).
pub async fn export_with_clock(options: &ExportOptions, clock: &dyn Clock) -> Result<ExportReport> {
    let plans = Plans::load(&options.plans)?;
    let period = &options.period;
    let lake = Lake::open(&options.lake, &options.s3).await?;
    let session = LakeSession::open_as_of(&lake, options.as_of).await?;
    let usage = usage_by_key(&session, &period.range(), &plans.billable).await?;
    // An export of an older version is made as it would have been then, so
    // exporting the versions a manifest names again gives the same bytes.
    let historical = options.as_of != crate::lake::delta::AsOf::Latest;
    let now = match historical {
        true => session.read_at().unwrap_or_else(|| clock.now()),
        false => clock.now(),
    };
    // The retry record is not versioned: a historical export leaves it out.
    let unreadable = match historical {
        true => 0,
        false => crate::lake::unreadable::load(&lake)
            .await?
            .iter()
            .filter(|u| u.acknowledged_at.is_none())
            .count(),
    };
    let completeness = Completeness::of(&lake, &plans, period, &usage, now, unreadable).await?;
    let metered = Metered::evaluate(&session, &plans, &period.range()).await?;
    let lines = invoice_lines(&plans, period, &usage, &metered, &completeness);
    let customers: BTreeMap<&str, &plans::Customer> =
        plans.customers.iter().map(|c| (c.id.as_str(), c)).collect();
    let files = formats::render(
        options.format,
        &lines,
        &metered.meters,
        &customers,
        period,
        now,
    )?;
    let record = ExportRecord::new(&lake, period, &lines);
    let restatements = record.changes_since(&record.last(&lake).await?);
    let manifest = manifest(
        &lake,
        &session,
        &plans,
        period,
        options,
        &files,
        &restatements,
    )
    .await?;
    let to_stdout = options.output == "-";
    if to_stdout && files.len() > 1 {
        return Err(Error::Config(format!(
            "--format {:?} writes {} files: give --output a path, not -",
            options.format,
            files.len()
        )));
    }
    let mut written = Vec::new();
    for (suffix, bytes) in &files {
        let location = match to_stdout {
            true => "-".to_string(),
            false => formats::with_suffix(&options.output, suffix),
        };
        crate::lake::write_output(&location, bytes.clone(), &options.s3).await?;
        written.push(location);
    }
    // Stdout has no "beside": the manifest is left out there.
    if !to_stdout {
        let manifest_location = format!("{}.manifest.json", options.output);
        crate::lake::write_output(
            &manifest_location,
            serde_json::to_vec_pretty(&manifest)?.into(),
            &options.s3,
        )
        .await?;
    }
    // Only once every output is written: a failed export leaves the record
    // of the last good one, so the next export still reports what changed.
    if !historical {
        record.save(&lake).await?;
    }
    let events = match options.format.is_events() {
        true => Some(formats::records(options.format, &files)?),
        false => None,
    };
    Ok(ExportReport {
        files: written,
        lines: lines.len(),
        events,
        unassigned_keys: lines
            .iter()
            .filter(|l| l.customer_id.is_empty() && l.requests > 0)
            .map(|l| match l.api_key_ids.first() {
                Some(id) => id.clone(),
                None => "(no key)".to_string(),
            })
            .collect(),
        restatements,
        status: match completeness {
            Completeness::Complete => "final".into(),
            Completeness::Provisional(_) => "provisional".into(),
        },
        warnings: completeness.warnings().to_vec(),
    })
}

/// The figures of a period's last export, kept in the lake
/// (`_edgemeter/exports/<period>-<zone>.json`): billable requests and total
/// per invoice line.
struct ExportRecord {
    path: object_store::path::Path,
    figures: BTreeMap<String, (u64, Decimal)>,
}

impl ExportRecord {
    fn new(lake: &Lake, period: &Period, lines: &[InvoiceLine]) -> Self {
        let key = |l: &InvoiceLine| format!("{}|{}", l.customer_id, l.api_key_ids.join(";"));
        Self {
            path: lake.path(&crate::lake::layout::export_record(
                &period.label,
                &period.tz,
            )),
            figures: lines
                .iter()
                .map(|l| (key(l), (l.billable_requests, l.total)))
                .collect(),
        }
    }

    /// The figures of the last export (empty when there was none).
    async fn last(&self, lake: &Lake) -> Result<BTreeMap<String, (u64, Decimal)>> {
        use object_store::ObjectStoreExt;
        match lake.store().get(&self.path).await {
            Ok(found) => Ok(serde_json::from_slice(&found.bytes().await?).unwrap_or_default()),
            Err(object_store::Error::NotFound { .. }) => Ok(BTreeMap::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Lines whose figures differ from `before` (none after a first export).
    fn changes_since(&self, before: &BTreeMap<String, (u64, Decimal)>) -> Vec<Restatement> {
        let mut changes = Vec::new();
        if before.is_empty() {
            return changes;
        }
        let keys: std::collections::BTreeSet<&String> =
            before.keys().chain(self.figures.keys()).collect();
        for k in keys {
            let (b, a) = (
                before.get(k).copied().unwrap_or_default(),
                self.figures.get(k).copied().unwrap_or_default(),
            );
            if a != b {
                let (customer, ids) = k.split_once('|').unwrap_or((k, ""));
                changes.push(Restatement {
                    customer_id: customer.to_string(),
                    api_key_ids: ids
                        .split(';')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                    billable_before: b.0,
                    billable_after: a.0,
                    total_before: b.1,
                    total_after: a.1,
                });
            }
        }
        changes
    }

    async fn save(&self, lake: &Lake) -> Result<()> {
        use object_store::{ObjectStoreExt, PutPayload};
        lake.store()
            .put(
                &self.path,
                PutPayload::from(serde_json::to_vec(&self.figures)?),
            )
            .await?;
        Ok(())
    }
}

/// The audit record written beside each export.
async fn manifest(
    lake: &Lake,
    session: &LakeSession,
    plans: &Plans,
    period: &Period,
    options: &ExportOptions,
    files: &[(String, bytes::Bytes)],
    restatements: &[Restatement],
) -> Result<serde_json::Value> {
    use sha2::{Digest, Sha256};
    let versions = session.versions();
    let record_version = versions.ingested.map_or(
        crate::lake::delta::AsOf::Latest,
        crate::lake::delta::AsOf::Version,
    );
    let mut inputs: Vec<(String, String)> = crate::lake::ingested::load(lake, record_version)
        .await?
        .into_iter()
        .map(|(source, (etag, _))| (source, etag))
        .collect();
    inputs.sort();
    let query = library::get("usage_by_key_status")?;
    Ok(serde_json::json!({
        "program": "edgemeter",
        "version": env!("CARGO_PKG_VERSION"),
        "period": period.label,
        "tz": period.tz,
        "from": period.start.to_rfc3339(),
        "to": period.end.to_rfc3339(),
        "format": format!("{:?}", options.format).to_lowercase(),
        "plans_sha256": plans.hash,
        "query": query.name,
        "query_sha256": hex::encode(Sha256::digest(query.sql.as_bytes())),
        "files": files.iter().map(|(suffix, bytes)| serde_json::json!({
            "path": formats::with_suffix(&options.output, suffix),
            "sha256": hex::encode(Sha256::digest(bytes)),
        })).collect::<Vec<_>>(),
        "restatements": restatements,
        "lake_versions": versions,
        "as_of": versions.requests.map(|v| format!("{v}")),
        "inputs": inputs.iter().map(|(s, e)| serde_json::json!({"source": s, "etag": e})).collect::<Vec<_>>(),
    }))
}
