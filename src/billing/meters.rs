//! Meters: what a plan can price and limit, each a filter over `requests`
//! and an aggregation, as Lago, Metronome and OpenMeter define them.
//!
//! ```toml
//! [meters.search_calls]
//! aggregation = "count"
//! filter = { endpoint = ["/v1/search*"], method = ["GET", "POST"], status = "2xx" }
//! ```
//!
//! The built-in meters `requests`, `billable_requests`, `bytes_out` and
//! `bytes_in` always exist. A meter becomes SQL only through
//! [`Meter::condition`] and [`Meter::measure`]: columns come from closed
//! lists and every value a plans file gives is a bound parameter.

use super::plans::StatusSet;
use crate::error::{Error, Result};
use crate::schema::fields::{ColumnType, FIELDS};
use datafusion::common::ScalarValue;
use std::collections::BTreeMap;

/// How a meter aggregates the rows its filter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Aggregation {
    Count,
    Sum,
    UniqueCount,
    Max,
    Min,
    Avg,
}

impl Aggregation {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "count" => Self::Count,
            "sum" => Self::Sum,
            "unique_count" => Self::UniqueCount,
            "max" => Self::Max,
            "min" => Self::Min,
            "avg" => Self::Avg,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Sum => "sum",
            Self::UniqueCount => "unique_count",
            Self::Max => "max",
            Self::Min => "min",
            Self::Avg => "avg",
        }
    }

    /// Whether the aggregation needs a numeric `value`.
    fn numeric(self) -> bool {
        matches!(self, Self::Sum | Self::Max | Self::Min | Self::Avg)
    }
}

/// A glob over endpoint templates (`/v1/users/{id}`): `*` matches within a
/// path segment, `**` across segments; everything else is literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EndpointGlob {
    pub(crate) glob: String,
    /// The anchored regular expression the glob means.
    pub(crate) regex: String,
}

impl EndpointGlob {
    /// Parses a glob; `None` with the reason when no endpoint can match it.
    pub(crate) fn parse(glob: &str) -> std::result::Result<Self, String> {
        if !glob.starts_with('/') {
            return Err("endpoint templates start with '/', so it can never match".into());
        }
        if glob.contains(['?', '#']) || glob.chars().any(char::is_whitespace) {
            return Err(
                "endpoint templates hold no query string, fragment or whitespace, so it can never match"
                    .into(),
            );
        }
        if glob.contains("***") {
            return Err("use * within a segment or ** across segments".into());
        }
        let mut regex = String::from("^");
        let mut rest = glob;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("**") {
                regex.push_str(".*");
                rest = after;
            } else if let Some(after) = rest.strip_prefix('*') {
                regex.push_str("[^/]*");
                rest = after;
            } else {
                let end = rest.find('*').unwrap_or(rest.len());
                regex.push_str(&regex::escape(&rest[..end]));
                rest = &rest[end..];
            }
        }
        regex.push('$');
        Ok(Self {
            glob: glob.to_string(),
            regex,
        })
    }

    /// Whether an endpoint template matches (what the SQL's `regex_match` decides).
    #[cfg(test)]
    pub(crate) fn matches(&self, endpoint: &str) -> bool {
        regex::Regex::new(&self.regex).unwrap().is_match(endpoint)
    }
}

/// Which rows a meter counts: each given field must match (AND); a list
/// matches any of its values (OR). An empty filter keeps every row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    pub(crate) endpoint: Vec<EndpointGlob>,
    pub(crate) method: Vec<String>,
    pub(crate) status: Option<StatusSet>,
    /// The Host header the viewer sent (`x_host_header`), or `cs_host` when
    /// the log has none.
    pub(crate) host: Vec<String>,
    /// Prefixes of `x_edge_location` (`FRA`, `IAD89`).
    pub(crate) edge: Vec<String>,
    pub(crate) result_type: Vec<String>,
    pub(crate) protocol: Vec<String>,
    pub(crate) content_type: Vec<String>,
}

