//! `certificate.viewed` from the certificate's images and
//! `certificate.verified` from `GET /v1/verify/{id}`: one event per
//! visitor and certificate an hour however many hits, crawlers named,
//! place and referrer from the request, sandbox certificates in test
//! mode; the check is open without a key and shows the public standing
//! only. Each test runs on SQLite and on PostgreSQL.

use std::time::Duration;

use serde_json::{json, Value};
use signet::registry::Environment;

use crate::helpers::USER;
use crate::on_both_databases;
use crate::registry_certificates::{issue, maria};
use crate::registry_helpers::{expect_error, json_of, Db, RegistryApp};
use crate::registry_webhooks_receiver::{endpoint, eventually, spawn_hooks, Receiver};

const WAIT: Duration = Duration::from_secs(20);
const LINKEDIN: &str =
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)";
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// The outbox's events of `kind` for certificate `id`, as their data.
async fn outbox(app: &RegistryApp, id: &str, kind: &str) -> Vec<Value> {
    let events = app.registry.store.events_of(id).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.data)
        .collect()
}

async fn hit(app: &RegistryApp, url: &str, agent: &str) {
    let answer = app
        .client
        .get(url)
        .header("user-agent", agent)
        .header("referer", "https://www.linkedin.com/feed/")
        .header("cf-ipcountry", "SE")
        .header("cf-ipcity", "Stockholm")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.bytes().await.unwrap();
}

async fn fifty_image_hits_of_one_visitor_make_one_viewed_event(db: Db) {
    let app = spawn_hooks(db, |config| {
        config.webhooks.country_header = Some("cf-ipcountry".into());
        config.webhooks.city_header = Some("cf-ipcity".into());
    })
    .await;
    let receiver = Receiver::start().await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let (_, sandbox) = app.key(USER, Environment::Test, &["*"]).await;
    endpoint(&app, &key, &receiver.url("/live"), &["certificate.viewed"]).await;
    endpoint(
        &app,
        &sandbox,
        &receiver.url("/test"),
        &["certificate.viewed"],
    )
    .await;
    let cert = issue(&app, &key, &maria()).await;
    let id = cert["id"].as_str().unwrap();
    let image = cert["image_url"].as_str().unwrap();
    let social = cert["social_image_url"].as_str().unwrap();
    for n in 0..50 {
        hit(&app, if n % 5 == 0 { social } else { image }, BROWSER).await;
    }
    // A crawler is another visitor, named as such; queued after the 50.
    hit(&app, image, LINKEDIN).await;
    let viewed = eventually(WAIT, "the crawler's view in the outbox", || async {
        let viewed = outbox(&app, id, "certificate.viewed").await;
        viewed
            .iter()
            .any(|d| d.get("crawler").is_some())
            .then_some(viewed)
    })
    .await;
    assert_eq!(viewed.len(), 2, "{viewed:?}");
    assert_eq!(
        viewed[0],
        json!({"viewer_location": "Stockholm, SE", "referrer": "linkedin.com"})
    );
    assert_eq!(viewed[1]["crawler"], "linkedin");
    let got = eventually(WAIT, "both views delivered", || async {
        let got = receiver.at("/live");
        (got.len() >= 2).then_some(got)
    })
    .await;
    assert!(got
        .iter()
        .all(|r| r.json()["event"] == "certificate.viewed" && r.json()["livemode"] == true));

    // A sandbox certificate's views are events of the sandbox.
    let specimen = issue(&app, &sandbox, &maria()).await;
    hit(&app, specimen["image_url"].as_str().unwrap(), BROWSER).await;
    let got = eventually(WAIT, "the sandbox view delivered", || async {
        receiver.at("/test").first().cloned()
    })
    .await;
    assert_eq!(got.json()["livemode"], false);
    assert_eq!(got.json()["certificate_id"], specimen["id"]);
    assert_eq!(receiver.at("/live").len(), 2);
}
on_both_databases!(
    fifty_image_hits_of_one_visitor_make_one_viewed_event,
    super::fifty_image_hits_of_one_visitor_make_one_viewed_event
);

async fn a_check_is_open_shows_the_standing_only_and_counts_once(db: Db) {
    let app = spawn_hooks(db, |_| {}).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let mut body = maria();
    body["metadata"] = json!({"crm": "secret-crm-id"});
    let cert = issue(&app, &key, &body).await;
    let id = cert["id"].as_str().unwrap();
    let check = || app.client.get(app.url(&format!("/verify/{id}"))).send();
    for _ in 0..3 {
        let answer = check().await.unwrap();
        assert!(answer.headers().get("x-request-id").is_some());
        let (status, found) = json_of(answer).await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["object"], "verification");
        assert_eq!(found["certificate_id"], id);
        assert_eq!(
            (found["valid"].clone(), found["status"].clone()),
            (json!(true), json!("issued"))
        );
        let text = found.to_string();
        for private in [
            "maria@example.org",
            "secret-crm-id",
            "Maria",
            "recipient",
            "metadata",
        ] {
            assert!(!text.contains(private), "{private} in {text}");
        }
    }
    let revoke = app
        .post_json(&format!("/certificates/{id}/revoke"), &key, &json!({}))
        .await;
    assert_eq!(revoke.status(), 200);
    let (_, found) = json_of(check().await.unwrap()).await;
    assert_eq!(
        (found["valid"].clone(), found["status"].clone()),
        (json!(false), json!("revoked"))
    );
    let verified = eventually(WAIT, "the check in the outbox", || async {
        let found = outbox(&app, id, "certificate.verified").await;
        (!found.is_empty()).then_some(found)
    })
    .await;
    assert_eq!(verified.len(), 1, "four checks of one visitor: one event");
    assert_eq!(verified[0]["via"], "api");

    let unknown = app
        .client
        .get(app.url("/verify/cert_nope"))
        .send()
        .await
        .unwrap();
    expect_error(unknown, 404, "not_found").await;
    // Limited per address: past 300 a minute, 429 with Retry-After.
    let mut limited = None;
    for _ in 0..400 {
        let answer = check().await.unwrap();
        if answer.status() == 429 {
            limited = Some(answer);
            break;
        }
    }
    let limited = limited.expect("the checks are limited");
    assert!(limited.headers().get("retry-after").is_some());
    expect_error(limited, 429, "rate_limited").await;
}
on_both_databases!(
    a_check_is_open_shows_the_standing_only_and_counts_once,
    super::a_check_is_open_shows_the_standing_only_and_counts_once
);
