//! Certificates over `/v1/certificates`: issued against their template's
//! declaration with its outbox event, read and listed as the contract
//! shows them, and refused with the field named when the template cannot
//! take them. Each test runs on SQLite and on PostgreSQL.

use serde_json::{json, Value};
use signet::registry::Environment;

use crate::helpers::{CERT, OTHER_USER, USER};
use crate::on_both_databases;
use crate::registry_helpers::{
    expect_error, json_of, spawn_registry_with_templates, Db, RegistryApp,
};

/// A valid body for the demo template.
pub fn maria() -> Value {
    json!({
        "template_id": CERT,
        "recipient": {"name": "Maria Andersson", "email": "maria@example.org"},
        "fields": {"course_name": "Advanced Project Management"},
        "metadata": {"crm": "003XX'; DROP TABLE certificates;--"}
    })
}

/// Issues `body`, expecting `201`; answers the object.
pub async fn issue(app: &RegistryApp, key: &str, body: &Value) -> Value {
    let (status, cert) = json_of(app.post_json("/certificates", key, body).await).await;
    assert_eq!(status, 201, "{cert}");
    cert
}

/// The outbox's event types for one certificate, oldest first.
pub async fn events(app: &RegistryApp, id: &str) -> Vec<String> {
    let stored = app.registry.store.events_of(id).await.unwrap();
    stored.into_iter().map(|e| e.kind).collect()
}

async fn a_certificate_is_issued_read_and_listed_as_the_contract_shows(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let cert = issue(&app, &key, &maria()).await;
    let id = cert["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("cert_") && id.len() >= 5 + 22, "{id}");
    assert_eq!(cert["object"], "certificate");
    assert_eq!(
        (cert["livemode"].clone(), cert["status"].clone()),
        (json!(true), json!("issued"))
    );
    assert_eq!(cert["template_id"], CERT);
    assert_eq!(
        cert["recipient"],
        json!({"name": "Maria Andersson", "email": "maria@example.org"})
    );
    assert_eq!(
        cert["fields"],
        json!({"course_name": "Advanced Project Management"})
    );
    assert_eq!(
        cert["metadata"]["crm"],
        "003XX'; DROP TABLE certificates;--"
    );
    assert_eq!(cert["proof"], Value::Null);
    assert_eq!(cert["expires_at"], Value::Null);
    let created = cert["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");
    assert_eq!(cert["issued_at"], created);
    let verify = cert["verification_url"].as_str().unwrap();
    assert!(verify.starts_with("http://127.0.0.1:") && verify.ends_with(&format!("/c/{id}")));
    assert_eq!(cert["image_url"], format!("{verify}.png"));
    assert_eq!(cert["pdf_url"], format!("{verify}.pdf"));
    assert_eq!(cert["social_image_url"], format!("{verify}/social.png"));

    let (status, read) = json_of(app.get(&format!("/certificates/{id}"), &key).await).await;
    assert_eq!((status, &read), (200, &cert));
    let (_, list) = json_of(app.get("/certificates", &key).await).await;
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"], json!([cert]));
    assert_eq!(list["has_more"], false);

    // The record commits to the template's version and has its own salt.
    let stored = app
        .registry
        .store
        .certificate(&id, USER, Environment::Live)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.template_hash.len(), 64);
    assert_eq!(stored.salt.len(), 64);
    assert_eq!(events(&app, &id).await, ["certificate.issued"]);
}
on_both_databases!(
    a_certificate_is_issued_read_and_listed_as_the_contract_shows,
    super::a_certificate_is_issued_read_and_listed_as_the_contract_shows
);

