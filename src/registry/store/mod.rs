//! The registry's storage: one interface over SQLite and PostgreSQL.
//!
//! Queries are written once, with `$n` placeholders both drivers read,
//! against sqlx's `Any` driver; the one migration folder (`migrations/`)
//! holds only SQL both understand, and is embedded in the binary and
//! applied at open. SQLite runs in WAL mode with `synchronous=FULL`, so a
//! committed transaction is on disk before the answer that reports it.
//!
//! Every state change is one transaction ([`Store::begin`]) in which the
//! change, its audit row and (for certificates) its outbox event are
//! written together: a crash keeps all or none.
//!
//! Layout: `accounts`, `keys`, `audit`, `limits`, `certificates`,
//! `events`, `idempotency` and `instances` hold the queries of one table
//! each; `batches` those of a batch and its rows; `webhooks` the webhook
//! endpoints, `deliveries` the webhook queue, `attempts` its log.

mod accounts;
mod attempts;
mod audit;
mod batches;
mod certificates;
mod deliveries;
mod events;
mod idempotency;
mod instances;
mod keys;
mod limits;
mod webhooks;

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Transaction};

pub use attempts::AttemptRecord;
pub use audit::{AuditEvent, NewAuditEvent};
pub use batches::{BatchItem, BatchRecord, Counts, ItemInput, RowOutcome};
pub use certificates::{CertificateFilter, CertificateRecord};
pub use deliveries::{Due, OutboxEvent, Outcome};
pub use events::{NewEvent, StoredEvent};
pub use idempotency::{
    fingerprint, Claim, Claimed, IdempotencyKey, KeptAnswer, Reply, ABANDONED_AFTER_US,
    KEPT_FOR_US, TAKEN_OVER,
};
pub use instances::{GONE_AFTER_US, HEARTBEAT_US};
pub use keys::{KeyRecord, NewKey};
pub use limits::{window_start, Window, WINDOW_US};
pub use webhooks::EndpointRecord;

use super::error::RegistryError;
use super::ids::Environment;

/// Which database is behind the pool: the few statements that differ
/// (how a write transaction starts) ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle to the registry's database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// Where rate-limit counts are written, without waiting for the disk
    /// (`limits`).
    counters: AnyPool,
    /// This process's id among those sharing the database (`instances`).
    instance: Arc<str>,
    /// Whether this process already swept the rows of gone ones.
    swept: Arc<AtomicBool>,
    backend: Backend,
}

/// The migrations, embedded so a binary needs no folder beside it.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a connection waits for SQLite's write lock before failing.
const SQLITE_BUSY_TIMEOUT_MS: u64 = 5_000;
/// How long a request waits for a PostgreSQL connection before it is
/// answered `503 unavailable`. While the server is down or starting,
/// the pool keeps retrying the connection (refused, or "starting up")
/// until this passes, so it is how long a client waits to hear the
/// database is gone: short, as a client retries anyway.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// SQLite is a local file that cannot go away: a wait for one of its few
/// connections is a queue behind other writers, given as long as a
/// writer's wait for the lock.
const SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(SQLITE_BUSY_TIMEOUT_MS);

/// A list the store pages by time and id: the store's own names, never a
/// caller's text.
struct Listing {
    /// `SELECT <columns> FROM <table> [alias]`.
    select: String,
    /// The table's alias with its dot (`k.`), or nothing.
    alias: &'static str,
    table: &'static str,
    /// The time column lists order by.
    at: &'static str,
}

