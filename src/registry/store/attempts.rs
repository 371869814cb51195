//! The `webhook_attempts` table: the log of every attempt to send an
//! event to an endpoint, written by `Store::record_outcomes` and read by
//! `GET /v1/webhook_endpoints/{id}/deliveries`, newest first.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::Store;
use crate::registry::error::RegistryError;

/// An attempt as the log shows it.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub id: String,
    pub delivery_id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub attempt: i64,
    pub succeeded: bool,
    pub response_status: Option<i64>,
    pub error: Option<String>,
    pub excerpt: Option<String>,
    pub duration_us: i64,
    pub at: i64,
}

impl Store {
    /// A page of endpoint `endpoint_id`'s attempts, newest first, after
    /// the attempt `starting_after`; `None` when that names none of them.
    pub async fn list_attempts(
        &self,
        endpoint_id: &str,
        limit: u32,
        starting_after: Option<&str>,
    ) -> Result<Option<Vec<AttemptRecord>>, RegistryError> {
        const SELECT: &str = "SELECT id, delivery_id, endpoint_id, event_id, event_type, attempt, \
             outcome, response_status, error, response_excerpt, duration_us, at \
             FROM webhook_attempts WHERE endpoint_id = $1";
        let fetch = i64::from(limit) + 1;
        let rows = match starting_after {
            None => {
                sqlx::query(&format!("{SELECT} ORDER BY at DESC, id DESC LIMIT $2"))
                    .bind(endpoint_id.to_owned())
                    .bind(fetch)
                    .fetch_all(self.pool())
                    .await?
            }
            Some(cursor) => {
                let at: Option<i64> = sqlx::query_scalar(
                    "SELECT at FROM webhook_attempts WHERE id = $1 AND endpoint_id = $2",
                )
                .bind(cursor.to_owned())
                .bind(endpoint_id.to_owned())
                .fetch_optional(self.pool())
                .await?;
                let Some(at) = at else {
                    return Ok(None);
                };
                sqlx::query(&format!(
                    "{SELECT} AND at <= $2 AND (at < $2 OR id < $3) \
                     ORDER BY at DESC, id DESC LIMIT $4"
                ))
                .bind(endpoint_id.to_owned())
                .bind(at)
                .bind(cursor.to_owned())
                .bind(fetch)
                .fetch_all(self.pool())
                .await?
            }
        };
        let attempt = |row: &AnyRow| -> Result<AttemptRecord, sqlx::Error> {
            Ok(AttemptRecord {
                id: row.try_get(0)?,
                delivery_id: row.try_get(1)?,
                endpoint_id: row.try_get(2)?,
                event_id: row.try_get(3)?,
                event_type: row.try_get(4)?,
                attempt: row.try_get(5)?,
                succeeded: row.try_get::<String, _>(6)? == "succeeded",
                response_status: row.try_get(7)?,
                error: row.try_get(8)?,
                excerpt: row.try_get(9)?,
                duration_us: row.try_get(10)?,
                at: row.try_get(11)?,
            })
        };
        Ok(Some(rows.iter().map(attempt).collect::<Result<_, _>>()?))
    }
}
