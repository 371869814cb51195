//! The audit log as the contract shows it: the event object of
//! `GET /v1/audit_events`, which `signet audit` exports too, so the two
//! never drift apart.

use serde::Serialize;

use super::rfc3339;
use super::store::AuditEvent;

/// Who acted: `{"type": "api_key", "id": "key_…"}`, `cli`, `anonymous`.
#[derive(Debug, Clone, Serialize)]
pub struct ActorObject {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
}

/// An audit event as the contract shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEventObject {
    id: String,
    object: &'static str,
    at: String,
    actor: ActorObject,
    action: String,
    target: Option<String>,
    request_id: Option<String>,
    ip: Option<String>,
    status: Option<i64>,
    changes: Option<serde_json::Value>,
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