/// The SQL expression of the host a filter matches: lowercased, as the
/// filter's hosts are (viewers may send the Host header in any case, and it
/// names the same host), and as the rollup keeps it.
pub(crate) const HOST_EXPR: &str = "lower(coalesce(x_host_header, cs_host))";
/// The SQL expression of the endpoint template a filter matches.
pub(crate) const ENDPOINT_EXPR: &str = "endpoint_template(cs_uri_stem)";

impl Filter {
    /// Whether the filter uses only what the hourly rollup keeps (status,
    /// method, host, endpoint template, edge location).
    pub(crate) fn rollup_answers(&self) -> bool {
        self.result_type.is_empty() && self.protocol.is_empty() && self.content_type.is_empty()
    }

    /// Whether the filter uses only what the narrow rollup keeps (status).
    pub(crate) fn keys_rollup_answers(&self) -> bool {
        self.rollup_answers()
            && self.endpoint.is_empty()
            && self.method.is_empty()
            && self.host.is_empty()
            && self.edge.is_empty()
    }
}

/// One meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meter {
    pub(crate) slug: String,
    pub(crate) description: String,
    pub(crate) aggregation: Aggregation,
    /// The `requests` column aggregated (`None` for `count`).
    pub(crate) value: Option<&'static str>,
    pub(crate) filter: Filter,
    pub(crate) builtin: bool,
    /// The names billing systems know the meter by (defaults:
    /// `edgemeter_<slug>`, `<slug>` and `edgemeter_<slug>`).
    pub(crate) events: EventNames,
}

/// What the export formats of billing systems call a meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventNames {
    /// Stripe's meter `event_name`.
    pub(crate) stripe: String,
    /// Lago's billable metric `code`.
    pub(crate) lago: String,
    /// The CloudEvents `type` an OpenMeter meter selects (`eventType`).
    pub(crate) openmeter: String,
}

impl EventNames {
    /// The names of meter `slug`, given ones validated (`bad` names the meter).
    fn of(slug: &str, raw: &raw::Definition, bad: &dyn Fn(String) -> Error) -> Result<Self> {
        let name = |field: &str, given: &Option<String>, default: String| match given {
            None => Ok(default),
            // Stripe takes an event_name of at most 100 characters; none of
            // the three systems matches names with spaces or control
            // characters reliably, so any name is printable ASCII.
            Some(n)
                if !n.is_empty() && n.len() <= 100 && n.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Ok(n.clone())
            }
            Some(n) => Err(bad(format!(
                "{field} = {n:?}: give 1 to 100 printable ASCII characters without spaces"
            ))),
        };
        let default = Self::default_of(slug);
        Ok(Self {
            stripe: name("stripe_event_name", &raw.stripe_event_name, default.stripe)?,
            lago: name("lago_code", &raw.lago_code, default.lago)?,
            openmeter: name("openmeter_type", &raw.openmeter_type, default.openmeter)?,
        })
    }

    fn default_of(slug: &str) -> Self {
        Self {
            stripe: format!("edgemeter_{slug}"),
            lago: slug.to_string(),
            openmeter: format!("edgemeter_{slug}"),
        }
    }
}

/// Names of the built-in meters.
pub(crate) const BUILTIN: [&str; 4] = ["requests", "billable_requests", "bytes_out", "bytes_in"];

/// The expressions a meter's SQL reads, by what they are called in the
/// statement (`requests` rows, or a rollup's columns of the same names).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Columns {
    pub(crate) status: &'static str,
    pub(crate) method: &'static str,
    pub(crate) host: &'static str,
    pub(crate) endpoint: &'static str,
    pub(crate) edge: &'static str,
}

/// The columns of raw `requests` rows.
pub(crate) const RAW: Columns = Columns {
    status: "sc_status",
    method: "cs_method",
    host: HOST_EXPR,
    endpoint: ENDPOINT_EXPR,
    edge: "x_edge_location",
};

