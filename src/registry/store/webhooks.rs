//! The `webhook_endpoints` table: where an account's events are sent.
//! The secret is stored as it is (deliveries are signed with it), read
//! only by the sender and by the answer that made the endpoint.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::{flag, Store};
use crate::registry::error::RegistryError;
use crate::registry::ids::Environment;

/// An endpoint as stored.
#[derive(Clone)]
pub struct EndpointRecord {
    pub id: String,
    pub account_id: String,
    pub environment: Environment,
    pub url: String,
    /// Event names, or `["*"]` for all.
    pub events: Vec<String>,
    pub description: Option<String>,
    /// `whsec_…`: never shown after creation, never logged.
    pub secret: String,
    pub disabled: bool,
    /// `manual` or `failing`, while disabled.
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<i64>,
    /// Start of the current run of failed attempts.
    pub failing_since: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for EndpointRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Everything but the secret.
        f.debug_struct("EndpointRecord")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

impl EndpointRecord {
    /// Whether events of type `kind` go to this endpoint.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == kind)
    }
}

const COLUMNS: &str = "id, account_id, livemode, url, events, description, secret, disabled, \
     disabled_reason, disabled_at, failing_since, created_at, updated_at";

pub(super) fn endpoint(row: &AnyRow) -> Result<EndpointRecord, sqlx::Error> {
    Ok(EndpointRecord {
        id: row.try_get(0)?,
        account_id: row.try_get(1)?,
        environment: Environment::from_live(row.try_get::<i64, _>(2)? != 0),
        url: row.try_get(3)?,
        events: row
            .try_get::<String, _>(4)?
            .split(' ')
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect(),
        description: row.try_get(5)?,
        secret: row.try_get(6)?,
        disabled: row.try_get::<i64, _>(7)? != 0,
        disabled_reason: row.try_get(8)?,
        disabled_at: row.try_get(9)?,
        failing_since: row.try_get(10)?,
        created_at: row.try_get(11)?,
        updated_at: row.try_get(12)?,
    })
}

impl Store {
    /// Inserts `endpoint` inside the caller's transaction.
    pub async fn insert_endpoint<'c, E>(
        &self,
        executor: E,
        endpoint: &EndpointRecord,
    ) -> Result<(), RegistryError>
    where
        E: Executor<'c, Database = Any>,
    {
        sqlx::query(&format!(
            "INSERT INTO webhook_endpoints ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(endpoint.id.clone())
        .bind(endpoint.account_id.clone())
        .bind(flag(endpoint.environment.is_live()))
        .bind(endpoint.url.clone())
        .bind(endpoint.events.join(" "))
        .bind(endpoint.description.clone())
        .bind(endpoint.secret.clone())
        .bind(flag(endpoint.disabled))
        .bind(endpoint.disabled_reason.clone())
        .bind(endpoint.disabled_at)
        .bind(endpoint.failing_since)
        .bind(endpoint.created_at)
        .bind(endpoint.updated_at)
        .execute(executor)
        .await?;
        Ok(())
    }

    /// Writes every changeable field of `endpoint` back.
    pub async fn update_endpoint<'c, E>(
        &self,
        executor: E,
        endpoint: &EndpointRecord,
    ) -> Result<(), RegistryError>
    where
        E: Executor<'c, Database = Any>,
    {
        sqlx::query(
            "UPDATE webhook_endpoints SET url = $1, events = $2, description = $3, \
             disabled = $4, disabled_reason = $5, disabled_at = $6, failing_since = $7, \
             updated_at = $8 WHERE id = $9",
        )
        .bind(endpoint.url.clone())
        .bind(endpoint.events.join(" "))
        .bind(endpoint.description.clone())
        .bind(flag(endpoint.disabled))
        .bind(endpoint.disabled_reason.clone())
        .bind(endpoint.disabled_at)
        .bind(endpoint.failing_since)
        .bind(endpoint.updated_at)
        .bind(endpoint.id.clone())
        .execute(executor)
        .await?;
        Ok(())
    }

    /// The endpoint `id`, of whichever account.
    pub async fn endpoint_by_id<'c, E>(
        &self,
        executor: E,
        id: &str,
    ) -> Result<Option<EndpointRecord>, RegistryError>
    where
        E: Executor<'c, Database = Any>,
    {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM webhook_endpoints WHERE id = $1"
        ))
        .bind(id.to_owned())
        .fetch_optional(executor)
        .await?;
        Ok(row.as_ref().map(endpoint).transpose()?)
    }

    /// The endpoint `id`, of whichever account, read outside a
    /// transaction.
    pub async fn find_endpoint(&self, id: &str) -> Result<Option<EndpointRecord>, RegistryError> {
        self.endpoint_by_id(self.pool(), id).await
    }

    /// Removes the endpoint `id` and its pending deliveries; its attempts
    /// stay in the log.
    pub async fn delete_endpoint(
        &self,
        tx: &mut sqlx::Transaction<'static, Any>,
        id: &str,
    ) -> Result<(), RegistryError> {
        sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
            .bind(id.to_owned())
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id.to_owned())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// How many endpoints one account has in one environment.
    pub async fn count_endpoints<'c, E>(
        &self,
        executor: E,
        account_id: &str,
        live: bool,
    ) -> Result<i64, RegistryError>
    where
        E: Executor<'c, Database = Any>,
    {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhook_endpoints WHERE account_id = $1 AND livemode = $2",
        )
        .bind(account_id.to_owned())
        .bind(flag(live))
        .fetch_one(executor)
        .await?)
    }

    /// The enabled endpoints of one account and environment.
    pub async fn enabled_endpoints<'c, E>(
        &self,
        executor: E,
        account_id: &str,
        live: bool,
    ) -> Result<Vec<EndpointRecord>, RegistryError>
    where
        E: Executor<'c, Database = Any>,
    {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM webhook_endpoints \
             WHERE account_id = $1 AND livemode = $2 AND disabled = 0 ORDER BY created_at, id"
        ))
        .bind(account_id.to_owned())
        .bind(flag(live))
        .fetch_all(executor)
        .await?;
        Ok(rows.iter().map(endpoint).collect::<Result<_, _>>()?)
    }

    /// A page of an account's endpoints in one environment, newest first
    /// (see `Store::page`).
    pub async fn list_endpoints(
        &self,
        account_id: &str,
        environment: Environment,
        limit: u32,
        starting_after: Option<&str>,
    ) -> Result<Option<Vec<EndpointRecord>>, RegistryError> {
        let listing = super::Listing {
            select: format!("SELECT {COLUMNS} FROM webhook_endpoints"),
            alias: "",
            table: "webhook_endpoints",
            at: "created_at",
        };
        let Some(rows) = self
            .page(&listing, account_id, environment, limit, starting_after)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(rows.iter().map(endpoint).collect::<Result<_, _>>()?))
    }
}
