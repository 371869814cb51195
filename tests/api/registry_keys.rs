//! API keys over `/v1/api_keys`: made once, listed without secrets,
//! revoked at once, scoped, and confined to their account and
//! environment. Each test runs on SQLite and on PostgreSQL.

use std::collections::HashSet;

use serde_json::json;
use signet::registry::Environment;

use crate::helpers::{OTHER_USER, USER};
use crate::on_both_databases;
use crate::registry_helpers::{expect_error, json_of, spawn_registry, Db};

async fn a_key_made_by_the_api_shows_its_secret_once_and_works(db: Db) {
    let app = spawn_registry(db).await;
    let (_, admin) = app.key(USER, Environment::Live, &["*"]).await;
    let made = app
        .post_json(
            "/api_keys",
            &admin,
            &json!({"scopes": ["keys:write"], "description": "LMS; DROP TABLE api_keys;--"}),
        )
        .await;
    let (status, key) = json_of(made).await;
    assert_eq!(status, 201, "{key}");
    let secret = key["secret"].as_str().expect("the secret, once").to_owned();
    assert!(
        secret.starts_with("sk_live_") && secret.len() >= 8 + 43,
        "{secret}"
    );
    assert_eq!(key["object"], "api_key");
    assert_eq!(key["livemode"], true);
    assert_eq!(key["description"], "LMS; DROP TABLE api_keys;--");
    assert!(key["id"].as_str().unwrap().starts_with("key_"));
    assert!(key["created_at"].as_str().unwrap().ends_with('Z'));

    // The new key works, and no list shows a secret again.
    let listed = app.get("/api_keys", &secret).await;
    let text = listed.text().await.unwrap();
    assert!(!text.contains(&secret) && !text.contains(&admin), "{text}");
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert!(list["data"][0].get("secret").is_none());
    assert_eq!(list["data"][0]["id"], key["id"], "newest first");
}
on_both_databases!(
    a_key_made_by_the_api_shows_its_secret_once_and_works,
    super::a_key_made_by_the_api_shows_its_secret_once_and_works
);

async fn a_revoked_key_is_refused_at_once_and_both_are_audited(db: Db) {
    let app = spawn_registry(db).await;
    let (_, admin) = app
        .key(USER, Environment::Test, &["keys:write", "audit:read"])
        .await;
    let (doomed_id, doomed) = app.key(USER, Environment::Test, &["keys:write"]).await;
    assert_eq!(app.get("/api_keys", &doomed).await.status(), 200);

    let (status, revoked) =
        json_of(app.delete(&format!("/api_keys/{doomed_id}"), &admin).await).await;
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].as_str().is_some());
    let refused = app.get("/api_keys", &doomed).await;
    expect_error(refused, 401, "invalid_api_key").await;
    // Revoking again answers the same revoked key, and audits nothing new.
    let (again, _) = json_of(app.delete(&format!("/api_keys/{doomed_id}"), &admin).await).await;
    assert_eq!(again, 200);

    let (_, log) = json_of(app.get("/audit_events", &admin).await).await;
    let actions: Vec<(&str, &str)> = log["data"]
        .as_array()
        .unwrap()
        .iter()
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
            ("auth.failed", "api_key"),
            ("api_key.revoke", "api_key"),
            ("api_key.create", "cli"),
            ("api_key.create", "cli"),
        ],
        "{log}"
    );
    let revoke = &log["data"][1];
    assert_eq!(revoke["target"], doomed_id.as_str());
    assert!(revoke["request_id"].as_str().unwrap().starts_with("req_"));
    assert_eq!(revoke["status"], 200);
    // The client's address, as the connection saw it, for both API events.
    assert_eq!(revoke["ip"], "127.0.0.1", "{log}");
    assert_eq!(log["data"][0]["ip"], "127.0.0.1", "{log}");
}
on_both_databases!(
    a_revoked_key_is_refused_at_once_and_both_are_audited,
    super::a_revoked_key_is_refused_at_once_and_both_are_audited
);

