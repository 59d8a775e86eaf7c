//! Settings from flags, `EDGEMETER_*` environment variables and the
//! `edgemeter.toml` file, merged once (flags > env > file > defaults).
//!
//! The file's top level holds the ingest settings ([`IngestSettings`]) and
//! the settings several commands share ([`Shared`]); a table per command
//! (`[usage]`, `[export]`, `[check]`, `[report]`, `[serve]`, `[query]`,
//! `[maintain]`) holds that command's own, in the form
//! of its clap struct ([`CommandSettings`]). Ingest settings resolve here
//! into validated [`IngestOptions`], one per source; the other commands
//! merge with [`layered`] and validate in their own `validate`. The defaults
//! are named here or beside the code they bound.

use crate::aws::S3Settings;
use crate::commands::ingest::IngestSettings;
use crate::error::{Error, Result};
use crate::format::DEFAULT_MAX_OBJECT_BYTES;
use crate::format::{LogFormat, ParseOptions};
use crate::ingest::{IngestOptions, QueueOptions, Window};
use crate::key::{KeySource, default_sources};
use crate::source::sqs::QueueUrl;
use crate::time::parse_instant;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The commands with a table of their own in the config file.
pub(crate) const COMMAND_TABLES: [&str; 7] = [
    "usage", "export", "check", "report", "serve", "query", "maintain",
];

/// Top-level keys of the config file that no ingest reads, only other
/// commands (the ingest settings hold the rest of [`Shared`]'s).
const SHARED_ONLY_KEYS: [&str; 2] = ["plans", "tz"];

/// The settings of the config file's top level that every command reading
/// the file takes when its flags, variables and table leave them unset.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub(crate) struct Shared {
    pub(crate) lake: Option<String>,
    pub(crate) endpoint_url: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) plans: Option<PathBuf>,
    #[serde(deserialize_with = "time_zone")]
    pub(crate) tz: Option<String>,
}

/// A parsed config file: its top level and its command tables, checked
/// against the keys they may hold when parsed.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConfigFile {
    /// Names the file in errors.
    origin: String,
    ingest: IngestSettings,
    shared: Shared,
    tables: toml::Table,
}

impl ConfigFile {
    /// Reads and parses the file at `path`.
    /// The settings at the file's top level that every command shares.
    pub(crate) fn into_shared(self) -> Shared {
        self.shared
    }

    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("--config {}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses config text; `origin` names it in errors. An unknown key at
    /// the top level is an error here, whichever command reads the file.
    pub(crate) fn parse(text: &str, origin: &str) -> Result<Self> {
        let fail = |e: &dyn std::fmt::Display| Error::Config(format!("{origin}: {e}"));
        let mut top: toml::Table = toml::from_str(text).map_err(|e| fail(&e))?;
        let mut tables = toml::Table::new();
        for name in COMMAND_TABLES {
            match top.remove(name) {
                Some(toml::Value::Table(table)) => {
                    tables.insert(name.to_string(), toml::Value::Table(table));
                }
                Some(_) => return Err(fail(&format!("`{name}` must be a table ([{name}])"))),
                None => {}
            }
        }
        let shared: Shared = top.clone().try_into().map_err(|e| fail(&e))?;
        for key in SHARED_ONLY_KEYS {
            top.remove(key);
        }
        let ingest: IngestSettings = top.try_into().map_err(|e| fail(&e))?;
        Ok(ConfigFile {
            origin: origin.to_string(),
            ingest,
            shared,
            tables,
        })
    }

    /// The ingest settings of the top level.
    pub(crate) fn ingest(self) -> IngestSettings {
        IngestSettings {
            plans: self.shared.plans,
            ..self.ingest
        }
    }

    /// The settings of `T`'s table, all unset without one; a key `T` does
    /// not know is an error naming the key, the table and the file.
    fn table<T: CommandSettings>(&self) -> Result<T> {
        match self.tables.get(T::TABLE) {
            None => Ok(T::default()),
            Some(table) => table
                .clone()
                .try_into()
                .map_err(|e| Error::Config(format!("{}: in [{}]: {e}", self.origin, T::TABLE))),
        }
    }
}

/// One layer of a setting over the layer below: an unset value (`None`, an
/// empty list) is the lower layer's.
pub(crate) trait Overlay {
    fn over(self, lower: Self) -> Self;
}

impl<T> Overlay for Option<T> {
    fn over(self, lower: Self) -> Self {
        self.or(lower)
    }
}

impl<T> Overlay for Vec<T> {
    fn over(self, lower: Self) -> Self {
        if self.is_empty() { lower } else { self }
    }
}

/// A command's settings: its clap struct (flags, each variable merged in by
/// clap) that is also the serde form of its table in the config file.
/// Implemented by [`command_settings!`], which lists every field.
pub(crate) trait CommandSettings: Sized + Default + serde::de::DeserializeOwned {
    /// The name of the command's table.
    const TABLE: &'static str;
    /// The config file named by `--config` or `EDGEMETER_CONFIG`, if any.
    fn config_path(&self) -> Option<&Path>;
    /// Each setting of `self` over the same of `lower`.
    fn over(self, lower: Self) -> Self;
}

/// Implements [`CommandSettings`] for a struct: `layered` names the fields
/// merged flags over file, `kept` those only flags give (the file path, the
/// shared lake settings, output modes). Every field is named once, so a new
/// one does not compile until it is placed.
macro_rules! command_settings {
    ($type:ty, $table:literal, config: $($config:ident).+, layered: [$($field:ident),* $(,)?], kept: [$($kept:ident),* $(,)?] $(,)?) => {
        impl crate::config::CommandSettings for $type {
            const TABLE: &'static str = $table;
            fn config_path(&self) -> Option<&std::path::Path> {
                self.$($config).+.as_deref()
            }
            fn over(self, lower: Self) -> Self {
                let Self { $($field,)* $($kept,)* } = self;
                Self {
                    $($field: crate::config::Overlay::over($field, lower.$field),)*
                    $($kept,)*
                }
            }
        }
    };
}
pub(crate) use command_settings;

/// A command's settings merged once: flags and environment over its table
/// of the config file (when one is named), and the file's shared settings
/// to fill in what both leave unset.
pub(crate) fn layered<T: CommandSettings>(given: T) -> Result<(T, Shared)> {
    let Some(path) = given.config_path() else {
        return Ok((given, Shared::default()));
    };
    let file = ConfigFile::load(path)?;
    let table = file.table::<T>()?;
    Ok((given.over(table), file.shared))
}

/// Where the lake is, and how to reach S3: flags and environment over the
/// config file's top level; no lake is a configuration error.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct LakeSettings {
    /// The config file (TOML): shared settings at its top level, this
    /// command's in its own table; see the README.
    #[arg(long, env = "EDGEMETER_CONFIG")]
    pub(crate) config: Option<PathBuf>,
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
}

