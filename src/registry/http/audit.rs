//! `GET /v1/audit_events` (scope `audit:read`): the account's audit log
//! in the caller's environment, newest first. There is no way to change
//! or delete an event.

use axum::extract::State;
use axum::http::Uri;
use axum::response::IntoResponse;
use axum::{Extension, Json};

use super::context::Caller;
use super::error::{ApiError, ErrorBody};
use super::page::{List, PageRequest};
use crate::registry::audit::AuditEventObject;
use crate::registry::Registry;

#[utoipa::path(
    get,
    path = "/v1/audit_events",
    operation_id = "list_audit_events",
    tag = "audit_events",
    summary = "List audit events",
    description = "The account's audit log in the caller's environment, newest first: every \
                   state-changing call, key change and failed authentication (scope \
                   `audit:read`). Nothing changes or deletes an event.",
    params(PageRequest),
    responses(
        (status = 200, description = "A page of events", body = List<AuditEventObject>),
        (status = 400, description = "`invalid_request`: a bad `limit` or `starting_after`, \
                                      or an unknown parameter.", body = ErrorBody),
    ),
)]
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
    let objects = events.into_iter().map(AuditEventObject::from).collect();
    Ok(Json(List::from_fetched(
        objects,
        page.limit,
        |e: &AuditEventObject| e.id().to_owned(),
    )))
}