impl Meter {
    fn builtin(slug: &str, billable: &StatusSet) -> Self {
        let (description, aggregation, value, status) = match slug {
            "requests" => ("All requests", Aggregation::Count, None, None),
            "billable_requests" => (
                "Requests of a billable status",
                Aggregation::Count,
                None,
                Some(billable.clone()),
            ),
            "bytes_out" => (
                "Bytes sent to viewers (sc_bytes)",
                Aggregation::Sum,
                Some("sc_bytes"),
                None,
            ),
            _ => (
                "Bytes received from viewers (cs_bytes)",
                Aggregation::Sum,
                Some("cs_bytes"),
                None,
            ),
        };
        Meter {
            slug: slug.to_string(),
            description: description.to_string(),
            aggregation,
            value,
            filter: Filter {
                status,
                ..Filter::default()
            },
            builtin: true,
            events: EventNames::default_of(slug),
        }
    }

    /// The filter as a SQL condition over `columns` (`TRUE` when empty),
    /// its values appended to `params` as `$<prefix>_<n>`.
    pub(crate) fn condition(
        &self,
        columns: &Columns,
        prefix: &str,
        params: &mut Vec<(String, ScalarValue)>,
    ) -> String {
        let mut bind = |value: ScalarValue| {
            let name = format!("{prefix}_{}", params.len());
            params.push((name.clone(), value));
            format!("${name}")
        };
        let text = |s: &str| ScalarValue::Utf8(Some(s.to_string()));
        let mut all = Vec::new();
        let f = &self.filter;
        let mut any_of = |parts: Vec<String>| {
            if !parts.is_empty() {
                all.push(format!("({})", parts.join(" OR ")));
            }
        };
        any_of(
            f.endpoint
                .iter()
                .map(|g| {
                    format!(
                        "regex_match({}, {})",
                        columns.endpoint,
                        bind(text(&g.regex))
                    )
                })
                .collect(),
        );
        any_of(
            f.method
                .iter()
                .map(|m| format!("{} = {}", columns.method, bind(text(m))))
                .collect(),
        );
        if let Some(status) = &f.status {
            any_of(
                status
                    .0
                    .iter()
                    .map(|(lo, hi)| {
                        format!(
                            "{} BETWEEN {} AND {}",
                            columns.status,
                            bind(ScalarValue::Int16(Some(*lo))),
                            bind(ScalarValue::Int16(Some(*hi)))
                        )
                    })
                    .collect(),
            );
        }
        any_of(
            f.host
                .iter()
                .map(|h| format!("{} = {}", columns.host, bind(text(h))))
                .collect(),
        );
        any_of(
            f.edge
                .iter()
                .map(|e| format!("starts_with({}, {})", columns.edge, bind(text(e))))
                .collect(),
        );
        any_of(
            f.result_type
                .iter()
                .map(|r| format!("x_edge_result_type = {}", bind(text(r))))
                .collect(),
        );
        any_of(
            f.protocol
                .iter()
                .map(|p| format!("cs_protocol = {}", bind(text(p))))
                .collect(),
        );
        any_of(
            f.content_type
                .iter()
                .map(|c| format!("sc_content_type = {}", bind(text(c))))
                .collect(),
        );
        if all.is_empty() {
            "TRUE".to_string()
        } else {
            all.join(" AND ")
        }
    }

    /// The meter's aggregate over raw `requests` rows, filtered by `condition`.
    pub(crate) fn measure(&self, condition: &str) -> String {
        let value = self.value.unwrap_or("*");
        match self.aggregation {
            Aggregation::Count => format!("count(*) FILTER (WHERE {condition})"),
            Aggregation::Sum => {
                format!("coalesce(sum({value}) FILTER (WHERE {condition}), 0)")
            }
            Aggregation::UniqueCount => {
                format!("count(DISTINCT {value}) FILTER (WHERE {condition})")
            }
            Aggregation::Max => format!("max({value}) FILTER (WHERE {condition})"),
            Aggregation::Min => format!("min({value}) FILTER (WHERE {condition})"),
            Aggregation::Avg => format!("avg({value}) FILTER (WHERE {condition})"),
        }
    }
}

/// Every meter of a plans file, the built-in ones first, by slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meters(pub(crate) BTreeMap<String, Meter>);

