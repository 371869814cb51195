//! `/v1/certificates`: issue, read, list, change and revoke (scopes
//! `certificates:read` and `certificates:write`), confined to the
//! caller's account and environment.

use std::sync::OnceLock;

use super::body::JsonBody;
use super::certificate_json::{CertificateObject, ChangeCertificate, CreateCertificate, Revoke};
use super::context::{request_base, Caller};
use super::error::{ApiError, ErrorBody};
use super::idempotency::{answer, Post};
use super::page::{List, PageRequest};
use crate::registry::certificate::{CertificateChange, NewCertificate, Owner, Status};
use crate::registry::store::{now_us, CertificateFilter, CertificateRecord, KeptAnswer, Reply};
use crate::registry::Registry;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

const READ: &str = "certificates:read";
const WRITE: &str = "certificates:write";

/// The base of a certificate's links: the account's public base URL, or
/// else the host this request reached (checked to be a host, so no header
/// can inject a path or a scheme).
pub(super) fn base(registry: &Registry, caller: &Caller, headers: &HeaderMap) -> String {
    if let Some(url) = registry
        .account(&caller.key.account_id)
        .and_then(|a| a.public_base_url.clone())
    {
        return url;
    }
    request_base(headers)
}

pub(super) fn owner(caller: &Caller) -> Owner<'_> {
    Owner {
        account_id: &caller.key.account_id,
        environment: caller.key.environment,
    }
}

/// An RFC 3339 time as Unix microseconds.
pub(super) fn time(param: &str, text: &str) -> Result<i64, ApiError> {
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
#[utoipa::path(
    post,
    path = "/v1/certificates",
    operation_id = "issue_certificate",
    tag = "certificates",
    summary = "Issue a certificate",
    description = "Checked against the template with the rules of its renders (fields, text \
                   the fonts draw and that fits), then committed with its audit row and its \
                   `certificate.issued` event (scope `certificates:write`).",
    request_body = CreateCertificate,
    responses(
        (status = 201, description = "The certificate, committed", body = CertificateObject),
        (status = 400, description = "`invalid_template`: no such active template; \
                                      `invalid_field`: a field the template lacks, a required \
                                      one missing, or text its rules refuse.", body = ErrorBody),
    ),
)]
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
        send_email: emailed(registry, caller, body.send_email),
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

/// Whether a certificate is e-mailed: as the request says, or else as
/// the account's default.
pub(super) fn emailed(registry: &Registry, caller: &Caller, asked: Option<bool>) -> bool {
    asked.unwrap_or_else(|| {
        registry
            .account(&caller.key.account_id)
            .is_some_and(|a| a.email_by_default)
    })
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
#[utoipa::path(
    get,
    path = "/v1/certificates/{id}",
    operation_id = "retrieve_certificate",
    tag = "certificates",
    summary = "Read a certificate",
    description = "Scope `certificates:read`.",
    params(("id" = String, Path, description = "The certificate's id (`cert_…`)")),
    responses(
        (status = 200, description = "The certificate", body = CertificateObject),
        (status = 404, description = "`not_found`: no such certificate in the caller's account \
                                      and environment.", body = ErrorBody),
    ),
)]
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
#[utoipa::path(
    get,
    path = "/v1/certificates",
    operation_id = "list_certificates",
    tag = "certificates",
    summary = "List certificates",
    description = "Newest first; a page costs the same at any depth, and a certificate issued \
                   meanwhile never makes a page skip or repeat one (scope \
                   `certificates:read`).",
    params(
        PageRequest,
        ("status" = Option<String>, Query,
            description = "Only certificates showing this status: `issued`, `suspended`, \
                           `revoked` or `expired`"),
        ("template_id" = Option<String>, Query, description = "Only this template's"),
        ("recipient_email" = Option<String>, Query, description = "Only this recipient's"),
        ("created_after" = Option<String>, Query, format = DateTime,
            description = "Only those created after this time"),
        ("created_before" = Option<String>, Query, format = DateTime,
            description = "Only those created before this time"),
    ),
    responses(
        (status = 200, description = "A page of certificates", body = List<CertificateObject>),
        (status = 400, description = "`invalid_request`: a bad `limit`, `starting_after` or \
                                      filter, or an unknown parameter.", body = ErrorBody),
    ),
)]
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
        |c: &CertificateObject| c.id().to_owned(),
    )))
}

/// `PATCH /v1/certificates/{id}`.
#[utoipa::path(
    patch,
    path = "/v1/certificates/{id}",
    operation_id = "change_certificate",
    tag = "certificates",
    summary = "Change a certificate",
    description = "Suspend or reinstate it, change its expiry or metadata, or correct its \
                   recipient's name or its fields (drawn again); `status: revoked` revokes it. \
                   Audited, with a `certificate.updated` event (scope `certificates:write`).",
    params(("id" = String, Path, description = "The certificate's id (`cert_…`)")),
    request_body = ChangeCertificate,
    responses(
        (status = 200, description = "The changed certificate", body = CertificateObject),
        (status = 400, description = "`invalid_field`: a corrected field or name the \
                                      template's rules refuse.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such certificate in the caller's account \
                                      and environment.", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: a revoked certificate never \
                                      changes again.", body = ErrorBody),
    ),
)]
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
#[utoipa::path(
    post,
    path = "/v1/certificates/{id}/revoke",
    operation_id = "revoke_certificate",
    tag = "certificates",
    summary = "Revoke a certificate",
    description = "Final: its images show the revocation from then on. Revoking twice answers \
                   the certificate unchanged, with no second event (scope \
                   `certificates:write`).",
    params(("id" = String, Path, description = "The certificate's id (`cert_…`)")),
    request_body(content = Revoke, description = "An empty body counts as `{}`"),
    responses(
        (status = 200, description = "The revoked certificate", body = CertificateObject),
        (status = 404, description = "`not_found`: no such certificate in the caller's account \
                                      and environment.", body = ErrorBody),
    ),
)]
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
