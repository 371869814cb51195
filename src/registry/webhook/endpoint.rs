//! An account's webhook endpoints: made (with a secret shown once),
//! changed, disabled and enabled, deleted, and events sent to them again,
//! each change in one transaction with its audit row.

use serde_json::json;

use super::{guard, sign, EVENT_TYPES};
use crate::registry::error::RegistryError;
use crate::registry::ids::{self, Environment};
use crate::registry::keys::{audit_by, Actor};
use crate::registry::store::{now_us, EndpointRecord, NewAuditEvent, OutboxEvent, Reply};
use crate::registry::Registry;

/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Most event names one endpoint may list.
pub const MAX_EVENTS: usize = 32;
/// Most endpoints of one account in one environment: each event is sent
/// to each of them, so their number bounds the work one change makes.
pub const MAX_ENDPOINTS: i64 = 16;

/// Whose endpoints: a key's account and environment.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub account_id: &'a str,
    pub environment: Environment,
}

/// A new endpoint, as asked for.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
}

/// What a `PATCH` changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    pub disabled: Option<bool>,
}

/// `events` checked: known names (or `*` alone), none twice, at least one.
pub fn check_events(events: &[String]) -> Result<Vec<String>, RegistryError> {
    if events.is_empty() || events.len() > MAX_EVENTS {
        return Err(RegistryError::invalid(
            "events",
            format!("events lists 1 to {MAX_EVENTS} event types, or [\"*\"] for all"),
        ));
    }
    let mut checked: Vec<String> = Vec::new();
    for event in events {
        if event == "*" && events.len() > 1 {
            return Err(RegistryError::invalid(
                "events",
                "\"*\" stands alone: it already means every event",
            ));
        }
        if event != "*" && !EVENT_TYPES.contains(&event.as_str()) {
            return Err(RegistryError::invalid(
                "events",
                format!(
                    "Unknown event type `{}`; known: {}",
                    crate::http::escape(event),
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !checked.contains(event) {
            checked.push(event.clone());
        }
    }
    Ok(checked)
}

fn check_description(text: &Option<String>) -> Result<(), RegistryError> {
    if let Some(text) = text {
        if text.chars().count() > MAX_DESCRIPTION_CHARS || text.chars().any(char::is_control) {
            return Err(RegistryError::invalid(
                "description",
                format!(
                    "a description is at most {MAX_DESCRIPTION_CHARS} characters, without \
                     control characters"
                ),
            ));
        }
    }
    Ok(())
}

impl Registry {
    fn check_endpoint_url(&self, url: &str, live: bool) -> Result<String, RegistryError> {
        let allow = self.webhooks.config.allow_private_networks;
        guard::check_url(url, live, allow)
            .map(|u| u.to_string())
            .map_err(|refused| RegistryError::invalid("url", refused.0))
    }

    /// Makes an endpoint with a new secret, audited, with `reply`'s
    /// answer in the same transaction.
    pub async fn create_endpoint(
        &self,
        owner: Owner<'_>,
        new: NewEndpoint,
        actor: &Actor,
        reply: Option<&Reply<'_, EndpointRecord>>,
    ) -> Result<EndpointRecord, RegistryError> {
        let live = owner.environment.is_live();
        let url = self.check_endpoint_url(&new.url, live)?;
        let events = check_events(&new.events)?;
        check_description(&new.description)?;
        let now = now_us();
        let endpoint = EndpointRecord {
            id: ids::new_id("we_")?,
            account_id: owner.account_id.to_owned(),
            environment: owner.environment,
            url,
            events,
            description: new.description,
            secret: sign::new_secret()?,
            disabled: false,
            disabled_reason: None,
            disabled_at: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.store.begin().await?;
        let count = self
            .store
            .count_endpoints(&mut *tx, owner.account_id, live)
            .await?;
        if count >= MAX_ENDPOINTS {
            return Err(RegistryError::Invalid {
                param: None,
                message: format!(
                    "An account has at most {MAX_ENDPOINTS} webhook endpoints in each \
                     environment; delete one first"
                ),
            });
        }
        self.store.insert_endpoint(&mut *tx, &endpoint).await?;
        let audit = NewAuditEvent {
            account_id: Some(endpoint.account_id.clone()),
            livemode: live,
            action: "webhook_endpoint.create",
            target: Some(endpoint.id.clone()),
            status: actor.request_id.as_ref().map(|_| 201),
            changes: Some(json!({"url": [null, endpoint.url], "events": [null, endpoint.events]})),
            ..audit_by(actor)
        };
        self.store.append_audit(&mut *tx, &audit, now).await?;
        self.store.keep_reply(&mut tx, reply, &endpoint).await?;
        tx.commit().await?;
        Ok(endpoint)
    }

    /// The endpoint `id` of `owner`; another's is not found.
    pub async fn endpoint(
        &self,
        id: &str,
        owner: Owner<'_>,
    ) -> Result<EndpointRecord, RegistryError> {
        let found = self.store.find_endpoint(id).await?;
        found
            .filter(|e| e.account_id == owner.account_id && e.environment == owner.environment)
            .ok_or_else(|| RegistryError::NotFound {
                kind: "webhook_endpoint",
                id: id.to_owned(),
            })
    }

    /// Changes endpoint `id` of `owner`, audited. Enabling an endpoint
    /// starts its run of failures afresh.
    pub async fn change_endpoint(
        &self,
        id: &str,
        owner: Owner<'_>,
        change: EndpointChange,
        actor: &Actor,
    ) -> Result<EndpointRecord, RegistryError> {
        let live = owner.environment.is_live();
        let url = change
            .url
            .as_deref()
            .map(|u| self.check_endpoint_url(u, live))
            .transpose()?;
        let events = change.events.as_deref().map(check_events).transpose()?;
        if let Some(description) = &change.description {
            check_description(description)?;
        }
        let mut tx = self.store.begin().await?;
        let not_found = || RegistryError::NotFound {
            kind: "webhook_endpoint",
            id: id.to_owned(),
        };
        let before = self
            .store
            .endpoint_by_id(&mut *tx, id)
            .await?
            .filter(|e| e.account_id == owner.account_id && e.environment == owner.environment)
            .ok_or_else(not_found)?;
        let now = now_us();
        let mut after = before.clone();
        let mut changes = serde_json::Map::new();
        if let Some(url) = url.filter(|u| *u != before.url) {
            changes.insert("url".into(), json!([before.url, url]));
            after.url = url;
        }
        if let Some(events) = events.filter(|e| *e != before.events) {
            changes.insert("events".into(), json!([before.events, events]));
            after.events = events;
        }
        if let Some(description) = change.description.filter(|d| *d != before.description) {
            changes.insert(
                "description".into(),
                json!([before.description, description]),
            );
            after.description = description;
        }
        if let Some(disabled) = change.disabled.filter(|d| *d != before.disabled) {
            changes.insert("disabled".into(), json!([before.disabled, disabled]));
            after.disabled = disabled;
            if disabled {
                after.disabled_reason = Some("manual".into());
                after.disabled_at = Some(now);
            } else {
                after.disabled_reason = None;
                after.disabled_at = None;
                after.failing_since = None;
            }
        }
        if !changes.is_empty() {
            after.updated_at = now;
            self.store.update_endpoint(&mut *tx, &after).await?;
            let audit = NewAuditEvent {
                account_id: Some(after.account_id.clone()),
                livemode: live,
                action: "webhook_endpoint.update",
                target: Some(id.to_owned()),
                status: actor.request_id.as_ref().map(|_| 200),
                changes: Some(serde_json::Value::Object(changes)),
                ..audit_by(actor)
            };
            self.store.append_audit(&mut *tx, &audit, now).await?;
        }
        tx.commit().await?;
        self.webhooks.appended.notify_one();
        Ok(after)
    }

    /// Deletes endpoint `id` of `owner` and its pending deliveries,
    /// audited; answers it as it was.
    pub async fn delete_endpoint(
        &self,
        id: &str,
        owner: Owner<'_>,
        actor: &Actor,
    ) -> Result<EndpointRecord, RegistryError> {
        let mut tx = self.store.begin().await?;
        let endpoint = self
            .store
            .endpoint_by_id(&mut *tx, id)
            .await?
            .filter(|e| e.account_id == owner.account_id && e.environment == owner.environment)
            .ok_or_else(|| RegistryError::NotFound {
                kind: "webhook_endpoint",
                id: id.to_owned(),
            })?;
        self.store.delete_endpoint(&mut tx, id).await?;
        let now = now_us();
        let audit = NewAuditEvent {
            account_id: Some(endpoint.account_id.clone()),
            livemode: owner.environment.is_live(),
            action: "webhook_endpoint.delete",
            target: Some(id.to_owned()),
            status: actor.request_id.as_ref().map(|_| 200),
            changes: Some(json!({"url": [endpoint.url, null]})),
            ..audit_by(actor)
        };
        self.store.append_audit(&mut *tx, &audit, now).await?;
        tx.commit().await?;
        Ok(endpoint)
    }

    /// Sends event `event_id` of `owner` again to every enabled endpoint
    /// that wants it, or to `only` that one; audited. The resends carry
    /// the event's id as `webhook-id`, as the first sends did. Answers
    /// the event and the endpoints it goes to.
    pub async fn redeliver_event(
        &self,
        event_id: &str,
        owner: Owner<'_>,
        only: Option<&str>,
        actor: &Actor,
        reply: Option<&Reply<'_, (OutboxEvent, Vec<String>)>>,
    ) -> Result<(OutboxEvent, Vec<String>), RegistryError> {
        let event = self
            .store
            .outbox_event(event_id, owner.account_id, owner.environment)
            .await?
            .ok_or_else(|| RegistryError::NotFound {
                kind: "event",
                id: event_id.to_owned(),
            })?;
        let mut tx = self.store.begin().await?;
        let enabled = self
            .store
            .enabled_endpoints(&mut *tx, owner.account_id, owner.environment.is_live())
            .await?;
        let targets: Vec<String> = match only {
            Some(only) => {
                let endpoint = self.endpoint(only, owner).await?;
                if endpoint.disabled {
                    return Err(RegistryError::invalid(
                        "endpoint_id",
                        "this endpoint is disabled: enable it first",
                    ));
                }
                vec![endpoint.id]
            }
            None => enabled
                .into_iter()
                .filter(|e| e.wants(&event.kind))
                .map(|e| e.id)
                .collect(),
        };
        let now = now_us();
        self.store
            .redeliver(&mut tx, &event.id, &targets, now)
            .await?;
        let audit = NewAuditEvent {
            account_id: Some(owner.account_id.to_owned()),
            livemode: owner.environment.is_live(),
            action: "event.redeliver",
            target: Some(event.id.clone()),
            status: actor.request_id.as_ref().map(|_| 202),
            changes: Some(json!({"endpoints": [null, targets]})),
            ..audit_by(actor)
        };
        self.store.append_audit(&mut *tx, &audit, now).await?;
        let answer = (event, targets);
        self.store.keep_reply(&mut tx, reply, &answer).await?;
        tx.commit().await?;
        self.webhooks.appended.notify_one();
        Ok(answer)
    }
}
