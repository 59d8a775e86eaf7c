//! The `edgemeter` binary: parse the command line, start logging, run the
//! library, and turn the outcome into an exit status.

use clap::Parser;
use edgemeter::cli::{self, Cli, Command, run};
use std::io::IsTerminal;
use std::process::ExitCode;

/// mimalloc: on the benchmark, about 8% less time than the system allocator.
/// With freed memory kept (`edgemeter::memory::keep_freed_memory`) its peak
/// RSS is higher (about 490 MiB against 367 MiB on the few-large set);
/// `ingest --low-memory` trades time for less (`edgemeter::memory`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps the C allocator's freed memory too. The zstd library allocates its
/// contexts with `malloc`, not through Rust's allocator, and the Parquet writer
/// makes a compressor and a decompressor for every column chunk. With glibc's
/// defaults each thread's heap was trimmed back to the system on nearly every
/// free, and the pages faulted in again (zero-filled) for the next column:
/// 74,000 page faults in a benchmark ingest, 5,000 with these settings, and
/// 2.5–4% less time (alternate runs of the two builds). The contexts are a few
/// MiB per thread, so peak RSS does not change (337 MiB with and without).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_c_memory() {
    const TRIM_THRESHOLD: libc::c_int = 256 << 20;
    const MMAP_THRESHOLD: libc::c_int = 32 << 20;
    // SAFETY: mallopt only sets glibc's tuning parameters, and it runs before
    // any thread is started.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_c_memory() {}

/// Threads for blocking work: local file I/O and delta-rs's snapshot builds,
/// which block a thread until their own I/O on the same pool is done (with
/// one thread per core, two snapshot builds at once deadlocked). CPU work has
/// its own threads (`edgemeter::cpu`). Tokio's default lets the pool grow to
/// hundreds; bounded, since each thread that ever ran keeps its own freed
/// buffers.
fn blocking_threads() -> usize {
    edgemeter::cpu::cores().max(2) + 16
}

/// True for the panic of `println!` into a pipe whose reader has gone.
fn is_broken_pipe(message: &str) -> bool {
    message.starts_with("failed printing to stdout") && message.contains("os error 32")
}

fn main() -> ExitCode {
    // `edgemeter … | head`: once head has what it wants, stop quietly.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if is_broken_pipe(message) {
            std::process::exit(0);
        }
        default_hook(info);
    }));
    edgemeter::memory::keep_freed_memory();
    keep_freed_c_memory();
    let cli = Cli::parse();
    let ingesting = matches!(
        cli.command,
        Command::Ingest(_) | Command::Run(_) | Command::Reingest(_)
    );
    // Every command starts without transparent huge pages
    // (`memory::without_huge_pages`). A query's memory is short-lived:
    // faulting it in as 2 MiB pages that the kernel zeroes whole was a fifth
    // of a month of per-key usage's profile, and without them the query took
    // 10% less time (`bench/RESULTS.md`). An ingest run turns them back on
    // once its listing shows enough input to reuse its buffers batch after
    // batch (`memory::HUGE_PAGES_FROM_BYTES`), unless `--low-memory`.
    edgemeter::memory::without_huge_pages();
    init_tracing(cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(blocking_threads())
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("edgemeter: cannot start the runtime: {e}");
            return ExitCode::from(cli::EXIT_FAILURE);
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = run(cli) => Some(outcome),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    let Some(outcome) = outcome else {
        // Work still running is abandoned, not waited for.
        runtime.shutdown_background();
        return interrupted(ingesting);
    };
    ExitCode::from(cli::finish(outcome))
}

/// Ctrl-C: every batch is one commit, so what was committed stays and the
/// rest is read by the next run; nothing is left locked.
fn interrupted(ingesting: bool) -> ExitCode {
    use std::sync::atomic::Ordering;
    if std::io::stderr().is_terminal() {
        // Clear a progress bar's line.
        eprint!("\r\x1b[2K");
    }
    if ingesting {
        let committed = edgemeter::ingest::OBJECTS_COMMITTED.load(Ordering::Relaxed);
        eprintln!(
            "edgemeter: interrupted; {committed} source objects were committed before that \
             (each batch is one commit) and the next run reads the rest; nothing is left locked"
        );
    } else {
        eprintln!("edgemeter: interrupted");
    }
    ExitCode::from(cli::EXIT_INTERRUPTED)
}

/// Human-readable logs on a terminal, JSON lines otherwise; `EDGEMETER_LOG`
/// (an `EnvFilter` directive) sets the level, `warn` by default.
///
/// delta-rs logs a commit that another writer beat as an error; edgemeter
/// expects those with several writers and commits again (`lake::delta`), and
/// a commit that fails for good is reported as edgemeter's own error, so that
/// module of delta-rs is silent unless `EDGEMETER_LOG` asks for it.
fn init_tracing(quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if quiet {
        "error,deltalake_core::kernel::transaction=off"
    } else {
        "warn,deltalake_core::kernel::transaction=off"
    };
    let filter =
        EnvFilter::try_from_env("EDGEMETER_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.init();
    } else {
        builder.json().init();
    }
}
