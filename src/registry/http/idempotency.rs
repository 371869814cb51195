//! `Idempotency-Key` on every `POST` under `/v1`: the key checked and
//! claimed before the handler's work, the answer kept, and that answer
//! replayed to the key's retries for 24 hours (`store::idempotency` holds
//! the claim's rules and why a key makes at most one change).
//!
//! A handler reads its `POST` through [`Post::begin`], passes
//! [`Post::reply`] to the domain (which writes the answer in the change's
//! own transaction) and answers through [`Post::finish`].
//!
//! What is kept is the answer of a request that ran: a success, or a 4xx
//! about the request itself (a refused field, an unknown certificate). An
//! answer that says nothing about the request is not, so a retry runs
//! again: a 5xx or `unavailable` (it may work next time), a 409 (a
//! conflict of the moment). Neither is anything refused before the body
//! is read: a missing scope (another key of the account may hold it), a
//! body too large; 401 and 429 never reach a handler.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::body;
use super::context::Caller;
use super::error::ApiError;
use crate::registry::store::{
    fingerprint, now_us, Claim, Claimed, IdempotencyKey, KeptAnswer, Reply,
};
use crate::registry::Registry;

/// The request header, as the error's `param` names it.
const HEADER: &str = "Idempotency-Key";
/// Longest key, in bytes (all ASCII).
const MAX_KEY_BYTES: usize = 255;

/// A `POST` under way, holding its key's claim when it sent one.
pub struct Post<'a> {
    registry: &'a Registry,
    caller: &'a Caller,
    /// `None` without an `Idempotency-Key`: nothing is kept.
    claim: Option<Claim>,
    /// Set by the domain once it wrote the answer in its transaction.
    kept: AtomicBool,
}

impl<'a> Post<'a> {
    /// Checks the caller's `scope`, the key and the body's size, claims
    /// the key and parses the body. `Err` is the answer to send at once: a
    /// replay, a conflict over the key, or a refusal (a body refused
    /// after the claim is kept as the key's answer).
    pub async fn begin<T: DeserializeOwned>(
        registry: &'a Registry,
        caller: &'a Caller,
        scope: &str,
        request: Request,
    ) -> Result<(Post<'a>, T), Response> {
        caller.require(scope).map_err(IntoResponse::into_response)?;
        Post::begin_with(registry, caller, request, body::MAX_BODY_BYTES, |raw| {
            raw.json()
        })
        .await
    }

    /// The same for a body of up to `limit` bytes read by `parse` (a CSV
    /// upload), the caller's scope checked already.
    pub async fn begin_with<T>(
        registry: &'a Registry,
        caller: &'a Caller,
        request: Request,
        limit: usize,
        parse: impl FnOnce(&body::RawBody) -> Result<T, ApiError>,
    ) -> Result<(Post<'a>, T), Response> {
        let key = idempotency_key(request.headers()).map_err(IntoResponse::into_response)?;
        let method = request.method().as_str().to_owned();
        let target = request.uri().path_and_query().map_or_else(
            || request.uri().path().to_owned(),
            |p| p.as_str().to_owned(),
        );
        let raw = body::read_within(request, limit)
            .await
            .map_err(IntoResponse::into_response)?;
        let mut post = Post {
            registry,
            caller,
            claim: None,
            kept: AtomicBool::new(false),
        };
        if let Some(key) = key {
            let key = IdempotencyKey {
                account_id: caller.key.account_id.clone(),
                environment: caller.key.environment,
                key,
            };
            let print = fingerprint(&method, &target, &raw.bytes);
            match registry
                .store
                .claim_idempotency(&key, &print, now_us())
                .await
            {
                Ok(Claimed::Fresh(claim)) => post.claim = Some(claim),
                Ok(Claimed::Replay(answer)) => return Err(respond(answer, true)),
                Ok(Claimed::Reused) => return Err(reused().into_response()),
                Ok(Claimed::InUse) => return Err(in_use().into_response()),
                Err(error) => return Err(ApiError::from(error).into_response()),
            }
        }
        match parse(&raw) {
            Ok(body) => Ok((post, body)),
            Err(error) => Err(post.finish(Err(error)).await),
        }
    }

