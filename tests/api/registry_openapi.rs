//! `GET /v1/openapi.json`: open without a key, valid by a standard
//! validator (`openapi-spec-validator`, which `scripts/test` installs in
//! a venv under `target/tools/openapi`), and describing exactly the routes
//! the router serves.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use signet::registry::Environment;

use crate::helpers::{repo, USER};
use crate::registry_helpers::{expect_error, json_of, spawn_registry, Db, RegistryApp};

/// Every route under `/v1`, as (method, path template). A route added to
/// the router belongs here and in the document.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/api_keys"),
    ("get", "/v1/api_keys"),
    ("delete", "/v1/api_keys/{id}"),
    ("get", "/v1/audit_events"),
    ("get", "/v1/batches/{id}"),
    ("post", "/v1/certificates"),
    ("post", "/v1/certificates/batch"),
    ("post", "/v1/certificates/batch_revoke"),
    ("get", "/v1/certificates"),
    ("get", "/v1/certificates/{id}"),
    ("patch", "/v1/certificates/{id}"),
    ("post", "/v1/certificates/{id}/revoke"),
    ("get", "/v1/sign"),
    ("post", "/v1/sign"),
    ("get", "/v1/templates"),
    ("get", "/v1/templates/{id}"),
    ("get", "/v1/templates/{id}/preview.png"),
    ("post", "/v1/webhook_endpoints"),
    ("get", "/v1/webhook_endpoints"),
    ("get", "/v1/webhook_endpoints/{id}"),
    ("patch", "/v1/webhook_endpoints/{id}"),
    ("delete", "/v1/webhook_endpoints/{id}"),
    ("get", "/v1/webhook_endpoints/{id}/deliveries"),
    ("post", "/v1/events/{id}/redeliver"),
    ("get", "/v1/verify/{id}"),
    ("get", "/v1/openapi.json"),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The validator's program, or a failure that says how to install it.
fn validator() -> PathBuf {
    let program = repo().join("target/tools/openapi/bin/openapi-spec-validator");
    assert!(
        program.is_file(),
        "{} is missing: run scripts/test, which makes that venv (Debian's python3-venv) \
         and installs PyPI's openapi-spec-validator into it",
        program.display()
    );
    program
}

/// The validator's verdict on `document`, written to a file first.
fn validate(document: &Value) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(document).unwrap()).unwrap();
    Command::new(validator())
        .arg(&file)
        .output()
        .expect("openapi-spec-validator runs")
}

async fn fetch(app: &RegistryApp) -> Value {
    let answer = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    let (status, document) = json_of(answer).await;
    assert_eq!(status, 200, "{document}");
    document
}

/// The schema a local `$ref` points at.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(pointer) => document
            .pointer(pointer.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{pointer} resolves to nothing")),
        None => schema,
    }
}

