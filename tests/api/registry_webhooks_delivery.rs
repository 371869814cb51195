//! Deliveries to a real receiver on 127.0.0.1: each event POSTed with
//! the contract's body, signed per Standard Webhooks (checked here with
//! an independent HMAC), to the endpoints whose filter wants it; attempts
//! logged; failures (500, a receiver that is down) retried on the
//! schedule; redelivery with the same `webhook-id`. Each test runs on
//! SQLite and on PostgreSQL.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use signet::registry::Environment;

use crate::helpers::{OTHER_USER, USER};
use crate::on_both_databases;
use crate::registry_certificates::{issue, maria};
use crate::registry_helpers::{expect_error, json_of, Db};
use crate::registry_webhooks_receiver::{
    attempts, by_id, endpoint, eventually, signed_by, spawn_hooks, Receiver,
};

const WAIT: Duration = Duration::from_secs(20);

async fn events_go_signed_to_the_endpoints_whose_filter_wants_them(db: Db) {
    let app = spawn_hooks(db, |_| {}).await;
    let receiver = Receiver::start().await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let (_, sandbox) = app.key(USER, Environment::Test, &["*"]).await;
    let (all, all_secret) = endpoint(&app, &key, &receiver.url("/all"), &["*"]).await;
    let (_, revoked_secret) = endpoint(
        &app,
        &key,
        &receiver.url("/revoked"),
        &["certificate.revoked"],
    )
    .await;
    let cert = issue(&app, &key, &maria()).await;
    let id = cert["id"].as_str().unwrap();
    let revoke = app
        .post_json(
            &format!("/certificates/{id}/revoke"),
            &key,
            &json!({"reason": "test"}),
        )
        .await;
    assert_eq!(revoke.status(), 200);
    // A sandbox certificate goes to sandbox endpoints only (there are none).
    issue(&app, &sandbox, &maria()).await;

    let got = eventually(WAIT, "two events at /all", || async {
        let got = receiver.at("/all");
        (got.len() >= 2).then_some(got)
    })
    .await;
    let revoked = eventually(WAIT, "the revocation at /revoked", || async {
        let got = receiver.at("/revoked");
        (!got.is_empty()).then_some(got)
    })
    .await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (received, secret) in got
        .iter()
        .map(|r| (r, &all_secret))
        .chain([(&revoked[0], &revoked_secret)])
    {
        assert!(signed_by(received, secret), "signature of {received:?}");
        assert!(!signed_by(received, &revoked_secret) || secret == &revoked_secret);
        let body = received.json();
        assert_eq!(
            body["id"],
            received.id.as_str(),
            "webhook-id is the event's id"
        );
        assert!(received.id.starts_with("evt_"));
        let sent_at: i64 = received.timestamp.parse().unwrap();
        assert!((now - sent_at).abs() < 60, "{sent_at} vs {now}");
        assert_eq!(body["certificate_id"], id);
        assert_eq!(body["livemode"], true);
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(body["data"].is_object(), "{body}");
        let keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                "certificate_id",
                "data",
                "event",
                "id",
                "livemode",
                "timestamp"
            ]
        );
    }
    let kinds: Vec<Value> = got.iter().map(|r| r.json()["event"].clone()).collect();
    assert!(
        kinds.contains(&json!("certificate.issued"))
            && kinds.contains(&json!("certificate.revoked"))
    );
    assert_eq!(revoked[0].json()["event"], "certificate.revoked");
    assert_eq!(
        revoked[0].id,
        got.iter()
            .find(|r| r.json()["event"] == "certificate.revoked")
            .unwrap()
            .id
    );

    // The log shows each attempt; nothing else arrives.
    let log = eventually(WAIT, "two attempts logged", || async {
        let log = attempts(&app, &key, &all).await;
        (log.len() == 2).then_some(log)
    })
    .await;
    for attempt in &log {
        assert_eq!(attempt["object"], "webhook_delivery");
        assert_eq!(
            (
                attempt["outcome"].clone(),
                attempt["response_status"].clone()
            ),
            (json!("succeeded"), json!(204))
        );
        assert_eq!(
            (attempt["attempt"].clone(), attempt["error"].clone()),
            (json!(1), Value::Null)
        );
        assert_eq!(attempt["endpoint_id"], all.as_str());
    }
    assert_eq!(receiver.at("/all").len(), 2);
    assert_eq!(receiver.at("/revoked").len(), 1);
}
on_both_databases!(
    events_go_signed_to_the_endpoints_whose_filter_wants_them,
    super::events_go_signed_to_the_endpoints_whose_filter_wants_them
);

