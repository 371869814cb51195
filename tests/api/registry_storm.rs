//! A storm of certificate creates for the fault tests: each logical
//! create has its own body and `Idempotency-Key`, each client its own
//! keep-alive connection, and every answer is kept as it came (an
//! object, a refusal, or nothing at all when the connection failed).
//! Also what the tests read back afterwards: whole lists, and the outbox
//! straight from the database (no API shows it).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::CERT;

/// Concurrent clients of a storm.
pub const CLIENTS: usize = 32;

/// Past this a request counts as hanging; the tests' own bounds on an
/// answer are tighter.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Most pages a list is read through: far past any storm's size.
const MAX_PAGES: usize = 200;

/// One logical create: what a client means to issue once.
#[derive(Debug, Clone)]
pub struct Create {
    /// Names the create in the certificate's metadata (`op`), so every
    /// stored certificate tells which request made it.
    pub op: String,
    pub idempotency_key: String,
    pub body: Value,
}

impl Create {
    /// The `n`th create of client `client` in the storm `run`.
    pub fn new(run: &str, client: usize, n: usize) -> Create {
        let op = format!("c{client:02}-{n:04}");
        Create {
            idempotency_key: format!("{run}-{op}"),
            body: json!({
                "template_id": CERT,
                "recipient": {"name": format!("Maria Andersson {op}"), "email": format!("{op}@example.org")},
                "fields": {"course_name": "Advanced Project Management"},
                "metadata": {"op": op},
            }),
            op,
        }
    }
}

/// What came back for one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `201` with its object; `replayed` when `Idempotent-Replayed: true`.
    Created { object: Value, replayed: bool },
    /// Any other status, with the error's code and `Retry-After`.
    Refused {
        status: u16,
        code: Option<String>,
        retry_after: Option<String>,
    },
    /// No answer: the connection was refused, cut or timed out.
    Lost(String),
}

/// A client with a keep-alive connection of its own.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap()
}

/// Sends `create` to `url` (`…/v1/certificates`); the answer and how
/// long it took.
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    create: &Create,
) -> (Answer, Duration) {
    let started = Instant::now();
    let sent = client
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("idempotency-key", &create.idempotency_key)
        .body(create.body.to_string())
        .send()
        .await;
    let answer = match sent {
        Err(error) => Answer::Lost(error.to_string()),
        Ok(response) => {
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let replayed = header("idempotent-replayed").is_some_and(|v| v == "true");
            let retry_after = header("retry-after");
            match response.text().await {
                Err(error) => Answer::Lost(error.to_string()),
                Ok(text) => {
                    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if status == 201 {
                        Answer::Created {
                            object: body,
                            replayed,
                        }
                    } else {
                        Answer::Refused {
                            status,
                            code: body["error"]["code"].as_str().map(str::to_owned),
                            retry_after,
                        }
                    }
                }
            }
        }
    };
    (answer, started.elapsed())
}

/// Every object of the list at `url` (`…/v1/certificates`), newest
/// first, read page by page.
pub async fn list_all(client: &reqwest::Client, url: &str, key: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page_url = match &cursor {
            None => format!("{url}?limit=100"),
            Some(after) => format!("{url}?limit=100&starting_after={after}"),
        };
        let response = client.get(&page_url).bearer_auth(key).send().await.unwrap();
        assert_eq!(response.status(), 200, "{page_url}");
        let page: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        if page["has_more"] != true {
            return all;
        }
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    panic!("{url} has more than {MAX_PAGES} pages");
}

/// The outbox's events by certificate id and type, read from the
/// database itself: `database_url`, or the SQLite file opened read-only.
pub async fn outbox(database_url: &str) -> HashMap<(String, String), usize> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await
        .expect("the test reads the database");
    let rows: Vec<(Option<String>, String)> =
        sqlx::query_as("SELECT certificate_id, type FROM events")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    let mut counts = HashMap::new();
    for (certificate, kind) in rows {
        *counts
            .entry((certificate.unwrap_or_default(), kind))
            .or_insert(0) += 1;
    }
    counts
}

/// The read-only URL of a SQLite file, for [`outbox`].
pub fn sqlite_read_only(file: &std::path::Path) -> String {
    format!("sqlite://{}?mode=ro", file.display())
}
