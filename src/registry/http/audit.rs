//! `GET /v1/audit_events` (scope `audit:read`): the account's audit log
//! in the caller's environment, newest first. There is no way to change
//! or delete an event.

use axum::extract::State;
use axum::http::Uri;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Serialize;

use super::context::Caller;
use super::error::ApiError;
use super::page::{List, PageRequest};
use crate::registry::store::AuditEvent;
use crate::registry::{rfc3339, Registry};

#[derive(Debug, Serialize)]
struct Actor {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
}

#[derive(Debug, Serialize)]
struct EventObject {
    id: String,
    object: &'static str,
    at: String,
    actor: Actor,
    action: String,
    target: Option<String>,
    request_id: Option<String>,
    ip: Option<String>,
    status: Option<i64>,
    changes: Option<serde_json::Value>,
}

impl From<AuditEvent> for EventObject {
    fn from(event: AuditEvent) -> EventObject {
        EventObject {
            id: event.id,
            object: "audit_event",
            at: rfc3339(event.at),
            actor: Actor {
                kind: event.actor_type,
                id: event.actor_id,
            },
            action: event.action,
            target: event.target,
            request_id: event.request_id,
            ip: event.ip,
            status: event.status,
            changes: event.changes,
        }
    }
}

pub async fn list(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
) -> Result<impl IntoResponse, ApiError> {
    caller.require("audit:read")?;
    let page = PageRequest::parse(uri.query())?;
    let events = registry
        .store
        .list_audit(
            &caller.key.account_id,
            caller.key.environment,
            page.limit,
            page.starting_after.as_deref(),
        )
        .await?
        .ok_or_else(PageRequest::unknown_cursor)?;
    let objects = events.into_iter().map(EventObject::from).collect();
    Ok(Json(List::from_fetched(
        objects,
        page.limit,
        |e: &EventObject| e.id.clone(),
    )))
}
