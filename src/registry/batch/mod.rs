//! Batches: many certificates issued, or revoked, from one request.
//!
//! A batch is accepted whole or refused whole: its shape (size, template,
//! CSV header, repeated ids) is checked before anything is written; then
//! the batch and every row are committed together, and `202` answers.
//! Each row is then checked and written in the background, with the same
//! rules as a single request, and ends `completed` or `failed` alone.
//!
//! Layout: this file holds what a batch is and how one is accepted;
//! `csv` reads CSV bodies (strict RFC 4180); `work` runs a chunk of rows
//! in one transaction; `worker` is the background task that claims
//! chunks of any process's batches.

pub mod csv;
mod work;
mod worker;

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::json;

pub use worker::Worker;

use super::certificate::{check_reason, Declaration, Owner};
use super::error::RegistryError;
use super::ids;
use super::keys::{audit_by, Actor};
use super::store::{now_us, BatchRecord, NewAuditEvent, Reply};
use super::Registry;

/// Most rows any batch holds, whatever the plan: what one request may
/// make the server keep and work through.
pub const MAX_BATCH_ROWS: usize = 100_000;

/// What a batch does to each of its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Issue,
    Revoke,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Issue => "issue",
            Kind::Revoke => "revoke",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        match text {
            "issue" => Some(Kind::Issue),
            "revoke" => Some(Kind::Revoke),
            _ => None,
        }
    }
}

/// One recipient of an issuing batch, as given (and as kept until its
/// row is worked).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// A row as accepted: its number, and what it holds or why it failed
/// already (a CSV row that could not be read fails alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row<T> {
    /// 1-based: the place in the JSON array, or the CSV data row.
    pub number: i64,
    pub value: Result<T, RowError>,
}

impl<T> Row<T> {
    /// `values` as rows numbered from 1, each ready: a JSON array's.
    pub fn numbered(values: impl IntoIterator<Item = T>) -> Vec<Row<T>> {
        (1..)
            .zip(values)
            .map(|(number, value)| Row {
                number,
                value: Ok(value),
            })
            .collect()
    }
}

/// Why a row failed: the API's error, without the request's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    pub message: String,
}

impl RowError {
    pub fn new(code: &str, param: Option<String>, message: impl Into<String>) -> RowError {
        RowError {
            code: code.to_owned(),
            param,
            message: message.into(),
        }
    }

    /// The row failure `error` is, or `None` when it says nothing about
    /// the row (the database was out of reach: the row is tried again).
    /// The codes are the ones the API answers the same error with.
    pub fn of(error: RegistryError) -> Option<RowError> {
        Some(match error {
            RegistryError::Unavailable(_) => return None,
            RegistryError::NotFound { kind, id } => {
                RowError::new("not_found", None, format!("No {kind} with id {id}"))
            }
            RegistryError::Invalid { param, message } => {
                RowError::new("invalid_request", param, message)
            }
            RegistryError::InvalidTemplate(message) => {
                RowError::new("invalid_template", Some("template_id".into()), message)
            }
            RegistryError::InvalidField { param, message } => {
                RowError::new("invalid_field", Some(param), message)
            }
            RegistryError::InvalidTransition(message) => {
                RowError::new("invalid_transition", None, message)
            }
            RegistryError::BatchTooLarge { .. }
            | RegistryError::UnknownAccount(_)
            | RegistryError::Config(_)
            | RegistryError::Database(_) => {
                tracing::error!(%error, "a batch row failed");
                RowError::new("internal_error", None, "The row could not be worked")
            }
        })
    }

    fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// A batch to accept.
#[derive(Debug, Clone)]
pub enum NewBatch {
    Issue {
        template_id: String,
        /// Resolved: the request's, or the account's default.
        send_email: bool,
        rows: Vec<Row<Recipient>>,
    },
    Revoke {
        reason: Option<String>,
        rows: Vec<Row<String>>,
    },
}

impl NewBatch {
    fn len(&self) -> usize {
        match self {
            NewBatch::Issue { rows, .. } => rows.len(),
            NewBatch::Revoke { rows, .. } => rows.len(),
        }
    }
}

/// Who asked, as a batch keeps it for its rows' audit entries.
#[derive(Debug, Serialize, Deserialize)]
struct StoredActor {
    kind: String,
    id: Option<String>,
    request_id: Option<String>,
    ip: Option<String>,
}

fn stored_actor(actor: &Actor) -> String {
    let stored = StoredActor {
        kind: actor.kind.to_owned(),
        id: actor.id.clone(),
        request_id: actor.request_id.clone(),
        ip: actor.ip.clone(),
    };
    serde_json::to_string(&stored).unwrap_or_else(|_| "{}".into())
}

/// The actor a batch keeps, as its rows' audit entries name it.
fn actor_of(batch: &BatchRecord) -> Actor {
    let stored: Option<StoredActor> = serde_json::from_str(&batch.actor).ok();
    let Some(stored) = stored else {
        return Actor::cli();
    };
    Actor {
        kind: if stored.kind == "api_key" {
            "api_key"
        } else {
            "cli"
        },
        id: stored.id,
        request_id: stored.request_id,
        ip: stored.ip,
    }
}

impl Registry {
    /// The most rows a batch of `account_id` may hold: its plan's batch
    /// size, within [`MAX_BATCH_ROWS`].
    pub fn batch_limit(&self, account_id: &str) -> usize {
        let plan = self
            .account(account_id)
            .map_or(0, |a| a.plan.batch_size() as usize);
        plan.min(MAX_BATCH_ROWS)
    }

    /// Accepts `new` for `owner`: checked as a whole, then committed with
    /// every row pending, its audit entry and the answer kept for its
    /// idempotency key; the background worker takes it from there.
    /// `limit` bounds its rows (the plan's size for the API).
    pub async fn create_batch(
        &self,
        owner: Owner<'_>,
        new: NewBatch,
        limit: usize,
        actor: &Actor,
        reply: Option<&Reply<'_, BatchRecord>>,
    ) -> Result<BatchRecord, RegistryError> {
        let limit = limit.min(MAX_BATCH_ROWS);
        if new.len() > limit {
            return Err(RegistryError::BatchTooLarge { limit });
        }
        if new.len() == 0 {
            return Err(RegistryError::Invalid {
                param: None,
                message: "A batch holds at least one row".into(),
            });
        }
        let (kind, template_id, send_email, reason) = match &new {
            NewBatch::Issue {
                template_id,
                send_email,
                ..
            } => {
                // Every row would fail alike: refused whole.
                self.batch_template(owner.account_id, template_id).await?;
                (Kind::Issue, Some(template_id.clone()), *send_email, None)
            }
            NewBatch::Revoke { reason, rows } => {
                check_reason(reason.as_deref())?;
                refuse_repeats(rows)?;
                (Kind::Revoke, None, false, reason.clone())
            }
        };
        let (inputs, failed) = inputs_of(&new);
        let total = i64::try_from(inputs.len()).unwrap_or(i64::MAX);
        // Every row failed already: done as soon as it is accepted.
        let done = failed == total;
        let now = now_us();
        let record = BatchRecord {
            id: ids::new_id("batch_")?,
            account_id: owner.account_id.to_owned(),
            environment: owner.environment,
            kind: kind.name().to_owned(),
            template_id,
            send_email,
            reason,
            actor: stored_actor(actor),
            total,
            completed: 0,
            failed,
            status: if done { "completed" } else { "processing" }.into(),
            created_at: now,
            completed_at: done.then_some(now),
        };
        let mut tx = self.store.begin().await?;
        self.store.insert_batch(&mut tx, &record, &inputs).await?;
        let audit = NewAuditEvent {
            account_id: Some(record.account_id.clone()),
            livemode: record.environment.is_live(),
            action: "batch.create",
            target: Some(record.id.clone()),
            status: actor.request_id.as_ref().map(|_| 202),
            changes: Some(json!({"kind": record.kind, "total": record.total})),
            ..audit_by(actor)
        };
        self.store.append_audit(&mut *tx, &audit, now).await?;
        if done {
            work::append_completed(&self.store, &mut tx, &record, now).await?;
        }
        self.store.keep_reply(&mut tx, reply, &record).await?;
        tx.commit().await?;
        if done {
            self.events_appended();
        }
        self.batches.wake();
        Ok(record)
    }

