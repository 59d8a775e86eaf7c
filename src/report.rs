//! `edgemeter report`: one self-contained HTML file (inline SVG charts and
//! tables, no scripts, no network fetches) for a month: daily requests and
//! billable requests per top key, error rates per key, latency percentiles and
//! top endpoints, each chart with the table behind it.

use crate::error::Result;
use crate::export::Period;
use crate::lake::Lake;
use crate::query::{LakeSession, collect};
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use std::collections::BTreeMap;
use std::fmt::Write;

/// How many keys the daily chart shows.
const TOP_KEYS: usize = 5;
const COLORS: [&str; 6] = [
    "#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2",
];

/// A query result as text cells.
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn from_batches(batches: &[RecordBatch]) -> Result<Self> {
        let columns = batches
            .first()
            .map(|b| {
                b.schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut rows = Vec::new();
        let options = FormatOptions::default().with_null("");
        for batch in batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c: &ArrayRef| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()?;
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| f.value(row).to_string())
                        .collect(),
                );
            }
        }
        Ok(Self { columns, rows })
    }

    fn col(&self, name: &str) -> usize {
        self.columns.iter().position(|c| c == name).unwrap_or(0)
    }

    fn number(&self, row: usize, name: &str) -> f64 {
        self.rows[row][self.col(name)].parse().unwrap_or(0.0)
    }

    fn html(&self) -> String {
        let mut out = String::from("<table><thead><tr>");
        for c in &self.columns {
            let _ = write!(out, "<th>{}</th>", escape(c));
        }
        out.push_str("</tr></thead><tbody>");
        for r in &self.rows {
            out.push_str("<tr>");
            for cell in r {
                let _ = write!(out, "<td>{}</td>", escape(cell));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
        out
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A short label for a key id.
fn key_label(id: &str, hint: &str) -> String {
    match (id.is_empty(), hint.is_empty()) {
        (true, _) => "(no key)".into(),
        (false, true) => format!("{}…", &id[..id.len().min(10)]),
        (false, false) => format!("{}… ({hint})", &id[..id.len().min(10)]),
    }
}

/// Horizontal bars: (label, value).
fn bar_chart(title: &str, bars: &[(String, f64)], unit: &str) -> String {
    let max = bars
        .iter()
        .map(|b| b.1)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let height = 30 + bars.len() * 26;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg role=\"img\" viewBox=\"0 0 760 {height}\" width=\"760\" height=\"{height}\">",
        escape(title)
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = 10 + i * 26;
        let w = (value / max * 440.0).max(1.0);
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text><rect x=\"250\" y=\"{y}\" width=\"{w:.1}\" height=\"18\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"12\">{}{}</text>",
            y + 14,
            escape(label),
            COLORS[i % COLORS.len()],
            255.0 + w,
            y + 14,
            format_number(*value),
            unit
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Lines over days: series name → (day → value).
fn line_chart(title: &str, days: &[String], series: &[(String, BTreeMap<String, f64>)]) -> String {
    let (w, h, left, bottom) = (760.0, 300.0, 60.0, 40.0);
    let max = series
        .iter()
        .flat_map(|(_, s)| s.values().copied())
        .fold(0.0, f64::max)
        .max(1.0);
    let x = |i: usize| left + (w - left - 20.0) * i as f64 / (days.len().max(2) - 1) as f64;
    let y = |v: f64| (h - bottom) - (h - bottom - 20.0) * v / max;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg role=\"img\" viewBox=\"0 0 {w} {}\" width=\"{w}\" height=\"{}\">",
        escape(title),
        h + 20.0 * series.len() as f64,
        h + 20.0 * series.len() as f64
    );
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{0}\" x2=\"{w}\" y2=\"{0}\" stroke=\"#999\"/><text x=\"0\" y=\"24\" font-size=\"11\">{1}</text><text x=\"0\" y=\"{0}\" font-size=\"11\">0</text>",
        h - bottom,
        format_number(max)
    );
    for (i, day) in days.iter().enumerate() {
        if days.len() <= 10 || i % 5 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\">{}</text>",
                x(i) - 14.0,
                h - bottom + 14.0,
                &day[5..]
            );
        }
    }
    for (n, (name, values)) in series.iter().enumerate() {
        let color = COLORS[n % COLORS.len()];
        let points: Vec<String> = days
            .iter()
            .enumerate()
            .map(|(i, d)| {
                format!(
                    "{:.1},{:.1}",
                    x(i),
                    y(values.get(d).copied().unwrap_or(0.0))
                )
            })
            .collect();
        for p in &points {
            if let Some((cx, cy)) = p.split_once(',') {
                let _ = write!(
                    svg,
                    "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"3\" fill=\"{color}\"/>"
                );
            }
        }
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/><rect x=\"{left}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\" font-size=\"12\">{}</text>",
            points.join(" "),
            h + 20.0 * n as f64,
            left + 18.0,
            h + 20.0 * n as f64 + 11.0,
            escape(name)
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// Builds the report of `period` (a `YYYY-MM` month, UTC).
pub async fn report(
    lake: &Lake,
    period: &Period,
    as_of: crate::lake::delta::AsOf,
) -> Result<String> {
    let session = LakeSession::open_as_of(lake, as_of).await?;
    let range = period.range();
    let run = |name: &'static str, extra: Vec<(String, datafusion::common::ScalarValue)>| {
        let mut params = range.params();
        params.extend(extra);
        let session = &session;
        async move { Table::from_batches(&collect(session.named(name, params).await?).await?) }
    };
    let usage = run("usage_by_key", vec![]).await?;
    let errors = run("error_rates", vec![]).await?;
    let latency = run("latency_by_key", vec![]).await?;
    let endpoints = run("latency_by_endpoint", vec![]).await?;
    let daily = run("daily_series", vec![]).await?;
    let window = run(
        "usage_by_key_window",
        vec![
            (
                "by".into(),
                datafusion::common::ScalarValue::Utf8(Some("day".into())),
            ),
            (
                "tz".into(),
                datafusion::common::ScalarValue::Utf8(Some("UTC".into())),
            ),
        ],
    )
    .await?;

    // Top keys by billable requests.
    let mut keyed: Vec<(String, String, f64)> = (0..usage.rows.len())
        .filter(|&r| !usage.rows[r][usage.col("api_key_id")].is_empty())
        .map(|r| {
            (
                usage.rows[r][usage.col("api_key_id")].clone(),
                usage.rows[r][usage.col("api_key_hint")].clone(),
                usage.number(r, "billable_requests"),
            )
        })
        .collect();
    keyed.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    keyed.truncate(TOP_KEYS);
    let mut days = Vec::new();
    let mut day = period.start.date_naive();
    while day < period.end.date_naive() {
        days.push(day.format("%Y-%m-%d").to_string());
        day = day.succ_opt().unwrap_or(period.end.date_naive());
    }
    let mut series = Vec::new();
    for (id, hint, _) in &keyed {
        for (measure, column) in [("requests", "requests"), ("billable", "billable_requests")] {
            let values: BTreeMap<String, f64> = (0..window.rows.len())
                .filter(|&r| &window.rows[r][window.col("api_key_id")] == id)
                .map(|r| {
                    (
                        window.rows[r][0][..10].to_string(),
                        window.number(r, column),
                    )
                })
                .collect();
            series.push((format!("{} {measure}", key_label(id, hint)), values));
        }
    }
    let error_bars: Vec<(String, f64)> = (0..errors.rows.len())
        .map(|r| {
            let id = &errors.rows[r][errors.col("api_key_id")];
            (
                key_label(id, ""),
                errors.number(r, "server_error_rate") * 100.0
                    + errors.number(r, "client_error_rate") * 100.0,
            )
        })
        .collect();
    let latency_bars: Vec<(String, f64)> = (0..latency.rows.len())
        .map(|r| {
            (
                key_label(&latency.rows[r][0], ""),
                latency.number(r, "time_taken_p95"),
            )
        })
        .collect();
    let endpoint_bars: Vec<(String, f64)> = (0..endpoints.rows.len().min(10))
        .map(|r| {
            (
                endpoints.rows[r][0].clone(),
                endpoints.number(r, "requests"),
            )
        })
        .collect();

    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>edgemeter report {label}</title><style>{CSS}</style></head><body><h1>API usage, {label}</h1><p class=\"range\">{from} to {to} (UTC), from the lake at {lake}</p>",
        label = escape(&period.label),
        from = period.start.to_rfc3339(),
        to = period.end.to_rfc3339(),
        lake = escape(lake.url().as_str()),
    );
    let _ = write!(
        html,
        "<h2>Daily requests and billable requests, top {} keys</h2>{}{}",
        keyed.len(),
        line_chart("requests per day", &days, &series),
        daily.html()
    );
    let _ = write!(html, "<h2>Usage per key</h2>{}", usage.html());
    let _ = write!(
        html,
        "<h2>Error rate per key</h2>{}{}",
        bar_chart("4xx + 5xx, % of requests", &error_bars, "%"),
        errors.html()
    );
    let _ = write!(
        html,
        "<h2>Latency per key</h2>{}{}",
        bar_chart("p95 time_taken (s)", &latency_bars, " s"),
        latency.html()
    );
    let _ = write!(
        html,
        "<h2>Top endpoints</h2>{}{}",
        bar_chart("requests per endpoint", &endpoint_bars, ""),
        endpoints.html()
    );
    html.push_str("<footer>Generated by edgemeter ");
    html.push_str(env!("CARGO_PKG_VERSION"));
    html.push_str(".</footer></body></html>\n");
    Ok(html)
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#111;max-width:1100px}h1{margin-bottom:0}.range{color:#555}h2{margin-top:2.5rem;border-bottom:1px solid #ddd}table{border-collapse:collapse;font-size:12px;margin:1rem 0}th,td{border:1px solid #ddd;padding:3px 6px;text-align:right}th{background:#f3f4f6}td:first-child,th:first-child{text-align:left;font-family:monospace}figure{margin:1rem 0}figcaption{font-weight:600;margin-bottom:.3rem}footer{margin-top:3rem;color:#777;font-size:12px}";
