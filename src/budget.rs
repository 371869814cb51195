//! One memory budget for the work that allocates canvases and decoded
//! images: whole and incremental renders, base builds, strict image
//! decodes. Each takes a lease for its estimated peak before it allocates
//! and gives it back when done, so the bytes held at once by this work
//! never pass `render_memory_bytes`, whatever the requests ask for.
//!
//! Leases are never nested: a piece of work holds at most one at a time,
//! so waiting for one cannot deadlock.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::deadline;

/// Longest a waiting lease sleeps before it looks whether its job was
/// cancelled (a cancel does not wake the condition variable).
const CANCEL_CHECK: Duration = Duration::from_millis(100);

/// The budget: bytes in use under a bound.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    /// Longest a piece of work waits for its lease.
    wait: Duration,
    used: Mutex<u64>,
    freed: Condvar,
}

/// Bytes of a budget held until dropped.
#[derive(Debug)]
pub struct Lease {
    budget: Arc<Budget>,
    bytes: u64,
}

/// Why no lease was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The work needs more than the whole budget.
    TooLarge { need: u64, limit: u64 },
    /// The budget stayed full for the whole wait.
    TimedOut,
}

impl Budget {
    pub fn new(limit: u64, wait: Duration) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            wait,
            used: Mutex::new(0),
            freed: Condvar::new(),
        })
    }

    /// Waits until `bytes` fit beside the leases held: at most the
    /// budget's wait, and inside a render job at most nine tenths of the
    /// time it has left, so that a job that gets no memory answers busy
    /// before its deadline answers for it.
    pub fn take(self: &Arc<Self>, bytes: u64) -> Result<Lease, Refused> {
        if bytes > self.limit {
            return Err(Refused::TooLarge {
                need: bytes,
                limit: self.limit,
            });
        }
        let wait = deadline::remaining().map_or(self.wait, |left| self.wait.min(left * 9 / 10));
        let until = Instant::now() + wait;
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used + bytes > self.limit {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || deadline::check().is_err() {
                return Err(Refused::TimedOut);
            }
            // Woken by every lease given back; the slice bounds how late a
            // cancelled job notices.
            used = self
                .freed
                .wait_timeout(used, left.min(CANCEL_CHECK))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *used += bytes;
        Ok(Lease {
            budget: Arc::clone(self),
            bytes,
        })
    }

    /// Bytes leased now, for `/healthz`.
    pub fn used(&self) -> u64 {
        *self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut used = self.budget.used.lock().unwrap_or_else(|e| e.into_inner());
        *used = used.saturating_sub(self.bytes);
        self.budget.freed.notify_all();
    }
}

/// Bytes of a canvas of `width`×`height`.
pub fn canvas_bytes(width: u32, height: u32) -> u64 {
    u64::from(width) * u64::from(height) * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_never_pass_the_limit_and_come_back_when_dropped() {
        let budget = Budget::new(100, Duration::from_millis(0));
        let a = budget.take(60).unwrap();
        assert_eq!(budget.take(50).unwrap_err(), Refused::TimedOut);
        let b = budget.take(40).unwrap();
        assert_eq!(budget.used(), 100);
        drop(a);
        assert!(budget.take(50).is_ok());
        drop(b);
        assert_eq!(budget.used(), 0);
        assert_eq!(
            budget.take(101).unwrap_err(),
            Refused::TooLarge {
                need: 101,
                limit: 100
            }
        );
    }

    #[test]
    fn a_job_waits_for_memory_no_longer_than_its_deadline_allows() {
        let budget = Budget::new(100, Duration::from_secs(3600));
        let _held = budget.take(100).unwrap();
        let soon = deadline::Deadline::new(Instant::now() + Duration::from_millis(50));
        let waited = deadline::within(soon, || budget.take(10).map(|_| ()));
        assert_eq!(waited, Err(Refused::TimedOut));
    }

    #[test]
    fn a_waiting_lease_is_given_once_another_is_dropped() {
        let budget = Budget::new(100, Duration::from_secs(60));
        let held = budget.take(80).unwrap();
        let waiter = {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || budget.take(50).map(|l| l.bytes))
        };
        // The waiter cannot finish before the drop: 80 + 50 > 100.
        drop(held);
        assert_eq!(waiter.join().unwrap(), Ok(50));
    }
}
