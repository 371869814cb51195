//! One chunk of a batch's rows, worked and written in one transaction.
//!
//! Issuing rows are checked first, outside any transaction (the template
//! check is render work, which must not hold the write lock), a few at a
//! time. Then one transaction marks each row done — only if it is still
//! pending — and writes what it made: the certificate with its audit row
//! and event, or the revocation. A row another worker finished first
//! (after taking over this process's claim, say) is skipped whole, so no
//! row is ever issued twice; a crash before the commit leaves the rows
//! pending for the next worker.

use std::collections::HashSet;

use serde_json::json;
use tokio::task::JoinSet;

use super::{actor_of, Kind, Recipient, RowError};
use crate::registry::certificate::{insert_issued, revoke_in, NewCertificate, Owner, Status};
use crate::registry::error::RegistryError;
use crate::registry::keys::Actor;
use crate::registry::store::{now_us, BatchRecord, CertificateRecord, NewEvent, RowOutcome, Store};
use crate::registry::Registry;

/// Rows checked at once: the checks share the two cores with the API.
const CHECKS_AT_ONCE: usize = 2;

/// The status a batch's changes are audited with: the `202` its request
/// was answered.
const ANSWERED: u16 = 202;

/// Works `rows` ((number, stored input)) of `batch`, claimed by this
/// process. `Err` only when nothing could be written (the database is
/// out of reach): the rows stay pending and claimed, for a retry.
pub async fn work_chunk(
    registry: &Registry,
    batch: &BatchRecord,
    rows: Vec<(i64, String)>,
) -> Result<(), RegistryError> {
    match Kind::parse(&batch.kind) {
        Some(Kind::Issue) => issue_rows(registry, batch, rows).await,
        Some(Kind::Revoke) => revoke_rows(registry, batch, rows).await,
        None => {
            // A kind a newer version wrote: its rows fail rather than
            // hold the queue.
            let failed = rows
                .into_iter()
                .map(|(row, _)| {
                    let error = RowError::new("internal_error", None, "Unknown batch kind");
                    (row, Err(error))
                })
                .collect();
            write_issued(registry, batch, failed).await
        }
    }
}

async fn issue_rows(
    registry: &Registry,
    batch: &BatchRecord,
    rows: Vec<(i64, String)>,
) -> Result<(), RegistryError> {
    let mut checks = JoinSet::new();
    let mut checked = Vec::with_capacity(rows.len());
    for (row, input) in rows {
        if checks.len() >= CHECKS_AT_ONCE {
            if let Some(done) = checks.join_next().await {
                checked.push(joined(done)?);
            }
        }
        let registry = registry.clone();
        let batch = batch.clone();
        checks.spawn(async move { (row, check_row(&registry, &batch, &input).await) });
    }
    while let Some(done) = checks.join_next().await {
        checked.push(joined(done)?);
    }
    let mut outcomes = Vec::with_capacity(checked.len());
    for (row, result) in checked {
        match result {
            Ok(record) => outcomes.push((row, Ok(record))),
            Err(error) => match RowError::of(error) {
                Some(error) => outcomes.push((row, Err(error))),
                None => {
                    return Err(RegistryError::Unavailable(
                        "a batch row's check could not reach the database".into(),
                    ))
                }
            },
        }
    }
    outcomes.sort_by_key(|(row, _)| *row);
    write_issued(registry, batch, outcomes).await
}

/// A row's check: its number and the record it makes.
type Check = (i64, Result<CertificateRecord, RegistryError>);

/// A check's outcome. One that panicked leaves the chunk unwritten, to
/// be tried again: a panic is a bug, and no row is failed for it.
fn joined(done: Result<Check, tokio::task::JoinError>) -> Result<Check, RegistryError> {
    done.map_err(|_| RegistryError::Unavailable("a batch row's check did not finish".into()))
}

/// The certificate a row makes, checked as a single issue is.
async fn check_row(
    registry: &Registry,
    batch: &BatchRecord,
    input: &str,
) -> Result<CertificateRecord, RegistryError> {
    let recipient: Recipient = serde_json::from_str(input)
        .map_err(|_| RegistryError::Database("a batch row's stored input is unreadable".into()))?;
    let new = NewCertificate {
        template_id: batch.template_id.clone().unwrap_or_default(),
        recipient_name: recipient.name,
        recipient_email: recipient.email,
        fields: recipient.fields,
        metadata: recipient.metadata,
        expires_at: None,
        send_email: batch.send_email,
    };
    let owner = Owner {
        account_id: &batch.account_id,
        environment: batch.environment,
    };
    registry.prepare_certificate(owner, new).await
}

type Checked = Result<CertificateRecord, RowError>;

