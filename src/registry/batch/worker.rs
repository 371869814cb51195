//! The background task that works batches: it claims a chunk of pending
//! rows of the oldest batch that has some free, works it (`work`), and
//! goes on until nothing is left; then it waits to be woken by a new
//! batch of this process, or polls for those of others (or left by a
//! process that died: its claims pass to whoever asks once its heartbeat
//! stops, `store::instances`).
//!
//! Every process runs one, so several processes on one PostgreSQL share
//! a batch chunk by chunk, and a batch a crash interrupted resumes when
//! any process runs again.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use super::work::work_chunk;
use crate::registry::error::RegistryError;
use crate::registry::store::now_us;
use crate::registry::Registry;

/// Rows claimed and written at once: a transaction's worth.
const CHUNK: u32 = 64;
/// How often an idle worker looks for batches of other processes.
const POLL: Duration = Duration::from_millis(250);
/// How long a worker waits after the database failed it.
const BACKOFF: Duration = Duration::from_secs(1);
/// Batches looked at in one pass, oldest first.
const BATCHES_PER_PASS: u32 = 16;

/// Wakes this process's worker; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Worker {
    wake: Arc<Notify>,
}

impl Worker {
    /// Tells the worker a batch is waiting.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs the worker for `registry` on the current runtime until
    /// `alive` is gone (the last handle of the registry dropped).
    pub fn start(&self, registry: Registry, alive: Weak<()>) {
        let wake = Arc::clone(&self.wake);
        tokio::spawn(async move {
            loop {
                if alive.upgrade().is_none() {
                    return;
                }
                match pass(&registry).await {
                    Ok(true) => continue,
                    Ok(false) => {
                        let _ = tokio::time::timeout(POLL, wake.notified()).await;
                    }
                    Err(_) if registry.store.is_closed() => return,
                    Err(error) => {
                        tracing::warn!(%error, "batch worker paused");
                        tokio::time::sleep(BACKOFF).await;
                    }
                }
            }
        });
    }
}

/// Works one chunk of the oldest batch that has rows free; `false` when
/// none has.
async fn pass(registry: &Registry) -> Result<bool, RegistryError> {
    for batch in registry.store.processing_batches(BATCHES_PER_PASS).await? {
        let rows = registry
            .store
            .claim_rows(&batch.id, CHUNK, now_us())
            .await?;
        if rows.is_empty() {
            continue;
        }
        work_chunk(registry, &batch, rows).await?;
        return Ok(true);
    }
    Ok(false)
}
