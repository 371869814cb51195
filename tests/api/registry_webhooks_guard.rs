//! The SSRF guard at delivery time: without the allowance, a host name
//! that resolves to loopback is never connected to (the attempt fails
//! naming why), whatever the URL looked like when it was accepted.

use std::time::Duration;

use serde_json::Value;
use signet::registry::Environment;

use crate::helpers::USER;
use crate::on_both_databases;
use crate::registry_certificates::{issue, maria};
use crate::registry_helpers::{spawn_registry_with_templates_and, Db};
use crate::registry_webhooks_receiver::{attempts, endpoint, eventually, Receiver};

async fn a_name_resolving_to_loopback_is_refused_at_delivery(db: Db) {
    let app = spawn_registry_with_templates_and(db, |config| {
        config.webhooks.retry_delays_ms = vec![];
    })
    .await;
    let receiver = Receiver::start().await;
    // Plain http is allowed in test mode; the name is not checked when
    // made, as its addresses may change: they are checked at connection.
    let (_, key) = app.key(USER, Environment::Test, &["*"]).await;
    let port = receiver.base.rsplit(':').next().unwrap();
    let (id, _) = endpoint(&app, &key, &format!("http://localhost:{port}/ok"), &["*"]).await;
    issue(&app, &key, &maria()).await;
    let log = eventually(
        Duration::from_secs(20),
        "the refused attempt logged",
        || async {
            let log = attempts(&app, &key, &id).await;
            (!log.is_empty()).then_some(log)
        },
    )
    .await;
    assert_eq!(log[0]["outcome"], "failed");
    assert_eq!(log[0]["response_status"], Value::Null);
    let error = log[0]["error"].as_str().unwrap();
    assert!(error.contains("no public address"), "{error}");
    assert!(receiver.at("/ok").is_empty(), "the receiver was reached");
}
on_both_databases!(
    a_name_resolving_to_loopback_is_refused_at_delivery,
    super::a_name_resolving_to_loopback_is_refused_at_delivery
);
