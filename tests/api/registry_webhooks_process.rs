//! The real `signet` binary: killed with `kill -9` while deliveries are
//! in flight, then started again on the same data, every event reaches
//! the receiver, and any that arrives twice carries the same `webhook-id`
//! and body; and two processes on one PostgreSQL deliver each event once
//! per endpoint.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{CERT, SECRET, USER};
use crate::on_both_databases;
use crate::registry_helpers::{new_postgres_database, Db};
use crate::registry_process::{Server, ServerSetup, PUBLIC_BASE};
use crate::registry_webhooks_receiver::{by_id, eventually, signed_by, Receiver};

const WAIT: Duration = Duration::from_secs(60);

/// A setup whose webhooks may reach loopback, retry quickly and send
/// at most `per_endpoint` at once to one endpoint.
fn setup(database_url: Option<&str>, per_endpoint: usize) -> ServerSetup {
    ServerSetup::with_users(
        database_url,
        &format!(
            "[[users]]\nid = \"{USER}\"\nsecrets = [\"{SECRET}\"]\nplan = \"custom\"\n\
             rate_limit_per_minute = 1000000\nbatch_size = 100\npublic_base_url = \"{PUBLIC_BASE}\"\n\
             [webhooks]\nallow_private_networks = true\ntimeout_ms = 2000\n\
             retry_delays_ms = [200, 200, 200, 200, 200, 200]\n\
             max_concurrency_per_endpoint = {per_endpoint}\n"
        ),
    )
}

async fn post(server: &Server, key: &str, path: &str, body: &Value) -> Value {
    let answer = reqwest::Client::new()
        .post(server.url(path))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let body: Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

async fn issue_many(server: &Server, key: &str, n: usize, run: &str) -> HashSet<String> {
    let mut ids = HashSet::new();
    for i in 0..n {
        let body = json!({"template_id": CERT, "recipient": {"name": format!("Learner {run} {i}")},
                          "fields": {"course_name": "Webhooks"}});
        let cert = post(server, key, "/certificates", &body).await;
        ids.insert(cert["id"].as_str().unwrap().to_owned());
    }
    ids
}

async fn deliveries_pending_at_a_kill_are_all_sent_after_restart(db: Db) {
    let database = (db == Db::Postgres).then(new_postgres_database);
    // One at a time, 300 ms each: most are still pending at the kill.
    let setup = setup(database.as_deref(), 1);
    let key = setup.create_key(&["*"]);
    let receiver = Receiver::start().await;
    let mut server = setup.start("info", &[]);
    let made = post(
        &server,
        &key,
        "/webhook_endpoints",
        &json!({"url": receiver.url("/slow"), "events": ["certificate.issued"]}),
    )
    .await;
    let secret = made["secret"].as_str().unwrap().to_owned();
    let certificates = issue_many(&server, &key, 40, "kill").await;
    // Some are being answered (300 ms each), the rest wait: kill now.
    eventually(WAIT, "deliveries under way", || async {
        (!receiver.at("/slow").is_empty()).then_some(())
    })
    .await;
    server.kill();
    let before = receiver.at("/slow").len();
    assert!(
        before < 40,
        "all delivered before the kill: nothing was pending"
    );

    let _restarted = setup.start("info", &[]);
    let got = eventually(WAIT, "every event delivered after the restart", || async {
        let got = receiver.at("/slow");
        let ids: HashSet<String> = got
            .iter()
            .map(|r| r.json()["certificate_id"].as_str().unwrap().to_owned())
            .collect();
        (ids == certificates).then_some(got)
    })
    .await;
    // One webhook-id per event, each with one body, all signed.
    let mut bodies: HashMap<&str, &[u8]> = HashMap::new();
    for received in &got {
        assert!(signed_by(received, &secret));
        assert_eq!(received.json()["id"], received.id.as_str());
        let first = bodies.entry(&received.id).or_insert(&received.body);
        assert_eq!(*first, &received.body[..], "a resend carries the same body");
    }
    assert_eq!(bodies.len(), 40, "one webhook-id per event");
}
on_both_databases!(
    deliveries_pending_at_a_kill_are_all_sent_after_restart,
    super::deliveries_pending_at_a_kill_are_all_sent_after_restart
);

#[tokio::test]
async fn two_processes_on_one_postgres_deliver_each_event_once_per_endpoint() {
    let database = new_postgres_database();
    let first_setup = setup(Some(&database), 16);
    let second_setup = setup(Some(&database), 16);
    let key = first_setup.create_key(&["*"]);
    let receiver = Receiver::start().await;
    let first = first_setup.start("info", &[]);
    let second = second_setup.start("info", &[]);
    for path in ["/a", "/b"] {
        post(
            &first,
            &key,
            "/webhook_endpoints",
            &json!({"url": receiver.url(path), "events": ["*"]}),
        )
        .await;
    }
    let (one, two) = tokio::join!(
        issue_many(&first, &key, 60, "one"),
        issue_many(&second, &key, 60, "two")
    );
    assert_eq!(one.len() + two.len(), 120);
    for path in ["/a", "/b"] {
        let got = eventually(WAIT, "every event at the endpoint", || async {
            let got = receiver.at(path);
            (by_id(&got).len() >= 120).then_some(got)
        })
        .await;
        assert_eq!(by_id(&got).len(), 120);
    }
    // Once nothing is pending, nothing more is sent: no lease is left to
    // be taken over.
    let data = tempfile::tempdir().unwrap();
    let store = signet::registry::Store::open(Some(&database), data.path())
        .await
        .unwrap();
    eventually(WAIT, "nothing pending", || async {
        store
            .pending_deliveries()
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    for path in ["/a", "/b"] {
        let twice: Vec<_> = by_id(&receiver.at(path))
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .collect();
        assert!(twice.is_empty(), "{path}: sent more than once: {twice:?}");
    }
    drop((first, second));
}
