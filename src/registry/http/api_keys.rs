//! `/v1/api_keys`: a key makes, lists and revokes the keys of its own
//! account and environment (scope `keys:write`).

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::context::Caller;
use super::error::{ApiError, ErrorBody};
use super::idempotency::{answer, Post};
use super::page::{List, PageRequest};
use crate::registry::scope::Scopes;
use crate::registry::store::{KeyRecord, Reply};
use crate::registry::{rfc3339, CreatedKey, Registry};

const SCOPE: &str = "keys:write";

/// The body of `POST /v1/api_keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// The new key's scopes (`certificates:read`, `certificates:write`,
    /// `keys:write`, `audit:read`, …, or `*`): at most the caller's own.
    #[schema(example = json!(["certificates:write"]))]
    scopes: Vec<String>,
    #[serde(default)]
    description: Option<String>,
}

/// A key as the API shows it; `secret` only in the answer that made it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ApiKey)]
pub struct KeyObject {
    #[schema(example = "key_3hT9wQz1mV7cX2nB5kR8pL")]
    id: String,
    #[schema(schema_with = key_tag)]
    object: &'static str,
    /// `false` for a sandbox (`sk_test_`) key.
    livemode: bool,
    /// The secret to send as `Authorization: Bearer`: in the answer that
    /// made the key only, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    secret: Option<String>,
    /// Enough of the secret to tell keys apart.
    redacted_secret: String,
    scopes: Vec<String>,
    description: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    last_used_at: Option<String>,
    #[schema(format = DateTime)]
    revoked_at: Option<String>,
}

fn key_tag() -> utoipa::openapi::Object {
    super::openapi::tag("api_key")
}

impl KeyObject {
    pub fn new(key: KeyRecord, secret: Option<String>) -> KeyObject {
        KeyObject {
            object: "api_key",
            livemode: key.environment.is_live(),
            secret,
            redacted_secret: key.redacted,
            scopes: key.scopes.names().to_vec(),
            description: key.description,
            created_at: rfc3339(key.created_at),
            last_used_at: key.last_used_at.map(rfc3339),
            revoked_at: key.revoked_at.map(rfc3339),
            id: key.id,
        }
    }
}

/// `POST /v1/api_keys`: a key for the caller's account and environment,
/// with at most the caller's own scopes (a key cannot mint a stronger
/// one). The secret is shown in this answer only: the answer kept for an
/// idempotency key's retries is the key without it, since no secret is
/// ever stored.
#[utoipa::path(
    post,
    path = "/v1/api_keys",
    operation_id = "create_api_key",
    tag = "api_keys",
    summary = "Make an API key",
    description = "A key of the caller's account and environment, with at most the caller's \
                   own scopes (scope `keys:write`). Its `secret` is in this answer only.",
    request_body = CreateKey,
    responses(
        (status = 201, description = "The key, with its secret", body = KeyObject),
        (status = 400, description = "`invalid_request`: an unknown scope.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope` with `param: scopes`: a scope the \
                                      caller's key does not hold.", body = ErrorBody),
    ),
)]
pub async fn create(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    let kept = |key: &KeyRecord| answer(StatusCode::CREATED, &KeyObject::new(key.clone(), None));
    let (post, body) = match Post::begin(&registry, &caller, SCOPE, request).await {
        Ok(begun) => begun,
        Err(answer) => return answer,
    };
    let created = create_key(&registry, &caller, body, post.reply(&kept).as_ref()).await;
    let shown =
        created.map(|c| answer(StatusCode::CREATED, &KeyObject::new(c.key, Some(c.secret))));
    post.finish(shown).await
}

async fn create_key(
    registry: &Registry,
    caller: &Caller,
    body: CreateKey,
    reply: Option<&Reply<'_, KeyRecord>>,
) -> Result<CreatedKey, ApiError> {
    let scopes = Scopes::parse(&body.scopes).map_err(|unknown| {
        ApiError::invalid_request(format!("Unknown scope `{unknown}`")).with_param("scopes")
    })?;
    let caller_has_all = caller.key.scopes.names().iter().any(|s| s == "*");
    let wider = scopes
        .names()
        .iter()
        .find(|s| !caller_has_all && (*s == "*" || !caller.key.scopes.allows(s)));
    if let Some(wider) = wider {
        return Err(ApiError::insufficient_scope(wider).with_param("scopes"));
    }
    Ok(registry
        .create_key(
            &caller.key.account_id,
            caller.key.environment,
            scopes,
            body.description,
            &caller.actor(),
            reply,
        )
        .await?)
}

/// `GET /v1/api_keys`: the caller's account's keys in its environment.
#[utoipa::path(
    get,
    path = "/v1/api_keys",
    operation_id = "list_api_keys",
    tag = "api_keys",
    summary = "List API keys",
    description = "The keys of the caller's account in its environment, newest first, \
                   revoked ones included (scope `keys:write`).",
    params(PageRequest),
    responses(
        (status = 200, description = "A page of keys", body = List<KeyObject>),
        (status = 400, description = "`invalid_request`: a bad `limit` or `starting_after`, \
                                      or an unknown parameter.", body = ErrorBody),
    ),
)]
pub async fn list(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(SCOPE)?;
    let page = PageRequest::parse(uri.query())?;
    let keys = registry
        .store
        .list_keys(
            &caller.key.account_id,
            caller.key.environment,
            page.limit,
            page.starting_after.as_deref(),
        )
        .await?
        .ok_or_else(PageRequest::unknown_cursor)?;
    let objects = keys.into_iter().map(|k| KeyObject::new(k, None)).collect();
    Ok(Json(List::from_fetched(
        objects,
        page.limit,
        |k: &KeyObject| k.id.clone(),
    )))
}

/// `DELETE /v1/api_keys/{id}`: revokes at once; revoking twice answers
/// the revoked key again.
#[utoipa::path(
    delete,
    path = "/v1/api_keys/{id}",
    operation_id = "revoke_api_key",
    tag = "api_keys",
    summary = "Revoke an API key",
    description = "At once, on every server sharing the database; revoking twice answers the \
                   revoked key again (scope `keys:write`).",
    params(("id" = String, Path, description = "The key's id (`key_…`)")),
    responses(
        (status = 200, description = "The revoked key", body = KeyObject),
        (status = 404, description = "`not_found`: no such key in the caller's account and \
                                      environment.", body = ErrorBody),
    ),
)]
pub async fn revoke(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(SCOPE)?;
    let key = registry
        .revoke_key(
            &id,
            Some((&caller.key.account_id, caller.key.environment)),
            &caller.actor(),
        )
        .await?;
    Ok(Json(KeyObject::new(key, None)))
}
