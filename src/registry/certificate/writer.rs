//! Group commit of new certificates: one task writes every certificate
//! that is waiting, each with its audit row, outbox event and kept
//! answer, in one transaction, and answers them all once it commits.
//!
//! A commit costs a sync of the disk (SQLite's WAL, PostgreSQL's WAL
//! flush), about the same for one row as for a hundred. Issuing one
//! certificate per transaction therefore caps creates at the disk's syncs
//! per second; grouping those that arrive while the previous commit is
//! syncing lets the number of creates grow with the number of clients,
//! and still answers each `201` only after its row is durable.
//!
//! A group fails as a whole (a taken-over idempotency claim, a constraint),
//! so after a failure each of its certificates is written again on its
//! own, and each caller gets its own outcome — unless the database is
//! out of reach, which every caller is told at once.

use tokio::sync::{mpsc, oneshot};

use super::issue::insert_issued;
use crate::registry::error::RegistryError;
use crate::registry::keys::Actor;
use crate::registry::store::CertificateRecord;
use crate::registry::store::{Claim, KeptAnswer, Store, TAKEN_OVER};

/// Most certificates one transaction writes.
const MAX_GROUP: usize = 128;
/// Certificates waiting for the writer at most; more wait to be queued.
const QUEUE: usize = 1024;

/// A certificate to write, with what its transaction also holds.
pub struct NewRow {
    pub record: CertificateRecord,
    pub actor: Actor,
    /// The idempotency claim and the answer kept for it.
    pub reply: Option<(Claim, KeptAnswer)>,
}

struct Job {
    row: NewRow,
    done: oneshot::Sender<Result<(), RegistryError>>,
}

/// The handle to the writer task; the task ends when the last handle is
/// dropped.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Writer {
    /// Starts the writer of `store` (on the current runtime).
    pub fn start(store: Store) -> Writer {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, jobs));
        Writer { queue }
    }

    /// Writes `row`; returns once it is committed (or refused).
    pub async fn write(&self, row: NewRow) -> Result<(), RegistryError> {
        let (done, outcome) = oneshot::channel();
        let gone = || RegistryError::Unavailable("the certificate writer stopped".into());
        self.queue
            .send(Job { row, done })
            .await
            .map_err(|_| gone())?;
        outcome.await.map_err(|_| gone())?
    }
}

async fn run(store: Store, mut jobs: mpsc::Receiver<Job>) {
    let mut group: Vec<Job> = Vec::with_capacity(MAX_GROUP);
    while jobs.recv_many(&mut group, MAX_GROUP).await > 0 {
        let rows: Vec<&NewRow> = group.iter().map(|job| &job.row).collect();
        match write_all(&store, &rows).await {
            Ok(()) => {
                for job in group.drain(..) {
                    let _ = job.done.send(Ok(()));
                }
            }
            Err(error) if group.len() == 1 => {
                if let Some(job) = group.pop() {
                    let _ = job.done.send(Err(error));
                }
            }
            // The database is out of reach: no row would fare better on
            // its own, and trying each would keep the last caller waiting
            // a connection timeout per row before it.
            Err(RegistryError::Unavailable(cause)) if cause != TAKEN_OVER => {
                for job in group.drain(..) {
                    let _ = job
                        .done
                        .send(Err(RegistryError::Unavailable(cause.clone())));
                }
            }
            Err(_) => {
                for job in group.drain(..) {
                    let outcome = write_all(&store, &[&job.row]).await;
                    let _ = job.done.send(outcome);
                }
            }
        }
    }
}

/// `rows` in one transaction, each table's rows in a few statements.
async fn write_all(store: &Store, rows: &[&NewRow]) -> Result<(), RegistryError> {
    let mut tx = store.begin().await?;
    let issued: Vec<(&CertificateRecord, &Actor)> =
        rows.iter().map(|row| (&row.record, &row.actor)).collect();
    insert_issued(store, &mut tx, &issued, 201).await?;
    for row in rows {
        if let Some((claim, answer)) = &row.reply {
            store.keep_answer_within(&mut tx, claim, answer).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
