//! Rate limits per key and minute, counted in memory and shared through
//! the database.
//!
//! Writing every request's count to the database costs a statement per
//! request; counting only in memory would let each process grant the
//! whole limit. So each process counts its own requests and adds them to
//! the database's window every [`FLUSH_MS`], learning the other
//! processes' counts as it does; while a key is far from its limit, a
//! request is decided from memory alone (what the database said plus
//! what this process counted since). Within [`exact_margin`] of the
//! limit every request is counted in the database before it is answered,
//! so the limit itself holds across processes as exactly as before; far
//! below it, a crash forgets at most the last flush's requests, which
//! only lets the key a few more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::error::RegistryError;
use super::store::{window_start, Store, Window, WINDOW_US};

/// How often counts are added to the database.
pub const FLUSH_MS: u64 = 200;

/// One key's window as this process knows it.
#[derive(Debug, Clone, Copy)]
struct Local {
    start: i64,
    /// The window's count across processes, as the database last said.
    known: i64,
    /// This process's requests not yet added to the database.
    pending: i64,
}

/// The counts of this process; shared by every clone of the registry.
#[derive(Debug)]
pub struct Limiter {
    store: Store,
    windows: Mutex<HashMap<String, Local>>,
}

/// How close to its limit a key is counted in the database request by
/// request: a tenth of the limit, and never fewer than 16 requests (so a
/// small limit is always exact).
pub fn exact_margin(limit: i64) -> i64 {
    (limit / 10).max(16)
}

impl Limiter {
    /// A limiter over `store`, with the task that flushes it; the task
    /// ends once the limiter is dropped.
    pub fn start(store: Store) -> Arc<Limiter> {
        let limiter = Arc::new(Limiter {
            store,
            windows: Mutex::default(),
        });
        tokio::spawn(flushes(Arc::downgrade(&limiter)));
        limiter
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, HashMap<String, Local>> {
        // A panic while counting leaves the counts as valid as before.
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one request of `key` (limit `limit` a minute) at `now`.
    pub async fn hit(&self, key: &str, limit: i64, now: i64) -> Result<Window, RegistryError> {
        let start = window_start(now);
        let resets_at = start + WINDOW_US;
        let taken = {
            let mut windows = self.windows();
            let local = windows.entry(key.to_owned()).or_insert(Local {
                start,
                known: 0,
                pending: 0,
            });
            if local.start != start {
                *local = Local {
                    start,
                    known: 0,
                    pending: 0,
                };
            }
            let estimate = local.known + local.pending + 1;
            if limit - estimate >= exact_margin(limit) {
                local.pending += 1;
                return Ok(Window {
                    count: estimate,
                    resets_at,
                });
            }
            // Near the limit: this request and what is pending go to the
            // database now, and its answer decides.
            std::mem::take(&mut local.pending) + 1
        };
        let count = match self.store.add_hits(key, start, taken).await {
            Ok(count) => count,
            Err(error) => {
                // Not lost: counted again with the next flush.
                self.give_back(key, start, taken);
                return Err(error);
            }
        };
        self.learn(key, start, count);
        Ok(Window { count, resets_at })
    }

    /// Records `count` as the database's count of `key`'s window.
    fn learn(&self, key: &str, start: i64, count: i64) {
        if let Some(local) = self.windows().get_mut(key) {
            if local.start == start {
                local.known = local.known.max(count);
            }
        }
    }

    /// Puts `hits` that could not be written back among the pending ones.
    fn give_back(&self, key: &str, start: i64, hits: i64) {
        if let Some(local) = self.windows().get_mut(key) {
            if local.start == start {
                local.pending += hits;
            }
        }
    }

    /// Adds every pending count to the database; drops windows that
    /// ended with nothing pending (one ended with counts is dropped by the
    /// next flush, once they are written).
    async fn flush(&self, now: i64) {
        let current = window_start(now);
        let due: Vec<(String, i64, i64)> = {
            let mut windows = self.windows();
            windows.retain(|_, local| local.start == current || local.pending > 0);
            windows
                .iter_mut()
                .filter(|(_, local)| local.pending > 0)
                .map(|(key, local)| (key.clone(), local.start, std::mem::take(&mut local.pending)))
                .collect()
        };
        for (key, start, hits) in due {
            match self.store.add_hits(&key, start, hits).await {
                Ok(count) => self.learn(&key, start, count),
                Err(error) => {
                    tracing::warn!(%error, "could not add rate-limit counts to the database");
                    if start == current {
                        self.give_back(&key, start, hits);
                    }
                }
            }
        }
    }
}

async fn flushes(limiter: Weak<Limiter>) {
    let mut ticks = tokio::time::interval(Duration::from_millis(FLUSH_MS));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(limiter) = limiter.upgrade() else {
            return;
        };
        limiter.flush(super::store::now_us()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_limits_are_always_exact_and_large_ones_near_their_end() {
        assert_eq!(exact_margin(4), 16);
        assert_eq!(exact_margin(60), 16);
        assert_eq!(exact_margin(300), 30);
        assert_eq!(exact_margin(100_000), 10_000);
    }
}

/// Failed authentications a client address may make a minute before it
/// is answered `429` instead of `401`.
pub const STRANGER_LIMIT_PER_MINUTE: i64 = 300;

/// Requests that presented no valid key, counted per client address and
/// minute in this process only: they name no key whose limit could be
/// shared, and the count is what their answers' rate-limit headers show
/// and what slows down guessing keys.
#[derive(Debug)]
pub struct Strangers(moka::sync::Cache<(String, i64), Arc<std::sync::atomic::AtomicI64>>);

impl Default for Strangers {
    fn default() -> Strangers {
        Strangers(
            moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_micros(2 * WINDOW_US.unsigned_abs()))
                .build(),
        )
    }
}

impl Strangers {
    /// Counts one failed authentication from `address` at `now`.
    pub fn hit(&self, address: &str, now: i64) -> Window {
        let start = window_start(now);
        let counter = self.0.get_with((address.to_owned(), start), Arc::default);
        let count = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        Window {
            count,
            resets_at: start + WINDOW_US,
        }
    }
}
