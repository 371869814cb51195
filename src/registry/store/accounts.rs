//! The `accounts` table: the configured users, upserted at every start.

use sqlx::Row;

use super::{flag, now_us, Store};
use crate::registry::account::Account;
use crate::registry::error::RegistryError;

impl Store {
    /// Writes the accounts as configured, in one transaction: a new user
    /// is added, a changed plan or name takes effect. Accounts no longer
    /// configured stay (their certificates must remain checkable).
    pub async fn upsert_accounts(&self, accounts: &[Account]) -> Result<(), RegistryError> {
        let mut tx = self.begin().await?;
        let now = now_us();
        for account in accounts {
            sqlx::query(
                "INSERT INTO accounts (id, name, plan, rate_limit_per_minute, batch_size, \
                 public_base_url, email_by_default, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, plan = excluded.plan, \
                 rate_limit_per_minute = excluded.rate_limit_per_minute, \
                 batch_size = excluded.batch_size, public_base_url = excluded.public_base_url, \
                 email_by_default = excluded.email_by_default, updated_at = excluded.updated_at",
            )
            .bind(&account.id)
            .bind(&account.name)
            .bind(account.plan.name())
            .bind(i64::from(account.plan.rate_limit_per_minute()))
            .bind(i64::from(account.plan.batch_size()))
            .bind(account.public_base_url.clone())
            .bind(flag(account.email_by_default))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// True when an account has this id.
    pub async fn account_exists(&self, id: &str) -> Result<bool, RegistryError> {
        let row = sqlx::query("SELECT id FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some_and(|r| r.try_get::<String, _>(0).is_ok()))
    }

    /// Every account's id, configured now or once (an account no longer
    /// configured keeps its records).
    pub async fn account_ids(&self) -> Result<Vec<String>, RegistryError> {
        let rows = sqlx::query("SELECT id FROM accounts ORDER BY id")
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?)
    }
}
