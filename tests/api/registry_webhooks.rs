//! `/v1/webhook_endpoints` as the contract shows it: made with a secret
//! shown once, read, listed, changed, disabled, deleted, each audited;
//! confined to the caller's account and environment; unknown event types
//! and URLs into private networks refused with the field named. Each
//! test runs on SQLite and on PostgreSQL.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use signet::registry::Environment;

use crate::helpers::{OTHER_USER, USER};
use crate::on_both_databases;
use crate::registry_helpers::{expect_error, json_of, spawn_registry_with_templates_and, Db};
use crate::registry_webhooks_receiver::{endpoint, spawn_hooks};

async fn an_endpoint_is_made_shown_once_listed_changed_deleted_and_audited(db: Db) {
    let app = spawn_hooks(db, |_| {}).await;
    let (_, key) = app.key(USER, Environment::Live, &["webhooks:write"]).await;
    let (_, auditor) = app.key(USER, Environment::Live, &["audit:read"]).await;
    let body = json!({"url": "https://lms.example.org/hooks?token=t1",
                      "events": ["certificate.issued", "certificate.revoked"],
                      "description": "LMS"});
    let (status, made) = json_of(app.post_json("/webhook_endpoints", &key, &body).await).await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("we_") && id.len() >= 3 + 22, "{id}");
    assert_eq!(made["object"], "webhook_endpoint");
    assert_eq!(made["livemode"], true);
    assert_eq!(made["url"], "https://lms.example.org/hooks?token=t1");
    assert_eq!(
        made["events"],
        json!(["certificate.issued", "certificate.revoked"])
    );
    assert_eq!(made["description"], "LMS");
    assert_eq!(
        (made["disabled"].clone(), made["disabled_reason"].clone()),
        (json!(false), Value::Null)
    );
    let secret = made["secret"].as_str().unwrap();
    let key_bytes = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    assert!((24..=64).contains(&key_bytes.len()), "{secret}");

    // Never shown again: not in the object, not in the list, not in the
    // replay of the creation for its Idempotency-Key.
    let keyed = |body: &Value| {
        app.client
            .post(app.url("/webhook_endpoints"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .header("idempotency-key", "endpoint-1")
            .body(body.to_string())
            .send()
    };
    let (status, first) = json_of(keyed(&body).await.unwrap()).await;
    assert_eq!(status, 201);
    assert!(first["secret"]
        .as_str()
        .is_some_and(|s| s.starts_with("whsec_")));
    let replay = keyed(&body).await.unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let (status, replayed) = json_of(replay).await;
    assert_eq!((status, &replayed["id"]), (201, &first["id"]));
    assert!(replayed.get("secret").is_none(), "{replayed}");
    let made_twice = first["id"].as_str().unwrap().to_owned();
    app.delete(&format!("/webhook_endpoints/{made_twice}"), &key)
        .await;
    let (status, read) = json_of(app.get(&format!("/webhook_endpoints/{id}"), &key).await).await;
    assert_eq!(status, 200);
    assert!(read.get("secret").is_none(), "{read}");
    let mut without = made.clone();
    without.as_object_mut().unwrap().remove("secret");
    assert_eq!(read, without);
    let (_, list) = json_of(app.get("/webhook_endpoints", &key).await).await;
    assert_eq!(list["data"], json!([without]));
    assert!(!list.to_string().contains(secret));

    let change = json!({"events": ["*"], "disabled": true, "description": null});
    let (status, changed) = json_of(
        app.patch_json(&format!("/webhook_endpoints/{id}"), &key, &change)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["events"], json!(["*"]));
    assert_eq!(changed["description"], Value::Null);
    assert_eq!(
        (
            changed["disabled"].clone(),
            changed["disabled_reason"].clone()
        ),
        (json!(true), json!("manual"))
    );
    assert!(changed["disabled_at"].as_str().is_some());
    let enable = json!({"disabled": false});
    let (_, enabled) = json_of(
        app.patch_json(&format!("/webhook_endpoints/{id}"), &key, &enable)
            .await,
    )
    .await;
    assert_eq!(
        (enabled["disabled"].clone(), enabled["disabled_at"].clone()),
        (json!(false), Value::Null)
    );

    let (status, gone) = json_of(app.delete(&format!("/webhook_endpoints/{id}"), &key).await).await;
    assert_eq!((status, gone["id"].as_str()), (200, Some(id.as_str())));
    expect_error(
        app.get(&format!("/webhook_endpoints/{id}"), &key).await,
        404,
        "not_found",
    )
    .await;

    let (_, audit) = json_of(app.get("/audit_events?limit=100", &auditor).await).await;
    let actions: Vec<(&str, &str)> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == id.as_str())
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"]["type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("webhook_endpoint.delete", "api_key"),
            ("webhook_endpoint.update", "api_key"),
            ("webhook_endpoint.update", "api_key"),
            ("webhook_endpoint.create", "api_key"),
        ]
    );
    assert!(
        !audit.to_string().contains(secret),
        "the audit log never holds the secret"
    );
}
on_both_databases!(
    an_endpoint_is_made_shown_once_listed_changed_deleted_and_audited,
    super::an_endpoint_is_made_shown_once_listed_changed_deleted_and_audited
);