impl LakeSettings {
    /// The lake and S3 settings, the file's shared ones under the flags'.
    pub(crate) fn resolve(self, shared: &Shared) -> Result<(String, S3Settings)> {
        let lake = self.lake.or(shared.lake.clone()).ok_or_else(|| {
            Error::Config("no lake: give --lake or `lake` in the config file".into())
        })?;
        Ok((
            lake,
            S3Settings {
                endpoint_url: self.endpoint_url.or(shared.endpoint_url.clone()),
                region: self.region.or(shared.region.clone()),
            },
        ))
    }
}

/// A `clap::ValueEnum` value in the config file, spelled as its flag takes it.
pub(crate) fn value_enum<'de, D, T>(deserializer: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: clap::ValueEnum,
{
    let text: Option<String> = serde::Deserialize::deserialize(deserializer)?;
    text.map(|text| enum_value(&text).map_err(serde::de::Error::custom))
        .transpose()
}

/// A text setting of the config file, checked as the file is read, so that a
/// bad value is reported with the file, its table and key (a flag's value is
/// checked where it is used, and the error names the flag).
fn checked_text<'de, D>(
    deserializer: D,
    check: impl Fn(&str) -> std::result::Result<(), String>,
) -> std::result::Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text: Option<String> = serde::Deserialize::deserialize(deserializer)?;
    if let Some(text) = &text {
        check(text).map_err(serde::de::Error::custom)?;
    }
    Ok(text)
}

/// An IANA time zone (`tz`).
pub(crate) fn time_zone<'de, D>(deserializer: D) -> std::result::Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    checked_text(deserializer, |text| {
        text.parse::<chrono_tz::Tz>()
            .map(drop)
            .map_err(|_| crate::time::unknown_zone(text))
    })
}

/// A time as `--from` and `--to` take it (`from`, `to`).
pub(crate) fn instant<'de, D>(deserializer: D) -> std::result::Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    checked_text(deserializer, |text| {
        crate::time::parse_instant_in(text, chrono_tz::UTC)
            .map(drop)
            .map_err(|e| match e {
                Error::Config(why) => why,
                e => e.to_string(),
            })
    })
}

/// A table version or a time (`as_of`).
pub(crate) fn as_of<'de, D>(deserializer: D) -> std::result::Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    checked_text(deserializer, |text| {
        crate::lake::delta::AsOf::parse(text)
            .map(drop)
            .map_err(|_| crate::lake::delta::AsOf::not_as_of(text))
    })
}

/// A billing month, YYYY-MM (`period`).
pub(crate) fn month<'de, D>(deserializer: D) -> std::result::Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    checked_text(deserializer, |text| {
        crate::time::Period::month(text, None)
            .map(drop)
            .map_err(|_| crate::time::not_a_month(text))
    })
}

/// A list of `clap::ValueEnum` values in the config file.
pub(crate) fn value_enums<'de, D, T>(deserializer: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: clap::ValueEnum,
{
    let texts: Vec<String> = serde::Deserialize::deserialize(deserializer)?;
    texts
        .iter()
        .map(|text| enum_value(text).map_err(serde::de::Error::custom))
        .collect()
}

fn enum_value<T: clap::ValueEnum>(text: &str) -> std::result::Result<T, String> {
    T::from_str(text, false).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        format!("{text:?}: use one of {}", names.join(", "))
    })
}

/// How far back the listing goes when nothing sets a window: objects named
/// for the last 48 hours.
pub(crate) const DEFAULT_LOOKBACK: Duration = Duration::from_secs(48 * 3600);
/// Objects downloaded at once.
pub(crate) const DEFAULT_CONCURRENCY: usize = 16;
/// Compressed bytes of logs merged and committed per batch.
pub(crate) const DEFAULT_BATCH_BYTES: u64 = 8 << 20;

/// The defaults of the settings that `--low-memory` lowers.
#[derive(Debug, Clone, Copy)]
struct MemoryDefaults {
    concurrency: usize,
    part_bytes: u64,
    max_file_bytes: usize,
}

impl Default for MemoryDefaults {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
            part_bytes: crate::ingest::DEFAULT_PART_BYTES,
            max_file_bytes: crate::lake::partition::MAX_FILE_BYTES,
        }
    }
}

/// Their defaults with `--low-memory`: a part of a large object a sixth of
/// the usual (20 MiB: one of 32 MiB took the 45 MB object of the benchmark
/// to 270 MiB, one of 20 MiB to 240 MiB, and the benchmark's objects of
/// 17 MiB stay whole), the string values of an hour's file a quarter, and fewer
/// objects fetched at once. The batch stays as large: with half of it, an
/// hour of many small objects spanned more batches and was merged more
/// often, for 46% more time and 59 MiB less (`bench/RESULTS.md`, "Low-memory
/// mode").
const LOW_MEMORY_DEFAULTS: MemoryDefaults = MemoryDefaults {
    concurrency: 4,
    part_bytes: 20 << 20,
    max_file_bytes: 32 << 20,
};
/// The log format when none is set: each object's own, detected.
pub(crate) const DEFAULT_LOG_FORMAT: &str = "auto";

