//! `/v1/sign`: the signed URL the account's own code would write, byte
//! for byte the reference client's, from a query or a body; refused with
//! the rules of signed URLs and the parameter at fault; scope `sign`
//! only. Each test runs on SQLite and on PostgreSQL.

use serde_json::{json, Value};
use signet::registry::Environment;

use crate::helpers::{decode_png, reference_url, CERT, SECRET, USER};
use crate::on_both_databases;
use crate::registry_helpers::{
    expect_error, json_of, spawn_registry_with_templates, Db, RegistryApp,
};

/// The URL `GET /v1/sign` answers for `query`.
async fn sign_get(app: &RegistryApp, key: &str, query: &str) -> String {
    let (status, body) = json_of(app.get(&format!("/sign?{query}"), key).await).await;
    assert_eq!(status, 200, "{query}: {body}");
    body["url"].as_str().expect("a url").to_owned()
}

/// The URL `POST /v1/sign` answers for `body`.
async fn sign_post(app: &RegistryApp, key: &str, body: &Value) -> String {
    let (status, answer) = json_of(app.post_json("/sign", key, body).await).await;
    assert_eq!(status, 200, "{body}: {answer}");
    answer["url"].as_str().expect("a url").to_owned()
}

/// Scheme and host of the server, as the image URLs start.
fn host(app: &RegistryApp) -> String {
    app.base.trim_end_matches("/v1").to_owned()
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn the_url_is_the_reference_clients_byte_for_byte_and_renders(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["sign"]).await;
    // The emoji needs a font registry tests do not load (its image would
    // answer `422 Missing glyphs`): its URL is compared, not drawn.
    for (name, drawn) in [
        ("John Wick", true),
        ("Zoë Ångström", true),
        ("Дмитрий Иванов", true),
        ("José Müller 🎓", false),
    ] {
        let expected = reference_url(&host(&app), USER, SECRET, CERT, &[("text_candidate", name)]);
        let query = format!("template_id={CERT}&text_candidate={}", encode(name));
        let got = sign_get(&app, &key, &query).await;
        assert_eq!(got, expected, "{name}");
        let body = json!({"template_id": CERT,
                          "modifications": [{"name": "text_candidate", "text": name}]});
        assert_eq!(sign_post(&app, &key, &body).await, expected, "{name}");

        if drawn {
            let image = app.client.get(&got).send().await.unwrap();
            assert_eq!(image.status(), 200, "{name}: {got}");
            assert_eq!(image.headers()["content-type"], "image/png");
        }
    }
    // Two layers, in the order given, as the client writes them.
    let expected = reference_url(
        &host(&app),
        USER,
        SECRET,
        CERT,
        &[("text_candidate", "Ada"), ("course_name", "Engines & more")],
    );
    let query = format!("template_id={CERT}&text_candidate=Ada&course_name=Engines+%26+more");
    assert_eq!(sign_get(&app, &key, &query).await, expected);
}
on_both_databases!(
    the_url_is_the_reference_clients_byte_for_byte_and_renders,
    super::the_url_is_the_reference_clients_byte_for_byte_and_renders
);

async fn options_and_format_are_signed_and_served(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let got = sign_get(
        &app,
        &key,
        &format!("template_id={CERT}&width=400&text_candidate=Ada&v=r1"),
    )
    .await;
    let body = json!({"template_id": CERT,
                      "modifications": [{"name": "text_candidate", "text": "Ada"}],
                      "options": {"v": "r1", "width": 400}});
    assert_eq!(sign_post(&app, &key, &body).await, got);
    assert!(got.contains("&v=r1&width=400&s="), "{got}");
    let image = app.client.get(&got).send().await.unwrap();
    assert_eq!(image.status(), 200, "{got}");
    let png = decode_png(&image.bytes().await.unwrap());
    assert_eq!(png.width(), 400);

    let pdf = sign_get(
        &app,
        &key,
        &format!("template_id={CERT}&format=pdf&text_candidate=Ada"),
    )
    .await;
    assert!(pdf.contains(&format!("/{USER}/{CERT}.pdf?")), "{pdf}");
    let image = app.client.get(&pdf).send().await.unwrap();
    assert_eq!(image.status(), 200, "{pdf}");
    assert_eq!(image.headers()["content-type"], "application/pdf");

    // A colour goes through the body as a URL carries it.
    let body = json!({"template_id": CERT, "format": "jpg", "options": {"quality": 70},
                      "modifications": [{"name": "text_candidate", "text": "Ada", "color": "#c00"}]});
    let jpg = sign_post(&app, &key, &body).await;
    let image = app.client.get(&jpg).send().await.unwrap();
    assert_eq!(image.status(), 200, "{jpg}");
    assert_eq!(image.headers()["content-type"], "image/jpeg");
}
on_both_databases!(
    options_and_format_are_signed_and_served,
    super::options_and_format_are_signed_and_served
);