impl Meters {
    /// Only the built-in meters.
    pub(crate) fn builtin(billable: &StatusSet) -> Self {
        Self(
            BUILTIN
                .iter()
                .map(|slug| (slug.to_string(), Meter::builtin(slug, billable)))
                .collect(),
        )
    }

    pub(crate) fn get(&self, slug: &str) -> Option<&Meter> {
        self.0.get(slug)
    }

    /// A meter by slug, or a configuration error listing the known ones.
    pub(crate) fn require(&self, slug: &str, context: &str) -> Result<&Meter> {
        self.get(slug).ok_or_else(|| {
            Error::Config(format!(
                "{context}: no meter named {slug:?} (known: {})",
                self.0.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// The built-in meters, then the defined ones in the order of their slugs.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Meter> {
        let builtin = BUILTIN.iter().filter_map(|s| self.0.get(*s));
        builtin.chain(self.0.values().filter(|m| !m.builtin))
    }

    /// Validates the `[meters.*]` tables of a plans file.
    pub(crate) fn parse(raw: BTreeMap<String, raw::Meter>, billable: &StatusSet) -> Result<Self> {
        let mut meters = Self::builtin(billable);
        for (slug, m) in raw {
            let bad = |problem: String| Error::Config(format!("meters.{slug}: {problem}"));
            let m: raw::Definition =
                m.0.try_into()
                    .map_err(|e: toml::de::Error| bad(e.message().trim_end().to_string()))?;
            if BUILTIN.contains(&slug.as_str()) {
                return Err(bad(format!(
                    "{slug} is a built-in meter ({}); choose another slug",
                    BUILTIN.join(", ")
                )));
            }
            let valid_slug = slug.len() <= 64
                && slug.starts_with(|c: char| c.is_ascii_lowercase())
                && slug
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid_slug {
                return Err(bad(
                    "a slug is lowercase letters, digits and _, starting with a letter (it names export columns)".into(),
                ));
            }
            let aggregation = Aggregation::parse(&m.aggregation).ok_or_else(|| {
                bad(format!(
                    "aggregation = {:?}: use count, sum, unique_count, max, min or avg",
                    m.aggregation
                ))
            })?;
            let value = match (&m.value, aggregation) {
                (Some(_), Aggregation::Count) => {
                    return Err(bad(
                        "count takes no value (it counts rows); use unique_count to count distinct values"
                            .into(),
                    ));
                }
                (None, Aggregation::Count) => None,
                (None, other) => {
                    return Err(bad(format!(
                        "{} needs a value: the requests column it aggregates",
                        other.name()
                    )));
                }
                (Some(column), aggregation) => {
                    let spec = FIELDS.iter().find(|f| f.column == column).ok_or_else(|| {
                        bad(format!(
                            "value = {column:?} is not a column of requests (see `edgemeter schema`)"
                        ))
                    })?;
                    if aggregation.numeric() && spec.ty == ColumnType::Utf8 {
                        return Err(bad(format!(
                            "value = {column:?} is text; {} needs a numeric column (sc_bytes, cs_bytes, time_taken, …)",
                            aggregation.name()
                        )));
                    }
                    Some(spec.column)
                }
            };
            let events = EventNames::of(&slug, &m, &bad)?;
            let filter = m.filter.map(|f| f.validate(&bad)).transpose()?;
            meters.0.insert(
                slug.clone(),
                Meter {
                    slug: slug.clone(),
                    description: m.description,
                    aggregation,
                    value,
                    filter: filter.unwrap_or_default(),
                    builtin: false,
                    events,
                },
            );
        }
        Ok(meters)
    }
}

pub(crate) mod raw {
    use serde::Deserialize;

    /// A `[meters.*]` table as written, read into a [`Definition`] by
    /// [`super::Meters::parse`], so that an unknown or mistyped field is
    /// reported with the meter's slug (the TOML parser knows only a line).
    #[derive(Deserialize)]
    #[serde(transparent)]
    pub(crate) struct Meter(pub(crate) toml::Value);

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Definition {
        #[serde(default)]
        pub(crate) description: String,
        pub(crate) aggregation: String,
        pub(crate) value: Option<String>,
        pub(crate) filter: Option<Filter>,
        pub(crate) stripe_event_name: Option<String>,
        pub(crate) lago_code: Option<String>,
        pub(crate) openmeter_type: Option<String>,
    }

    /// One value or a list of them.
    #[derive(Deserialize)]
    #[serde(untagged)]
    pub(crate) enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }

    impl OneOrMany {
        pub(crate) fn into_vec(self) -> Vec<String> {
            match self {
                Self::One(s) => vec![s],
                Self::Many(v) => v,
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Filter {
        pub(crate) endpoint: Option<OneOrMany>,
        pub(crate) method: Option<OneOrMany>,
        pub(crate) status: Option<String>,
        pub(crate) host: Option<OneOrMany>,
        pub(crate) edge: Option<OneOrMany>,
        pub(crate) result_type: Option<OneOrMany>,
        pub(crate) protocol: Option<OneOrMany>,
        pub(crate) content_type: Option<OneOrMany>,
    }
}

impl raw::Filter {
    fn validate(self, bad: &dyn Fn(String) -> Error) -> Result<Filter> {
        let list = |name: &str, values: Option<raw::OneOrMany>| -> Result<Vec<String>> {
            let given = values.is_some();
            let values = values.map(raw::OneOrMany::into_vec).unwrap_or_default();
            if given && values.is_empty() {
                return Err(bad(format!(
                    "filter.{name} = []: an empty list can never match; leave {name} out to keep every value"
                )));
            }
            if let Some(empty) = values
                .iter()
                .find(|v| v.trim().is_empty() || v.trim() != **v)
            {
                return Err(bad(format!(
                    "filter.{name} = {empty:?}: empty or padded with spaces, so it can never match"
                )));
            }
            Ok(values)
        };
        let endpoint = list("endpoint", self.endpoint)?
            .iter()
            .map(|g| {
                EndpointGlob::parse(g).map_err(|why| bad(format!("filter.endpoint = {g:?}: {why}")))
            })
            .collect::<Result<_>>()?;
        let method = list("method", self.method)?
            .into_iter()
            .map(|m| {
                if m.bytes().all(|b| b.is_ascii_uppercase()) {
                    Ok(m)
                } else {
                    Err(bad(format!(
                        "filter.method = {m:?}: CloudFront logs methods in capitals (GET, POST, …)"
                    )))
                }
            })
            .collect::<Result<_>>()?;
        let status = self
            .status
            .map(|s| {
                StatusSet::parse(&s).map_err(|_| {
                    bad(format!(
                        "filter.status = {s:?}: use classes like 2xx, ranges like 200-299, or codes like 304"
                    ))
                })
            })
            .transpose()?;
        Ok(Filter {
            endpoint,
            method,
            status,
            host: list("host", self.host)?
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            edge: list("edge", self.edge)?,
            result_type: list("result_type", self.result_type)?,
            protocol: list("protocol", self.protocol)?,
            content_type: list("content_type", self.content_type)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_within_and_across_segments() {
        let one = EndpointGlob::parse("/v1/search*").unwrap();
        assert!(one.matches("/v1/search") && one.matches("/v1/searches"));
        assert!(!one.matches("/v1/search/{id}"));
        let across = EndpointGlob::parse("/v1/files/**").unwrap();
        assert!(across.matches("/v1/files/{id}/content") && across.matches("/v1/files/"));
        assert!(!across.matches("/v1/files"));
        let mid = EndpointGlob::parse("/v1/*/items").unwrap();
        assert!(mid.matches("/v1/users/items") && !mid.matches("/v1/a/b/items"));
        // Literal text, braces and dots included, is matched as written.
        let literal = EndpointGlob::parse("/v1/users/{id}.json").unwrap();
        assert!(literal.matches("/v1/users/{id}.json") && !literal.matches("/v1/users/{id}xjson"));
        for never in ["v1/search", "/v1/search?q=1", "/v1/a b", "/v1/***"] {
            assert!(EndpointGlob::parse(never).is_err(), "{never}");
        }
    }
}
