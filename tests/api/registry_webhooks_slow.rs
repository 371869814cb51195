//! Receivers that hang or answer too late: each attempt ends at the
//! timeout and counts as failed (a 200 after it too), while another
//! endpoint's deliveries and the API go on as if nothing happened. Each
//! test runs on SQLite and on PostgreSQL.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use signet::registry::Environment;

use crate::helpers::USER;
use crate::on_both_databases;
use crate::registry_certificates::{issue, maria};
use crate::registry_helpers::{json_of, Db};
use crate::registry_webhooks_receiver::{
    attempts, endpoint, eventually, spawn_hooks, Receiver, LATE, TIMEOUT_MS,
};

const WAIT: Duration = Duration::from_secs(20);

async fn a_hanging_or_late_receiver_times_out_without_holding_up_others(db: Db) {
    let app = spawn_hooks(db, |config| {
        // One retry each, so the test sees the timeout twice at most.
        config.webhooks.retry_delays_ms = vec![100];
        config.webhooks.max_concurrency_per_endpoint = 2;
    })
    .await;
    let receiver = Receiver::start().await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let (hang, _) = endpoint(&app, &key, &receiver.url("/hang"), &["*"]).await;
    let (late, _) = endpoint(&app, &key, &receiver.url("/late"), &["*"]).await;
    let (ok, _) = endpoint(&app, &key, &receiver.url("/ok"), &["*"]).await;
    // More events than the slow endpoints have slots.
    for _ in 0..5 {
        issue(&app, &key, &maria()).await;
    }
    // The healthy endpoint has all five long before the others time out.
    eventually(WAIT, "five deliveries to the healthy endpoint", || async {
        (receiver.at("/ok").len() >= 5).then_some(())
    })
    .await;
    // All of them while the first attempt to the hanging one was still
    // waiting for its answer.
    let first_hang = eventually(WAIT, "an attempt at the hanging endpoint", || async {
        receiver.at("/hang").first().map(|r| r.at)
    })
    .await;
    let timed_out = first_hang + Duration::from_millis(TIMEOUT_MS);
    for delivered in receiver.at("/ok") {
        assert!(
            delivered.at < timed_out,
            "the healthy endpoint waited on the slow ones"
        );
    }
    // The API answers at once while attempts hang.
    let asked = Instant::now();
    let (status, _) = json_of(app.get("/webhook_endpoints", &key).await).await;
    assert_eq!(status, 200);
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "{:?}",
        asked.elapsed()
    );

    for (endpoint, path) in [(&hang, "hang"), (&late, "late")] {
        let log = eventually(WAIT, "a timed-out attempt logged", || async {
            let log = attempts(&app, &key, endpoint).await;
            (!log.is_empty()).then_some(log)
        })
        .await;
        let first = &log[0];
        assert_eq!(first["outcome"], "failed", "{path}: {first}");
        assert_eq!(
            first["response_status"],
            Value::Null,
            "{path}: a late 200 is no answer"
        );
        assert!(
            first["error"].as_str().unwrap().contains("timed out"),
            "{first}"
        );
        let took = first["duration_ms"].as_u64().unwrap();
        assert!(
            (TIMEOUT_MS - 50..TIMEOUT_MS + 1500).contains(&took),
            "{path}: {took} ms for a {TIMEOUT_MS} ms timeout"
        );
    }
    // The late receiver did answer 200, after the timeout: still failed.
    assert!(LATE > Duration::from_millis(TIMEOUT_MS));
    let ok_log = attempts(&app, &key, &ok).await;
    assert!(ok_log.iter().all(|a| a["outcome"] == json!("succeeded")));
}
on_both_databases!(
    a_hanging_or_late_receiver_times_out_without_holding_up_others,
    super::a_hanging_or_late_receiver_times_out_without_holding_up_others
);

#[test]
fn the_default_timeout_is_ten_seconds() {
    let config = signet::registry::webhook::WebhookConfig::default();
    assert_eq!(config.timeout_ms, 10_000);
    assert!(!config.allow_private_networks);
}
