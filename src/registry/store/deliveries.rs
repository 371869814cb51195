//! The `webhook_deliveries` and `webhook_attempts` tables: the sender's
//! queue and its log.
//!
//! Three steps, each one transaction, each safe to repeat after a crash:
//! [`Store::fan_out`] turns undelivered events into one pending delivery
//! per matching enabled endpoint and marks the events delivered;
//! [`Store::claim_due`] leases due deliveries to this process;
//! [`Store::record_outcomes`] writes what the attempts did. On PostgreSQL
//! the rows the first two read are locked with `FOR UPDATE SKIP LOCKED`,
//! so processes sharing the database take disjoint work instead of
//! waiting on each other; SQLite has one writer (`BEGIN IMMEDIATE`). A
//! lease held by a process that stopped writing its heartbeat is taken
//! over at once, any other once it ends.

use std::collections::{HashMap, HashSet};

use sqlx::any::AnyRow;
use sqlx::{Any, Row};

use super::{flag, Backend, NewAuditEvent, Store, GONE_AFTER_US};
use crate::registry::error::RegistryError;
use crate::registry::ids::{self, Environment};

/// Rows written by one statement (well inside both databases' bounds on
/// bound values).
const CHUNK: usize = 100;

/// An event as the sender sends it.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub id: String,
    pub account_id: String,
    pub livemode: bool,
    pub kind: String,
    pub certificate_id: Option<String>,
    /// The stored JSON, as stored.
    pub data: String,
    pub created_at: i64,
}

/// A delivery leased to this process, with what sending it needs.
#[derive(Clone)]
pub struct Due {
    pub delivery_id: String,
    pub endpoint_id: String,
    /// Attempts made before this one.
    pub attempts: i64,
    pub event: OutboxEvent,
    pub url: String,
    /// The endpoint's `whsec_…`; never logged.
    pub secret: String,
}

/// What one attempt did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub delivery_id: String,
    pub endpoint_id: String,
    pub account_id: String,
    pub livemode: bool,
    pub event_id: String,
    pub event_type: String,
    /// 1 for the first.
    pub attempt: i64,
    pub succeeded: bool,
    pub response_status: Option<u16>,
    pub error: Option<String>,
    pub excerpt: Option<String>,
    pub at: i64,
    pub duration_us: i64,
    /// When to try again after a failure; `None` gives the delivery up.
    pub retry_at: Option<i64>,
}

const EVENT_COLUMNS: &str =
    "e.id, e.account_id, e.livemode, e.type, e.certificate_id, e.data, e.created_at";

fn outbox_event(row: &AnyRow, from: usize) -> Result<OutboxEvent, sqlx::Error> {
    Ok(OutboxEvent {
        id: row.try_get(from)?,
        account_id: row.try_get(from + 1)?,
        livemode: row.try_get::<i64, _>(from + 2)? != 0,
        kind: row.try_get(from + 3)?,
        certificate_id: row.try_get(from + 4)?,
        data: row.try_get(from + 5)?,
        created_at: row.try_get(from + 6)?,
    })
}

