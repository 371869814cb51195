//! Webhooks: an account's endpoints, and the worker that sends them the
//! account's events from the outbox, signed per Standard Webhooks.
//!
//! The write path of a change only appends its `events` row (in its own
//! transaction); everything else happens here, off that path: the
//! worker ([`deliver`]) fans events out to endpoints, leases due
//! deliveries, sends them under concurrency bounds and a timeout, and
//! writes each attempt's outcome, retrying on the configured schedule and
//! disabling an endpoint that has failed for days. Events the public side
//! causes (`certificate.viewed`, `.verified`) are counted in memory,
//! throttled, and appended by a task of their own ([`views`]), never on an
//! image request's path.
//!
//! # Layout
//!
//! - [`settings`]: the `[webhooks]` configuration section.
//! - [`endpoint`]: making, changing, deleting endpoints, redelivery;
//!   audited.
//! - [`sign`]: secrets and the signature.
//! - [`guard`]: the SSRF guard (URL checks and the resolver).
//! - [`deliver`]: the worker.
//! - [`views`]: throttled `viewed` and `verified` events.

pub mod deliver;
pub mod endpoint;
pub mod guard;
pub mod settings;
pub mod sign;
pub mod views;

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Notify;

pub use settings::WebhookConfig;

use crate::registry::rfc3339;
use crate::registry::store::OutboxEvent;

/// Every event type an endpoint may ask for (`*` asks for all).
pub const EVENT_TYPES: &[&str] = &[
    "certificate.issued",
    "certificate.updated",
    "certificate.viewed",
    "certificate.shared",
    "certificate.verified",
    "certificate.revoked",
    "batch.completed",
];

/// What the registry's clones share of webhooks.
#[derive(Debug)]
pub struct Webhooks {
    pub config: WebhookConfig,
    /// Poked when this process appended events, so the worker reads the
    /// outbox at once instead of at its next poll.
    pub appended: Arc<Notify>,
    /// The throttled counts of the public side.
    pub views: views::Views,
    /// `GET /v1/verify/{id}` calls by client address.
    pub verifiers: crate::registry::limiter::Strangers,
}

impl Webhooks {
    pub fn new(config: WebhookConfig) -> (Arc<Webhooks>, views::Receiver) {
        let (views, receiver) = views::Views::new(&config);
        let hooks = Arc::new(Webhooks {
            config,
            appended: Arc::default(),
            views,
            verifiers: Default::default(),
        });
        (hooks, receiver)
    }
}

/// The body of a delivery: the contract's event object, fields in its
/// order.
#[derive(Debug, Serialize)]
pub struct EventBody<'a> {
    pub id: &'a str,
    pub event: &'a str,
    pub certificate_id: Option<&'a str>,
    pub timestamp: String,
    pub livemode: bool,
    pub data: serde_json::Value,
}

impl<'a> EventBody<'a> {
    pub fn of(event: &'a OutboxEvent) -> EventBody<'a> {
        EventBody {
            id: &event.id,
            event: &event.kind,
            certificate_id: event.certificate_id.as_deref(),
            timestamp: rfc3339(event.created_at),
            livemode: event.livemode,
            // What the registry stored is JSON; a damaged row is sent as
            // null rather than not at all.
            data: serde_json::from_str(&event.data).unwrap_or(serde_json::Value::Null),
        }
    }

    /// The body's bytes, as signed and sent.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}
