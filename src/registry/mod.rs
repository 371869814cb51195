//! The certificate registry: accounts, API keys, the audit log, and (in
//! later parts) certificates, batches and webhooks, under `/v1`.
//!
//! The registry is self-contained: the image path knows it only as the
//! optional [`Registry`] handle in `AppState` and the router mounted at
//! `/v1`; nothing here reads templates or renders.
//!
//! # Layout
//!
//! - [`store`]: the database (SQLite or PostgreSQL), migrations, queries.
//! - [`account`]: accounts and their plans' limits.
//! - [`ids`]: random ids, key secrets and their stored hash.
//! - [`scope`]: what a key may do.
//! - [`keys`]: creating, listing, revoking and checking keys, audited.
//! - [`error`]: the registry's failures, in its own terms.
//! - [`http`]: `/v1`: authentication, limits, the JSON error shape.
//! - [`cli`]: `signet keys create|list|revoke`.

pub mod account;
pub mod cli;
pub mod error;
pub mod http;
pub mod ids;
pub mod keys;
pub mod scope;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Config;

pub use account::{Account, Plan};
pub use error::RegistryError;
pub use ids::Environment;
pub use keys::{Actor, CreatedKey};
pub use store::Store;

/// The registry's handle: cheap to clone.
#[derive(Clone, Debug)]
pub struct Registry {
    /// The database.
    pub store: Store,
    /// The configured accounts by id.
    accounts: Arc<HashMap<String, Account>>,
    /// Base of the error pages `documentation_url` points at.
    docs_url: Arc<str>,
}

impl Registry {
    /// Opens the database of `config` (creating and migrating it) and
    /// writes the configured users into it as accounts.
    pub async fn open(config: &Config) -> Result<Registry, RegistryError> {
        let accounts = config
            .users
            .iter()
            .map(Account::from_config)
            .collect::<Result<Vec<_>, _>>()?;
        let store = Store::open(config.database_url.as_deref(), &config.data_dir).await?;
        store.upsert_accounts(&accounts).await?;
        Ok(Registry {
            store,
            accounts: Arc::new(accounts.into_iter().map(|a| (a.id.clone(), a)).collect()),
            docs_url: Arc::from(config.api_docs_url.trim_end_matches('/')),
        })
    }

    /// The configured account with this id.
    pub fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.get(id)
    }

    /// Base of the error documentation.
    pub fn docs_url(&self) -> &str {
        &self.docs_url
    }
}

/// RFC 3339 in UTC with a `Z`, to the second, of Unix microseconds.
pub fn rfc3339(us: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_micros(u64::try_from(us).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}
