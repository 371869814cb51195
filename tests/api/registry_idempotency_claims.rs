//! The claims behind `Idempotency-Key`: ten thousand retries make one
//! certificate; a claim still held answers `idempotency_key_in_use`; one
//! abandoned by a crash is taken over, and its first holder can then no
//! longer commit; a key past its 24 hours is new again. Claims are made
//! at chosen times through the store, so no test waits for a clock. On
//! SQLite and PostgreSQL.

use std::sync::atomic::AtomicBool;

use serde_json::json;
use signet::registry::certificate::{NewCertificate, Owner};
use signet::registry::store::{
    fingerprint, now_us, CertificateRecord, Claim, Claimed, IdempotencyKey, KeptAnswer, Reply,
    ABANDONED_AFTER_US, KEPT_FOR_US,
};
use signet::registry::{Actor, Environment, RegistryError};

use crate::helpers::{CERT, USER};
use crate::on_both_databases;
use crate::registry_certificates::maria;
use crate::registry_helpers::{
    expect_error, spawn_registry_with_templates, spawn_registry_with_templates_and, Db, RegistryApp,
};
use crate::registry_idempotency::{burst, certificate_ids, post, read, the_one_that_ran};

async fn ten_thousand_retries_of_one_request_issue_one_certificate(db: Db) {
    // A plan whose limit ten thousand requests in a minute stay under.
    let app = spawn_registry_with_templates_and(db, |config| {
        let user = &mut config.users[0];
        user.plan = Some("custom".into());
        user.rate_limit_per_minute = Some(1_000_000);
        user.batch_size = Some(100);
    })
    .await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let answers = burst(&app, &key, "ten-thousand", &maria(), 10_000, 16).await;
    assert_eq!(answers.len(), 10_000);
    let first = the_one_that_ran(answers);
    let id = first["id"].as_str().unwrap();
    assert_eq!(certificate_ids(&app, &key).await, [id]);
    assert_eq!(app.registry.store.events_of(id).await.unwrap().len(), 1);
}
on_both_databases!(
    ten_thousand_retries_of_one_request_issue_one_certificate,
    super::ten_thousand_retries_of_one_request_issue_one_certificate
);

/// `USER`'s live key `idem`, as the server claims it.
fn live(idem: &str) -> IdempotencyKey {
    IdempotencyKey {
        account_id: USER.into(),
        environment: Environment::Live,
        key: idem.into(),
    }
}

/// The fingerprint of `POST /v1/certificates` with Maria's body.
fn maria_print() -> String {
    fingerprint("POST", "/certificates", maria().to_string().as_bytes())
}

async fn claim(app: &RegistryApp, key: &IdempotencyKey, print: &str, at: i64) -> Claimed {
    app.registry
        .store
        .claim_idempotency(key, print, at)
        .await
        .unwrap()
}

fn fresh(claimed: Claimed) -> Claim {
    match claimed {
        Claimed::Fresh(claim) => claim,
        other => panic!("not claimed: {other:?}"),
    }
}

async fn a_claim_still_held_is_in_use_until_released(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let held = fresh(claim(&app, &live("held"), &maria_print(), now_us()).await);
    let busy = post(&app, "/certificates", &key, "held", &maria()).await;
    expect_error(busy, 409, "idempotency_key_in_use").await;
    let mut other = maria();
    other["recipient"]["name"] = json!("Anna Svensson");
    let reused = post(&app, "/certificates", &key, "held", &other).await;
    expect_error(reused, 409, "idempotency_key_reused").await;
    assert!(certificate_ids(&app, &key).await.is_empty());
    // A failure that says nothing of the request gives the key up.
    assert!(app.registry.store.release_claim(&held).await.unwrap());
    let answer = read(post(&app, "/certificates", &key, "held", &maria()).await).await;
    assert_eq!((answer.status, answer.replayed), (201, false));
}
on_both_databases!(
    a_claim_still_held_is_in_use_until_released,
    super::a_claim_still_held_is_in_use_until_released
);