/// `$from, $from+1, …` for `n` values.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// `FOR UPDATE SKIP LOCKED` (of `table`) where the database has it.
    fn skip_locked(&self, table: &str) -> String {
        match self.backend {
            Backend::Postgres => format!(" FOR UPDATE OF {table} SKIP LOCKED"),
            Backend::Sqlite => String::new(),
        }
    }

    /// Fans up to `limit` undelivered events out to their endpoints;
    /// answers how many events it took.
    pub async fn fan_out(&self, limit: i64, now: i64) -> Result<usize, RegistryError> {
        // A read first: an idle worker must not take SQLite's write lock
        // every poll, which other writers (the CLI too) would wait on.
        let any: Option<String> =
            sqlx::query_scalar("SELECT id FROM events WHERE delivered_at IS NULL LIMIT 1")
                .fetch_optional(self.pool())
                .await?;
        if any.is_none() {
            return Ok(0);
        }
        let mut tx = self.begin().await?;
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events e WHERE e.delivered_at IS NULL \
             ORDER BY e.created_at, e.id LIMIT $1{}",
            self.skip_locked("e")
        ))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let events: Vec<OutboxEvent> = rows
            .iter()
            .map(|r| outbox_event(r, 0))
            .collect::<Result<_, _>>()?;
        let mut endpoints = HashMap::new();
        let mut deliveries: Vec<(String, String, String)> = Vec::new();
        for event in &events {
            let owner = (event.account_id.clone(), event.livemode);
            if !endpoints.contains_key(&owner) {
                let found = self.enabled_endpoints(&mut *tx, &owner.0, owner.1).await?;
                endpoints.insert(owner.clone(), found);
            }
            for endpoint in endpoints.get(&owner).into_iter().flatten() {
                if endpoint.wants(&event.kind) {
                    deliveries.push((ids::new_id("whd_")?, event.id.clone(), endpoint.id.clone()));
                }
            }
        }
        self.insert_deliveries(&mut tx, &deliveries, now).await?;
        for chunk in events.chunks(CHUNK) {
            let sql = format!(
                "UPDATE events SET delivered_at = $1 WHERE id IN ({})",
                placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(now);
            for event in chunk {
                query = query.bind(event.id.clone());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(events.len())
    }

    /// Inserts pending deliveries (id, event, endpoint), due at `now`.
    async fn insert_deliveries(
        &self,
        tx: &mut sqlx::Transaction<'static, Any>,
        deliveries: &[(String, String, String)],
        now: i64,
    ) -> Result<(), RegistryError> {
        for chunk in deliveries.chunks(CHUNK) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = 2 + i * 3;
                    format!("(${b}, ${}, ${}, 'pending', 0, $1, $1)", b + 1, b + 2)
                })
                .collect();
            let sql = format!(
                "INSERT INTO webhook_deliveries \
                 (id, event_id, endpoint_id, state, attempts, next_attempt_at, created_at) \
                 VALUES {}",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(now);
            for (id, event, endpoint) in chunk {
                query = query
                    .bind(id.clone())
                    .bind(event.clone())
                    .bind(endpoint.clone());
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Leases to this process, until `lease_until`, up to `limit` due
    /// deliveries of enabled endpoints, at most `room(endpoint)` of each;
    /// none of the endpoints in `full`, which have no room.
    pub async fn claim_due(
        &self,
        now: i64,
        limit: usize,
        lease_until: i64,
        room: &(dyn Fn(&str) -> usize + Send + Sync),
        full: &[String],
    ) -> Result<Vec<Due>, RegistryError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // As in `fan_out`: no write lock while nothing is due.
        let any: Option<String> = sqlx::query_scalar(
            "SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1 \
             LIMIT 1",
        )
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        if any.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        // Endpoints without room are left out, and twice the limit is
        // read, so one endpoint's backlog hides the others' due
        // deliveries for a round at most.
        let skip = if full.is_empty() {
            String::new()
        } else {
            format!(
                " AND d.endpoint_id NOT IN ({})",
                placeholders(4, full.len())
            )
        };
        let sql = format!(
            "SELECT d.id, d.endpoint_id FROM webhook_deliveries d \
             JOIN webhook_endpoints w ON w.id = d.endpoint_id \
             WHERE d.state = 'pending' AND d.next_attempt_at <= $1 AND w.disabled = 0 \
             AND (d.claimed_until IS NULL OR d.claimed_until < $1 \
                  OR d.claimed_by IN (SELECT id FROM instances WHERE seen_at < $2)){skip} \
             ORDER BY d.next_attempt_at LIMIT $3{}",
            self.skip_locked("d")
        );
        let mut query = sqlx::query(&sql)
            .bind(now)
            .bind(now - GONE_AFTER_US)
            .bind(i64::try_from(limit.saturating_mul(2)).unwrap_or(i64::MAX));
        for endpoint in full {
            query = query.bind(endpoint.clone());
        }
        let rows = query.fetch_all(&mut *tx).await?;
        let mut taken: HashMap<String, usize> = HashMap::new();
        let mut chosen = Vec::new();
        for row in &rows {
            let id: String = row.try_get(0)?;
            let endpoint: String = row.try_get(1)?;
            let count = taken.entry(endpoint.clone()).or_insert(0);
            if *count < room(&endpoint) && chosen.len() < limit {
                *count += 1;
                chosen.push(id);
            }
        }
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        let mut due = Vec::with_capacity(chosen.len());
        for chunk in chosen.chunks(CHUNK) {
            let sql = format!(
                "UPDATE webhook_deliveries SET claimed_by = $1, claimed_until = $2 \
                 WHERE id IN ({})",
                placeholders(3, chunk.len())
            );
            let mut query = sqlx::query(&sql)
                .bind(self.instance.to_string())
                .bind(lease_until);
            for id in chunk {
                query = query.bind(id.clone());
            }
            query.execute(&mut *tx).await?;
            let sql = format!(
                "SELECT d.id, d.endpoint_id, d.attempts, w.url, w.secret, {EVENT_COLUMNS} \
                 FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id \
                 JOIN events e ON e.id = d.event_id WHERE d.id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id.clone());
            }
            for row in query.fetch_all(&mut *tx).await? {
                due.push(Due {
                    delivery_id: row.try_get(0)?,
                    endpoint_id: row.try_get(1)?,
                    attempts: row.try_get(2)?,
                    url: row.try_get(3)?,
                    secret: row.try_get(4)?,
                    event: outbox_event(&row, 5)?,
                });
            }
        }
        tx.commit().await?;
        Ok(due)
    }

    /// Writes `outcomes` in one transaction: each attempt in the log, its
    /// delivery settled or rescheduled (when this process still holds
    /// it), and each endpoint's run of failures, disabling (with an audit
    /// row) one whose failures began at or before `disable_before`.
    /// Answers the endpoints it disabled.
    pub async fn record_outcomes(
        &self,
        outcomes: &[Outcome],
        now: i64,
        disable_before: i64,
    ) -> Result<Vec<String>, RegistryError> {
        let mut tx = self.begin().await?;
        let instance = self.instance.to_string();
        // The last outcome of each endpoint in this batch says whether it
        // is failing now.
        let mut last: HashMap<&str, &Outcome> = HashMap::new();
        for outcome in outcomes {
            sqlx::query(
                "INSERT INTO webhook_attempts (id, delivery_id, endpoint_id, account_id, livemode, \
                 event_id, event_type, attempt, outcome, response_status, error, \
                 response_excerpt, duration_us, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(ids::new_id("wha_")?)
            .bind(outcome.delivery_id.clone())
            .bind(outcome.endpoint_id.clone())
            .bind(outcome.account_id.clone())
            .bind(flag(outcome.livemode))
            .bind(outcome.event_id.clone())
            .bind(outcome.event_type.clone())
            .bind(outcome.attempt)
            .bind(if outcome.succeeded { "succeeded" } else { "failed" })
            .bind(outcome.response_status.map(i64::from))
            .bind(outcome.error.clone())
            .bind(outcome.excerpt.clone())
            .bind(outcome.duration_us)
            .bind(outcome.at)
            .execute(&mut *tx)
            .await?;
            let settle = match (outcome.succeeded, outcome.retry_at) {
                (true, _) => sqlx::query(
                    "UPDATE webhook_deliveries SET state = 'succeeded', attempts = $1, \
                     delivered_at = $2, claimed_by = NULL, claimed_until = NULL \
                     WHERE id = $3 AND claimed_by = $4",
                )
                .bind(outcome.attempt)
                .bind(now),
                (false, Some(retry_at)) => sqlx::query(
                    "UPDATE webhook_deliveries SET attempts = $1, next_attempt_at = $2, \
                     claimed_by = NULL, claimed_until = NULL WHERE id = $3 AND claimed_by = $4",
                )
                .bind(outcome.attempt)
                .bind(retry_at),
                (false, None) => sqlx::query(
                    "UPDATE webhook_deliveries SET state = 'failed', attempts = $1, \
                     next_attempt_at = $2, claimed_by = NULL, claimed_until = NULL \
                     WHERE id = $3 AND claimed_by = $4",
                )
                .bind(outcome.attempt)
                .bind(now),
            };
            settle
                .bind(outcome.delivery_id.clone())
                .bind(instance.clone())
                .execute(&mut *tx)
                .await?;
            last.insert(&outcome.endpoint_id, outcome);
        }
        let mut disabled = Vec::new();
        for (endpoint, outcome) in last {
            if outcome.succeeded {
                sqlx::query(
                    "UPDATE webhook_endpoints SET failing_since = NULL \
                     WHERE id = $1 AND failing_since IS NOT NULL",
                )
                .bind(endpoint.to_owned())
                .execute(&mut *tx)
                .await?;
                continue;
            }
            sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = $1 \
                 WHERE id = $2 AND failing_since IS NULL",
            )
            .bind(outcome.at)
            .bind(endpoint.to_owned())
            .execute(&mut *tx)
            .await?;
            let done = sqlx::query(
                "UPDATE webhook_endpoints SET disabled = 1, disabled_reason = 'failing', \
                 disabled_at = $1, updated_at = $1 \
                 WHERE id = $2 AND disabled = 0 AND failing_since <= $3",
            )
            .bind(now)
            .bind(endpoint.to_owned())
            .bind(disable_before)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                let audit = NewAuditEvent {
                    account_id: Some(outcome.account_id.clone()),
                    livemode: outcome.livemode,
                    actor_type: "system",
                    action: "webhook_endpoint.disable",
                    target: Some(endpoint.to_owned()),
                    changes: Some(serde_json::json!({
                        "disabled": [false, true],
                        "disabled_reason": [null, "failing"],
                    })),
                    ..NewAuditEvent::default()
                };
                self.append_audit(&mut *tx, &audit, now).await?;
                disabled.push(endpoint.to_owned());
            }
        }
        tx.commit().await?;
        Ok(disabled)
    }

    /// The event `id` when it belongs to this account and environment.
    pub async fn outbox_event(
        &self,
        id: &str,
        account_id: &str,
        environment: Environment,
    ) -> Result<Option<OutboxEvent>, RegistryError> {
        let row = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events e \
             WHERE e.id = $1 AND e.account_id = $2 AND e.livemode = $3"
        ))
        .bind(id.to_owned())
        .bind(account_id.to_owned())
        .bind(flag(environment.is_live()))
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(|r| outbox_event(r, 0)).transpose()?)
    }

    /// New pending deliveries of event `event_id` to `endpoints`, due now,
    /// in the caller's transaction; answers their ids.
    pub async fn redeliver(
        &self,
        tx: &mut sqlx::Transaction<'static, Any>,
        event_id: &str,
        endpoints: &[String],
        now: i64,
    ) -> Result<Vec<String>, RegistryError> {
        let rows = endpoints
            .iter()
            .map(|e| Ok((ids::new_id("whd_")?, event_id.to_owned(), e.clone())))
            .collect::<Result<Vec<_>, RegistryError>>()?;
        self.insert_deliveries(tx, &rows, now).await?;
        Ok(rows.into_iter().map(|(id, _, _)| id).collect())
    }

    /// Pending deliveries, by endpoint, for tests and the bench.
    pub async fn pending_deliveries(&self) -> Result<HashSet<String>, RegistryError> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM webhook_deliveries WHERE state = 'pending'")
                .fetch_all(self.pool())
                .await?;
        Ok(ids.into_iter().collect())
    }
}
