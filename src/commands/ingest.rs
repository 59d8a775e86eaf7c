//! `edgemeter ingest`: read CloudFront logs and merge them into the lake.
//! Its settings, [`IngestFlags`], are shared by `run` and `reingest`, and so
//! is [`run_ingests`], which runs the ingests they resolve to.

use super::{Outcome, S3Args};
use crate::config::{self, FileConfig, Overrides, RunConfig};
use crate::error::Result;
use crate::ingest::{IngestSummary, ingest};
use clap::Args;
use std::path::PathBuf;

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
    pub(crate) fn overrides(&self, quiet: bool) -> Overrides {
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

/// Ingests the sources given by flags and the environment (no config file).
pub(crate) async fn run(flags: IngestFlags, quiet: bool) -> Result<Outcome> {
    let run = config::resolve(flags.overrides(quiet), FileConfig::default())?;
    if flags.print_config {
        println!("{}", serde_json::to_string_pretty(&run.describe())?);
        return Ok(Outcome::Done);
    }
    run_ingests(run, flags.json, quiet).await
}

/// Ingests each source in turn, prints summaries, writes metrics; the outcome
/// is partial if any object of any source was unreadable.
pub(crate) async fn run_ingests(run: RunConfig, json: bool, quiet: bool) -> Result<Outcome> {
    let mut summaries = Vec::new();
    let mut failure = None;
    for options in &run.ingests {
        match ingest(options).await {
            Ok(summary) => {
                if json {
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                } else if !quiet {
                    print!("{}", crate::render::ingest_summary(&summary));
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
        None => Ok(if partial {
            Outcome::Partial
        } else {
            Outcome::Done
        }),
    }
}
