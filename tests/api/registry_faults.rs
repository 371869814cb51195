//! `kill -9` of the real server in the middle of a storm of creates, on
//! SQLite and on PostgreSQL: after a restart on the same data, every
//! certificate whose `201` reached a client is there as it was answered,
//! and nothing is half-written: each stored certificate is whole, made by
//! one of the requests, and has one audit row and one outbox event.
//!
//! A create whose answer was lost to the kill is sent again after the
//! restart with the same body and `Idempotency-Key`, as a client would.
//! Whether that makes a second certificate depends on idempotency, which
//! is not in the server yet: [`idempotency_holds`] switches the test to
//! the contract's full promise once it is.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

use crate::on_both_databases;
use crate::registry_helpers::{new_postgres_database, Db};
use crate::registry_process::{ServerSetup, PUBLIC_BASE};
use crate::registry_storm::{
    client, list_all, outbox, send, sqlite_read_only, Answer, Create, CLIENTS,
};

/// Certificates answered `201` before the kill.
const KILL_AFTER: usize = 96;
/// How long a create the killed process claimed may stay in use: its
/// process counts as gone after five seconds without a heartbeat.
const IN_USE_BOUND: Duration = Duration::from_secs(30);
/// Most creates one client sends: a bound, never reached.
const MAX_PER_CLIENT: usize = 200;
/// How long the storm may take to reach [`KILL_AFTER`], and the clients
/// to notice the server is gone.
const STORM_BOUND: Duration = Duration::from_secs(40);

/// Whether the server keeps the contract's idempotency: a create sent
/// again with its `Idempotency-Key` after a restart answers the first
/// certificate instead of making another.
///
/// Once idempotency lands: return `true`. The test then demands exactly
/// one certificate per logical create. Until then it demands only what
/// holds without it, and fails (asking for this switch) as soon as the
/// server answers a retry with `Idempotent-Replayed: true`.
fn idempotency_holds() -> bool {
    true
}

/// A client's creates and what came back for each.
type Sent = Vec<(Create, Answer)>;

/// The storm: [`CLIENTS`] clients creating until the server is killed.
/// Returns every client's creates and answers, and why connections failed
/// while the server was still alive (none should have).
async fn storm_until_killed(
    server: &mut crate::registry_process::Server,
    key: &str,
    run: &str,
) -> (Vec<Sent>, Vec<String>) {
    let created = Arc::new(AtomicUsize::new(0));
    let killing = Arc::new(AtomicBool::new(false));
    let lost_alive = Arc::new(Mutex::new(Vec::new()));
    let enough = Arc::new(Notify::new());
    let url = server.url("/certificates");
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (created, killing, lost_alive, enough) = (
            Arc::clone(&created),
            Arc::clone(&killing),
            Arc::clone(&lost_alive),
            Arc::clone(&enough),
        );
        let (url, key, run) = (url.clone(), key.to_owned(), run.to_owned());
        clients.push(tokio::spawn(async move {
            let http = client();
            let mut sent = Sent::new();
            for n in 0..MAX_PER_CLIENT {
                let create = Create::new(&run, c, n);
                let (answer, _) = send(&http, &url, &key, &create).await;
                let lost = match &answer {
                    Answer::Lost(why) => Some(why.clone()),
                    _ => None,
                };
                if matches!(answer, Answer::Created { .. })
                    && created.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER
                {
                    enough.notify_one();
                }
                sent.push((create, answer));
                if let Some(why) = lost {
                    if !killing.load(Ordering::SeqCst) {
                        lost_alive.lock().unwrap().push(why);
                    }
                    break;
                }
            }
            sent
        }));
    }
    tokio::time::timeout(STORM_BOUND, enough.notified())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{KILL_AFTER} creates within {STORM_BOUND:?}:\n{}",
                server.log()
            )
        });
    killing.store(true, Ordering::SeqCst);
    server.kill();
    let mut all = Vec::new();
    for handle in clients {
        let sent = tokio::time::timeout(STORM_BOUND, handle)
            .await
            .expect("every client notices the server is gone")
            .unwrap();
        all.push(sent);
    }
    let lost_alive = lost_alive.lock().unwrap().clone();
    (all, lost_alive)
}