/// A size: a number of bytes, or a number with a unit (`8MiB`, `512 KiB`,
/// `1GB`; binary units are powers of 1024, decimal ones of 1000).
pub(crate) fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let (number, unit) = number_and_unit(text);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size: give bytes or e.g. 8MiB, 512KiB, 1GB"))?;
    let per_unit: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit; use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB"
            ));
        }
    };
    n.checked_mul(per_unit)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// A validated run: one set of options per source, and where metrics go.
#[derive(Debug, Clone)]
pub(crate) struct RunConfig {
    pub(crate) ingests: Vec<IngestOptions>,
    pub(crate) metrics_file: Option<PathBuf>,
}

/// Merges flags/env over the file over defaults, and checks the result;
/// `progress`: whether ingests draw a progress bar.
pub(crate) fn resolve(
    given: IngestSettings,
    file: IngestSettings,
    progress: bool,
) -> Result<RunConfig> {
    let sources = if given.sources.is_empty() {
        file.sources.clone()
    } else {
        given.sources.clone()
    };
    if sources.is_empty() {
        return Err(Error::Config(
            "no source: give --source or `sources` in the config file".into(),
        ));
    }
    let (sources, queue) = queue_settings(sources, &given, &file)?;
    let lake = given
        .lake
        .or(file.lake)
        .ok_or_else(|| Error::Config("no lake: give --lake or `lake` in the config file".into()))?;
    let pick = |flags: Vec<String>, from_file: Vec<String>| {
        if flags.is_empty() { from_file } else { flags }
    };
    // Where the key is, as one setting: a key source given as a flag or in
    // the environment replaces the file's key sources of both kinds.
    let (key_params, key_from) = if given.key_params.is_empty() && given.key_from.is_empty() {
        (file.key_params, file.key_from)
    } else {
        (given.key_params, given.key_from)
    };
    if key_params.iter().any(|p| p.is_empty()) {
        return Err(Error::Config("key parameter names cannot be empty".into()));
    }
    // Both given means both: --key-from's sources in their order, then
    // --key-param's query parameters (a source named twice counts once).
    let mut key_sources: Vec<KeySource> = key_from
        .iter()
        .map(|s| {
            s.parse()
                .map_err(|e| Error::Config(format!("--key-from {e}")))
        })
        .collect::<Result<_>>()?;
    for name in key_params {
        let source = KeySource::Query(name);
        if !key_sources.contains(&source) {
            key_sources.push(source);
        }
    }
    if key_sources.is_empty() {
        key_sources = default_sources();
    }
    let fields = pick(given.fields, file.fields);
    let format = match given
        .format
        .or(file.format)
        .as_deref()
        .unwrap_or(DEFAULT_LOG_FORMAT)
    {
        "auto" if fields.is_empty() => LogFormat::Auto,
        "auto" => {
            return Err(Error::Config(
                "--fields applies to --format realtime".into(),
            ));
        }
        "realtime" if fields.is_empty() => {
            return Err(Error::Config(
                "--format realtime needs --fields (the real-time log configuration's fields)"
                    .into(),
            ));
        }
        "realtime" => {
            crate::format::realtime::realtime_order(&fields).map_err(Error::Config)?;
            LogFormat::Realtime(fields)
        }
        other => {
            return Err(Error::Config(format!(
                "--format {other:?}: use auto or realtime"
            )));
        }
    };
    // The listing window, as one setting: whichever of full listing, since
    // and lookback the flags (or environment) set wins over the file's.
    let window = match window_of(
        given.full_listing,
        given.since,
        given.lookback,
        Layer::Flags,
    )? {
        Some(window) => window,
        None => window_of(file.full_listing, file.since, file.lookback, Layer::File)?
            .unwrap_or(Window::Lookback(DEFAULT_LOOKBACK)),
    };
    let max_keyless_share = given
        .max_keyless_share
        .or(file.max_keyless_share)
        .unwrap_or(crate::ingest::DEFAULT_MAX_KEYLESS_SHARE);
    if !(0.0..=1.0).contains(&max_keyless_share) {
        return Err(Error::Config(format!(
            "max_keyless_share {max_keyless_share}: give a share from 0 to 1 (1 never warns)"
        )));
    }
    let low_memory = given.low_memory.or(file.low_memory).unwrap_or(false);
    let defaults = match low_memory {
        true => LOW_MEMORY_DEFAULTS,
        false => MemoryDefaults::default(),
    };
    let concurrency = given
        .concurrency
        .or(file.concurrency)
        .unwrap_or(defaults.concurrency);
    if concurrency == 0 {
        return Err(Error::Config("concurrency must be at least 1".into()));
    }
    let shard = given
        .shard
        .or(file.shard)
        .map(|text| crate::source::shard::Shard::parse(&text))
        .transpose()
        .map_err(Error::Config)?;
    let meters = given
        .plans
        .or(file.plans)
        .map(|path| crate::billing::plans::Plans::load(&path))
        .transpose()?
        .map(|plans| std::sync::Arc::new(plans.meters));
    let base = IngestOptions {
        source: String::new(),
        lake,
        s3: S3Settings {
            endpoint_url: given.endpoint_url.or(file.endpoint_url),
            region: given.region.or(file.region),
        },
        parse: ParseOptions {
            key_sources,
            format,
            max_line_bytes: given
                .max_line_bytes
                .or(file.max_line_bytes)
                .map_or(crate::format::DEFAULT_MAX_LINE_BYTES, |n| {
                    usize::try_from(n.max(64)).unwrap_or(usize::MAX)
                }),
        },
        concurrency,
        batch_bytes: given
            .batch_bytes
            .or(file.batch_bytes)
            .unwrap_or(DEFAULT_BATCH_BYTES),
        file_limits: crate::lake::partition::FileLimits {
            rows: given
                .max_file_rows
                .or(file.max_file_rows)
                .map_or(crate::lake::partition::MAX_FILE_ROWS, |n| n.max(1) as usize),
            bytes: given
                .max_file_bytes
                .or(file.max_file_bytes)
                .map_or(defaults.max_file_bytes, |n| n.max(1) as usize),
        },
        max_object_bytes: given
            .max_object_bytes
            .or(file.max_object_bytes)
            .unwrap_or(DEFAULT_MAX_OBJECT_BYTES),
        part_bytes: given
            .part_bytes
            .or(file.part_bytes)
            .unwrap_or(defaults.part_bytes)
            .max(1),
        low_memory,
        meters,
        window,
        shard,
        retain_days: given.retain_days.or(file.retain_days),
        max_keyless_share,
        progress,
        reingest_until: None,
        queue,
        clock: std::sync::Arc::new(crate::time::SystemClock),
    };
    Ok(RunConfig {
        ingests: sources
            .into_iter()
            .map(|source| IngestOptions {
                source,
                ..base.clone()
            })
            .collect(),
        metrics_file: given.metrics_file.or(file.metrics_file),
    })
}