async fn write_issued(
    registry: &Registry,
    batch: &BatchRecord,
    rows: Vec<(i64, Checked)>,
) -> Result<(), RegistryError> {
    let store = &registry.store;
    let actor = actor_of(batch);
    let now = now_us();
    let (mut tx, pending) = begin_chunk(store, batch, rows.iter().map(|(row, _)| *row)).await?;
    let rows: Vec<(i64, Checked)> = rows
        .into_iter()
        .filter(|(row, _)| pending.contains(row))
        .collect();
    let outcomes: Vec<RowOutcome> = rows
        .iter()
        .map(|(row, checked)| RowOutcome {
            row: *row,
            certificate_id: checked.as_ref().ok().map(|r| r.id.clone()),
            error: checked.as_ref().err().map(RowError::to_json),
        })
        .collect();
    store
        .finish_rows(&mut tx, &batch.id, &outcomes, now)
        .await?;
    let issued: Vec<(&CertificateRecord, &Actor)> = rows
        .iter()
        .filter_map(|(_, checked)| checked.as_ref().ok().map(|record| (record, &actor)))
        .collect();
    insert_issued(store, &mut tx, &issued, ANSWERED).await?;
    let completed = i64::try_from(issued.len()).unwrap_or(i64::MAX);
    let failed = i64::try_from(rows.len() - issued.len()).unwrap_or(i64::MAX);
    finish_chunk(store, &mut tx, batch, completed, failed, now).await?;
    tx.commit().await?;
    registry.events_appended();
    Ok(())
}

async fn revoke_rows(
    registry: &Registry,
    batch: &BatchRecord,
    rows: Vec<(i64, String)>,
) -> Result<(), RegistryError> {
    let store = &registry.store;
    let actor = actor_of(batch);
    let now = now_us();
    let (mut tx, pending) = begin_chunk(store, batch, rows.iter().map(|(row, _)| *row)).await?;
    let (mut completed, mut failed) = (0, 0);
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut revoked = Vec::new();
    for (row, input) in rows.into_iter().filter(|(row, _)| pending.contains(row)) {
        let id: String = serde_json::from_str(&input).unwrap_or_default();
        let found = store
            .certificate_for_update(&mut *tx, &id, &batch.account_id, batch.environment)
            .await?;
        let error = found.is_none().then(|| {
            let message = format!("No certificate with id {}", crate::http::escape(&id));
            RowError::new("not_found", None, message).to_json()
        });
        outcomes.push(RowOutcome {
            row,
            certificate_id: Some(id),
            error,
        });
        let Some(mut record) = found else {
            failed += 1;
            continue;
        };
        completed += 1;
        // Already revoked: completed, unchanged, no second event.
        if record.status != Status::Revoked.name() {
            let reason = batch.reason.clone();
            revoke_in(store, &mut tx, &mut record, reason, &actor, now, ANSWERED).await?;
            revoked.push(record.id);
        }
    }
    store
        .finish_rows(&mut tx, &batch.id, &outcomes, now)
        .await?;
    finish_chunk(store, &mut tx, batch, completed, failed, now).await?;
    tx.commit().await?;
    registry.events_appended();
    for id in revoked {
        registry.forget_view(&id).await;
    }
    Ok(())
}

/// A chunk's transaction, and which of its `rows` are still pending in
/// it (only those may be written).
async fn begin_chunk(
    store: &Store,
    batch: &BatchRecord,
    rows: impl Iterator<Item = i64>,
) -> Result<(sqlx::Transaction<'static, sqlx::Any>, HashSet<i64>), RegistryError> {
    let mut tx = store.begin().await?;
    let numbers: Vec<i64> = rows.collect();
    let pending = store.pending_rows(&mut tx, &batch.id, &numbers).await?;
    Ok((tx, pending))
}

/// Counts the chunk's rows into its batch and, when they were the last,
/// marks the batch completed with its `batch.completed` event.
async fn finish_chunk(
    store: &Store,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    batch: &BatchRecord,
    completed: i64,
    failed: i64,
    now: i64,
) -> Result<(), RegistryError> {
    let counts = store.count_rows(tx, &batch.id, completed, failed).await?;
    if counts.completed + counts.failed >= counts.total
        && store.complete_batch(tx, &batch.id, now).await?
    {
        let done = BatchRecord {
            completed: counts.completed,
            failed: counts.failed,
            ..batch.clone()
        };
        append_completed(store, tx, &done, now).await?;
    }
    Ok(())
}

/// The `batch.completed` event of `batch`, with its final counts.
pub async fn append_completed(
    store: &Store,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    batch: &BatchRecord,
    now: i64,
) -> Result<(), RegistryError> {
    let event = NewEvent {
        account_id: &batch.account_id,
        livemode: batch.environment.is_live(),
        kind: "batch.completed",
        certificate_id: None,
        data: json!({
            "batch_id": batch.id,
            "kind": batch.kind,
            "total": batch.total,
            "completed": batch.completed,
            "failed": batch.failed,
        }),
    };
    store.append_event(&mut **tx, &event, now).await?;
    Ok(())
}
