//! One module per command, each with one entry function, `run`, that takes
//! the command's settings (those whose flags hold times or table versions
//! parsed beforehand by their `validate`, so `run` takes valid values) and
//! returns an [`Outcome`] or an error. The modules
//! open lakes, call the library and print; `cli` only parses and dispatches,
//! and turns the result into the exit status.
//!
//! `ingest`, `run` and `reingest` share the ingest settings and the code that
//! runs ingests (`ingest::run_ingests`); every other command stands alone.
//! `usage`, `export`, `check`, `report`, `serve`, `query` and `maintain` read the
//! config file: their `validate` merges the flags with their table of it
//! once ([`crate::config::layered`]) before checking the values.

use crate::aws::S3Settings;
use crate::error::Result;
use crate::query::output::OutputFormat;
use clap::Args;

pub mod check;
pub mod docs;
pub mod executor;
pub mod export;
pub mod ingest;
pub mod init;
pub mod maintain;
pub mod meters;
pub mod migrate;
pub mod query;
pub mod reingest;
pub mod report;
pub mod run;
pub mod runs;
pub mod scheduler;
pub mod schema;
pub mod serve;
pub mod unreadable;
pub mod usage;

/// How a command that did not fail ended; `cli` maps it to the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything was done.
    Done,
    /// The run finished, but some objects could not be read (or most of an
    /// object's requests had no key).
    Partial,
}

/// How `usage`, `query`, `runs` and `unreadable` write rows when no
/// `--format` is given.
pub(crate) const DEFAULT_OUTPUT_FORMAT: OutputFormat = OutputFormat::Table;

/// How to reach S3 (`scheduler`, `executor`: the lakes their queries read).
#[derive(Debug, Clone, Args)]
pub(crate) struct S3Args {
    /// S3-compatible endpoint (MinIO, R2, a test server); uses path-style addressing.
    /// AWS_ENDPOINT_URL is honoured too.
    #[arg(long, env = "EDGEMETER_ENDPOINT_URL")]
    pub(crate) endpoint_url: Option<String>,
    /// AWS region, when the environment or profile names none.
    #[arg(long, env = "EDGEMETER_REGION")]
    pub(crate) region: Option<String>,
}

impl S3Args {
    pub(crate) fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint_url: self.endpoint_url.clone(),
            region: self.region.clone(),
        }
    }
}

/// The lake of a command without settings of its own (`runs`,
/// `unreadable`, `schema`, `migrate`, `init`): `--lake` and the S3 flags over
/// the top level of the `--config` file.
#[derive(Debug, Clone, Args)]
pub struct LakeArgs {
    #[command(flatten)]
    pub(crate) settings: crate::config::LakeSettings,
}

impl LakeArgs {
    /// The lake's location and S3 settings; no lake is a configuration error.
    pub(crate) fn resolve(self) -> Result<(String, S3Settings)> {
        let shared = match &self.settings.config {
            Some(path) => crate::config::ConfigFile::load(path)?.into_shared(),
            None => crate::config::Shared::default(),
        };
        self.settings.resolve(&shared)
    }
}

/// `--as-of`, parsed; the newest version when absent.
pub(crate) fn as_of(text: Option<&str>) -> Result<crate::lake::delta::AsOf> {
    text.map_or(
        Ok(crate::lake::delta::AsOf::Latest),
        crate::lake::delta::AsOf::parse,
    )
}