async fn missing_malformed_and_unknown_keys_are_invalid_api_key(db: Db) {
    let app = spawn_registry(db).await;
    let (_, real) = app.key(USER, Environment::Live, &["*"]).await;
    let unknown = format!("sk_live_{}", "A".repeat(44));
    let wrong_env = real.replacen("sk_live_", "sk_test_", 1);
    for auth in [
        None,
        Some("Basic dXNlcjpwYXNz".to_owned()),
        Some("Bearer".to_owned()),
        Some("Bearer sk_live_short".to_owned()),
        Some(format!("Bearer {unknown}")),
        Some(format!("Bearer {wrong_env}")),
        Some(format!("Bearer {real}x")),
    ] {
        let mut request = app.client.get(app.url("/api_keys"));
        if let Some(auth) = &auth {
            request = request.header("authorization", auth);
        }
        expect_error(request.send().await.unwrap(), 401, "invalid_api_key").await;
    }
    let ok = app
        .client
        .get(app.url("/api_keys"))
        .header("authorization", format!("bearer {real}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "the scheme is case-insensitive");
}
on_both_databases!(
    missing_malformed_and_unknown_keys_are_invalid_api_key,
    super::missing_malformed_and_unknown_keys_are_invalid_api_key
);

async fn a_key_without_the_scope_is_refused_and_cannot_mint_a_wider_one(db: Db) {
    let app = spawn_registry(db).await;
    let (_, reader) = app.key(USER, Environment::Live, &["audit:read"]).await;
    let refused = app
        .post_json("/api_keys", &reader, &json!({"scopes": ["audit:read"]}))
        .await;
    expect_error(refused, 403, "insufficient_scope").await;
    expect_error(
        app.get("/api_keys", &reader).await,
        403,
        "insufficient_scope",
    )
    .await;

    let (_, keys_only) = app.key(USER, Environment::Live, &["keys:write"]).await;
    expect_error(
        app.get("/audit_events", &keys_only).await,
        403,
        "insufficient_scope",
    )
    .await;
    for wider in [json!(["*"]), json!(["keys:write", "sign"])] {
        let refused = app
            .post_json("/api_keys", &keys_only, &json!({"scopes": wider}))
            .await;
        let error = expect_error(refused, 403, "insufficient_scope").await;
        assert_eq!(error["param"], "scopes");
    }
    let unknown = app
        .post_json("/api_keys", &keys_only, &json!({"scopes": ["keys:wrote"]}))
        .await;
    assert_eq!(
        expect_error(unknown, 400, "invalid_request").await["param"],
        "scopes"
    );
}
on_both_databases!(
    a_key_without_the_scope_is_refused_and_cannot_mint_a_wider_one,
    super::a_key_without_the_scope_is_refused_and_cannot_mint_a_wider_one
);

async fn keys_of_another_account_or_environment_are_not_found(db: Db) {
    let app = spawn_registry(db).await;
    let (_, admin) = app.key(USER, Environment::Live, &["*"]).await;
    let (other_account, other_secret) = app.key(OTHER_USER, Environment::Live, &["*"]).await;
    let (test_env, _) = app.key(USER, Environment::Test, &["*"]).await;
    for id in [&other_account, &test_env, &"key_doesnotexist".to_owned()] {
        let refused = app.delete(&format!("/api_keys/{id}"), &admin).await;
        expect_error(refused, 404, "not_found").await;
    }
    // Untouched: the other account's key still works.
    assert_eq!(app.get("/api_keys", &other_secret).await.status(), 200);
    // And the lists never show another's keys.
    let (_, list) = json_of(app.get("/api_keys", &admin).await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
}
on_both_databases!(
    keys_of_another_account_or_environment_are_not_found,
    super::keys_of_another_account_or_environment_are_not_found
);

async fn key_lists_page_by_cursor_without_skips_or_repeats(db: Db) {
    let app = spawn_registry(db).await;
    let (first, admin) = app.key(USER, Environment::Live, &["*"]).await;
    let mut made = HashSet::from([first]);
    for _ in 0..6 {
        made.insert(app.key(USER, Environment::Live, &["sign"]).await.0);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api_keys?limit=3&starting_after={c}"),
            None => "/api_keys?limit=3".to_owned(),
        };
        let (status, page) = json_of(app.get(&path, &admin).await).await;
        assert_eq!(status, 200, "{page}");
        let ids: Vec<String> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(ids.len() <= 3);
        seen.extend(ids.iter().cloned());
        if page["has_more"] == false {
            assert!(page["next_cursor"].is_null());
            break;
        }
        // A key made while paging lands on page one, never later.
        made.insert(app.key(USER, Environment::Live, &["sign"]).await.0);
        cursor = page["next_cursor"].as_str().map(String::from);
        assert_eq!(cursor.as_deref(), ids.last().map(String::as_str));
    }
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7, "no repeats");
    assert!(seen.iter().all(|id| made.contains(id)));

    for bad in ["limit=0", "limit=101", "limit=x"] {
        let refused = app.get(&format!("/api_keys?{bad}"), &admin).await;
        assert_eq!(
            expect_error(refused, 400, "invalid_request").await["param"],
            "limit"
        );
    }
    let refused = app.get("/api_keys?colour=red", &admin).await;
    assert_eq!(
        expect_error(refused, 400, "invalid_request").await["param"],
        "colour"
    );
    let refused = app.get("/api_keys?starting_after=key_nope", &admin).await;
    assert_eq!(
        expect_error(refused, 400, "invalid_request").await["param"],
        "starting_after"
    );
}
on_both_databases!(
    key_lists_page_by_cursor_without_skips_or_repeats,
    super::key_lists_page_by_cursor_without_skips_or_repeats
);