/// The settings of `sqs://` sources, checked, and the sources with the
/// listings to reconcile them with after them.
fn queue_settings(
    sources: Vec<String>,
    given: &IngestSettings,
    file: &IngestSettings,
) -> Result<(Vec<String>, QueueOptions)> {
    let mut queues = 0;
    for source in &sources {
        if QueueUrl::of_source(source).transpose()?.is_some() {
            queues += 1;
        }
    }
    let dead_letter_queue = given
        .dead_letter_queue
        .clone()
        .or(file.dead_letter_queue.clone());
    let reconcile = if given.reconcile.is_empty() {
        file.reconcile.clone()
    } else {
        given.reconcile.clone()
    };
    if queues > 0 && (given.shard.is_some() || file.shard.is_some()) {
        return Err(Error::Config(
            "--shard divides a listed source; workers reading an sqs:// queue share it \
             without shards (the queue gives each message to one of them)"
                .into(),
        ));
    }
    if queues == 0 && (dead_letter_queue.is_some() || !reconcile.is_empty()) {
        return Err(Error::Config(
            "--dead-letter-queue and --reconcile go with an sqs:// source".into(),
        ));
    }
    if let Some(url) = &dead_letter_queue {
        QueueUrl::parse(url)
            .map_err(|reason| Error::Config(format!("--dead-letter-queue {url}: {reason}")))?;
    }
    let wait_secs = given
        .wait_secs
        .or(file.wait_secs)
        .unwrap_or(crate::ingest::DEFAULT_WAIT_SECS);
    if wait_secs > crate::source::sqs::MAX_WAIT_SECS {
        return Err(Error::Config(format!(
            "wait_secs {wait_secs}: SQS waits at most {} s",
            crate::source::sqs::MAX_WAIT_SECS
        )));
    }
    let max_messages = given.max_messages.or(file.max_messages);
    if max_messages == Some(0) {
        return Err(Error::Config("max_messages must be at least 1".into()));
    }
    let mut all = sources;
    for listing in reconcile {
        if listing.starts_with(crate::source::sqs::SCHEME) {
            return Err(Error::Config(format!(
                "--reconcile {listing}: give the listing (s3://bucket/prefix/ or a directory) \
                 that the queue's notifications come from"
            )));
        }
        if !all.contains(&listing) {
            all.push(listing);
        }
    }
    Ok((
        all,
        QueueOptions {
            dead_letter_queue,
            max_messages,
            wait_secs,
        },
    ))
}

/// Where a setting came from, to name it in errors.
#[derive(Debug, Clone, Copy)]
enum Layer {
    /// The command line or the environment (clap merges the two).
    Flags,
    File,
}

impl Layer {
    fn name(self, key: &str) -> String {
        match self {
            Layer::Flags => format!(
                "--{} (or EDGEMETER_{})",
                key.replace('_', "-"),
                key.to_uppercase()
            ),
            Layer::File => format!("`{key}` in the config file"),
        }
    }
}

/// The listing window one layer of settings sets, if any: a full listing,
/// else `since`, else `lookback`.
fn window_of(
    full_listing: Option<bool>,
    since: Option<String>,
    lookback: Option<String>,
    layer: Layer,
) -> Result<Option<Window>> {
    if full_listing == Some(true) {
        return Ok(Some(Window::Full));
    }
    match (since, lookback) {
        (Some(_), Some(_)) => Err(Error::Config(format!(
            "{} and {} are both set: give one",
            layer.name("since"),
            layer.name("lookback")
        ))),
        (Some(since), None) => Ok(Some(Window::Since(
            parse_instant(&since).map_err(|e| e.in_setting(&layer.name("since")))?,
        ))),
        (None, Some(lookback)) => Ok(Some(Window::Lookback(
            parse_duration(&lookback).map_err(|e| e.in_setting(&layer.name("lookback")))?,
        ))),
        // `full_listing = false` alone turns a full listing off: the default window.
        (None, None) if full_listing == Some(false) => Ok(Some(Window::Lookback(DEFAULT_LOOKBACK))),
        (None, None) => Ok(None),
    }
}

