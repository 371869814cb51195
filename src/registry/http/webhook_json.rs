//! The bodies and objects of `/v1/webhook_endpoints` and
//! `/v1/events/{id}/redeliver`, as parsed and answered (and described in
//! the OpenAPI document).

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::registry::rfc3339;
use crate::registry::store::{AttemptRecord, EndpointRecord, OutboxEvent};

/// The body of `POST /v1/webhook_endpoints`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// Where events are POSTed: `https` (plain `http` only in test mode),
    /// at most 2048 bytes, on a public address.
    #[schema(example = "https://lms.example.org/hooks/signet")]
    pub url: String,
    /// Event types to send, or `["*"]` for all.
    #[schema(example = json!(["certificate.issued", "certificate.revoked"]))]
    pub events: Vec<String>,
    /// At most 500 characters.
    #[serde(default)]
    pub description: Option<String>,
}

/// The body of `PATCH /v1/webhook_endpoints/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeEndpoint {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Absent leaves it; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// `true` stops deliveries; `false` resumes them (and clears a
    /// disabling for failures).
    #[serde(default)]
    pub disabled: Option<bool>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// An endpoint as the API shows it; `secret` only in the answer that
/// made it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookEndpoint)]
pub struct EndpointObject {
    #[schema(example = "we_3hT9wQz1mV7cX2nB5kR8pL")]
    pub id: String,
    #[schema(schema_with = endpoint_tag)]
    object: &'static str,
    livemode: bool,
    url: String,
    events: Vec<String>,
    description: Option<String>,
    /// `whsec_…`, to verify signatures: in the answer that made the
    /// endpoint only, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    secret: Option<String>,
    /// Whether deliveries are stopped.
    disabled: bool,
    /// `manual` (by a `PATCH`) or `failing` (every attempt failed for the
    /// configured time, three days by default).
    disabled_reason: Option<String>,
    #[schema(format = DateTime)]
    disabled_at: Option<String>,
    /// Since when every attempt failed; `null` after a success.
    #[schema(format = DateTime)]
    failing_since: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

fn endpoint_tag() -> utoipa::openapi::Object {
    super::openapi::tag("webhook_endpoint")
}

impl EndpointObject {
    pub fn new(endpoint: EndpointRecord, show_secret: bool) -> EndpointObject {
        EndpointObject {
            object: "webhook_endpoint",
            livemode: endpoint.environment.is_live(),
            url: endpoint.url,
            events: endpoint.events,
            description: endpoint.description,
            secret: show_secret.then_some(endpoint.secret),
            disabled: endpoint.disabled,
            disabled_reason: endpoint.disabled_reason,
            disabled_at: endpoint.disabled_at.map(rfc3339),
            failing_since: endpoint.failing_since.map(rfc3339),
            created_at: rfc3339(endpoint.created_at),
            updated_at: rfc3339(endpoint.updated_at),
            id: endpoint.id,
        }
    }
}

/// One attempt to deliver an event.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct AttemptObject {
    #[schema(example = "wha_3hT9wQz1mV7cX2nB5kR8pL")]
    pub id: String,
    #[schema(schema_with = attempt_tag)]
    object: &'static str,
    endpoint_id: String,
    /// The delivery (event × endpoint) the attempt belongs to.
    delivery_id: String,
    /// The event's id: the `webhook-id` header of every attempt.
    event_id: String,
    event_type: String,
    /// 1 for the first attempt of the delivery.
    attempt: i64,
    #[schema(schema_with = outcome_values)]
    outcome: &'static str,
    /// The receiver's status code; `null` when none came in time.
    response_status: Option<i64>,
    /// The first bytes (at most 1 KiB) of the receiver's answer.
    response_body: Option<String>,
    /// Why it failed; `null` on success.
    error: Option<String>,
    duration_ms: i64,
    #[schema(format = DateTime)]
    created_at: String,
}

fn attempt_tag() -> utoipa::openapi::Object {
    super::openapi::tag("webhook_delivery")
}

fn outcome_values() -> utoipa::openapi::Object {
    super::openapi::one_of(
        ["succeeded", "failed"],
        "`succeeded`: a 2xx within the timeout.",
    )
}

impl AttemptObject {
    pub fn new(a: AttemptRecord) -> AttemptObject {
        AttemptObject {
            object: "webhook_delivery",
            endpoint_id: a.endpoint_id,
            delivery_id: a.delivery_id,
            event_id: a.event_id,
            event_type: a.event_type,
            attempt: a.attempt,
            outcome: if a.succeeded { "succeeded" } else { "failed" },
            response_status: a.response_status,
            response_body: a.excerpt,
            error: a.error,
            duration_ms: a.duration_us / 1000,
            created_at: rfc3339(a.at),
            id: a.id,
        }
    }
}

/// The body of `POST /v1/events/{id}/redeliver`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redeliver {
    /// Only this endpoint; without it, every enabled endpoint that
    /// wants the event's type.
    #[serde(default)]
    pub endpoint_id: Option<String>,
}

/// The answer of a redelivery.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EventRedelivery)]
pub struct RedeliveryObject {
    #[schema(schema_with = redelivery_tag)]
    object: &'static str,
    event_id: String,
    event_type: String,
    /// The endpoints the event is sent to again.
    endpoint_ids: Vec<String>,
}

fn redelivery_tag() -> utoipa::openapi::Object {
    super::openapi::tag("event_redelivery")
}

impl RedeliveryObject {
    pub fn new(event: &OutboxEvent, endpoints: &[String]) -> RedeliveryObject {
        RedeliveryObject {
            object: "event_redelivery",
            event_id: event.id.clone(),
            event_type: event.kind.clone(),
            endpoint_ids: endpoints.to_vec(),
        }
    }
}
