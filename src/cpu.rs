//! CPU-bound work (inflating and parsing objects, merging and encoding hours)
//! off the async runtime, at most one task per core at a time.
//!
//! The runtime's blocking pool also serves blocking I/O, and delta-rs's kernel
//! builds snapshots on it, blocking there until its own I/O, on the same pool,
//! is done. So the pool must keep threads free for I/O whatever the CPU work
//! is doing: CPU work is bounded here, by a semaphore, not by the pool's size.

use std::sync::LazyLock;
use tokio::sync::Semaphore;

/// The cores CPU work may use at once.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

static PERMITS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(cores()));

/// Runs `work` on a blocking thread once a core is free, in the caller's
/// tracing span.
pub async fn run<F, R>(work: F) -> Result<R, tokio::task::JoinError>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let Ok(_permit) = PERMITS.acquire().await else {
        unreachable!("the CPU semaphore is never closed");
    };
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        work()
    })
    .await
}