async fn an_abandoned_claim_is_taken_over_and_its_holder_can_no_longer_commit(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    // A request claimed the key, then its server was killed (or it
    // stalled) for longer than a claim is held.
    let crashed_at = now_us() - ABANDONED_AFTER_US - 1;
    let stale = fresh(claim(&app, &live("crashed"), &maria_print(), crashed_at).await);
    let retry = read(post(&app, "/certificates", &key, "crashed", &maria()).await).await;
    assert_eq!((retry.status, retry.replayed), (201, false), "{retry:?}");

    // The first holder, still alive after all, cannot commit its
    // certificate: its claim is another's now.
    let kept = AtomicBool::new(false);
    let answer = |_: &CertificateRecord| KeptAnswer {
        status: 201,
        body: "{}".into(),
    };
    let reply = Reply {
        claim: &stale,
        answer: &answer,
        kept: &kept,
    };
    let new = NewCertificate {
        template_id: CERT.into(),
        recipient_name: "Maria Andersson".into(),
        recipient_email: None,
        fields: [(
            "course_name".to_owned(),
            "Advanced Project Management".to_owned(),
        )]
        .into(),
        metadata: Default::default(),
        expires_at: None,
        send_email: false,
    };
    let owner = Owner {
        account_id: USER,
        environment: Environment::Live,
    };
    let late = app
        .registry
        .issue_certificate(owner, new, &Actor::cli(), Some(&reply))
        .await;
    assert!(
        matches!(late, Err(RegistryError::Unavailable(_))),
        "{late:?}"
    );
    let id = retry.body["id"].as_str().unwrap();
    assert_eq!(certificate_ids(&app, &key).await, [id]);
    assert!(!app.registry.store.release_claim(&stale).await.unwrap());
    let again = read(post(&app, "/certificates", &key, "crashed", &maria()).await).await;
    assert_eq!((again.replayed, &again.body), (true, &retry.body));
}
on_both_databases!(
    an_abandoned_claim_is_taken_over_and_its_holder_can_no_longer_commit,
    super::an_abandoned_claim_is_taken_over_and_its_holder_can_no_longer_commit
);

async fn a_key_past_its_24_hours_is_new_again(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let now = now_us();
    let key = live("yesterday");
    let day_ago = now - KEPT_FOR_US - 1;
    let first = fresh(claim(&app, &key, "first request", day_ago).await);
    let answer = KeptAnswer {
        status: 201,
        body: r#"{"id":"cert_x"}"#.into(),
    };
    assert!(app
        .registry
        .store
        .keep_answer(&first, &answer)
        .await
        .unwrap());
    // Within the day the answer is replayed and another request refused.
    match claim(&app, &key, "first request", now - KEPT_FOR_US + 1_000_000).await {
        Claimed::Replay(kept) => assert_eq!(kept, answer),
        other => panic!("{other:?}"),
    }
    let hour_later = day_ago + 3_600_000_000;
    let reused = claim(&app, &key, "another request", hour_later).await;
    assert!(matches!(reused, Claimed::Reused), "{reused:?}");
    // After it, the key is free for any request, and its old answer gone.
    let second = fresh(claim(&app, &key, "another request", now).await);
    assert!(!app
        .registry
        .store
        .keep_answer(&first, &answer)
        .await
        .unwrap());
    assert!(app
        .registry
        .store
        .keep_answer(&second, &answer)
        .await
        .unwrap());
}
on_both_databases!(
    a_key_past_its_24_hours_is_new_again,
    super::a_key_past_its_24_hours_is_new_again
);

async fn a_claim_of_a_process_seen_gone_is_taken_over_at_once(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    // A second process on the same database claims a key and dies: it
    // writes no heartbeat after its last one.
    let other = crate::registry_helpers::spawn_beside(&app).await;
    let print = maria_print();
    let now = now_us();
    let held = other
        .registry
        .store
        .claim_idempotency(&live("crashed"), &print, now)
        .await
        .unwrap();
    assert!(matches!(held, Claimed::Fresh(_)), "{held:?}");
    // While that process is seen alive, the key is in use here…
    assert!(matches!(
        claim(&app, &live("crashed"), &print, now).await,
        Claimed::InUse
    ));
    // …and once its heartbeat is older than the bound, a retry takes the
    // key over, long before the claim's own age would let it.
    let later = now + signet::registry::store::GONE_AFTER_US + 1_000_000;
    assert!(later < now + ABANDONED_AFTER_US);
    let alive = app
        .registry
        .store
        .instance_alive(Some(other.registry.store.instance()), later)
        .await
        .unwrap();
    assert!(!alive, "the other process counts as gone");
    fresh(claim(&app, &live("crashed"), &print, later).await);
}
on_both_databases!(
    a_claim_of_a_process_seen_gone_is_taken_over_at_once,
    super::a_claim_of_a_process_seen_gone_is_taken_over_at_once
);
