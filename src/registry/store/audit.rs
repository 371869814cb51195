//! The `audit_events` table: appended to, never updated or deleted.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row, Transaction};

use super::{flag, placeholders, Query, Store, ROWS_PER_STATEMENT};
use crate::registry::error::RegistryError;
use crate::registry::ids::{self, Environment};

/// An event to append.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEvent {
    /// `None` for a failed authentication whose key names no account.
    pub account_id: Option<String>,
    pub livemode: bool,
    /// `api_key`, `cli` or `anonymous`.
    pub actor_type: &'static str,
    pub actor_id: Option<String>,
    /// `api_key.create`, `api_key.revoke`, `auth.failed`, …
    pub action: &'static str,
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    /// The HTTP status answered, for API calls.
    pub status: Option<u16>,
    /// A JSON object of field → `[before, after]`.
    pub changes: Option<serde_json::Value>,
}

/// An event as stored.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: String,
    pub at: i64,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub status: Option<i64>,
    pub changes: Option<serde_json::Value>,
}

const COLUMNS: &str =
    "id, at, actor_type, actor_id, action, target, request_id, ip, status, changes";

const INSERT: &str = "INSERT INTO audit_events (id, account_id, livemode, at, actor_type, \
     actor_id, action, target, request_id, ip, status, changes) VALUES";
/// Values [`bind`] gives a row.
const INSERTED: usize = 12;

fn bind<'q>(query: Query<'q>, id: String, event: &NewAuditEvent, at: i64) -> Query<'q> {
    query
        .bind(id)
        .bind(event.account_id.clone())
        .bind(flag(event.livemode))
        .bind(at)
        .bind(event.actor_type)
        .bind(event.actor_id.clone())
        .bind(event.action)
        .bind(event.target.clone())
        .bind(event.request_id.clone())
        .bind(event.ip.clone())
        .bind(event.status.map(i64::from))
        .bind(event.changes.as_ref().map(|c| c.to_string()))
}

fn event(row: &AnyRow) -> Result<AuditEvent, sqlx::Error> {
    let changes: Option<String> = row.try_get(9)?;
    Ok(AuditEvent {
        id: row.try_get(0)?,
        at: row.try_get(1)?,
        actor_type: row.try_get(2)?,
        actor_id: row.try_get(3)?,
        action: row.try_get(4)?,
        target: row.try_get(5)?,
        request_id: row.try_get(6)?,
        ip: row.try_get(7)?,
        status: row.try_get(8)?,
        changes: changes.and_then(|c| serde_json::from_str(&c).ok()),
    })
}

impl Store {
    /// Appends `event` at `at` through `executor`: the transaction of the
    /// change it records, or the pool for an event that is the change.
    pub async fn append_audit<'c, E>(
        &self,
        executor: E,
        event: &NewAuditEvent,
        at: i64,
    ) -> Result<String, RegistryError>
    where
        E: Executor<'c, Database = Any>,
    {
        let id = ids::new_id("ae_")?;
        let sql = format!("{INSERT} {}", placeholders(1, INSERTED));
        bind(sqlx::query(&sql), id.clone(), event, at)
            .execute(executor)
            .await?;
        Ok(id)
    }

    /// Appends `events` (each with its time) in `tx`, a few statements
    /// for all: the audit rows of a group of changes.
    pub async fn append_audits(
        &self,
        tx: &mut Transaction<'static, Any>,
        events: &[(NewAuditEvent, i64)],
    ) -> Result<(), RegistryError> {
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            let sql = format!("{INSERT} {}", placeholders(chunk.len(), INSERTED));
            let mut query = sqlx::query(&sql);
            for (event, at) in chunk {
                query = bind(query, ids::new_id("ae_")?, event, *at);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Appends `event`, now, in a transaction of its own.
    pub async fn record(&self, event: &NewAuditEvent) -> Result<String, RegistryError> {
        self.append_audit(self.pool(), event, super::now_us()).await
    }

    /// A page of an account's events in one environment, newest first;
    /// `None` when `starting_after` is not one of them.
    pub async fn list_audit(
        &self,
        account_id: &str,
        environment: Environment,
        limit: u32,
        starting_after: Option<&str>,
    ) -> Result<Option<Vec<AuditEvent>>, RegistryError> {
        let listing = super::Listing {
            select: format!("SELECT {COLUMNS} FROM audit_events"),
            alias: "",
            table: "audit_events",
            at: "at",
        };
        let Some(rows) = self
            .page(&listing, account_id, environment, limit, starting_after)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(rows.iter().map(event).collect::<Result<_, _>>()?))
    }
}
