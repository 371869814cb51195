//! The `idempotency_keys` table: claims on the `Idempotency-Key`s of
//! `POST`s, and the answers they keep for 24 hours.
//!
//! # Why a key makes at most one change
//!
//! A request claims its key with an `INSERT … ON CONFLICT DO NOTHING`,
//! committed on its own before any work starts, so a concurrent retry
//! reads the claim and is told the key is in use. The work's own
//! transaction then finishes the claim ([`Store::keep_reply`]) with an
//! `UPDATE` that names the claim's random token and requires the row
//! still in progress; when that touches no row, the transaction fails and
//! its change is never committed. The certificate (or key) and the answer
//! that reports it are therefore committed together or not at all.
//!
//! A claim left by a crash (`kill -9` mid-request) would hold its key
//! forever, so it is taken over by the next retry, under a new token, as
//! soon as the process that made it is seen to be gone (it stopped
//! writing its heartbeat to `instances`, a few seconds), or once it is
//! older than [`ABANDONED_AFTER_US`] whoever holds it. Should the first request still be alive
//! after all, its finishing `UPDATE` finds the other token, and its work
//! rolls back. Both databases make two `UPDATE`s of one row wait for each
//! other (PostgreSQL locks the row and re-checks the condition once the
//! first commits; SQLite has one writer), so exactly one transaction ever
//! finishes a claim.
//!
//! The claim is not made inside the work's transaction instead because
//! that transaction is kept short on purpose: a certificate's template
//! check (render work) runs before it, and a claim held in a transaction
//! would make retries wait on SQLite's write lock instead of being
//! answered `idempotency_key_in_use`.

use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row, Transaction};

use super::{flag, Store};
use crate::registry::error::RegistryError;
use crate::registry::ids::{self, Environment};

/// How long a key's answer is kept, from the key's first use.
pub const KEPT_FOR_US: i64 = 24 * 60 * 60 * 1_000_000;

/// How old an unfinished claim must be to count as abandoned by a
/// crashed request. Well past what a request can take: its template check
/// stops at `render_timeout_ms` (10 s by default), and the database waits
/// at most 5 s for a connection and 5 s for SQLite's write lock. Taking
/// over a claim too early costs a retry an `idempotency_key_in_use`
/// (never a second change, see the module's doc); too late only delays
/// the retry of a request whose server died.
pub const ABANDONED_AFTER_US: i64 = 60_000_000;

/// How often a claim is tried again when its row changed between the
/// read and the write (another request claimed, finished or purged it).
const MAX_CLAIM_ATTEMPTS: u32 = 4;

const IN_PROGRESS: &str = "in_progress";
const DONE: &str = "done";

/// The message of a change refused because its claim was taken over.
pub const TAKEN_OVER: &str = "another request took this idempotency key over";

/// Whose key: an account in one environment, and the client's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub account_id: String,
    pub environment: Environment,
    /// The `Idempotency-Key` header, already checked.
    pub key: String,
}

/// A key claimed by one request, which alone may finish it.
#[derive(Debug, Clone)]
pub struct Claim {
    key: IdempotencyKey,
    /// Random, per claim.
    token: String,
}

/// An answer kept for replay: the status and the JSON body as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptAnswer {
    pub status: u16,
    pub body: String,
}

/// What a claim found.
#[derive(Debug, Clone)]
pub enum Claimed {
    /// The key is this request's: do the work, then keep the answer.
    Fresh(Claim),
    /// The key's first request was answered this.
    Replay(KeptAnswer),
    /// The key was used with another request (method, path or body).
    Reused,
    /// The key's first request is still being worked on.
    InUse,
}

/// The answer a change keeps for its key, written in the change's own
/// transaction (by [`Store::keep_reply`]) so both commit together.
pub struct Reply<'a, T> {
    pub claim: &'a Claim,
    /// Makes the answer from what the change produced, inside its
    /// transaction.
    pub answer: &'a (dyn Fn(&T) -> KeptAnswer + Send + Sync),
    /// Set once the answer is written, for the caller to know it need not
    /// keep one itself.
    pub kept: &'a AtomicBool,
}

/// A row as read.
struct Stored {
    fingerprint: String,
    state: String,
    claim: String,
    claimed_at: i64,
    status: Option<i64>,
    body: Option<String>,
    created_at: i64,
    /// The process holding the claim.
    instance: Option<String>,
}

