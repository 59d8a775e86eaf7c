//! `edgemeter unreadable`: the source objects no run could read, and their
//! acknowledgement.

use super::{LakeArgs, Outcome};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::query::output::{OutputFormat, write};
use clap::Args;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct UnreadableArgs {
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
    /// Accept that this object (its location as listed) will not be read:
    /// runs stop retrying it and no longer exit 3 for it (repeatable).
    #[arg(long)]
    pub(crate) acknowledge: Vec<String>,
    /// Acknowledge every object listed.
    #[arg(long, conflicts_with = "acknowledge")]
    pub(crate) acknowledge_all: bool,
    #[arg(long, value_enum, default_value_t = super::DEFAULT_OUTPUT_FORMAT)]
    pub(crate) format: OutputFormat,
}

/// Acknowledges the objects asked for, then lists the retry record.
pub(crate) async fn run(args: UnreadableArgs, quiet: bool) -> Result<Outcome> {
    let (location, s3) = args.lake.resolve()?;
    let lake = Lake::open(&location, &s3).await?;
    let now = chrono::Utc::now();
    if args.acknowledge_all || !args.acknowledge.is_empty() {
        let wanted = |r: &crate::lake::unreadable::Unreadable| {
            args.acknowledge_all || args.acknowledge.contains(&r.object)
        };
        let done = crate::lake::unreadable::acknowledge(&lake, wanted, now).await?;
        let missing: Vec<&String> = args
            .acknowledge
            .iter()
            .filter(|a| !done.iter().any(|d| &d.object == *a))
            .collect();
        if !quiet {
            eprint!("{}", crate::render::acknowledged(done.len()));
        }
        if !missing.is_empty() {
            return Err(Error::Config(format!(
                "not in the retry record (or acknowledged already): {}",
                missing
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let records = crate::lake::unreadable::load(&lake).await?;
    let batch = unreadable_table(&records)?;
    let stream = datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
        batch.schema(),
        futures::stream::iter([Ok(batch)]),
    );
    write(Box::pin(stream), args.format, None).await?;
    Ok(Outcome::Done)
}

/// The retry record as a table, one row per object.
fn unreadable_table(
    records: &[crate::lake::unreadable::Unreadable],
) -> Result<datafusion::arrow::array::RecordBatch> {
    use datafusion::arrow::array::{ArrayRef, StringArray, UInt64Array};
    let time =
        |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let text = |f: &dyn Fn(&crate::lake::unreadable::Unreadable) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from_iter(records.iter().map(f)))
    };
    Ok(datafusion::arrow::array::RecordBatch::try_from_iter([
        ("object", text(&|r| Some(r.object.clone()))),
        ("reason", text(&|r| Some(r.reason.clone()))),
        ("first_attempt", text(&|r| Some(time(&r.first_attempt)))),
        ("last_attempt", text(&|r| Some(time(&r.last_attempt)))),
        (
            "attempts",
            Arc::new(UInt64Array::from_iter_values(
                records.iter().map(|r| r.attempts),
            )) as ArrayRef,
        ),
        (
            "acknowledged_at",
            text(&|r| r.acknowledged_at.as_ref().map(time)),
        ),
        ("source", text(&|r| Some(r.source.clone()))),
    ])?)
}
