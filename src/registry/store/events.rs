//! The `events` table, the outbox: an event is appended in the
//! transaction of the change it reports, so a crash can delay its
//! delivery but never lose it. The webhook worker delivers from it
//! (`registry::webhook::deliver`).

use sqlx::{Any, Executor, Row, Transaction};

use super::{flag, placeholders, Query, Store, ROWS_PER_STATEMENT};
use crate::registry::error::RegistryError;
use crate::registry::ids;

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub account_id: &'a str,
    pub livemode: bool,
    /// `certificate.issued`, `certificate.updated`, `certificate.revoked`.
    pub kind: &'static str,
    pub certificate_id: Option<&'a str>,
    pub data: serde_json::Value,
}

/// An event as stored, for the sender and for tests.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: String,
    pub kind: String,
    pub certificate_id: Option<String>,
    pub data: serde_json::Value,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

const INSERT: &str =
    "INSERT INTO events (id, account_id, livemode, type, certificate_id, data, created_at) VALUES";
/// Values [`bind`] gives a row.
const INSERTED: usize = 7;

fn bind<'q>(query: Query<'q>, id: String, event: &NewEvent<'_>, at: i64) -> Query<'q> {
    query
        .bind(id)
        .bind(event.account_id.to_owned())
        .bind(flag(event.livemode))
        .bind(event.kind)
        .bind(event.certificate_id.map(str::to_owned))
        .bind(event.data.to_string())
        .bind(at)
}

impl Store {
    /// Appends `event` at `at` inside the caller's transaction.
    pub async fn append_event<'c, E>(
        &self,
        executor: E,
        event: &NewEvent<'_>,
        at: i64,
    ) -> Result<String, RegistryError>
    where
        E: Executor<'c, Database = Any>,
    {
        let id = ids::new_id("evt_")?;
        let sql = format!("{INSERT} {}", placeholders(1, INSERTED));
        bind(sqlx::query(&sql), id.clone(), event, at)
            .execute(executor)
            .await?;
        Ok(id)
    }

    /// Appends `events` (each with its time) in `tx`, a few statements
    /// for all: the events of a group of changes.
    pub async fn append_events(
        &self,
        tx: &mut Transaction<'static, Any>,
        events: &[(NewEvent<'_>, i64)],
    ) -> Result<(), RegistryError> {
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            let sql = format!("{INSERT} {}", placeholders(chunk.len(), INSERTED));
            let mut query = sqlx::query(&sql);
            for (event, at) in chunk {
                query = bind(query, ids::new_id("evt_")?, event, *at);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The events of one certificate, oldest first.
    pub async fn events_of(&self, certificate_id: &str) -> Result<Vec<StoredEvent>, RegistryError> {
        let rows = sqlx::query(
            "SELECT id, type, certificate_id, data, created_at, delivered_at FROM events \
             WHERE certificate_id = $1 ORDER BY created_at, id",
        )
        .bind(certificate_id)
        .fetch_all(self.pool())
        .await?;
        let event = |row: &sqlx::any::AnyRow| -> Result<StoredEvent, sqlx::Error> {
            let data: String = row.try_get(3)?;
            Ok(StoredEvent {
                id: row.try_get(0)?,
                kind: row.try_get(1)?,
                certificate_id: row.try_get(2)?,
                data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                created_at: row.try_get(4)?,
                delivered_at: row.try_get(5)?,
            })
        };
        Ok(rows.iter().map(event).collect::<Result<_, _>>()?)
    }
}
