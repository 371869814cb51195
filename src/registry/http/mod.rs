//! `/v1`: the registry's HTTP API. Only this module knows the registry's
//! status codes and headers.
//!
//! The path of a call: `context` (request id, key check, rate limit) →
//! the handler (scope, then `body` and `page` parse the input; a `POST`
//! goes through `idempotency`, which claims its key or replays the key's
//! answer) → the domain (`registry::keys`, `registry::certificate`) →
//! `store`. Every failure becomes an [`ApiError`] and is written by
//! `context` in the one JSON shape.
//!
//! Layout: `context` the middleware; `error` the error shape; `body` JSON
//! bodies and query strings; `idempotency` `Idempotency-Key`s; `page`
//! lists; `api_keys`, `audit`, `batches`, `certificates`, `sign`,
//! `templates`, `webhooks` and `verify` (open, like `openapi`) the
//! handlers (`certificate_json`, `batch_json` and `webhook_json` their
//! bodies and objects);
//! `openapi` the OpenAPI document generated from them.

mod api_keys;
mod audit;
mod batch_json;
mod batches;
mod body;
mod certificate_json;
mod certificates;
mod context;
mod error;
mod idempotency;
mod openapi;
mod page;
mod sign;
mod templates;
mod verify;
mod webhook_json;
mod webhooks;

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{middleware, Router};

pub use error::ApiError;

use super::Registry;

/// The `/v1` routes, to be nested at `/v1` by the server's router.
pub fn router<S: Clone + Send + Sync + 'static>(registry: Registry) -> Router<S> {
    // Open to anyone: the API's description holds nothing secret, and a
    // client or tool reads it before it has a key.
    let open = Router::new()
        .route("/openapi.json", get(openapi::document))
        // Open too: a certificate's id is the credential, as for its
        // images, and an employer checking one has no key.
        .route("/verify/{id}", get(verify::verify))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            registry.clone(),
            context::open_context,
        ));
    Router::new()
        .route("/api_keys", post(api_keys::create).get(api_keys::list))
        .route("/api_keys/{id}", delete(api_keys::revoke))
        .route("/audit_events", get(audit::list))
        .route("/batches/{id}", get(batches::retrieve))
        .route("/certificates/batch", post(batches::create))
        .route("/certificates/batch_revoke", post(batches::revoke))
        .route(
            "/certificates",
            post(certificates::create).get(certificates::list),
        )
        .route(
            "/certificates/{id}",
            get(certificates::retrieve).patch(certificates::change),
        )
        .route("/certificates/{id}/revoke", post(certificates::revoke))
        .route("/sign", get(sign::from_query).post(sign::from_body))
        .route("/templates", get(templates::list))
        .route("/templates/{id}", get(templates::retrieve))
        .route("/templates/{id}/preview.png", get(templates::preview))
        .route(
            "/webhook_endpoints",
            post(webhooks::create).get(webhooks::list),
        )
        .route(
            "/webhook_endpoints/{id}",
            get(webhooks::retrieve)
                .patch(webhooks::change)
                .delete(webhooks::delete),
        )
        .route(
            "/webhook_endpoints/{id}/deliveries",
            get(webhooks::deliveries),
        )
        .route("/events/{id}/redeliver", post(webhooks::redeliver))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            registry.clone(),
            context::request_context,
        ))
        .merge(open)
        .with_state(registry)
}

async fn not_found() -> ApiError {
    ApiError::not_found("No such endpoint")
}

async fn method_not_allowed(method: Method) -> Response {
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("This endpoint does not take {method}"),
    )
    .into_response();
    // axum sets `Allow` on its own 405; a fallback's answer has none, so
    // the client is at least told the answer is not cacheable.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
