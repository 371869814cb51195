//! The deadline of the render job running on this thread, checked by the
//! work it bounds so that a job past its deadline stops and frees its slot.
//!
//! A render is synchronous CPU work on the blocking pool, and a thread
//! cannot be stopped from outside: the only way to end a job early is for
//! the job to look. `pool::RenderPool::run` installs the job's deadline
//! here for as long as the job runs; fitting checks it before every
//! measurement, and the render path between its stages. The deadline is
//! ambient (a thread-local) rather than a parameter because a job is any
//! closure: the work deep inside it finds its deadline without every
//! signature in between carrying one. Outside a job there is no deadline
//! and every check passes.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::render::RenderError;

/// When a job must be done by, and whether its caller gave up earlier.
#[derive(Debug)]
pub struct Deadline {
    at: Instant,
    /// Set by the pool when it stops waiting for the job (its deadline, or
    /// the waiting future dropped), so the job stops even if clocks
    /// disagree about the instant.
    cancelled: AtomicBool,
}

impl Deadline {
    pub fn new(at: Instant) -> Arc<Deadline> {
        Arc::new(Deadline {
            at,
            cancelled: AtomicBool::new(false),
        })
    }

    /// Tells the job to stop at its next check.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// True once the job should stop.
    pub fn passed(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst) || Instant::now() >= self.at
    }
}

/// A check found the job's deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired;

impl From<Expired> for RenderError {
    fn from(_: Expired) -> RenderError {
        RenderError::Failed("the render passed its deadline".into())
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Deadline>>> = const { RefCell::new(None) };
}

/// Restores the thread's previous deadline, however the job ends (a panic
/// included: blocking-pool threads are reused).
struct Restore(Option<Arc<Deadline>>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Runs `job` with `deadline` as this thread's deadline.
pub fn within<T>(deadline: Arc<Deadline>, job: impl FnOnce() -> T) -> T {
    let previous = CURRENT.with(|c| c.borrow_mut().replace(deadline));
    let _restore = Restore(previous);
    job()
}

/// The time the running job has left; `None` outside a job.
pub fn remaining() -> Option<Duration> {
    CURRENT.with(|c| {
        c.borrow().as_ref().map(|d| {
            if d.cancelled.load(Ordering::SeqCst) {
                Duration::ZERO
            } else {
                d.at.saturating_duration_since(Instant::now())
            }
        })
    })
}

/// `Err` once the running job's deadline has passed; `Ok` outside a job.
pub fn check() -> Result<(), Expired> {
    let passed = CURRENT.with(|c| c.borrow().as_ref().is_some_and(|d| d.passed()));
    if passed {
        Err(Expired)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_job_every_check_passes() {
        assert_eq!(check(), Ok(()));
    }

    #[test]
    fn a_check_fails_once_the_deadline_passes_or_is_cancelled() {
        let past = Deadline::new(Instant::now());
        assert_eq!(within(past, check), Err(Expired));
        let later = Deadline::new(Instant::now() + Duration::from_secs(3600));
        let token = Arc::clone(&later);
        assert_eq!(
            within(later, || {
                let before = check();
                token.cancel();
                (before, check())
            }),
            (Ok(()), Err(Expired))
        );
        // The thread's deadline ends with the job.
        assert_eq!(check(), Ok(()));
    }

    #[test]
    fn a_panicking_job_leaves_no_deadline_behind() {
        let past = Deadline::new(Instant::now());
        let result = std::panic::catch_unwind(|| within(past, || panic!("boom")));
        assert!(result.is_err());
        assert_eq!(check(), Ok(()));
    }
}
