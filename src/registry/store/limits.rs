//! The `rate_windows` table: fixed one-minute windows per bucket (a key),
//! counted in the database so a limit holds across processes.
//!
//! Counts are not acknowledged data: losing the last few in a crash only
//! lets a key a few more requests. So they are written without waiting
//! for the disk — on SQLite in a file of their own, `counters.sqlite3`,
//! with `synchronous = OFF`; on PostgreSQL through connections with
//! `synchronous_commit = off` — and counting a request costs no sync,
//! while every process sharing the database still counts the same
//! window.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};

use super::{Backend, Store};
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

/// The counters' own table on SQLite (PostgreSQL uses the migrated one).
const SQLITE_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS rate_windows (\
     bucket TEXT NOT NULL, window_start BIGINT NOT NULL, count BIGINT NOT NULL, \
     PRIMARY KEY (bucket, window_start))";

/// Opens the pool counts are written through: `counters.sqlite3` under
/// `data_dir` for SQLite, the registry's database (`url`) otherwise.
pub(super) async fn open_counters(
    backend: Backend,
    url: &str,
    data_dir: &Path,
    acquire_timeout: Duration,
) -> Result<AnyPool, RegistryError> {
    let url = match backend {
        Backend::Sqlite => format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("counters.sqlite3").display()
        ),
        Backend::Postgres => url.to_owned(),
    };
    let options = AnyConnectOptions::from_str(&url)
        .map_err(|e| RegistryError::Config(format!("database_url: {e}")))?;
    let pool = AnyPoolOptions::new()
        .max_connections(if backend == Backend::Sqlite { 2 } else { 8 })
        .acquire_timeout(acquire_timeout)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                match backend {
                    Backend::Sqlite => {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = OFF").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                    }
                    Backend::Postgres => {
                        conn.execute("SET synchronous_commit = off").await?;
                    }
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(RegistryError::from)?;
    if backend == Backend::Sqlite {
        pool.execute(SQLITE_SCHEMA).await?;
    }
    Ok(pool)
}

/// The start of the window holding `now`.
pub fn window_start(now: i64) -> i64 {
    now - now.rem_euclid(WINDOW_US)
}

impl Store {
    /// Adds `hits` requests to `bucket`'s window starting at `start`, in
    /// one statement (an upsert that returns the new count, atomic in both
    /// databases); answers the window's count across every process.
    pub async fn add_hits(
        &self,
        bucket: &str,
        start: i64,
        hits: i64,
    ) -> Result<i64, RegistryError> {
        let row = sqlx::query(
            "INSERT INTO rate_windows (bucket, window_start, count) VALUES ($1, $2, $3) \
             ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_windows.count + $3 \
             RETURNING count",
        )
        .bind(bucket)
        .bind(start)
        .bind(hits)
        .fetch_one(&self.counters)
        .await?;
        let count: i64 = row.try_get(0)?;
        if count == hits {
            // A bucket's first request of a window drops its older
            // windows: the table holds about one row per active key.
            sqlx::query("DELETE FROM rate_windows WHERE bucket = $1 AND window_start < $2")
                .bind(bucket)
                .bind(start)
                .execute(&self.counters)
                .await?;
        }
        Ok(count)
    }
}
