//! `/v1/certificates`: issue, read, list, change and revoke (scopes
//! `certificates:read` and `certificates:write`), confined to the
//! caller's account and environment.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Deserializer, Serialize};

use super::body::JsonBody;
use super::context::Caller;
use super::error::ApiError;
use super::idempotency::{answer, Post};
use super::page::{List, PageRequest};
use crate::registry::certificate::{status_of, CertificateChange, NewCertificate, Owner, Status};
use crate::registry::store::{now_us, CertificateFilter, CertificateRecord, KeptAnswer, Reply};
use crate::registry::{rfc3339, Registry};

const READ: &str = "certificates:read";
const WRITE: &str = "certificates:write";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    name: String,
    #[serde(default)]
    email: Option<String>,
}

/// The body of `POST /v1/certificates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCertificate {
    template_id: String,
    recipient: Recipient,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    expires_at: Option<String>,
    /// Accepted for the contract; no e-mail is sent yet.
    #[serde(default)]
    #[allow(dead_code)]
    send_email: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientCorrection {
    #[serde(default)]
    name: Option<String>,
}

/// The body of `PATCH /v1/certificates/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeCertificate {
    #[serde(default)]
    status: Option<String>,
    /// Absent leaves the expiry; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    expires_at: Option<Option<String>>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    recipient: Option<RecipientCorrection>,
    #[serde(default)]
    fields: Option<BTreeMap<String, String>>,
}

/// The body of `POST /v1/certificates/{id}/revoke`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    #[serde(default)]
    reason: Option<String>,
}

/// A field that is present, `null` included, as `Some`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

#[derive(Debug, Serialize)]
struct RecipientObject {
    name: String,
    email: Option<String>,
}

/// A certificate as the contract shows it.
#[derive(Debug, Serialize)]
pub struct CertificateObject {
    id: String,
    object: &'static str,
    livemode: bool,
    status: &'static str,
    template_id: String,
    recipient: RecipientObject,
    fields: BTreeMap<String, String>,
    metadata: BTreeMap<String, String>,
    issued_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    revocation_reason: Option<String>,
    verification_url: String,
    image_url: String,
    pdf_url: String,
    social_image_url: String,
    /// The transparency log's entry, once it exists.
    proof: Option<serde_json::Value>,
    created_at: String,
    updated_at: String,
}

impl CertificateObject {
    /// The object of `record` at `now`, its links under `base`.
    pub fn new(record: CertificateRecord, base: &str, now: i64) -> CertificateObject {
        let link = format!("{base}/c/{}", record.id);
        CertificateObject {
            object: "certificate",
            livemode: record.environment.is_live(),
            status: status_of(&record, now).name(),
            template_id: record.template_id,
            recipient: RecipientObject {
                name: record.recipient_name,
                email: record.recipient_email,
            },
            fields: record.fields,
            metadata: record.metadata,
            issued_at: rfc3339(record.created_at),
            expires_at: record.expires_at.map(rfc3339),
            revoked_at: record.revoked_at.map(rfc3339),
            revocation_reason: record.revocation_reason,
            image_url: format!("{link}.png"),
            pdf_url: format!("{link}.pdf"),
            social_image_url: format!("{link}/social.png"),
            verification_url: link,
            proof: None,
            created_at: rfc3339(record.created_at),
            updated_at: rfc3339(record.updated_at),
            id: record.id,
        }
    }
}

/// The base of a certificate's links: the account's public base URL, or
/// else the host this request reached (checked to be a host, so no header
/// can inject a path or a scheme).
fn base(registry: &Registry, caller: &Caller, headers: &HeaderMap) -> String {
    if let Some(url) = registry
        .account(&caller.key.account_id)
        .and_then(|a| a.public_base_url.clone())
    {
        return url;
    }
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

fn owner(caller: &Caller) -> Owner<'_> {
    Owner {
        account_id: &caller.key.account_id,
        environment: caller.key.environment,
    }
}

/// An RFC 3339 time as Unix microseconds.
fn time(param: &str, text: &str) -> Result<i64, ApiError> {
    let refused = || {
        ApiError::invalid_request(format!(
            "{param} must be an RFC 3339 time such as 2026-03-03T09:15:00Z"
        ))
        .with_param(param)
    };
    let at = humantime::parse_rfc3339(text).map_err(|_| refused())?;
    let us = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| refused())?
        .as_micros();
    i64::try_from(us).map_err(|_| refused())
}

/// `POST /v1/certificates`: `201` once the certificate is committed (with
/// the answer kept for its idempotency key, when it has one).
pub async fn create(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    let object = object_answer(&registry, &caller, request.headers(), StatusCode::CREATED);
    let (post, body) = match Post::begin(&registry, &caller, WRITE, request).await {
        Ok(begun) => begun,
        Err(answer) => return answer,
    };
    let issued = issue(&registry, &caller, body, post.reply(&object).as_ref()).await;
    post.finish(issued.map(|record| object(&record))).await
}

