//! The `batches` and `batch_items` tables: the durable queue of batch
//! work. A batch and all its rows are written in the transaction that
//! answers `202`; workers of any process claim pending rows a chunk at a
//! time, and mark each done in the transaction that writes what the row
//! made (`registry::batch`).

use std::collections::HashSet;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{flag, placeholders, Backend, Store, GONE_AFTER_US, ROWS_PER_STATEMENT};
use crate::registry::error::RegistryError;
use crate::registry::ids::Environment;

/// A row to write with its batch.
#[derive(Debug, Clone)]
pub struct ItemInput {
    pub row: i64,
    /// JSON of what the row holds.
    pub input: String,
    /// JSON `{code, param, message}` of a row that failed already (a CSV
    /// row that could not be read); `None` for a pending one.
    pub error: Option<String>,
}

/// A batch as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    pub id: String,
    pub account_id: String,
    pub environment: Environment,
    /// `issue` or `revoke`.
    pub kind: String,
    pub template_id: Option<String>,
    pub send_email: bool,
    pub reason: Option<String>,
    /// JSON of who asked.
    pub actor: String,
    pub total: i64,
    pub completed: i64,
    pub failed: i64,
    /// `processing` or `completed`.
    pub status: String,
    pub created_at: i64,
    pub completed_at: Option<i64>,
}

/// A row of a batch as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItem {
    pub row: i64,
    /// `pending`, `completed` or `failed`.
    pub status: String,
    pub certificate_id: Option<String>,
    /// JSON `{code, param, message}` of a failed row.
    pub error: Option<String>,
}

/// How a row ended, to be written with what it made.
#[derive(Debug, Clone)]
pub struct RowOutcome {
    pub row: i64,
    /// The certificate made or revoked (or named, for a revocation that
    /// failed).
    pub certificate_id: Option<String>,
    /// JSON `{code, param, message}` when the row failed.
    pub error: Option<String>,
}

/// The batch's counts after a chunk, read in the chunk's transaction.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub total: i64,
    pub completed: i64,
    pub failed: i64,
}

const COLUMNS: &str = "id, account_id, livemode, kind, template_id, send_email, reason, actor, \
     total, completed, failed, status, created_at, completed_at";

fn batch(row: &AnyRow) -> Result<BatchRecord, sqlx::Error> {
    Ok(BatchRecord {
        id: row.try_get(0)?,
        account_id: row.try_get(1)?,
        environment: Environment::from_live(row.try_get::<i64, _>(2)? != 0),
        kind: row.try_get(3)?,
        template_id: row.try_get(4)?,
        send_email: row.try_get::<i64, _>(5)? != 0,
        reason: row.try_get(6)?,
        actor: row.try_get(7)?,
        total: row.try_get(8)?,
        completed: row.try_get(9)?,
        failed: row.try_get(10)?,
        status: row.try_get(11)?,
        created_at: row.try_get(12)?,
        completed_at: row.try_get(13)?,
    })
}

