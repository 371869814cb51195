//! The one mapping from the registry's failures to `/v1` answers: a
//! status and the contract's JSON error object.
//!
//! A handler returns an [`ApiError`]; its response carries the error as an
//! extension, and the request's middleware (`context`), which knows the
//! request id, writes the body. So every error, from a handler, an
//! extractor or the middleware itself, has the same shape.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::registry::error::RegistryError;

/// The `Retry-After` of a `503`, in seconds: an unreachable database is
/// noticed within the pool's wait of two seconds, so a client asking
/// again this soon costs little and is served as soon as it is back.
const RETRY_UNAVAILABLE_SECS: u32 = 1;

/// A `/v1` error: a status, the contract's code, a message and maybe the
/// field at fault.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            param: None,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> ApiError {
        self.param = Some(param.into());
        self
    }

    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn invalid_api_key(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "invalid_api_key", message)
    }

    pub fn insufficient_scope(scope: &str) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("This API key lacks the scope `{scope}`"),
        )
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side; the request id identifies it in our logs",
        )
    }

    /// The JSON body of the contract.
    pub fn body(&self, request_id: &str, docs_url: &str) -> ErrorBody {
        ErrorBody {
            error: ErrorObject {
                code: self.code,
                message: self.message.clone(),
                param: self.param.clone(),
                documentation_url: format!("{docs_url}/errors#{}", self.code),
                request_id: request_id.to_owned(),
            },
        }
    }

    /// The finished response, for the middleware.
    pub fn render(&self, request_id: &str, docs_url: &str) -> Response {
        let mut response =
            (self.status, axum::Json(self.body(request_id, docs_url))).into_response();
        response
            .headers_mut()
            .insert("cache-control", HeaderValue::from_static("no-store"));
        response
    }
}

/// The body of every `/v1` error answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    error: ErrorObject,
}

/// The contract's error object.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorObject {
    /// What went wrong, for programs: `invalid_request`, `not_found`, ….
    #[schema(value_type = String, example = "invalid_template")]
    code: &'static str,
    /// What went wrong, for people; never the server's internals.
    message: String,
    /// The one field, parameter or header at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    param: Option<String>,
    /// The page that documents `code`.
    #[schema(format = "uri")]
    documentation_url: String,
    /// The request's id, as its `x-request-id` header gives it.
    #[schema(example = "req_8Jc2qfEw3LnVt6sZpK1dYh")]
    request_id: String,
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> ApiError {
        match error {
            RegistryError::NotFound { kind, id } => {
                ApiError::not_found(format!("No {kind} with id {id}"))
            }
            RegistryError::Invalid { param, message } => ApiError {
                param,
                ..ApiError::invalid_request(message)
            },
            RegistryError::InvalidTemplate(message) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_template", message)
                    .with_param("template_id")
            }
            RegistryError::InvalidField { param, message } => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", message).with_param(param)
            }
            RegistryError::InvalidTransition(message) => {
                ApiError::new(StatusCode::CONFLICT, "invalid_transition", message)
            }
            RegistryError::BatchTooLarge { limit } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "batch_too_large",
                format!(
                    "A batch of this account holds at most {limit} rows; \
                     split it into several batches"
                ),
            ),
            RegistryError::UnknownAccount(_) => ApiError::not_found("No such account"),
            RegistryError::Unavailable(cause) => {
                tracing::warn!(%cause, "registry database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "The registry cannot reach its database; try again shortly",
                )
            }
            RegistryError::Config(cause) | RegistryError::Database(cause) => {
                tracing::error!(%cause, "registry request failed");
                ApiError::internal()
            }
        }
    }
}

/// The error travels in the response's extensions to the middleware,
/// which writes it with the request id.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE || self.code == "idempotency_key_in_use" {
            // The contract's `503` is a passing state, and so is a key
            // still in use (its request finishes, or its crashed process
            // is seen gone within seconds); the client is told when to
            // come back rather than left to guess or give up.
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(RETRY_UNAVAILABLE_SECS),
            );
        }
        response.extensions_mut().insert(self);
        response
    }
}