#[tokio::test]
async fn the_document_is_served_without_a_key_and_may_be_cached() {
    let app = spawn_registry(Db::Sqlite).await;
    // No key at all, and a key that is no key: neither is looked at.
    let bare = app.client.get(app.url("/openapi.json"));
    let wrong = app
        .client
        .get(app.url("/openapi.json"))
        .bearer_auth("sk_live_not_a_key")
        .header("x-request-id", "docs-1");
    for (request, echoed) in [(bare, None), (wrong, Some("docs-1"))] {
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), 200);
        let headers = answer.headers();
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["cache-control"], "public, max-age=300");
        let id = headers["x-request-id"].to_str().unwrap();
        match echoed {
            Some(given) => assert_eq!(id, given),
            None => assert!(id.starts_with("req_"), "{id}"),
        }
        assert!(headers.get("x-ratelimit-limit").is_none());
    }
    // Its errors have the one shape all the same.
    let posted = app
        .client
        .post(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    expect_error(posted, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn a_standard_validator_accepts_the_document_and_refuses_a_broken_one() {
    let app = spawn_registry(Db::Sqlite).await;
    let document = fetch(&app).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1."));
    let verdict = validate(&document);
    assert!(
        verdict.status.success(),
        "openapi-spec-validator refused the document:\n{}{}",
        String::from_utf8_lossy(&verdict.stdout),
        String::from_utf8_lossy(&verdict.stderr)
    );

    // The same validator on a reference to no schema: it must say no, or
    // its yes above says nothing.
    let mut broken = document.clone();
    let schema = broken
        .pointer_mut(
            "/paths/~1v1~1certificates/post/responses/201/content/application~1json/schema",
        )
        .expect("the issue answer has a schema");
    *schema = serde_json::json!({"$ref": "#/components/schemas/NoSuchSchema"});
    assert!(!validate(&broken).status.success());
}

#[tokio::test]
async fn the_document_names_every_route_the_router_serves_and_no_other() {
    let app = spawn_registry(Db::Sqlite).await;
    let document = fetch(&app).await;
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(move |method| (method.to_string(), path.clone()))
        })
        .collect();
    let listed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(documented, listed);

    // Each listed route is one the router serves: with a key that may do
    // anything, none is the unknown endpoint or the wrong method.
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    for (method, path) in ROUTES {
        let target = path.trim_start_matches("/v1").replace("{id}", "nope");
        let request = app
            .client
            .request(method.to_uppercase().parse().unwrap(), app.url(&target))
            .bearer_auth(&key);
        let request = if matches!(*method, "post" | "patch") {
            request
                .header("content-type", "application/json")
                .body("{}")
        } else {
            request
        };
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        let body = answer.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert!(
            !(status == 404 && body.contains("No such endpoint")),
            "{method} {path} is not routed: {body}"
        );
    }
}

#[tokio::test]
async fn every_operation_states_its_key_its_errors_and_its_headers() {
    let app = spawn_registry(Db::Sqlite).await;
    let document = fetch(&app).await;
    let scheme = &document["components"]["securitySchemes"]["api_key"];
    assert_eq!(
        (&scheme["type"], &scheme["scheme"]),
        (&"http".into(), &"bearer".into())
    );
    assert_eq!(document["security"], serde_json::json!([{"api_key": []}]));

    for (method, path) in ROUTES {
        let operation = &document["paths"][path][method];
        let responses = operation["responses"].as_object().unwrap();
        let open = matches!(*path, "/v1/openapi.json" | "/v1/verify/{id}");
        // Only the document itself and the public check are open;
        // everything else inherits the bearer key and its 401.
        assert_eq!(operation["security"].is_null(), !open, "{method} {path}");
        assert_eq!(responses.contains_key("401"), !open, "{method} {path}");
        let parameters = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let idempotency = parameters
            .iter()
            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header");
        assert_eq!(idempotency, *method == "post", "{method} {path}");
        for (status, response) in responses {
            let headers = &response["headers"];
            assert!(
                headers["x-request-id"].is_object(),
                "{method} {path} {status}"
            );
            if !open && status != "401" {
                assert!(
                    headers["X-RateLimit-Remaining"].is_object(),
                    "{method} {path} {status}"
                );
            }
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/json"]["schema"];
                assert_eq!(
                    schema["$ref"], "#/components/schemas/Error",
                    "{method} {path} {status}"
                );
            }
        }
    }

    // A list's items are the item's own schema, not a nameless copy.
    let schemas = &document["components"]["schemas"];
    for (list, item) in [
        ("List_ApiKey", "ApiKey"),
        ("List_AuditEvent", "AuditEvent"),
        ("List_Certificate", "Certificate"),
        ("List_Template", "Template"),
        ("List_WebhookEndpoint", "WebhookEndpoint"),
        ("List_WebhookDelivery", "WebhookDelivery"),
    ] {
        let items = &schemas[list]["properties"]["data"]["items"];
        assert_eq!(
            items["$ref"],
            format!("#/components/schemas/{item}"),
            "{list}"
        );
        assert!(schemas[item].is_object(), "{item}");
    }

    let error = resolve(&document, &schemas["Error"]);
    let object = resolve(&document, &error["properties"]["error"]);
    let properties = object["properties"].as_object().expect("error properties");
    for name in [
        "code",
        "message",
        "param",
        "documentation_url",
        "request_id",
    ] {
        assert!(
            properties.contains_key(name),
            "the error object lacks {name}: {object}"
        );
    }
}
