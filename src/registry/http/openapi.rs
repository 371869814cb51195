//! `GET /v1/openapi.json`: the API described in OpenAPI 3.1, generated
//! from the handlers' own request and answer types (`ToSchema`) and
//! their `#[utoipa::path]` annotations, so it changes with them.
//!
//! What `context` and `idempotency` do to every call (the key, the
//! rate-limit and request-id headers, `Idempotency-Key`, the errors they
//! answer) is said once, by [`Conventions`], for every operation it
//! applies to, as the middleware applies it to every request.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ArrayItems, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Object, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::{api_keys, audit, batches, certificates, sign, templates, verify, webhooks};

/// How utoipa names a `List<T>`'s schema: `List_` and `T`'s name.
const LIST_PREFIX: &str = "List_";

/// The security scheme's name in the document (as `security` in
/// [`ApiDoc`] names it).
const BEARER: &str = "api_key";

/// The document: every handler's path, and `ErrorBody` (`Error`) named
/// outright, since the error answers [`Conventions`] adds point at it.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Signet registry API",
        description = "Issue, list, change, suspend and revoke certificates, and manage \
                       the API keys and audit log of an account. Every answer carries \
                       `x-request-id`; errors share one JSON shape (`Error`)."
    ),
    paths(
        api_keys::create,
        api_keys::list,
        api_keys::revoke,
        audit::list,
        batches::create,
        batches::revoke,
        batches::retrieve,
        certificates::create,
        certificates::list,
        certificates::retrieve,
        certificates::change,
        certificates::revoke,
        sign::from_query,
        sign::from_body,
        templates::list,
        templates::retrieve,
        templates::preview,
        webhooks::create,
        webhooks::list,
        webhooks::retrieve,
        webhooks::change,
        webhooks::delete,
        webhooks::deliveries,
        webhooks::redeliver,
        verify::verify,
        document,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Conventions),
    security(("api_key" = [])),
    tags(
        (name = "api_keys", description = "The keys of the caller's account and environment"),
        (name = "audit_events", description = "The append-only audit log"),
        (name = "certificates", description = "Certificates: issue, read, list, change, revoke"),
        (name = "batches", description = "Many certificates issued or revoked from one request, in the background"),
        (name = "sign", description = "Signed image URLs for tools that cannot run code"),
        (name = "templates", description = "The account's templates and what a certificate must supply"),
        (name = "webhooks", description = "Webhook endpoints, their delivery attempts, redelivery"),
        (name = "verify", description = "A certificate's public standing, open without a key"),
        (name = "openapi", description = "This document"),
    )
)]
struct ApiDoc;

/// The document as served, written once.
static DOCUMENT: LazyLock<Result<Bytes, String>> = LazyLock::new(|| {
    serde_json::to_vec(&ApiDoc::openapi())
        .map(Bytes::from)
        .map_err(|error| error.to_string())
});

/// The document's schema of a string that is always `value` (an object's
/// `object` field).
pub fn tag(value: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([value]))
        .build()
}

/// The document's schema of a string that is one of `values`. (A field
/// whose schema is made by a function loses its doc comment, so the
/// function gives the `description`.)
pub fn one_of(values: impl IntoIterator<Item = &'static str>, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .description(Some(description))
        .build()
}

/// `GET /v1/openapi.json`: the document, to anyone.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "openapi_document",
    tag = "openapi",
    summary = "This document",
    description = "The API in OpenAPI 3.1, open without a key; caches may keep it for five \
                   minutes.",
    security(()),
    responses(
        (status = 200, description = "This document", body = Object,
            headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
    ),
)]
pub async fn document() -> Result<Response, ApiError> {
    let bytes = DOCUMENT.as_ref().map_err(|cause| {
        tracing::error!(%cause, "the OpenAPI document does not serialise");
        ApiError::internal()
    })?;
    let mut response = bytes.clone().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}

/// The error answers `context` gives any call with a key.
const KEYED_ERRORS: &[(&str, &str)] = &[
    (
        "401",
        "`invalid_api_key`: the key is missing, malformed, unknown or revoked.",
    ),
    (
        "403",
        "`insufficient_scope`: the key lacks the scope the operation needs.",
    ),
    (
        "429",
        "`rate_limited`: the key's requests this minute are past its plan's limit; \
         `Retry-After` says when to try again.",
    ),
    (
        "500",
        "`internal_error`: something failed on the server's side; the request id \
         finds it in the logs.",
    ),
    (
        "503",
        "`unavailable`: the server is shutting down or cannot reach its database; \
         try again shortly.",
    ),
];

/// The error answers of any operation that reads a JSON body (`body`).
const BODY_ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "`invalid_request`: malformed JSON, or an unknown, missing or wrong-typed \
         field (`param` names it).",
    ),
    ("413", "`payload_too_large`: the body is over 1 MiB."),
    (
        "415",
        "`unsupported_media_type`: the body is not `application/json`.",
    ),
];

/// The error answers of a `POST`'s `Idempotency-Key` (`idempotency`).
const IDEMPOTENCY_ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "`invalid_request`: the `Idempotency-Key` is not 1 to 255 printable ASCII \
         characters, or is given twice.",
    ),
    (
        "409",
        "`idempotency_key_reused`: the key was used with another request in the last \
         24 hours; `idempotency_key_in_use`: a request with the key is still being \
         processed.",
    ),
];