async fn what_the_template_refuses_is_invalid_field_naming_the_field(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut body = maria();
        edit(&mut body);
        body
    };
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            with(&|b: &mut Value| b["fields"]["nope"] = json!("x")),
            400,
            "invalid_field",
            "fields.nope",
        ),
        (
            with(&|b: &mut Value| b["fields"] = json!({})),
            400,
            "invalid_field",
            "fields.course_name",
        ),
        (
            with(&|b: &mut Value| b["recipient"]["name"] = json!("Maria \u{202E}nosrednA")),
            400,
            "invalid_field",
            "recipient.name",
        ),
        (
            with(&|b: &mut Value| b["recipient"]["name"] = json!("Maria\u{7}")),
            400,
            "invalid_field",
            "recipient.name",
        ),
        (
            with(&|b: &mut Value| b["recipient"]["name"] = json!(" ")),
            400,
            "invalid_field",
            "recipient.name",
        ),
        (
            with(&|b: &mut Value| b["fields"]["course_name"] = json!("x".repeat(1001))),
            400,
            "invalid_field",
            "fields.course_name",
        ),
        // A name that does not fit its box even at the smallest size.
        (
            with(&|b: &mut Value| b["recipient"]["name"] = json!("W".repeat(300))),
            400,
            "invalid_field",
            "recipient.name",
        ),
        // A course name too long for its layer: the field is named.
        (
            with(&|b: &mut Value| b["fields"]["course_name"] = json!("W".repeat(400))),
            400,
            "invalid_field",
            "fields.course_name",
        ),
        // No loaded font draws Linear B: refused, never drawn as a box.
        (
            with(&|b: &mut Value| b["recipient"]["name"] = json!("Maria \u{10000}")),
            400,
            "invalid_field",
            "recipient.name",
        ),
        (
            with(&|b: &mut Value| b["recipient"]["email"] = json!("not an address")),
            400,
            "invalid_field",
            "recipient.email",
        ),
        (
            with(&|b: &mut Value| b["template_id"] = json!("tmpl_invalid")),
            400,
            "invalid_template",
            "template_id",
        ),
        (
            with(&|b: &mut Value| b["template_id"] = json!("../secrets")),
            400,
            "invalid_template",
            "template_id",
        ),
        (
            with(&|b: &mut Value| b["colour"] = json!("red")),
            400,
            "invalid_request",
            "colour",
        ),
        (
            with(&|b: &mut Value| b["recipient"]["phone"] = json!("1")),
            400,
            "invalid_request",
            "recipient.phone",
        ),
        (
            with(&|b: &mut Value| b["expires_at"] = json!("2001-01-01T00:00:00Z")),
            400,
            "invalid_request",
            "expires_at",
        ),
        (
            with(&|b: &mut Value| b["expires_at"] = json!("tomorrow")),
            400,
            "invalid_request",
            "expires_at",
        ),
        (
            with(&|b: &mut Value| b["metadata"] = json!({"k": "v".repeat(501)})),
            400,
            "invalid_request",
            "metadata",
        ),
        (
            with(&|b: &mut Value| {
                b["metadata"] =
                    Value::Object((0..51).map(|i| (i.to_string(), json!("v"))).collect())
            }),
            400,
            "invalid_request",
            "metadata",
        ),
    ];
    for (body, status, code, param) in cases {
        let error = expect_error(
            app.post_json("/certificates", &key, &body).await,
            status,
            code,
        )
        .await;
        assert_eq!(error["param"], param, "{body} → {error}");
    }
    // Exactly at the bounds is fine, and nothing refused was stored.
    let (_, list) = json_of(app.get("/certificates", &key).await).await;
    assert_eq!(list["data"], json!([]));
    let fine = with(&|b: &mut Value| {
        b["metadata"] = Value::Object(
            (0..50)
                .map(|i| (i.to_string(), json!("v".repeat(500))))
                .collect(),
        )
    });
    issue(&app, &key, &fine).await;
}
on_both_databases!(
    what_the_template_refuses_is_invalid_field_naming_the_field,
    super::what_the_template_refuses_is_invalid_field_naming_the_field
);

/// The shipped badge without its declarations, as a template exported
/// from a drawing program would come: `plain` in `USER`'s folder.
pub fn write_undeclared_badge(app: &RegistryApp) {
    let folder = app.templates_dir().join(USER);
    let badge = std::fs::read_to_string(folder.join("badge.svg")).unwrap();
    let plain = badge
        .replace(r#" data-role="recipient-name""#, "")
        .replace(r#" data-field="kicker""#, "")
        .replace(r#" data-field="achievement""#, "");
    assert!(!plain.contains("data-role") && !plain.contains("data-field"));
    std::fs::write(folder.join("plain.svg"), plain).unwrap();
}

async fn a_template_declaring_no_fields_takes_any_text_layer(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    write_undeclared_badge(&app);
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let body = json!({"template_id": "plain", "recipient": {"name": "Anna"},
                      "fields": {"text_course": "Rust"}});
    let cert = issue(&app, &key, &body).await;
    assert_eq!(cert["recipient"]["email"], Value::Null);
    let body = json!({"template_id": "plain", "recipient": {"name": "Anna"},
                      "fields": {"bg": "x"}});
    let error = expect_error(
        app.post_json("/certificates", &key, &body).await,
        400,
        "invalid_field",
    )
    .await;
    assert_eq!(error["param"], "fields.bg");
}
on_both_databases!(
    a_template_declaring_no_fields_takes_any_text_layer,
    super::a_template_declaring_no_fields_takes_any_text_layer
);

async fn links_use_the_accounts_public_base_url(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(OTHER_USER, Environment::Live, &["*"]).await;
    let cert = issue(&app, &key, &maria()).await;
    let id = cert["id"].as_str().unwrap();
    let base = format!("https://credentials.example.org/c/{id}");
    assert_eq!(cert["verification_url"], base.as_str());
    assert_eq!(cert["image_url"], format!("{base}.png"));
    assert_eq!(cert["social_image_url"], format!("{base}/social.png"));
}
on_both_databases!(
    links_use_the_accounts_public_base_url,
    super::links_use_the_accounts_public_base_url
);

async fn an_emailed_certificate_needs_an_address(db: Db) {
    // The account e-mails certificates unless a request says otherwise.
    let app = crate::registry_helpers::spawn_registry_with_templates_and(db, |config| {
        config.users[0].email_by_default = Some(true);
    })
    .await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let mut body = maria();
    body["recipient"] = json!({"name": "Maria Andersson"});
    let error = expect_error(
        app.post_json("/certificates", &key, &body).await,
        400,
        "invalid_field",
    )
    .await;
    assert_eq!(error["param"], "recipient.email");
    body["send_email"] = json!(false);
    issue(&app, &key, &body).await;
    body["send_email"] = json!(true);
    expect_error(
        app.post_json("/certificates", &key, &body).await,
        400,
        "invalid_field",
    )
    .await;
    body["recipient"]["email"] = json!("maria@example.org");
    issue(&app, &key, &body).await;
}
on_both_databases!(
    an_emailed_certificate_needs_an_address,
    super::an_emailed_certificate_needs_an_address
);
