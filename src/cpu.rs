//! CPU-bound work (inflating and parsing objects, merging and encoding hours)
//! on a pool of one thread per core, apart from the async runtime.
//!
//! Not on tokio's blocking pool: that pool also serves blocking I/O, and
//! delta-rs's kernel builds snapshots on it, blocking a thread there until its
//! own I/O, on the same pool, is done; so the pool needs spare threads (with
//! one thread per core, two snapshot builds at once deadlocked). CPU work
//! spread over those many threads cost memory: each thread keeps its own
//! allocator heap, and ingest's peak RSS grew by half on the benchmark, with
//! a third more time spent faulting in fresh pages. Here it always runs on the
//! same few threads.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, LazyLock, Mutex};

/// The cores CPU work uses at once.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

type Job = Box<dyn FnOnce() + Send>;

/// The pool's queue; its threads start with the first job.
static QUEUE: LazyLock<Mutex<Sender<Job>>> = LazyLock::new(|| {
    let (sender, receiver) = channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    for i in 0..cores() {
        let receiver = receiver.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("edgemeter-cpu-{i}"))
            .spawn(move || work_loop(&receiver));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start a CPU thread");
        }
    }
    Mutex::new(sender)
});

fn work_loop(receiver: &Mutex<Receiver<Job>>) {
    loop {
        let job = match receiver.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return, // the queue is gone: the process is ending
        }
    }
}

/// A CPU task that panicked (or could not be queued).
#[derive(Debug, thiserror::Error)]
#[error("a CPU task failed: {0}")]
pub struct TaskFailed(String);

/// Runs `work` on the CPU pool, in the caller's tracing span.
pub(crate) async fn run<F, R>(work: F) -> Result<R, TaskFailed>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (done, result) = tokio::sync::oneshot::channel();
    let span = tracing::Span::current();
    let job: Job = Box::new(move || {
        let _entered = span.enter();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        let _ = done.send(outcome);
    });
    QUEUE
        .lock()
        .map_err(|_| TaskFailed("the CPU pool is poisoned".into()))?
        .send(job)
        .map_err(|_| TaskFailed("the CPU pool has stopped".into()))?;
    match result.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => Err(TaskFailed(
            panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panicked".into()),
        )),
        Err(_) => Err(TaskFailed("the task was dropped".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_and_reports_a_panic() {
        assert_eq!(run(|| 2 + 2).await.unwrap(), 4);
        let failed = run(|| -> u8 { panic!("boom") }).await.unwrap_err();
        assert!(failed.to_string().contains("boom"), "{failed}");
        let name = run(|| std::thread::current().name().map(str::to_string))
            .await
            .unwrap();
        assert!(name.is_some_and(|n| n.starts_with("edgemeter-cpu-")));
    }
}
