//! The `instances` table: which server processes are alive. Each process
//! (each opened [`Store`]) has a random id and writes `seen_at` every
//! [`HEARTBEAT_US`]; one not seen for [`GONE_AFTER_US`] has crashed or
//! stopped, and what it claimed and never finished is taken over.

use super::Store;
use crate::registry::error::RegistryError;

/// How often a process says it is alive.
pub const HEARTBEAT_US: i64 = 1_000_000;
/// How long a process may be silent before it counts as gone: a few
/// heartbeats, so a busy database or a slow tick never buries a live one.
pub const GONE_AFTER_US: i64 = 5 * HEARTBEAT_US;
/// How long the rows of gone processes are kept.
const FORGOTTEN_AFTER_US: i64 = 24 * 60 * 60 * 1_000_000;

impl Store {
    /// This process's id, as its claims name it.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Says this process is alive at `now`; now and then forgets
    /// processes gone a day.
    pub async fn heartbeat(&self, now: i64) -> Result<(), RegistryError> {
        sqlx::query(
            "INSERT INTO instances (id, started_at, seen_at) VALUES ($1, $2, $2) \
             ON CONFLICT (id) DO UPDATE SET seen_at = $2",
        )
        .bind(self.instance.to_string())
        .bind(now)
        .execute(self.pool())
        .await?;
        // Once per process start is often enough to keep the table small.
        if self.first_heartbeat() {
            sqlx::query("DELETE FROM instances WHERE seen_at < $1")
                .bind(now - FORGOTTEN_AFTER_US)
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    /// Whether the process `id` is alive at `now`: this one is; another
    /// one if it was seen within [`GONE_AFTER_US`]. A claim that names
    /// no process (made before processes were recorded) counts as alive,
    /// and is taken over by its age alone.
    pub async fn instance_alive(&self, id: Option<&str>, now: i64) -> Result<bool, RegistryError> {
        let Some(id) = id else {
            return Ok(true);
        };
        if id == &*self.instance {
            return Ok(true);
        }
        let seen: Option<i64> = sqlx::query_scalar("SELECT seen_at FROM instances WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(self.pool())
            .await?;
        Ok(seen.is_some_and(|at| at > now - GONE_AFTER_US))
    }

    fn first_heartbeat(&self) -> bool {
        !self.swept.swap(true, std::sync::atomic::Ordering::SeqCst)
    }
}
