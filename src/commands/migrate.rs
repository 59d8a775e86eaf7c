//! `edgemeter migrate`: convert a lake written before Delta tables, in place.

use super::{LakeArgs, Outcome};
use crate::error::Result;
use crate::lake::Lake;

/// Converts the lake and reports what was converted.
pub(crate) async fn run(args: LakeArgs, quiet: bool) -> Result<Outcome> {
    let (location, s3) = args.resolve()?;
    let lake = Lake::open(&location, &s3).await?;
    let summary = crate::lake::migrate::migrate(&lake).await?;
    if !quiet {
        print!(
            "{}",
            crate::render::migrate_summary(&lake.display_location(), &summary)
        );
    }
    Ok(Outcome::Done)
}
