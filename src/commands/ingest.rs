//! `edgemeter ingest`: read CloudFront logs and merge them into the lake.
//! Its settings, [`IngestSettings`], are shared by `run` and `reingest`, and
//! so is [`run_ingests`], which runs the ingests they resolve to.

use super::Outcome;
use crate::config::{self, RunConfig, parse_size};
use crate::error::Result;
use crate::ingest::{IngestSummary, ingest};
use clap::Args;
use std::path::{Path, PathBuf};

/// The ingest settings, shared by `ingest`, `run` and `reingest`, in one
/// form: the command line's flags (each also an `EDGEMETER_*` variable) and
/// the keys of the `edgemeter.toml` file of `run` (every key optional). Unset
/// ones are `None` or empty; [`config::resolve`] merges flags and
/// environment over the file over the defaults once, and validates the result.
#[derive(Debug, Clone, Default, Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// Where the logs are: s3://bucket/prefix/ or a local directory (read recursively).
    #[arg(long = "source", env = "EDGEMETER_SOURCE", value_delimiter = ',')]
    pub(crate) sources: Vec<String>,
    /// The lake: a local directory or s3://bucket/prefix/.
    #[arg(long, env = "EDGEMETER_LAKE")]
    pub(crate) lake: Option<String>,
    /// S3-compatible endpoint (MinIO, R2, a test server); uses path-style addressing.
    /// AWS_ENDPOINT_URL is honoured too.
    #[arg(long, env = "EDGEMETER_ENDPOINT_URL")]
    pub(crate) endpoint_url: Option<String>,
    /// AWS region, when the environment or profile names none.
    #[arg(long, env = "EDGEMETER_REGION")]
    pub(crate) region: Option<String>,
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
    #[arg(long, env = "EDGEMETER_BATCH_BYTES", value_parser = parse_size)]
    #[serde(deserialize_with = "size_setting")]
    pub(crate) batch_bytes: Option<u64>,
    /// Largest decompressed size accepted for one object [default: 8 GiB].
    #[arg(long, env = "EDGEMETER_MAX_OBJECT_BYTES", value_parser = parse_size)]
    #[serde(deserialize_with = "size_setting")]
    pub(crate) max_object_bytes: Option<u64>,
    /// Log text of one object parsed and committed at a time: a larger object
    /// is committed in parts of this size, and recorded as ingested after its
    /// last; bounds memory [default: 128 MiB].
    #[arg(long, env = "EDGEMETER_PART_BYTES", value_parser = parse_size)]
    #[serde(deserialize_with = "size_setting")]
    pub(crate) part_bytes: Option<u64>,
    /// Longest line accepted; a longer one is a bad line, never held whole [default: 1 MiB].
    #[arg(long, env = "EDGEMETER_MAX_LINE_BYTES", value_parser = parse_size)]
    #[serde(deserialize_with = "size_setting")]
    pub(crate) max_line_bytes: Option<u64>,
    /// Rows per data file of an hour, at most [default: 1000000].
    #[arg(long, env = "EDGEMETER_MAX_FILE_ROWS")]
    pub(crate) max_file_rows: Option<u64>,
    /// Bytes of string values per data file of an hour, about; bounds the
    /// memory of reading one file [default: 128 MiB].
    #[arg(long, env = "EDGEMETER_MAX_FILE_BYTES", value_parser = parse_size)]
    #[serde(deserialize_with = "size_setting")]
    pub(crate) max_file_bytes: Option<u64>,
    /// Trade time for memory, to fit a 256 MiB container: the defaults of
    /// --concurrency, --part-bytes and --max-file-bytes become 4, 20MiB and
    /// 32MiB, two batches are in memory instead of three,
    /// and freed memory goes back to the system at once (about a fifth more
    /// time; `--low-memory=false` or EDGEMETER_LOW_MEMORY=0 turns a config
    /// file's setting off).
    #[arg(
        long,
        env = "EDGEMETER_LOW_MEMORY",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub(crate) low_memory: Option<bool>,
    /// The plans file whose meters each run keeps per day (`meters_daily`,
    /// as `maintain --plans` does); `plans` at the config file's top level.
    #[arg(long, env = "EDGEMETER_PLANS")]
    #[serde(skip)]
    pub(crate) plans: Option<PathBuf>,
    /// Read only shard I of N of the source's objects (0-based: 0/4 … 3/4),
    /// by a stable hash of each object's name; N workers with one shard each
    /// share a source. Without it, a run reads every object.
    #[arg(long, env = "EDGEMETER_SHARD")]
    pub(crate) shard: Option<String>,
    /// With an sqs:// source: the queue URL where messages go whose objects
    /// cannot be read (or that are no S3 notifications), before they are
    /// deleted; without it they stay in the queue for its redrive policy.
    #[arg(long, env = "EDGEMETER_DEAD_LETTER_QUEUE")]
    pub(crate) dead_letter_queue: Option<String>,
    /// With an sqs:// source: stop receiving after N messages (the run
    /// finishes those); without it, a run receives until the queue is empty.
    #[arg(long, env = "EDGEMETER_MAX_MESSAGES")]
    pub(crate) max_messages: Option<u64>,
    /// With an sqs:// source: seconds one receive waits for messages (long
    /// polling, 0 to 20); a run ends after a receive that found none [default: 20].
    #[arg(long, env = "EDGEMETER_WAIT_SECS")]
    pub(crate) wait_secs: Option<u32>,
    /// With an sqs:// source: also ingest these listing sources (s3://bucket/prefix/
    /// or a directory) after the queue, to take in what notifications missed.
    #[arg(long, env = "EDGEMETER_RECONCILE", value_delimiter = ',')]
    pub(crate) reconcile: Vec<String>,
    /// Print the run summary as JSON.
    #[arg(long)]
    #[serde(skip)]
    pub(crate) json: bool,
    /// Print the settings the run would use (flags over environment over
    /// config file over defaults) as JSON, and exit without running.
    #[arg(long)]
    #[serde(skip)]
    pub(crate) print_config: bool,
}

