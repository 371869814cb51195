//! `/v1/webhook_endpoints` and `/v1/events/{id}/redeliver` (scope
//! `webhooks:write` for all of them, reading included: an endpoint's URL
//! may hold the receiver's own token), confined to the caller's account
//! and environment.

use super::body::JsonBody;
use super::context::Caller;
use super::error::{ApiError, ErrorBody};
use super::idempotency::{answer, Post};
use super::page::{List, PageRequest};
use super::webhook_json::{
    AttemptObject, ChangeEndpoint, CreateEndpoint, EndpointObject, Redeliver, RedeliveryObject,
};
use crate::registry::store::{EndpointRecord, OutboxEvent};
use crate::registry::webhook::endpoint::{EndpointChange, NewEndpoint, Owner};
use crate::registry::Registry;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

const SCOPE: &str = "webhooks:write";

fn owner(caller: &Caller) -> Owner<'_> {
    Owner {
        account_id: &caller.key.account_id,
        environment: caller.key.environment,
    }
}

/// `POST /v1/webhook_endpoints`.
#[utoipa::path(
    post,
    path = "/v1/webhook_endpoints",
    operation_id = "create_webhook_endpoint",
    tag = "webhooks",
    summary = "Make a webhook endpoint",
    description = "Events of the caller's account and environment are POSTed to `url`, signed \
                   per Standard Webhooks with the `secret` of this answer, which is never shown \
                   again (a replay for an `Idempotency-Key` answers the endpoint without it). \
                   Audited (scope `webhooks:write`).",
    request_body = CreateEndpoint,
    responses(
        (status = 201, description = "The endpoint, with its secret", body = EndpointObject),
        (status = 400, description = "`invalid_request`: an unknown event type (`param: \
                                      events`), a URL that is not http(s), too long, or points \
                                      at a private, loopback or link-local address (`param: \
                                      url`).", body = ErrorBody),
    ),
)]
pub async fn create(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    let kept =
        |e: &EndpointRecord| answer(StatusCode::CREATED, &EndpointObject::new(e.clone(), false));
    let (post, body): (_, CreateEndpoint) =
        match Post::begin(&registry, &caller, SCOPE, request).await {
            Ok(begun) => begun,
            Err(answer) => return answer,
        };
    let new = NewEndpoint {
        url: body.url,
        events: body.events,
        description: body.description,
    };
    let created = registry
        .create_endpoint(
            owner(&caller),
            new,
            &caller.actor(),
            post.reply(&kept).as_ref(),
        )
        .await
        .map_err(ApiError::from)
        .map(|e| answer(StatusCode::CREATED, &EndpointObject::new(e, true)));
    post.finish(created).await
}

/// `GET /v1/webhook_endpoints`.
#[utoipa::path(
    get,
    path = "/v1/webhook_endpoints",
    operation_id = "list_webhook_endpoints",
    tag = "webhooks",
    summary = "List webhook endpoints",
    description = "The caller's account's endpoints in its environment, newest first (scope \
                   `webhooks:write`).",
    params(PageRequest),
    responses(
        (status = 200, description = "A page of endpoints", body = List<EndpointObject>),
        (status = 400, description = "`invalid_request`: a bad `limit` or `starting_after`.",
            body = ErrorBody),
    ),
)]
pub async fn list(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(SCOPE)?;
    let page = PageRequest::parse(uri.query())?;
    let found = registry
        .store
        .list_endpoints(
            &caller.key.account_id,
            caller.key.environment,
            page.limit,
            page.starting_after.as_deref(),
        )
        .await?
        .ok_or_else(PageRequest::unknown_cursor)?;
    let objects = found
        .into_iter()
        .map(|e| EndpointObject::new(e, false))
        .collect();
    Ok(Json(List::from_fetched(
        objects,
        page.limit,
        |e: &EndpointObject| e.id.clone(),
    )))
}

/// `GET /v1/webhook_endpoints/{id}`.
#[utoipa::path(
    get,
    path = "/v1/webhook_endpoints/{id}",
    operation_id = "retrieve_webhook_endpoint",
    tag = "webhooks",
    summary = "Read a webhook endpoint",
    description = "Without its secret (scope `webhooks:write`).",
    params(("id" = String, Path, description = "The endpoint's id (`we_…`)")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointObject),
        (status = 404, description = "`not_found`: no such endpoint in the caller's account and \
                                      environment.", body = ErrorBody),
    ),
)]
pub async fn retrieve(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(SCOPE)?;
    let endpoint = registry.endpoint(&id, owner(&caller)).await?;
    Ok(Json(EndpointObject::new(endpoint, false)))
}

