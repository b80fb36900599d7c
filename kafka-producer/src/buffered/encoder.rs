//! The threads that compress Produce requests: one pool for every producer of the
//! process, a thread per two cores (at least one), started when the first compressed
//! request is made. Compression shares the cores with the application's threads and
//! the runtime's; on 2 cores one thread compressed as fast as two in every lz4 cell of
//! the comparison and held 0.1 to 0.4 MB less (an allocator arena and a stack fewer;
//! BENCHMARKS.md, issue 16).
//!
//! Not tokio's blocking pool: it starts a thread whenever a job comes while none is
//! idle, and a job handed on as the last one finishes finds none idle yet, so with
//! requests compressed back to back it kept 3 to 5 threads for the 2 jobs that run at
//! once. Each thread that allocates gets an allocator arena of its own, and each arena
//! keeps the compressed requests it made until they are acknowledged: 0.5 to 1.5 MB
//! more RSS than one thread per core (BENCHMARKS.md, issue 16).

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The queue the pool's threads take jobs from; `None` when no thread could be
/// started (jobs then go to tokio's blocking pool).
fn queue() -> Option<&'static mpsc::Sender<Job>> {
    static QUEUE: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let rx = Arc::new(Mutex::new(rx));
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            let threads = cores.div_ceil(2);
            let mut started = 0;
            for i in 0..threads {
                let rx = rx.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("kafka-encoder-{i}"))
                    .spawn(move || work(&rx));
                match spawned {
                    Ok(_) => started += 1,
                    Err(e) => tracing::warn!(error = %e, "cannot start an encoder thread"),
                }
            }
            (started > 0).then_some(tx)
        })
        .as_ref()
}

/// One thread of the pool: runs jobs until the process ends.
fn work(jobs: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let job = match jobs.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        // A job reports its own panic (its result is never sent); the thread goes on.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

/// Runs `f` on the pool; its result arrives on the receiver (an error if `f`
/// panicked).
pub(super) fn run<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> oneshot::Receiver<T> {
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        // The producer may be gone: nobody to tell.
        let _ = tx.send(f());
    });
    let rejected = match queue() {
        Some(queue) => queue.send(job).err().map(|e| e.0),
        None => Some(job),
    };
    if let Some(job) = rejected {
        tokio::task::spawn_blocking(job);
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_and_a_panic_fails_only_its_own() {
        assert_eq!(run(|| 6 * 7).await.unwrap(), 42);
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        // More panics than threads: none of them takes a thread down.
        for _ in 0..threads + 1 {
            let panicked = run(|| -> u8 { panic!("a bug in an encoder") }).await;
            assert!(panicked.is_err());
        }
        let all: Vec<_> = (0..4 * threads).map(|i| run(move || i * 2)).collect();
        for (i, r) in all.into_iter().enumerate() {
            assert_eq!(r.await.unwrap(), i * 2);
        }
    }
}