    /// What the domain writes in its transaction to keep `answer` of what
    /// it made; `None` without a key.
    pub fn reply<'b, T>(
        &'b self,
        answer: &'b (dyn Fn(&T) -> KeptAnswer + Send + Sync),
    ) -> Option<Reply<'b, T>> {
        self.claim.as_ref().map(|claim| Reply {
            claim,
            answer,
            kept: &self.kept,
        })
    }

    /// The answer to `outcome`, kept or released as the module's doc
    /// says. A claim another request took over meanwhile (this one ran
    /// past [`ABANDONED_AFTER_US`](crate::registry::store::ABANDONED_AFTER_US))
    /// is answered `idempotency_key_in_use`: the other holds the key now.
    pub async fn finish(self, outcome: Result<KeptAnswer, ApiError>) -> Response {
        let Some(claim) = &self.claim else {
            return match outcome {
                Ok(answer) => respond(answer, false),
                Err(error) => error.into_response(),
            };
        };
        let store = &self.registry.store;
        match outcome {
            Ok(answer) => {
                // Every change keeps its answer in its own transaction; a
                // success that wrote nothing keeps it here.
                if !self.kept.load(Ordering::SeqCst) {
                    if let Err(error) = store.keep_answer(claim, &answer).await {
                        tracing::warn!(%error, "could not keep an idempotent answer");
                    }
                }
                respond(answer, false)
            }
            Err(error) => {
                let held = if is_kept(error.status) {
                    let body = error.body(&self.caller.request_id, self.registry.docs_url());
                    store.keep_answer(claim, &answer(error.status, &body)).await
                } else {
                    store.release_claim(claim).await
                };
                match held {
                    Ok(true) => error.into_response(),
                    Ok(false) => in_use().into_response(),
                    Err(cause) => {
                        // The claim stays until it counts as abandoned.
                        tracing::warn!(error = %cause, "could not settle an idempotency key");
                        error.into_response()
                    }
                }
            }
        }
    }
}

/// `value` as the JSON answer of `status`.
pub fn answer<T: Serialize>(status: StatusCode, value: &T) -> KeptAnswer {
    KeptAnswer {
        status: status.as_u16(),
        // The objects answered are plain structs of strings, numbers and
        // maps of strings: they always serialise.
        body: serde_json::to_string(value).unwrap_or_else(|_| "{}".into()),
    }
}

/// Whether an error answer is kept for the key's retries.
fn is_kept(status: StatusCode) -> bool {
    status.is_client_error()
        && !matches!(
            status,
            StatusCode::CONFLICT | StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
        )
}

/// The response of a kept answer; a replay says it is one.
fn respond(answer: KeptAnswer, replayed: bool) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        answer.body,
    )
        .into_response();
    let headers = response.headers_mut();
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    if !status.is_success() {
        // As every error answer says (`ApiError::render`).
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The request's `Idempotency-Key`: 1 to 255 printable ASCII characters,
/// given at most once.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let refused =
        |why: &str| ApiError::invalid_request(format!("{HEADER} {why}")).with_param(HEADER);
    if values.next().is_some() {
        return Err(refused("is given more than once"));
    }
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || bytes.len() > MAX_KEY_BYTES
        || !bytes.iter().all(|b| (b' '..=b'~').contains(b))
    {
        return Err(refused(&format!(
            "must be 1 to {MAX_KEY_BYTES} printable ASCII characters"
        )));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

fn reused() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_reused",
        format!(
            "This {HEADER} was used with another request in the last 24 hours; \
             send a new key for a new request"
        ),
    )
}

fn in_use() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_in_use",
        format!(
            "A request with this {HEADER} is still being processed; \
             retry once it has been answered"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(value: &[u8]) -> Result<Option<String>, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_bytes(value).unwrap());
        idempotency_key(&headers)
    }

    #[test]
    fn a_key_is_one_to_255_printable_ascii_characters() {
        assert_eq!(key(b"a").unwrap().as_deref(), Some("a"));
        let longest = "k".repeat(255);
        assert_eq!(key(longest.as_bytes()).unwrap(), Some(longest));
        assert_eq!(key(b"order 42/#~").unwrap().as_deref(), Some("order 42/#~"));
        for bad in [&b""[..], &[b'k'; 256][..], b"tab\there", "é".as_bytes()] {
            let error = key(bad).unwrap_err();
            assert_eq!(
                (error.code, error.param.as_deref()),
                ("invalid_request", Some(HEADER))
            );
        }
        assert_eq!(idempotency_key(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn only_answers_about_the_request_itself_are_kept() {
        assert!(is_kept(StatusCode::BAD_REQUEST));
        assert!(is_kept(StatusCode::NOT_FOUND));
        for passing in [
            StatusCode::CONFLICT,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::SERVICE_UNAVAILABLE,
        ] {
            assert!(!is_kept(passing), "{passing}");
        }
    }
}
