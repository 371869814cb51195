//! The bodies of the batch endpoints and the batch object, as the
//! contract shows them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::registry::batch::{Recipient, Row, RowError};
use crate::registry::rfc3339;
use crate::registry::store::{BatchItem, BatchRecord};

/// The JSON body of `POST /v1/certificates/batch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBatch {
    /// The template every certificate of the batch is issued with.
    #[schema(example = "TEafv3AfNptmzii4zj2jkc")]
    pub template_id: String,
    /// Whether the certificates are e-mailed (then each recipient needs
    /// an `email`); the account's default when absent. No e-mail is sent
    /// yet.
    #[serde(default)]
    pub send_email: Option<bool>,
    /// One per certificate, at most the plan's batch size.
    pub recipients: Vec<BatchRecipient>,
}

/// One recipient of a batch, with the certificate's fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRecipient {
    #[schema(example = "Anna Svensson")]
    pub name: String,
    #[serde(default)]
    #[schema(example = "anna@example.org")]
    pub email: Option<String>,
    /// The template's fields by name.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// The integrator's own keys (at most 50, values up to 500
    /// characters).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl From<BatchRecipient> for Recipient {
    fn from(given: BatchRecipient) -> Recipient {
        Recipient {
            name: given.name,
            email: given.email,
            fields: given.fields,
            metadata: given.metadata,
        }
    }
}

/// The JSON body of `POST /v1/certificates/batch_revoke`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBatch {
    /// Each at most once, at most the plan's batch size.
    pub certificate_ids: Vec<String>,
    /// Recorded with every revocation (at most 500 characters).
    #[serde(default)]
    pub reason: Option<String>,
}

/// A batch as the contract shows it, with a page of its rows.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Batch)]
pub struct BatchObject {
    #[schema(example = "batch_4kq0d8r2m1x7v9t3p6w5y")]
    id: String,
    #[schema(schema_with = batch_tag)]
    object: &'static str,
    /// `false` in the sandbox (a `sk_test_` key).
    livemode: bool,
    #[schema(schema_with = kinds)]
    kind: String,
    #[schema(schema_with = statuses)]
    status: String,
    /// The template of an issuing batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    template_id: Option<String>,
    /// Rows in the batch.
    total: i64,
    /// Rows issued (or revoked, or found revoked already).
    completed: i64,
    /// Rows that failed, each with its error in `items`.
    failed: i64,
    /// Rows not worked yet.
    pending: i64,
    /// A page of the rows, in row order (`?limit`, `?starting_after=<row>`,
    /// `?status=`).
    items: Vec<ItemObject>,
    /// Whether rows follow this page.
    has_more: bool,
    /// The `starting_after` of the next page of rows, when there is one.
    next_cursor: Option<i64>,
    #[schema(format = DateTime)]
    created_at: String,
    /// When the last row was worked.
    #[schema(format = DateTime)]
    completed_at: Option<String>,
}

/// One row of a batch.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = BatchItem)]
pub struct ItemObject {
    /// 1-based: the recipient's place in the array, or the CSV row's
    /// under the header.
    row: i64,
    #[schema(schema_with = item_statuses)]
    status: String,
    /// The certificate issued, or the one the row revokes.
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ItemError>,
}

/// Why a row failed: the error object a single request would have been
/// answered with, without its request id.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ItemError {
    #[schema(example = "invalid_field")]
    code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    param: Option<String>,
    message: String,
}

impl From<RowError> for ItemError {
    fn from(error: RowError) -> ItemError {
        ItemError {
            code: error.code,
            param: error.param,
            message: error.message,
        }
    }
}

impl ItemObject {
    /// A row as stored.
    pub fn stored(item: BatchItem) -> ItemObject {
        ItemObject {
            row: item.row,
            status: item.status,
            certificate_id: item.certificate_id,
            error: item
                .error
                .and_then(|text| serde_json::from_str::<ItemError>(&text).ok()),
        }
    }

    /// A row as accepted, before any work: pending, or failed already.
    pub fn accepted<T>(row: &Row<T>, certificate_id: Option<String>) -> ItemObject {
        ItemObject {
            row: row.number,
            status: if row.value.is_ok() {
                "pending"
            } else {
                "failed"
            }
            .into(),
            certificate_id,
            error: row.value.as_ref().err().cloned().map(ItemError::from),
        }
    }

    pub fn row(&self) -> i64 {
        self.row
    }
}

impl BatchObject {
    /// `record` with `items`, fetched one past `limit`.
    pub fn new(record: BatchRecord, mut items: Vec<ItemObject>, limit: u32) -> BatchObject {
        let has_more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_cursor = if has_more {
            items.last().map(ItemObject::row)
        } else {
            None
        };
        BatchObject {
            object: "batch",
            livemode: record.environment.is_live(),
            kind: record.kind,
            status: record.status,
            template_id: record.template_id,
            total: record.total,
            completed: record.completed,
            failed: record.failed,
            pending: (record.total - record.completed - record.failed).max(0),
            items,
            has_more,
            next_cursor,
            created_at: rfc3339(record.created_at),
            completed_at: record.completed_at.map(rfc3339),
            id: record.id,
        }
    }
}

fn batch_tag() -> utoipa::openapi::Object {
    super::openapi::tag("batch")
}

fn kinds() -> utoipa::openapi::Object {
    super::openapi::one_of(
        ["issue", "revoke"],
        "`issue` for `POST /v1/certificates/batch`, `revoke` for `batch_revoke`",
    )
}

fn statuses() -> utoipa::openapi::Object {
    super::openapi::one_of(
        ["processing", "completed"],
        "`completed` once every row is completed or failed",
    )
}

fn item_statuses() -> utoipa::openapi::Object {
    super::openapi::one_of(
        ["pending", "completed", "failed"],
        "`completed`: issued, or revoked (now or before); `failed`: see `error`",
    )
}
