//! Running the `edgemeter` binary from tests and reading its output.

use crate::logs::Totals;
use std::collections::BTreeMap;
use std::process::Output;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub async fn edgemeter(env: &[(&str, String)], args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgemeter"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("EDGEMETER_KEY_SECRET")
        .output()
        .await
        .unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

/// `edgemeter ingest --source SOURCE --lake LAKE` with further `flags`.
pub async fn ingest(env: &[(&str, String)], source: &str, lake: &str, flags: &[&str]) -> Run {
    let args = [&["ingest", "--source", source, "--lake", lake], flags].concat();
    edgemeter(env, &args).await
}

/// `edgemeter usage --format csv` parsed into totals by api_key_id.
pub async fn usage(env: &[(&str, String)], lake: &str, range: &[&str]) -> BTreeMap<String, Totals> {
    let mut args = vec!["usage", "--lake", lake, "--format", "csv"];
    args.extend_from_slice(range);
    let run = edgemeter(env, &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut reader = csv::Reader::from_reader(run.stdout.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        vec![
            "api_key_id",
            "api_key_hint",
            "requests",
            "billable_requests",
            "client_errors",
            "server_errors",
            "bytes_out",
            "bytes_in"
        ]
    );
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let n = |i: usize| r[i].parse::<i64>().unwrap();
            (
                r[0].to_string(),
                Totals {
                    hint: from_spreadsheet_safe(&r[1]),
                    requests: n(2),
                    billable: n(3),
                    client_errors: n(4),
                    server_errors: n(5),
                    bytes_out: n(6),
                    bytes_in: n(7),
                },
            )
        })
        .collect()
}

/// A CSV text cell as written: one that starts with `= + - @`, tab or CR
/// (and is not a plain number) carries a leading `'` (README, Billing).
fn from_spreadsheet_safe(cell: &str) -> String {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest.to_string(),
        _ => cell.to_string(),
    }
}

pub fn summary(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr))
}

/// `edgemeter query --format csv SQL` over a lake, which must succeed.
pub async fn query_csv(env: &[(&str, String)], lake: &str, sql: &str) -> String {
    let run = edgemeter(env, &["query", "--lake", lake, "--format", "csv", sql]).await;
    assert_eq!(run.code, 0, "{sql}: {}", run.stderr);
    // RFC 4180: every line ends in CRLF (given back with LF, to compare).
    assert!(
        !run.stdout.replace("\r\n", "").contains('\n'),
        "{sql}: a CSV line without CRLF: {:?}",
        run.stdout
    );
    run.stdout.replace("\r\n", "\n")
}
