//! `/v1/templates`: an account's templates with the layer the name goes
//! into and the fields a certificate supplies, as the files declare them;
//! paged; confined to the account; a preview drawn by the renderer. Each
//! test runs on SQLite and on PostgreSQL.

use serde_json::{json, Value};
use signet::registry::Environment;

use crate::helpers::{decode_png, CERT, OTHER_USER, USER};
use crate::on_both_databases;
use crate::registry_helpers::{expect_error, json_of, spawn_registry_with_templates, Db};

async fn the_templates_show_what_their_files_declare(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app
        .key(USER, Environment::Live, &["certificates:read"])
        .await;
    let (status, list) = json_of(app.get("/templates", &key).await).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [CERT, "badge"]);
    let cert = &list["data"][0];
    // What the file says: `width="2000" height="1414"`, the name layer
    // with `data-role="recipient-name"`, one field with
    // `data-field="course_name" data-required="true"`.
    assert_eq!(
        (
            cert["object"].clone(),
            cert["width"].clone(),
            cert["height"].clone()
        ),
        (json!("template"), json!(2000.0), json!(1414.0))
    );
    assert_eq!(cert["recipient_name_layer"], "text_candidate");
    assert_eq!(
        cert["fields"],
        json!([{"name": "course_name", "required": true}])
    );
    assert!(cert["preview_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/v1/templates/{CERT}/preview.png")));
    // The badge declares two optional fields.
    let badge = &list["data"][1];
    assert_eq!(badge["recipient_name_layer"], "text_candidate");
    assert_eq!(
        badge["fields"],
        json!([{"name": "achievement", "required": false}, {"name": "kicker", "required": false}])
    );
    let (status, one) = json_of(app.get(&format!("/templates/{CERT}"), &key).await).await;
    assert_eq!((status, &one), (200, cert));

    // Paged by id.
    let (_, first) = json_of(app.get("/templates?limit=1", &key).await).await;
    assert_eq!(
        (first["has_more"].clone(), first["next_cursor"].clone()),
        (json!(true), json!(CERT))
    );
    let (_, second) = json_of(
        app.get(&format!("/templates?limit=1&starting_after={CERT}"), &key)
            .await,
    )
    .await;
    assert_eq!(second["data"][0]["id"], "badge");
    assert_eq!(second["has_more"], false);
    expect_error(
        app.get("/templates?starting_after=nope", &key).await,
        400,
        "invalid_request",
    )
    .await;
    // Without declarations, each text layer but the name is a field,
    // none of them required.
    crate::registry_certificates::write_undeclared_badge(&app);
    let (_, plain) = json_of(app.get("/templates/plain", &key).await).await;
    let fields = plain["fields"].as_array().unwrap();
    for name in ["text_course", "text_kicker"] {
        assert!(
            fields.contains(&json!({"name": name, "required": false})),
            "{plain}"
        );
    }
}
on_both_databases!(
    the_templates_show_what_their_files_declare,
    super::the_templates_show_what_their_files_declare
);

async fn templates_are_the_accounts_own_and_unusable_ones_say_why(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, other) = app
        .key(OTHER_USER, Environment::Live, &["certificates:write"])
        .await;
    let (_, list) = json_of(app.get("/templates", &other).await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    // The other account has no badge: not found, like any unknown id.
    expect_error(app.get("/templates/badge", &other).await, 404, "not_found").await;
    expect_error(app.get("/templates/x%2F..", &other).await, 404, "not_found").await;

    // A file that does not prepare is left out of the list, and asking
    // for it says why.
    // (A second key: the other account's plan allows 4 requests a minute
    // per key.)
    let (_, other) = app
        .key(OTHER_USER, Environment::Live, &["certificates:write"])
        .await;
    let folder = app.templates_dir().join(OTHER_USER);
    std::fs::write(folder.join("broken.svg"), "<svg xmlns=").unwrap();
    let (_, list) = json_of(app.get("/templates", &other).await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    let error = expect_error(
        app.get("/templates/broken", &other).await,
        400,
        "invalid_template",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("unusable"),
        "{error}"
    );

    let (_, audit_only) = app.key(USER, Environment::Live, &["audit:read"]).await;
    expect_error(
        app.get("/templates", &audit_only).await,
        403,
        "insufficient_scope",
    )
    .await;
    expect_error(
        app.get("/templates", "sk_live_nope").await,
        401,
        "invalid_api_key",
    )
    .await;
}
on_both_databases!(
    templates_are_the_accounts_own_and_unusable_ones_say_why,
    super::templates_are_the_accounts_own_and_unusable_ones_say_why
);

async fn a_preview_is_the_template_drawn_with_its_own_text(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app
        .key(USER, Environment::Test, &["certificates:read"])
        .await;
    let (_, one) = json_of(app.get(&format!("/templates/{CERT}"), &key).await).await;
    let url = one["preview_url"].as_str().unwrap().to_owned();
    let response = app.client.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.headers()["cache-control"], "private, no-cache");
    let etag = response.headers()["etag"].clone();
    let png = decode_png(&response.bytes().await.unwrap());
    // 2000 wide, drawn 1200 wide.
    assert_eq!((png.width(), png.height()), (1200, 849));
    let again = app
        .client
        .get(&url)
        .bearer_auth(&key)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    expect_error(
        app.get("/templates/nope/preview.png", &key).await,
        404,
        "not_found",
    )
    .await;
    let anonymous = app.client.get(&url).send().await.unwrap();
    let body: Value = serde_json::from_slice(&anonymous.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");
}
on_both_databases!(
    a_preview_is_the_template_drawn_with_its_own_text,
    super::a_preview_is_the_template_drawn_with_its_own_text
);
