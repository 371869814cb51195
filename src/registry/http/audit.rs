//! `GET /v1/audit_events` (scope `audit:read`): the account's audit log
//! in the caller's environment, newest first. There is no way to change
//! or delete an event.

use axum::extract::State;
use axum::http::Uri;
use axum::response::IntoResponse;
use axum::{Extension, Json};

use super::context::Caller;
use super::error::ApiError;
use super::page::{List, PageRequest};
use crate::registry::audit::AuditEventObject;
use crate::registry::Registry;

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
