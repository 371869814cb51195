//! The `/v1` error contract: one JSON shape with the request id, strict
//! bodies, and JSON answers for unknown routes and methods. On SQLite and
//! PostgreSQL.

use serde_json::json;
use signet::registry::Environment;

use crate::helpers::USER;
use crate::on_both_databases;
use crate::registry_helpers::{expect_error, spawn_registry, Db};

async fn bad_bodies_are_refused_with_the_contract_s_codes(db: Db) {
    let app = spawn_registry(db).await;
    let (_, admin) = app.key(USER, Environment::Live, &["*"]).await;
    let post = |body: Vec<u8>, content_type: &'static str| {
        app.client
            .post(app.url("/api_keys"))
            .bearer_auth(&admin)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let typo = post(
        br#"{"scopes":["sign"],"descripton":"x"}"#.to_vec(),
        "application/json",
    );
    let error = expect_error(typo.await.unwrap(), 400, "invalid_request").await;
    assert_eq!(error["param"], "descripton", "{error}");

    let wrong_type = post(br#"{"scopes":"sign"}"#.to_vec(), "application/json");
    let error = expect_error(wrong_type.await.unwrap(), 400, "invalid_request").await;
    assert_eq!(error["param"], "scopes", "{error}");

    for broken in [
        &br#"{"scopes":["sign"]"#[..],
        b"",
        b"[1,2",
        br#"{"scopes":[]} x"#,
    ] {
        let refused = post(broken.to_vec(), "application/json; charset=utf-8");
        expect_error(refused.await.unwrap(), 400, "invalid_request").await;
    }
    let form = post(b"scopes=sign".to_vec(), "application/x-www-form-urlencoded");
    expect_error(form.await.unwrap(), 415, "unsupported_media_type").await;

    let mut huge = br#"{"scopes":["sign"],"description":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
    huge.extend(br#""}"#);
    expect_error(
        post(huge, "application/json").await.unwrap(),
        413,
        "payload_too_large",
    )
    .await;
}
on_both_databases!(
    bad_bodies_are_refused_with_the_contract_s_codes,
    super::bad_bodies_are_refused_with_the_contract_s_codes
);

async fn unknown_routes_and_methods_answer_json_not_images(db: Db) {
    let app = spawn_registry(db).await;
    let (_, admin) = app.key(USER, Environment::Live, &["*"]).await;
    expect_error(app.get("/certificatez", &admin).await, 404, "not_found").await;
    expect_error(
        app.get("/api_keys/key_x/extra", &admin).await,
        404,
        "not_found",
    )
    .await;
    let put = app
        .client
        .put(app.url("/api_keys"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let allow = put
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned());
    expect_error(put, 405, "method_not_allowed").await;
    assert!(allow.is_some_and(|a| a.contains("POST") && a.contains("GET")));
    // An image path is still an image path.
    let image = app
        .client
        .get(app.base.replace("/v1", "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), 200);
}
on_both_databases!(
    unknown_routes_and_methods_answer_json_not_images,
    super::unknown_routes_and_methods_answer_json_not_images
);

async fn a_sane_request_id_is_echoed_and_any_other_replaced(db: Db) {
    let app = spawn_registry(db).await;
    let (_, admin) = app.key(USER, Environment::Live, &["*"]).await;
    let with_id = |id: String| {
        app.client
            .get(app.url("/api_keys"))
            .bearer_auth(&admin)
            .header("x-request-id", id)
            .send()
    };
    let echoed = with_id("lms-run.42_a".into()).await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "lms-run.42_a");
    for insane in [
        "a b".to_owned(),
        "x".repeat(65),
        "é".to_owned(),
        "<script>".to_owned(),
    ] {
        let answer = with_id(insane.clone()).await.unwrap();
        let id = answer.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(id.starts_with("req_") && id != insane, "{id}");
    }
    // Errors carry the echoed id in their body too.
    let refused = app
        .client
        .get(app.url("/api_keys"))
        .header("x-request-id", "trace-7")
        .send()
        .await
        .unwrap();
    let error = expect_error(refused, 401, "invalid_api_key").await;
    assert_eq!(error["request_id"], "trace-7");
    // And the audit log names it.
    let made = app
        .client
        .post(app.url("/api_keys"))
        .bearer_auth(&admin)
        .header("x-request-id", "trace-8")
        .header("content-type", "application/json")
        .body((json!({"scopes": ["sign"]})).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let log: serde_json::Value = app
        .get("/audit_events?limit=1", &admin)
        .await
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    assert_eq!(log["data"][0]["request_id"], "trace-8", "{log}");
    assert_eq!(log["has_more"], true);
}
on_both_databases!(
    a_sane_request_id_is_echoed_and_any_other_replaced,
    super::a_sane_request_id_is_echoed_and_any_other_replaced
);
