//! The `certificates` table: one row per certificate, changed only inside
//! the transaction that also writes its audit row and outbox event.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row, Transaction};

use super::{flag, placeholders, Backend, Query, Store, ROWS_PER_STATEMENT};
use crate::registry::error::RegistryError;
use crate::registry::ids::Environment;

/// A certificate as stored. `status` is the stored one (`issued`,
/// `suspended`, `revoked`); `expired` is computed by
/// `certificate::status_of`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    pub id: String,
    pub account_id: String,
    pub environment: Environment,
    pub status: String,
    pub template_id: String,
    /// Hex SHA-256 version of the template when issued or corrected.
    pub template_hash: String,
    /// 32 random bytes, hex, for future commitments.
    pub salt: String,
    pub recipient_name: String,
    pub recipient_email: Option<String>,
    pub fields: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a certificate list is narrowed to, besides account and
/// environment.
#[derive(Debug, Clone, Default)]
pub struct CertificateFilter {
    pub status: Option<String>,
    pub template_id: Option<String>,
    pub recipient_email: Option<String>,
    /// Exclusive bounds on `created_at`, Unix microseconds.
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    /// `Some((true, now))`: only those expired at `now` (and not
    /// revoked); `Some((false, now))`: only those not expired at `now`.
    pub expired: Option<(bool, i64)>,
}

const COLUMNS: &str = "id, account_id, livemode, status, template_id, template_hash, salt, \
     recipient_name, recipient_email, fields, metadata, expires_at, revoked_at, \
     revocation_reason, created_at, updated_at";

fn json_map(text: &str) -> Result<BTreeMap<String, String>, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn json_text(map: &BTreeMap<String, String>) -> String {
    // A map of strings always serialises; "{}" is never reached.
    serde_json::to_string(map).unwrap_or_else(|_| "{}".into())
}

fn record(row: &AnyRow) -> Result<CertificateRecord, sqlx::Error> {
    Ok(CertificateRecord {
        id: row.try_get(0)?,
        account_id: row.try_get(1)?,
        environment: Environment::from_live(row.try_get::<i64, _>(2)? != 0),
        status: row.try_get(3)?,
        template_id: row.try_get(4)?,
        template_hash: row.try_get(5)?,
        salt: row.try_get(6)?,
        recipient_name: row.try_get(7)?,
        recipient_email: row.try_get(8)?,
        fields: json_map(&row.try_get::<String, _>(9)?)?,
        metadata: json_map(&row.try_get::<String, _>(10)?)?,
        expires_at: row.try_get(11)?,
        revoked_at: row.try_get(12)?,
        revocation_reason: row.try_get(13)?,
        created_at: row.try_get(14)?,
        updated_at: row.try_get(15)?,
    })
}

/// Binds every column of `c`, in [`COLUMNS`]' order.
fn bind<'q>(query: Query<'q>, c: &CertificateRecord) -> Query<'q> {
    query
        .bind(c.id.clone())
        .bind(c.account_id.clone())
        .bind(flag(c.environment.is_live()))
        .bind(c.status.clone())
        .bind(c.template_id.clone())
        .bind(c.template_hash.clone())
        .bind(c.salt.clone())
        .bind(c.recipient_name.clone())
        .bind(c.recipient_email.clone())
        .bind(json_text(&c.fields))
        .bind(json_text(&c.metadata))
        .bind(c.expires_at)
        .bind(c.revoked_at)
        .bind(c.revocation_reason.clone())
        .bind(c.created_at)
        .bind(c.updated_at)
}

