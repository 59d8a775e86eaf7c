//! The named queries of `queries/`, compiled into the binary so it runs
//! anywhere. Each file starts with a comment saying what it returns and which
//! parameters it takes; that comment is what `edgemeter queries` shows.

use crate::error::{Error, Result};

/// One named query.
#[derive(Debug, Clone, Copy)]
pub struct NamedQuery {
    pub name: &'static str,
    pub sql: &'static str,
}

impl NamedQuery {
    /// The leading `--` comment, without the markers.
    pub fn description(&self) -> String {
        self.sql
            .lines()
            .take_while(|l| l.starts_with("--"))
            .map(|l| l.trim_start_matches("--").trim_start())
            .collect::<Vec<_>>()
            .join("\n")
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
pub const QUERIES: &[NamedQuery] = queries!["usage_by_key", "usage_by_key_status", "key_health"];

/// A named query, or an error listing the known names.
pub fn get(name: &str) -> Result<&'static NamedQuery> {
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
