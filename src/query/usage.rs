//! `edgemeter usage` with windows, dimensions and key filters.
//!
//! The plain per-key query is `queries/usage_by_key.sql`. Windows and
//! dimensions change the shape of the statement, so this module assembles it
//! from fixed fragments: dimensions come from a closed list of column
//! expressions, and every value (range, zone, keys) is a bound parameter, never
//! text pasted into SQL.

use super::LakeSession;
use crate::error::{Error, Result};
use crate::schema::status::StatusClass;
use crate::time::TimeRange;
use datafusion::common::ScalarValue;
use datafusion::execution::SendableRecordBatchStream;

/// A window size for `--by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum WindowUnit {
    Hour,
    Day,
    Month,
}

/// A dimension for `--group-by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Dimension {
    /// `cs_uri_stem` with ids folded into `{id}`.
    Endpoint,
    Method,
    Status,
    Edge,
    Protocol,
}

impl Dimension {
    fn expr(self) -> (&'static str, &'static str) {
        match self {
            Dimension::Endpoint => ("endpoint_template(cs_uri_stem)", "endpoint"),
            Dimension::Method => ("cs_method", "method"),
            Dimension::Status => ("sc_status", "status"),
            Dimension::Edge => ("x_edge_location", "edge"),
            Dimension::Protocol => ("cs_protocol", "protocol"),
        }
    }
}

/// What to count.
#[derive(Debug, Clone, Default)]
pub(crate) struct UsageQuery {
    pub(crate) range: TimeRange,
    pub(crate) by: Option<WindowUnit>,
    /// Zone of the windows (UTC when `None`).
    pub(crate) tz: Option<chrono_tz::Tz>,
    pub(crate) group_by: Vec<Dimension>,
    /// Only these `api_key_id`s (all when empty).
    pub(crate) keys: Vec<String>,
}

/// The columns every usage query sums, the status classes as
/// [`StatusClass`] defines them (their bounds bound as parameters).
fn measures() -> String {
    let [billable, client, server] = StatusClass::COUNTED.map(|(name, _)| StatusClass::sql(name));
    format!(
        "count(*) AS requests,
    count(*) FILTER (WHERE {billable}) AS billable_requests,
    count(*) FILTER (WHERE {client}) AS client_errors,
    count(*) FILTER (WHERE {server}) AS server_errors,
    coalesce(sum(sc_bytes), 0) AS bytes_out,
    coalesce(sum(cs_bytes), 0) AS bytes_in"
    )
}

/// Refuses a `--key` that is not an `api_key_id` (64 hex digits). The value
/// is not echoed: a raw key given to --key by mistake must not land in a
/// terminal's scrollback or a job's log.
pub(crate) fn check_key_ids(keys: &[String]) -> Result<()> {
    if let Some(at) = keys
        .iter()
        .position(|k| k.len() != 64 || !k.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(Error::Config(format!(
            "--key number {} ({} characters) is not an api_key_id (64 hex digits); use --key-raw for a raw key",
            at + 1,
            keys[at].chars().count()
        )));
    }
    Ok(())
}

impl UsageQuery {
    /// The statement and its parameters.
    pub(crate) fn sql(&self) -> Result<(String, Vec<(String, ScalarValue)>)> {
        let mut params = self.range.params();
        params.extend(super::status_params());
        let mut select = Vec::new();
        let mut group = Vec::new();
        if let Some(unit) = self.by {
            let tz = self.tz.unwrap_or(chrono_tz::UTC).name().to_string();
            let unit = match unit {
                WindowUnit::Hour => "hour",
                WindowUnit::Day => "day",
                WindowUnit::Month => "month",
            };
            select.push("window_start(\"timestamp\", $unit, $tz) AS window_start".to_string());
            group.push("window_start".to_string());
            params.push(("unit".into(), ScalarValue::Utf8(Some(unit.into()))));
            params.push(("tz".into(), ScalarValue::Utf8(Some(tz))));
        }
        select.push("api_key_id".into());
        select.push("max(api_key_hint) AS api_key_hint".into());
        group.push("api_key_id".into());
        let mut dims: Vec<Dimension> = Vec::new();
        for d in &self.group_by {
            if !dims.contains(d) {
                dims.push(*d);
            }
        }
        for d in &dims {
            let (expr, name) = d.expr();
            select.push(format!("{expr} AS {name}"));
            group.push(name.to_string());
        }
        let mut filter = String::new();
        if !self.keys.is_empty() {
            check_key_ids(&self.keys)?;
            filter = "\n  AND array_has(string_to_array($keys, ','), api_key_id)".into();
            params.push((
                "keys".into(),
                ScalarValue::Utf8(Some(self.keys.join(",").to_ascii_lowercase())),
            ));
        }
        let order: Vec<String> = group
            .iter()
            .map(|g| format!("{g} ASC NULLS LAST"))
            .collect();
        let sql = format!(
            "SELECT\n    {},\n    {}\nFROM requests\nWHERE dt >= $from_dt AND dt <= $to_dt\n  AND \"timestamp\" >= $from AND \"timestamp\" < $to{filter}\nGROUP BY {}\nORDER BY {}",
            select.join(",\n    "),
            measures(),
            group.join(", "),
            order.join(", ")
        );
        Ok((sql, params))
    }

    pub(crate) async fn run(&self, session: &LakeSession) -> Result<SendableRecordBatchStream> {
        if self.by.is_none() && self.group_by.is_empty() && self.keys.is_empty() {
            return session.named("usage_by_key", self.range.params()).await;
        }
        let (sql, params) = self.sql()?;
        let df = session
            .read_only_sql(&sql)
            .await?
            .with_param_values(params)?;
        Ok(df.execute_stream().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every placeholder of an assembled statement is bound, the status
    /// classes' bounds included.
    #[test]
    fn assembled_statements_bind_every_placeholder() {
        let query = UsageQuery {
            by: Some(WindowUnit::Day),
            group_by: vec![Dimension::Status, Dimension::Endpoint],
            keys: vec!["a".repeat(64)],
            ..UsageQuery::default()
        };
        let (sql, params) = query.sql().unwrap();
        assert!(sql.contains(&StatusClass::sql("billable")));
        for name in crate::query::library::tests::placeholders(&sql) {
            assert!(
                params.iter().any(|(n, _)| *n == name),
                "${name} is not bound"
            );
        }
    }
}
