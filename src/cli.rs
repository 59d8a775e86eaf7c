//! The command line: one clap struct per subcommand, every flag also readable
//! from an `EDGEMETER_*` environment variable, and the code that runs each.

use crate::aws::S3Settings;
use crate::config::{self, FileConfig, Overrides, RunConfig};
use crate::error::{Error, Result};
use crate::ingest::{IngestSummary, ingest};
use crate::lake::Lake;
use crate::query::output::{OutputFormat, write};
use crate::query::{LakeSession, library};
use crate::time::TimeRange;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;

/// The config file's text, for schedulers that hand over secrets as variables
/// (ECS from SSM Parameter Store); `--config` takes precedence.
pub(crate) const CONFIG_TEXT_ENV: &str = "EDGEMETER_CONFIG_TOML";

/// Exit status: the run finished, but some objects could not be read.
pub(crate) const EXIT_PARTIAL: i32 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "edgemeter",
    version,
    about = "Exact per-API-key usage from CloudFront access logs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print nothing but errors (EDGEMETER_QUIET takes 1/0, true/false, yes/no, on/off).
    #[arg(
        long,
        short,
        global = true,
        env = "EDGEMETER_QUIET",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read CloudFront logs and merge them into the lake (skips objects already ingested).
    Ingest(IngestFlags),
    /// Start a lake whose key ids are keyed by a new secret (stored where you choose, never in the lake).
    Init(InitArgs),
    /// The scheduled entry point: ingest every source of the config file.
    Run(RunArgs),
    /// Read the objects named for a range of hours again, with the settings
    /// given now (a wrong key setting fixed), replacing their rows exactly.
    Reingest(ReingestArgs),
    /// List the lake's run records.
    Runs(RunsArgs),
    /// List the source objects no run could read (retried by every run), or acknowledge them.
    Unreadable(UnreadableArgs),
    /// Priced invoice lines per customer for a month, or billing-system events.
    Export(ExportArgs),
    /// Quota use per customer and health per key; alerts to a webhook.
    Check(CheckArgs),
    /// A self-contained HTML report of a month, with charts and tables.
    Report(ReportArgs),
    /// Per-API-key usage totals over a time range.
    Usage(UsageArgs),
    /// Run read-only SQL over the lake's tables.
    Query(QueryArgs),
    /// List the named queries of the library.
    Queries,
    /// Print the lake's tables and columns.
    Schema(LakeArgs),
    /// Convert a lake written before Delta tables, in place (resumable).
    Migrate(LakeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `edgemeter man > /usr/local/share/man/man1/edgemeter.1`.
    Man,
    /// Checkpoint the tables' logs, compact the ingested record, vacuum old files.
    Maintain(MaintainArgs),
}

#[derive(Debug, Args)]
pub struct MaintainArgs {
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
    /// Keep the files that table versions younger than this still need (time
    /// travel), and every file younger than this (a running ingest's batch).
    #[arg(long, env = "EDGEMETER_RETAIN_VERSIONS_HOURS", default_value_t = crate::lake::maintain::DEFAULT_RETAIN_VERSIONS_HOURS)]
    pub(crate) retain_versions_hours: u32,
    /// Also drop days of requests (and their rollups) older than N days (UTC dates).
    #[arg(long, env = "EDGEMETER_RETAIN_DAYS")]
    pub(crate) retain_days: Option<u32>,
    /// Print what was done as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

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
    pub(crate) lake: String,
    #[command(flatten)]
    pub(crate) s3: S3Args,
}