impl Store {
    /// Opens the SQLite file `registry.sqlite3` under `data_dir`
    /// (creating both), or the PostgreSQL database of `database_url`, and
    /// applies the migrations not yet applied.
    pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Store, RegistryError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                (url.to_owned(), Backend::Postgres)
            }
            Some(_) => {
                return Err(RegistryError::Config(
                    "database_url must start with postgres:// (SQLite needs none: it lives under data_dir)"
                        .into(),
                ))
            }
            None => {
                std::fs::create_dir_all(data_dir).map_err(|e| {
                    RegistryError::Config(format!("cannot create {}: {e}", data_dir.display()))
                })?;
                let file = data_dir.join("registry.sqlite3");
                (format!("sqlite://{}?mode=rwc", file.display()), Backend::Sqlite)
            }
        };
        // sqlx logs statements' text (never their bound values, so never
        // a key, which is bound as a hash anyway) at debug.
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| RegistryError::Config(format!("database_url: {e}")))?;
        let (max_connections, acquire_timeout) = match backend {
            Backend::Sqlite => (4, SQLITE_ACQUIRE_TIMEOUT),
            Backend::Postgres => (16, POSTGRES_ACQUIRE_TIMEOUT),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            // An idle connection is pinged before it is handed out: after
            // PostgreSQL restarts, every pooled connection is dead, and a
            // request given one would fail instead of getting a new one.
            .test_before_acquire(true)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; FULL
                        // syncs the log at every commit, so an answered
                        // write survives a power cut, not only a crash.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute(
                            format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}").as_str(),
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(RegistryError::from)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| RegistryError::Config(format!("applying migrations: {e}")))?;
        let counters =
            limits::open_counters(backend, &url, data_dir, Duration::from_secs(5)).await?;
        Ok(Store {
            pool,
            counters,
            instance: Arc::from(super::ids::new_id("inst_")?),
            swept: Arc::default(),
            backend,
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred one that reads first and writes
    /// later can fail with `SQLITE_BUSY` however long it would wait.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, RegistryError> {
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        Ok(self.pool.begin_with(begin).await?)
    }

    /// The pool, for reads outside a transaction.
    fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A page of `listing`'s rows of one account and environment, newest
    /// first by (time, id), one more than `limit` fetched to tell whether
    /// more follow; `None` when `starting_after` is not one of them.
    async fn page(
        &self,
        listing: &Listing,
        account_id: &str,
        environment: Environment,
        limit: u32,
        starting_after: Option<&str>,
    ) -> Result<Option<Vec<AnyRow>>, RegistryError> {
        let Listing {
            select,
            alias: a,
            table,
            at,
        } = listing;
        let live = flag(environment.is_live());
        let fetch = i64::from(limit) + 1;
        let base = format!("{select} WHERE {a}account_id = $1 AND {a}livemode = $2");
        let order = format!("ORDER BY {a}{at} DESC, {a}id DESC");
        let rows = match starting_after {
            None => {
                sqlx::query(&format!("{base} {order} LIMIT $3"))
                    .bind(account_id)
                    .bind(live)
                    .bind(fetch)
                    .fetch_all(self.pool())
                    .await?
            }
            Some(cursor) => {
                let Some(after) = self
                    .cursor_at(table, at, cursor, account_id, environment)
                    .await?
                else {
                    return Ok(None);
                };
                sqlx::query(&format!(
                    "{base} AND {a}{at} <= $3 AND ({a}{at} < $3 OR {a}id < $4) {order} LIMIT $5"
                ))
                .bind(account_id)
                .bind(live)
                .bind(after)
                .bind(cursor)
                .bind(fetch)
                .fetch_all(self.pool())
                .await?
            }
        };
        Ok(Some(rows))
    }

    /// Where a list's cursor stands: the time (`at_column`) of row `id` of
    /// `table`, when it is a row of this account and environment. Lists
    /// page by (time, id) from there, so a page costs the same at any
    /// depth. `table` and `at_column` are the store's own names, never a
    /// caller's text.
    async fn cursor_at(
        &self,
        table: &'static str,
        at_column: &'static str,
        id: &str,
        account_id: &str,
        environment: Environment,
    ) -> Result<Option<i64>, RegistryError> {
        Ok(sqlx::query_scalar::<_, i64>(&format!(
            "SELECT {at_column} FROM {table} WHERE id = $1 AND account_id = $2 AND livemode = $3"
        ))
        .bind(id)
        .bind(account_id)
        .bind(flag(environment.is_live()))
        .fetch_optional(self.pool())
        .await?)
    }

    /// The latest applied migration: the schema's version.
    pub async fn schema_version(&self) -> Result<i64, RegistryError> {
        let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(self.pool())
            .await?;
        Ok(version.unwrap_or(0))
    }

    /// Whether [`Store::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// Closes the pool, waiting for connections to be given back.
    pub async fn close(&self) {
        self.pool.close().await;
        self.counters.close().await;
    }
}

/// Now, in Unix microseconds: how every time is stored.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Rows one multi-row `INSERT` writes at most: within both databases'
/// bound on a statement's parameters (SQLite's 32,766, PostgreSQL's
/// 65,535) for tables of up to 64 columns.
const ROWS_PER_STATEMENT: usize = 256;

/// `($1, …, $k), ($k+1, …), …`: the placeholders of `rows` rows of
/// `columns` values each.
fn placeholders(rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * columns + column + 1));
        }
        sql.push(')');
    }
    sql
}

/// A query being bound.
type Query<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

/// 0/1 for a flag: both databases store it as BIGINT alike.
fn flag(value: bool) -> i64 {
    i64::from(value)
}
