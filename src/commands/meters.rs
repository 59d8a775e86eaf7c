//! `edgemeter meters`: the meters a plans file defines, with the built-in
//! ones, and which plans charge or limit each.

use super::Outcome;
use crate::billing::plans::Plans;
use crate::error::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct MetersArgs {
    /// The plans file (TOML) whose `[meters.*]` to list.
    #[arg(long, env = "EDGEMETER_PLANS")]
    pub(crate) plans: PathBuf,
}

/// Prints every meter.
pub(crate) fn run(args: MetersArgs) -> Result<Outcome> {
    let plans = Plans::load(&args.plans)?;
    print!("{}", crate::render::meters(&plans));
    Ok(Outcome::Done)
}