/// Ingest settings shared by `ingest` and `run`; unset ones fall back to the
/// config file (for `run`), then to defaults.
#[derive(Debug, Args)]
pub struct IngestFlags {
    /// Where the logs are: s3://bucket/prefix/ or a local directory (read recursively).
    #[arg(long = "source", env = "EDGEMETER_SOURCE", value_delimiter = ',')]
    pub(crate) sources: Vec<String>,
    /// The lake: a local directory or s3://bucket/prefix/.
    #[arg(long, env = "EDGEMETER_LAKE")]
    pub(crate) lake: Option<String>,
    #[command(flatten)]
    pub(crate) s3: S3Args,
    /// Query parameter holding the API key (shorthand for --key-from query:NAME; repeatable).
    #[arg(
        long = "key-param",
        env = "EDGEMETER_KEY_PARAMS",
        value_delimiter = ','
    )]
    pub(crate) key_params: Vec<String>,
    /// Where the key is, tried in order (repeatable): query:NAME, header:NAME,
    /// cookie:NAME, log-data:NAME; with --key-param, its parameters come after
    /// [default: header:x-api-key, log-data:api_key, cookie:api_key, query:api_key].
    #[arg(long = "key-from", env = "EDGEMETER_KEY_FROM", value_delimiter = ',')]
    pub(crate) key_from: Vec<String>,
    /// Log format: auto (standard W3C, v2 JSON lines or Parquet, per object) or realtime [default: auto].
    #[arg(long, env = "EDGEMETER_FORMAT")]
    pub(crate) format: Option<String>,
    /// Real-time log fields as configured (any order; records use AWS's canonical order).
    #[arg(long, env = "EDGEMETER_FIELDS", value_delimiter = ',')]
    pub(crate) fields: Vec<String>,
    /// List only objects named for the last DURATION (48h, 2d, …) [default: 48h; the
    /// lake's first run lists everything].
    #[arg(long, env = "EDGEMETER_LOOKBACK")]
    pub(crate) lookback: Option<String>,
    /// List objects named for this date (or RFC 3339 hour) and later: for backfills.
    #[arg(long, env = "EDGEMETER_SINCE", conflicts_with = "lookback")]
    pub(crate) since: Option<String>,
    /// List everything under the source, whatever the file names say
    /// (`--full-listing=false` or EDGEMETER_FULL_LISTING=0 turns a config
    /// file's full listing off).
    #[arg(
        long,
        env = "EDGEMETER_FULL_LISTING",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub(crate) full_listing: Option<bool>,
    /// Drop lake partitions older than N days (UTC dates).
    #[arg(long, env = "EDGEMETER_RETAIN_DAYS")]
    pub(crate) retain_days: Option<u32>,
    /// Warn, and exit 3, when more than this share of an object's requests
    /// carry no API key (wrong key settings?); 1 never warns [default: 0.5].
    #[arg(long, env = "EDGEMETER_MAX_KEYLESS_SHARE")]
    pub(crate) max_keyless_share: Option<f64>,
    /// Write Prometheus text-format metrics of the run to this file.
    #[arg(long, env = "EDGEMETER_METRICS_FILE")]
    pub(crate) metrics_file: Option<PathBuf>,
    /// Objects downloaded at once [default: 16].
    #[arg(long, env = "EDGEMETER_CONCURRENCY")]
    pub(crate) concurrency: Option<usize>,
    /// Compressed bytes of logs merged and committed per batch (bytes, or 8MiB, 1GB…); bounds memory [default: 8MiB].
    #[arg(long, env = "EDGEMETER_BATCH_BYTES", value_parser = crate::config::parse_size)]
    pub(crate) batch_bytes: Option<u64>,
    /// Largest decompressed size accepted for one object [default: 8 GiB].
    #[arg(long, env = "EDGEMETER_MAX_OBJECT_BYTES", value_parser = crate::config::parse_size)]
    pub(crate) max_object_bytes: Option<u64>,
    /// Log text of one object parsed and committed at a time: a larger object
    /// is committed in parts of this size, and recorded as ingested after its
    /// last; bounds memory [default: 128 MiB].
    #[arg(long, env = "EDGEMETER_PART_BYTES", value_parser = crate::config::parse_size)]
    pub(crate) part_bytes: Option<u64>,
    /// Longest line accepted; a longer one is a bad line, never held whole [default: 1 MiB].
    #[arg(long, env = "EDGEMETER_MAX_LINE_BYTES", value_parser = crate::config::parse_size)]
    pub(crate) max_line_bytes: Option<u64>,
    /// Rows per data file of an hour, at most [default: 1000000].
    #[arg(long, env = "EDGEMETER_MAX_FILE_ROWS")]
    pub(crate) max_file_rows: Option<u64>,
    /// Bytes of string values per data file of an hour, about; bounds the
    /// memory of reading one file [default: 128 MiB].
    #[arg(long, env = "EDGEMETER_MAX_FILE_BYTES", value_parser = crate::config::parse_size)]
    pub(crate) max_file_bytes: Option<u64>,
    /// Print the run summary as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Print the settings the run would use (flags over environment over
    /// config file over defaults) as JSON, and exit without running.
    #[arg(long)]
    pub(crate) print_config: bool,
}