async fn a_500_or_a_receiver_that_is_down_is_retried_then_given_up(db: Db) {
    let app = spawn_hooks(db, |_| {}).await;
    let receiver = Receiver::start().await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let (flaky, secret) = endpoint(&app, &key, &receiver.url("/flaky"), &["*"]).await;
    let (failing, _) = endpoint(&app, &key, &receiver.url("/fail"), &["*"]).await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let (down, _) = endpoint(&app, &key, &down_url, &["*"]).await;
    issue(&app, &key, &maria()).await;

    // 500 then 204: two requests with one webhook-id, both signed.
    let got = eventually(WAIT, "the retry after a 500", || async {
        let got = receiver.at("/flaky");
        (got.len() >= 2).then_some(got)
    })
    .await;
    assert_eq!(got[0].id, got[1].id);
    assert!(got.iter().all(|r| signed_by(r, &secret)));
    let log = eventually(WAIT, "both attempts logged", || async {
        let log = attempts(&app, &key, &flaky).await;
        (log.len() == 2).then_some(log)
    })
    .await;
    assert_eq!(
        (log[0]["outcome"].clone(), log[0]["response_status"].clone()),
        (json!("failed"), json!(500))
    );
    assert_eq!(
        (log[1]["outcome"].clone(), log[1]["attempt"].clone()),
        (json!("succeeded"), json!(2))
    );

    // Always 500, or nobody listening: the first attempt and three
    // retries, then the delivery is given up.
    for (endpoint, connect) in [(&failing, false), (&down, true)] {
        let log = eventually(WAIT, "four attempts", || async {
            let log = attempts(&app, &key, endpoint).await;
            (log.len() >= 4).then_some(log)
        })
        .await;
        let numbers: Vec<i64> = log.iter().map(|a| a["attempt"].as_i64().unwrap()).collect();
        assert_eq!(numbers, [1, 2, 3, 4]);
        for attempt in &log {
            assert_eq!(attempt["outcome"], "failed");
            let error = attempt["error"].as_str().unwrap();
            if connect {
                assert_eq!(attempt["response_status"], Value::Null);
                assert!(error.contains("could not connect"), "{error}");
            } else {
                assert_eq!(attempt["response_status"], 500);
            }
        }
    }
    eventually(WAIT, "nothing left pending", || async {
        app.registry
            .store
            .pending_deliveries()
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    assert_eq!(attempts(&app, &key, &failing).await.len(), 4);
    assert_eq!(receiver.at("/fail").len(), 4);
}
on_both_databases!(
    a_500_or_a_receiver_that_is_down_is_retried_then_given_up,
    super::a_500_or_a_receiver_that_is_down_is_retried_then_given_up
);

async fn an_event_is_redelivered_with_its_webhook_id(db: Db) {
    let app = spawn_hooks(db, |_| {}).await;
    let receiver = Receiver::start().await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let (_, other) = app.key(OTHER_USER, Environment::Live, &["*"]).await;
    let (id, secret) = endpoint(&app, &key, &receiver.url("/ok"), &["certificate.issued"]).await;
    issue(&app, &key, &maria()).await;
    let first = eventually(WAIT, "the first delivery", || async {
        receiver.at("/ok").first().cloned()
    })
    .await;
    let path = format!("/events/{}/redeliver", first.id);
    expect_error(
        app.post_json(&path, &other, &json!({})).await,
        404,
        "not_found",
    )
    .await;
    expect_error(
        app.post_json("/events/evt_nope/redeliver", &key, &json!({}))
            .await,
        404,
        "not_found",
    )
    .await;
    let (status, answer) = json_of(app.post_json(&path, &key, &json!({})).await).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["endpoint_ids"], json!([id]));
    assert_eq!(answer["event_id"], first.id.as_str());
    let (status, _) = json_of(
        app.post_json(&path, &key, &json!({"endpoint_id": id}))
            .await,
    )
    .await;
    assert_eq!(status, 202);
    let got = eventually(WAIT, "two redeliveries", || async {
        let got = receiver.at("/ok");
        (got.len() >= 3).then_some(got)
    })
    .await;
    assert_eq!(by_id(&got)[&first.id], 3);
    assert!(got
        .iter()
        .all(|r| signed_by(r, &secret) && r.body == first.body));
}
on_both_databases!(
    an_event_is_redelivered_with_its_webhook_id,
    super::an_event_is_redelivered_with_its_webhook_id
);

async fn an_endpoint_failing_past_the_window_is_disabled_and_says_so(db: Db) {
    let app = spawn_hooks(db, |config| {
        config.webhooks.retry_delays_ms = vec![100; 20];
        config.webhooks.disable_after_ms = 400;
    })
    .await;
    let receiver = Receiver::start().await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let (failing, _) = endpoint(&app, &key, &receiver.url("/fail"), &["*"]).await;
    let (healthy, _) = endpoint(&app, &key, &receiver.url("/ok"), &["*"]).await;
    issue(&app, &key, &maria()).await;
    let disabled = eventually(WAIT, "the failing endpoint disabled", || async {
        let (_, read) = json_of(
            app.get(&format!("/webhook_endpoints/{failing}"), &key)
                .await,
        )
        .await;
        (read["disabled"] == true).then_some(read)
    })
    .await;
    assert_eq!(disabled["disabled_reason"], "failing");
    assert!(
        disabled["disabled_at"].as_str().is_some() && disabled["failing_since"].as_str().is_some()
    );
    let (_, ok) = json_of(
        app.get(&format!("/webhook_endpoints/{healthy}"), &key)
            .await,
    )
    .await;
    assert_eq!(
        (ok["disabled"].clone(), ok["failing_since"].clone()),
        (json!(false), Value::Null)
    );
    // Disabled: no attempt more (the last may have been in flight).
    let count = attempts(&app, &key, &failing).await.len();
    issue(&app, &key, &maria()).await;
    eventually(
        WAIT,
        "the second certificate at the healthy one",
        || async { (receiver.at("/ok").len() >= 2).then_some(()) },
    )
    .await;
    assert!(attempts(&app, &key, &failing).await.len() <= count + 1);
    let (_, auditor) = app.key(USER, Environment::Live, &["audit:read"]).await;
    let (_, audit) = json_of(app.get("/audit_events?limit=100", &auditor).await).await;
    let row = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "webhook_endpoint.disable")
        .cloned()
        .expect("the disabling is audited");
    assert_eq!(
        (row["target"].clone(), row["actor"]["type"].clone()),
        (json!(failing), json!("system"))
    );
}
on_both_databases!(
    an_endpoint_failing_past_the_window_is_disabled_and_says_so,
    super::an_endpoint_failing_past_the_window_is_disabled_and_says_so
);
