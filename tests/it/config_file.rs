//! One `edgemeter.toml` for every command: shared settings at its top level,
//! each command's own in its table; flags and `EDGEMETER_*` variables over
//! the file. Runs over `billing`'s October lake, whose requests are counted
//! by hand in `billing::october`.

use crate::billing::{KEY_A, KEY_C, KEY_D, Setup, setup};
use crate::cli::{Run, edgemeter};
use crate::logs::sha256_hex;

/// Writes `text` as the setup's config file; returns its path.
fn config(s: &Setup, name: &str, text: &str) -> String {
    std::fs::create_dir_all(&s.out).unwrap();
    let path = s.out.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// The top level every test's file starts with: the lake and the plans.
fn shared(s: &Setup) -> String {
    format!("lake = {:?}\nplans = {:?}\n", s.lake, s.plans)
}

/// `usage` rows as (api_key_id, requests, billable_requests), from its CSV.
fn usage_rows(run: &Run) -> Vec<(String, i64, i64)> {
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut reader = csv::Reader::from_reader(run.stdout.as_bytes());
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[0].to_string(),
                r[2].parse().unwrap(),
                r[3].parse().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_reads_its_table_and_flags_and_env_override_it() {
    let s = setup().await;
    let (a, c, d) = (sha256_hex(KEY_A), sha256_hex(KEY_C), sha256_hex(KEY_D));
    let file = config(
        &s,
        "usage.toml",
        &format!(
            "{}tz = \"America/New_York\"\n[usage]\nfrom = \"2025-10\"\nto = \"2025-11\"\nformat = \"csv\"\nkeys = [{c:?}]\n",
            shared(&s)
        ),
    );
    // The file alone: key C's 150 × 200 on 21 October, all in the month of
    // New York too; CSV, as the table says.
    let run = edgemeter(&[], &["usage", "--config", &file]).await;
    assert_eq!(usage_rows(&run), vec![(c.clone(), 150, 150)]);
    // A --key flag replaces the file's keys: key D's 7 × 200.
    let run = edgemeter(&[], &["usage", "--config", &file, "--key", &d]).await;
    assert_eq!(usage_rows(&run), vec![(d, 7, 7)]);
    // The zone: key A on 1 October. Its requests near that day are
    // 2025-09-30T23:59:59Z and 2025-10-01T00:00:00Z.
    let day = ["--from", "2025-10-01", "--to", "2025-10-02", "--key", &a];
    let args = |extra: &[&'static str]| {
        let mut args = vec!["usage", "--config", &file];
        args.extend(day);
        args.extend(extra);
        args
    };
    // The file's zone, New York (UTC-4): its 1 October is 04:00Z to 04:00Z,
    // holding neither.
    assert_eq!(usage_rows(&edgemeter(&[], &args(&[])).await), vec![]);
    // EDGEMETER_TZ over the file: UTC's 1 October holds the second only.
    let utc = [("EDGEMETER_TZ", "UTC".to_string())];
    assert_eq!(
        usage_rows(&edgemeter(&utc, &args(&[])).await),
        vec![(a.clone(), 1, 1)]
    );
    // A flag over both: Kiritimati (UTC+14)'s 1 October is
    // 2025-09-30T10:00Z to 2025-10-01T10:00Z, holding both.
    let run = edgemeter(&utc, &args(&["--tz", "Pacific/Kiritimati"])).await;
    assert_eq!(usage_rows(&run), vec![(a.clone(), 2, 2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_reads_its_table_and_flags_and_env_override_it() {
    let s = setup().await;
    let csv = s.out.join("from-file.csv");
    let file = config(
        &s,
        "export.toml",
        &format!(
            "{}[export]\nperiod = \"2025-10\"\nformat = \"csv\"\noutput = {:?}\n",
            shared(&s),
            csv.to_str().unwrap()
        ),
    );
    let run = edgemeter(&[], &["export", "--config", &file, "--quiet"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Acme's October, as `billing` works it out: 50 billable, 40 over the
    // 10 included: 20 × 0.35 + 20 × 0.20 = 11.00; 4.5 GB × 0.09 = 0.41;
    // 99.00 + 11.00 + 0.41 = 110.41 USD.
    let text = std::fs::read_to_string(&csv).unwrap();
    let acme = text.lines().nth(1).unwrap();
    assert!(
        acme.starts_with("2025-10,cus_acme,") && acme.contains(",110.41,USD,"),
        "{acme}"
    );
    // Flags over the table: another format and output.
    let jsonl = s.out.join("from-flags.jsonl");
    let run = edgemeter(
        &[],
        &[
            "export",
            "--config",
            &file,
            "--format",
            "jsonl",
            "--output",
            jsonl.to_str().unwrap(),
            "--quiet",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&jsonl)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["customer_id"], "cus_acme");
    assert_eq!(first["total"], "110.41");
    // EDGEMETER_PLANS over the file's plans, here a file that does not exist.
    let broken = config(
        &s,
        "broken-plans.toml",
        &format!(
            "lake = {:?}\nplans = \"/nonexistent/plans.toml\"\n[export]\nperiod = \"2025-10\"\noutput = {:?}\n",
            s.lake,
            csv.to_str().unwrap()
        ),
    );
    let run = edgemeter(&[], &["export", "--config", &broken, "--quiet"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("/nonexistent/plans.toml"),
        "{}",
        run.stderr
    );
    let env = [("EDGEMETER_PLANS", s.plans.clone())];
    let run = edgemeter(&env, &["export", "--config", &broken, "--quiet"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reads_its_table_and_a_flag_overrides_it() {
    let s = setup().await;
    let file = config(
        &s,
        "check.toml",
        &format!("{}[check]\nat = \"2025-10-16T00:00:00Z\"\n", shared(&s)),
    );
    let month_requests = |run: Run| {
        assert_eq!(run.code, 0, "{}", run.stderr);
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(report["quotas"][0]["customer_id"], "cus_acme");
        report["quotas"][0]["month_requests"].as_u64().unwrap()
    };
    // The file's instant: Acme's October up to the 16th is key A's request
    // of 1 October and its 38 of the 15th: 39.
    let run = edgemeter(&[], &["check", "--config", &file, "--json"]).await;
    assert_eq!(month_requests(run), 39);
    // The flag's: up to 31 October 12:00 all 60 but the one at 23:59:59: 59.
    let at = [
        "check",
        "--config",
        &file,
        "--json",
        "--at",
        "2025-10-31T12:00:00Z",
    ];
    assert_eq!(month_requests(edgemeter(&[], &at).await), 59);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_keys_and_missing_settings_are_configuration_errors() {
    let s = setup().await;
    let cases = [
        // A key no command table knows, named with its table and file.
        (
            "[export]\nformt = \"csv\"\n",
            "in [export]: unknown field `formt`",
        ),
        (
            "[usage]\ngroup-by = [\"method\"]\n",
            "in [usage]: unknown field `group-by`",
        ),
        ("[check]\njson = true\n", "in [check]: unknown field `json`"),
        (
            "[report]\nformat = \"html\"\n",
            "in [report]: unknown field `format`",
        ),
        ("[serve]\nport = 8080\n", "in [serve]: unknown field `port`"),
        (
            "[query]\nsql = \"SELECT 1\"\n",
            "in [query]: unknown field `sql`",
        ),
        (
            "[maintain]\njson = true\n",
            "in [maintain]: unknown field `json`",
        ),
        // At the top level, whichever command reads the file.
        ("plan = \"p.toml\"\n", "unknown field `plan`"),
    ];
    for (text, message) in cases {
        let file = config(&s, "bad.toml", &format!("{}{text}", shared(&s)));
        for command in [
            "usage", "export", "check", "report", "serve", "query", "maintain",
        ] {
            // `query` needs its statement before it reads the file.
            let statement: &[&str] = if command == "query" {
                &["SELECT 1"]
            } else {
                &[]
            };
            let args = [&[command, "--config", &file], statement].concat();
            let run = edgemeter(&[], &args).await;
            if !text.starts_with('[') || text.contains(&format!("[{command}]")) {
                assert_eq!(run.code, 2, "{command} {text}: {}", run.stderr);
                assert!(
                    run.stderr.contains(message) && run.stderr.contains(&file),
                    "{command} {text}: {}",
                    run.stderr
                );
            }
        }
    }
    // No lake from flags, environment or file.
    let file = config(&s, "no-lake.toml", "[usage]\nformat = \"csv\"\n");
    let run = edgemeter(&[], &["usage", "--config", &file]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("no lake: give --lake or `lake` in the config file"),
        "{}",
        run.stderr
    );
    // A table for a command that reads no config file is an unknown key.
    let file = config(&s, "runs.toml", &format!("{}[runs]\n", shared(&s)));
    let run = edgemeter(&[], &["usage", "--config", &file]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("unknown field `runs`"),
        "{}",
        run.stderr
    );
    // Ingest reads the same file: the command tables are no ingest keys.
    let file = config(
        &s,
        "all.toml",
        &format!(
            "sources = [{:?}]\n{}[usage]\nformat = \"csv\"\n[export]\nformat = \"jsonl\"\n",
            s.logs,
            shared(&s)
        ),
    );
    let run = edgemeter(&[], &["run", "--config", &file, "--quiet"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_reads_its_table_and_a_flag_overrides_it() {
    let s = setup().await;
    let html = s.out.join("october.html");
    let file = config(
        &s,
        "report.toml",
        &format!(
            "{}[report]\nperiod = \"2025-10\"\noutput = {:?}\n",
            shared(&s),
            html.to_str().unwrap()
        ),
    );
    let run = edgemeter(&[], &["report", "--config", &file, "--quiet"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let october = std::fs::read_to_string(&html).unwrap();
    // The file's month: key C's 150 × 200 on 21 October; the top level's
    // plans name Acme's two keys by their customer.
    assert!(
        october.contains("<td>2025-10-21</td><td>150</td><td>150</td>"),
        "{october}"
    );
    assert!(october.contains("<td>Acme Corp (key 1)</td>"));
    // The flags' month and output: November holds key A's one request of
    // 1 November 00:00:00 and nothing of 21 October.
    let run = edgemeter(
        &[],
        &[
            "report", "--config", &file, "--period", "2025-11", "--output", "-",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("<td>2025-11-01</td><td>1</td><td>1</td>")
    );
    assert!(!run.stdout.contains("2025-10-21"));
}

/// `serve`'s settings are checked before it listens: a bad address from the
/// file, the environment or a flag is named, whichever layer gave it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_its_table_and_env_and_flags_override_it() {
    let s = setup().await;
    let file = config(
        &s,
        "serve.toml",
        &format!("{}[serve]\nlisten = \"from-file\"\n", shared(&s)),
    );
    let listen_error = |run: Run| {
        assert_eq!(run.code, 2, "{}", run.stderr);
        let line = run.stderr.lines().last().unwrap_or_default().to_string();
        assert!(line.contains("give an address and port"), "{line}");
        line
    };
    let run = edgemeter(&[], &["serve", "--config", &file]).await;
    assert!(listen_error(run).contains("\"from-file\""));
    let env = [("EDGEMETER_LISTEN", "from-env".to_string())];
    let run = edgemeter(&env, &["serve", "--config", &file]).await;
    assert!(listen_error(run).contains("\"from-env\""));
    let run = edgemeter(&env, &["serve", "--config", &file, "--listen", "from-flag"]).await;
    assert!(listen_error(run).contains("\"from-flag\""));
    // A limit of the file is checked as the flag's is.
    let file = config(
        &s,
        "serve-limits.toml",
        &format!(
            "{}[serve]\nlisten = \"127.0.0.1:0\"\ntokens = \"/t.toml\"\nmax_rows = 0\n",
            shared(&s)
        ),
    );
    let run = edgemeter(&[], &["serve", "--config", &file]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--max-rows must be at least 1"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_reads_its_table_and_a_flag_overrides_it() {
    let s = setup().await;
    let file = config(
        &s,
        "query.toml",
        &format!("{}[query]\nformat = \"csv\"\n", shared(&s)),
    );
    // The requests of `billing::october`: key A 40 + 10 + 2 just outside
    // October, key B 10, key C 150, key D 7, 4 without a key = 223.
    let sql = "SELECT count(*) AS n FROM requests";
    let run = edgemeter(&[], &["query", "--config", &file, sql]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.replace("\r\n", "\n"), "n\n223\n");
    let run = edgemeter(&[], &["query", "--config", &file, "--format", "json", sql]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "{\"n\":223}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintain_reads_its_table_and_env_overrides_it() {
    let s = setup().await;
    let file = config(
        &s,
        "maintain.toml",
        &format!("{}[maintain]\nretain_days = 30\n", shared(&s)),
    );
    let count = || async {
        let run = edgemeter(
            &[],
            &[
                "query",
                "--config",
                &file,
                "--format",
                "csv",
                "SELECT count(*) AS n FROM requests",
            ],
        )
        .await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout.replace("\r\n", "\n")
    };
    // EDGEMETER_RETAIN_DAYS over the file: a century keeps all 223 requests
    // of `billing::october` (see `query_reads_its_table…`).
    let env = [("EDGEMETER_RETAIN_DAYS", "36500".to_string())];
    let run = edgemeter(&env, &["maintain", "--config", &file, "--quiet"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count().await, "n\n223\n");
    // The file's 30 days: every day of 2025 is older than that.
    let run = edgemeter(&[], &["maintain", "--config", &file, "--quiet"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count().await, "n\n0\n");
}

/// The commands without settings of their own take the lake (and S3
/// settings) from the file's top level, under `--lake`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lake_only_commands_read_the_lake_from_the_file() {
    let s = setup().await;
    let file = config(&s, "lake.toml", &shared(&s));
    for command in [
        &["runs", "--format", "csv"][..],
        &["schema"],
        &["unreadable", "--format", "csv"],
    ] {
        let by_flag = edgemeter(&[], &[command, &["--lake", &s.lake]].concat()).await;
        assert_eq!(by_flag.code, 0, "{command:?}: {}", by_flag.stderr);
        if command[0] != "unreadable" {
            // (The setup's lake has no unreadable objects to list.)
            assert!(by_flag.stdout.lines().count() > 1, "{command:?}");
        }
        let by_file = edgemeter(&[], &[command, &["--config", &file]].concat()).await;
        assert_eq!(by_file.code, 0, "{command:?}: {}", by_file.stderr);
        assert_eq!(by_file.stdout, by_flag.stdout, "{command:?}");
    }
    // --lake over the file's: a file naming a lake that does not exist.
    let elsewhere = config(&s, "elsewhere.toml", "lake = \"/nonexistent/lake\"\n");
    let run = edgemeter(&[], &["runs", "--config", &elsewhere, "--lake", &s.lake]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = edgemeter(&[], &["runs", "--config", &elsewhere]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("/nonexistent/lake"), "{}", run.stderr);
    // No lake anywhere.
    let none = config(&s, "none.toml", "region = \"eu-west-1\"\n");
    let run = edgemeter(&[], &["migrate", "--config", &none]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("no lake: give --lake or `lake` in the config file"),
        "{}",
        run.stderr
    );
}