fn stored(row: &AnyRow) -> Result<Stored, sqlx::Error> {
    Ok(Stored {
        fingerprint: row.try_get(0)?,
        state: row.try_get(1)?,
        claim: row.try_get(2)?,
        claimed_at: row.try_get(3)?,
        status: row.try_get(4)?,
        body: row.try_get(5)?,
        created_at: row.try_get(6)?,
        instance: row.try_get(7)?,
    })
}

/// What tells two requests apart: hex SHA-256 of the method, the path
/// and query (under `/v1`; batches take parameters in the query) and the
/// body's bytes. Neither a method nor a path holds a newline, so the
/// joined text reads one way only.
pub fn fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_bytes());
    hash.update(b"\n");
    hash.update(path_and_query.as_bytes());
    hash.update(b"\n");
    hash.update(body);
    hex::encode(hash.finalize())
}

const WHERE_KEY: &str = "account_id = $1 AND livemode = $2 AND idempotency_key = $3";

impl Store {
    /// Claims `key` for a request of `fingerprint` at `now`, or says why
    /// not: the key's answer, another request's use of it, or a claim
    /// still held. A row past its 24 hours is started afresh; a claim
    /// abandoned for [`ABANDONED_AFTER_US`] is taken over.
    pub async fn claim_idempotency(
        &self,
        key: &IdempotencyKey,
        fingerprint: &str,
        now: i64,
    ) -> Result<Claimed, RegistryError> {
        for _ in 0..MAX_CLAIM_ATTEMPTS {
            // Read first: a replay, the common retry, then writes nothing
            // and never waits for SQLite's write lock.
            let Some(row) = self.idempotency_row(key).await? else {
                let token = ids::new_id("")?;
                let inserted = sqlx::query(
                    "INSERT INTO idempotency_keys (account_id, livemode, idempotency_key, \
                     fingerprint, state, claim, claimed_at, created_at, instance) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) ON CONFLICT DO NOTHING",
                )
                .bind(key.account_id.clone())
                .bind(flag(key.environment.is_live()))
                .bind(key.key.clone())
                .bind(fingerprint.to_owned())
                .bind(IN_PROGRESS)
                .bind(token.clone())
                .bind(now)
                .bind(self.instance().to_owned())
                .execute(self.pool())
                .await?
                .rows_affected();
                if inserted == 1 {
                    self.purge_idempotency(now).await?;
                    return Ok(Claimed::Fresh(Claim {
                        key: key.clone(),
                        token,
                    }));
                }
                continue;
            };
            if row.created_at <= now - KEPT_FOR_US {
                // Past its 24 hours the key is new again, whatever it held.
                match self.retake(key, &row, fingerprint, now, now).await? {
                    Some(claim) => return Ok(Claimed::Fresh(claim)),
                    None => continue,
                }
            }
            if row.fingerprint != fingerprint {
                return Ok(Claimed::Reused);
            }
            if row.state == DONE {
                let (Some(status), Some(body)) = (row.status, row.body) else {
                    return Err(RegistryError::Database(
                        "an idempotency key is done without its answer".into(),
                    ));
                };
                let status = u16::try_from(status).map_err(|_| {
                    RegistryError::Database(format!("an idempotency key kept status {status}"))
                })?;
                return Ok(Claimed::Replay(KeptAnswer { status, body }));
            }
            // Held by a live process, and not for too long: in use. A
            // claim of a process seen to be gone (killed mid-request) is
            // taken over at once.
            if row.claimed_at > now - ABANDONED_AFTER_US
                && self.instance_alive(row.instance.as_deref(), now).await?
            {
                return Ok(Claimed::InUse);
            }
            match self
                .retake(key, &row, fingerprint, now, row.created_at)
                .await?
            {
                Some(claim) => return Ok(Claimed::Fresh(claim)),
                None => continue,
            }
        }
        Err(RegistryError::Unavailable(
            "an idempotency key kept changing while it was claimed".into(),
        ))
    }

