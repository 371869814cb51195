//! `/v1/certificates/batch`, `/v1/certificates/batch_revoke` and
//! `/v1/batches/{id}`: batches accepted with `202` and worked in the
//! background, from a JSON or a CSV body.

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::de::DeserializeOwned;

use super::batch_json::{BatchObject, CreateBatch, ItemObject, RevokeBatch};
use super::body::{declares, query_pairs, RawBody, MAX_BODY_BYTES};
use super::certificates::{emailed, owner};
use super::context::Caller;
use super::error::{ApiError, ErrorBody};
use super::idempotency::{answer, Post};
use super::page::PageRequest;
use crate::registry::batch::csv::{self, MAX_CSV_BYTES};
use crate::registry::batch::{NewBatch, Row};
use crate::registry::store::{BatchRecord, KeptAnswer};
use crate::registry::Registry;

const BATCHES: &str = "batches:write";
const WRITE: &str = "certificates:write";
const READ: &str = "certificates:read";
/// Rows shown in the answer that accepts a batch: a list's first page.
const FIRST_ROWS: u32 = 20;

/// A batch's body: JSON, or CSV text left to read once its template is
/// known.
enum Upload<T> {
    Json(T),
    Csv(Bytes),
}

fn is_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| declares(v, "text/csv"))
}

/// The body's bound: the contract's 10 MiB for CSV, 1 MiB for JSON.
fn body_limit(headers: &HeaderMap) -> usize {
    if is_csv(headers) {
        MAX_CSV_BYTES
    } else {
        MAX_BODY_BYTES
    }
}

fn upload<T: DeserializeOwned>(raw: &RawBody) -> Result<Upload<T>, ApiError> {
    if raw.is("text/csv") {
        return Ok(Upload::Csv(raw.bytes.clone()));
    }
    raw.json().map(Upload::Json)
}

/// A batch `POST` begun: the scope checked, the body read within its
/// bound through the idempotency claim; answers the query string too.
async fn begin<'a, T: DeserializeOwned>(
    registry: &'a Registry,
    caller: &'a Caller,
    scope: &str,
    request: Request,
) -> Result<(Post<'a>, Upload<T>, Option<String>), Response> {
    caller.require(scope).map_err(IntoResponse::into_response)?;
    let query = request.uri().query().map(str::to_owned);
    let limit = body_limit(request.headers());
    let (post, upload) = Post::begin_with(registry, caller, request, limit, upload::<T>).await?;
    Ok((post, upload, query))
}

/// The answer to a batch accepted: `202` and the batch, with its first
/// rows as accepted.
fn accepted_answer<T>(
    rows: &[Row<T>],
    certificate_id: impl Fn(&Row<T>) -> Option<String>,
) -> impl Fn(&BatchRecord) -> KeptAnswer + Send + Sync {
    let items: Vec<ItemObject> = rows
        .iter()
        .take(FIRST_ROWS as usize + 1)
        .map(|row| ItemObject::accepted(row, certificate_id(row)))
        .collect();
    move |record: &BatchRecord| {
        let object = BatchObject::new(record.clone(), items.clone(), FIRST_ROWS);
        answer(StatusCode::ACCEPTED, &object)
    }
}

/// `POST /v1/certificates/batch`.
#[utoipa::path(
    post,
    path = "/v1/certificates/batch",
    operation_id = "create_batch",
    tag = "batches",
    summary = "Issue certificates in a batch",
    description = "A JSON body, or a CSV one (`Content-Type: text/csv`, `?template_id=`, \
                   optional `?send_email=`): a header row of `name`, `email`, the template's \
                   field names and `metadata.<key>` columns, UTF-8 with or without a BOM, \
                   quoted per RFC 4180, up to 10 MiB. Answered `202` once the batch and its \
                   rows are committed; each row is then checked and issued in the background \
                   as a single issue would be, exactly once, and fails alone (scope \
                   `batches:write`).",
    params(
        ("template_id" = Option<String>, Query, description = "For a CSV body: the template"),
        ("send_email" = Option<bool>, Query, description = "For a CSV body: whether the \
            certificates are e-mailed (the account's default when absent)"),
    ),
    request_body(content(
        (CreateBatch = "application/json"),
        (String = "text/csv", example = "name,email,course_name\nAnna Svensson,anna@example.org,Welding\n"),
    )),
    responses(
        (status = 202, description = "The batch, accepted; its rows are pending", body = BatchObject),
        (status = 400, description = "`invalid_template`: no such active template; \
                                      `invalid_field`: a CSV column the template lacks, or a \
                                      required field without one; `invalid_request`: a CSV \
                                      that cannot be read (not UTF-8, a quote that never \
                                      closes, no header).", body = ErrorBody),
        (status = 422, description = "`batch_too_large`: more rows than the plan's batch size",
            body = ErrorBody),
    ),
)]
pub async fn create(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    let (post, upload, query) =
        match begin::<CreateBatch>(&registry, &caller, BATCHES, request).await {
            Ok(begun) => begun,
            Err(answer) => return answer,
        };
    let outcome = async {
        let account = &caller.key.account_id;
        let max = registry.batch_limit(account);
        let (template_id, send_email, rows) = match upload {
            Upload::Json(body) => {
                query_pairs(query.as_deref(), &[])?;
                let rows = Row::numbered(body.recipients.into_iter().map(Into::into));
                (body.template_id, body.send_email, rows)
            }
            Upload::Csv(bytes) => {
                let pairs = query_pairs(query.as_deref(), &["template_id", "send_email"])?;
                let mut template_id = None;
                let mut send_email = None;
                for (name, value) in pairs {
                    if name == "template_id" {
                        template_id = Some(value);
                    } else {
                        send_email = Some(flag("send_email", &value)?);
                    }
                }
                let template_id = template_id.ok_or_else(|| {
                    ApiError::invalid_request("A CSV batch names its template: ?template_id=…")
                        .with_param("template_id")
                })?;
                let declaration = registry.batch_template(account, &template_id).await?;
                let rows = csv::recipients(&bytes, &template_id, &declaration, max)?;
                (template_id, send_email, rows)
            }
        };
        let object = accepted_answer(&rows, |_| None);
        let new = NewBatch::Issue {
            template_id,
            send_email: emailed(&registry, &caller, send_email),
            rows,
        };
        let record = registry
            .create_batch(
                owner(&caller),
                new,
                max,
                &caller.actor(),
                post.reply(&object).as_ref(),
            )
            .await?;
        Ok(object(&record))
    }
    .await;
    post.finish(outcome).await
}

