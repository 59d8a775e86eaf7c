//! `edgemeter query` and `edgemeter queries`: read-only SQL over the lake,
//! and the library of named queries.

use super::{Outcome, as_of};
use crate::config::{self, LakeSettings};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::query::output::{OutputFormat, write};
use crate::query::{Engine, LakeSession, library};
use clap::Args;
use std::path::PathBuf;

/// `query`'s settings: its flags, and the keys of the config file's
/// `[query]` table (every key optional; `lake` also comes from the file's
/// top level). The statement itself is given on the command line only.
#[derive(Debug, Default, Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub(crate) lake: LakeSettings,
    /// Output format [default: table].
    #[arg(long, value_enum)]
    #[serde(deserialize_with = "config::value_enum")]
    pub(crate) format: Option<OutputFormat>,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub(crate) output: Option<PathBuf>,
    /// A named query (see `edgemeter queries`) or read-only SQL over
    /// `requests` and `ingested`; `-` reads the SQL from stdin.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    #[serde(skip)]
    pub(crate) sql: Option<String>,
    /// Read the SQL from this file.
    #[arg(long, short = 'f')]
    #[serde(skip)]
    pub(crate) file: Option<PathBuf>,
    /// A named query's parameter, name=value (repeatable); values are bound, typed.
    #[arg(long = "param")]
    #[serde(skip)]
    pub(crate) params: Vec<String>,
    /// Read the lake as of a `requests` table version (42) or a time (RFC 3339 or a date).
    #[arg(long)]
    #[serde(deserialize_with = "config::as_of")]
    pub(crate) as_of: Option<String>,
    /// Memory the query's operators may hold, in MiB; sorts, aggregates and
    /// joins spill to disk beyond it, other operators stop with an error [default: 4096].
    #[arg(long, env = "EDGEMETER_QUERY_MEMORY_MIB")]
    pub(crate) memory_mib: Option<u64>,
    /// Stop the query after this many seconds [default: 600].
    #[arg(long, env = "EDGEMETER_QUERY_TIMEOUT_SECS")]
    pub(crate) timeout_secs: Option<u64>,
    /// Run the query on the Ballista cluster whose scheduler is at
    /// df://host:port (`edgemeter scheduler`, `edgemeter executor`) instead
    /// of in this process.
    #[arg(long, env = "EDGEMETER_CLUSTER")]
    pub(crate) cluster: Option<String>,
}

config::command_settings!(
    QueryArgs,
    "query",
    config: lake.config,
    layered: [format, output, as_of, memory_mib, timeout_secs, cluster],
    kept: [lake, sql, file, params],
);

/// What `query` runs: a named query with its parameters bound, or SQL.
#[derive(Debug)]
enum Statement {
    Named {
        name: String,
        params: Vec<(String, datafusion::common::ScalarValue)>,
    },
    Sql(String),
}

/// `query`'s settings with the statement read, a named query's parameters
/// bound and `--as-of` parsed: what [`run`] takes.
#[derive(Debug)]
pub struct Query {
    args: QueryArgs,
    lake: String,
    s3: crate::aws::S3Settings,
    format: OutputFormat,
    limits: crate::query::QueryLimits,
    statement: Statement,
    as_of: crate::lake::delta::AsOf,
    engine: Engine,
}

impl QueryArgs {
    /// Merges the flags with the config file, reads the statement and
    /// parses the values they hold, before any lake is opened.
    pub(crate) fn validate(self) -> Result<Query> {
        let (mut args, shared) = config::layered(self)?;
        let (lake, s3) = std::mem::take(&mut args.lake).resolve(&shared)?;
        args.validate_merged(lake, s3)
    }

    fn validate_merged(mut self, lake: String, s3: crate::aws::S3Settings) -> Result<Query> {
        let format = self.format.unwrap_or(super::DEFAULT_OUTPUT_FORMAT);
        let limits = crate::query::QueryLimits {
            memory_mib: self
                .memory_mib
                .unwrap_or(crate::query::DEFAULT_QUERY_MEMORY_MIB),
            timeout_secs: self
                .timeout_secs
                .unwrap_or(crate::query::DEFAULT_QUERY_TIMEOUT_SECS),
        };
        let as_of = as_of(self.as_of.as_deref())?;
        let engine = match self.cluster.as_deref() {
            Some(url) => Engine::Cluster(crate::query::cluster::parse_cluster_url(url)?),
            None => Engine::InProcess,
        };
        let sql = match (self.sql.take(), &self.file) {
            (_, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| Error::Config(format!("--file {}: {e}", path.display())))?,
            (Some(dash), None) if dash == "-" => {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                    .map_err(|e| Error::Config(format!("reading SQL from stdin: {e}")))?;
                text
            }
            (Some(sql), None) => sql,
            (None, None) => unreachable!("clap requires the SQL or --file"),
        };
        let statement = match library::QUERIES.iter().find(|q| q.name == sql) {
            Some(query) => Statement::Named {
                name: sql.clone(),
                params: query.bind(&library::parse_params(&self.params)?)?,
            },
            None if is_a_name(&sql) => {
                return Err(Error::Config(format!(
                    "{sql:?} is not a named query{} (see `edgemeter queries`)",
                    match library::nearest(&sql).as_slice() {
                        [] => String::new(),
                        names => format!("; did you mean {}?", names.join(" or ")),
                    }
                )));
            }
            None if !self.params.is_empty() => {
                return Err(Error::Config(
                    "--param applies to named queries; the SQL given is not one (see `edgemeter queries`)"
                        .into(),
                ));
            }
            None => Statement::Sql(sql),
        };
        Ok(Query {
            args: self,
            lake,
            s3,
            format,
            limits,
            statement,
            as_of,
            engine,
        })
    }
}

/// Runs the SQL or named query given and prints its rows.
pub(crate) async fn run(query: Query) -> Result<Outcome> {
    let Query {
        args,
        lake,
        s3,
        format,
        limits,
        statement,
        as_of,
        engine,
    } = query;
    let lake = Lake::open(&lake, &s3).await?;
    let session = LakeSession::open_on(&lake, as_of, &limits, &engine).await?;
    limits
        .timed(async {
            let stream = match statement {
                Statement::Named { name, params } => session.named(&name, params).await?,
                Statement::Sql(sql) => {
                    crate::query::execute(session.read_only_sql(&sql).await?).await?
                }
            };
            write(stream, format, args.output.as_deref()).await
        })
        .await?;
    Ok(Outcome::Done)
}

/// Lists the named queries with their parameters.
pub(crate) fn list() -> Result<Outcome> {
    print!("{}", crate::render::queries(library::QUERIES));
    Ok(Outcome::Done)
}

/// True for text that can only be meant as a query's name: one word of
/// letters, digits, `_` and `-` (SQL has at least two words).
fn is_a_name(text: &str) -> bool {
    let text = text.trim();
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