/// `PATCH /v1/webhook_endpoints/{id}`.
#[utoipa::path(
    patch,
    path = "/v1/webhook_endpoints/{id}",
    operation_id = "change_webhook_endpoint",
    tag = "webhooks",
    summary = "Change a webhook endpoint",
    description = "Its `url`, `events`, `description`, or `disabled`; enabling an endpoint \
                   disabled for failures resumes its pending deliveries. Audited (scope \
                   `webhooks:write`).",
    params(("id" = String, Path, description = "The endpoint's id (`we_…`)")),
    request_body = ChangeEndpoint,
    responses(
        (status = 200, description = "The changed endpoint", body = EndpointObject),
        (status = 400, description = "`invalid_request`: as for creating one.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such endpoint in the caller's account and \
                                      environment.", body = ErrorBody),
    ),
)]
pub async fn change(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ChangeEndpoint>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(SCOPE)?;
    let change = EndpointChange {
        url: body.url,
        events: body.events,
        description: body.description,
        disabled: body.disabled,
    };
    let endpoint = registry
        .change_endpoint(&id, owner(&caller), change, &caller.actor())
        .await?;
    Ok(Json(EndpointObject::new(endpoint, false)))
}

/// `DELETE /v1/webhook_endpoints/{id}`.
#[utoipa::path(
    delete,
    path = "/v1/webhook_endpoints/{id}",
    operation_id = "delete_webhook_endpoint",
    tag = "webhooks",
    summary = "Delete a webhook endpoint",
    description = "At once: its pending deliveries are dropped; its attempts stay in the log. \
                   Audited (scope `webhooks:write`).",
    params(("id" = String, Path, description = "The endpoint's id (`we_…`)")),
    responses(
        (status = 200, description = "The endpoint as it was", body = EndpointObject),
        (status = 404, description = "`not_found`: no such endpoint in the caller's account and \
                                      environment.", body = ErrorBody),
    ),
)]
pub async fn delete(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(SCOPE)?;
    let endpoint = registry
        .delete_endpoint(&id, owner(&caller), &caller.actor())
        .await?;
    Ok(Json(EndpointObject::new(endpoint, false)))
}

/// `GET /v1/webhook_endpoints/{id}/deliveries`.
#[utoipa::path(
    get,
    path = "/v1/webhook_endpoints/{id}/deliveries",
    operation_id = "list_webhook_deliveries",
    tag = "webhooks",
    summary = "List an endpoint's delivery attempts",
    description = "Every attempt to send an event to the endpoint, newest first (scope \
                   `webhooks:write`).",
    params(
        ("id" = String, Path, description = "The endpoint's id (`we_…`)"),
        PageRequest,
    ),
    responses(
        (status = 200, description = "A page of attempts", body = List<AttemptObject>),
        (status = 400, description = "`invalid_request`: a bad `limit` or `starting_after`.",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such endpoint in the caller's account and \
                                      environment.", body = ErrorBody),
    ),
)]
pub async fn deliveries(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(SCOPE)?;
    let page = PageRequest::parse(uri.query())?;
    let endpoint = registry.endpoint(&id, owner(&caller)).await?;
    let attempts = registry
        .store
        .list_attempts(&endpoint.id, page.limit, page.starting_after.as_deref())
        .await?
        .ok_or_else(PageRequest::unknown_cursor)?;
    let objects = attempts.into_iter().map(AttemptObject::new).collect();
    Ok(Json(List::from_fetched(
        objects,
        page.limit,
        |a: &AttemptObject| a.id.clone(),
    )))
}

/// `POST /v1/events/{id}/redeliver`.
#[utoipa::path(
    post,
    path = "/v1/events/{id}/redeliver",
    operation_id = "redeliver_event",
    tag = "webhooks",
    summary = "Send an event again",
    description = "A new delivery of the event, due at once, to every enabled endpoint that \
                   wants its type, or to `endpoint_id` alone; it carries the event's id as \
                   `webhook-id`, as the first did. Audited (scope `webhooks:write`).",
    params(("id" = String, Path, description = "The event's id (`evt_…`)")),
    request_body = Redeliver,
    responses(
        (status = 202, description = "The deliveries are queued", body = RedeliveryObject),
        (status = 400, description = "`invalid_request`: `endpoint_id` is disabled.",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such event or endpoint in the caller's \
                                      account and environment.", body = ErrorBody),
    ),
)]
pub async fn redeliver(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let kept = |(event, endpoints): &(OutboxEvent, Vec<String>)| {
        answer(
            StatusCode::ACCEPTED,
            &RedeliveryObject::new(event, endpoints),
        )
    };
    let (post, body): (_, Redeliver) = match Post::begin(&registry, &caller, SCOPE, request).await {
        Ok(begun) => begun,
        Err(answer) => return answer,
    };
    let done = registry
        .redeliver_event(
            &id,
            owner(&caller),
            body.endpoint_id.as_deref(),
            &caller.actor(),
            post.reply(&kept).as_ref(),
        )
        .await
        .map_err(ApiError::from)
        .map(|(event, endpoints)| {
            answer(
                StatusCode::ACCEPTED,
                &RedeliveryObject::new(&event, &endpoints),
            )
        });
    post.finish(done).await
}
