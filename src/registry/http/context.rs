//! What every `/v1` request goes through before its handler, and every
//! answer after it: the request id, the key check, the rate limit, and
//! the rendering of errors with the request id. The routes open without a
//! key (`/openapi.json`) go through [`open_context`], which skips the key
//! and its rate limit and does the rest.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::registry::keys::{audit_by, Actor, AuthError};
use crate::registry::limiter::STRANGER_LIMIT_PER_MINUTE;
use crate::registry::store::{now_us, KeyRecord, NewAuditEvent, Window};
use crate::registry::Registry;

/// Longest client-given request id echoed back.
const MAX_REQUEST_ID: usize = 64;

/// The authenticated caller of a request, for its handler.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: KeyRecord,
    pub request_id: String,
    /// The client's address as the connection saw it.
    pub ip: Option<String>,
}

impl Caller {
    /// Refuses a key without `scope`.
    pub fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.key.scopes.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::insufficient_scope(scope))
        }
    }

    /// The caller as the audit log names it.
    pub fn actor(&self) -> Actor {
        Actor {
            kind: "api_key",
            id: Some(self.key.id.clone()),
            request_id: Some(self.request_id.clone()),
            ip: self.ip.clone(),
        }
    }
}

/// `http://` and the host this request reached, checked to be a host (so
/// no header can inject a path or a scheme); `localhost` when it is not
/// one. The base of links that have no configured one.
pub fn request_base(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// The middleware of every `/v1` route and fallback that takes a key.
pub async fn request_context(
    State(registry): State<Registry>,
    mut request: Request,
    next: Next,
) -> Response {
    let call = Call::of(&request);
    let mut window = None;
    let mut key_id = None;
    let admitted = admit(
        &registry,
        request.headers(),
        &call.request_id,
        call.ip.as_deref(),
    )
    .await;
    let response = match admitted {
        Ok((key, counted)) => {
            window = Some((counted, key.rate_limit_per_minute));
            key_id = Some(key.id.clone());
            if counted.count > key.rate_limit_per_minute {
                rate_limited(counted)
            } else {
                request.extensions_mut().insert(Caller {
                    key,
                    request_id: call.request_id.clone(),
                    ip: call.ip.clone(),
                });
                next.run(request).await
            }
        }
        Err(error) if error.status == StatusCode::UNAUTHORIZED => {
            // No key to count against: the client's address is counted,
            // so these answers carry rate-limit headers too and guessing
            // keys is slowed down.
            let limit = STRANGER_LIMIT_PER_MINUTE;
            let counted = registry
                .strangers
                .hit(call.ip.as_deref().unwrap_or("unknown"), now_us());
            window = Some((counted, limit));
            if counted.count > limit {
                rate_limited(counted)
            } else {
                error.into_response()
            }
        }
        Err(error) => error.into_response(),
    };
    call.finish(&registry, response, window, key_id.as_deref())
}

/// The middleware of the routes open without a key (`/openapi.json`,
/// which describes the API and holds nothing secret): no key is read,
/// counted or audited, but the answer has its request id, and an error
/// the one shape, like every other `/v1` answer.
pub async fn open_context(
    State(registry): State<Registry>,
    request: Request,
    next: Next,
) -> Response {
    let call = Call::of(&request);
    let response = next.run(request).await;
    call.finish(&registry, response, None, None)
}

/// What both middlewares know of a request before it runs.
struct Call {
    request_id: String,
    /// The client's address as the connection saw it.
    ip: Option<String>,
    method: Method,
    path: String,
}

impl Call {
    fn of(request: &Request) -> Call {
        Call {
            request_id: request_id(request.headers()),
            ip: request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip().to_string()),
            method: request.method().clone(),
            path: request.uri().path().to_owned(),
        }
    }

    /// The answer as sent: an error written in the one shape with the
    /// request id, `x-request-id`, the key's window when it was counted,
    /// and the log line.
    fn finish(
        self,
        registry: &Registry,
        mut response: Response,
        window: Option<(Window, i64)>,
        key_id: Option<&str>,
    ) -> Response {
        let request_id = &self.request_id;
        if let Some(error) = response.extensions_mut().remove::<ApiError>() {
            let mut rendered = error.render(request_id, registry.docs_url());
            // Headers the error's source set (`Allow`, `Retry-After`) stay.
            for (name, value) in response.headers() {
                if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                    rendered.headers_mut().insert(name.clone(), value.clone());
                }
            }
            response = rendered;
        }
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert("x-request-id", value);
        }
        if let Some((counted, limit)) = window {
            let number = |n: i64| HeaderValue::from(n.max(0));
            headers.insert("x-ratelimit-limit", number(limit));
            headers.insert("x-ratelimit-remaining", number(limit - counted.count));
            headers.insert(
                "x-ratelimit-reset",
                number(counted.resets_at.div_euclid(1_000_000)),
            );
        }
        tracing::info!(
            request_id = %request_id,
            method = %self.method,
            // A key put where an id belongs is the client's mistake; the
            // log must not keep it.
            path = %crate::http::escape(&crate::registry::ids::redact_keys(&self.path)),
            status = response.status().as_u16(),
            key = key_id.unwrap_or("-"),
            "registry request"
        );
        response
    }
}

