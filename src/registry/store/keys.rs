//! The `api_keys` table. Keys are found by the hash of their secret; the
//! secret itself never reaches the database.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::{flag, Store};
use crate::registry::error::RegistryError;
use crate::registry::ids::Environment;
use crate::registry::scope::Scopes;

/// A key as stored, with its account's rate limit.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub id: String,
    pub account_id: String,
    pub environment: Environment,
    /// The prefix and a few characters of the secret.
    pub redacted: String,
    pub scopes: Scopes,
    pub description: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// Requests a minute the account's plan allows each key.
    pub rate_limit_per_minute: i64,
}

/// A key to insert.
pub struct NewKey<'a> {
    pub id: &'a str,
    pub account_id: &'a str,
    pub environment: Environment,
    pub secret_hash: &'a str,
    pub redacted: &'a str,
    pub scopes: &'a Scopes,
    pub description: Option<&'a str>,
    pub created_at: i64,
}

const COLUMNS: &str = "k.id, k.account_id, k.livemode, k.redacted, k.scopes, k.description, \
     k.created_at, k.last_used_at, k.revoked_at, a.rate_limit_per_minute";
const FROM: &str = "FROM api_keys k JOIN accounts a ON a.id = k.account_id";

fn record(row: &AnyRow) -> Result<KeyRecord, sqlx::Error> {
    Ok(KeyRecord {
        id: row.try_get(0)?,
        account_id: row.try_get(1)?,
        environment: Environment::from_live(row.try_get::<i64, _>(2)? != 0),
        redacted: row.try_get(3)?,
        scopes: Scopes::from_stored(&row.try_get::<String, _>(4)?),
        description: row.try_get(5)?,
        created_at: row.try_get(6)?,
        last_used_at: row.try_get(7)?,
        revoked_at: row.try_get(8)?,
        rate_limit_per_minute: row.try_get(9)?,
    })
}

impl Store {
    /// Inserts a key inside the caller's transaction.
    pub async fn insert_key<'c, E>(
        &self,
        executor: E,
        key: &NewKey<'_>,
    ) -> Result<(), RegistryError>
    where
        E: Executor<'c, Database = Any>,
    {
        sqlx::query(
            "INSERT INTO api_keys (id, account_id, livemode, secret_hash, redacted, scopes, \
             description, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(key.id)
        .bind(key.account_id)
        .bind(flag(key.environment.is_live()))
        .bind(key.secret_hash)
        .bind(key.redacted)
        .bind(key.scopes.to_stored())
        .bind(key.description.map(String::from))
        .bind(key.created_at)
        .execute(executor)
        .await?;
        Ok(())
    }

    /// The key whose secret hashes to `hash`, revoked or not.
    pub async fn key_by_hash(&self, hash: &str) -> Result<Option<KeyRecord>, RegistryError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} {FROM} WHERE k.secret_hash = $1"))
            .bind(hash)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(record).transpose()?)
    }

    /// The key with this id, inside `executor` (a transaction, to revoke).
    pub async fn key_by_id<'c, E>(
        &self,
        executor: E,
        id: &str,
    ) -> Result<Option<KeyRecord>, RegistryError>
    where
        E: Executor<'c, Database = Any>,
    {
        let row = sqlx::query(&format!("SELECT {COLUMNS} {FROM} WHERE k.id = $1"))
            .bind(id)
            .fetch_optional(executor)
            .await?;
        Ok(row.as_ref().map(record).transpose()?)
    }

    /// Marks a key revoked at `at`, unless it already is.
    pub async fn revoke_key<'c, E>(
        &self,
        executor: E,
        id: &str,
        at: i64,
    ) -> Result<bool, RegistryError>
    where
        E: Executor<'c, Database = Any>,
    {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(executor)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a use of the key, when the last recorded one is older than
    /// `stale_before`: a minute's precision for one write a minute per
    /// key, not one per request.
    pub async fn touch_key(
        &self,
        id: &str,
        now: i64,
        stale_before: i64,
    ) -> Result<(), RegistryError> {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 \
             AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(now)
        .bind(id)
        .bind(stale_before)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A page of an account's keys in one environment, newest first,
    /// after the key `starting_after` (whose place is looked up, so the
    /// page costs the same at any depth); one more than `limit` is
    /// fetched to tell whether more follow.
    pub async fn list_keys(
        &self,
        account_id: &str,
        environment: Environment,
        limit: u32,
        starting_after: Option<&str>,
    ) -> Result<Option<Vec<KeyRecord>>, RegistryError> {
        let listing = super::Listing {
            select: format!("SELECT {COLUMNS} {FROM}"),
            alias: "k.",
            table: "api_keys",
            at: "created_at",
        };
        let Some(rows) = self
            .page(&listing, account_id, environment, limit, starting_after)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(rows.iter().map(record).collect::<Result<_, _>>()?))
    }

    /// Every key, or one account's, for the CLI: oldest first.
    pub async fn all_keys(
        &self,
        account_id: Option<&str>,
    ) -> Result<Vec<KeyRecord>, RegistryError> {
        let rows = match account_id {
            Some(account) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} {FROM} WHERE k.account_id = $1 ORDER BY k.created_at, k.id"
                ))
                .bind(account)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} {FROM} ORDER BY k.created_at, k.id"
                ))
                .fetch_all(self.pool())
                .await?
            }
        };
        Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
    }
}