impl RunConfig {
    /// The settings in effect, as `--print-config` shows them (no secrets:
    /// the key secret is never part of them).
    pub(crate) fn describe(&self) -> serde_json::Value {
        let ingest = |o: &IngestOptions| {
            serde_json::json!({
                "source": o.source,
                "lake": o.lake,
                "endpoint_url": o.s3.endpoint_url,
                "region": o.s3.region,
                "key_sources": o.parse.key_sources.iter().cloned().map(String::from).collect::<Vec<_>>(),
                "format": match &o.parse.format {
                    LogFormat::Auto => serde_json::json!("auto"),
                    LogFormat::Realtime(fields) => serde_json::json!({"realtime": fields}),
                },
                "window": match o.window {
                    Window::Full => "full".to_string(),
                    Window::Since(t) => format!("since {}", t.to_rfc3339()),
                    Window::Lookback(d) => format!("lookback {}s", d.as_secs()),
                },
                "shard": o.shard.map(|s| s.to_string()),
                "reingest_until": o.reingest_until.map(|t| t.to_rfc3339()),
                "retain_days": o.retain_days,
                "max_keyless_share": o.max_keyless_share,
                "concurrency": o.concurrency,
                "batch_bytes": o.batch_bytes,
                "max_object_bytes": o.max_object_bytes,
                "part_bytes": o.part_bytes,
                "max_line_bytes": o.parse.max_line_bytes,
                "max_file_rows": o.file_limits.rows,
                "max_file_bytes": o.file_limits.bytes,
                "low_memory": o.low_memory,
                "meters_kept_per_day": o.meters.as_ref().map(|m| {
                    m.0.values()
                        .filter(|m| crate::billing::meter_days::kept(m))
                        .map(|m| m.slug.clone())
                        .collect::<Vec<_>>()
                }),
                "queue": QueueUrl::of_source(&o.source).is_some().then(|| serde_json::json!({
                    "dead_letter_queue": o.queue.dead_letter_queue,
                    "max_messages": o.queue.max_messages,
                    "wait_secs": o.queue.wait_secs,
                })),
            })
        };
        serde_json::json!({
            "ingests": self.ingests.iter().map(ingest).collect::<Vec<_>>(),
            "metrics_file": self.metrics_file,
        })
    }
}

/// `48h` as (`48`, `h`): the leading digits and the rest.
pub(crate) fn number_and_unit(text: &str) -> (&str, &str) {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(split)
}

