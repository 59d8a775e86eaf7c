//! `edgemeter runs`: the lake's run records.

use super::{LakeArgs, Outcome};
use crate::error::Result;
use crate::lake::Lake;
use crate::query::output::{OutputFormat, write};
use clap::Args;

/// How many run records `runs` shows when no `--limit` is given.
pub(crate) const DEFAULT_RUNS_LIMIT: usize = 50;

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
    /// Show only the newest N runs.
    #[arg(long, default_value_t = DEFAULT_RUNS_LIMIT)]
    pub(crate) limit: usize,
    #[arg(long, value_enum, default_value_t = super::DEFAULT_OUTPUT_FORMAT)]
    pub(crate) format: OutputFormat,
}

/// Prints the newest run records.
pub(crate) async fn run(args: RunsArgs) -> Result<Outcome> {
    let (location, s3) = args.lake.resolve()?;
    let lake = Lake::open(&location, &s3).await?;
    let batch = crate::lake::runs::list(&lake, args.limit).await?;
    let schema = batch.schema();
    let stream = datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter([Ok(batch)]),
    );
    write(Box::pin(stream), args.format, None).await?;
    Ok(Outcome::Done)
}
