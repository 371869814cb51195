//! API keys: made with a random secret shown once, stored as a hash,
//! checked on every request, and audited.
//!
//! A key read from the store is kept for [`KEY_FRESHNESS_MS`], so a busy
//! key costs a hash and a map look-up rather than a database read. A
//! revocation made by this process drops every kept key at once; one made
//! by another process (or `signet keys revoke`) holds here within
//! [`KEY_FRESHNESS_MS`].

use super::error::RegistryError;
use super::ids::{self, Environment};
use super::scope::Scopes;
use super::store::{now_us, KeyRecord, NewAuditEvent, NewKey, Reply};
use super::Registry;

/// Longest description a key may have, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// How stale `last_used_at` may get before a request rewrites it.
const LAST_USED_PRECISION_US: i64 = 60_000_000;
/// The longest a key read from the store is trusted without reading it
/// again: how long another process's revocation may take to hold here.
pub const KEY_FRESHNESS_MS: u64 = 1_000;
/// Most keys kept at once.
const MAX_RECENT_KEYS: u64 = 100_000;

/// Keys read lately, by the hash of their secret.
pub type RecentKeys = moka::sync::Cache<String, std::sync::Arc<KeyRecord>>;

/// An empty cache of keys, each kept at most [`KEY_FRESHNESS_MS`].
pub fn recent_keys() -> RecentKeys {
    moka::sync::Cache::builder()
        .max_capacity(MAX_RECENT_KEYS)
        .time_to_live(std::time::Duration::from_millis(KEY_FRESHNESS_MS))
        .build()
}

/// Who does something, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// `api_key` or `cli`.
    pub kind: &'static str,
    /// The key's id, for `api_key`.
    pub id: Option<String>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
}

impl Actor {
    /// The command line, run by whoever can read the configuration.
    pub fn cli() -> Actor {
        Actor {
            kind: "cli",
            ..Actor::default()
        }
    }
}

/// A key just made: the record, and its secret, which nothing shows again.
pub struct CreatedKey {
    pub key: KeyRecord,
    pub secret: String,
}