async fn what_a_signed_url_may_not_carry_is_refused_with_its_parameter(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["sign"]).await;
    let long = "x".repeat(1001);
    for (query, code, param) in [
        (
            format!("template_id={CERT}&text_candidate=a%E2%80%AEb"),
            "invalid_request",
            Some("text_candidate"),
        ),
        (
            format!("template_id={CERT}&text_candidate={long}"),
            "invalid_request",
            Some("text_candidate"),
        ),
        (
            format!("template_id={CERT}&text_candidate=a&text_candidate=b"),
            "invalid_request",
            Some("text_candidate"),
        ),
        (
            "text_candidate=a".to_string(),
            "invalid_request",
            Some("template_id"),
        ),
        (
            "template_id=nope&text_candidate=a".to_string(),
            "invalid_template",
            Some("template_id"),
        ),
        (
            "template_id=..%2Fx".to_string(),
            "invalid_template",
            Some("template_id"),
        ),
        (
            format!("template_id={CERT}&format=gif"),
            "invalid_request",
            Some("format"),
        ),
        (
            format!("template_id={CERT}&width=5"),
            "invalid_request",
            Some("width"),
        ),
        (
            format!("template_id={CERT}&quality=50"),
            "invalid_request",
            Some("quality"),
        ),
        (
            format!("template_id={CERT}&format=pdf&scale=2"),
            "invalid_request",
            Some("scale"),
        ),
        (
            format!("template_id={CERT}&exp=soon"),
            "invalid_request",
            Some("exp"),
        ),
        (
            format!("template_id={CERT}&scale=2&width=400"),
            "invalid_request",
            None,
        ),
    ] {
        let error = expect_error(app.get(&format!("/sign?{query}"), &key).await, 400, code).await;
        assert_eq!(error["param"].as_str(), param, "{query}: {error}");
    }

    let text = |t: &str| json!([{"name": "text_candidate", "text": t}]);
    for (body, code, param) in [
        (
            json!({"template_id": CERT, "modifications": text("a\u{202E}b")}),
            "invalid_request",
            "modifications[0].text",
        ),
        (
            json!({"template_id": CERT, "modifications": [{"name": "a", "text": "1"}, {"name": "a", "text": "2"}]}),
            "invalid_request",
            "modifications[1].name",
        ),
        (
            json!({"template_id": CERT, "modifications": [{"name": "a"}]}),
            "invalid_request",
            "modifications[0]",
        ),
        (
            json!({"template_id": CERT, "modifications": [{"name": "a", "txt": "1"}]}),
            "invalid_request",
            "modifications[0].txt",
        ),
        (
            json!({"template_id": CERT, "options": {"width": 5}}),
            "invalid_request",
            "options.width",
        ),
        (
            json!({"template_id": CERT, "options": {"height": 5}}),
            "invalid_request",
            "options.height",
        ),
        (
            json!({"template_id": CERT, "options": {"quality": 50}}),
            "invalid_request",
            "options.quality",
        ),
        (
            json!({"template_id": CERT, "options": {"scale": 2, "width": 400}}),
            "invalid_request",
            "options",
        ),
        (
            json!({"template_id": CERT, "format": "gif"}),
            "invalid_request",
            "format",
        ),
        (
            json!({"template_id": CERT, "colour": "red"}),
            "invalid_request",
            "colour",
        ),
        (
            json!({"modifications": text("a")}),
            "invalid_request",
            "template_id",
        ),
        (
            json!({"template_id": "nope", "modifications": text("a")}),
            "invalid_template",
            "template_id",
        ),
    ] {
        let error = expect_error(app.post_json("/sign", &key, &body).await, 400, code).await;
        assert_eq!(error["param"], param, "{body}: {error}");
    }
}
on_both_databases!(
    what_a_signed_url_may_not_carry_is_refused_with_its_parameter,
    super::what_a_signed_url_may_not_carry_is_refused_with_its_parameter
);

async fn only_the_sign_scope_signs_and_test_keys_sign_the_same_url(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let query = format!("template_id={CERT}&text_candidate=Ada");
    let body =
        json!({"template_id": CERT, "modifications": [{"name": "text_candidate", "text": "Ada"}]});
    for scopes in [
        &["certificates:read"][..],
        &["certificates:write"],
        &["certificates:read", "certificates:write", "keys:write"],
    ] {
        let (_, key) = app.key(USER, Environment::Live, scopes).await;
        let error = expect_error(
            app.get(&format!("/sign?{query}"), &key).await,
            403,
            "insufficient_scope",
        )
        .await;
        assert!(
            error["message"].as_str().unwrap().contains("`sign`"),
            "{error}"
        );
        expect_error(
            app.post_json("/sign", &key, &body).await,
            403,
            "insufficient_scope",
        )
        .await;
    }
    let (_, live) = app.key(USER, Environment::Live, &["sign"]).await;
    let (_, all) = app.key(USER, Environment::Live, &["*"]).await;
    let (_, test) = app.key(USER, Environment::Test, &["sign"]).await;
    let url = sign_get(&app, &live, &query).await;
    assert_eq!(sign_get(&app, &all, &query).await, url);
    assert_eq!(sign_get(&app, &test, &query).await, url);
    expect_error(
        app.get(&format!("/sign?{query}"), "sk_live_nope").await,
        401,
        "invalid_api_key",
    )
    .await;
}
on_both_databases!(
    only_the_sign_scope_signs_and_test_keys_sign_the_same_url,
    super::only_the_sign_scope_signs_and_test_keys_sign_the_same_url
);

async fn a_retried_post_gets_the_first_answer_again(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["sign"]).await;
    let post = |body: Value| {
        app.client
            .post(app.url("/sign"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .header("idempotency-key", "row-7")
            .body(body.to_string())
            .send()
    };
    let body =
        json!({"template_id": CERT, "modifications": [{"name": "text_candidate", "text": "Ada"}]});
    let first = post(body.clone()).await.unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let (_, first) = json_of(first).await;
    let again = post(body).await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(json_of(again).await, (200, first));
    let other =
        json!({"template_id": CERT, "modifications": [{"name": "text_candidate", "text": "Bo"}]});
    expect_error(post(other).await.unwrap(), 409, "idempotency_key_reused").await;
}
on_both_databases!(
    a_retried_post_gets_the_first_answer_again,
    super::a_retried_post_gets_the_first_answer_again
);
