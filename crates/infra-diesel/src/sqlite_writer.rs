//! SQLite's single writer: one thread that runs every write, in arrival order.
//! The same type runs the read-ahead thread (`group_commit::read_ahead`).
//!
//! SQLite lets one transaction write at a time. With an async lock in front
//! of tokio's blocking pool, the lock passes from one writer to the next
//! through an actix worker and a new blocking thread. The database then sits
//! idle between transactions. A dedicated thread takes the next write as
//! soon as the previous one commits, and queued writers hold no thread while
//! they wait.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use domain::StoreError;
use tokio::sync::oneshot;

/// A write, run on the writer thread.
type Job = Box<dyn FnOnce() + Send>;

/// The handle on the writer thread; the thread ends once every handle is dropped.
#[derive(Debug)]
pub(crate) struct SqliteWriter {
    jobs: mpsc::Sender<Job>,
}

impl SqliteWriter {
    /// Starts the thread, named `name`.
    ///
    /// # Errors
    /// Returns the system's error when the thread cannot be started.
    pub(crate) fn start(name: &str) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new().name(name.into()).spawn(move || {
            for job in queue {
                job();
            }
        })?;
        Ok(Self { jobs })
    }

    /// Runs `work` on the writer thread after the writes queued before it,
    /// and returns its result. A write whose caller stopped waiting still runs.
    ///
    /// # Errors
    /// Returns the error of `work`, or [`StoreError::Internal`] when `work`
    /// panicked or the thread is gone.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(work).await.map_err(|_| StoreError::internal("the SQLite writer thread dropped a write"))?
    }

    /// Queues `work` at once, without waiting, and returns the channel of its result.
    /// The channel closes without a result when the thread is gone.
    pub(crate) fn submit<T, F>(&self, work: F) -> oneshot::Receiver<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            // A panic must not end the thread, or every later write would fail.
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(work))
                .unwrap_or_else(|_| Err(StoreError::internal("a database write panicked")));
            // The caller may have stopped waiting; the write is done either way.
            let _ = answer.send(outcome);
        });
        if self.jobs.send(job).is_err() {
            tracing::error!("the SQLite writer thread has stopped");
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_run_in_order() {
        let writer = SqliteWriter::start("test-writer").unwrap();
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let pending: Vec<_> = (0..20)
            .map(|index| {
                let order = std::sync::Arc::clone(&order);
                writer.run(move || {
                    order.lock().unwrap().push(index);
                    Ok(index)
                })
            })
            .collect();
        let results = futures::future::join_all(pending).await;
        assert_eq!(results.into_iter().map(Result::unwrap).collect::<Vec<_>>(), (0..20).collect::<Vec<_>>());
        assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn panic_fails_one_write_only() {
        let writer = SqliteWriter::start("test-writer").unwrap();
        let failed = writer.run(|| -> Result<(), StoreError> { panic!("a bug in one write") }).await;
        assert!(matches!(failed, Err(StoreError::Internal(_))), "{failed:?}");
        assert_eq!(writer.run(|| Ok(7)).await.unwrap(), 7, "the thread still serves writes");
    }
}
