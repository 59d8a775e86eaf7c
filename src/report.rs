//! `edgemeter report`: one self-contained HTML file (inline SVG charts and
//! tables, no scripts, no network fetches) for a month: daily requests and
//! billable requests per top key, error rates per key, latency percentiles and
//! top endpoints, each chart with the table behind it.

use crate::error::Result;
use crate::lake::Lake;
use crate::query::{LakeSession, collect};
use crate::time::Period;
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use std::collections::BTreeMap;
use std::fmt::Write;

/// How many keys the daily chart shows.
const TOP_KEYS: usize = 5;
/// One colour per key, by rank of billable requests, the same in every
/// chart; keys past the palette share the last, grey.
const COLORS: [&str; 8] = [
    "#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#6b7280",
];
/// The colour of all keys together and of requests without a key.
const TOTAL_COLOR: &str = "#111827";
const NO_KEY_COLOR: &str = "#9ca3af";

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

    fn text(&self, row: usize, name: &str) -> &str {
        &self.rows[row][self.col(name)]
    }

    fn number(&self, row: usize, name: &str) -> f64 {
        self.text(row, name).parse().unwrap_or(0.0)
    }
}

/// An HTML table of text cells; the first column left-aligned.
fn html_table(columns: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table><thead><tr>");
    for c in columns {
        let _ = write!(out, "<th>{}</th>", escape(c));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for cell in r {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// How keys are named and coloured: the customer's name where the plans
/// know the key, else a prefix of its id (and its hint).
struct Keys {
    names: BTreeMap<String, String>,
    colors: BTreeMap<String, &'static str>,
}

impl Keys {
    fn new(plans: Option<&crate::billing::plans::Plans>, ranked: &[String]) -> Self {
        let mut names = BTreeMap::new();
        for c in plans.map(|p| p.customers.as_slice()).unwrap_or_default() {
            let name = if c.name.is_empty() { &c.id } else { &c.name };
            let many = c.key_ids.len() > 1;
            for (i, id) in c.key_ids.iter().enumerate() {
                let label = match many {
                    true => format!("{name} (key {})", i + 1),
                    false => name.clone(),
                };
                names.insert(id.clone(), label);
            }
        }
        let colors = ranked
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), COLORS[i.min(COLORS.len() - 1)]))
            .collect();
        Self { names, colors }
    }

    fn label(&self, id: &str, hint: &str) -> String {
        if id.is_empty() {
            return "(no key)".into();
        }
        if let Some(name) = self.names.get(id) {
            return name.clone();
        }
        let prefix = &id[..id.len().min(10)];
        match hint.is_empty() {
            true => format!("{prefix}…"),
            false => format!("{prefix}… ({hint})"),
        }
    }

    fn color(&self, id: &str) -> &'static str {
        if id.is_empty() {
            return NO_KEY_COLOR;
        }
        self.colors
            .get(id)
            .copied()
            .unwrap_or(COLORS[COLORS.len() - 1])
    }
}

/// Round steps for an axis from 0 to at least `max`: (step, axis end).
fn ticks(max: f64) -> (f64, f64) {
    let max = if max > 0.0 { max } else { 1.0 };
    let rough = max / 5.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude);
    (step, (max / step).ceil().max(1.0) * step)
}