/// `POST /v1/certificates/batch_revoke`.
#[utoipa::path(
    post,
    path = "/v1/certificates/batch_revoke",
    operation_id = "revoke_batch",
    tag = "batches",
    summary = "Revoke certificates in a batch",
    description = "A JSON body, or a CSV one (`Content-Type: text/csv`) whose only column is \
                   `certificate_id`, the reason as `?reason=`. Each row ends `completed` \
                   (revoked now, or already revoked: unchanged, no second event) or `failed` \
                   (`not_found`); every revocation is audited and sends its \
                   `certificate.revoked` event (scope `certificates:write`).",
    params(("reason" = Option<String>, Query, description = "For a CSV body: the reason")),
    request_body(content(
        (RevokeBatch = "application/json"),
        (String = "text/csv", example = "certificate_id\ncert_7gq3k9x2m4p8r1t6v0w5y\n"),
    )),
    responses(
        (status = 202, description = "The batch, accepted; its rows are pending", body = BatchObject),
        (status = 400, description = "`invalid_request`: an id given twice, a reason too \
                                      long, a CSV that cannot be read.", body = ErrorBody),
        (status = 422, description = "`batch_too_large`: more rows than the plan's batch size",
            body = ErrorBody),
    ),
)]
pub async fn revoke(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    let (post, upload, query) = match begin::<RevokeBatch>(&registry, &caller, WRITE, request).await
    {
        Ok(begun) => begun,
        Err(answer) => return answer,
    };
    let outcome = async {
        let max = registry.batch_limit(&caller.key.account_id);
        let (reason, rows) = match upload {
            Upload::Json(body) => {
                query_pairs(query.as_deref(), &[])?;
                let rows = Row::numbered(body.certificate_ids);
                (body.reason, rows)
            }
            Upload::Csv(bytes) => {
                let pairs = query_pairs(query.as_deref(), &["reason"])?;
                let reason = pairs.into_iter().next().map(|(_, value)| value);
                (reason, csv::certificate_ids(&bytes, max)?)
            }
        };
        let object = accepted_answer(&rows, |row: &Row<String>| row.value.clone().ok());
        let record = registry
            .create_batch(
                owner(&caller),
                NewBatch::Revoke { reason, rows },
                max,
                &caller.actor(),
                post.reply(&object).as_ref(),
            )
            .await?;
        Ok(object(&record))
    }
    .await;
    post.finish(outcome).await
}

fn flag(param: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::invalid_request(format!("{param} is true or false")).with_param(param)),
    }
}

/// `GET /v1/batches/{id}`.
#[utoipa::path(
    get,
    path = "/v1/batches/{id}",
    operation_id = "retrieve_batch",
    tag = "batches",
    summary = "Read a batch and a page of its rows",
    description = "Its counts, and its rows in row order, paged with `limit` and \
                   `starting_after` (a row number: the `next_cursor` of the previous page), \
                   optionally only those of one `status` (scope `batches:write` or \
                   `certificates:read`).",
    params(
        ("id" = String, Path, description = "The batch's id (`batch_…`)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100,
            description = "How many rows to answer, 1 to 100 (default 20)"),
        ("starting_after" = Option<i64>, Query, minimum = 0,
            description = "The row after which the page starts"),
        ("status" = Option<String>, Query,
            description = "Only rows with this status: `pending`, `completed` or `failed`"),
    ),
    responses(
        (status = 200, description = "The batch", body = BatchObject),
        (status = 404, description = "`not_found`: no such batch in the caller's account and \
                                      environment.", body = ErrorBody),
    ),
)]
pub async fn retrieve(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<BatchObject>, ApiError> {
    if caller.require(BATCHES).is_err() {
        caller.require(READ)?;
    }
    let (page, given) = PageRequest::parse_with(uri.query(), &["status"])?;
    let after = match page.starting_after.as_deref() {
        None => 0,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::invalid_request(
                    "starting_after is a row number: the next_cursor of the previous page",
                )
                .with_param("starting_after")
            })?,
    };
    let status = given.into_iter().next().map(|(_, value)| value);
    if let Some(status) = &status {
        if !["pending", "completed", "failed"].contains(&status.as_str()) {
            return Err(
                ApiError::invalid_request("status must be pending, completed or failed")
                    .with_param("status"),
            );
        }
    }
    let record = registry.batch(owner(&caller), &id).await?;
    let items = registry
        .store
        .batch_items(&record.id, after, page.limit, status.as_deref())
        .await?;
    let items = items.into_iter().map(ItemObject::stored).collect();
    Ok(Json(BatchObject::new(record, items, page.limit)))
}
