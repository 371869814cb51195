//! Batches against crashes and a second process, with the real binary:
//! `kill -9` in the middle of a 5,000-row batch, and two processes on one
//! PostgreSQL sharing a batch until one of them is killed. Either way the
//! batch ends with every row issued exactly once: 5,000 certificates,
//! each with one audit row and one outbox event.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{CERT, SECRET, USER};
use crate::on_both_databases;
use crate::registry_helpers::{new_postgres_database, Db};
use crate::registry_process::{Server, ServerSetup, PUBLIC_BASE};
use crate::registry_storm::{client, list_all, outbox, sqlite_read_only};

/// Rows in the batch.
const ROWS: usize = 5_000;
/// How long the batch may take, a takeover of the killed process's
/// claims (seconds after its heartbeat stops) included.
const DONE_BOUND: Duration = Duration::from_secs(180);

fn setup(database_url: Option<&str>) -> ServerSetup {
    ServerSetup::with_users(
        database_url,
        &format!(
            "[[users]]\nid = \"{USER}\"\nsecrets = [\"{SECRET}\"]\nplan = \"custom\"\n\
             rate_limit_per_minute = 1000000\nbatch_size = {ROWS}\n\
             public_base_url = \"{PUBLIC_BASE}\"\n"
        ),
    )
}

/// The batch body: recipient `n` carries `n` in its metadata.
fn body() -> Value {
    let recipients: Vec<Value> = (1..=ROWS)
        .map(|n| {
            json!({"name": format!("Graduate {n}"), "fields": {"course_name": "Class of 2026"},
                   "metadata": {"n": n.to_string()}})
        })
        .collect();
    json!({"template_id": CERT, "recipients": recipients})
}

/// The batch as `server` reads it now.
async fn read(http: &reqwest::Client, server: &Server, key: &str, id: &str) -> Value {
    let response = http
        .get(server.url(&format!("/batches/{id}")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

/// Accepts the batch on `server`, waits until some rows are issued, and
/// kills it while others are still pending. Answers the batch id.
async fn kill_midway(http: &reqwest::Client, server: &mut Server, key: &str) -> String {
    let response = http
        .post(server.url("/certificates/batch"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let batch: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    let id = batch["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    loop {
        let now = read(http, server, key, &id).await;
        let done = now["completed"].as_u64().unwrap();
        if done > 0 {
            server.kill();
            assert!(done < ROWS as u64, "the kill came after the last row");
            return id;
        }
        assert!(
            started.elapsed() < DONE_BOUND,
            "no row issued:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits for `server` to finish batch `id`; answers it.
async fn finished(http: &reqwest::Client, server: &Server, key: &str, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let batch = read(http, server, key, id).await;
        if batch["status"] == "completed" {
            return batch;
        }
        assert!(
            started.elapsed() < DONE_BOUND,
            "unfinished: {} of {ROWS}\n{}",
            batch["completed"],
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every row issued once: 5,000 certificates, one per recipient, each
/// audited once and with one `certificate.issued` event; one
/// `batch.completed`.
async fn exactly_once(
    http: &reqwest::Client,
    server: &Server,
    key: &str,
    batch: &Value,
    database: &str,
) {
    assert_eq!(
        (&batch["completed"], &batch["failed"], &batch["total"]),
        (&json!(ROWS), &json!(0), &json!(ROWS))
    );
    let listed = list_all(http, &server.url("/certificates"), key).await;
    assert_eq!(listed.len(), ROWS);
    let numbers: HashSet<&str> = listed
        .iter()
        .map(|c| c["metadata"]["n"].as_str().unwrap())
        .collect();
    assert_eq!(numbers.len(), ROWS, "a recipient has two certificates");
    let ids: HashSet<&str> = listed.iter().map(|c| c["id"].as_str().unwrap()).collect();
    let audit = list_all(http, &server.url("/audit_events"), key).await;
    let mut audited: HashMap<&str, usize> = HashMap::new();
    for event in audit.iter().filter(|e| e["action"] == "certificate.create") {
        *audited
            .entry(event["target"].as_str().unwrap())
            .or_insert(0) += 1;
    }
    assert_eq!(audited, ids.iter().map(|id| (*id, 1)).collect());
    let events = outbox(database).await;
    let issued: HashMap<&str, usize> = events
        .iter()
        .filter(|((_, kind), _)| kind == "certificate.issued")
        .map(|((cert, _), n)| (cert.as_str(), *n))
        .collect();
    assert_eq!(issued, ids.iter().map(|id| (*id, 1)).collect());
    assert_eq!(
        events.get(&(String::new(), "batch.completed".into())),
        Some(&1)
    );
}

async fn a_batch_killed_midway_resumes_and_issues_each_row_once(db: Db) {
    let database_url = match db {
        Db::Sqlite => None,
        Db::Postgres => Some(new_postgres_database()),
    };
    let setup = setup(database_url.as_deref());
    let key = setup.create_key(&["*"]);
    let http = client();
    let mut server = setup.start("info", &[]);
    let id = kill_midway(&http, &mut server, &key).await;

    let server = setup.start("info", &[]);
    let batch = finished(&http, &server, &key, &id).await;
    let database = database_url.unwrap_or_else(|| sqlite_read_only(&setup.sqlite_file()));
    exactly_once(&http, &server, &key, &batch, &database).await;
}
on_both_databases!(
    a_batch_killed_midway_resumes_and_issues_each_row_once,
    super::a_batch_killed_midway_resumes_and_issues_each_row_once
);

/// The processes that worked the batch's rows, as its rows record them.
async fn workers(database_url: &str, batch: &str) -> usize {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await
        .unwrap();
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT claimed_by) FROM batch_items WHERE batch_id = $1",
    )
    .bind(batch)
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    usize::try_from(count).unwrap()
}

#[tokio::test]
async fn two_processes_on_one_postgresql_share_a_batch_and_survive_one_killed() {
    let database_url = new_postgres_database();
    let first = setup(Some(&database_url));
    let second = setup(Some(&database_url));
    let key = first.create_key(&["*"]);
    let http = client();
    let mut one = first.start("info", &[]);
    let two = second.start("info", &[]);
    let id = kill_midway(&http, &mut one, &key).await;
    // The second finishes the batch: the rows the first had claimed pass
    // to it once the first's heartbeat stops.
    let batch = finished(&http, &two, &key, &id).await;
    exactly_once(&http, &two, &key, &batch, &database_url).await;
    assert_eq!(workers(&database_url, &id).await, 2);
}
