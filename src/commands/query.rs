//! `edgemeter query` and `edgemeter queries`: read-only SQL over the lake,
//! and the library of named queries.

use super::{LakeArgs, Outcome, as_of};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::query::output::{OutputFormat, write};
use crate::query::{LakeSession, library};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
    #[arg(long, value_enum, default_value_t = super::DEFAULT_OUTPUT_FORMAT)]
    pub(crate) format: OutputFormat,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub(crate) output: Option<PathBuf>,
    /// A named query (see `edgemeter queries`) or read-only SQL over
    /// `requests` and `ingested`; `-` reads the SQL from stdin.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub(crate) sql: Option<String>,
    /// Read the SQL from this file.
    #[arg(long, short = 'f')]
    pub(crate) file: Option<PathBuf>,
    /// A named query's parameter, name=value (repeatable); values are bound, typed.
    #[arg(long = "param")]
    pub(crate) params: Vec<String>,
    /// Read the lake as of a `requests` table version (42) or a time (RFC 3339 or a date).
    #[arg(long)]
    pub(crate) as_of: Option<String>,
    /// Memory the query's operators may hold, in MiB; sorts, aggregates and
    /// joins spill to disk beyond it, other operators stop with an error.
    #[arg(long, env = "EDGEMETER_QUERY_MEMORY_MIB", default_value_t = crate::query::DEFAULT_QUERY_MEMORY_MIB)]
    pub(crate) memory_mib: u64,
    /// Stop the query after this many seconds.
    #[arg(long, env = "EDGEMETER_QUERY_TIMEOUT_SECS", default_value_t = crate::query::DEFAULT_QUERY_TIMEOUT_SECS)]
    pub(crate) timeout_secs: u64,
}

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
    statement: Statement,
    as_of: crate::lake::delta::AsOf,
}

impl QueryArgs {
    /// Reads the statement and parses the values the flags hold, before any
    /// lake is opened.
    pub(crate) fn validate(mut self) -> Result<Query> {
        let as_of = as_of(self.as_of.as_deref())?;
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
            statement,
            as_of,
        })
    }
}

/// Runs the SQL or named query given and prints its rows.
pub(crate) async fn run(query: Query) -> Result<Outcome> {
    let Query {
        args,
        statement,
        as_of,
    } = query;
    let lake = Lake::open(&args.lake.lake, &args.lake.s3.settings()).await?;
    let limits = crate::query::QueryLimits {
        memory_mib: args.memory_mib,
        timeout_secs: args.timeout_secs,
    };
    let session = LakeSession::open_with(&lake, as_of, &limits).await?;
    limits
        .timed(async {
            let stream = match statement {
                Statement::Named { name, params } => session.named(&name, params).await?,
                Statement::Sql(sql) => session.read_only_sql(&sql).await?.execute_stream().await?,
            };
            write(stream, args.format, args.output.as_deref()).await
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
