//! The named queries of `queries/`, compiled into the binary so it runs
//! anywhere. Each file starts with a comment saying what it returns and which
//! parameters it takes; that comment is what `edgemeter queries` shows.

use crate::error::{Error, Result};
use datafusion::common::ScalarValue;

/// One named query.
#[derive(Debug, Clone, Copy)]
pub struct NamedQuery {
    pub name: &'static str,
    pub(crate) sql: &'static str,
}

/// The type of a query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamType {
    /// A date (midnight UTC) or RFC 3339 instant.
    Timestamp,
    String,
    Int,
}

/// A parameter a query declares with `-- @param NAME TYPE [DEFAULT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParamSpec {
    pub(crate) name: String,
    pub(crate) ty: ParamType,
    pub(crate) default: Option<String>,
}

impl NamedQuery {
    /// The leading `--` comment, without the markers and parameter declarations.
    pub(crate) fn description(&self) -> String {
        self.header()
            .filter(|l| !l.starts_with("@param"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn header(&self) -> impl Iterator<Item = &'static str> {
        self.sql
            .lines()
            .take_while(|l| l.starts_with("--"))
            .map(|l| l.trim_start_matches("--").trim_start())
    }

    /// The declared parameters.
    pub(crate) fn params(&self) -> Vec<ParamSpec> {
        self.header()
            .filter_map(|l| l.strip_prefix("@param "))
            .filter_map(|decl| {
                let mut parts = decl.split_whitespace();
                let name = parts.next()?.to_string();
                let ty = match parts.next()? {
                    "timestamp" => ParamType::Timestamp,
                    "int" => ParamType::Int,
                    _ => ParamType::String,
                };
                let default = parts.next().map(str::to_string);
                Some(ParamSpec { name, ty, default })
            })
            .collect()
    }

    /// Typed values for the declared parameters from `name=value` text; an
    /// unset `from`/`to` is an open end. `from_dt`/`to_dt` (partition pruning)
    /// are derived from `from`/`to`.
    pub(crate) fn bind(&self, given: &[(String, String)]) -> Result<Vec<(String, ScalarValue)>> {
        let specs = self.params();
        let bad = |reason: String| Error::Query {
            name: self.name.to_string(),
            reason,
        };
        if let Some((unknown, _)) = given
            .iter()
            .find(|(n, _)| !specs.iter().any(|s| &s.name == n))
        {
            let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            return Err(bad(format!(
                "no parameter {unknown:?}; it takes {}",
                known.join(", ")
            )));
        }
        let value = |name: &str| {
            given
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let range = crate::time::TimeRange::parse(value("from"), value("to"))
            .map_err(|e| bad(e.to_string()))?;
        let mut out = range.params();
        for spec in specs.iter().filter(|s| s.name != "from" && s.name != "to") {
            let Some(text) = value(&spec.name).or(spec.default.as_deref()) else {
                return Err(bad(format!("needs --param {}=…", spec.name)));
            };
            let scalar = match spec.ty {
                ParamType::Int => ScalarValue::Int64(Some(
                    text.parse()
                        .map_err(|_| bad(format!("{} = {text:?} is not an integer", spec.name)))?,
                )),
                ParamType::String => ScalarValue::Utf8(Some(text.to_string())),
                ParamType::Timestamp => {
                    let t = crate::time::parse_instant(text).map_err(|e| bad(e.to_string()))?;
                    ScalarValue::TimestampMillisecond(
                        Some(t.timestamp_millis()),
                        Some("UTC".into()),
                    )
                }
            };
            out.push((spec.name.clone(), scalar));
        }
        Ok(out)
    }
}

macro_rules! queries {
    ($($name:literal),+ $(,)?) => {
        &[$(NamedQuery {
            name: $name,
            sql: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/queries/", $name, ".sql")),
        }),+]
    };
}

/// Every named query, by name.
pub const QUERIES: &[NamedQuery] = queries![
    "usage_by_key",
    "usage_by_key_window",
    "usage_by_key_endpoint",
    "top_keys",
    "error_rates",
    "latency_by_key",
    "latency_by_endpoint",
    "unbillable",
    "daily_series",
    "usage_by_key_status",
    "key_health",
    "conflicting_keys",
];

/// A named query, or an error listing the known names.
/// `name=value` pairs from `--param` flags.
pub(crate) fn parse_params(flags: &[String]) -> Result<Vec<(String, String)>> {
    flags
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| Error::Config(format!("--param {f:?}: use name=value")))
        })
        .collect()
}

