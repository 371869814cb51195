//! Changes of certificates: suspension comes and goes, a revocation is
//! final and happens once, corrections are checked and audited with
//! their changes, each change leaves one outbox event, and no key sees
//! another account's or environment's certificates. Each test runs on
//! SQLite and on PostgreSQL.

use serde_json::{json, Value};
use signet::registry::Environment;

use crate::helpers::{OTHER_USER, USER};
use crate::on_both_databases;
use crate::registry_certificates::{events, issue, maria};
use crate::registry_helpers::{expect_error, json_of, spawn_registry_with_templates, Db};

async fn suspension_comes_and_goes_but_a_revocation_is_final_and_happens_once(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let id = issue(&app, &key, &maria()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/certificates/{id}");
    for status in ["suspended", "issued"] {
        let (code, cert) = json_of(
            app.patch_json(&path, &key, &json!({"status": status}))
                .await,
        )
        .await;
        assert_eq!(
            (code, cert["status"].as_str()),
            (200, Some(status)),
            "{cert}"
        );
    }
    let revoke = format!("{path}/revoke");
    let (code, revoked) = json_of(
        app.post_json(&revoke, &key, &json!({"reason": "Issued by mistake"}))
            .await,
    )
    .await;
    assert_eq!(
        (code, revoked["status"].as_str()),
        (200, Some("revoked")),
        "{revoked}"
    );
    assert_eq!(revoked["revocation_reason"], "Issued by mistake");
    assert!(revoked["revoked_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    // Twice, by either route, answers the same object and writes nothing.
    let (code, again) = json_of(
        app.post_json(&revoke, &key, &json!({"reason": "other"}))
            .await,
    )
    .await;
    assert_eq!((code, &again), (200, &revoked));
    let (code, again) = json_of(
        app.patch_json(&path, &key, &json!({"status": "revoked"}))
            .await,
    )
    .await;
    assert_eq!((code, &again), (200, &revoked));
    for change in [
        json!({"status": "issued"}),
        json!({"metadata": {}}),
        json!({"recipient": {"name": "X"}}),
    ] {
        expect_error(
            app.patch_json(&path, &key, &change).await,
            409,
            "invalid_transition",
        )
        .await;
    }
    let error = expect_error(
        app.patch_json(&path, &key, &json!({"status": "expired"}))
            .await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(error["param"], "status");
    let long = json!({"reason": "x".repeat(501)});
    let other = issue(&app, &key, &maria()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let error = expect_error(
        app.post_json(&format!("/certificates/{other}/revoke"), &key, &long)
            .await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(error["param"], "reason");

    assert_eq!(
        events(&app, &id).await,
        [
            "certificate.issued",
            "certificate.updated",
            "certificate.updated",
            "certificate.revoked"
        ]
    );
}
on_both_databases!(
    suspension_comes_and_goes_but_a_revocation_is_final_and_happens_once,
    super::suspension_comes_and_goes_but_a_revocation_is_final_and_happens_once
);

async fn a_correction_is_checked_applied_and_audited_with_its_changes(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Test, &["*"]).await;
    let id = issue(&app, &key, &maria()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/certificates/{id}");
    let refused = json!({"recipient": {"name": "Maria \u{202E}"}});
    let error = expect_error(
        app.patch_json(&path, &key, &refused).await,
        400,
        "invalid_field",
    )
    .await;
    assert_eq!(error["param"], "recipient.name");
    let refused = json!({"fields": {"nope": "x"}});
    let error = expect_error(
        app.patch_json(&path, &key, &refused).await,
        400,
        "invalid_field",
    )
    .await;
    assert_eq!(error["param"], "fields.nope");

    let fix = json!({"recipient": {"name": "María Andersson"},
                     "fields": {"course_name": "Agile Project Management"},
                     "expires_at": "2099-01-01T00:00:00Z"});
    let (status, cert) = json_of(app.patch_json(&path, &key, &fix).await).await;
    assert_eq!(status, 200, "{cert}");
    assert_eq!(cert["recipient"]["name"], "María Andersson");
    assert_eq!(cert["recipient"]["email"], "maria@example.org");
    assert_eq!(cert["fields"]["course_name"], "Agile Project Management");
    assert_eq!(cert["expires_at"], "2099-01-01T00:00:00Z");
    let (_, read) = json_of(app.get(&path, &key).await).await;
    assert_eq!(read, cert);
    // Removing the expiry is a change of its own; the same PATCH again is none.
    let (_, cert) = json_of(
        app.patch_json(&path, &key, &json!({"expires_at": null}))
            .await,
    )
    .await;
    assert_eq!(cert["expires_at"], Value::Null);
    let (_, _) = json_of(
        app.patch_json(&path, &key, &json!({"expires_at": null}))
            .await,
    )
    .await;

    let (_, log) = json_of(app.get("/audit_events", &key).await).await;
    let updates: Vec<&Value> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "certificate.update" && e["target"] == id.as_str())
        .collect();
    assert_eq!(updates.len(), 2, "{log}");
    let changes = &updates[1]["changes"];
    assert_eq!(
        changes["recipient.name"],
        json!(["Maria Andersson", "María Andersson"])
    );
    assert_eq!(
        changes["fields"][1]["course_name"],
        "Agile Project Management"
    );
    assert_eq!(changes["expires_at"], json!([null, "2099-01-01T00:00:00Z"]));
    assert_eq!(updates[1]["status"], 200);
    assert_eq!(
        updates[0]["changes"],
        json!({"expires_at": ["2099-01-01T00:00:00Z", null]})
    );
    assert_eq!(
        events(&app, &id).await,
        [
            "certificate.issued",
            "certificate.updated",
            "certificate.updated"
        ]
    );
}
on_both_databases!(
    a_correction_is_checked_applied_and_audited_with_its_changes,
    super::a_correction_is_checked_applied_and_audited_with_its_changes
);

async fn test_and_live_and_other_accounts_never_see_each_others_certificates(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, live) = app.key(USER, Environment::Live, &["*"]).await;
    let (_, test) = app.key(USER, Environment::Test, &["*"]).await;
    let (_, other) = app.key(OTHER_USER, Environment::Live, &["*"]).await;
    let (_, reader) = app
        .key(USER, Environment::Live, &["certificates:read"])
        .await;
    let live_id = issue(&app, &live, &maria()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sandbox = issue(&app, &test, &maria()).await;
    assert_eq!(sandbox["livemode"], false);
    let test_id = sandbox["id"].as_str().unwrap().to_owned();

    for (key, id) in [(&test, &live_id), (&other, &live_id), (&live, &test_id)] {
        let path = format!("/certificates/{id}");
        expect_error(app.get(&path, key).await, 404, "not_found").await;
        expect_error(
            app.patch_json(&path, key, &json!({"status": "suspended"}))
                .await,
            404,
            "not_found",
        )
        .await;
        expect_error(
            app.post_json(&format!("{path}/revoke"), key, &json!({}))
                .await,
            404,
            "not_found",
        )
        .await;
    }
    let ids = |list: Value| -> Vec<String> {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(json_of(app.get("/certificates", &test).await).await.1),
        vec![test_id.clone()]
    );
    assert_eq!(
        ids(json_of(app.get("/certificates", &reader).await).await.1),
        vec![live_id.clone()]
    );
    assert!(ids(json_of(app.get("/certificates", &other).await).await.1).is_empty());
    // Another account's cursor is no cursor of this list.
    let error = expect_error(
        app.get(&format!("/certificates?starting_after={live_id}"), &test)
            .await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(error["param"], "starting_after");
    // Another account's template is no template of this one's.
    // (A fresh key: the other account's plan allows 4 requests a minute.)
    let (_, other) = app.key(OTHER_USER, Environment::Live, &["*"]).await;
    let badge = json!({"template_id": "badge", "recipient": {"name": "Anna"}});
    expect_error(
        app.post_json("/certificates", &other, &badge).await,
        400,
        "invalid_template",
    )
    .await;
    // Reading keys read; they never write.
    expect_error(
        app.post_json("/certificates", &reader, &maria()).await,
        403,
        "insufficient_scope",
    )
    .await;
    let path = format!("/certificates/{live_id}");
    expect_error(
        app.patch_json(&path, &reader, &json!({"status": "suspended"}))
            .await,
        403,
        "insufficient_scope",
    )
    .await;
    assert_eq!(events(&app, &live_id).await, ["certificate.issued"]);
}
on_both_databases!(
    test_and_live_and_other_accounts_never_see_each_others_certificates,
    super::test_and_live_and_other_accounts_never_see_each_others_certificates
);

async fn concurrent_revocations_make_one_revocation_and_one_event(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let id = issue(&app, &key, &maria()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoke = format!("/certificates/{id}/revoke");
    let patch = format!("/certificates/{id}");
    let body = json!({"reason": "withdrawn"});
    let revoked = json!({"status": "revoked"});
    let answers = tokio::join!(
        app.post_json(&revoke, &key, &body),
        app.post_json(&revoke, &key, &body),
        app.patch_json(&patch, &key, &revoked),
        app.post_json(&revoke, &key, &body),
    );
    let mut revoked_at = Vec::new();
    for answer in [answers.0, answers.1, answers.2, answers.3] {
        let (status, cert) = json_of(answer).await;
        assert_eq!(
            (status, cert["status"].as_str()),
            (200, Some("revoked")),
            "{cert}"
        );
        revoked_at.push(cert["revoked_at"].clone());
    }
    revoked_at.dedup();
    assert_eq!(revoked_at.len(), 1, "one revocation: {revoked_at:?}");
    assert_eq!(
        events(&app, &id).await,
        ["certificate.issued", "certificate.revoked"]
    );
}
on_both_databases!(
    concurrent_revocations_make_one_revocation_and_one_event,
    super::concurrent_revocations_make_one_revocation_and_one_event
);
