//! `edgemeter report`: a self-contained HTML file that renders in headless
//! Chromium. The screenshot part needs Debian's `chromium`; `.ci/run` installs
//! it and sets EDGEMETER_REQUIRE_CHROMIUM=1, so CI never skips it.

use crate::cli::{edgemeter, ingest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_is_self_contained_and_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    let logs = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/logs");
    let run = ingest(&[], logs, lake, &["--quiet"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let html_path = dir.path().join("report.html");
    // Two of the sample's three keys belong to customers (one hostile name).
    let plans = dir.path().join("plans.toml");
    std::fs::write(
        &plans,
        "[billing]\ncurrency = \"USD\"\n[plans.p]\nbase_fee = \"1.00\"\n\
         [[customers]]\nid = \"cus_acme\"\nname = \"Acme Corp\"\nplan = \"p\"\nkeys = [\"ak_live_acme_7f3k2\"]\n\
         [[customers]]\nid = \"cus_globex\"\nname = \"<b>Globex</b>\"\nplan = \"p\"\nkeys = [\"ak_live_globex_99qz\"]\n",
    )
    .unwrap();
    let run = edgemeter(
        &[],
        &[
            "report",
            "--lake",
            lake,
            "--period",
            "2025-10",
            "--plans",
            plans.to_str().unwrap(),
            "--output",
            html_path.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let html = std::fs::read_to_string(&html_path).unwrap();
    // Customers' names where the plans know the key (escaped), a prefix of
    // the id elsewhere; one colour per key in every chart.
    assert!(html.contains("<td>Acme Corp</td>"), "a customer's name");
    assert!(html.contains("&lt;b&gt;Globex&lt;/b&gt;") && !html.contains("<b>Globex"));
    let initech = crate::logs::sha256_hex("ak_test_initech_0001");
    assert!(
        html.contains(&format!("<td>{}… (0001)</td>", &initech[..10])),
        "an unnamed key: its id prefix and its hint"
    );
    // Each key has one colour: the same bars' colour in the error and the
    // latency chart, and its line in the daily chart.
    let charts: Vec<&str> = html.split("<svg").skip(1).collect();
    let bar_colors = |chart: &str| -> std::collections::BTreeMap<String, String> {
        chart
            .split("<text x=\"0\" ")
            .skip(1)
            .map(|bar| {
                let label = bar
                    .split_once('>')
                    .unwrap()
                    .1
                    .split_once("</text>")
                    .unwrap()
                    .0;
                let color = bar
                    .split_once("fill=\"")
                    .unwrap()
                    .1
                    .split_once('"')
                    .unwrap()
                    .0;
                (label.to_string(), color.to_string())
            })
            .collect()
    };
    let (errors, latency) = (bar_colors(charts[1]), bar_colors(charts[2]));
    // The sample's three keys and its requests without a key.
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(errors.contains_key("(no key)"));
    assert_eq!(errors, latency);
    let distinct: std::collections::BTreeSet<&String> = errors.values().collect();
    assert_eq!(distinct.len(), 4, "{errors:?}");
    for (label, color) in errors.iter().filter(|(l, _)| *l != "(no key)") {
        assert!(
            charts[0].contains(&format!("stroke=\"{color}\" stroke-width=\"2\" points")),
            "{label}: daily line in {color}"
        );
    }
    // Ticks and gridlines on every chart; rates as rounded percentages.
    for (i, chart) in html.split("<svg").skip(1).enumerate() {
        let chart = &chart[..chart.find("</svg>").unwrap()];
        assert!(
            chart.matches("class=\"grid\"").count() >= 3,
            "chart {i} gridlines"
        );
        assert!(
            chart.matches("class=\"tick\"").count() >= 3,
            "chart {i} ticks"
        );
    }
    let percentages: Vec<&str> = html
        .split("<td>")
        .filter_map(|c| c.split_once("%</td>").map(|(v, _)| v))
        .filter(|v| v.len() < 8)
        .collect();
    assert_eq!(
        percentages.len(),
        4,
        "one error rate per key: {percentages:?}"
    );
    for p in &percentages {
        let (_, decimals) = p.split_once('.').unwrap_or((p, ""));
        assert!(decimals.len() <= 1, "{p}% has more than one decimal");
    }
    for fetch in ["http://", "https://", "<script", "<link", "src=", "@import"] {
        assert!(
            !html.contains(fetch),
            "the report must not fetch anything: found {fetch}"
        );
    }
    // The tables behind the charts: the sample's 600 requests, 368 of them 2xx,
    // and its four route templates.
    assert!(
        html.contains("<td>2025-10-05</td><td>600</td><td>368</td>"),
        "daily table"
    );
    for endpoint in [
        "/v1/reports/{id}",
        "/v1/search",
        "/v1/users/{id}",
        "/v1/users/{id}/orders",
    ] {
        assert!(html.contains(&format!("<td>{endpoint}</td>")), "{endpoint}");
    }
    assert_eq!(
        html.matches("<svg").count(),
        4,
        "daily, errors, latency, endpoints"
    );

    let chromium = ["chromium", "chromium-browser"].into_iter().find(|c| {
        std::process::Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(chromium) = chromium else {
        assert!(
            std::env::var_os("EDGEMETER_REQUIRE_CHROMIUM").is_none(),
            "EDGEMETER_REQUIRE_CHROMIUM is set but chromium is not installed"
        );
        eprintln!("chromium not installed: skipping the screenshot (CI installs it)");
        return;
    };
    let png = dir.path().join("report.png");
    let profile = dir.path().join("chromium-profile");
    let out = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html_path.display()))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An empty period says so instead of drawing empty charts.
    let empty_path = dir.path().join("empty.html");
    let run = edgemeter(
        &[],
        &[
            "report",
            "--lake",
            lake,
            "--period",
            "2025-11",
            "--output",
            empty_path.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let empty = std::fs::read_to_string(&empty_path).unwrap();
    assert!(empty.contains("No data: the lake holds no requests in 2025-11 (UTC)."));
    assert_eq!(empty.matches("<svg").count(), 0);
    if let Some(keep) = std::env::var_os("EDGEMETER_KEEP_REPORT_PNG") {
        std::fs::copy(&png, keep).unwrap();
    }
    let image = std::fs::read(&png).unwrap();
    assert!(image.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
    // A blank 1200×2400 page compresses to a few KB; charts and tables do not.
    assert!(
        image.len() > 50_000,
        "the screenshot looks blank: {} bytes",
        image.len()
    );
}

/// Per raw key in `examples/logs`: (requests, requests whose status is 2xx
/// or 4xx), counted from the log lines.
fn requests_and_2xx_4xx_by_key() -> std::collections::BTreeMap<String, (u64, u64)> {
    let mut counts = std::collections::BTreeMap::new();
    for line in crate::logs::example_lines() {
        let Some(key) = line.key else { continue };
        let counted: &mut (u64, u64) = counts.entry(key).or_default();
        counted.0 += 1;
        if matches!(line.status / 100, 2 | 4) {
            counted.1 += 1;
        }
    }
    counts
}

/// With a plans file whose `billable` is not 2xx, the report counts billable
/// requests as the invoices do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_counts_billable_requests_as_the_plans_file_says() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    let logs = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/logs");
    let run = ingest(&[], logs, lake, &["--quiet"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plans = dir.path().join("plans.toml");
    std::fs::write(
        &plans,
        "[billing]\ncurrency = \"USD\"\nbillable = \"2xx,4xx\"\n[plans.p]\n\
         [[customers]]\nid = \"cus_acme\"\nname = \"Acme Corp\"\nplan = \"p\"\nkeys = [\"ak_live_acme_7f3k2\"]\n",
    )
    .unwrap();
    let html_path = dir.path().join("report.html");
    let run = edgemeter(
        &[],
        &[
            "report",
            "--lake",
            lake,
            "--period",
            "2025-10",
            "--plans",
            plans.to_str().unwrap(),
            "--output",
            html_path.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let html = std::fs::read_to_string(&html_path).unwrap();
    let (requests, billable) = requests_and_2xx_4xx_by_key()["ak_live_acme_7f3k2"];
    let id = crate::logs::sha256_hex("ak_live_acme_7f3k2");
    let row = format!("<td>Acme Corp</td><td>{id}</td><td>{requests}</td><td>{billable}</td>");
    assert!(html.contains(&row), "{row} not in the report");
}