/// The named queries whose names are nearest a misspelled one, best first
/// (at most three; none when nothing is close).
pub(crate) fn nearest(name: &str) -> Vec<&'static str> {
    let wanted = name.to_ascii_lowercase();
    let mut scored: Vec<(f64, &'static str)> = QUERIES
        .iter()
        .map(|q| (strsim::jaro_winkler(&wanted, q.name), q.name))
        .filter(|(score, _)| *score >= 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(3).map(|(_, name)| name).collect()
}

pub(crate) fn get(name: &str) -> Result<&'static NamedQuery> {
    QUERIES
        .iter()
        .find(|q| q.name == name)
        .ok_or_else(|| Error::Query {
            name: name.to_string(),
            reason: format!(
                "no such query; known: {}",
                QUERIES
                    .iter()
                    .map(|q| q.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn every_query_documents_itself_and_declares_its_parameters() {
        for q in QUERIES {
            assert!(
                q.sql.starts_with(&format!("-- {}: ", q.name)),
                "{} must start with its name",
                q.name
            );
            let declared: Vec<String> = q.params().iter().map(|p| p.name.clone()).collect();
            assert!(
                declared.contains(&"from".to_string()) && declared.contains(&"to".to_string()),
                "{}",
                q.name
            );
            for used in ["$limit", "$by", "$tz"] {
                if q.sql.contains(used) {
                    assert!(
                        declared.contains(&used[1..].to_string()),
                        "{} uses {used} undeclared",
                        q.name
                    );
                }
            }
        }
    }

    /// The `$name` placeholders of SQL, comments left out.
    pub(crate) fn placeholders(sql: &str) -> Vec<String> {
        let mut out = Vec::new();
        for line in sql.lines().map(|l| l.split("--").next().unwrap_or("")) {
            for (at, _) in line.match_indices('$') {
                let name: String = line[at + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out
    }

    /// Every placeholder of every query is bound when it runs, the status
    /// classes' bounds included (as `sc_status`'s type), whatever the user gave.
    #[test]
    fn every_query_receives_its_parameters() {
        let mut classed = 0;
        for q in QUERIES {
            let bound = super::super::with_status_params(q.bind(&[]).unwrap());
            for name in placeholders(q.sql) {
                assert!(
                    bound.iter().any(|(n, _)| *n == name),
                    "{} uses ${name}, which is not bound",
                    q.name
                );
            }
            for (name, class) in crate::schema::status::StatusClass::COUNTED {
                if q.sql
                    .contains(&crate::schema::status::StatusClass::sql(name))
                {
                    let (lo, hi) = class.range();
                    assert!(bound.contains(&(format!("{name}_lo"), ScalarValue::Int16(Some(lo)))));
                    assert!(bound.contains(&(format!("{name}_hi"), ScalarValue::Int16(Some(hi)))));
                    classed += 1;
                }
            }
        }
        assert!(classed >= 10, "only {classed} uses of a status class");
        // The class bounds are not the user's to set.
        let q = get("usage_by_key").unwrap();
        assert!(q.bind(&[("billable_lo".into(), "100".into())]).is_err());
    }

    #[test]
    fn parameters_are_typed() {
        let q = get("top_keys").unwrap();
        let bound = q.bind(&[("limit".into(), "3".into())]).unwrap();
        assert!(bound.contains(&("limit".into(), ScalarValue::Int64(Some(3)))));
        assert!(
            q.bind(&[("limit".into(), "3; DROP TABLE x".into())])
                .is_err()
        );
        assert!(q.bind(&[("nope".into(), "1".into())]).is_err());
        assert!(q.bind(&[("from".into(), "yesterday".into())]).is_err());
    }
}
