//! The Python receiver of `docs/webhooks/receiver.py`, run with
//! `python3` against real deliveries: it verifies each one's signature
//! with Python's own `hmac` and `base64`, an implementation independent
//! of the server's, and refuses a delivery whose signature does not hold.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use signet::registry::Environment;

use crate::helpers::{repo, USER};
use crate::registry_certificates::{issue, maria};
use crate::registry_helpers::{json_of, Db};
use crate::registry_webhooks_receiver::{endpoint, spawn_hooks};

/// The receiver as a child process, its stdout lines sent to `lines`.
struct Python {
    child: Child,
    url: String,
    lines: mpsc::Receiver<String>,
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(secret: &str) -> Python {
    let mut child = Command::new("python3")
        .arg(repo().join("docs/webhooks/receiver.py"))
        .env("WEBHOOK_SECRET", secret)
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (Debian's python3)");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("the receiver says where it listens");
    let url = first
        .strip_prefix("listening on ")
        .expect(&first)
        .to_owned();
    Python { child, url, lines }
}

// Two workers: the test thread blocks on the receiver's output while the
// server's tasks run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_receiver_verifies_real_deliveries_and_refuses_forgeries() {
    let app = spawn_hooks(Db::Sqlite, |_| {}).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    // The secret first, then the receiver that knows it, then its URL.
    let (id, secret) = endpoint(&app, &key, "https://placeholder.example.org/", &["*"]).await;
    let python = start(&secret);
    let patch = json!({"url": format!("{}hook", python.url)});
    let (status, _) = json_of(
        app.patch_json(&format!("/webhook_endpoints/{id}"), &key, &patch)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let cert = issue(&app, &key, &maria()).await;
    let cert_id = cert["id"].as_str().unwrap();
    let change = json!({"metadata": {"cohort": "2026"}});
    let (status, _) = json_of(
        app.patch_json(&format!("/certificates/{cert_id}"), &key, &change)
            .await,
    )
    .await;
    assert_eq!(status, 200);

    let mut verified = Vec::new();
    while verified.len() < 2 {
        let Ok(line) = python.lines.recv_timeout(Duration::from_secs(20)) else {
            let (_, log) = json_of(
                app.get(&format!("/webhook_endpoints/{id}/deliveries"), &key)
                    .await,
            )
            .await;
            panic!("the receiver printed each verified delivery: {log}");
        };
        let parsed: Value = serde_json::from_str(&line).unwrap();
        verified.push(parsed);
    }
    let mut kinds: Vec<&str> = verified
        .iter()
        .map(|v| v["event"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["certificate.issued", "certificate.updated"]);
    assert!(verified
        .iter()
        .all(|v| v["verified"] == true && v["duplicate"] == false));
    // And the receiver said so to the server: 204, a success.
    let (_, log) = json_of(
        app.get(&format!("/webhook_endpoints/{id}/deliveries"), &key)
            .await,
    )
    .await;
    let statuses: Vec<&Value> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["response_status"])
        .collect();
    assert!(statuses.iter().all(|s| **s == json!(204)), "{log}");

    // A forged delivery (right headers, wrong key) is refused.
    let forged = reqwest::Client::new()
        .post(format!("{}hook", python.url))
        .header("webhook-id", "evt_forged")
        .header("webhook-timestamp", verified_now())
        .header(
            "webhook-signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        )
        .body(r#"{"event":"certificate.revoked"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
}

fn verified_now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string()
}