impl Store {
    /// Inserts `certificates` in `tx`, a few statements for all: a group
    /// of new certificates.
    pub async fn insert_certificates(
        &self,
        tx: &mut Transaction<'static, Any>,
        certificates: &[&CertificateRecord],
    ) -> Result<(), RegistryError> {
        for chunk in certificates.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO certificates ({COLUMNS}) VALUES {}",
                placeholders(chunk.len(), 16)
            );
            let mut query = sqlx::query(&sql);
            for c in chunk {
                query = bind(query, c);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Writes every changeable column of `c` (the id, owner, salt and
    /// creation time never change).
    pub async fn update_certificate<'c, E>(
        &self,
        executor: E,
        c: &CertificateRecord,
    ) -> Result<(), RegistryError>
    where
        E: Executor<'c, Database = Any>,
    {
        sqlx::query(
            "UPDATE certificates SET status = $1, template_hash = $2, recipient_name = $3, \
             fields = $4, metadata = $5, expires_at = $6, revoked_at = $7, \
             revocation_reason = $8, updated_at = $9 WHERE id = $10",
        )
        .bind(c.status.clone())
        .bind(c.template_hash.clone())
        .bind(c.recipient_name.clone())
        .bind(json_text(&c.fields))
        .bind(json_text(&c.metadata))
        .bind(c.expires_at)
        .bind(c.revoked_at)
        .bind(c.revocation_reason.clone())
        .bind(c.updated_at)
        .bind(c.id.clone())
        .execute(executor)
        .await?;
        Ok(())
    }

    /// The certificate `id` of this account and environment; another's is
    /// `None`, as if it did not exist.
    pub async fn certificate(
        &self,
        id: &str,
        account_id: &str,
        environment: Environment,
    ) -> Result<Option<CertificateRecord>, RegistryError> {
        self.certificate_in(self.pool(), id, account_id, environment, "")
            .await
    }

    /// The certificate `id`, of whichever account and environment: for
    /// its public images and page, which the id alone unlocks.
    pub async fn certificate_by_id(
        &self,
        id: &str,
    ) -> Result<Option<CertificateRecord>, RegistryError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM certificates WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(record).transpose()?)
    }

    /// The same as `certificate`, inside the caller's transaction, locked until it ends:
    /// on PostgreSQL by `FOR UPDATE`, so two revocations of one
    /// certificate run one after the other (and the second sees the
    /// first); SQLite's `BEGIN IMMEDIATE` already holds the write lock.
    pub async fn certificate_for_update<'c, E>(
        &self,
        executor: E,
        id: &str,
        account_id: &str,
        environment: Environment,
    ) -> Result<Option<CertificateRecord>, RegistryError>
    where
        E: Executor<'c, Database = Any>,
    {
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        self.certificate_in(executor, id, account_id, environment, lock)
            .await
    }

    async fn certificate_in<'c, E>(
        &self,
        executor: E,
        id: &str,
        account_id: &str,
        environment: Environment,
        lock: &str,
    ) -> Result<Option<CertificateRecord>, RegistryError>
    where
        E: Executor<'c, Database = Any>,
    {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM certificates WHERE id = $1 AND account_id = $2 \
             AND livemode = $3{lock}"
        ))
        .bind(id)
        .bind(account_id)
        .bind(flag(environment.is_live()))
        .fetch_optional(executor)
        .await?;
        Ok(row.as_ref().map(record).transpose()?)
    }

    /// A page of certificates, newest first, after `starting_after`
    /// (whose place is looked up, so any depth costs the same); one more
    /// than `limit` is fetched to tell whether more follow. `None` when
    /// the cursor names no certificate of the caller's.
    pub async fn list_certificates(
        &self,
        account_id: &str,
        environment: Environment,
        filter: &CertificateFilter,
        limit: u32,
        starting_after: Option<&str>,
    ) -> Result<Option<Vec<CertificateRecord>>, RegistryError> {
        let cursor = match starting_after {
            None => None,
            Some(id) => {
                let at = self
                    .cursor_at("certificates", "created_at", id, account_id, environment)
                    .await?;
                match at {
                    Some(at) => Some((at, id)),
                    None => return Ok(None),
                }
            }
        };
        // The filters are fixed clauses with bound values; only which of
        // them appear varies, so no caller text ever reaches the SQL.
        let mut sql =
            format!("SELECT {COLUMNS} FROM certificates WHERE account_id = $1 AND livemode = $2");
        let mut n = 2;
        let mut clauses = Vec::new();
        if filter.status.is_some() {
            clauses.push(" AND status = ?");
        }
        if filter.template_id.is_some() {
            clauses.push(" AND template_id = ?");
        }
        if filter.recipient_email.is_some() {
            clauses.push(" AND recipient_email = ?");
        }
        if filter.created_after.is_some() {
            clauses.push(" AND created_at > ?");
        }
        if filter.created_before.is_some() {
            clauses.push(" AND created_at < ?");
        }
        match filter.expired {
            Some((true, _)) => clauses
                .push(" AND status <> 'revoked' AND expires_at IS NOT NULL AND expires_at <= ?"),
            Some((false, _)) => clauses.push(" AND (expires_at IS NULL OR expires_at > ?)"),
            None => {}
        }
        if cursor.is_some() {
            // `created_at <= ?` alone bounds the index range, so the page
            // starts at the cursor whatever its depth; the rest drops the
            // few rows of the cursor's own microsecond not before it. (An
            // `OR` of both conditions makes SQLite scan from the top.)
            clauses.push(" AND created_at <= ? AND (created_at < ? OR id < ?)");
        }
        clauses.push(" ORDER BY created_at DESC, id DESC LIMIT ?");
        for part in clauses.concat().split_inclusive('?') {
            match part.strip_suffix('?') {
                Some(text) => {
                    n += 1;
                    sql.push_str(&format!("{text}${n}"));
                }
                None => sql.push_str(part),
            }
        }
        let mut query = sqlx::query(&sql)
            .bind(account_id)
            .bind(flag(environment.is_live()));
        for text in [&filter.status, &filter.template_id, &filter.recipient_email]
            .into_iter()
            .flatten()
        {
            query = query.bind(text.clone());
        }
        for at in [filter.created_after, filter.created_before]
            .into_iter()
            .flatten()
        {
            query = query.bind(at);
        }
        if let Some((_, now)) = filter.expired {
            query = query.bind(now);
        }
        if let Some((at, id)) = cursor {
            query = query.bind(at).bind(at).bind(id.to_owned());
        }
        let rows = query
            .bind(i64::from(limit) + 1)
            .fetch_all(self.pool())
            .await?;
        Ok(Some(rows.iter().map(record).collect::<Result<_, _>>()?))
    }
}
