//! The one place where failures become HTTP responses: status,
//! `x-stencil-error`, `no-store`, and a body an `<img>` tag or curl can show.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use thiserror::Error;

use super::state::AppState;
use crate::modifications::ModificationsError;
use crate::render::RenderError;
use crate::request::RequestError;
use crate::template::TemplateError;

/// Every way a request can fail.
#[derive(Debug, Error)]
pub enum AppError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("Invalid signature")]
    InvalidSignature,
    #[error("Unknown user")]
    UnknownUser,
    #[error(transparent)]
    Modifications(#[from] ModificationsError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("Server busy")]
    Busy,
    #[error("Method not allowed")]
    MethodNotAllowed,
}

impl AppError {
    /// The status of the spec's error table.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Request(RequestError::TooLarge(_)) => StatusCode::URI_TOO_LONG,
            AppError::Request(RequestError::UnsupportedFormat) => StatusCode::NOT_FOUND,
            AppError::Request(RequestError::Expired) => StatusCode::GONE,
            AppError::Request(_) | AppError::Modifications(_) => StatusCode::BAD_REQUEST,
            AppError::InvalidSignature => StatusCode::FORBIDDEN,
            AppError::UnknownUser | AppError::Template(TemplateError::NotFound) => {
                StatusCode::NOT_FOUND
            }
            AppError::Template(TemplateError::Rejected(_))
            | AppError::Render(
                RenderError::Rejected(_)
                | RenderError::MissingGlyphs(_)
                | RenderError::DoesNotFit(_)
                | RenderError::AssetNotFound(_)
                | RenderError::ImageRejected(_),
            ) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Render(RenderError::TooLarge(_)) => StatusCode::BAD_REQUEST,
            AppError::Render(RenderError::Failed(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The response, with a PNG body when `headers` accept images.
    pub async fn into_response_for(self, state: &AppState, headers: &HeaderMap) -> Response {
        let message = self.to_string();
        if let AppError::Render(RenderError::Failed(cause)) = &self {
            tracing::error!(%cause, "render failed");
        }
        let wants_image = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("image/"));
        // The picture shows the kind of error only: the details can be
        // anything a client sends, and each distinct picture costs a render.
        // The header carries the details.
        let image = if wants_image {
            let kind = message.split(": ").next().unwrap_or(&message);
            error_image(state, kind).await
        } else {
            None
        };
        let mut response = match image {
            Some(png) => ([(header::CONTENT_TYPE, "image/png")], png).into_response(),
            None => (
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{message}\n"),
            )
                .into_response(),
        };
        *response.status_mut() = self.status();
        let h = response.headers_mut();
        h.insert("x-stencil-error", header_value(&message));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
        match self {
            AppError::Busy => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            AppError::MethodNotAllowed => {
                h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            }
            _ => {}
        }
        response
    }
}

async fn error_image(state: &AppState, message: &str) -> Option<Bytes> {
    let renderer = state.renderer.clone();
    let owned = message.to_owned();
    let render = async move {
        tokio::task::spawn_blocking(move || renderer.render_message(&owned))
            .await
            .ok()
            .flatten()
            .map(Bytes::from)
            .ok_or(())
    };
    state
        .error_images
        .try_get_with(message.to_owned(), render)
        .await
        .ok()
}

/// A header value from any text: visible ASCII is kept, everything else is
/// written as `\u{…}`, and the result is bounded.
pub fn header_value(text: &str) -> HeaderValue {
    let mut out = String::new();
    for c in text.chars() {
        if out.len() > 400 {
            out.push('…');
            break;
        }
        if c == ' ' || c.is_ascii_graphic() {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    // Only visible ASCII and spaces remain, which a header always accepts.
    HeaderValue::from_str(&out.replace('…', "...")).unwrap_or(HeaderValue::from_static("error"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_escape_anything_but_visible_ascii() {
        let v = header_value("unknown layer `é\r\nx`");
        assert_eq!(v.to_str().unwrap(), "unknown layer `\\u{e9}\\u{d}\\u{a}x`");
        assert!(header_value(&"é".repeat(10_000)).len() < 512);
    }
}
