//! The one place where failures become HTTP responses: status,
//! `x-stencil-error`, `no-store`, `nosniff`, and a body an `<img>` tag or
//! curl can show.
//!
//! A message may echo what a client sent (a parameter or layer name, an
//! option's value, serde's account of a JSON field). It is escaped here,
//! once, for every error whatever produced it: the header, the text body
//! and the access log carry the same text, in which anything but visible
//! ASCII is written as an escape (`\r`, `\n`, `\t`, `\\`, `\u{202e}`), so
//! a terminal, a log viewer or a browser shows what was sent and never acts
//! on it, and whose length is bounded.

use std::fmt::Write as _;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use thiserror::Error;

use super::head::HeadError;
use super::state::AppState;
use crate::modifications::ModificationsError;
use crate::render::RenderError;
use crate::request::RequestError;
use crate::template::TemplateError;

/// The longest escaped message, in bytes; longer ones end in `...`.
pub const MAX_MESSAGE_BYTES: usize = 512;

/// Every way a request can fail.
#[derive(Debug, Error)]
pub enum AppError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Head(#[from] HeadError),
    #[error("Invalid signature")]
    InvalidSignature,
    #[error("Unknown user")]
    UnknownUser,
    /// No certificate has the id a `/c/` URL names.
    #[error("Unknown certificate")]
    UnknownCertificate,
    /// The registry could not say what a certificate shows.
    #[error("Registry unavailable")]
    RegistryUnavailable,
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
    /// A handler panicked: the same answer as a failed render.
    #[error("Render failed")]
    Panicked,
}

impl AppError {
    /// The status of the spec's error table.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Request(RequestError::TooLarge(_))
            | AppError::Head(HeadError::UriTooLong(_)) => StatusCode::URI_TOO_LONG,
            AppError::Head(HeadError::TooLarge(_)) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            AppError::Request(RequestError::UnsupportedFormat) => StatusCode::NOT_FOUND,
            AppError::Request(RequestError::Expired) => StatusCode::GONE,
            AppError::Request(_)
            | AppError::Head(HeadError::Malformed(_))
            | AppError::Modifications(_) => StatusCode::BAD_REQUEST,
            AppError::InvalidSignature => StatusCode::FORBIDDEN,
            AppError::UnknownUser
            | AppError::UnknownCertificate
            | AppError::Template(TemplateError::NotFound) => StatusCode::NOT_FOUND,
            AppError::Template(TemplateError::Rejected(_))
            | AppError::Render(
                RenderError::Rejected(_)
                | RenderError::MissingGlyphs(_)
                | RenderError::DoesNotFit(_)
                | RenderError::AssetNotFound(_)
                | RenderError::ImageRejected(_),
            ) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Render(RenderError::TooLarge(_)) => StatusCode::BAD_REQUEST,
            AppError::Render(RenderError::Failed(_)) | AppError::Panicked => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            AppError::Busy
            | AppError::Render(RenderError::Busy)
            | AppError::RegistryUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The message as every response carries it: escaped and bounded.
    pub fn message(&self) -> String {
        escape(&self.to_string())
    }