async fn every_answered_create_survives_kill_dash_nine_mid_storm(db: Db) {
    let database_url = match db {
        Db::Sqlite => None,
        Db::Postgres => Some(new_postgres_database()),
    };
    let setup = ServerSetup::new(database_url.as_deref());
    let key = setup.create_key(&["*"]);
    let run = signet::registry::ids::new_id("storm_").unwrap();
    let mut server = setup.start("info", &[]);
    let (sent, lost_alive) = storm_until_killed(&mut server, &key, &run).await;
    assert!(lost_alive.is_empty(), "before the kill: {lost_alive:?}");

    let mut server = setup.start("info", &[]);
    let http = client();
    let sent: Vec<(Create, Answer)> = sent.into_iter().flatten().collect();
    let creates: HashMap<String, Create> = sent
        .iter()
        .map(|(create, _)| (create.op.clone(), create.clone()))
        .collect();

    // Every `201` that reached a client reads back as it was answered.
    let mut answered: HashMap<String, Value> = HashMap::new();
    let mut unanswered = Vec::new();
    for (create, answer) in &sent {
        match answer {
            Answer::Created { object, .. } => {
                let id = object["id"].as_str().unwrap();
                let read = http
                    .get(server.url(&format!("/certificates/{id}")))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(read.status(), 200, "{id}");
                let read: Value = serde_json::from_str(&read.text().await.unwrap()).unwrap();
                assert_eq!(&read, object, "{id} reads back as answered");
                answered.insert(create.op.clone(), object.clone());
            }
            // Tolerated: a server shedding load says so; the create is
            // retried like a lost one.
            Answer::Refused {
                status,
                code,
                retry_after,
            } => {
                assert_eq!(
                    (*status, code.as_deref(), retry_after.is_some()),
                    (503, Some("unavailable"), true)
                );
                unanswered.push(create.clone());
            }
            Answer::Lost(_) => unanswered.push(create.clone()),
        }
    }
    assert!(answered.len() >= KILL_AFTER, "{}", answered.len());

    // A lost create is sent again with its key and body, as a client
    // retries.
    let url = server.url("/certificates");
    let mut retried: HashMap<String, (Value, bool)> = HashMap::new();
    for create in &unanswered {
        // A create the killed process had claimed stays in use until that
        // process is seen gone (its heartbeat stops: seconds); the client
        // comes back after `Retry-After`, within a bound.
        let started = std::time::Instant::now();
        loop {
            match send(&http, &url, &key, create).await.0 {
                Answer::Created { object, replayed } => {
                    retried.insert(create.op.clone(), (object, replayed));
                    break;
                }
                Answer::Refused {
                    status: 409,
                    code: Some(code),
                    retry_after: Some(_),
                } if code == "idempotency_key_in_use" && started.elapsed() < IN_USE_BOUND => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => panic!("a retry after the restart: {other:?}"),
            }
        }
    }

    // Nothing half-written: every certificate is whole and one request's.
    let listed = list_all(&http, &url, &key).await;
    let ids: HashSet<&str> = listed.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), listed.len(), "a certificate is listed twice");
    let mut by_op: HashMap<String, Vec<&Value>> = HashMap::new();
    for cert in &listed {
        let op = cert["metadata"]["op"].as_str().unwrap_or_default();
        let create = creates
            .get(op)
            .unwrap_or_else(|| panic!("made by no request: {cert}"));
        assert_whole(cert, &create.body);
        by_op.entry(op.to_owned()).or_default().push(cert);
    }
    for (op, object) in &answered {
        assert_eq!(by_op.get(op.as_str()), Some(&vec![object]), "{op}");
    }
    for (op, (object, _)) in &retried {
        let made = by_op.get(op.as_str()).map_or(&[][..], Vec::as_slice);
        assert!(
            made.contains(&object),
            "{op}: the retry's certificate is stored"
        );
        assert!(made.len() <= 2, "{op}: {made:?}");
    }

    // One audit row and one outbox event per certificate, no other.
    let audit = list_all(&http, &server.url("/audit_events"), &key).await;
    let mut audited: HashMap<&str, usize> = HashMap::new();
    for event in &audit {
        if event["action"] == "certificate.create" {
            *audited
                .entry(event["target"].as_str().unwrap())
                .or_insert(0) += 1;
        }
    }
    assert_eq!(audited, ids.iter().map(|id| (*id, 1)).collect());
    server.kill();
    let database = database_url.unwrap_or_else(|| sqlite_read_only(&setup.sqlite_file()));
    let events = outbox(&database).await;
    let issued: HashMap<&str, usize> = events
        .iter()
        .filter(|((_, kind), _)| kind == "certificate.issued")
        .map(|((cert, _), n)| (cert.as_str(), *n))
        .collect();
    assert_eq!(issued, ids.iter().map(|id| (*id, 1)).collect());

    let replays = retried.values().filter(|(_, replayed)| *replayed).count();
    if idempotency_holds() {
        // Once idempotency lands: a retried create answers the first
        // certificate when the lost attempt had committed, so every
        // logical create made exactly one.
        assert_eq!(listed.len(), creates.len());
        assert!(by_op.values().all(|made| made.len() == 1), "{by_op:?}");
    } else {
        assert_eq!(
            replays, 0,
            "the server replays idempotent creates: switch idempotency_holds() on"
        );
    }
}

/// `cert` is a whole certificate object made from `body`.
fn assert_whole(cert: &Value, body: &Value) {
    let id = cert["id"].as_str().unwrap();
    let mut keys: Vec<&str> = cert
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "expires_at",
            "fields",
            "id",
            "image_url",
            "issued_at",
            "livemode",
            "metadata",
            "object",
            "pdf_url",
            "proof",
            "recipient",
            "revocation_reason",
            "revoked_at",
            "social_image_url",
            "status",
            "template_id",
            "updated_at",
            "verification_url",
        ],
        "{cert}"
    );
    assert_eq!(cert["object"], "certificate");
    assert_eq!(cert["status"], "issued");
    assert_eq!(cert["template_id"], body["template_id"]);
    assert_eq!(cert["recipient"], body["recipient"]);
    assert_eq!(cert["fields"], body["fields"]);
    assert_eq!(cert["metadata"], body["metadata"]);
    assert_eq!(cert["verification_url"], format!("{PUBLIC_BASE}/c/{id}"));
    assert_eq!(cert["created_at"], cert["issued_at"]);
}

on_both_databases!(
    every_answered_create_survives_kill_dash_nine_mid_storm,
    super::every_answered_create_survives_kill_dash_nine_mid_storm
);
