//! The render slots: CPU work runs on the blocking pool, a bounded number
//! at once, with a bounded queue and a deadline.
//!
//! The async workers only wait here, so a slow render never stalls the
//! requests that are served from the cache. The deadline starts when a job
//! is queued, so time spent waiting for a slot counts against it; a job
//! still waiting when it passes is answered busy and never starts. A
//! running job sees its deadline through `deadline::check`, and work that
//! checks it (fitting, the stages of a render) stops soon after and frees
//! its slot for the next.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::{timeout_at, Instant};

use crate::deadline::{self, Deadline};

/// Why a job did not produce its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// Too many jobs were already waiting for a slot, or the deadline
    /// passed before one was free: the job never started.
    Busy,
    /// The job panicked.
    Panicked,
    /// The job ran past the deadline. Its thread cannot be stopped, so it
    /// keeps its slot until its next `deadline::check`, where cooperative
    /// work ends.
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
    /// How long a job may take from being queued to its end.
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

/// Cancels a job's deadline when dropped.
struct Cancel(Arc<Deadline>);

impl Drop for Cancel {
    fn drop(&mut self) {
        self.0.cancel();
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

    /// Runs `job` on the blocking pool once a slot is free, with the
    /// pool's deadline (counted from now) as its `deadline::check`.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let at = Instant::now() + self.deadline;
        let permit = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let (_waiting, now) = Count::new(&self.stats, |s| &s.waiting);
                if now > self.max_waiting {
                    return Err(PoolError::Busy);
                }
                // A job that waited out its deadline is the server's load,
                // not its own fault: busy (not remembered as the key's
                // failure), and it never takes a slot it has no time for.
                match timeout_at(at, Arc::clone(&self.slots).acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) | Err(_) => return Err(PoolError::Busy),
                }
            }
        };
        self.stats.started.fetch_add(1, Ordering::SeqCst);
        let (running, _) = Count::new(&self.stats, |s| &s.running);
        let token = Deadline::new(at.into_std());
        // Cancels the job however this future ends: past the deadline, or
        // dropped by its caller.
        let _cancel = Cancel(Arc::clone(&token));
        let handle = tokio::task::spawn_blocking(move || {
            let _slot = (permit, running);
            deadline::within(token, job)
        });
        match timeout_at(at, handle).await {
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

    /// Work that checks its deadline, step by step, and says how many steps
    /// it did; `release` lets it take its first step.
    fn cooperative(release: std::sync::mpsc::Receiver<()>) -> impl FnOnce() -> usize {
        move || {
            let _ = release.recv();
            let mut steps = 0;
            while deadline::check().is_ok() {
                steps += 1;
            }
            steps
        }
    }

    #[tokio::test]
    async fn a_job_that_checks_its_deadline_frees_its_slot_after_timing_out() {
        let pool = RenderPool::new(1, 4, Duration::from_millis(50));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let job = cooperative(rx);
        let result = pool
            .run(move || {
                let steps = job();
                let _ = done_tx.send(steps);
            })
            .await;
        assert_eq!(result, Err(PoolError::TimedOut));
        // Let it begin only now: it is past its deadline at its first check.
        drop(tx);
        assert_eq!(done_rx.await, Ok(0));
        assert_eq!(pool.run(|| 7).await, Ok(7));
        assert_eq!(pool.stats().running.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn time_spent_waiting_for_a_slot_counts_against_the_deadline() {
        let pool = Arc::new(RenderPool::new(1, 4, Duration::from_millis(50)));
        // The only slot is taken by a job that ignores its deadline until
        // the waiting job has given up.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let holder = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move { pool.run(move || rx.recv().ok()).await })
        };
        while pool.stats().running.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let started = pool.stats().started.load(Ordering::SeqCst);
        assert_eq!(pool.run(|| 7).await, Err(PoolError::Busy));
        assert_eq!(pool.stats().started.load(Ordering::SeqCst), started);
        drop(tx);
        assert_eq!(holder.await.ok(), Some(Err(PoolError::TimedOut)));
    }
}
