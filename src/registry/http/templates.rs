//! `/v1/templates`: the account's templates with what a certificate must
//! supply, and a preview of each (either certificate scope: whoever
//! reads or issues certificates needs them).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use super::context::{request_base, Caller};
use super::error::{ApiError, ErrorBody};
use super::page::{List, PageRequest};
use crate::registry::templates::{PreviewError, TemplateInfo};
use crate::registry::Registry;

/// A template's field as the contract shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TemplateField)]
struct FieldObject {
    /// The name a certificate's `fields` give it by.
    name: String,
    /// Whether every certificate must give it.
    required: bool,
}

/// A template as the contract shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Template)]
pub struct TemplateObject {
    #[schema(example = "TEafv3AfNptmzii4zj2jkc")]
    id: String,
    #[schema(schema_with = template_tag)]
    object: &'static str,
    width: f32,
    height: f32,
    /// The text layer that takes the recipient's name.
    recipient_name_layer: String,
    fields: Vec<FieldObject>,
    #[schema(format = "uri")]
    preview_url: String,
}

fn template_tag() -> utoipa::openapi::Object {
    super::openapi::tag("template")
}

impl TemplateObject {
    fn new(info: TemplateInfo, api: &str) -> TemplateObject {
        TemplateObject {
            preview_url: format!("{api}/v1/templates/{}/preview.png", info.id),
            object: "template",
            width: info.width,
            height: info.height,
            recipient_name_layer: info.declaration.name_layer,
            fields: info
                .declaration
                .fields
                .into_iter()
                .map(|f| FieldObject {
                    name: f.name,
                    required: f.required,
                })
                .collect(),
            id: info.id,
        }
    }
}

/// Templates are read by keys that read or issue certificates.
fn require(caller: &Caller) -> Result<(), ApiError> {
    caller
        .require("certificates:read")
        .or_else(|_| caller.require("certificates:write"))
}

/// `GET /v1/templates`: by id, paged by cursor.
#[utoipa::path(
    get,
    path = "/v1/templates",
    operation_id = "list_templates",
    tag = "templates",
    summary = "List templates",
    description = "The account's templates by id, with what a certificate must supply (scope \
                   `certificates:read` or `certificates:write`).",
    params(PageRequest),
    responses(
        (status = 200, description = "A page of templates", body = List<TemplateObject>),
        (status = 400, description = "`invalid_request`: a bad `limit` or `starting_after`, \
                                      or an unknown parameter.", body = ErrorBody),
    ),
)]
pub async fn list(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<impl IntoResponse, ApiError> {
    require(&caller)?;
    let page = PageRequest::parse(uri.query())?;
    let all = registry.templates_of(&caller.key.account_id).await?;
    let start = match &page.starting_after {
        None => 0,
        Some(cursor) => {
            all.iter()
                .position(|t| t.id == *cursor)
                .ok_or_else(PageRequest::unknown_cursor)?
                + 1
        }
    };
    let api = request_base(&headers);
    let fetched: Vec<TemplateObject> = all
        .into_iter()
        .skip(start)
        .take(page.limit as usize + 1)
        .map(|info| TemplateObject::new(info, &api))
        .collect();
    Ok(Json(List::from_fetched(fetched, page.limit, |t| {
        t.id.clone()
    })))
}

/// `GET /v1/templates/{id}`.
#[utoipa::path(
    get,
    path = "/v1/templates/{id}",
    operation_id = "retrieve_template",
    tag = "templates",
    summary = "Read a template",
    description = "Scope `certificates:read` or `certificates:write`.",
    params(("id" = String, Path, description = "The template's id")),
    responses(
        (status = 200, description = "The template", body = TemplateObject),
        (status = 400, description = "`invalid_template`: the template is unusable.",
            body = ErrorBody),
        (status = 404, description = "`not_found`: the account has no such template.",
            body = ErrorBody),
    ),
)]
pub async fn retrieve(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    require(&caller)?;
    let info = registry
        .template_info(&caller.key.account_id, &id)
        .await
        .map_err(ApiError::from)?;
    Ok(Json(TemplateObject::new(info, &request_base(&headers))))
}

/// `GET /v1/templates/{id}/preview.png`: the template with its own text.
#[utoipa::path(
    get,
    path = "/v1/templates/{id}/preview.png",
    operation_id = "preview_template",
    tag = "templates",
    summary = "Preview a template",
    description = "The template drawn with its own text, as a PNG (scope \
                   `certificates:read` or `certificates:write`). Send `If-None-Match` with \
                   its `ETag` to be answered `304` while it is unchanged.",
    params(
        ("id" = String, Path, description = "The template's id"),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` of an earlier answer"),
    ),
    responses(
        (status = 200, description = "The preview", content(("image/png")),
            headers(
                ("ETag" = String, description = "The preview's version"),
                ("Cache-Control" = String, description = "`private, no-cache`: behind a key, \
                                                         so no shared cache keeps it"),
            )),
        (status = 304, description = "Unchanged since the `ETag` sent",
            headers(("ETag" = String, description = "The preview's version"))),
        (status = 400, description = "`invalid_template`: the template is unusable.",
            body = ErrorBody),
        (status = 404, description = "`not_found`: the account has no such template.",
            body = ErrorBody),
    ),
)]
pub async fn preview(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require(&caller)?;
    let preview = registry
        .template_preview(&caller.key.account_id, &id)
        .await?
        .map_err(|error| match error {
            PreviewError::NotFound => ApiError::not_found(format!("No template with id {id}")),
            PreviewError::Rejected(why) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_template",
                format!("Template {id} is unusable: {why}"),
            ),
            PreviewError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "No render could start now; try again shortly",
            ),
        })?;
    let etag = HeaderValue::from_str(&preview.etag).unwrap_or(HeaderValue::from_static("\"\""));
    let revalidated = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|given| given == etag);
    let mut response = if revalidated {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "image/png")], preview.png).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, etag);
    // Behind a key: no shared cache may keep it.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(response)
}
