//! `GET /v1/verify/{id}`: whether a certificate stands, for anyone who
//! holds its id (an employer checking a candidate's link has no key).
//! The id is the credential, as for the certificate's images: 128 random
//! bits, so ids cannot be enumerated, and calls are limited per client
//! address besides. The answer holds the certificate's public standing
//! only, never its recipient's e-mail, fields or metadata. Each check
//! counts as a throttled `certificate.verified` event.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use crate::registry::certificate::{status_of, Status};
use crate::registry::store::now_us;
use crate::registry::webhook::views::Seen;
use crate::registry::{rfc3339, Registry};

/// Checks a client address may make a minute.
pub const VERIFY_LIMIT_PER_MINUTE: i64 = 300;

/// A certificate's public standing.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Verification)]
pub struct Verification {
    #[schema(schema_with = verification_tag)]
    object: &'static str,
    certificate_id: String,
    /// Whether the certificate stands: issued, not suspended, revoked
    /// or expired, and live (a sandbox certificate is never valid).
    valid: bool,
    #[schema(schema_with = status_values)]
    status: &'static str,
    livemode: bool,
    template_id: String,
    #[schema(format = DateTime)]
    issued_at: String,
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    #[schema(format = DateTime)]
    revoked_at: Option<String>,
}

fn verification_tag() -> utoipa::openapi::Object {
    super::openapi::tag("verification")
}

fn status_values() -> utoipa::openapi::Object {
    super::openapi::one_of(
        ["issued", "suspended", "revoked", "expired"],
        "The certificate's status now.",
    )
}

/// `GET /v1/verify/{id}`.
#[utoipa::path(
    get,
    path = "/v1/verify/{id}",
    operation_id = "verify_certificate",
    tag = "verify",
    summary = "Check a certificate",
    description = "Open without a key: the certificate's id is the credential. Answers its \
                   public standing only. At most 300 checks a minute per client address.",
    security(()),
    params(("id" = String, Path, description = "The certificate's id (`cert_…`)")),
    responses(
        (status = 200, description = "The certificate's standing", body = Verification),
        (status = 404, description = "`not_found`: no certificate has this id.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many checks from this address; \
                                      `Retry-After` says when to try again.", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds to wait."))),
        (status = 503, description = "`unavailable`: the database cannot be reached.",
            body = ErrorBody),
    ),
)]
pub async fn verify(
    State(registry): State<Registry>,
    Path(id): Path<String>,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Response {
    let client = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let now = now_us();
    let address = client.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let window = registry.webhooks.verifiers.hit(&address, now);
    if window.count > VERIFY_LIMIT_PER_MINUTE {
        let wait = ((window.resets_at - now).max(0) / 1_000_000 + 1).max(1);
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("Too many checks from this address; try again in {wait} s"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return response;
    }
    match check(&registry, &id, client, &headers).await {
        Ok(found) => Json(found).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn check(
    registry: &Registry,
    id: &str,
    client: Option<std::net::IpAddr>,
    headers: &HeaderMap,
) -> Result<Verification, ApiError> {
    let not_found = || ApiError::not_found("No certificate has this id");
    let well_formed = id.len() <= 69
        && id.strip_prefix("cert_").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    if !well_formed {
        return Err(not_found());
    }
    let record = registry
        .store
        .certificate_by_id(id)
        .await?
        .ok_or_else(not_found)?;
    let status = status_of(&record, now_us());
    let live = record.environment.is_live();
    let seen = Seen {
        certificate_id: &record.id,
        account_id: &record.account_id,
        livemode: live,
    };
    registry.count_public(
        "certificate.verified",
        seen,
        client,
        headers,
        &[("via", "api")],
    );
    Ok(Verification {
        object: "verification",
        valid: status == Status::Issued && live,
        status: status.name(),
        livemode: live,
        template_id: record.template_id,
        issued_at: rfc3339(record.created_at),
        expires_at: record.expires_at.map(rfc3339),
        revoked_at: record.revoked_at.map(rfc3339),
        certificate_id: record.id,
    })
}
