//! `Idempotency-Key` on `POST`s: a retry gets the first answer again and
//! changes nothing, another request under the key is refused, keys belong
//! to one account and environment, and answers outlive a restart. Each
//! test runs on SQLite and on PostgreSQL.

use serde_json::{json, Value};
use signet::registry::Environment;

use crate::helpers::{CERT, OTHER_USER, USER};
use crate::on_both_databases;
use crate::registry_certificates::maria;
use crate::registry_helpers::{
    expect_error, json_of, spawn_registry_with_templates, Db, RegistryApp,
};

/// One answer, read.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub replayed: bool,
    pub request_id: String,
    pub body: Value,
}

/// `POST`s `body` to `path` with `Idempotency-Key: idem`.
pub async fn post(
    app: &RegistryApp,
    path: &str,
    key: &str,
    idem: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("idempotency-key", idem)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

pub async fn read(response: reqwest::Response) -> Answer {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let replayed = match header("idempotent-replayed").as_deref() {
        None => false,
        Some("true") => true,
        Some(other) => panic!("Idempotent-Replayed: {other}"),
    };
    let request_id = header("x-request-id").expect("every answer has x-request-id");
    let (status, body) = json_of(response).await;
    Answer {
        status,
        replayed,
        request_id,
        body,
    }
}

/// The ids of the caller's certificates.
pub async fn certificate_ids(app: &RegistryApp, key: &str) -> Vec<String> {
    let (status, list) = json_of(app.get("/certificates?limit=100", key).await).await;
    assert_eq!(status, 200, "{list}");
    let ids = list["data"].as_array().unwrap().iter();
    ids.map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

async fn a_retry_gets_the_first_answer_and_issues_nothing(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let first = read(post(&app, "/certificates", &key, "order-42", &maria()).await).await;
    assert_eq!((first.status, first.replayed), (201, false), "{:?}", first);
    let again = read(post(&app, "/certificates", &key, "order-42", &maria()).await).await;
    assert_eq!((again.status, again.replayed), (201, true));
    assert_eq!(again.body, first.body);
    assert_ne!(
        again.request_id, first.request_id,
        "x-request-id is this request's"
    );
    let id = first.body["id"].as_str().unwrap();
    assert_eq!(certificate_ids(&app, &key).await, [id]);
    let events = app.registry.store.events_of(id).await.unwrap();
    assert_eq!(events.len(), 1);

    // A revocation, too: its retry neither revokes again nor changes the
    // answer, and its event is written once.
    let path = format!("/certificates/{id}/revoke");
    let reason = json!({"reason": "Issued by mistake"});
    let revoked = read(post(&app, &path, &key, "revoke-42", &reason).await).await;
    assert_eq!(
        (revoked.status, revoked.body["status"].as_str()),
        (200, Some("revoked"))
    );
    let again = read(post(&app, &path, &key, "revoke-42", &reason).await).await;
    assert_eq!((again.status, again.replayed), (200, true));
    assert_eq!(again.body, revoked.body);
    let kinds: Vec<_> = app.registry.store.events_of(id).await.unwrap();
    assert_eq!(kinds.len(), 2, "issued and revoked once each");
}
on_both_databases!(
    a_retry_gets_the_first_answer_and_issues_nothing,
    super::a_retry_gets_the_first_answer_and_issues_nothing
);

async fn a_retried_key_creation_makes_one_key_and_never_shows_its_secret_again(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (admin_id, admin) = app.key(USER, Environment::Live, &["*"]).await;
    let body = json!({"scopes": ["certificates:read"], "description": "LMS"});
    let first = read(post(&app, "/api_keys", &admin, "key-1", &body).await).await;
    assert_eq!(first.status, 201, "{:?}", first);
    let secret = first.body["secret"].as_str().unwrap().to_owned();
    let again = read(post(&app, "/api_keys", &admin, "key-1", &body).await).await;
    assert_eq!((again.status, again.replayed), (201, true));
    // The same key, without its secret: only its hash was ever stored.
    let mut without = first.body.clone();
    without.as_object_mut().unwrap().remove("secret");
    assert_eq!(again.body, without);
    assert!(!again.body.to_string().contains(&secret));
    let (_, keys) = json_of(app.get("/api_keys", &admin).await).await;
    let ids: Vec<_> = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["id"])
        .collect();
    assert_eq!(ids.len(), 2, "{keys}");
    assert!(ids.contains(&&json!(admin_id)) && ids.contains(&&first.body["id"]));
}
on_both_databases!(
    a_retried_key_creation_makes_one_key_and_never_shows_its_secret_again,
    super::a_retried_key_creation_makes_one_key_and_never_shows_its_secret_again
);

async fn the_same_key_with_another_request_is_refused_as_reused(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let first = read(post(&app, "/certificates", &key, "k", &maria()).await).await;
    assert_eq!(first.status, 201);
    let mut other = maria();
    other["recipient"]["name"] = json!("Anna Svensson");
    expect_error(
        post(&app, "/certificates", &key, "k", &other).await,
        409,
        "idempotency_key_reused",
    )
    .await;
    // The body's bytes count, and so does the path.
    let spaced = app
        .client
        .post(app.url("/certificates"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .header("idempotency-key", "k")
        .body(serde_json::to_string_pretty(&maria()).unwrap())
        .send()
        .await
        .unwrap();
    expect_error(spaced, 409, "idempotency_key_reused").await;
    let id = first.body["id"].as_str().unwrap();
    let revoke = post(
        &app,
        &format!("/certificates/{id}/revoke"),
        &key,
        "k",
        &maria(),
    )
    .await;
    expect_error(revoke, 409, "idempotency_key_reused").await;
    assert_eq!(certificate_ids(&app, &key).await, [id]);
}
on_both_databases!(
    the_same_key_with_another_request_is_refused_as_reused,
    super::the_same_key_with_another_request_is_refused_as_reused
);

async fn concurrent_requests_with_one_key_issue_one_certificate(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let answers = burst(&app, &key, "burst", &maria(), 16, 16).await;
    let first = the_one_that_ran(answers);
    assert_eq!(
        certificate_ids(&app, &key).await,
        [first["id"].as_str().unwrap()]
    );
}
on_both_databases!(
    concurrent_requests_with_one_key_issue_one_certificate,
    super::concurrent_requests_with_one_key_issue_one_certificate
);

/// `n` copies of one idempotent `POST`, sent at once by `concurrency`
/// tasks sharing the app's keep-alive client; every answer.
pub async fn burst(
    app: &RegistryApp,
    key: &str,
    idem: &str,
    body: &Value,
    n: usize,
    concurrency: usize,
) -> Vec<Answer> {
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..concurrency {
        let (client, url) = (app.client.clone(), app.url("/certificates"));
        let (key, idem, body) = (key.to_owned(), idem.to_owned(), body.to_string());
        let count = n / concurrency + usize::from(task < n % concurrency);
        tasks.spawn(async move {
            let mut answers = Vec::with_capacity(count);
            for _ in 0..count {
                let response = client
                    .post(&url)
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .header("idempotency-key", &idem)
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                answers.push(read(response).await);
            }
            answers
        });
    }
    tasks.join_all().await.into_iter().flatten().collect()
}

/// The one first answer among `answers`; asserts every other is its
/// replay or `idempotency_key_in_use`.
pub fn the_one_that_ran(answers: Vec<Answer>) -> Value {
    let mut fresh = Vec::new();
    let mut replayed = Vec::new();
    for answer in answers {
        match (answer.status, answer.replayed) {
            (201, false) => fresh.push(answer.body),
            (201, true) => replayed.push(answer.body),
            (409, false) if answer.body["error"]["code"] == "idempotency_key_in_use" => {}
            _ => panic!("{answer:?}"),
        }
    }
    assert_eq!(fresh.len(), 1, "exactly one request ran: {fresh:?}");
    assert!(replayed.iter().all(|b| *b == fresh[0]));
    fresh.remove(0)
}

async fn an_answer_is_replayed_after_a_restart(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let first = read(post(&app, "/certificates", &key, "before-restart", &maria()).await).await;
    assert_eq!(first.status, 201);
    let app = app.restart().await;
    let again = read(post(&app, "/certificates", &key, "before-restart", &maria()).await).await;
    assert_eq!((again.status, again.replayed), (201, true));
    assert_eq!(again.body, first.body);
    assert_eq!(certificate_ids(&app, &key).await.len(), 1);
}
on_both_databases!(
    an_answer_is_replayed_after_a_restart,
    super::an_answer_is_replayed_after_a_restart
);

async fn a_key_belongs_to_one_account_and_one_environment(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, live) = app.key(USER, Environment::Live, &["*"]).await;
    let (_, test) = app.key(USER, Environment::Test, &["*"]).await;
    let (_, other) = app.key(OTHER_USER, Environment::Live, &["*"]).await;
    let mut ids = Vec::new();
    for key in [&live, &test, &other] {
        let answer = read(post(&app, "/certificates", key, "shared", &maria()).await).await;
        assert_eq!((answer.status, answer.replayed), (201, false), "{answer:?}");
        ids.push(answer.body["id"].as_str().unwrap().to_owned());
    }
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 3);
    assert_eq!(certificate_ids(&app, &test).await, [ids[1].as_str()]);
    // Another key of the same account and environment shares the key.
    let (_, second) = app.key(USER, Environment::Live, &["*"]).await;
    let again = read(post(&app, "/certificates", &second, "shared", &maria()).await).await;
    assert_eq!(
        (again.replayed, again.body["id"].as_str()),
        (true, Some(ids[0].as_str()))
    );
}
on_both_databases!(
    a_key_belongs_to_one_account_and_one_environment,
    super::a_key_belongs_to_one_account_and_one_environment
);

async fn a_malformed_key_is_refused_naming_the_header(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let long = "k".repeat(256);
    let values: [&[u8]; 4] = [b"", long.as_bytes(), b"tab\there", "caf\u{e9}".as_bytes()];
    for value in values {
        let response = app
            .client
            .post(app.url("/certificates"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .header(
                "idempotency-key",
                reqwest::header::HeaderValue::from_bytes(value).unwrap(),
            )
            .body(maria().to_string())
            .send()
            .await
            .unwrap();
        let error = expect_error(response, 400, "invalid_request").await;
        assert_eq!(error["param"], "Idempotency-Key", "{value:?}");
    }
    assert!(certificate_ids(&app, &key).await.is_empty());
    let longest = "k".repeat(255);
    let answer = read(post(&app, "/certificates", &key, &longest, &maria()).await).await;
    assert_eq!(answer.status, 201);
}
on_both_databases!(
    a_malformed_key_is_refused_naming_the_header,
    super::a_malformed_key_is_refused_naming_the_header
);

async fn a_refused_request_is_answered_the_same_when_retried(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let cases = [
        (
            json!({"template_id": CERT, "recipient": {"name": "A"}, "colour": "red"}),
            "invalid_request",
        ),
        (
            json!({"template_id": "nope", "recipient": {"name": "A"}}),
            "invalid_template",
        ),
    ];
    for (n, (body, code)) in cases.iter().enumerate() {
        let idem = format!("refused-{n}");
        let first = post(&app, "/certificates", &key, &idem, body).await;
        let first_error = expect_error(first, 400, code).await;
        let again = read(post(&app, "/certificates", &key, &idem, body).await).await;
        assert_eq!((again.status, again.replayed), (400, true));
        // The first answer, its request id included; the header is this
        // request's.
        assert_eq!(again.body["error"], first_error);
        assert_ne!(
            again.request_id,
            first_error["request_id"].as_str().unwrap()
        );
        // The refusal is the key's answer: a corrected body needs a new key.
        let fixed = post(&app, "/certificates", &key, &idem, &maria()).await;
        expect_error(fixed, 409, "idempotency_key_reused").await;
    }
    // A refusal before the request is read keeps nothing: a key lacking
    // the scope does not spend the key for one that has it.
    let (_, reader) = app
        .key(USER, Environment::Live, &["certificates:read"])
        .await;
    let refused = post(&app, "/certificates", &reader, "scoped", &maria()).await;
    expect_error(refused, 403, "insufficient_scope").await;
    let answer = read(post(&app, "/certificates", &key, "scoped", &maria()).await).await;
    assert_eq!((answer.status, answer.replayed), (201, false));
}
on_both_databases!(
    a_refused_request_is_answered_the_same_when_retried,
    super::a_refused_request_is_answered_the_same_when_retried
);