/// The request's key, checked, and its window counted with this request.
async fn admit(
    registry: &Registry,
    headers: &HeaderMap,
    request_id: &str,
    ip: Option<&str>,
) -> Result<(KeyRecord, Window), ApiError> {
    let presented = bearer(headers);
    let key = match registry.authenticate(presented.as_deref()).await {
        Ok(key) => key,
        Err(AuthError::Registry(error)) => return Err(error.into()),
        Err(failure) => {
            audit_failure(registry, &failure, request_id, ip).await;
            return Err(ApiError::invalid_api_key(match failure {
                AuthError::Missing => "No API key given: send `Authorization: Bearer sk_…`",
                AuthError::Revoked(_) => "This API key was revoked",
                _ => "Invalid API key",
            }));
        }
    };
    let window = registry.count_request(&key, now_us()).await?;
    Ok((key, window))
}

/// The `Authorization: Bearer` value, when there is one. A value that is
/// not one counts as malformed: `Some("")` never matches a key.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?;
    let text = value.to_str().unwrap_or("");
    let (scheme, key) = text.split_once(' ').unwrap_or((text, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(key.trim().to_owned())
    } else {
        Some(String::new())
    }
}

/// Records a failed authentication. A failure to record it is logged, and
/// the answer is still the 401.
async fn audit_failure(
    registry: &Registry,
    failure: &AuthError,
    request_id: &str,
    ip: Option<&str>,
) {
    let actor = Actor {
        kind: "anonymous",
        request_id: Some(request_id.to_owned()),
        ip: ip.map(str::to_owned),
        ..Actor::default()
    };
    let mut event = NewAuditEvent {
        action: "auth.failed",
        status: Some(401),
        changes: Some(serde_json::json!({"reason": failure.to_string()})),
        ..audit_by(&actor)
    };
    if let AuthError::Revoked(key) = failure {
        event.account_id = Some(key.account_id.clone());
        event.livemode = key.environment.is_live();
        event.actor_type = "api_key";
        event.actor_id = Some(key.id.clone());
    }
    if let Err(error) = registry.store.record(&event).await {
        tracing::warn!(%error, "could not record a failed authentication");
    }
}

fn rate_limited(window: Window) -> Response {
    let wait = ((window.resets_at - now_us()).max(0) + 999_999) / 1_000_000;
    let wait = wait.max(1);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("Too many requests with this API key; try again in {wait} s"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    response
}

/// The client's request id when it is sane, else a new `req_…`.
fn request_id(headers: &HeaderMap) -> String {
    let given = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    match given {
        Some(id) => id.to_owned(),
        None => crate::registry::ids::new_id("req_").unwrap_or_else(|_| "req_unknown".into()),
    }
}