async fn issue(
    registry: &Registry,
    caller: &Caller,
    body: CreateCertificate,
    reply: Option<&Reply<'_, CertificateRecord>>,
) -> Result<CertificateRecord, ApiError> {
    let expires_at = body
        .expires_at
        .as_deref()
        .map(|t| time("expires_at", t))
        .transpose()?;
    let new = NewCertificate {
        template_id: body.template_id,
        recipient_name: body.recipient.name,
        recipient_email: body.recipient.email,
        fields: body.fields,
        metadata: body.metadata,
        expires_at,
    };
    Ok(registry
        .issue_certificate(owner(caller), new, &caller.actor(), reply)
        .await?)
}

/// How a `POST`'s certificate is answered, inside the change's
/// transaction and again for the live answer: the same bytes both times,
/// since the shown status is computed at the first call's time.
fn object_answer(
    registry: &Registry,
    caller: &Caller,
    headers: &HeaderMap,
    status: StatusCode,
) -> impl Fn(&CertificateRecord) -> KeptAnswer + Send + Sync {
    let base = base(registry, caller, headers);
    let now = OnceLock::new();
    move |record: &CertificateRecord| {
        let now = *now.get_or_init(now_us);
        answer(status, &CertificateObject::new(record.clone(), &base, now))
    }
}

/// `GET /v1/certificates/{id}`.
pub async fn retrieve(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(READ)?;
    let record = registry.certificate(owner(&caller), &id).await?;
    let base = base(&registry, &caller, &headers);
    Ok(Json(CertificateObject::new(record, &base, now_us())))
}

/// `GET /v1/certificates`: newest first, filtered, paged by cursor.
pub async fn list(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(READ)?;
    let filters = [
        "status",
        "template_id",
        "recipient_email",
        "created_after",
        "created_before",
    ];
    let (page, given) = PageRequest::parse_with(uri.query(), &filters)?;
    let now = now_us();
    let mut filter = CertificateFilter::default();
    for (name, value) in given {
        match name.as_str() {
            "status" => match Status::parse(&value) {
                Some(Status::Expired) => filter.expired = Some((true, now)),
                Some(status) => {
                    filter.status = Some(status.name().to_owned());
                    if status != Status::Revoked {
                        filter.expired = Some((false, now));
                    }
                }
                None => {
                    return Err(ApiError::invalid_request(
                        "status must be issued, suspended, revoked or expired",
                    )
                    .with_param("status"))
                }
            },
            "template_id" => filter.template_id = Some(value),
            "recipient_email" => filter.recipient_email = Some(value),
            "created_after" => filter.created_after = Some(time("created_after", &value)?),
            _ => filter.created_before = Some(time("created_before", &value)?),
        }
    }
    let records = registry
        .store
        .list_certificates(
            &caller.key.account_id,
            caller.key.environment,
            &filter,
            page.limit,
            page.starting_after.as_deref(),
        )
        .await?
        .ok_or_else(PageRequest::unknown_cursor)?;
    let base = base(&registry, &caller, &headers);
    let objects = records
        .into_iter()
        .map(|r| CertificateObject::new(r, &base, now))
        .collect();
    Ok(Json(List::from_fetched(
        objects,
        page.limit,
        |c: &CertificateObject| c.id.clone(),
    )))
}

/// `PATCH /v1/certificates/{id}`.
pub async fn change(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ChangeCertificate>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(WRITE)?;
    let status = body
        .status
        .as_deref()
        .map(|s| {
            Status::parse_stored(s).ok_or_else(|| {
                ApiError::invalid_request("status must be issued, suspended or revoked")
                    .with_param("status")
            })
        })
        .transpose()?;
    let expires_at = match body.expires_at {
        None => None,
        Some(None) => Some(None),
        Some(Some(text)) => Some(Some(time("expires_at", &text)?)),
    };
    let change = CertificateChange {
        status,
        expires_at,
        metadata: body.metadata,
        recipient_name: body.recipient.and_then(|r| r.name),
        fields: body.fields,
    };
    let record = registry
        .change_certificate(owner(&caller), &id, change, &caller.actor())
        .await?;
    let base = base(&registry, &caller, &headers);
    Ok(Json(CertificateObject::new(record, &base, now_us())))
}

/// `POST /v1/certificates/{id}/revoke`: final; twice answers the revoked
/// certificate unchanged.
pub async fn revoke(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let object = object_answer(&registry, &caller, request.headers(), StatusCode::OK);
    let (post, body) = match Post::begin::<Revoke>(&registry, &caller, WRITE, request).await {
        Ok(begun) => begun,
        Err(answer) => return answer,
    };
    let revoked = registry
        .revoke_certificate(
            owner(&caller),
            &id,
            body.reason,
            &caller.actor(),
            post.reply(&object).as_ref(),
        )
        .await;
    post.finish(
        revoked
            .map(|record| object(&record))
            .map_err(ApiError::from),
    )
    .await
}
