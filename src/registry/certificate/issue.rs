//! Issuing, changing and revoking certificates. Each change is one
//! transaction: the certificate's row, its audit row, its outbox event
//! and, for a `POST` with an idempotency key, the answer kept for the
//! key's retries, committed before the caller is answered.

use serde_json::{json, Map, Value};

use super::writer::NewRow;
use super::{
    check_email, check_future, check_metadata, check_reason, status_of, CertificateChange,
    NewCertificate, Status,
};
use crate::registry::error::RegistryError;
use crate::registry::ids::{self, Environment};
use crate::registry::keys::{audit_by, Actor};
use crate::registry::store::{now_us, CertificateRecord, NewAuditEvent, NewEvent, Reply, Store};
use crate::registry::{rfc3339, Registry};

/// How often a correction is checked again when its certificate changed
/// while it was being checked.
const MAX_CORRECTION_ATTEMPTS: u32 = 3;

/// Who asks, and in which environment: a key's account and environment.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub account_id: &'a str,
    pub environment: Environment,
}

impl Registry {
    /// Issues a certificate: checked against its template, then stored
    /// with its audit row, `certificate.issued` event and, for a request
    /// with an idempotency key, the answer kept for its retries.
    pub async fn issue_certificate(
        &self,
        owner: Owner<'_>,
        new: NewCertificate,
        actor: &Actor,
        reply: Option<&Reply<'_, CertificateRecord>>,
    ) -> Result<CertificateRecord, RegistryError> {
        let record = self.prepare_certificate(owner, new).await?;
        // The answer kept for the key is made now, from the record as it
        // will be stored, and written in the same transaction.
        let kept = reply.map(|r| (r.claim.clone(), (r.answer)(&record)));
        self.writer
            .write(NewRow {
                record: record.clone(),
                actor: actor.clone(),
                reply: kept,
            })
            .await?;
        // The webhook worker is not woken here: it would fan each create
        // out in a synced transaction of its own, competing with the
        // group commits for SQLite's one write lock (creates' p99 rose
        // from 26 to 43 ms under load). It finds new certificates at its
        // next poll (50 ms); changes and batch chunks, far fewer, wake it.
        if let Some(reply) = reply {
            reply.kept.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(record)
    }

    /// The record `new` makes, checked as an issue checks it (times,
    /// metadata, e-mail, the template's rules), not yet stored: a batch
    /// row is checked the same way.
    pub(crate) async fn prepare_certificate(
        &self,
        owner: Owner<'_>,
        new: NewCertificate,
    ) -> Result<CertificateRecord, RegistryError> {
        let now = now_us();
        check_future(new.expires_at, now)?;
        check_metadata(&new.metadata)?;
        // The contract: `email` is optional unless the certificate is
        // e-mailed. (Sending comes with the trust features; the rule
        // holds already, so integrations written now keep working then.)
        match &new.recipient_email {
            Some(email) => check_email(email)?,
            None if new.send_email => {
                return Err(RegistryError::invalid_field(
                    "recipient.email",
                    "recipient.email is required when the certificate is e-mailed \
                     (send_email, or the account's default)",
                ))
            }
            None => {}
        }
        let template_hash = self
            .check_against_template(
                owner.account_id,
                &new.template_id,
                &new.recipient_name,
                &new.fields,
            )
            .await?;
        let record = CertificateRecord {
            id: ids::new_id("cert_")?,
            account_id: owner.account_id.to_owned(),
            environment: owner.environment,
            status: Status::Issued.name().to_owned(),
            template_id: new.template_id,
            template_hash,
            salt: ids::new_salt()?,
            recipient_name: new.recipient_name,
            recipient_email: new.recipient_email,
            fields: new.fields,
            metadata: new.metadata,
            expires_at: new.expires_at,
            revoked_at: None,
            revocation_reason: None,
            created_at: now,
            updated_at: now,
        };
        Ok(record)
    }

    /// The certificate `id` of `owner`; another's is not found.
    pub async fn certificate(
        &self,
        owner: Owner<'_>,
        id: &str,
    ) -> Result<CertificateRecord, RegistryError> {
        self.store
            .certificate(id, owner.account_id, owner.environment)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// Applies a `PATCH`. `status: revoked` revokes (with no reason);
    /// anything else on a revoked certificate is `InvalidTransition`.
    pub async fn change_certificate(
        &self,
        owner: Owner<'_>,
        id: &str,
        change: CertificateChange,
        actor: &Actor,
    ) -> Result<CertificateRecord, RegistryError> {
        if change.status == Some(Status::Revoked) {
            let only_status = change.expires_at.is_none()
                && change.metadata.is_none()
                && change.recipient_name.is_none()
                && change.fields.is_none();
            if !only_status {
                return Err(RegistryError::invalid(
                    "status",
                    "revoke on its own: a revoked certificate takes no other change",
                ));
            }
            return self.revoke_certificate(owner, id, None, actor, None).await;
        }
        let now = now_us();
        if let Some(expires_at) = change.expires_at {
            check_future(expires_at, now)?;
        }
        if let Some(metadata) = &change.metadata {
            check_metadata(metadata)?;
        }
        let corrected = change.recipient_name.is_some() || change.fields.is_some();
        let mut attempts = 0;
        let (mut tx, mut record, correction) = loop {
            let current = self.certificate(owner, id).await?;
            refuse_if_revoked(&current)?;
            // A corrected name or field must still render: checked against
            // the template as it is now, whose version the record keeps.
            let mut fields = current.fields.clone();
            fields.extend(change.fields.clone().unwrap_or_default());
            let name = change
                .recipient_name
                .clone()
                .unwrap_or_else(|| current.recipient_name.clone());
            let correction = if corrected {
                let hash = self
                    .check_against_template(owner.account_id, &current.template_id, &name, &fields)
                    .await?;
                Some((hash, name, fields))
            } else {
                None
            };
            let mut tx = self.store.begin().await?;
            let record = self.locked(&mut tx, owner, id).await?;
            // The check ran outside the transaction (render work must not
            // hold the write lock). Fields merged into a row that changed
            // since would undo that change: then it is done again.
            if !corrected || record.updated_at == current.updated_at {
                break (tx, record, correction);
            }
            tx.rollback().await?;
            attempts += 1;
            if attempts == MAX_CORRECTION_ATTEMPTS {
                return Err(RegistryError::Unavailable(format!(
                    "certificate {id} kept changing during a correction"
                )));
            }
        };
        refuse_if_revoked(&record)?;
        let before = record.clone();
        if let Some(status) = change.status {
            record.status = status.name().to_owned();
        }
        if let Some(expires_at) = change.expires_at {
            record.expires_at = expires_at;
        }
        if let Some(metadata) = change.metadata {
            record.metadata = metadata;
        }
        if let Some((hash, name, fields)) = correction {
            record.recipient_name = name;
            record.fields = fields;
            record.template_hash = hash;
        }
        let changes = differences(&before, &record);
        if changes.is_empty() {
            tx.commit().await?;
            return Ok(record);
        }
        record.updated_at = now;
        self.store.update_certificate(&mut *tx, &record).await?;
        let change = Change {
            action: "certificate.update",
            event: "certificate.updated",
            status: 200,
            changes: Value::Object(changes),
        };
        record_change(&self.store, &mut tx, &record, actor, change, now).await?;
        tx.commit().await?;
        self.forget_view(&record.id).await;
        Ok(record)
    }

    /// Revokes: final. Revoking a revoked certificate changes nothing,
    /// writes no event and returns it as it is. Either way `reply`'s
    /// answer commits with the outcome.
    pub async fn revoke_certificate(
        &self,
        owner: Owner<'_>,
        id: &str,
        reason: Option<String>,
        actor: &Actor,
        reply: Option<&Reply<'_, CertificateRecord>>,
    ) -> Result<CertificateRecord, RegistryError> {
        check_reason(reason.as_deref())?;
        let now = now_us();
        let mut tx = self.store.begin().await?;
        let mut record = self.locked(&mut tx, owner, id).await?;
        if record.status == Status::Revoked.name() {
            self.store.keep_reply(&mut tx, reply, &record).await?;
            tx.commit().await?;
            return Ok(record);
        }
        revoke_in(&self.store, &mut tx, &mut record, reason, actor, now, 200).await?;
        self.store.keep_reply(&mut tx, reply, &record).await?;
        tx.commit().await?;
        self.forget_view(&record.id).await;
        Ok(record)
    }

    /// The certificate read inside `tx`, locked against a concurrent
    /// change (SQLite's `BEGIN IMMEDIATE` already holds the write lock).
    async fn locked(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        owner: Owner<'_>,
        id: &str,
    ) -> Result<CertificateRecord, RegistryError> {
        self.store
            .certificate_for_update(&mut **tx, id, owner.account_id, owner.environment)
            .await?
            .ok_or_else(|| not_found(id))
    }
}

/// Revokes `record`, read (and locked) in `tx` and not revoked yet: its
/// row, audit row and `certificate.revoked` event, in `tx`. `answered`
/// is the status the request that asked is answered with.
pub(crate) async fn revoke_in(
    store: &Store,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    record: &mut CertificateRecord,
    reason: Option<String>,
    actor: &Actor,
    now: i64,
    answered: u16,
) -> Result<(), RegistryError> {
    let before = status_of(record, now).name();
    record.status = Status::Revoked.name().to_owned();
    record.revoked_at = Some(now);
    record.revocation_reason = reason;
    record.updated_at = now;
    store.update_certificate(&mut **tx, record).await?;
    let change = Change {
        action: "certificate.revoke",
        event: "certificate.revoked",
        status: answered,
        changes: json!({
            "status": [before, "revoked"],
            "revocation_reason": [null, record.revocation_reason],
        }),
    };
    record_change(store, tx, record, actor, change, now).await
}

/// The audit row and outbox event of a change, in its transaction.
pub(crate) async fn record_change(
    store: &Store,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    record: &CertificateRecord,
    actor: &Actor,
    change: Change,
    now: i64,
) -> Result<(), RegistryError> {
    let (audit, event) = change_rows(record, actor, change, now);
    store.append_audit(&mut **tx, &audit, now).await?;
    store.append_event(&mut **tx, &event, now).await?;
    Ok(())
}

/// New certificates, each with the audit row and `certificate.issued`
/// event of its actor, in `tx`, in a few statements for all: a group
/// commit's or a batch chunk's. `answered` is the status the requests are
/// answered with.
pub(crate) async fn insert_issued(
    store: &Store,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    rows: &[(&CertificateRecord, &Actor)],
    answered: u16,
) -> Result<(), RegistryError> {
    let records: Vec<&CertificateRecord> = rows.iter().map(|(record, _)| *record).collect();
    store.insert_certificates(tx, &records).await?;
    let mut audits = Vec::with_capacity(rows.len());
    let mut events = Vec::with_capacity(rows.len());
    for (record, actor) in rows {
        let at = record.created_at;
        let (audit, event) = change_rows(record, actor, Change::issued(answered), at);
        audits.push((audit, at));
        events.push((event, at));
    }
    store.append_audits(tx, &audits).await?;
    store.append_events(tx, &events).await?;
    Ok(())
}

/// What a change of `record` appends: its audit row and outbox event.
fn change_rows<'r>(
    record: &'r CertificateRecord,
    actor: &Actor,
    change: Change,
    now: i64,
) -> (NewAuditEvent, NewEvent<'r>) {
    let audit = NewAuditEvent {
        account_id: Some(record.account_id.clone()),
        livemode: record.environment.is_live(),
        action: change.action,
        target: Some(record.id.clone()),
        status: actor.request_id.as_ref().map(|_| change.status),
        changes: Some(change.changes.clone()),
        ..audit_by(actor)
    };
    let event = NewEvent {
        account_id: &record.account_id,
        livemode: record.environment.is_live(),
        kind: change.event,
        certificate_id: Some(&record.id),
        data: json!({
            "status": status_of(record, now).name(),
            "changes": change.changes,
        }),
    };
    (audit, event)
}

/// What one change writes besides the row.
pub(crate) struct Change {
    /// The audit log's action.
    action: &'static str,
    /// The outbox event's type.
    event: &'static str,
    /// The HTTP status the API answers it with, for the audit row.
    status: u16,
    changes: Value,
}

impl Change {
    /// A new certificate's, answered `answered` (`201`, or `202` for a
    /// batch's).
    pub(crate) fn issued(answered: u16) -> Change {
        Change {
            action: "certificate.create",
            event: "certificate.issued",
            status: answered,
            changes: json!({"status": [null, "issued"]}),
        }
    }
}

fn not_found(id: &str) -> RegistryError {
    RegistryError::NotFound {
        kind: "certificate",
        id: id.to_owned(),
    }
}

fn refuse_if_revoked(record: &CertificateRecord) -> Result<(), RegistryError> {
    if record.status == Status::Revoked.name() {
        return Err(RegistryError::InvalidTransition(format!(
            "Certificate {} is revoked; a revocation is final",
            record.id
        )));
    }
    Ok(())
}

/// Field → `[before, after]` for every part a `PATCH` may change.
fn differences(before: &CertificateRecord, after: &CertificateRecord) -> Map<String, Value> {
    let mut changes = Map::new();
    let mut note = |name: &str, was: Value, now: Value| {
        if was != now {
            changes.insert(name.to_owned(), json!([was, now]));
        }
    };
    note("status", json!(before.status), json!(after.status));
    note(
        "expires_at",
        json!(before.expires_at.map(rfc3339)),
        json!(after.expires_at.map(rfc3339)),
    );
    note("metadata", json!(before.metadata), json!(after.metadata));
    note(
        "recipient.name",
        json!(before.recipient_name),
        json!(after.recipient_name),
    );
    note("fields", json!(before.fields), json!(after.fields));
    changes
}
