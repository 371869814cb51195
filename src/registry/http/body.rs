//! Request bodies and query strings of `/v1`, read strictly: JSON only,
//! at most 1 MiB, unknown fields refused with the field named.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Largest JSON body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body parsed into `T` (whose fields deny unknown ones).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        read(request).await?.json().map(JsonBody)
    }
}

/// A body read whole (within [`MAX_BODY_BYTES`]) but not yet parsed: an
/// idempotent `POST` hashes the bytes before it looks at them.
pub struct RawBody {
    /// The `Content-Type`, `?` when it is not text.
    content_type: Option<String>,
    pub bytes: Bytes,
}

/// Reads `request`'s body, refusing one over [`MAX_BODY_BYTES`].
pub async fn read(request: Request) -> Result<RawBody, ApiError> {
    read_within(request, MAX_BODY_BYTES).await
}

/// Reads `request`'s body, refusing one over `limit` bytes.
pub async fn read_within(request: Request, limit: usize) -> Result<RawBody, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The body is over {limit} bytes"),
        )
    };
    let headers = request.headers();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?").to_owned());
    let bytes: Bytes = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| too_large())?;
    Ok(RawBody {
        content_type,
        bytes,
    })
}

impl RawBody {
    /// Whether the body is declared as `essence` (`text/csv`), whatever
    /// its parameters.
    pub fn is(&self, essence: &str) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(|kind| declares(kind, essence))
    }

    /// The body as JSON parsed into `T` (whose fields deny unknown ones).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        // A POST with nothing to say may send no body at all.
        let json: &[u8] = match &self.content_type {
            None if self.bytes.is_empty() => b"{}",
            Some(kind) if is_json(kind) => &self.bytes,
            _ => {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "Send the body as application/json",
                ))
            }
        };
        parse(json)
    }
}

fn is_json(content_type: &str) -> bool {
    declares(content_type, "application/json")
}

/// Whether a `Content-Type` value declares the media type `essence`,
/// whatever its parameters (`; charset=utf-8`).
pub fn declares(content_type: &str, essence: &str) -> bool {
    let declared = content_type.split(';').next().unwrap_or("").trim();
    declared.eq_ignore_ascii_case(essence)
}

/// `T` from JSON text, naming the field at fault when there is one.
pub fn parse<T: DeserializeOwned>(json: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        // The path names the field at fault, an unknown one included.
        let param = error.path().to_string();
        let inner = error.inner().to_string();
        let message = format!("Invalid JSON body: {inner}");
        let error = ApiError::invalid_request(message);
        if param == "." || param.is_empty() {
            error
        } else {
            error.with_param(param)
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::invalid_request(format!("Invalid JSON body: {e}")))?;
    Ok(value)
}

/// The query string as decoded pairs; only `allowed` names are accepted,
/// each at most once.
pub fn query_pairs(
    query: Option<&str>,
    allowed: &[&str],
) -> Result<Vec<(String, String)>, ApiError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let (name, value) = (query_component(name)?, query_component(value)?);
        if !allowed.contains(&name.as_str()) {
            return Err(
                ApiError::invalid_request(format!("Unknown query parameter `{name}`"))
                    .with_param(name),
            );
        }
        if pairs.iter().any(|(n, _)| *n == name) {
            return Err(
                ApiError::invalid_request(format!("`{name}` is given twice")).with_param(name),
            );
        }
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// One name or value of a query string, decoded: `+` is a space and
/// `%XX` escapes are UTF-8.
pub fn query_component(text: &str) -> Result<String, ApiError> {
    percent_decode_str(&text.replace('+', " "))
        .decode_utf8()
        .map(|t| t.into_owned())
        .map_err(|_| ApiError::invalid_request("The query string is not UTF-8"))
}
