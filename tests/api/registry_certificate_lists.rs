//! Certificate lists: newest first, paged by cursor so that certificates
//! issued while a client pages never make it skip or repeat one, and
//! filtered by status (expiry included), template, e-mail and time. Each
//! test runs on SQLite and on PostgreSQL.

use std::collections::HashSet;

use serde_json::{json, Value};
use signet::registry::Environment;

use crate::helpers::USER;
use crate::on_both_databases;
use crate::registry_certificates::{issue, maria};
use crate::registry_helpers::{expect_error, json_of, spawn_registry_with_templates, Db};

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn paging_while_others_issue_never_skips_or_repeats_a_certificate(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let mut issued = Vec::new();
    for _ in 0..12 {
        issued.push(
            issue(&app, &key, &maria()).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    issued.reverse();

    let body = maria();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/certificates?limit=5".to_owned(),
            Some(after) => format!("/certificates?limit=5&starting_after={after}"),
        };
        // Certificates issued between pages, some at once.
        let (page, _, _) = tokio::join!(
            app.get(&path, &key),
            issue(&app, &key, &body),
            issue(&app, &key, &body)
        );
        let (status, page) = json_of(page).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        if page["has_more"] == false {
            assert_eq!(page["next_cursor"], Value::Null);
            break;
        }
        cursor = Some(page["next_cursor"].as_str().unwrap().to_owned());
        assert_eq!(cursor.as_deref(), seen.last().map(String::as_str));
    }
    // Everything from the first page's first on, newest first, once each;
    // later ones were issued after the first page and are not owed.
    let first = seen
        .iter()
        .position(|id| *id == issued[0])
        .expect("the newest of the 12 is listed");
    assert_eq!(seen[first..], issued[..], "{seen:?}");
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        seen.len(),
        "no repeats"
    );

    let error = expect_error(
        app.get("/certificates?limit=0", &key).await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(error["param"], "limit");
    let error = expect_error(
        app.get("/certificates?colour=red", &key).await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(error["param"], "colour");
}
on_both_databases!(
    paging_while_others_issue_never_skips_or_repeats_a_certificate,
    super::paging_while_others_issue_never_skips_or_repeats_a_certificate
);

async fn filters_narrow_the_list_by_status_template_email_and_time(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let kept = issue(&app, &key, &maria()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut anna = maria();
    anna["recipient"]["email"] = json!("anna+1@example.org");
    let suspended = issue(&app, &key, &anna).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.patch_json(
        &format!("/certificates/{suspended}"),
        &key,
        &json!({"status": "suspended"}),
    )
    .await;
    let badge = json!({"template_id": "badge", "recipient": {"name": "Anna"}});
    let revoked = issue(&app, &key, &badge).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post_json(&format!("/certificates/{revoked}/revoke"), &key, &json!({}))
        .await;
    let mut soon = maria();
    soon["expires_at"] = json!(signet::registry::rfc3339(
        signet::registry::store::now_us() + 2_500_000
    ));
    let expiring = issue(&app, &key, &soon).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let app_ref = &app;
    let key_ref = key.as_str();
    let list = move |query: &str| {
        let path = format!("/certificates?{query}");
        let query = query.to_owned();
        let (app, key) = (app_ref, key_ref);
        async move {
            let (status, list) = json_of(app.get(&path, key).await).await;
            assert_eq!(status, 200, "{query}: {list}");
            ids(&list)
        }
    };
    assert_eq!(
        list("status=issued").await,
        [expiring.clone(), kept.clone()]
    );
    assert_eq!(list("status=suspended").await, vec![suspended.clone()]);
    assert_eq!(list("status=revoked").await, vec![revoked.clone()]);
    assert_eq!(list("template_id=badge").await, vec![revoked.clone()]);
    assert_eq!(
        list("recipient_email=anna%2B1%40example.org").await,
        vec![suspended.clone()]
    );
    assert_eq!(
        list("created_after=2000-01-01T00:00:00Z&status=suspended").await,
        vec![suspended.clone()]
    );
    assert!(list("created_before=2000-01-01T00:00:00Z").await.is_empty());
    assert!(list("created_after=2999-01-01T00:00:00Z").await.is_empty());
    assert!(list("status=expired").await.is_empty());
    let error = expect_error(
        app.get("/certificates?status=lost", &key).await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(error["param"], "status");
    let error = expect_error(
        app.get("/certificates?created_after=yesterday", &key).await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(error["param"], "created_after");

    // Once its time passes, a certificate shows `expired`, in lists too:
    // polled until it does (the clock, not a guess, decides), within a
    // bound far past its expiry.
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, cert) = json_of(app.get(&format!("/certificates/{expiring}"), &key).await).await;
        if cert["status"] == "expired" {
            break;
        }
        assert_eq!(cert["status"], "issued", "{cert}");
        assert!(std::time::Instant::now() < give_up, "never expired: {cert}");
        // A second apart: the key's plan allows 60 requests a minute.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    assert_eq!(list("status=expired").await, vec![expiring.clone()]);
    assert_eq!(list("status=issued").await, vec![kept.clone()]);
}
on_both_databases!(
    filters_narrow_the_list_by_status_template_email_and_time,
    super::filters_narrow_the_list_by_status_template_email_and_time
);