    /// The headers every error response has, whichever layer answers.
    fn headers(&self, message: &str) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = vec![
            (
                HeaderName::from_static("x-stencil-error"),
                // Already escaped: visible ASCII and spaces only.
                HeaderValue::from_str(message).unwrap_or(HeaderValue::from_static("error")),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            // The body echoes client text: never let a browser guess it is
            // markup.
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::VARY, HeaderValue::from_static("Accept")),
        ];
        match self {
            AppError::Busy
            | AppError::Render(RenderError::Busy)
            | AppError::RegistryUnavailable => {
                headers.push((header::RETRY_AFTER, HeaderValue::from_static("1")))
            }
            AppError::MethodNotAllowed => {
                headers.push((header::ALLOW, HeaderValue::from_static("GET, HEAD")));
            }
            _ => {}
        }
        headers
    }

    fn log(&self) {
        if let AppError::Render(RenderError::Failed(cause)) = self {
            tracing::error!(%cause, "render failed");
        }
    }

    /// The response with a text body, for callers with no state at hand.
    pub fn text_response(self) -> Response {
        self.log();
        let message = self.message();
        self.respond(message, None)
    }

    fn respond(self, message: String, png: Option<Bytes>) -> Response {
        let mut response = match png {
            Some(png) => ([(header::CONTENT_TYPE, "image/png")], png).into_response(),
            None => (
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{message}\n"),
            )
                .into_response(),
        };
        *response.status_mut() = self.status();
        response.headers_mut().extend(self.headers(&message));
        response
    }

    /// The response, with a PNG body when `headers` accept images.
    pub async fn into_response_for(self, state: &AppState, headers: &HeaderMap) -> Response {
        self.log();
        let message = self.message();
        let wants_image = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("image/"));
        // The picture shows the kind of error only: the details can be
        // anything a client sends, and each distinct picture costs a render.
        // The header carries the details.
        let png = if wants_image {
            let kind = message.split(": ").next().unwrap_or(&message);
            error_image(state, kind).await
        } else {
            None
        };
        self.respond(message, png)
    }

    /// The whole HTTP/1.1 response as bytes, for the connection layer,
    /// which answers heads hyper never parses: the same status, headers
    /// and text body as [`AppError::text_response`], and a close.
    pub fn raw_response(&self) -> Vec<u8> {
        let message = self.message();
        let status = self.status();
        let body = format!("{message}\n");
        let mut out = format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_str(),
            status.canonical_reason().unwrap_or("Error")
        );
        for (name, value) in self.headers(&message) {
            // Every value is visible ASCII (built from escaped text).
            let _ = write!(out, "{name}: {}\r\n", value.to_str().unwrap_or("error"));
        }
        let _ = write!(
            out,
            "content-type: text/plain; charset=utf-8\r\n\
             access-control-allow-origin: *\r\n\
             access-control-expose-headers: x-stencil-error\r\n\
             connection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        out.into_bytes()
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

/// `text` with everything but visible ASCII and spaces written as an
/// escape, at most [`MAX_MESSAGE_BYTES`] long. A backslash is doubled, so
/// an escape in the output always means the character, never the text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE_BYTES) + 8);
    for c in text.chars() {
        let before = out.len();
        match c {
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            _ => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
        // Never cut an escape in half.
        if out.len() > MAX_MESSAGE_BYTES - 3 {
            out.truncate(before);
            out.push_str("...");
            break;
        }
    }
    out
}

/// A header value from any text, escaped as [`escape`] does.
pub fn header_value(text: &str) -> HeaderValue {
    // Only visible ASCII and spaces remain, which a header always accepts.
    HeaderValue::from_str(&escape(text)).unwrap_or(HeaderValue::from_static("error"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_escape_anything_but_visible_ascii() {
        assert_eq!(
            escape("unknown layer `é\r\nx\u{202e}\u{0}\u{1b}[31m\\`"),
            "unknown layer `\\u{e9}\\r\\nx\\u{202e}\\u{0}\\u{1b}[31m\\\\`"
        );
        let v = header_value("a\tb\u{85}");
        assert_eq!(v.to_str().unwrap(), "a\\tb\\u{85}");
    }

    #[test]
    fn messages_are_bounded_without_cutting_an_escape() {
        for long in ["é".repeat(10_000), "x".repeat(10_000), "\\".repeat(999)] {
            let out = escape(&long);
            assert!(out.len() <= MAX_MESSAGE_BYTES, "{}", out.len());
            assert!(out.ends_with("..."));
            let kept = out.trim_end_matches("...");
            assert!(kept.ends_with('}') || kept.ends_with('x') || kept.ends_with("\\\\"));
        }
        assert_eq!(escape("short"), "short");
    }

    #[test]
    fn a_raw_answer_has_the_same_headers_and_body_as_a_mapped_one() {
        let raw =
            AppError::from(HeadError::Malformed("a\r\nX-Injected: yes".into())).raw_response();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("\r\nx-stencil-error: Bad request: a\\r\\nX-Injected: yes\r\n"));
        assert!(head.contains("\r\nx-content-type-options: nosniff\r\n"));
        assert!(head.contains("\r\ncache-control: no-store\r\n"));
        assert!(!head.contains("\r\nX-Injected"));
        assert_eq!(body, "Bad request: a\\r\\nX-Injected: yes\n");
        assert!(head.ends_with(&format!("\r\ncontent-length: {}", body.len())));
    }
}