impl IngestFlags {
    fn overrides(&self, quiet: bool) -> Overrides {
        Overrides {
            sources: self.sources.clone(),
            lake: self.lake.clone(),
            endpoint_url: self.s3.endpoint_url.clone(),
            region: self.s3.region.clone(),
            key_params: self.key_params.clone(),
            key_from: self.key_from.clone(),
            format: self.format.clone(),
            fields: self.fields.clone(),
            lookback: self.lookback.clone(),
            since: self.since.clone(),
            full_listing: self.full_listing,
            retain_days: self.retain_days,
            max_keyless_share: self.max_keyless_share,
            metrics_file: self.metrics_file.clone(),
            concurrency: self.concurrency,
            batch_bytes: self.batch_bytes,
            max_object_bytes: self.max_object_bytes,
            part_bytes: self.part_bytes,
            max_line_bytes: self.max_line_bytes,
            max_file_rows: self.max_file_rows,
            max_file_bytes: self.max_file_bytes,
            progress: !quiet && !self.json,
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The config file (TOML); see the README for its keys. Without it, the
    /// text of EDGEMETER_CONFIG_TOML is used when set.
    #[arg(long, env = "EDGEMETER_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) flags: IngestFlags,
}

#[derive(Debug, Args)]
pub struct ReingestArgs {
    /// The config file (TOML), as for `run`; flags override it.
    #[arg(long, env = "EDGEMETER_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// End of the range (exclusive): objects named for hours before it
    /// (--since gives the start).
    #[arg(long)]
    pub(crate) until: String,
    #[command(flatten)]
    pub(crate) flags: IngestFlags,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
    /// The billing month, YYYY-MM.
    #[arg(long)]
    pub(crate) period: String,
    /// Bill the month of this IANA time zone instead of UTC (e.g. Europe/Berlin).
    #[arg(long, env = "EDGEMETER_TZ")]
    pub(crate) tz: Option<String>,
    /// The plans file (TOML); see the README.
    #[arg(long, env = "EDGEMETER_PLANS")]
    pub(crate) plans: PathBuf,
    #[arg(long, value_enum, default_value = "csv")]
    pub(crate) format: crate::export::formats::Format,
    /// Where to write: a path or s3://bucket/key (a manifest is written beside it).
    #[arg(long)]
    pub(crate) output: String,
    /// Export the lake as of a `requests` table version (as a manifest names
    /// it) or a time (RFC 3339 or a date).
    #[arg(long)]
    pub(crate) as_of: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
    /// The plans file (TOML) with monthly_quota / daily_quota.
    #[arg(long, env = "EDGEMETER_PLANS")]
    pub(crate) plans: PathBuf,
    /// Check as of this instant (RFC 3339 or a date) instead of now.
    #[arg(long)]
    pub(crate) at: Option<String>,
    /// Months and days of this IANA time zone instead of UTC.
    #[arg(long, env = "EDGEMETER_TZ")]
    pub(crate) tz: Option<String>,
    /// Where alerts go: a URL taking a JSON body with a `text` field (Slack, Discord).
    #[arg(long, env = "EDGEMETER_ALERT_WEBHOOK")]
    pub(crate) webhook: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Check the lake as of a `requests` table version (42) or a time (RFC 3339 or a date).
    #[arg(long)]
    pub(crate) as_of: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
    /// The month, YYYY-MM (UTC).
    #[arg(long)]
    pub(crate) period: String,
    /// The HTML file to write (or s3://bucket/key; - is stdout).
    #[arg(long)]
    pub(crate) output: String,
    /// The plans file: keys are named by their customers.
    #[arg(long, env = "EDGEMETER_PLANS")]
    pub(crate) plans: Option<PathBuf>,
    /// Report the lake as of a `requests` table version (42) or a time (RFC 3339 or a date).
    #[arg(long)]
    pub(crate) as_of: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
    /// Show only the newest N runs.
    #[arg(long, default_value_t = 50)]
    pub(crate) limit: usize,
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
    /// Write the new secret to this file (created, mode 0600; it must not
    /// exist); runs read it through EDGEMETER_KEY_SECRET_FILE. Without it
    /// the secret is printed once, for EDGEMETER_KEY_SECRET.
    #[arg(long)]
    pub(crate) secret_file: Option<PathBuf>,
    /// Store the new secret in AWS Secrets Manager under this name (never
    /// replacing a secret); runs read it through EDGEMETER_KEY_SECRET_ID.
    #[arg(long, value_name = "NAME", conflicts_with = "secret_file")]
    pub(crate) secret_manager: Option<String>,
}

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
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
    /// Start of the range (inclusive): a month (2025-11), a date (its
    /// midnight) or a time (2025-11-01T09:30) in --tz (UTC without), or RFC 3339.
    #[arg(long)]
    pub(crate) from: Option<String>,
    /// End of the range (exclusive), read as --from is.
    #[arg(long)]
    pub(crate) to: Option<String>,
    /// One row per key per window, with a `window_start` column.
    #[arg(long, value_enum)]
    pub(crate) by: Option<crate::query::usage::WindowUnit>,
    /// IANA zone (e.g. Europe/Berlin) of --from/--to and of the windows;
    /// window_start carries its offset.
    #[arg(long, env = "EDGEMETER_TZ")]
    pub(crate) tz: Option<String>,
    /// Also group by these dimensions (repeatable).
    #[arg(long = "group-by", value_enum)]
    pub(crate) group_by: Vec<crate::query::usage::Dimension>,
    /// Only this api_key_id (repeatable).
    #[arg(long = "key")]
    pub(crate) keys: Vec<String>,
    /// Only this raw key, hashed first (repeatable; honours EDGEMETER_KEY_SECRET).
    #[arg(long = "key-raw")]
    pub(crate) raw_keys: Vec<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: OutputFormat,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub(crate) output: Option<PathBuf>,
    /// Read the lake as of a `requests` table version (42) or a time (RFC 3339 or a date).
    #[arg(long)]
    pub(crate) as_of: Option<String>,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub(crate) lake: LakeArgs,
    #[arg(long, value_enum, default_value = "table")]
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

/// Runs a parsed command line; returns the process exit status.
pub async fn run(cli: Cli) -> Result<i32> {
    crate::key::load_managed_secret().await?;
    match cli.command {
        Command::Ingest(flags) => {
            let run = config::resolve(flags.overrides(cli.quiet), FileConfig::default())?;
            if flags.print_config {
                println!("{}", serde_json::to_string_pretty(&run.describe())?);
                return Ok(0);
            }
            run_ingests(run, flags.json, cli.quiet).await
        }
        Command::Run(args) => {
            let file = match (&args.config, std::env::var(CONFIG_TEXT_ENV)) {
                (Some(path), _) => FileConfig::load(path)?,
                (None, Ok(text)) => FileConfig::parse(&text, CONFIG_TEXT_ENV)?,
                (None, Err(_)) => FileConfig::default(),
            };
            let run = config::resolve(args.flags.overrides(cli.quiet), file)?;
            if args.flags.print_config {
                println!("{}", serde_json::to_string_pretty(&run.describe())?);
                return Ok(0);
            }
            run_ingests(run, args.flags.json, cli.quiet).await
        }
        Command::Reingest(args) => {
            let Some(since) = args.flags.since.clone() else {
                return Err(Error::Config(
                    "reingest needs --since (and --until): the range of hours to read again".into(),
                ));
            };
            let since = crate::time::parse_instant(&since).map_err(|e| e.in_setting("--since"))?;
            let until =
                crate::time::parse_instant(&args.until).map_err(|e| e.in_setting("--until"))?;
            if until <= since {
                return Err(Error::Config("--until must be after --since".into()));
            }
            let file = match &args.config {
                Some(path) => FileConfig::load(path)?,
                None => FileConfig::default(),
            };
            let mut run = config::resolve(args.flags.overrides(cli.quiet), file)?;
            for options in &mut run.ingests {
                options.window = crate::ingest::Window::Since(since);
                options.reingest_until = Some(until);
                options.retain_days = None;
            }
            if args.flags.print_config {
                println!("{}", serde_json::to_string_pretty(&run.describe())?);
                return Ok(0);
            }
            run_ingests(run, args.flags.json, cli.quiet).await
        }
        Command::Export(args) => {
            let options = crate::export::ExportOptions {
                lake: args.lake.lake,
                s3: args.lake.s3.settings(),
                period: args.period,
                tz: args.tz,
                plans: args.plans,
                format: args.format,
                output: args.output,
                as_of: as_of(args.as_of.as_deref())?,
            };
            let to_stdout = options.output == "-";
            let report = crate::export::export(&options).await?;
            if !cli.quiet {
                for file in &report.files {
                    let line = format!(
                        "wrote {} ({}, {})",
                        if to_stdout { "stdout" } else { file },
                        match report.events {
                            Some(n) => plural(n as u64, "event"),
                            None => plural(report.lines as u64, "invoice line"),
                        },
                        report.status
                    );
                    match to_stdout {
                        true => eprintln!("{line}"),
                        false => println!("{line}"),
                    }
                }
                for w in &report.warnings {
                    eprintln!("warning: not final: {w}");
                }
                if !report.unassigned_keys.is_empty() {
                    eprintln!(
                        "warning: {} with usage belong to no customer of --plans{}: {}",
                        plural(report.unassigned_keys.len() as u64, "key"),
                        match report.events {
                            Some(_) => " and are in no event",
                            None => " (lines without a customer)",
                        },
                        report.unassigned_keys.join(", ")
                    );
                }
                for r in &report.restatements {
                    let line = format!(
                        "restated {} [{}]: billable {} -> {}, total {} -> {}",
                        if r.customer_id.is_empty() {
                            "(no customer)"
                        } else {
                            &r.customer_id
                        },
                        r.api_key_ids.join(";"),
                        r.billable_before,
                        r.billable_after,
                        r.total_before,
                        r.total_after
                    );
                    match to_stdout {
                        true => eprintln!("{line}"),
                        false => println!("{line}"),
                    }
                }
            }
            Ok(0)
        }
        Command::Check(args) => {
            let lake = Lake::open(&args.lake.lake, &args.lake.s3.settings()).await?;
            let plans = crate::billing::plans::Plans::load(&args.plans)?;
            let at = match &args.at {
                Some(t) => crate::time::parse_instant(t)?,
                None => chrono::Utc::now(),
            };
            let report = crate::alerts::check(
                &lake,
                &plans,
                at,
                args.tz.as_deref(),
                args.webhook.as_deref(),
                as_of(args.as_of.as_deref())?,
            )
            .await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else if !cli.quiet {
                println!("quota use for {}:", report.period);
                for q in &report.quotas {
                    let of = |quota: Option<u64>| {
                        quota.map_or("no quota".to_string(), |q| format!("of {q}"))
                    };
                    println!(
                        "  {}: {} requests this month ({}), {} today ({})",
                        q.customer_id,
                        q.month_requests,
                        of(q.monthly_quota),
                        q.day_requests,
                        of(q.daily_quota)
                    );
                }
                for a in &report.alerts {
                    println!("ALERT {}", a.text);
                }
            }
            Ok(0)
        }
        Command::Report(args) => {
            let settings = args.lake.s3.settings();
            let lake = Lake::open(&args.lake.lake, &settings).await?;
            let period = crate::time::Period::month(&args.period, None)?;
            let plans = match &args.plans {
                Some(path) => Some(crate::billing::plans::Plans::load(path)?),
                None => None,
            };
            let html = crate::report::report(
                &lake,
                &period,
                as_of(args.as_of.as_deref())?,
                plans.as_ref(),
            )
            .await?;
            crate::lake::write_output(&args.output, html.into(), &settings).await?;
            if !cli.quiet && args.output != "-" {
                println!("wrote {}", args.output);
            }
            Ok(0)
        }
        Command::Runs(args) => {
            let lake = Lake::open(&args.lake.lake, &args.lake.s3.settings()).await?;
            let batch = crate::lake::runs::list(&lake, args.limit).await?;
            let schema = batch.schema();
            let stream = datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                schema,
                futures::stream::iter([Ok(batch)]),
            );
            write(Box::pin(stream), args.format, None).await?;
            Ok(0)
        }
        Command::Init(args) => {
            let lake = Lake::open_or_create(&args.lake.lake, &args.lake.s3.settings()).await?;
            if let Some(recorded) = crate::lake::keying::load(&lake).await? {
                return Err(Error::Config(format!(
                    "{} already records how its keys are hashed ({}); init starts new lakes only",
                    args.lake.lake, recorded.mode
                )));
            }
            let secret = crate::key::generate_secret();
            let hasher = crate::key::KeyHasher::new(Some(secret.clone().into_bytes()));
            if let Some(path) = &args.secret_file {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| Error::io(path, e))?;
                writeln!(file, "{secret}").map_err(|e| Error::io(path, e))?;
            }
            let stored = match &args.secret_manager {
                Some(name) => Some(crate::key::create_managed_secret(name, &secret).await?),
                None => None,
            };
            crate::lake::keying::check_or_record(&lake, &hasher).await?;
            let fingerprint = hasher.fingerprint().unwrap_or_default();
            match (&args.secret_file, &args.secret_manager) {
                (Some(path), _) => println!(
                    "initialised {} (secret fingerprint {fingerprint}); run with EDGEMETER_KEY_SECRET_FILE={}",
                    args.lake.lake,
                    path.display()
                ),
                (None, Some(name)) => println!(
                    "initialised {} (secret fingerprint {fingerprint}); the secret is in AWS Secrets Manager as {}; run with EDGEMETER_KEY_SECRET_ID={name}",
                    args.lake.lake,
                    stored.unwrap_or_default()
                ),
                (None, None) => println!(
                    "initialised {} (secret fingerprint {fingerprint}); keep this secret (in a secret manager) and run with it set:\nEDGEMETER_KEY_SECRET={secret}",
                    args.lake.lake
                ),
            }
            Ok(0)
        }
        Command::Unreadable(args) => {
            let lake = Lake::open(&args.lake.lake, &args.lake.s3.settings()).await?;
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
                if !cli.quiet {
                    eprintln!("acknowledged {} objects", done.len());
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
            Ok(0)
        }
        Command::Usage(args) => {
            let lake = Lake::open(&args.lake.lake, &args.lake.s3.settings()).await?;
            let range =
                TimeRange::parse_in(args.from.as_deref(), args.to.as_deref(), args.tz.as_deref())?;
            let hasher = crate::key::KeyHasher::from_env();
            let mut keys = args.keys;
            keys.extend(args.raw_keys.iter().map(|raw| hasher.id_of(raw)));
            let query = crate::query::usage::UsageQuery {
                range,
                by: args.by,
                tz: args.tz,
                group_by: args.group_by,
                keys,
            };
            let session = LakeSession::open_as_of(&lake, as_of(args.as_of.as_deref())?).await?;
            let stream = query.run(&session).await?;
            write(stream, args.format, args.output.as_deref()).await?;
            Ok(0)
        }
        Command::Query(mut args) => {
            let sql = match (args.sql.take(), &args.file) {
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
            let named = library::QUERIES.iter().any(|q| q.name == sql);
            if !named && is_a_name(&sql) {
                return Err(Error::Config(format!(
                    "{sql:?} is not a named query{} (see `edgemeter queries`)",
                    match library::nearest(&sql).as_slice() {
                        [] => String::new(),
                        names => format!("; did you mean {}?", names.join(" or ")),
                    }
                )));
            }
            let lake = Lake::open(&args.lake.lake, &args.lake.s3.settings()).await?;
            let limits = crate::query::QueryLimits {
                memory_mib: args.memory_mib,
                timeout_secs: args.timeout_secs,
            };
            let session =
                LakeSession::open_with(&lake, as_of(args.as_of.as_deref())?, &limits).await?;
            if !named && !args.params.is_empty() {
                return Err(crate::Error::Config(
                    "--param applies to named queries; the SQL given is not one (see `edgemeter queries`)"
                        .into(),
                ));
            }
            limits
                .timed(async {
                    let stream = if named {
                        let given = library::parse_params(&args.params)?;
                        session.named_from_text(&sql, &given).await?
                    } else {
                        session.read_only_sql(&sql).await?.execute_stream().await?
                    };
                    write(stream, args.format, args.output.as_deref()).await
                })
                .await?;
            Ok(0)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "edgemeter",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
        Command::Man => {
            use clap::CommandFactory;
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .map_err(|e| Error::io("<man page>", e))?;
            crate::lake::write_output("-", page.into(), &S3Settings::default()).await?;
            Ok(0)
        }
        Command::Queries => {
            for q in library::QUERIES {
                let params: Vec<String> = q
                    .params()
                    .iter()
                    .map(|p| match &p.default {
                        Some(d) => format!("{}={d}", p.name),
                        None => p.name.clone(),
                    })
                    .collect();
                println!(
                    "{} ({})\n  {}\n",
                    q.name,
                    params.join(", "),
                    q.description().replace('\n', "\n  ")
                );
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
        Command::Maintain(args) => {
            let lake = Lake::open(&args.lake.lake, &args.lake.s3.settings()).await?;
            let options = crate::lake::maintain::MaintainOptions {
                retain_versions: chrono::Duration::hours(i64::from(args.retain_versions_hours)),
                retain_days: args.retain_days,
            };
            let summary = crate::lake::maintain::maintain(&lake, &options).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else if !cli.quiet {
                for (table, version) in &summary.checkpoints {
                    println!("checkpointed {table} at version {version}");
                }
                for (table, n) in &summary.files_vacuumed {
                    println!("vacuumed {n} files of {table}");
                }
                for (table, n) in &summary.log_files_removed {
                    println!("removed {n} expired log files of {table}");
                }
                println!(
                    "compacted {} ingested-record files",
                    summary.record_files_compacted
                );
                for p in &summary.partitions_dropped {
                    println!("dropped {p}");
                }
            }
            Ok(0)
        }
        Command::Migrate(args) => {
            let lake = Lake::open(&args.lake, &args.s3.settings()).await?;
            let summary = crate::lake::migrate::migrate(&lake).await?;
            if !cli.quiet {
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
            Ok(0)
        }
    }
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

/// `--as-of`, parsed; the newest version when absent.
fn as_of(text: Option<&str>) -> Result<crate::lake::delta::AsOf> {
    text.map_or(
        Ok(crate::lake::delta::AsOf::Latest),
        crate::lake::delta::AsOf::parse,
    )
}

/// Ingests each source in turn, prints summaries, writes metrics; the exit
/// status is partial (3) if any object of any source was unreadable.
async fn run_ingests(run: RunConfig, json: bool, quiet: bool) -> Result<i32> {
    let mut summaries = Vec::new();
    let mut failure = None;
    for options in &run.ingests {
        match ingest(options).await {
            Ok(summary) => {
                if json {
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                } else if !quiet {
                    print!("{}", render_summary(&summary));
                }
                summaries.push(summary);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let partial = summaries.iter().any(IngestSummary::is_partial);
    if let Some(path) = &run.metrics_file {
        crate::metrics::write(path, &summaries, failure.is_none() && !partial)?;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(if partial { EXIT_PARTIAL } else { 0 }),
    }
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

/// A byte count in the unit that suits it: `512 B`, `1.5 KiB`, `12.3 MiB`.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// "1 object", "2 objects".
pub(crate) fn plural(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        _ => format!("{n} {noun}s"),
    }
}

/// The human-readable run summary.
pub(crate) fn render_summary(s: &IngestSummary) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {}: {} listed, {} ingested, {} already ingested, {} unreadable ({:.2} s)",
        s.run_id,
        plural(s.objects_listed, "object"),
        s.objects_ingested,
        s.objects_skipped,
        s.objects_unreadable,
        s.elapsed_ms as f64 / 1000.0
    );
    let _ = writeln!(out, "  listing:  {}", s.listing);
    if s.objects_outside_window > 0 {
        let _ = writeln!(
            out,
            "  left out: {} named for hours before the listing window; \
             --since DATE, a longer --lookback or --full-listing takes them in",
            plural(s.objects_outside_window, "object")
        );
    }
    if s.objects_in_lake > 0 {
        let _ = writeln!(
            out,
            "  left out: {} of the lake itself, which is inside the source",
            plural(s.objects_in_lake, "file")
        );
    }
    if s.objects_not_logs > 0 {
        let _ = writeln!(
            out,
            "  skipped:  {} not CloudFront logs (skipped while unchanged; edgemeter unreadable lists them)",
            plural(s.objects_not_logs, "object")
        );
    }
    for n in &s.not_logs {
        let _ = writeln!(out, "    {}: {}", n.object, n.reason);
    }
    if s.objects_listed == 0 && s.objects_retried == 0 && s.listing == "full" {
        let _ = writeln!(out, "  nothing found: no log objects under the source");
    } else if s.objects_listed == 0 && s.objects_retried == 0 {
        let _ = writeln!(
            out,
            "  nothing found: no log objects in this listing; \
             older ones need --lookback, --since or --full-listing"
        );
    }
    let _ = writeln!(
        out,
        "  bytes:    {} read, {} of log text",
        size(s.bytes_read),
        size(s.bytes_decompressed)
    );
    let _ = writeln!(
        out,
        "  lines:    {} ({} bad), {} requests ({} damaged values stored as null), {} without an API key",
        s.lines, s.bad_lines, s.requests, s.field_errors, s.keyless_requests
    );
    let _ = writeln!(
        out,
        "  rows:     {} written, {} duplicate requests skipped, {} touched",
        s.rows_written,
        s.duplicates,
        plural(s.partitions_touched.len() as u64, "partition")
    );
    if s.rows_replaced > 0 {
        let _ = writeln!(
            out,
            "  replaced: {} rows of the objects read again",
            s.rows_replaced
        );
    }
    for (key, n) in &s.conflicting_keys {
        let _ = writeln!(
            out,
            "  {n} requests billed to {key} also carried another key"
        );
    }
    for (object, n) in &s.bad_lines_by_object {
        let _ = writeln!(out, "  bad lines in {object}: {n}");
    }
    for b in &s.bad_line_samples {
        let _ = writeln!(out, "    {}:{}: {}", b.object, b.line, b.reason);
    }
    for f in &s.field_error_samples {
        let _ = writeln!(
            out,
            "    {}:{}: field {}: {}",
            f.object, f.line, f.field, f.reason
        );
    }
    for p in &s.partitions_dropped {
        let _ = writeln!(out, "  retention dropped {p}");
    }
    if !s.partitions_kept_from_retention.is_empty() {
        let _ = writeln!(
            out,
            "  retention kept {} older than --retain-days that this run wrote ({}); \
             the next run with the same retention drops them",
            plural(s.partitions_kept_from_retention.len() as u64, "day"),
            s.partitions_kept_from_retention.join(", ")
        );
    }
    for u in &s.unreadable {
        let _ = writeln!(out, "  unreadable {}: {}", u.object, u.reason);
    }
    for k in &s.mostly_keyless {
        let _ = writeln!(
            out,
            "  WARNING {}: {} of {} requests have no API key; are --key-from / --key-param right? \
             (fix them, then `edgemeter reingest` reads such objects again)",
            k.object, k.keyless, k.requests
        );
    }
    if s.unreadable_outstanding > 0 {
        let _ = writeln!(
            out,
            "  {} unreadable objects are retried by every run until read or acknowledged (edgemeter unreadable)",
            s.unreadable_outstanding
        );
    }
    out
}
