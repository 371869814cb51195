//! The render slots: CPU work runs on the blocking pool, a bounded number
//! at once, with a bounded queue and a deadline.
//!
//! The async workers only wait here, so a slow render never stalls the
//! requests that are served from the cache.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// Why a job did not produce its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// Too many jobs were already waiting for a slot.
    Busy,
    /// The job panicked.
    Panicked,
    /// The job ran past the deadline. It keeps its slot until it ends,
    /// since its thread cannot be stopped.
    TimedOut,
}

/// Counters for health checks and tests.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Jobs holding a slot right now.
    pub running: AtomicUsize,
    /// Jobs waiting for a slot.
    pub waiting: AtomicUsize,
    /// Jobs started since the server started.
    pub started: AtomicU64,
}

/// A bounded set of render slots.
pub struct RenderPool {
    /// One permit a slot.
    slots: Arc<Semaphore>,
    /// Jobs that may wait for a slot before new ones are refused.
    max_waiting: usize,
    /// How long a caller waits for a job.
    deadline: Duration,
    /// Shared with running jobs, which outlive their callers on timeout.
    stats: Arc<PoolStats>,
}

/// Decrements a counter when dropped, however the scope ends.
struct Count(Arc<PoolStats>, fn(&PoolStats) -> &AtomicUsize);

impl Count {
    fn new(stats: &Arc<PoolStats>, field: fn(&PoolStats) -> &AtomicUsize) -> (Count, usize) {
        let now = field(stats).fetch_add(1, Ordering::SeqCst) + 1;
        (Count(Arc::clone(stats), field), now)
    }
}

impl Drop for Count {
    fn drop(&mut self) {
        (self.1)(&self.0).fetch_sub(1, Ordering::SeqCst);
    }
}

impl RenderPool {
    pub fn new(slots: usize, max_waiting: usize, deadline: Duration) -> RenderPool {
        RenderPool {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            max_waiting,
            deadline,
            stats: Arc::default(),
        }
    }

    /// The live counters.
    pub fn stats(&self) -> &PoolStats {
        &self.stats
    }

    /// Runs `job` on the blocking pool once a slot is free.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let permit = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let (_waiting, now) = Count::new(&self.stats, |s| &s.waiting);
                if now > self.max_waiting {
                    return Err(PoolError::Busy);
                }
                Arc::clone(&self.slots)
                    .acquire_owned()
                    .await
                    .map_err(|_| PoolError::Busy)?
            }
        };
        self.stats.started.fetch_add(1, Ordering::SeqCst);
        let (running, _) = Count::new(&self.stats, |s| &s.running);
        let handle = tokio::task::spawn_blocking(move || {
            let _slot = (permit, running);
            job()
        });
        match tokio::time::timeout(self.deadline, handle).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(PoolError::Panicked),
            Err(_) => Err(PoolError::TimedOut),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_frees_its_slot() {
        let pool = RenderPool::new(1, 0, Duration::from_secs(5));
        let result: Result<(), _> = pool.run(|| panic!("boom")).await;
        assert_eq!(result, Err(PoolError::Panicked));
        assert_eq!(pool.run(|| 7).await, Ok(7));
        assert_eq!(pool.stats().running.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_job_past_the_deadline_times_out() {
        let pool = RenderPool::new(1, 0, Duration::from_millis(10));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let result = pool.run(move || rx.recv().ok()).await;
        assert_eq!(result, Err(PoolError::TimedOut));
        // The job still holds the only slot, and nobody may wait.
        assert_eq!(pool.run(|| ()).await, Err(PoolError::Busy));
        drop(tx);
    }
}