/// What every operation gets from the middleware and the body and key
/// handling, added to the document where the handlers' annotations
/// leave it out.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer sk_live_…` (live) or `sk_test_…` (sandbox)",
                    ))
                    .build(),
            ),
        );
        lists_by_reference(&mut components.schemas);
        for item in doc.paths.paths.values_mut() {
            let operations = [
                (&mut item.get, false),
                (&mut item.put, false),
                (&mut item.post, true),
                (&mut item.patch, false),
                (&mut item.delete, false),
            ];
            for (operation, is_post) in operations {
                if let Some(operation) = operation {
                    conventions(operation, is_post);
                }
            }
        }
    }
}

/// Points each list's items (`List_Certificate`: `data`) at the item's
/// named schema: utoipa writes a generic's argument out in full, which
/// would give clients a second, nameless certificate type.
fn lists_by_reference(schemas: &mut BTreeMap<String, RefOr<Schema>>) {
    for (name, schema) in schemas.iter_mut() {
        let Some(item) = name.strip_prefix(LIST_PREFIX) else {
            continue;
        };
        let RefOr::T(Schema::Object(list)) = schema else {
            continue;
        };
        if let Some(RefOr::T(Schema::Array(data))) = list.properties.get_mut("data") {
            data.items = ArrayItems::RefOrSchema(Box::new(Ref::from_schema_name(item).into()));
        }
    }
}

/// The conventions of one operation. One that declares its own security
/// (none: `/openapi.json`) does not pass the key check, so it has no
/// key errors and no rate-limit headers.
fn conventions(operation: &mut Operation, is_post: bool) {
    let keyed = operation.security.is_none();
    let mut errors: Vec<(&str, &str)> = Vec::new();
    if keyed {
        errors.extend(KEYED_ERRORS);
    }
    if operation.request_body.is_some() {
        errors.extend(BODY_ERRORS);
    }
    if is_post {
        errors.extend(IDEMPOTENCY_ERRORS);
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .push(idempotency_key());
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in errors {
        match responses.get_mut(status) {
            Some(RefOr::T(response)) => {
                response.description = format!("{} {description}", response.description);
            }
            _ => {
                responses.insert(status.to_owned(), RefOr::T(error_response(description)));
            }
        }
    }
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(response) = response {
            response.headers.extend(headers(status, keyed, is_post));
        }
    }
}

/// The headers the middleware gives an answer of `status`.
fn headers(status: &str, keyed: bool, is_post: bool) -> Vec<(String, Header)> {
    let mut headers = vec![(
        "x-request-id",
        "The request's id: the client's own when it sent a sane one (up to 64 of \
         `A-Za-z0-9._-`), else a new `req_…`. Logs and the audit log name it.",
        string(),
    )];
    // A key that fails authentication has no window to count.
    if keyed && status != "401" {
        headers.extend([
            (
                "X-RateLimit-Limit",
                "Requests per minute the key's plan allows.",
                integer(),
            ),
            (
                "X-RateLimit-Remaining",
                "Requests left in this minute.",
                integer(),
            ),
            (
                "X-RateLimit-Reset",
                "Unix time (seconds) when the minute ends.",
                integer(),
            ),
        ]);
    }
    if status == "429" {
        headers.push((
            "Retry-After",
            "Seconds to wait before trying again.",
            integer(),
        ));
    }
    if is_post && status.starts_with('2') {
        headers.push((
            "Idempotent-Replayed",
            "`true` when this is the kept answer of an earlier request with the same \
             `Idempotency-Key`.",
            string(),
        ));
    }
    headers
        .into_iter()
        .map(|(name, description, schema)| {
            let header = HeaderBuilder::new()
                .schema(schema)
                .description(Some(description))
                .build();
            (name.to_owned(), header)
        })
        .collect()
}

/// The `Idempotency-Key` header parameter every `POST` takes.
fn idempotency_key() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "1 to 255 printable ASCII characters. For 24 hours, the same key with the same \
             request answers the first answer again (`Idempotent-Replayed: true`), even after \
             a restart; with another request it is `409 idempotency_key_reused`.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255))
                .pattern(Some("^[ -~]+$")),
        ))
        .build()
}

/// An error answer: `description` and the `Error` schema.
fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build(),
        )
        .build()
}

fn string() -> Object {
    ObjectBuilder::new().schema_type(Type::String).build()
}

fn integer() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_serialises_and_describes_every_operation_s_errors() {
        let doc: serde_json::Value =
            serde_json::from_slice(DOCUMENT.as_ref().expect("serialises")).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let create = &doc["paths"]["/v1/certificates"]["post"];
        for status in [
            "201", "400", "401", "403", "409", "413", "415", "429", "500", "503",
        ] {
            assert!(create["responses"][status].is_object(), "{status}");
        }
        let open = &doc["paths"]["/v1/openapi.json"]["get"];
        assert!(open["responses"]["401"].is_null());
        assert!(open["responses"]["200"]["headers"]["x-request-id"].is_object());
    }
}
