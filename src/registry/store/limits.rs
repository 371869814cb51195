//! The `rate_windows` table: fixed one-minute windows per bucket (a key),
//! counted in the database so a limit holds across processes.

use sqlx::Row;

use super::Store;
use crate::registry::error::RegistryError;

/// Length of a window.
pub const WINDOW_US: i64 = 60_000_000;

/// The state of a bucket's window after one more request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Requests counted in this window, this one included.
    pub count: i64,
    /// When the window ends, in Unix microseconds.
    pub resets_at: i64,
}

impl Store {
    /// Counts one request of `bucket` at `now`, in one statement (an
    /// upsert that returns the new count, atomic in both databases).
    pub async fn hit(&self, bucket: &str, now: i64) -> Result<Window, RegistryError> {
        let start = now - now.rem_euclid(WINDOW_US);
        let row = sqlx::query(
            "INSERT INTO rate_windows (bucket, window_start, count) VALUES ($1, $2, 1) \
             ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_windows.count + 1 \
             RETURNING count",
        )
        .bind(bucket)
        .bind(start)
        .fetch_one(self.pool())
        .await?;
        let count: i64 = row.try_get(0)?;
        if count == 1 {
            // A bucket's first request of a window drops its older
            // windows: the table holds about one row per active key.
            sqlx::query("DELETE FROM rate_windows WHERE bucket = $1 AND window_start < $2")
                .bind(bucket)
                .bind(start)
                .execute(self.pool())
                .await?;
        }
        Ok(Window {
            count,
            resets_at: start + WINDOW_US,
        })
    }
}
