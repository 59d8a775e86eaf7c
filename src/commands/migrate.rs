//! `edgemeter migrate`: convert a lake written before Delta tables, in place.

use super::{LakeArgs, Outcome};
use crate::error::Result;
use crate::lake::Lake;

/// Converts the lake and reports what was converted.
pub(crate) async fn run(args: LakeArgs, quiet: bool) -> Result<Outcome> {
    let lake = Lake::open(&args.lake, &args.s3.settings()).await?;
    let summary = crate::lake::migrate::migrate(&lake).await?;
    if !quiet {
        println!(
            "converted {}: {} hour files ({} rows) into requests, {} ingested objects, \
             {} rollups rebuilt, {} old files deleted",
            lake.display_location(),
            summary.requests_files,
            summary.requests_rows,
            summary.ingested_objects,
            summary.rollups_built,
            summary.files_deleted
        );
    }
    Ok(Outcome::Done)
}