    /// What template `id` of `account` declares, for a batch issued with
    /// it: a template that does not exist is `InvalidTemplate`, as for a
    /// single issue.
    pub async fn batch_template(
        &self,
        account: &str,
        id: &str,
    ) -> Result<Declaration, RegistryError> {
        match self.template_info(account, id).await {
            Ok(info) => Ok(info.declaration),
            Err(RegistryError::NotFound { .. }) => Err(RegistryError::InvalidTemplate(format!(
                "Template {} does not exist or is not active",
                crate::http::escape(id)
            ))),
            Err(other) => Err(other),
        }
    }

    /// The batch `id` of `owner`; another's is not found.
    pub async fn batch(&self, owner: Owner<'_>, id: &str) -> Result<BatchRecord, RegistryError> {
        self.store
            .batch(id, owner.account_id, owner.environment)
            .await?
            .ok_or_else(|| RegistryError::NotFound {
                kind: "batch",
                id: id.to_owned(),
            })
    }
}

/// Each row's stored input (or its failure), and how many failed already.
fn inputs_of(new: &NewBatch) -> (Vec<super::store::ItemInput>, i64) {
    fn stored<T: Serialize>(rows: &[Row<T>]) -> Vec<super::store::ItemInput> {
        rows.iter()
            .map(|row| super::store::ItemInput {
                row: row.number,
                input: match &row.value {
                    Ok(value) => serde_json::to_string(value).unwrap_or_else(|_| "null".into()),
                    Err(_) => "null".into(),
                },
                error: row.value.as_ref().err().map(RowError::to_json),
            })
            .collect()
    }
    let inputs = match new {
        NewBatch::Issue { rows, .. } => stored(rows),
        NewBatch::Revoke { rows, .. } => stored(rows),
    };
    let failed = inputs.iter().filter(|i| i.error.is_some()).count();
    (inputs, i64::try_from(failed).unwrap_or(i64::MAX))
}

/// The contract: an id given twice is `invalid_request`, naming it.
fn refuse_repeats(rows: &[Row<String>]) -> Result<(), RegistryError> {
    let mut seen = HashSet::with_capacity(rows.len());
    for row in rows {
        if let Ok(id) = &row.value {
            if !seen.insert(id.as_str()) {
                return Err(RegistryError::invalid(
                    "certificate_ids",
                    format!(
                        "{} is given twice (again in row {})",
                        crate::http::escape(id),
                        row.number
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_id_is_refused_naming_it_and_its_row() {
        let rows = Row::numbered(["cert_a", "cert_b", "cert_a"].map(String::from));
        let error = refuse_repeats(&rows).unwrap_err().to_string();
        assert!(
            error.contains("cert_a") && error.contains("row 3"),
            "{error}"
        );
        assert!(refuse_repeats(&rows[..2]).is_ok());
    }

    #[test]
    fn row_failures_carry_the_codes_the_api_answers_with() {
        let field = RowError::of(RegistryError::invalid_field("recipient.email", "bad")).unwrap();
        assert_eq!(
            (field.code.as_str(), field.param.as_deref()),
            ("invalid_field", Some("recipient.email"))
        );
        assert!(RowError::of(RegistryError::Unavailable("down".into())).is_none());
        let gone = RowError::of(RegistryError::NotFound {
            kind: "certificate",
            id: "cert_x".into(),
        })
        .unwrap();
        assert_eq!(gone.code, "not_found");
    }
}