impl Store {
    /// Writes `record` and its items, in `tx`.
    pub async fn insert_batch(
        &self,
        tx: &mut Transaction<'static, Any>,
        record: &BatchRecord,
        inputs: &[ItemInput],
    ) -> Result<(), RegistryError> {
        sqlx::query(&format!(
            "INSERT INTO batches ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(record.id.clone())
        .bind(record.account_id.clone())
        .bind(flag(record.environment.is_live()))
        .bind(record.kind.clone())
        .bind(record.template_id.clone())
        .bind(flag(record.send_email))
        .bind(record.reason.clone())
        .bind(record.actor.clone())
        .bind(record.total)
        .bind(record.completed)
        .bind(record.failed)
        .bind(record.status.clone())
        .bind(record.created_at)
        .bind(record.completed_at)
        .execute(&mut **tx)
        .await?;
        for chunk in inputs.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO batch_items (batch_id, row_number, input, status, error, done_at) \
                 VALUES {}",
                placeholders(chunk.len(), 6)
            );
            let mut query = sqlx::query(&sql);
            for item in chunk {
                let failed = item.error.is_some();
                query = query
                    .bind(record.id.clone())
                    .bind(item.row)
                    .bind(item.input.clone())
                    .bind(if failed { "failed" } else { "pending" })
                    .bind(item.error.clone())
                    .bind(failed.then_some(record.created_at));
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The batch `id` of this account and environment; another's is
    /// `None`.
    pub async fn batch(
        &self,
        id: &str,
        account_id: &str,
        environment: Environment,
    ) -> Result<Option<BatchRecord>, RegistryError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM batches WHERE id = $1 AND account_id = $2 AND livemode = $3"
        ))
        .bind(id)
        .bind(account_id)
        .bind(flag(environment.is_live()))
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(batch).transpose()?)
    }

    /// Batches still processing, oldest first, at most `limit`.
    pub async fn processing_batches(&self, limit: u32) -> Result<Vec<BatchRecord>, RegistryError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM batches WHERE status = 'processing' \
             ORDER BY created_at, id LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(batch).collect::<Result<_, _>>()?)
    }

    /// A page of `batch_id`'s items after row `after`, in row order,
    /// one more than `limit` to tell whether more follow; only those of
    /// `status` when given.
    pub async fn batch_items(
        &self,
        batch_id: &str,
        after: i64,
        limit: u32,
        status: Option<&str>,
    ) -> Result<Vec<BatchItem>, RegistryError> {
        let filter = if status.is_some() {
            " AND status = $4"
        } else {
            ""
        };
        let sql = format!(
            "SELECT row_number, status, certificate_id, error FROM batch_items \
             WHERE batch_id = $1 AND row_number > $2{filter} ORDER BY row_number LIMIT $3"
        );
        let mut query = sqlx::query(&sql)
            .bind(batch_id)
            .bind(after)
            .bind(i64::from(limit) + 1);
        if let Some(status) = status {
            query = query.bind(status);
        }
        let rows = query.fetch_all(self.pool()).await?;
        let item = |row: &AnyRow| -> Result<BatchItem, sqlx::Error> {
            Ok(BatchItem {
                row: row.try_get(0)?,
                status: row.try_get(1)?,
                certificate_id: row.try_get(2)?,
                error: row.try_get(3)?,
            })
        };
        Ok(rows.iter().map(item).collect::<Result<_, _>>()?)
    }

    /// Claims up to `limit` pending rows of `batch_id` for this process:
    /// rows nobody claimed, this process's own, or those of a process
    /// gone at `now`. Answers (row, input) in row order. On PostgreSQL,
    /// rows another worker is claiming at the same moment are skipped,
    /// not waited for.
    pub async fn claim_rows(
        &self,
        batch_id: &str,
        limit: u32,
        now: i64,
    ) -> Result<Vec<(i64, String)>, RegistryError> {
        let skip = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let rows = sqlx::query(&format!(
            "UPDATE batch_items SET claimed_by = $1, claimed_at = $2 \
             WHERE batch_id = $3 AND row_number IN (\
               SELECT row_number FROM batch_items i WHERE i.batch_id = $3 \
               AND i.status = 'pending' AND (i.claimed_by IS NULL OR i.claimed_by = $1 \
                 OR NOT EXISTS (SELECT 1 FROM instances s \
                                WHERE s.id = i.claimed_by AND s.seen_at > $4)) \
               ORDER BY i.row_number LIMIT $5{skip}) \
             RETURNING row_number, input"
        ))
        .bind(self.instance().to_owned())
        .bind(now)
        .bind(batch_id)
        .bind(now - GONE_AFTER_US)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        let mut claimed = rows
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<Vec<(i64, String)>, sqlx::Error>>()?;
        claimed.sort_unstable_by_key(|(row, _)| *row);
        Ok(claimed)
    }

    /// Which of `rows` of `batch_id` are still pending, read in `tx` and
    /// held until it ends: on PostgreSQL locked (`FOR UPDATE`), so a
    /// second worker's chunk waits and then finds them done; SQLite's
    /// `BEGIN IMMEDIATE` already holds the one write lock. Only those may
    /// be written: the others were finished by another worker first.
    pub async fn pending_rows(
        &self,
        tx: &mut Transaction<'static, Any>,
        batch_id: &str,
        rows: &[i64],
    ) -> Result<HashSet<i64>, RegistryError> {
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let mut pending = HashSet::with_capacity(rows.len());
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT row_number FROM batch_items WHERE batch_id = $1 AND status = 'pending' \
                 AND row_number IN ({}){lock}",
                list.join(", ")
            );
            let mut query = sqlx::query_scalar::<_, i64>(&sql).bind(batch_id);
            for row in chunk {
                query = query.bind(*row);
            }
            pending.extend(query.fetch_all(&mut **tx).await?);
        }
        Ok(pending)
    }

    /// Marks `outcomes`' rows of `batch_id` done at `now`, in `tx`, in a
    /// few statements for all: rows [`Store::pending_rows`] found pending.
    pub async fn finish_rows(
        &self,
        tx: &mut Transaction<'static, Any>,
        batch_id: &str,
        outcomes: &[RowOutcome],
        now: i64,
    ) -> Result<(), RegistryError> {
        for chunk in outcomes.chunks(ROWS_PER_STATEMENT) {
            // Every row exists: the upsert only ever updates, and is one
            // statement where an `UPDATE` would be one per row.
            let sql = format!(
                "INSERT INTO batch_items (batch_id, row_number, input, status, certificate_id, \
                 error, done_at) VALUES {} ON CONFLICT (batch_id, row_number) DO UPDATE SET \
                 status = excluded.status, certificate_id = excluded.certificate_id, \
                 error = excluded.error, done_at = excluded.done_at",
                placeholders(chunk.len(), 7)
            );
            let mut query = sqlx::query(&sql);
            for outcome in chunk {
                let status = if outcome.error.is_some() {
                    "failed"
                } else {
                    "completed"
                };
                query = query
                    .bind(batch_id.to_owned())
                    .bind(outcome.row)
                    .bind("")
                    .bind(status)
                    .bind(outcome.certificate_id.clone())
                    .bind(outcome.error.clone())
                    .bind(now);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Adds a chunk's rows to the batch's counts, in `tx`, and answers
    /// the counts after it. The `UPDATE` locks the batch's row until `tx`
    /// ends, so chunks of one batch finishing at once count one after the
    /// other, and exactly one sees the last row done.
    pub async fn count_rows(
        &self,
        tx: &mut Transaction<'static, Any>,
        batch_id: &str,
        completed: i64,
        failed: i64,
    ) -> Result<Counts, RegistryError> {
        let row = sqlx::query(
            "UPDATE batches SET completed = completed + $1, failed = failed + $2 \
             WHERE id = $3 RETURNING total, completed, failed",
        )
        .bind(completed)
        .bind(failed)
        .bind(batch_id)
        .fetch_one(&mut **tx)
        .await?;
        Ok(Counts {
            total: row.try_get(0)?,
            completed: row.try_get(1)?,
            failed: row.try_get(2)?,
        })
    }

    /// Marks the batch completed at `now`, in `tx`; `false` when it
    /// already was.
    pub async fn complete_batch(
        &self,
        tx: &mut Transaction<'static, Any>,
        batch_id: &str,
        now: i64,
    ) -> Result<bool, RegistryError> {
        let done = sqlx::query(
            "UPDATE batches SET status = 'completed', completed_at = $1 \
             WHERE id = $2 AND status = 'processing'",
        )
        .bind(now)
        .bind(batch_id)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
