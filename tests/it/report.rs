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
    let run = edgemeter(
        &[],
        &[
            "report",
            "--lake",
            lake,
            "--period",
            "2025-10",
            "--output",
            html_path.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let html = std::fs::read_to_string(&html_path).unwrap();
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
    let image = std::fs::read(&png).unwrap();
    assert!(image.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
    // A blank 1200×2400 page compresses to a few KB; charts and tables do not.
    assert!(
        image.len() > 50_000,
        "the screenshot looks blank: {} bytes",
        image.len()
    );
}
