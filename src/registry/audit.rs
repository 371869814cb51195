//! The audit log as the contract shows it: the event object of
//! `GET /v1/audit_events`, which `signet audit` exports too, so the two
//! never drift apart.

use serde::Serialize;
use utoipa::ToSchema;

use super::rfc3339;
use super::store::AuditEvent;

/// Who acted: `{"type": "api_key", "id": "key_…"}`, `cli`, `anonymous`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = AuditActor)]
pub struct ActorObject {
    /// `api_key`, `cli` or `anonymous` (a failed authentication).
    #[serde(rename = "type")]
    kind: String,
    /// The key's id, for `api_key`.
    id: Option<String>,
}

/// An audit event as the contract shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = AuditEvent)]
pub struct AuditEventObject {
    #[schema(example = "ae_5bN2vR8kQ1xZ7mT4cW9pJd")]
    id: String,
    #[schema(schema_with = audit_event_tag)]
    object: &'static str,
    #[schema(format = DateTime)]
    at: String,
    actor: ActorObject,
    /// What was done: `certificate.revoke`, `api_key.create`, `auth.failed`, ….
    action: String,
    /// The id of the object acted on.
    target: Option<String>,
    request_id: Option<String>,
    ip: Option<String>,
    /// The HTTP status the request was answered with.
    status: Option<i64>,
    /// What changed, e.g. `{"status": ["issued", "revoked"]}`.
    #[schema(value_type = Option<Object>)]
    changes: Option<serde_json::Value>,
}

fn audit_event_tag() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(["audit_event"]))
        .build()
}

impl AuditEventObject {
    /// The event's id (`ae_…`), a list's cursor.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl From<AuditEvent> for AuditEventObject {
    fn from(event: AuditEvent) -> AuditEventObject {
        AuditEventObject {
            id: event.id,
            object: "audit_event",
            at: rfc3339(event.at),
            actor: ActorObject {
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
