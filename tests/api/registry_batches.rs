//! Batches over `/v1/certificates/batch`, `/batch_revoke` and
//! `/v1/batches/{id}`: accepted whole with `202`, then worked in the
//! background row by row, each row ending completed or failed alone, as
//! a single request would; paged, confined to the caller, idempotent.
//! Each test runs on SQLite and on PostgreSQL.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use signet::config::Config;
use signet::registry::Environment;

use crate::helpers::{CERT, OTHER_USER, USER};
use crate::on_both_databases;
use crate::registry_certificates::{events, issue, maria};
use crate::registry_helpers::{
    expect_error, json_of, spawn_registry_with_templates, spawn_registry_with_templates_and, Db,
    RegistryApp,
};

/// How long a small batch may take to finish.
const DONE_BOUND: Duration = Duration::from_secs(60);

/// The first account on a plan whose limits no test reaches.
pub fn roomy(config: &mut Config) {
    config.users[0].plan = Some("custom".into());
    config.users[0].rate_limit_per_minute = Some(1_000_000);
    config.users[0].batch_size = Some(100_000);
}

/// A recipient of the demo template.
pub fn recipient(n: usize) -> Value {
    json!({"name": format!("Recipient {n}"), "email": format!("r{n}@example.org"),
           "fields": {"course_name": "Welding"}, "metadata": {"n": n.to_string()}})
}