    /// Writes `reply`'s answer for `value` inside `tx`, the transaction of
    /// the change that made `value`. Fails when the claim is no longer
    /// the reply's (taken over as abandoned): the change must then not
    /// commit. Without a reply (no `Idempotency-Key`) it does nothing.
    pub async fn keep_reply<T>(
        &self,
        tx: &mut Transaction<'static, Any>,
        reply: Option<&Reply<'_, T>>,
        value: &T,
    ) -> Result<(), RegistryError> {
        let Some(reply) = reply else {
            return Ok(());
        };
        let answer = (reply.answer)(value);
        if !self.keep_answer_in(&mut **tx, reply.claim, &answer).await? {
            return Err(RegistryError::Unavailable(TAKEN_OVER.into()));
        }
        reply.kept.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Writes `answer` for `claim` inside `tx`, like [`Store::keep_reply`]
    /// with the answer already made: for a change written by someone
    /// else's transaction (a group commit).
    pub async fn keep_answer_within(
        &self,
        tx: &mut Transaction<'static, Any>,
        claim: &Claim,
        answer: &KeptAnswer,
    ) -> Result<(), RegistryError> {
        if !self.keep_answer_in(&mut **tx, claim, answer).await? {
            return Err(RegistryError::Unavailable(TAKEN_OVER.into()));
        }
        Ok(())
    }

    /// Finishes `claim` with `answer`, on its own: for an answer no
    /// change's transaction wrote (a refusal). False when the claim is no
    /// longer held (taken over, or already finished).
    pub async fn keep_answer(
        &self,
        claim: &Claim,
        answer: &KeptAnswer,
    ) -> Result<bool, RegistryError> {
        self.keep_answer_in(self.pool(), claim, answer).await
    }

    /// The same through `executor`.
    async fn keep_answer_in<'c, E>(
        &self,
        executor: E,
        claim: &Claim,
        answer: &KeptAnswer,
    ) -> Result<bool, RegistryError>
    where
        E: Executor<'c, Database = Any>,
    {
        let done = sqlx::query(&format!(
            "UPDATE idempotency_keys SET state = $4, status = $5, body = $6 \
             WHERE {WHERE_KEY} AND claim = $7 AND state = $8"
        ))
        .bind(claim.key.account_id.clone())
        .bind(flag(claim.key.environment.is_live()))
        .bind(claim.key.key.clone())
        .bind(DONE)
        .bind(i64::from(answer.status))
        .bind(answer.body.clone())
        .bind(claim.token.clone())
        .bind(IN_PROGRESS)
        .execute(executor)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Gives `claim` up, so a retry runs the request again (after a
    /// failure that says nothing about the request: a 5xx, a conflict).
    /// False when the claim was no longer held.
    pub async fn release_claim(&self, claim: &Claim) -> Result<bool, RegistryError> {
        let released = sqlx::query(&format!(
            "DELETE FROM idempotency_keys WHERE {WHERE_KEY} AND claim = $4 AND state = $5"
        ))
        .bind(claim.key.account_id.clone())
        .bind(flag(claim.key.environment.is_live()))
        .bind(claim.key.key.clone())
        .bind(claim.token.clone())
        .bind(IN_PROGRESS)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(released == 1)
    }

    async fn idempotency_row(&self, key: &IdempotencyKey) -> Result<Option<Stored>, RegistryError> {
        let row = sqlx::query(&format!(
            "SELECT fingerprint, state, claim, claimed_at, status, body, created_at, instance \
             FROM idempotency_keys WHERE {WHERE_KEY}"
        ))
        .bind(key.account_id.clone())
        .bind(flag(key.environment.is_live()))
        .bind(key.key.clone())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(stored).transpose()?)
    }

    /// Claims the row `row` was read as, if it is still so (same claim
    /// token and state): a new token, in progress, no answer.
    async fn retake(
        &self,
        key: &IdempotencyKey,
        row: &Stored,
        fingerprint: &str,
        now: i64,
        created_at: i64,
    ) -> Result<Option<Claim>, RegistryError> {
        let token = ids::new_id("")?;
        let taken = sqlx::query(&format!(
            "UPDATE idempotency_keys SET fingerprint = $4, state = $5, claim = $6, \
             claimed_at = $7, status = NULL, body = NULL, created_at = $8, instance = $11 \
             WHERE {WHERE_KEY} AND claim = $9 AND state = $10"
        ))
        .bind(key.account_id.clone())
        .bind(flag(key.environment.is_live()))
        .bind(key.key.clone())
        .bind(fingerprint.to_owned())
        .bind(IN_PROGRESS)
        .bind(token.clone())
        .bind(now)
        .bind(created_at)
        .bind(row.claim.clone())
        .bind(row.state.clone())
        .bind(self.instance().to_owned())
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok((taken == 1).then(|| Claim {
            key: key.clone(),
            token,
        }))
    }

    /// Drops the rows past their 24 hours. Run when a key is first
    /// claimed, so the table holds about a day of keys.
    async fn purge_idempotency(&self, now: i64) -> Result<(), RegistryError> {
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at <= $1")
            .bind(now - KEPT_FOR_US)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