async fn another_account_s_or_environment_s_endpoint_is_not_found(db: Db) {
    let app = spawn_hooks(db, |_| {}).await;
    let (_, mine) = app.key(USER, Environment::Live, &["*"]).await;
    let (_, sandbox) = app.key(USER, Environment::Test, &["*"]).await;
    let (_, other) = app.key(OTHER_USER, Environment::Live, &["*"]).await;
    let (id, _) = endpoint(&app, &mine, "https://hooks.example.org/a", &["*"]).await;
    // (The other account's plan allows four requests a minute.)
    for key in [&sandbox, &other] {
        let path = format!("/webhook_endpoints/{id}");
        expect_error(app.get(&path, key).await, 404, "not_found").await;
        expect_error(
            app.patch_json(&path, key, &json!({"disabled": true})).await,
            404,
            "not_found",
        )
        .await;
        expect_error(app.delete(&path, key).await, 404, "not_found").await;
        let (_, list) = json_of(app.get("/webhook_endpoints", key).await).await;
        assert_eq!(list["data"], json!([]));
    }
    let deliveries = format!("/webhook_endpoints/{id}/deliveries");
    expect_error(app.get(&deliveries, &sandbox).await, 404, "not_found").await;
    // Still there, untouched, for its owner.
    let (_, read) = json_of(app.get(&format!("/webhook_endpoints/{id}"), &mine).await).await;
    assert_eq!(read["disabled"], false);
    // A key without the scope is refused before anything is looked up.
    let (_, reader) = app
        .key(USER, Environment::Live, &["certificates:read"])
        .await;
    expect_error(
        app.get("/webhook_endpoints", &reader).await,
        403,
        "insufficient_scope",
    )
    .await;
}
on_both_databases!(
    another_account_s_or_environment_s_endpoint_is_not_found,
    super::another_account_s_or_environment_s_endpoint_is_not_found
);

async fn unknown_events_and_bad_urls_are_refused_with_the_field_named(db: Db) {
    let app = spawn_hooks(db, |_| {}).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let refused = |body: Value, param: &'static str| {
        let app = &app;
        let key = key.clone();
        async move {
            let answer = app.post_json("/webhook_endpoints", &key, &body).await;
            let error = expect_error(answer, 400, "invalid_request").await;
            assert_eq!(error["param"], param, "{body}: {error}");
            error
        }
    };
    let url = "https://hooks.example.org/";
    let error = refused(
        json!({"url": url, "events": ["certificate.issud"]}),
        "events",
    )
    .await;
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("certificate.issud"));
    refused(json!({"url": url, "events": []}), "events").await;
    refused(
        json!({"url": url, "events": ["*", "certificate.issued"]}),
        "events",
    )
    .await;
    refused(
        json!({"url": url, "events": ["*"], "secret": "mine"}),
        "secret",
    )
    .await;
    refused(
        json!({"url": "ftp://hooks.example.org/", "events": ["*"]}),
        "url",
    )
    .await;
    refused(json!({"url": "hooks.example.org", "events": ["*"]}), "url").await;
    let long = format!("https://hooks.example.org/{}", "a".repeat(2048));
    refused(json!({"url": long, "events": ["*"]}), "url").await;
    refused(
        json!({"url": url, "events": ["*"], "description": "d".repeat(501)}),
        "description",
    )
    .await;

    // At most 16 endpoints per account and environment.
    let (_, many) = app.key(USER, Environment::Test, &["*"]).await;
    for n in 0..16 {
        endpoint(
            &app,
            &many,
            &format!("https://hooks.example.org/{n}"),
            &["*"],
        )
        .await;
    }
    let answer = app
        .post_json(
            "/webhook_endpoints",
            &many,
            &json!({"url": url, "events": ["*"]}),
        )
        .await;
    let error = expect_error(answer, 400, "invalid_request").await;
    assert!(
        error["message"].as_str().unwrap().contains("at most 16"),
        "{error}"
    );

    // Without the allowance: the cloud metadata address and loopback.
    let strict = spawn_registry_with_templates_and(db, |_| {}).await;
    let (_, key) = strict.key(USER, Environment::Live, &["*"]).await;
    for url in [
        "http://169.254.169.254/",
        "http://127.0.0.1",
        "https://[::1]:8443/",
        "https://10.0.0.1/",
    ] {
        let answer = strict
            .post_json(
                "/webhook_endpoints",
                &key,
                &json!({"url": url, "events": ["*"]}),
            )
            .await;
        let error = expect_error(answer, 400, "invalid_request").await;
        assert_eq!(error["param"], "url");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("public addresses only"),
            "{url}: {message}"
        );
    }
    // Nor by a change of a good endpoint's URL.
    let (id, _) = endpoint(&strict, &key, "https://hooks.example.org/x", &["*"]).await;
    let answer = strict
        .patch_json(
            &format!("/webhook_endpoints/{id}"),
            &key,
            &json!({"url": "http://169.254.169.254/"}),
        )
        .await;
    assert_eq!(
        expect_error(answer, 400, "invalid_request").await["param"],
        "url"
    );
    // And a live endpoint needs https.
    let answer = strict
        .post_json(
            "/webhook_endpoints",
            &key,
            &json!({"url": "http://hooks.example.org/", "events": ["*"]}),
        )
        .await;
    let error = expect_error(answer, 400, "invalid_request").await;
    assert!(
        error["message"].as_str().unwrap().contains("https"),
        "{error}"
    );
}
on_both_databases!(
    unknown_events_and_bad_urls_are_refused_with_the_field_named,
    super::unknown_events_and_bad_urls_are_refused_with_the_field_named
);
