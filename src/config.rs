//! Raw settings from flags, `EDGEMETER_*` environment variables and the
//! `edgemeter.toml` file, merged once (flags > env > file > defaults) into
//! validated [`IngestOptions`], one per source.

use crate::error::{Error, Result};
use crate::format::DEFAULT_MAX_OBJECT_BYTES;
use crate::format::w3c::{LogFormat, ParseOptions};
use crate::ingest::{IngestOptions, Window};
use crate::key::{KeySource, default_sources};
use crate::query::parse_instant;
use crate::source::{S3Settings, parse_duration};
use std::path::{Path, PathBuf};

/// The `edgemeter.toml` file of scheduled runs. Every key is optional here;
/// flags and environment variables override it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Log locations: `s3://bucket/prefix/` or directories.
    #[serde(default)]
    pub sources: Vec<String>,
    pub lake: Option<String>,
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    #[serde(default)]
    pub key_params: Vec<String>,
    /// Key sources tried in order: `query:NAME`, `header:NAME`, `cookie:NAME`, `log-data:NAME`.
    #[serde(default)]
    pub key_from: Vec<String>,
    /// `auto` (default) or `realtime`.
    pub format: Option<String>,
    /// The fields of a real-time log configuration (any order).
    #[serde(default)]
    pub fields: Vec<String>,
    pub lookback: Option<String>,
    pub since: Option<String>,
    pub full_listing: Option<bool>,
    pub retain_days: Option<u32>,
    pub metrics_file: Option<PathBuf>,
    pub concurrency: Option<usize>,
    pub batch_bytes: Option<u64>,
    pub max_object_bytes: Option<u64>,
    pub max_line_bytes: Option<u64>,
    pub max_file_rows: Option<u64>,
    pub max_file_bytes: Option<u64>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::Config(format!("{origin}: {e}")))
    }
}

/// Settings as given on the command line or in the environment (`None`: not given).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub sources: Vec<String>,
    pub lake: Option<String>,
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub key_params: Vec<String>,
    pub key_from: Vec<String>,
    pub format: Option<String>,
    pub fields: Vec<String>,
    pub lookback: Option<String>,
    pub since: Option<String>,
    pub full_listing: bool,
    pub retain_days: Option<u32>,
    pub metrics_file: Option<PathBuf>,
    pub concurrency: Option<usize>,
    pub batch_bytes: Option<u64>,
    pub max_object_bytes: Option<u64>,
    pub max_line_bytes: Option<u64>,
    pub max_file_rows: Option<u64>,
    pub max_file_bytes: Option<u64>,
    pub progress: bool,
}

/// A validated run: one set of options per source, and where metrics go.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub ingests: Vec<IngestOptions>,
    pub metrics_file: Option<PathBuf>,
}

/// Merges flags/env over the file over defaults, and checks the result.
pub fn resolve(given: Overrides, file: FileConfig) -> Result<RunConfig> {
    let sources = if given.sources.is_empty() {
        file.sources
    } else {
        given.sources
    };
    if sources.is_empty() {
        return Err(Error::Config(
            "no source: give --source or `sources` in the config file".into(),
        ));
    }
    let lake = given
        .lake
        .or(file.lake)
        .ok_or_else(|| Error::Config("no lake: give --lake or `lake` in the config file".into()))?;
    let pick = |flags: Vec<String>, from_file: Vec<String>| {
        if flags.is_empty() { from_file } else { flags }
    };
    let key_params = pick(given.key_params, file.key_params);
    let key_from = pick(given.key_from, file.key_from);
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
    let format = match given.format.or(file.format).as_deref().unwrap_or("auto") {
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
            crate::format::fields::realtime_order(&fields).map_err(Error::Config)?;
            LogFormat::Realtime(fields)
        }
        other => {
            return Err(Error::Config(format!(
                "--format {other:?}: use auto or realtime"
            )));
        }
    };
    let since = given.since.or(file.since);
    let window = if given.full_listing || file.full_listing == Some(true) {
        Window::Full
    } else if let Some(since) = since {
        Window::Since(parse_instant(&since)?)
    } else {
        let lookback = given
            .lookback
            .or(file.lookback)
            .unwrap_or_else(|| "48h".into());
        Window::Lookback(parse_duration(&lookback)?)
    };
    let concurrency = given.concurrency.or(file.concurrency).unwrap_or(16);
    if concurrency == 0 {
        return Err(Error::Config("concurrency must be at least 1".into()));
    }
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
                .map_or(crate::format::w3c::DEFAULT_MAX_LINE_BYTES, |n| {
                    usize::try_from(n.max(64)).unwrap_or(usize::MAX)
                }),
        },
        concurrency,
        batch_bytes: given.batch_bytes.or(file.batch_bytes).unwrap_or(8 << 20),
        file_limits: crate::lake::partition::FileLimits {
            rows: given
                .max_file_rows
                .or(file.max_file_rows)
                .map_or(crate::lake::partition::MAX_FILE_ROWS, |n| n.max(1) as usize),
            bytes: given
                .max_file_bytes
                .or(file.max_file_bytes)
                .map_or(crate::lake::partition::MAX_FILE_BYTES, |n| {
                    n.max(1) as usize
                }),
        },
        max_object_bytes: given
            .max_object_bytes
            .or(file.max_object_bytes)
            .unwrap_or(DEFAULT_MAX_OBJECT_BYTES),
        window,
        retain_days: given.retain_days.or(file.retain_days),
        progress: given.progress,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let file: FileConfig = toml::from_str(
            r#"
            sources = ["s3://logs/cf/"]
            lake = "s3://lake/edge/"
            key_params = ["token"]
            lookback = "6h"
            retain_days = 400
            "#,
        )
        .unwrap();
        let given = Overrides {
            lake: Some("/tmp/lake".into()),
            ..Default::default()
        };
        let run = resolve(given, file).unwrap();
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
        let given = Overrides {
            sources: vec!["/logs".into()],
            lake: Some("/tmp/lake".into()),
            key_from: vec!["header:x-api-key".into(), "query:token".into()],
            key_params: vec!["api_key".into(), "token".into()],
            ..Default::default()
        };
        let run = resolve(given, FileConfig::default()).unwrap();
        assert_eq!(
            run.ingests[0].parse.key_sources,
            vec![
                KeySource::Header("x-api-key".into()),
                KeySource::Query("token".into()),
                KeySource::Query("api_key".into()),
            ]
        );
    }

    #[test]
    fn unknown_keys_and_missing_essentials_are_config_errors() {
        assert!(toml::from_str::<FileConfig>("lakes = \"x\"").is_err());
        let err = resolve(Overrides::default(), FileConfig::default()).unwrap_err();
        assert!(matches!(err, Error::Config(_)));
    }
}