/// A duration like `48h`, `2d`, `90m` or `3600s`.
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration> {
    let text = text.trim();
    let (number, unit) = number_and_unit(text);
    let n: u64 = number
        .parse()
        .map_err(|_| Error::Config(format!("bad duration {text:?}: use e.g. 48h, 2d, 90m")))?;
    let per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "" => {
            return Err(Error::Config(format!(
                "duration {text:?} has no unit: use e.g. {n}h, {n}d, {n}m or {n}s"
            )));
        }
        _ => {
            return Err(Error::Config(format!(
                "bad duration unit in {text:?}: use s, m, h or d"
            )));
        }
    };
    let seconds = n
        .checked_mul(per_unit)
        .ok_or_else(|| Error::Config(format!("duration {text:?} is too long")))?;
    Ok(std::time::Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let file: IngestSettings = toml::from_str(
            r#"
            sources = ["s3://logs/cf/"]
            lake = "s3://lake/edge/"
            key_params = ["token"]
            lookback = "6h"
            retain_days = 400
            "#,
        )
        .unwrap();
        let given = IngestSettings {
            lake: Some("/tmp/lake".into()),
            ..Default::default()
        };
        let run = resolve(given, file, false).unwrap();
        let only = &run.ingests[0];
        assert_eq!(only.source, "s3://logs/cf/");
        assert_eq!(only.lake, "/tmp/lake");
        assert_eq!(
            only.parse.key_sources,
            vec![KeySource::Query("token".into())]
        );
        assert_eq!(only.parse.format, LogFormat::Auto);
        assert_eq!(only.window, Window::Lookback(Duration::from_secs(6 * 3600)));
        assert_eq!(only.retain_days, Some(400));
        assert_eq!(only.concurrency, 16);
    }

    #[test]
    fn key_from_and_key_param_together_are_both_sources() {
        let given = IngestSettings {
            sources: vec!["/logs".into()],
            lake: Some("/tmp/lake".into()),
            key_from: vec!["header:x-api-key".into(), "query:token".into()],
            key_params: vec!["api_key".into(), "token".into()],
            ..Default::default()
        };
        let run = resolve(given, IngestSettings::default(), false).unwrap();
        assert_eq!(
            run.ingests[0].parse.key_sources,
            vec![
                KeySource::Header("x-api-key".into()),
                KeySource::Query("token".into()),
                KeySource::Query("api_key".into()),
            ]
        );
    }

    fn file(text: &str) -> IngestSettings {
        IngestSettings::parse(
            &format!("sources = [\"/logs\"]\nlake = \"/lake\"\n{text}"),
            "test",
        )
        .unwrap()
    }

    fn window(given: IngestSettings, text: &str) -> Result<Window> {
        resolve(given, file(text), false).map(|run| run.ingests[0].window)
    }

    #[test]
    fn the_listing_window_of_flags_or_env_wins_over_the_files_whatever_its_kind() {
        let hours = |h: u64| Window::Lookback(Duration::from_secs(h * 3600));
        let since = |t: &str| Window::Since(parse_instant(t).unwrap());
        let lookback = |l: &str| IngestSettings {
            lookback: Some(l.into()),
            ..Default::default()
        };
        // A lookback given overrides the file's since (and its full listing).
        assert_eq!(
            window(lookback("6h"), "since = \"2025-01-01\"").unwrap(),
            hours(6)
        );
        assert_eq!(
            window(lookback("6h"), "full_listing = true").unwrap(),
            hours(6)
        );
        // A since given overrides the file's full listing and lookback.
        let given = IngestSettings {
            since: Some("2025-10-05T09".into()),
            ..Default::default()
        };
        assert_eq!(
            window(given.clone(), "full_listing = true").unwrap(),
            since("2025-10-05T09:00:00Z")
        );
        assert_eq!(
            window(given, "lookback = \"2h\"").unwrap(),
            since("2025-10-05T09:00:00Z")
        );
        // Full listing turned off explicitly: the default window, not the file's.
        let off = IngestSettings {
            full_listing: Some(false),
            ..Default::default()
        };
        assert_eq!(window(off, "full_listing = true").unwrap(), hours(48));
        // Nothing given: the file's, then the default.
        assert_eq!(
            window(IngestSettings::default(), "lookback = \"3d\"").unwrap(),
            hours(72)
        );
        assert_eq!(window(IngestSettings::default(), "").unwrap(), hours(48));
        // One layer setting both is ambiguous.
        let err = window(
            IngestSettings::default(),
            "lookback = \"3d\"\nsince = \"2025-01-01\"",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`since` in the config file and `lookback`"),
            "{err}"
        );
        // Errors name the setting.
        let err = window(lookback("48"), "").unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid configuration: --lookback (or EDGEMETER_LOOKBACK): duration \"48\" has no unit: use e.g. 48h, 48d, 48m or 48s"
        );
    }

    #[test]
    fn key_sources_given_replace_the_files_of_both_kinds() {
        let run = resolve(
            IngestSettings {
                key_params: vec!["token".into()],
                ..Default::default()
            },
            file("key_from = [\"header:x-api-key\"]"),
            false,
        )
        .unwrap();
        assert_eq!(
            run.ingests[0].parse.key_sources,
            vec![KeySource::Query("token".into())]
        );
    }

    #[test]
    fn sizes_take_units_in_flags_and_in_the_file() {
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(
            parse_size("8 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999TiB").is_err());
        let run = resolve(
            IngestSettings::default(),
            file("batch_bytes = \"16MiB\"\nmax_object_bytes = 1024"),
            false,
        )
        .unwrap();
        assert_eq!(run.ingests[0].batch_bytes, 16 << 20);
        assert_eq!(run.ingests[0].max_object_bytes, 1024);
        assert!(IngestSettings::parse("batch_bytes = \"16 bananas\"", "test").is_err());
    }

    /// `low_memory` changes the defaults of three sizes (not the batch's),
    /// never a size given; the flag's `false` turns the file's `true` off.
    #[test]
    fn low_memory_lowers_the_defaults_of_the_sizes_not_the_sizes_given() {
        let sizes = |given: IngestSettings, text: &str| {
            let run = resolve(given, file(text), false).unwrap();
            let o = &run.ingests[0];
            (
                o.low_memory,
                o.concurrency,
                o.batch_bytes,
                o.part_bytes,
                o.file_limits.bytes,
            )
        };
        let usual = (false, 16, 8 << 20, 128 << 20, 128 << 20);
        let low = (true, 4, 8 << 20, 20 << 20, 32 << 20);
        assert_eq!(sizes(IngestSettings::default(), ""), usual);
        assert_eq!(sizes(IngestSettings::default(), "low_memory = true"), low);
        let flag = |on: bool| IngestSettings {
            low_memory: Some(on),
            ..Default::default()
        };
        assert_eq!(sizes(flag(true), ""), low);
        assert_eq!(sizes(flag(false), "low_memory = true"), usual);
        // Sizes given, in the file or by flags, stay as given.
        assert_eq!(
            sizes(
                IngestSettings {
                    concurrency: Some(8),
                    ..flag(true)
                },
                "batch_bytes = \"2MiB\"\nmax_file_bytes = \"64MiB\""
            ),
            (true, 8, 2 << 20, 20 << 20, 64 << 20)
        );
        let run = resolve(flag(true), file(""), false).unwrap();
        assert_eq!(run.describe()["ingests"][0]["low_memory"], true);
    }

    #[test]
    fn unknown_keys_and_missing_essentials_are_config_errors() {
        assert!(toml::from_str::<IngestSettings>("lakes = \"x\"").is_err());
        let err = resolve(IngestSettings::default(), IngestSettings::default(), false).unwrap_err();
        assert!(matches!(err, Error::Config(_)));
    }

    /// A config file holding `text`, kept as long as the handle.
    fn config_file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    /// The command line `edgemeter ARGS… --config FILE`, parsed.
    fn command(args: &[&str], file: &tempfile::NamedTempFile) -> crate::cli::Command {
        use clap::Parser;
        let path = file.path().to_str().unwrap();
        let mut argv = vec!["edgemeter"];
        argv.extend(args);
        argv.extend(["--config", path]);
        crate::cli::Cli::try_parse_from(argv).unwrap().command
    }

    const SHARED_FILE: &str = r#"
        sources = ["/logs"]
        lake = "/file/lake"
        region = "eu-west-1"
        plans = "/file/plans.toml"
        tz = "Europe/Berlin"

        [usage]
        format = "csv"
        from = "2025-11"
        tz = "UTC"
        group_by = ["method"]

        [export]
        format = "stripe"
        period = "2025-10"
        output = "/file/out.jsonl"

        [check]
        webhook = "http://file.example/hook"
        "#;

    #[test]
    fn one_file_holds_ingest_shared_and_command_settings() {
        let file = ConfigFile::parse(SHARED_FILE, "edgemeter.toml").unwrap();
        assert_eq!(file.shared.plans, Some(PathBuf::from("/file/plans.toml")));
        assert_eq!(file.shared.tz.as_deref(), Some("Europe/Berlin"));
        let ingest = file.ingest();
        assert_eq!(ingest.sources, vec!["/logs".to_string()]);
        assert_eq!(ingest.lake.as_deref(), Some("/file/lake"));
        // The top level's plans file is the one whose meters runs keep per
        // day: read when the run is set up, so a missing one stops it.
        assert_eq!(ingest.plans, Some(PathBuf::from("/file/plans.toml")));
        let missing = resolve(IngestSettings::default(), ingest.clone(), false).unwrap_err();
        assert!(
            missing.to_string().contains("/file/plans.toml"),
            "{missing}"
        );
        // run and ingest read the same file unchanged.
        let without_plans = IngestSettings {
            plans: None,
            ..ingest
        };
        let run = resolve(IngestSettings::default(), without_plans, false).unwrap();
        assert_eq!(run.ingests[0].s3.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn usage_flags_override_its_table_which_overrides_the_top_level() {
        use crate::commands::usage::UsageArgs;
        use crate::query::output::OutputFormat;
        let file = config_file(SHARED_FILE);
        let crate::cli::Command::Usage(given) = command(&["usage", "--format", "json"], &file)
        else {
            unreachable!()
        };
        let (args, shared) = layered::<UsageArgs>(given).unwrap();
        // The flag over the table's csv.
        assert_eq!(args.format, Some(OutputFormat::Json));
        // The table's, no flag given.
        assert_eq!(args.from.as_deref(), Some("2025-11"));
        assert_eq!(args.group_by, vec![crate::query::usage::Dimension::Method]);
        // The table's tz over the top level's; the top level's lake.
        assert_eq!(args.tz.as_deref(), Some("UTC"));
        let (lake, s3) = args.lake.resolve(&shared).unwrap();
        assert_eq!(
            (lake.as_str(), s3.region.as_deref()),
            ("/file/lake", Some("eu-west-1"))
        );
        // Nothing anywhere: the named default, applied in validate.
        assert_eq!(args.per, None);
    }

    #[test]
    fn export_flags_override_its_table_and_the_shared_keys() {
        use crate::commands::export::ExportArgs;
        use crate::export::formats::Format;
        let file = config_file(SHARED_FILE);
        let crate::cli::Command::Export(given) = command(
            &["export", "--lake", "/flag/lake", "--period", "2025-11"],
            &file,
        ) else {
            unreachable!()
        };
        let (args, shared) = layered::<ExportArgs>(given).unwrap();
        assert_eq!(args.period.as_deref(), Some("2025-11"));
        assert_eq!(args.format, Some(Format::Stripe));
        assert_eq!(args.output.as_deref(), Some("/file/out.jsonl"));
        // No [export] tz or plans: validate takes the top level's.
        assert_eq!((args.tz.as_deref(), args.plans.as_deref()), (None, None));
        assert_eq!(shared.plans, Some(PathBuf::from("/file/plans.toml")));
        let (lake, _) = args.lake.resolve(&shared).unwrap();
        assert_eq!(lake, "/flag/lake");
    }

    #[test]
    fn check_takes_its_webhook_from_its_table_unless_a_flag_gives_one() {
        use crate::commands::check::CheckArgs;
        let file = config_file(SHARED_FILE);
        let webhook = |args: &[&str]| {
            let crate::cli::Command::Check(given) = command(args, &file) else {
                unreachable!()
            };
            layered::<CheckArgs>(given).unwrap().0.webhook
        };
        assert_eq!(
            webhook(&["check"]).as_deref(),
            Some("http://file.example/hook")
        );
        assert_eq!(
            webhook(&["check", "--webhook", "http://flag.example/"]).as_deref(),
            Some("http://flag.example/")
        );
    }

    /// A bad time, zone, version or month in the file is reported when the
    /// file is read, with the file, the table and the key, and not as the
    /// flag; the same value given as a flag names the flag.
    #[test]
    fn bad_values_in_the_file_name_their_key_not_a_flag() {
        use crate::commands::{export::ExportArgs, usage::UsageArgs};
        let usage = |body: &str| {
            ConfigFile::parse(&format!("[usage]\n{body}"), "edgemeter.toml")
                .unwrap()
                .table::<UsageArgs>()
                .unwrap_err()
                .to_string()
        };
        for (body, why, key) in [
            (
                "from = \"yesterday\"",
                "\"yesterday\" is not a month",
                "`from`",
            ),
            ("to = \"2025-13\"", "\"2025-13\" is not a month", "`to`"),
            (
                "tz = \"Berlin\"",
                "\"Berlin\": unknown time zone; give an IANA name (did you mean Europe/Berlin?)",
                "`tz`",
            ),
            (
                "as_of = \"last week\"",
                "\"last week\" is neither a table version",
                "`as_of`",
            ),
        ] {
            let err = usage(body);
            assert!(err.contains("edgemeter.toml: in [usage]"), "{err}");
            assert!(err.contains(why) && err.contains(key), "{err}");
            assert!(!err.contains("--"), "names a flag: {err}");
        }
        let err = ConfigFile::parse("[export]\nperiod = \"November\"", "edgemeter.toml")
            .unwrap()
            .table::<ExportArgs>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("in [export]")
                && err.contains("\"November\": use YYYY-MM")
                && !err.contains("--"),
            "{err}"
        );
        let err = ConfigFile::parse("tz = \"Mars/Olympus\"", "edgemeter.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("edgemeter.toml")
                && err.contains("unknown time zone")
                && !err.contains("--"),
            "{err}"
        );
        // Good values pass.
        let args = ConfigFile::parse(
            "tz = \"Europe/Berlin\"\n[usage]\nfrom = \"2025-11\"\nto = \"2025-12-01T09:30\"\nas_of = \"42\"",
            "edgemeter.toml",
        )
        .unwrap()
        .table::<UsageArgs>()
        .unwrap();
        assert_eq!(
            (
                args.from.as_deref(),
                args.to.as_deref(),
                args.as_of.as_deref()
            ),
            (Some("2025-11"), Some("2025-12-01T09:30"), Some("42"))
        );
        // Flags: the bound is named.
        let err = crate::time::TimeRange::parse_in_zone(
            Some("yesterday"),
            None,
            chrono_tz::UTC,
            ["--from", "--to"],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--from: \"yesterday\" is not a month"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key_the_table_and_the_file() {
        let err = ConfigFile::parse(
            "[export]
formt = \"csv\"",
            "edgemeter.toml",
        )
        .unwrap()
        .table::<crate::commands::export::ExportArgs>()
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("edgemeter.toml: in [export]: unknown field `formt`"),
            "{err}"
        );
        // At the top level, whichever command reads the file.
        let err = ConfigFile::parse("plan = \"p.toml\"", "edgemeter.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("edgemeter.toml") && err.contains("`plan`"),
            "{err}"
        );
        // A value no flag takes either.
        let err = ConfigFile::parse(
            "[usage]
format = \"xml\"",
            "edgemeter.toml",
        )
        .unwrap()
        .table::<crate::commands::usage::UsageArgs>()
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("\"xml\": use one of table, csv, json, parquet"),
            "{err}"
        );
        // Flags that are no settings are no keys.
        assert!(
            ConfigFile::parse(
                "[check]
json = true",
                "t"
            )
            .unwrap()
            .table::<crate::commands::check::CheckArgs>()
            .is_err()
        );
        assert!(ConfigFile::parse("usage = 1", "t").is_err());
    }

    #[test]
    fn a_lake_neither_flags_nor_the_file_give_is_a_clear_error() {
        let file = config_file("plans = \"/p.toml\"\n[export]\nperiod = \"2025-11\"");
        let crate::cli::Command::Export(given) = command(&["export", "--output", "-"], &file)
        else {
            unreachable!()
        };
        let err = given.validate().unwrap_err();
        assert!(matches!(err, Error::Config(_)));
        assert_eq!(
            err.to_string(),
            "invalid configuration: no lake: give --lake or `lake` in the config file"
        );
    }

    #[test]
    fn the_readme_example_of_the_command_tables_parses() {
        let example = include_str!("../README.md")
            .split("```toml\n# the rest of edgemeter.toml")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("the README has an example of the command tables");
        // Its commented-out keys too.
        let text: String = example
            .lines()
            .skip(1)
            .map(|line| line.trim_start_matches("# "))
            .map(|line| format!("{line}\n"))
            .collect();
        let file = ConfigFile::parse(&text, "README").unwrap();
        assert_eq!(file.shared.tz.as_deref(), Some("Europe/Berlin"));
        let usage: crate::commands::usage::UsageArgs = file.table().unwrap();
        assert_eq!(usage.format, Some(crate::query::output::OutputFormat::Csv));
        assert_eq!(usage.from.as_deref(), Some("2025-11"));
        let export: crate::commands::export::ExportArgs = file.table().unwrap();
        assert_eq!(export.format, Some(crate::export::formats::Format::Stripe));
        let check: crate::commands::check::CheckArgs = file.table().unwrap();
        assert!(check.webhook.is_some() && check.at.is_some());
        let report: crate::commands::report::ReportArgs = file.table().unwrap();
        assert_eq!(report.output.as_deref(), Some("/var/www/usage.html"));
        let serve: crate::commands::serve::ServeArgs = file.table().unwrap();
        assert_eq!(serve.listen.as_deref(), Some("0.0.0.0:8080"));
        assert_eq!(serve.rate_per_minute, Some(600));
        let query: crate::commands::query::QueryArgs = file.table().unwrap();
        assert_eq!(query.format, Some(crate::query::output::OutputFormat::Csv));
        let maintain: crate::commands::maintain::MaintainArgs = file.table().unwrap();
        assert_eq!(maintain.retain_versions_hours, Some(336));
    }

    #[test]
    fn queue_sources_take_their_settings_and_reconcile_after_them() {
        const QUEUE: &str = "sqs://https://sqs.eu-west-1.amazonaws.com/123456789012/logs";
        let file = IngestSettings::parse(
            &format!(
                "sources = [\"{QUEUE}\"]\nlake = \"/lake\"\n\
                 dead_letter_queue = \"https://sqs.eu-west-1.amazonaws.com/123456789012/dlq\"\n\
                 reconcile = [\"s3://logs/cf/\"]\nmax_messages = 500\n"
            ),
            "test",
        )
        .unwrap();
        let given = IngestSettings {
            wait_secs: Some(5),
            ..Default::default()
        };
        let run = resolve(given, file.clone(), false).unwrap();
        let sources: Vec<&str> = run.ingests.iter().map(|o| o.source.as_str()).collect();
        assert_eq!(sources, vec![QUEUE, "s3://logs/cf/"]);
        let queue = &run.ingests[0].queue;
        assert_eq!(
            queue.dead_letter_queue.as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/123456789012/dlq")
        );
        assert_eq!(queue.max_messages, Some(500));
        assert_eq!(queue.wait_secs, 5);
        let shown = run.describe();
        assert_eq!(shown["ingests"][0]["queue"]["wait_secs"], 5);
        assert!(shown["ingests"][1]["queue"].is_null());

        let error = |given: IngestSettings| {
            resolve(given, IngestSettings::default(), false)
                .unwrap_err()
                .to_string()
        };
        let with = |sources: &[&str]| IngestSettings {
            sources: sources.iter().map(|s| s.to_string()).collect(),
            lake: Some("/lake".into()),
            ..Default::default()
        };
        let err = error(IngestSettings {
            reconcile: vec!["s3://logs/cf/".into()],
            ..with(&["s3://logs/cf/"])
        });
        assert!(err.contains("go with an sqs:// source"), "{err}");
        let err = error(IngestSettings {
            shard: Some("0/2".into()),
            ..with(&[QUEUE])
        });
        assert!(err.contains("without shards"), "{err}");
        let err = error(with(&["sqs://https://sqs.eu-west-1.amazonaws.com/logs"]));
        assert!(err.contains("/ACCOUNT/QUEUE"), "{err}");
        let err = error(IngestSettings {
            wait_secs: Some(21),
            ..with(&[QUEUE])
        });
        assert!(err.contains("at most 20"), "{err}");
        let err = error(IngestSettings {
            reconcile: vec![QUEUE.into()],
            ..with(&[QUEUE])
        });
        assert!(err.contains("--reconcile"), "{err}");
        let err = error(IngestSettings {
            dead_letter_queue: Some("not a url".into()),
            ..with(&[QUEUE])
        });
        assert!(err.contains("--dead-letter-queue"), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("48h").unwrap().as_secs(), 172_800);
        assert_eq!(parse_duration("2d").unwrap().as_secs(), 172_800);
        assert_eq!(parse_duration("90m").unwrap().as_secs(), 5_400);
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3w").is_err());
        // A number alone is refused, not taken as hours.
        let err = parse_duration("48").unwrap_err().to_string();
        assert!(err.contains("no unit") && err.contains("48h"), "{err}");
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("999999999999999999d").is_err());
    }
}
