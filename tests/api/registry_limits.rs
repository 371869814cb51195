//! Per-key rate limits from the account's plan, counted in the database:
//! the headers on every answer, `429` past the limit, and one count for
//! two servers sharing a database. On SQLite and PostgreSQL.
//!
//! Windows are fixed minutes, so a test may cross into a new one between
//! two requests; each test allows for one such crossing instead of
//! assuming a timing.

use signet::registry::Environment;

use crate::helpers::OTHER_USER;
use crate::on_both_databases;
use crate::registry_helpers::{expect_error, spawn_beside, spawn_registry, Db};

fn number(response: &reqwest::Response, name: &str) -> i64 {
    response.headers()[name].to_str().unwrap().parse().unwrap()
}

async fn past_the_plan_s_limit_a_key_is_told_to_wait(db: Db) {
    // OTHER_USER is on a custom plan of 4 requests a minute.
    let app = spawn_registry(db).await;
    let (_, key) = app.key(OTHER_USER, Environment::Live, &["*"]).await;
    let mut previous_remaining = None;
    for _ in 0..(2 * 4 + 1) {
        let answer = app.get("/api_keys", &key).await;
        assert_eq!(number(&answer, "x-ratelimit-limit"), 4);
        let remaining = number(&answer, "x-ratelimit-remaining");
        assert!(number(&answer, "x-ratelimit-reset") > 1_700_000_000);
        if answer.status() == 429 {
            assert_eq!(remaining, 0);
            assert_eq!(
                previous_remaining,
                Some(0),
                "429 only once the window is used up"
            );
            let wait: i64 = answer.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&wait), "{wait}");
            expect_error(answer, 429, "rate_limited").await;
            return;
        }
        assert_eq!(answer.status(), 200);
        previous_remaining = Some(remaining);
    }
    panic!("nine requests at a limit of four were all answered");
}
on_both_databases!(
    past_the_plan_s_limit_a_key_is_told_to_wait,
    super::past_the_plan_s_limit_a_key_is_told_to_wait
);

async fn two_servers_on_one_database_share_a_key_s_count(db: Db) {
    let first = spawn_registry(db).await;
    let second = spawn_beside(&first).await;
    let (_, key) = first.key(OTHER_USER, Environment::Live, &["*"]).await;
    for _ in 0..3 {
        let a = first.get("/api_keys", &key).await;
        let b = second.get("/api_keys", &key).await;
        if number(&a, "x-ratelimit-reset") == number(&b, "x-ratelimit-reset") {
            assert_eq!(
                number(&b, "x-ratelimit-remaining"),
                number(&a, "x-ratelimit-remaining") - 1
            );
            return;
        }
    }
    panic!("three pairs of requests each crossed a minute");
}
on_both_databases!(
    two_servers_on_one_database_share_a_key_s_count,
    super::two_servers_on_one_database_share_a_key_s_count
);

/// Answers without a valid key carry the headers too, counted per client
/// address; past the strangers' limit they are `429`, which slows down
/// guessing keys.
#[tokio::test]
async fn failed_authentications_are_limited_per_address() {
    let app = spawn_registry(Db::Sqlite).await;
    let limit = signet::registry::limiter::STRANGER_LIMIT_PER_MINUTE;
    let mut seen_429 = false;
    // Twice the limit: one crossing into a new window cannot hide it.
    for _ in 0..(2 * limit + 1) {
        let answer = app.get("/certificates", "sk_live_guess").await;
        assert_eq!(number(&answer, "x-ratelimit-limit"), limit);
        assert!(number(&answer, "x-ratelimit-reset") > 1_700_000_000);
        match answer.status().as_u16() {
            401 => assert!(!seen_429 || number(&answer, "x-ratelimit-remaining") > 0),
            429 => {
                seen_429 = true;
                assert_eq!(number(&answer, "x-ratelimit-remaining"), 0);
                assert!(answer.headers().contains_key("retry-after"));
                expect_error(answer, 429, "rate_limited").await;
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(seen_429, "never limited");
}