/// Reads batch `id` until it is completed; answers it.
pub async fn finished(app: &RegistryApp, key: &str, id: &str, query: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, batch) = json_of(app.get(&format!("/batches/{id}{query}"), key).await).await;
        assert_eq!(status, 200, "{batch}");
        if batch["status"] == "completed" {
            return batch;
        }
        assert!(started.elapsed() < DONE_BOUND, "unfinished: {batch}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Posts a batch, expecting `202`; answers it.
pub async fn accepted(app: &RegistryApp, path: &str, key: &str, body: &Value) -> Value {
    let (status, batch) = json_of(app.post_json(path, key, body).await).await;
    assert_eq!(status, 202, "{batch}");
    batch
}

async fn a_batch_is_accepted_then_issued_with_bad_rows_failing_alone(db: Db) {
    let app = spawn_registry_with_templates_and(db, roomy).await;
    let (key_id, key) = app.key(USER, Environment::Live, &["*"]).await;
    let mut recipients: Vec<Value> = (1..=5).map(recipient).collect();
    recipients[1]["email"] = json!("not an address");
    recipients[3]["fields"] = json!({"course_name": "Welding", "colour": "red"});
    let body = json!({"template_id": CERT, "recipients": recipients});
    let batch = accepted(&app, "/certificates/batch", &key, &body).await;
    let id = batch["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("batch_"), "{id}");
    assert_eq!(
        (&batch["object"], &batch["kind"], &batch["livemode"]),
        (&json!("batch"), &json!("issue"), &json!(true))
    );
    assert_eq!(
        (&batch["total"], &batch["completed"]),
        (&json!(5), &json!(0))
    );
    assert_eq!(batch["pending"], 5);
    assert_eq!(batch["items"][0], json!({"row": 1, "status": "pending"}));

    let done = finished(&app, &key, &id, "").await;
    assert_eq!(
        (&done["completed"], &done["failed"], &done["pending"]),
        (&json!(3), &json!(2), &json!(0))
    );
    assert!(done["completed_at"].as_str().unwrap().ends_with('Z'));
    let items = done["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(items[1]["status"], "failed");
    assert_eq!(items[1]["error"]["code"], "invalid_field");
    assert_eq!(items[1]["error"]["param"], "recipient.email");
    assert_eq!(items[3]["error"]["code"], "invalid_field");
    assert_eq!(items[3]["error"]["param"], "fields.colour");
    for (n, item) in [(1, &items[0]), (3, &items[2]), (5, &items[4])] {
        assert_eq!(item["row"], n);
        assert_eq!(item["status"], "completed");
        let cert_id = item["certificate_id"].as_str().unwrap();
        let (status, cert) =
            json_of(app.get(&format!("/certificates/{cert_id}"), &key).await).await;
        assert_eq!(status, 200);
        assert_eq!(cert["recipient"]["name"], format!("Recipient {n}"));
        assert_eq!(cert["metadata"]["n"], n.to_string());
        assert_eq!(cert["status"], "issued");
        assert_eq!(events(&app, cert_id).await, ["certificate.issued"]);
    }
    let (_, list) = json_of(app.get("/certificates", &key).await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3);

    // Each certificate is audited as made by the batch's request.
    let (_, audit) = json_of(app.get("/audit_events?limit=100", &key).await).await;
    let audit = audit["data"].as_array().unwrap();
    let created = audit
        .iter()
        .find(|e| e["action"] == "batch.create")
        .unwrap();
    assert_eq!(
        (&created["target"], &created["status"]),
        (&json!(id), &json!(202))
    );
    let made: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"] == "certificate.create")
        .collect();
    assert_eq!(made.len(), 3);
    for event in made {
        assert_eq!(event["actor"]["id"], key_id);
        assert_eq!(event["request_id"], created["request_id"]);
    }
}
on_both_databases!(
    a_batch_is_accepted_then_issued_with_bad_rows_failing_alone,
    super::a_batch_is_accepted_then_issued_with_bad_rows_failing_alone
);

async fn a_batch_over_the_plans_size_is_refused_whole(db: Db) {
    // The standard plan: batches of 100.
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let body =
        json!({"template_id": CERT, "recipients": (0..101).map(recipient).collect::<Vec<_>>()});
    let error = expect_error(
        app.post_json("/certificates/batch", &key, &body).await,
        422,
        "batch_too_large",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("100"),
        "{error}"
    );
    let body =
        json!({"template_id": CERT, "recipients": (0..100).map(recipient).collect::<Vec<_>>()});
    let batch = accepted(&app, "/certificates/batch", &key, &body).await;
    let done = finished(&app, &key, batch["id"].as_str().unwrap(), "").await;
    assert_eq!(done["completed"], 100);

    let empty = json!({"template_id": CERT, "recipients": []});
    expect_error(
        app.post_json("/certificates/batch", &key, &empty).await,
        400,
        "invalid_request",
    )
    .await;
    let unknown = json!({"template_id": "nope", "recipients": [recipient(1)]});
    expect_error(
        app.post_json("/certificates/batch", &key, &unknown).await,
        400,
        "invalid_template",
    )
    .await;
    let typo = json!({"template_id": CERT, "recipients": [{"nmae": "A"}]});
    let error = expect_error(
        app.post_json("/certificates/batch", &key, &typo).await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(error["param"], "recipients[0].nmae");
}
on_both_databases!(
    a_batch_over_the_plans_size_is_refused_whole,
    super::a_batch_over_the_plans_size_is_refused_whole
);

async fn rows_are_paged_in_order_and_filtered_by_status(db: Db) {
    let app = spawn_registry_with_templates_and(db, roomy).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let mut recipients: Vec<Value> = (1..=45).map(recipient).collect();
    recipients[29]["name"] = json!("Bad\u{202e}Name");
    let body = json!({"template_id": CERT, "recipients": recipients});
    let id = accepted(&app, "/certificates/batch", &key, &body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = finished(&app, &key, &id, "").await;
    let rows = |page: &Value| -> Vec<i64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["row"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(rows(&first), (1..=20).collect::<Vec<_>>());
    assert_eq!(
        (&first["has_more"], &first["next_cursor"]),
        (&json!(true), &json!(20))
    );
    let (_, second) = json_of(
        app.get(&format!("/batches/{id}?limit=20&starting_after=20"), &key)
            .await,
    )
    .await;
    assert_eq!(rows(&second), (21..=40).collect::<Vec<_>>());
    let (_, last) = json_of(
        app.get(&format!("/batches/{id}?starting_after=40"), &key)
            .await,
    )
    .await;
    assert_eq!(rows(&last), (41..=45).collect::<Vec<_>>());
    assert_eq!(
        (&last["has_more"], &last["next_cursor"]),
        (&json!(false), &Value::Null)
    );
    let (_, failed) = json_of(app.get(&format!("/batches/{id}?status=failed"), &key).await).await;
    assert_eq!(rows(&failed), [30]);
    assert_eq!(failed["items"][0]["error"]["param"], "recipient.name");
    for bad in [
        "?starting_after=x",
        "?limit=0",
        "?status=done",
        "?colour=red",
    ] {
        expect_error(
            app.get(&format!("/batches/{id}{bad}"), &key).await,
            400,
            "invalid_request",
        )
        .await;
    }
}
on_both_databases!(
    rows_are_paged_in_order_and_filtered_by_status,
    super::rows_are_paged_in_order_and_filtered_by_status
);

async fn a_batch_is_seen_only_by_its_account_and_environment(db: Db) {
    let app = spawn_registry_with_templates_and(db, roomy).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let (_, sandbox) = app.key(USER, Environment::Test, &["*"]).await;
    let (_, other) = app.key(OTHER_USER, Environment::Live, &["*"]).await;
    let body = json!({"template_id": CERT, "recipients": [recipient(1)]});
    let id = accepted(&app, "/certificates/batch", &key, &body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for stranger in [&sandbox, &other] {
        expect_error(
            app.get(&format!("/batches/{id}"), stranger).await,
            404,
            "not_found",
        )
        .await;
    }
    // Scopes: `batches:write` makes and reads batches; reading
    // certificates reads them; writing certificates alone makes none.
    let (_, writer) = app
        .key(USER, Environment::Live, &["certificates:write"])
        .await;
    expect_error(
        app.post_json("/certificates/batch", &writer, &body).await,
        403,
        "insufficient_scope",
    )
    .await;
    let (_, batcher) = app.key(USER, Environment::Live, &["batches:write"]).await;
    accepted(&app, "/certificates/batch", &batcher, &body).await;
    let (_, reader) = app
        .key(USER, Environment::Live, &["certificates:read"])
        .await;
    finished(&app, &reader, &id, "").await;
    // A sandbox batch issues sandbox certificates.
    let test_batch = accepted(&app, "/certificates/batch", &sandbox, &body).await;
    assert_eq!(test_batch["livemode"], false);
    let done = finished(&app, &sandbox, test_batch["id"].as_str().unwrap(), "").await;
    let cert_id = done["items"][0]["certificate_id"].as_str().unwrap();
    let (_, cert) = json_of(app.get(&format!("/certificates/{cert_id}"), &sandbox).await).await;
    assert_eq!(cert["livemode"], false);
    expect_error(
        app.get(&format!("/certificates/{cert_id}"), &key).await,
        404,
        "not_found",
    )
    .await;
}
on_both_databases!(
    a_batch_is_seen_only_by_its_account_and_environment,
    super::a_batch_is_seen_only_by_its_account_and_environment
);

async fn a_retried_batch_is_accepted_once(db: Db) {
    let app = spawn_registry_with_templates_and(db, roomy).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let body =
        json!({"template_id": CERT, "recipients": (1..=30).map(recipient).collect::<Vec<_>>()});
    let post = || {
        app.client
            .post(app.url("/certificates/batch"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .header("idempotency-key", "graduation-2026")
            .body(body.to_string())
            .send()
    };
    let first = post().await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = serde_json::from_str(&first.text().await.unwrap()).unwrap();
    let again = post().await.unwrap();
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = serde_json::from_str(&again.text().await.unwrap()).unwrap();
    assert_eq!(again, first);
    finished(&app, &key, first["id"].as_str().unwrap(), "").await;
    let (_, list) = json_of(app.get("/certificates?limit=100", &key).await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 30);
}
on_both_databases!(
    a_retried_batch_is_accepted_once,
    super::a_retried_batch_is_accepted_once
);

async fn a_revoking_batch_revokes_each_once_and_fails_strangers_alone(db: Db) {
    let app = spawn_registry_with_templates_and(db, roomy).await;
    let (key_id, key) = app.key(USER, Environment::Live, &["*"]).await;
    let (_, other) = app.key(OTHER_USER, Environment::Live, &["*"]).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            issue(&app, &key, &maria()).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let theirs = issue(&app, &other, &maria()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = json_of(
        app.post_json(
            &format!("/certificates/{}/revoke", ids[0]),
            &key,
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);

    let twice = json!({"certificate_ids": [ids[1], ids[1]]});
    let error = expect_error(
        app.post_json("/certificates/batch_revoke", &key, &twice)
            .await,
        400,
        "invalid_request",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains(&ids[1]),
        "{error}"
    );

    let body = json!({"certificate_ids": [ids[0], ids[1], "cert_nosuchthing", ids[2], theirs],
                      "reason": "Course withdrawn"});
    let batch = accepted(&app, "/certificates/batch_revoke", &key, &body).await;
    assert_eq!(batch["kind"], "revoke");
    assert_eq!(batch["items"][0]["certificate_id"], ids[0]);
    let done = finished(&app, &key, batch["id"].as_str().unwrap(), "").await;
    assert_eq!(
        (&done["completed"], &done["failed"]),
        (&json!(3), &json!(2))
    );
    let statuses: Vec<&str> = done["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["completed", "completed", "failed", "completed", "failed"]
    );
    assert_eq!(done["items"][2]["error"]["code"], "not_found");
    assert_eq!(done["items"][4]["error"]["code"], "not_found");
    for id in &ids {
        let (_, cert) = json_of(app.get(&format!("/certificates/{id}"), &key).await).await;
        assert_eq!(cert["status"], "revoked");
        assert_eq!(
            events(&app, id).await,
            ["certificate.issued", "certificate.revoked"]
        );
    }
    // Revoked earlier: unchanged. Revoked now: with the batch's reason.
    let (_, first) = json_of(app.get(&format!("/certificates/{}", ids[0]), &key).await).await;
    assert_eq!(first["revocation_reason"], Value::Null);
    let (_, second) = json_of(app.get(&format!("/certificates/{}", ids[1]), &key).await).await;
    assert_eq!(second["revocation_reason"], "Course withdrawn");
    let (_, mine) = json_of(app.get(&format!("/certificates/{theirs}"), &other).await).await;
    assert_eq!(mine["status"], "issued");
    let (_, audit) = json_of(app.get("/audit_events?limit=100", &key).await).await;
    let revokes: Vec<&Value> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "certificate.revoke")
        .collect();
    assert_eq!(revokes.len(), 3, "one single, two by the batch");
    assert!(revokes.iter().all(|e| e["actor"]["id"] == key_id));
}
on_both_databases!(
    a_revoking_batch_revokes_each_once_and_fails_strangers_alone,
    super::a_revoking_batch_revokes_each_once_and_fails_strangers_alone
);

async fn a_batchs_events_reach_webhooks_ending_with_batch_completed(db: Db) {
    use crate::registry_webhooks_receiver::{
        endpoint, eventually, signed_by, spawn_hooks, Receiver,
    };
    let app = spawn_hooks(db, roomy).await;
    let receiver = Receiver::start().await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let (_, secret) = endpoint(
        &app,
        &key,
        &receiver.url("/hooks"),
        &["certificate.issued", "batch.completed"],
    )
    .await;
    let mut recipients: Vec<Value> = (1..=12).map(recipient).collect();
    recipients[4]["email"] = json!("nope");
    let body = json!({"template_id": CERT, "recipients": recipients});
    let id = accepted(&app, "/certificates/batch", &key, &body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = finished(&app, &key, &id, "?limit=100").await;
    let got = eventually(Duration::from_secs(30), "12 deliveries", || async {
        let got = receiver.at("/hooks");
        (got.len() >= 12).then_some(got)
    })
    .await;
    assert!(got.iter().all(|r| signed_by(r, &secret)));
    let bodies: Vec<Value> = got.iter().map(|r| r.json()).collect();
    let issued: std::collections::HashSet<&str> = bodies
        .iter()
        .filter(|b| b["event"] == "certificate.issued")
        .map(|b| b["certificate_id"].as_str().unwrap())
        .collect();
    let made: std::collections::HashSet<&str> = done["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["certificate_id"].as_str())
        .collect();
    assert_eq!((issued.len(), &issued), (11, &made));
    let completed: Vec<&Value> = bodies
        .iter()
        .filter(|b| b["event"] == "batch.completed")
        .collect();
    assert_eq!(completed.len(), 1);
    assert_eq!(
        completed[0]["data"],
        json!({"batch_id": id, "kind": "issue", "total": 12, "completed": 11, "failed": 1})
    );
    assert_eq!(completed[0]["certificate_id"], Value::Null);
}
on_both_databases!(
    a_batchs_events_reach_webhooks_ending_with_batch_completed,
    super::a_batchs_events_reach_webhooks_ending_with_batch_completed
);