/// Why a presented key does not authenticate.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no API key was given")]
    Missing,
    #[error("the API key is malformed")]
    Malformed,
    #[error("the API key is unknown")]
    Unknown,
    #[error("the API key was revoked")]
    Revoked(Box<KeyRecord>),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl Registry {
    /// Makes a key for `account_id` in `environment`, with the audit row
    /// and `reply`'s answer (for an idempotency key) in the same
    /// transaction.
    pub async fn create_key(
        &self,
        account_id: &str,
        environment: Environment,
        scopes: Scopes,
        description: Option<String>,
        actor: &Actor,
        reply: Option<&Reply<'_, KeyRecord>>,
    ) -> Result<CreatedKey, RegistryError> {
        if self.account(account_id).is_none() && !self.store.account_exists(account_id).await? {
            return Err(RegistryError::UnknownAccount(account_id.to_owned()));
        }
        if scopes.is_empty() {
            return Err(RegistryError::invalid(
                "scopes",
                "a key needs at least one scope",
            ));
        }
        if let Some(text) = &description {
            if text.chars().count() > MAX_DESCRIPTION_CHARS || text.chars().any(char::is_control) {
                return Err(RegistryError::invalid(
                    "description",
                    format!("a description is at most {MAX_DESCRIPTION_CHARS} characters, without control characters"),
                ));
            }
        }
        let id = ids::new_id("key_")?;
        let secret = ids::new_secret(environment)?;
        let now = now_us();
        let mut tx = self.store.begin().await?;
        let new = NewKey {
            id: &id,
            account_id,
            environment,
            secret_hash: &secret.hash,
            redacted: &secret.redacted,
            scopes: &scopes,
            description: description.as_deref(),
            created_at: now,
        };
        self.store.insert_key(&mut *tx, &new).await?;
        let event = NewAuditEvent {
            account_id: Some(account_id.to_owned()),
            livemode: environment.is_live(),
            action: "api_key.create",
            target: Some(id.clone()),
            status: actor.request_id.as_ref().map(|_| 201),
            changes: Some(serde_json::json!({"scopes": [null, scopes.names()]})),
            ..audit_by(actor)
        };
        self.store.append_audit(&mut *tx, &event, now).await?;
        let key = self.store.key_by_id(&mut *tx, &id).await?.ok_or_else(|| {
            RegistryError::Database("a key vanished in its own transaction".into())
        })?;
        self.store.keep_reply(&mut tx, reply, &key).await?;
        // Committed (and, on SQLite, synced) before anyone sees the secret.
        tx.commit().await?;
        Ok(CreatedKey {
            key,
            secret: secret.secret,
        })
    }

    /// Revokes key `id`. With `owner`, the key must belong to that
    /// account and environment (another's is reported as not found).
    /// Revoking a revoked key changes nothing and returns it.
    pub async fn revoke_key(
        &self,
        id: &str,
        owner: Option<(&str, Environment)>,
        actor: &Actor,
    ) -> Result<KeyRecord, RegistryError> {
        let not_found = || RegistryError::NotFound {
            kind: "api_key",
            id: id.to_owned(),
        };
        let mut tx = self.store.begin().await?;
        let key = self
            .store
            .key_by_id(&mut *tx, id)
            .await?
            .ok_or_else(not_found)?;
        if let Some((account, environment)) = owner {
            if key.account_id != account || key.environment != environment {
                return Err(not_found());
            }
        }
        let now = now_us();
        if self.store.revoke_key(&mut *tx, id, now).await? {
            let event = NewAuditEvent {
                account_id: Some(key.account_id.clone()),
                livemode: key.environment.is_live(),
                action: "api_key.revoke",
                target: Some(id.to_owned()),
                status: actor.request_id.as_ref().map(|_| 200),
                changes: Some(serde_json::json!({"revoked_at": [null, super::rfc3339(now)]})),
                ..audit_by(actor)
            };
            self.store.append_audit(&mut *tx, &event, now).await?;
        }
        // Kept keys are found by their secret's hash, which this id does
        // not give: all of them are read again (revocations are rare).
        self.recent_keys.invalidate_all();
        let key = self
            .store
            .key_by_id(&mut *tx, id)
            .await?
            .ok_or_else(not_found)?;
        tx.commit().await?;
        Ok(key)
    }

    /// The live key a presented `Authorization` value names: kept, or
    /// read from the store (see the module's doc for how fresh).
    pub async fn authenticate(&self, presented: Option<&str>) -> Result<KeyRecord, AuthError> {
        let presented = presented.ok_or(AuthError::Missing)?;
        let environment = ids::parse_secret(presented).ok_or(AuthError::Malformed)?;
        let hash = ids::hash_secret(presented);
        let key = match self.recent_keys.get(&hash) {
            Some(key) => key,
            None => {
                // An unknown secret is not kept: guesses must not fill
                // the cache.
                let key = std::sync::Arc::new(
                    self.store
                        .key_by_hash(&hash)
                        .await?
                        .ok_or(AuthError::Unknown)?,
                );
                self.recent_keys
                    .insert(hash.clone(), std::sync::Arc::clone(&key));
                key
            }
        };
        let mut key = (*key).clone();
        if key.environment != environment {
            // Cannot happen for a key this registry made; refuse anyway.
            return Err(AuthError::Unknown);
        }
        if key.revoked_at.is_some() {
            return Err(AuthError::Revoked(Box::new(key)));
        }
        let now = now_us();
        if key
            .last_used_at
            .is_none_or(|t| t < now - LAST_USED_PRECISION_US)
        {
            self.store
                .touch_key(&key.id, now, now - LAST_USED_PRECISION_US)
                .await?;
            key.last_used_at = Some(now);
            self.recent_keys
                .insert(hash, std::sync::Arc::new(key.clone()));
        }
        Ok(key)
    }
}

/// The audit fields that say who acted.
pub fn audit_by(actor: &Actor) -> NewAuditEvent {
    NewAuditEvent {
        actor_type: actor.kind,
        actor_id: actor.id.clone(),
        request_id: actor.request_id.clone(),
        ip: actor.ip.clone(),
        ..NewAuditEvent::default()
    }
}