impl IngestSettings {
    /// The ingest settings of a config file (its top level).
    pub(crate) fn load(path: &Path) -> Result<Self> {
        config::ConfigFile::load(path).map(config::ConfigFile::ingest)
    }

    /// Parses config text; `origin` names it in errors.
    pub(crate) fn parse(text: &str, origin: &str) -> Result<Self> {
        config::ConfigFile::parse(text, origin).map(config::ConfigFile::ingest)
    }

    /// Whether to draw a progress bar: not when quiet, nor for JSON.
    pub(crate) fn progress(&self, quiet: bool) -> bool {
        !quiet && !self.json
    }
}

/// A size in the config file: a number of bytes or a string with a unit.
fn size_setting<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<u64>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match <Option<Size> as serde::Deserialize>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Size::Bytes(n)) => Ok(Some(n)),
        Some(Size::Text(text)) => parse_size(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// Ingests the sources given by flags and the environment (no config file).
pub(crate) async fn run(settings: IngestSettings, quiet: bool) -> Result<Outcome> {
    let progress = settings.progress(quiet);
    let (json, print_config) = (settings.json, settings.print_config);
    let run = config::resolve(settings, IngestSettings::default(), progress)?;
    if print_config {
        println!("{}", serde_json::to_string_pretty(&run.describe())?);
        return Ok(Outcome::Done);
    }
    run_ingests(run, json, quiet).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const README: &str = include_str!("../../README.md");

    /// The commands whose flags are the ingest settings: those of a README
    /// flag-table row that names no commands.
    const INGEST_COMMANDS: [&str; 3] = ["ingest", "run", "reingest"];

    /// The rows of the README's flag table as (flag, its `EDGEMETER_*`
    /// variable, the commands the row is for), given every command's name.
    fn readme_flags(commands: &[String]) -> Vec<(String, Option<String>, Vec<String>)> {
        let table = README
            .split("| flag | env | meaning |\n|---|---|---|\n")
            .nth(1)
            .expect("the README has a flag table");
        let names = |list: &str| -> Vec<String> {
            list.split(", ")
                .map(|name| name.trim_matches('`').to_string())
                .collect()
        };
        table
            .lines()
            .take_while(|line| line.starts_with('|'))
            .filter_map(|line| {
                // No cell of the table holds a `|`.
                let cells: Vec<&str> = line.split('|').skip(1).map(str::trim).collect();
                let flag = cells[0].trim_matches('`');
                if flag.is_empty() {
                    return None;
                }
                let env = cells[1]
                    .split('`')
                    .find(|word| word.starts_with("EDGEMETER_"))
                    .map(str::to_string);
                // "`usage`, `query`: …" names the commands a row is for;
                // "every command: …" and "every command but `man`: …" too.
                let scope = match cells[2].split_once(": ") {
                    Some(("every command", _)) => commands.to_vec(),
                    Some((list, _)) if list.starts_with("every command but ") => {
                        let but = names(&list["every command but ".len()..]);
                        for name in &but {
                            assert!(commands.contains(name), "{flag}: no command {name}");
                        }
                        commands
                            .iter()
                            .filter(|c| !but.contains(c))
                            .cloned()
                            .collect()
                    }
                    Some((list, _)) if list.starts_with('`') => names(list),
                    _ => INGEST_COMMANDS.map(str::to_string).to_vec(),
                };
                Some((flag.to_string(), env, scope))
            })
            .collect()
    }

    /// A README row's default, the last parenthesis of its meaning when it
    /// starts with a digit (`(4096)`, `(128 MiB)`, `(48h; …)`): its first part,
    /// without spaces and thousands separators.
    fn readme_default(meaning: &str) -> Option<String> {
        let last = meaning.rsplit_once('(')?.1.split_once(')')?.0;
        let last = last.trim_start_matches('`');
        let value = last
            .split(';')
            .next()
            .unwrap_or_default()
            .replace([',', ' ', '`'], "")
            .to_ascii_lowercase();
        // A number, perhaps with a unit (`128mib`, `48h`).
        let unit = value.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        let number = value.len() > unit.len() && unit.bytes().all(|b| b.is_ascii_lowercase());
        number.then_some(value)
    }

    /// Every default a README row states is the one its flag's help states
    /// (which the test above holds to the named constants).
    #[test]
    fn the_readme_flag_tables_defaults_are_the_help_texts() {
        use clap::CommandFactory;
        let mut cli = crate::cli::Cli::command();
        cli.build();
        let table = README
            .split("| flag | env | meaning |\n|---|---|---|\n")
            .nth(1)
            .expect("the README has a flag table");
        let commands: Vec<String> = cli
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .filter(|name| name != "help")
            .collect();
        let scopes = readme_flags(&commands);
        let rows = table.lines().take_while(|line| line.starts_with('|'));
        let mut checked = 0;
        for (line, (flag, _, scope)) in rows
            .filter(|line| !line.split('|').nth(1).unwrap_or_default().trim().is_empty())
            .zip(&scopes)
        {
            let meaning = line.split('|').nth(3).unwrap_or_default();
            let Some(readme) = readme_default(meaning) else {
                continue;
            };
            for name in scope {
                let command = cli.find_subcommand(name).unwrap();
                let arg = command
                    .get_arguments()
                    .find(|a| a.get_long() == Some(&flag[2..]))
                    .unwrap_or_else(|| panic!("{flag} of {name}"));
                let given: Vec<String> = arg
                    .get_default_values()
                    .iter()
                    .map(|v| v.to_string_lossy().into_owned())
                    .collect();
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                let stated = match given.as_slice() {
                    [one] => one.clone(),
                    _ => help
                        .split_once("[default: ")
                        .and_then(|(_, d)| d.split_once(']'))
                        .map(|(d, _)| d.to_string())
                        .unwrap_or_else(|| {
                            panic!("{name} {flag}: the README says ({readme}), the help no default")
                        }),
                };
                let stated = stated
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .replace([',', ' '], "")
                    .to_ascii_lowercase();
                let same = stated == readme
                    || matches!((parse_size(&stated), parse_size(&readme)), (Ok(a), Ok(b)) if a == b);
                assert!(
                    same,
                    "{name} {flag}: the README says ({readme}), the help {stated}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 10, "only {checked} defaults found in the README");
    }

    #[test]
    fn the_readme_flag_table_lists_exactly_every_commands_flags() {
        use clap::CommandFactory;
        let mut cli = crate::cli::Cli::command();
        // Building propagates global flags (`--quiet`) to the subcommands.
        cli.build();
        let commands: Vec<String> = cli
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .filter(|name| name != "help")
            .collect();
        for command in ["ingest", "run", "reingest", "usage", "maintain"] {
            assert!(commands.iter().any(|c| c == command), "{command}");
        }
        let rows = readme_flags(&commands);
        for (flag, _, scope) in &rows {
            for name in scope {
                assert!(commands.contains(name), "{flag}: no command {name}");
            }
        }
        for name in &commands {
            let command = cli.find_subcommand(name).unwrap();
            let flags: BTreeSet<(String, Option<String>)> = command
                .get_arguments()
                .filter_map(|arg| {
                    let long = arg.get_long()?;
                    let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
                    (long != "help" && long != "version").then(|| (format!("--{long}"), env))
                })
                .collect();
            let documented: BTreeSet<(String, Option<String>)> = rows
                .iter()
                .filter(|(_, _, scope)| scope.contains(name))
                .map(|(flag, env, _)| (flag.clone(), env.clone()))
                .collect();
            assert_eq!(
                documented.difference(&flags).collect::<Vec<_>>(),
                Vec::<&(String, Option<String>)>::new(),
                "in the README's flag table for `{name}`, not flags of it"
            );
            assert_eq!(
                flags.difference(&documented).collect::<Vec<_>>(),
                Vec::<&(String, Option<String>)>::new(),
                "flags of `{name}` missing from the README's flag table"
            );
        }
    }

    /// Settings stay unset (`None`) until they are merged with the config
    /// file's ([`config::resolve`] for ingest, each command's `validate` for
    /// the others), so clap cannot show their defaults: their help text names
    /// them by hand, and this checks it against the named constants the merge
    /// falls back to. No other flag of any command has a hand-written default
    /// (clap shows theirs, from constants).
    #[test]
    fn the_help_texts_defaults_are_the_named_constants() {
        use crate::config::{
            DEFAULT_BATCH_BYTES, DEFAULT_CONCURRENCY, DEFAULT_LOG_FORMAT, DEFAULT_LOOKBACK,
            parse_duration,
        };
        use clap::CommandFactory;
        let size = |text: &str| parse_size(text).unwrap();
        use clap::ValueEnum;
        let value_name =
            |value: Option<clap::builder::PossibleValue>| value.unwrap().get_name().to_string();
        let check_ingest = |flag: &str, text: &str| match flag {
            "--key-from" => {
                let sources: Vec<crate::key::KeySource> =
                    text.split(", ").map(|s| s.parse().unwrap()).collect();
                assert_eq!(sources, crate::key::default_sources(), "{flag}");
            }
            "--format" => assert_eq!(text, DEFAULT_LOG_FORMAT, "{flag}"),
            "--lookback" => {
                let duration = text.split(';').next().unwrap();
                assert_eq!(
                    parse_duration(duration).unwrap(),
                    DEFAULT_LOOKBACK,
                    "{flag}"
                );
            }
            "--max-keyless-share" => assert_eq!(
                text.parse::<f64>().unwrap(),
                crate::ingest::DEFAULT_MAX_KEYLESS_SHARE,
                "{flag}"
            ),
            "--concurrency" => {
                assert_eq!(
                    text.parse::<usize>().unwrap(),
                    DEFAULT_CONCURRENCY,
                    "{flag}"
                )
            }
            "--batch-bytes" => assert_eq!(size(text), DEFAULT_BATCH_BYTES, "{flag}"),
            "--max-object-bytes" => assert_eq!(
                size(text),
                crate::format::DEFAULT_MAX_OBJECT_BYTES,
                "{flag}"
            ),
            "--part-bytes" => assert_eq!(size(text), crate::ingest::DEFAULT_PART_BYTES, "{flag}"),
            "--max-line-bytes" => assert_eq!(
                size(text),
                crate::format::DEFAULT_MAX_LINE_BYTES as u64,
                "{flag}"
            ),
            "--max-file-rows" => assert_eq!(
                size(text),
                crate::lake::partition::MAX_FILE_ROWS as u64,
                "{flag}"
            ),
            "--max-file-bytes" => assert_eq!(
                size(text),
                crate::lake::partition::MAX_FILE_BYTES as u64,
                "{flag}"
            ),
            "--wait-secs" => assert_eq!(
                text.parse::<u32>().unwrap(),
                crate::ingest::DEFAULT_WAIT_SECS,
                "{flag}"
            ),
            _ => panic!("{flag}: a default written in the help text, not shown by clap"),
        };
        let check = |command: &str, flag: &str, text: &str| match (command, flag) {
            ("usage", "--format") => assert_eq!(
                text,
                value_name(super::super::DEFAULT_OUTPUT_FORMAT.to_possible_value())
            ),
            ("usage", "--per") => assert_eq!(
                text,
                value_name(crate::billing::metering::Per::default().to_possible_value())
            ),
            ("export", "--format") => assert_eq!(
                text,
                value_name(super::super::export::DEFAULT_EXPORT_FORMAT.to_possible_value())
            ),
            ("query", "--format") => assert_eq!(
                text,
                value_name(super::super::DEFAULT_OUTPUT_FORMAT.to_possible_value())
            ),
            ("query", "--memory-mib") => {
                assert_eq!(text, crate::query::DEFAULT_QUERY_MEMORY_MIB.to_string())
            }
            ("query", "--timeout-secs") => {
                assert_eq!(text, crate::query::DEFAULT_QUERY_TIMEOUT_SECS.to_string())
            }
            ("maintain", "--retain-versions-hours") => assert_eq!(
                text,
                crate::lake::maintain::DEFAULT_RETAIN_VERSIONS_HOURS.to_string()
            ),
            ("serve", "--listen") => assert_eq!(text, super::super::serve::DEFAULT_LISTEN),
            ("serve", "--max-rows") => {
                assert_eq!(text, super::super::serve::DEFAULT_MAX_ROWS.to_string())
            }
            ("serve", "--timeout-secs") => {
                assert_eq!(text, super::super::serve::DEFAULT_TIMEOUT_SECS.to_string())
            }
            ("serve", "--request-timeout-secs") => assert_eq!(
                text,
                super::super::serve::DEFAULT_REQUEST_TIMEOUT_SECS.to_string()
            ),
            ("serve", "--memory-mib") => {
                assert_eq!(text, crate::query::DEFAULT_QUERY_MEMORY_MIB.to_string())
            }
            ("serve", "--rate-per-minute") => assert_eq!(
                text,
                super::super::serve::DEFAULT_RATE_PER_MINUTE.to_string()
            ),
            (_, flag) => check_ingest(flag, text),
        };
        let mut cli = crate::cli::Cli::command();
        cli.build();
        let mut checked = BTreeSet::new();
        for command in cli.get_subcommands() {
            for arg in command.get_arguments() {
                let help = [arg.get_help(), arg.get_long_help()]
                    .into_iter()
                    .flatten()
                    .map(|h| h.to_string())
                    .collect::<Vec<_>>()
                    .join(" ");
                let Some((_, rest)) = help.split_once("[default: ") else {
                    continue;
                };
                let text = rest.split(']').next().unwrap();
                let flag = format!("--{}", arg.get_long().unwrap());
                check(command.get_name(), &flag, text);
                checked.insert((command.get_name().to_string(), flag));
            }
        }
        let ingest_settings = |command: &str| {
            [
                "--key-from",
                "--format",
                "--lookback",
                "--max-keyless-share",
                "--concurrency",
                "--batch-bytes",
                "--max-object-bytes",
                "--part-bytes",
                "--max-line-bytes",
                "--max-file-rows",
                "--max-file-bytes",
                "--wait-secs",
            ]
            .map(|flag| (command.to_string(), flag.to_string()))
        };
        let mut expected: BTreeSet<(String, String)> = ["ingest", "run", "reingest"]
            .into_iter()
            .flat_map(ingest_settings)
            .collect();
        for (command, flag) in [
            ("usage", "--format"),
            ("usage", "--per"),
            ("export", "--format"),
            ("query", "--format"),
            ("query", "--memory-mib"),
            ("query", "--timeout-secs"),
            ("maintain", "--retain-versions-hours"),
            ("serve", "--listen"),
            ("serve", "--max-rows"),
            ("serve", "--timeout-secs"),
            ("serve", "--request-timeout-secs"),
            ("serve", "--memory-mib"),
            ("serve", "--rate-per-minute"),
        ] {
            expected.insert((command.to_string(), flag.to_string()));
        }
        assert_eq!(checked, expected);
    }

    #[test]
    fn the_readme_config_file_example_is_ingest_settings() {
        let example = README
            .split("```toml\n# edgemeter.toml")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("the README has an edgemeter.toml example");
        // Its commented-out keys too.
        let text: String = example
            .lines()
            .map(|line| line.strip_prefix("# ").unwrap_or(line))
            .filter(|line| line.contains(" = "))
            .map(|line| format!("{line}\n"))
            .collect();
        let settings = IngestSettings::parse(&text, "README").unwrap();
        assert_eq!(settings.sources.len(), 2);
        assert_eq!(settings.batch_bytes, Some(8 << 20));
        assert_eq!(settings.max_file_rows, Some(1_000_000));
        // Flags that are not settings are no keys of the file.
        assert!(IngestSettings::parse("json = true", "test").is_err());
        assert!(IngestSettings::parse("print_config = true", "test").is_err());
    }
}
