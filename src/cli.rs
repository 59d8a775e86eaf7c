//! The command line: one clap struct per subcommand, every flag also readable
//! from an `EDGEMETER_*` environment variable, and the code that runs each.

use crate::error::{Error, Result};
use crate::format::DEFAULT_MAX_OBJECT_BYTES;
use crate::format::w3c::ParseOptions;
use crate::ingest::{IngestOptions, IngestSummary, ingest};
use crate::lake::Lake;
use crate::query::output::{OutputFormat, write};
use crate::query::{LakeSession, TimeRange, library, usage};
use crate::source::S3Settings;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Exit status: the run finished, but some objects could not be read.
pub const EXIT_PARTIAL: i32 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "edgemeter",
    version,
    about = "Exact per-API-key usage from CloudFront access logs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print nothing but errors.
    #[arg(long, short, global = true, env = "EDGEMETER_QUIET")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read CloudFront logs and merge them into the lake (skips objects already ingested).
    Ingest(IngestArgs),
    /// Per-API-key usage totals over a time range.
    Usage(UsageArgs),
    /// Run read-only SQL over the lake's tables.
    Query(QueryArgs),
    /// List the named queries of the library.
    Queries,
    /// Print the lake's tables and columns.
    Schema(LakeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct S3Args {
    /// S3-compatible endpoint (MinIO, R2, a test server); uses path-style addressing.
    /// AWS_ENDPOINT_URL is honoured too.
    #[arg(long, env = "EDGEMETER_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// AWS region, when the environment or profile names none.
    #[arg(long, env = "EDGEMETER_REGION")]
    pub region: Option<String>,
}

impl S3Args {
    fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint_url: self.endpoint_url.clone(),
            region: self.region.clone(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct LakeArgs {
    /// The lake: a local directory or s3://bucket/prefix/.
    #[arg(long, env = "EDGEMETER_LAKE")]
    pub lake: String,
    #[command(flatten)]
    pub s3: S3Args,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Where the logs are: s3://bucket/prefix/ or a local directory (read recursively).
    #[arg(long, env = "EDGEMETER_SOURCE")]
    pub source: String,
    #[command(flatten)]
    pub lake: LakeArgs,
    /// Query parameter holding the API key; repeat for several, tried in order.
    #[arg(
        long = "key-param",
        env = "EDGEMETER_KEY_PARAMS",
        value_delimiter = ',',
        default_value = "api_key"
    )]
    pub key_params: Vec<String>,
    /// Objects downloaded at once.
    #[arg(long, env = "EDGEMETER_CONCURRENCY", default_value_t = 16)]
    pub concurrency: usize,
    /// Compressed bytes of logs merged and committed per batch (bounds memory).
    #[arg(long, env = "EDGEMETER_BATCH_BYTES", default_value_t = 64 << 20)]
    pub batch_bytes: u64,
    /// Largest decompressed size accepted for one object.
    #[arg(long, env = "EDGEMETER_MAX_OBJECT_BYTES", default_value_t = DEFAULT_MAX_OBJECT_BYTES)]
    pub max_object_bytes: u64,
    /// Seconds after which another run's lock on the lake counts as abandoned.
    #[arg(long, env = "EDGEMETER_STALE_LOCK_SECS", default_value_t = 7200)]
    pub stale_lock_secs: u64,
    /// Print the run summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    #[command(flatten)]
    pub lake: LakeArgs,
    /// Start of the range (inclusive): a date (UTC midnight) or RFC 3339.
    #[arg(long)]
    pub from: Option<String>,
    /// End of the range (exclusive): a date (UTC midnight) or RFC 3339.
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub lake: LakeArgs,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// The SQL (read-only) over `requests` and `ingested`.
    pub sql: String,
}

/// Runs a parsed command line; returns the process exit status.
pub async fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Ingest(args) => {
            if args.key_params.iter().any(|p| p.is_empty()) {
                return Err(Error::Config("--key-param cannot be empty".into()));
            }
            let options = IngestOptions {
                source: args.source,
                lake: args.lake.lake,
                s3: args.lake.s3.settings(),
                parse: ParseOptions {
                    key_params: args.key_params,
                },
                concurrency: args.concurrency,
                batch_bytes: args.batch_bytes,
                max_object_bytes: args.max_object_bytes,
                stale_lock_after: std::time::Duration::from_secs(args.stale_lock_secs),
            };
            let summary = ingest(&options).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else if !cli.quiet {
                print!("{}", render_summary(&summary));
            }
            Ok(if summary.is_partial() {
                EXIT_PARTIAL
            } else {
                0
            })
        }
        Command::Usage(args) => {
            let lake = Lake::open(&args.lake.lake, &args.lake.s3.settings()).await?;
            let range = TimeRange::parse(args.from.as_deref(), args.to.as_deref())?;
            let stream = usage(&lake, &range).await?;
            write(stream, args.format, args.output.as_deref()).await?;
            Ok(0)
        }
        Command::Query(args) => {
            let lake = Lake::open(&args.lake.lake, &args.lake.s3.settings()).await?;
            let session = LakeSession::open(&lake).await?;
            let df = session.read_only_sql(&args.sql).await?;
            write(
                df.execute_stream().await?,
                args.format,
                args.output.as_deref(),
            )
            .await?;
            Ok(0)
        }
        Command::Queries => {
            for q in library::QUERIES {
                println!("{}\n  {}\n", q.name, q.description().replace('\n', "\n  "));
            }
            Ok(0)
        }
        Command::Schema(args) => {
            let lake = Lake::open(&args.lake, &args.s3.settings()).await?;
            let session = LakeSession::open(&lake).await?;
            let df = session
                .read_only_sql(
                    "SELECT table_name, column_name, data_type, is_nullable \
                     FROM information_schema.columns WHERE table_schema = 'public' \
                     ORDER BY table_name, ordinal_position",
                )
                .await?;
            write(df.execute_stream().await?, OutputFormat::Table, None).await?;
            Ok(0)
        }
    }
}

/// The human-readable run summary.
pub fn render_summary(s: &IngestSummary) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mb = |b: u64| b as f64 / 1e6;
    let _ = writeln!(
        out,
        "run {}: {} objects listed, {} ingested, {} already ingested, {} unreadable ({:.2} s)",
        s.run_id,
        s.objects_listed,
        s.objects_ingested,
        s.objects_skipped,
        s.objects_unreadable,
        s.elapsed_ms as f64 / 1000.0
    );
    let _ = writeln!(
        out,
        "  bytes:    {:.1} MB read, {:.1} MB of log text",
        mb(s.bytes_read),
        mb(s.bytes_decompressed)
    );
    let _ = writeln!(
        out,
        "  lines:    {} ({} bad), {} requests, {} without an API key",
        s.lines, s.bad_lines, s.requests, s.keyless_requests
    );
    let _ = writeln!(
        out,
        "  rows:     {} written, {} duplicate requests skipped, {} partitions touched",
        s.rows_written,
        s.duplicates,
        s.partitions_touched.len()
    );
    for (object, n) in &s.bad_lines_by_object {
        let _ = writeln!(out, "  bad lines in {object}: {n}");
    }
    for b in &s.bad_line_samples {
        let _ = writeln!(out, "    {}:{}: {}", b.object, b.line, b.reason);
    }
    for u in &s.unreadable {
        let _ = writeln!(out, "  unreadable {}: {}", u.object, u.reason);
    }
    out
}
