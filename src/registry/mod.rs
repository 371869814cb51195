//! The certificate registry: accounts, API keys, the audit log, and (in
//! later parts) certificates, batches and webhooks, under `/v1`.
//!
//! The registry is self-contained: the image path knows it only as the
//! optional [`Registry`] handle in `AppState` and the router mounted at
//! `/v1`. It renders nothing; it reads templates only through the
//! server's own `TemplateStore`, to check a certificate's name and fields
//! with the rules a render applies.
//!
//! # Layout
//!
//! - [`store`]: the database (SQLite or PostgreSQL), migrations, queries.
//! - [`account`]: accounts and their plans' limits.
//! - [`audit`]: the audit event object the API and `signet audit` show.
//! - [`ids`]: random ids, key secrets and their stored hash.
//! - [`scope`]: what a key may do.
//! - [`certificate`]: certificates, their status rules and template
//!   checks, issued and changed with audit rows and outbox events.
//! - [`batch`]: batches of issues or revocations, accepted whole and
//!   worked row by row in the background, from JSON or CSV.
//! - [`keys`]: creating, listing, revoking and checking keys, audited.
//! - [`limiter`]: rate limits counted in memory, shared through the
//!   database.
//! - [`templates`]: an account's templates and their previews.
//! - [`error`]: the registry's failures, in its own terms.
//! - [`http`]: `/v1`: authentication, limits, idempotency keys, the JSON
//!   error shape.
//! - [`cli`]: `signet keys create|list|revoke` and `signet audit`.
//! - [`webhook`]: webhook endpoints and the worker that delivers the
//!   outbox's events to them.

pub mod account;
pub mod audit;
pub mod batch;
pub mod certificate;
pub mod cli;
pub mod error;
pub mod http;
pub mod ids;
pub mod keys;
pub mod limiter;
pub mod scope;
pub mod store;
pub mod templates;
pub mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::config::Config;
use crate::modifications::Limits;
use crate::render::Renderer;
use crate::request::UserId;
use crate::template::TemplateStore;

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
    /// The server's templates, given once the server's state is built
    /// (after the registry opens); shared by every clone.
    templates: Arc<OnceLock<TemplateAccess>>,
    /// Certificates as their images show them, kept briefly.
    views: certificate::Views,
    /// Writes new certificates in group commits.
    writer: certificate::Writer,
    /// Wakes the batch worker.
    batches: batch::Worker,
    /// Requests counted against their keys' limits.
    limiter: Arc<limiter::Limiter>,
    /// Keys checked lately (`keys`).
    recent_keys: keys::RecentKeys,
    /// Failed authentications by client address.
    pub strangers: Arc<limiter::Strangers>,
    /// Webhook settings, the worker's wake-up and the public side's
    /// throttled counts; the worker stops once the last clone is dropped.
    webhooks: Arc<webhook::Webhooks>,
    /// Dropped with the last clone: the heartbeat task then stops.
    _alive: Arc<()>,
}

/// What the registry needs of the image side to check a certificate.
pub struct TemplateAccess {
    pub templates: Arc<TemplateStore>,
    pub renderer: Arc<Renderer>,
    /// The text bounds signed URLs have.
    pub limits: Limits,
    /// Template previews, drawn by the image side.
    pub previews: Arc<dyn templates::Previews>,
    /// The accounts' active secrets, for `/v1/sign`: the first signs.
    pub secrets: Arc<HashMap<UserId, Vec<String>>>,
    /// The longest request target the image side reads, so no URL is
    /// signed that it would refuse.
    pub max_url_bytes: usize,
}

impl std::fmt::Debug for TemplateAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TemplateAccess")
    }
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
        store.heartbeat(store::now_us()).await?;
        let alive = Arc::new(());
        tokio::spawn(heartbeats(store.clone(), Arc::downgrade(&alive)));
        let (webhooks, public) = webhook::Webhooks::new(config.webhooks.clone());
        tokio::spawn(webhook::views::append(
            store.clone(),
            public,
            Arc::downgrade(&webhooks),
        ));
        webhook::deliver::start(store.clone(), &webhooks);
        Ok(Registry {
            accounts: Arc::new(accounts.into_iter().map(|a| (a.id.clone(), a)).collect()),
            docs_url: Arc::from(config.api_docs_url.trim_end_matches('/')),
            templates: Arc::default(),
            views: certificate::views(),
            writer: certificate::Writer::start(store.clone()),
            batches: batch::Worker::default(),
            limiter: limiter::Limiter::start(store.clone()),
            recent_keys: keys::recent_keys(),
            strangers: Arc::default(),
            webhooks,
            store,
            _alive: alive,
        })
    }

    /// The configured account with this id.
    pub fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.get(id)
    }

    /// Gives the registry the server's templates, and starts the batch
    /// worker, which checks rows against them; a second call keeps the
    /// first (one server, one template store).
    pub fn use_templates(&self, access: TemplateAccess) {
        if self.templates.set(access).is_ok() {
            // The worker's handle must not keep the registry alive: it
            // stops once every other handle is dropped.
            let worker = Registry {
                _alive: Arc::new(()),
                ..self.clone()
            };
            self.batches.start(worker, Arc::downgrade(&self._alive));
        }
    }

    /// The server's templates, once given.
    fn templates(&self) -> Result<&TemplateAccess, RegistryError> {
        self.templates.get().ok_or_else(|| {
            RegistryError::Config("the registry was opened without the server's templates".into())
        })
    }

    /// Counts a request of `key` against its plan's limit.
    pub async fn count_request(
        &self,
        key: &store::KeyRecord,
        now: i64,
    ) -> Result<store::Window, RegistryError> {
        self.limiter
            .hit(&key.id, key.rate_limit_per_minute, now)
            .await
    }

    /// Wakes the webhook worker at once: for code that appended events
    /// and committed them (the worker polls the outbox anyway, every
    /// `[webhooks] poll_ms`).
    pub fn events_appended(&self) {
        self.webhooks.appended.notify_one();
    }

    /// Base of the error documentation.
    pub fn docs_url(&self) -> &str {
        &self.docs_url
    }
}

/// Writes this process's heartbeat every `HEARTBEAT_US` while a clone of
/// its registry lives. A failed write is logged; the next tick tries
/// again.
async fn heartbeats(store: Store, alive: std::sync::Weak<()>) {
    let period = std::time::Duration::from_micros(store::HEARTBEAT_US.unsigned_abs());
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if alive.upgrade().is_none() {
            return;
        }
        if let Err(error) = store.heartbeat(store::now_us()).await {
            tracing::warn!(%error, "could not write this process's heartbeat");
        }
    }
}

/// RFC 3339 in UTC with a `Z`, to the second, of Unix microseconds.
pub fn rfc3339(us: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_micros(u64::try_from(us).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}