/// A number for a person: thousands separated, at most 3 decimals.
fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let digits = format!("{:.0}", v.abs());
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if v < 0.0 {
            out.insert(0, '-');
        }
        out
    } else {
        let text = format!("{v:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A share as a percentage: one decimal, `<0.1%` for a tiny non-zero one.
fn percent(share: f64) -> String {
    let p = share * 100.0;
    match p {
        0.0 => "0%".into(),
        p if p < 0.05 => "<0.1%".into(),
        p => format!("{p:.1}%"),
    }
}

/// One bar: label, value, its text, colour.
struct Bar {
    label: String,
    value: f64,
    text: String,
    color: &'static str,
}

/// Horizontal bars with a value axis: ticks and vertical gridlines.
fn bar_chart(title: &str, bars: &[Bar], axis: impl Fn(f64) -> String) -> String {
    let (left, width, top) = (250.0, 440.0, 10.0);
    let (step, end) = ticks(bars.iter().map(|b| b.value).fold(0.0, f64::max));
    let height = top + bars.len() as f64 * 26.0 + 30.0;
    let x = |v: f64| left + v / end * width;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg role=\"img\" viewBox=\"0 0 760 {height}\" width=\"760\" height=\"{height}\">",
        escape(title)
    );
    let axis_y = top + bars.len() as f64 * 26.0;
    let mut v = 0.0;
    while v <= end + step / 2.0 {
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{axis_y}\" stroke=\"#e5e7eb\"/>\
             <line class=\"tick\" x1=\"{0:.1}\" y1=\"{axis_y}\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"#6b7280\"/>\
             <text x=\"{0:.1}\" y=\"{2}\" font-size=\"10\" text-anchor=\"middle\">{3}</text>",
            x(v),
            axis_y + 4.0,
            axis_y + 16.0,
            escape(&axis(v))
        );
        v += step;
    }
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\" stroke=\"#6b7280\"/>",
        left + width
    );
    for (i, bar) in bars.iter().enumerate() {
        let y = top + i as f64 * 26.0;
        let w = (bar.value / end * width).max(1.0);
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text><rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"18\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"12\">{}</text>",
            y + 14.0,
            escape(&bar.label),
            bar.color,
            left + w + 5.0,
            y + 14.0,
            escape(&bar.text)
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// One line of the daily chart.
struct Series {
    name: String,
    color: &'static str,
    dashed: bool,
    values: BTreeMap<String, f64>,
}

/// Lines over days, with value ticks and gridlines, and a tick per day.
fn line_chart(title: &str, days: &[String], series: &[Series]) -> String {
    let (w, h, left, bottom, top) = (760.0, 300.0, 70.0, 40.0, 20.0);
    let max = series
        .iter()
        .flat_map(|s| s.values.values().copied())
        .fold(0.0, f64::max);
    let (step, end) = ticks(max);
    let x = |i: usize| left + (w - left - 20.0) * i as f64 / (days.len().max(2) - 1) as f64;
    let y = |v: f64| (h - bottom) - (h - bottom - top) * v / end;
    let total_h = h + 20.0 * series.len() as f64;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg role=\"img\" viewBox=\"0 0 {w} {total_h}\" width=\"{w}\" height=\"{total_h}\">",
        escape(title),
    );
    let mut v = 0.0;
    while v <= end + step / 2.0 {
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#e5e7eb\"/>\
             <line class=\"tick\" x1=\"{2}\" y1=\"{0:.1}\" x2=\"{left}\" y2=\"{0:.1}\" stroke=\"#6b7280\"/>\
             <text x=\"{3}\" y=\"{4:.1}\" font-size=\"10\" text-anchor=\"end\">{5}</text>",
            y(v),
            w - 20.0,
            left - 4.0,
            left - 6.0,
            y(v) + 3.0,
            format_number(v)
        );
        v += step;
    }
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#6b7280\"/><line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{0}\" stroke=\"#6b7280\"/>",
        h - bottom,
        w - 20.0
    );
    for (i, day) in days.iter().enumerate() {
        let _ = write!(
            svg,
            "<line class=\"tick\" x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2}\" stroke=\"#6b7280\"/>",
            x(i),
            h - bottom,
            h - bottom + 4.0
        );
        if days.len() <= 10 || i % 5 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
                x(i),
                h - bottom + 16.0,
                &day[5..]
            );
        }
    }
    for (n, s) in series.iter().enumerate() {
        let points: Vec<(f64, f64)> = days
            .iter()
            .enumerate()
            .map(|(i, d)| (x(i), y(s.values.get(d).copied().unwrap_or(0.0))))
            .collect();
        for (cx, cy) in &points {
            let _ = write!(
                svg,
                "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"2.5\" fill=\"{}\"/>",
                s.color
            );
        }
        let dash = if s.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let line: Vec<String> = points
            .iter()
            .map(|(px, py)| format!("{px:.1},{py:.1}"))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{0}\" stroke-width=\"2\"{dash} points=\"{1}\"/>\
             <line x1=\"{left}\" y1=\"{2}\" x2=\"{3}\" y2=\"{2}\" stroke=\"{0}\" stroke-width=\"3\"{dash}/>\
             <text x=\"{4}\" y=\"{5}\" font-size=\"12\">{6}</text>",
            s.color,
            line.join(" "),
            h + 20.0 * n as f64 + 6.0,
            left + 24.0,
            left + 30.0,
            h + 20.0 * n as f64 + 10.0,
            escape(&s.name)
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// Billable requests as the plans file counts them (`[billing] billable`),
/// where the named queries count the default class (2xx): per key, per day,
/// and per key and day, from the built-in `billable_requests` meter.
async fn bill_as_plans_do(
    session: &LakeSession,
    range: &crate::time::TimeRange,
    plans: &crate::billing::plans::Plans,
    usage: &mut Table,
    daily: &mut Table,
    window: &mut Table,
) -> Result<()> {
    let default = crate::billing::plans::StatusSet::parse(
        &crate::schema::status::StatusClass::DEFAULT_BILLABLE.label(),
    )?;
    if plans.billable == default {
        return Ok(());
    }
    let meter = plans.meters.require("billable_requests", "report")?;
    let query = crate::billing::metering::MeterQuery {
        range: *range,
        meters: vec![meter],
        per: crate::billing::metering::Per::Key,
        by: Some(crate::query::usage::WindowUnit::Day),
        tz: Some(chrono_tz::UTC),
        keys: Vec::new(),
    };
    let counted = Table::from_batches(&collect(query.run(session, Some(plans)).await?).await?)?;
    let mut by_key: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_day: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_key_day: BTreeMap<(String, String), u64> = BTreeMap::new();
    for r in 0..counted.rows.len() {
        let key = counted.text(r, "api_key_id").to_string();
        let window_start = counted.text(r, "window_start").to_string();
        let n: u64 = counted.text(r, "billable_requests").parse().unwrap_or(0);
        *by_key.entry(key.clone()).or_default() += n;
        *by_day
            .entry(window_start.get(..10).unwrap_or("").to_string())
            .or_default() += n;
        *by_key_day.entry((key, window_start)).or_default() += n;
    }
    let set = |table: &mut Table, r: usize, n: Option<&u64>| {
        let c = table.col("billable_requests");
        table.rows[r][c] = n.copied().unwrap_or(0).to_string();
    };
    for r in 0..usage.rows.len() {
        let n = by_key.get(usage.text(r, "api_key_id"));
        set(usage, r, n);
    }
    for r in 0..daily.rows.len() {
        let n = by_day.get(daily.text(r, "day"));
        set(daily, r, n);
    }
    for r in 0..window.rows.len() {
        let id = (
            window.text(r, "api_key_id").to_string(),
            window.text(r, "window_start").to_string(),
        );
        let n = by_key_day.get(&id);
        set(window, r, n);
    }
    Ok(())
}

/// Builds the report of `period` (a `YYYY-MM` month, UTC); with `plans`,
/// keys are named by their customers.
pub(crate) async fn report(
    lake: &Lake,
    period: &Period,
    as_of: crate::lake::delta::AsOf,
    plans: Option<&crate::billing::plans::Plans>,
) -> Result<String> {
    let session = LakeSession::open_as_of(lake, as_of).await?;
    let range = period.range();
    let run = |name: &'static str, extra: Vec<(String, datafusion::common::ScalarValue)>| {
        let mut params = range.params();
        params.extend(extra);
        let session = &session;
        async move { Table::from_batches(&collect(session.named(name, params).await?).await?) }
    };
    let mut usage = run("usage_by_key", vec![]).await?;
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>edgemeter report {label}</title><style>{CSS}</style></head><body><h1>API usage, {label}</h1><p class=\"range\">{from} to {to} (UTC), from the lake at {lake}</p>",
        label = escape(&period.label),
        from = period.start.to_rfc3339(),
        to = period.end.to_rfc3339(),
        lake = escape(lake.url().as_str()),
    );
    let total: f64 = (0..usage.rows.len())
        .map(|r| usage.number(r, "requests"))
        .sum();
    if total == 0.0 {
        let _ = write!(
            html,
            "<p class=\"nodata\">No data: the lake holds no requests in {} (UTC). \
             Is the period right, and has it been ingested?</p>",
            escape(&period.label)
        );
        html.push_str(FOOTER);
        return Ok(html);
    }
    let errors = run("error_rates", vec![]).await?;
    let latency = run("latency_by_key", vec![]).await?;
    let endpoints = run("latency_by_endpoint", vec![]).await?;
    let mut daily = run("daily_series", vec![]).await?;
    let mut window = run(
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

    if let Some(plans) = plans {
        bill_as_plans_do(&session, &range, plans, &mut usage, &mut daily, &mut window).await?;
    }

    // Keys ranked by billable requests (then id): their colours.
    let mut ranked: Vec<(String, String, f64)> = (0..usage.rows.len())
        .filter(|&r| !usage.text(r, "api_key_id").is_empty())
        .map(|r| {
            (
                usage.text(r, "api_key_id").to_string(),
                usage.text(r, "api_key_hint").to_string(),
                usage.number(r, "billable_requests"),
            )
        })
        .collect();
    ranked.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    let keys = Keys::new(
        plans,
        &ranked.iter().map(|k| k.0.clone()).collect::<Vec<_>>(),
    );
    let hints: BTreeMap<String, String> = ranked
        .iter()
        .map(|(id, hint, _)| (id.clone(), hint.clone()))
        .collect();
    let label = |id: &str| keys.label(id, hints.get(id).map_or("", String::as_str));
    let top = &ranked[..ranked.len().min(TOP_KEYS)];

    // Daily: all keys, then the top keys; requests solid, billable dashed.
    let mut days = Vec::new();
    let mut day = period.start.date_naive();
    while day < period.end.date_naive() {
        days.push(day.format("%Y-%m-%d").to_string());
        day = day.succ_opt().unwrap_or(period.end.date_naive());
    }
    let column = |table: &Table, r: usize, key: &str| -> (String, f64) {
        (table.rows[r][0][..10].to_string(), table.number(r, key))
    };
    let mut series = Vec::new();
    for (measure, name) in [("requests", "requests"), ("billable_requests", "billable")] {
        series.push(Series {
            name: format!("all keys, {name}"),
            color: TOTAL_COLOR,
            dashed: measure != "requests",
            values: (0..daily.rows.len())
                .map(|r| column(&daily, r, measure))
                .collect(),
        });
    }
    for (id, _, _) in top {
        for (measure, name) in [("requests", "requests"), ("billable_requests", "billable")] {
            series.push(Series {
                name: format!("{}, {name}", label(id)),
                color: keys.color(id),
                dashed: measure != "requests",
                values: (0..window.rows.len())
                    .filter(|&r| window.text(r, "api_key_id") == id)
                    .map(|r| column(&window, r, measure))
                    .collect(),
            });
        }
    }
    let daily_columns: Vec<String> = std::iter::once("day".to_string())
        .chain(series.iter().map(|s| s.name.clone()))
        .collect();
    let daily_rows: Vec<Vec<String>> = days
        .iter()
        .filter(|d| series[0].values.contains_key(*d))
        .map(|d| {
            std::iter::once(d.clone())
                .chain(series.iter().map(|s| {
                    format_number(s.values.get(d).copied().unwrap_or(0.0)).replace(',', "")
                }))
                .collect()
        })
        .collect();

    // Error rates per key, as charted: 4xx + 5xx of the key's requests.
    let mut error_bars = Vec::new();
    let mut error_rows = Vec::new();
    for r in 0..errors.rows.len() {
        let id = errors.text(r, "api_key_id");
        let requests = errors.number(r, "requests");
        let failed = errors.number(r, "client_errors") + errors.number(r, "server_errors");
        let share = if requests > 0.0 {
            failed / requests
        } else {
            0.0
        };
        error_bars.push(Bar {
            label: label(id),
            value: share * 100.0,
            text: percent(share),
            color: keys.color(id),
        });
        error_rows.push(vec![
            label(id),
            format_number(requests),
            format_number(errors.number(r, "client_errors")),
            format_number(errors.number(r, "server_errors")),
            percent(share),
        ]);
    }
    let latency_bars: Vec<Bar> = (0..latency.rows.len())
        .map(|r| {
            let id = latency.text(r, "api_key_id");
            let p95 = latency.number(r, "time_taken_p95");
            Bar {
                label: label(id),
                value: p95,
                text: format!("{} s", format_number(p95)),
                color: keys.color(id),
            }
        })
        .collect();
    let latency_rows: Vec<Vec<String>> = (0..latency.rows.len())
        .map(|r| {
            let id = latency.text(r, "api_key_id");
            vec![
                label(id),
                format_number(latency.number(r, "requests")),
                format_number(latency.number(r, "time_taken_p50")),
                format_number(latency.number(r, "time_taken_p95")),
                format_number(latency.number(r, "time_taken_p99")),
            ]
        })
        .collect();
    let shown_endpoints = endpoints.rows.len().min(10);
    let endpoint_bars: Vec<Bar> = (0..shown_endpoints)
        .map(|r| Bar {
            label: endpoints.rows[r][0].clone(),
            value: endpoints.number(r, "requests"),
            text: format_number(endpoints.number(r, "requests")),
            color: COLORS[0],
        })
        .collect();
    let endpoint_rows: Vec<Vec<String>> = (0..shown_endpoints)
        .map(|r| {
            vec![
                endpoints.rows[r][0].clone(),
                format_number(endpoints.number(r, "requests")),
                format_number(endpoints.number(r, "time_taken_p95")),
            ]
        })
        .collect();
    let usage_rows: Vec<Vec<String>> = (0..usage.rows.len())
        .map(|r| {
            let id = usage.text(r, "api_key_id");
            vec![
                label(id),
                id.to_string(),
                format_number(usage.number(r, "requests")),
                format_number(usage.number(r, "billable_requests")),
                format_number(usage.number(r, "client_errors")),
                format_number(usage.number(r, "server_errors")),
                format_number(usage.number(r, "bytes_out")),
                format_number(usage.number(r, "bytes_in")),
            ]
        })
        .collect();
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let _ = write!(
        html,
        "<h2>Daily requests and billable requests, all keys and the top {}</h2>{}{}",
        top.len(),
        line_chart("requests per day (UTC)", &days, &series),
        html_table(&daily_columns, &daily_rows)
    );
    let _ = write!(
        html,
        "<h2>Usage per key</h2>{}",
        html_table(
            &names(&[
                "key",
                "api_key_id",
                "requests",
                "billable_requests",
                "client_errors",
                "server_errors",
                "bytes_out",
                "bytes_in"
            ]),
            &usage_rows
        )
    );
    let _ = write!(
        html,
        "<h2>Error rate per key</h2>{}{}",
        bar_chart(
            "4xx + 5xx, share of the key's requests",
            &error_bars,
            |v| format!("{}%", format_number(v))
        ),
        html_table(
            &names(&["key", "requests", "4xx", "5xx", "error rate"]),
            &error_rows
        )
    );
    let _ = write!(
        html,
        "<h2>Latency per key</h2>{}{}",
        bar_chart("p95 time_taken (s)", &latency_bars, |v| format!(
            "{} s",
            format_number(v)
        )),
        html_table(
            &names(&["key", "requests", "p50 (s)", "p95 (s)", "p99 (s)"]),
            &latency_rows
        )
    );
    let _ = write!(
        html,
        "<h2>Top endpoints</h2>{}{}",
        bar_chart("requests per endpoint", &endpoint_bars, format_number),
        html_table(&names(&["endpoint", "requests", "p95 (s)"]), &endpoint_rows)
    );
    html.push_str(FOOTER);
    Ok(html)
}

const FOOTER: &str = concat!(
    "<footer>Generated by edgemeter ",
    env!("CARGO_PKG_VERSION"),
    ".</footer></body></html>\n"
);

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#111;max-width:1100px}h1{margin-bottom:0}.range{color:#555}h2{margin-top:2.5rem;border-bottom:1px solid #ddd}table{border-collapse:collapse;font-size:12px;margin:1rem 0}th,td{border:1px solid #ddd;padding:3px 6px;text-align:right}th{background:#f3f4f6}td:first-child,th:first-child{text-align:left}.nodata{font-size:1.2rem;padding:1rem;background:#fef3c7;border:1px solid #f59e0b}figure{margin:1rem 0}figcaption{font-weight:600;margin-bottom:.3rem}footer{margin-top:3rem;color:#777;font-size:12px}";
