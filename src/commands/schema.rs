//! `edgemeter schema`: the lake's tables and columns.

use super::{LakeArgs, Outcome};
use crate::error::Result;
use crate::lake::Lake;
use crate::query::LakeSession;
use crate::query::output::{OutputFormat, write};

/// Prints every column of every table.
pub(crate) async fn run(args: LakeArgs) -> Result<Outcome> {
    let (location, s3) = args.resolve()?;
    let lake = Lake::open(&location, &s3).await?;
    let session = LakeSession::open(&lake).await?;
    let df = session
        .read_only_sql(
            "SELECT table_name, column_name, data_type, is_nullable \
             FROM information_schema.columns WHERE table_schema = 'public' \
             ORDER BY table_name, ordinal_position",
        )
        .await?;
    write(df.execute_stream().await?, OutputFormat::Table, None).await?;
    Ok(Outcome::Done)
}
