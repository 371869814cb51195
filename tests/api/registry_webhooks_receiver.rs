//! What the webhook tests share: a real receiver on 127.0.0.1 that
//! records every request and answers by its path, an independent check of
//! the Standard Webhooks signature (`hmac` and `sha2` directly, not the
//! server's code), a registry allowed to reach loopback, and waiting on a
//! condition with a deadline.
//!
//! Receiver paths: `/ok` answers 204; `/fail` 500; `/hang` never answers;
//! `/late` answers 200 after `LATE`; `/slow` 204 after 300 ms; `/flaky`
//! answers 500 to the first
//! request of each `webhook-id` and 204 after.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use signet::config::Config;

use crate::registry_helpers::{json_of, spawn_registry_with_templates_and, Db, RegistryApp};

/// The attempt timeout of these tests' registries.
pub const TIMEOUT_MS: u64 = 1000;
/// How long `/late` waits before its 200: past the timeout.
pub const LATE: Duration = Duration::from_millis(TIMEOUT_MS + 1500);

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A receiver listening on `base` (`http://127.0.0.1:<port>`).
#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    log: Arc<Mutex<Vec<Received>>>,
}

async fn receive(
    State(log): State<Arc<Mutex<Vec<Received>>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let received = Received {
        path: uri.path().to_owned(),
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
        at: Instant::now(),
    };
    let path = received.path.clone();
    let earlier = {
        let mut log = log.lock().unwrap();
        let earlier = log
            .iter()
            .filter(|r| r.id == received.id && r.path == received.path)
            .count();
        log.push(received);
        earlier
    };
    match path.as_str() {
        "/fail" => StatusCode::INTERNAL_SERVER_ERROR,
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            StatusCode::NO_CONTENT
        }
        "/late" => {
            tokio::time::sleep(LATE).await;
            StatusCode::OK
        }
        "/flaky" if earlier == 0 => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::NO_CONTENT,
    }
}

impl Receiver {
    pub async fn start() -> Receiver {
        let log = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .fallback(post(receive))
            .with_state(Arc::clone(&log));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { base, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every request so far to `path`.
    pub fn at(&self, path: &str) -> Vec<Received> {
        let log = self.log.lock().unwrap();
        log.iter().filter(|r| r.path == path).cloned().collect()
    }
}

/// Whether `received` carries a valid signature by `secret`, computed
/// here from the specification.
pub fn signed_by(received: &Received, secret: &str) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", received.id, received.timestamp).as_bytes());
    mac.update(&received.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    received.signature == expected
}

/// A registry with templates whose webhooks may reach loopback, retry
/// after 100 ms (three retries) and time out after [`TIMEOUT_MS`];
/// `edit` changes the configuration further.
pub async fn spawn_hooks(db: Db, edit: impl FnOnce(&mut Config)) -> RegistryApp {
    spawn_registry_with_templates_and(db, |config| {
        config.webhooks.allow_private_networks = true;
        config.webhooks.timeout_ms = TIMEOUT_MS;
        config.webhooks.retry_delays_ms = vec![100, 100, 100];
        edit(config);
    })
    .await
}

/// Makes an endpoint for `url` and `events`; answers (id, secret).
pub async fn endpoint(
    app: &RegistryApp,
    key: &str,
    url: &str,
    events: &[&str],
) -> (String, String) {
    let body = json!({"url": url, "events": events, "description": "test receiver"});
    let (status, made) = json_of(app.post_json("/webhook_endpoints", key, &body).await).await;
    assert_eq!(status, 201, "{made}");
    (
        made["id"].as_str().unwrap().to_owned(),
        made["secret"].as_str().unwrap().to_owned(),
    )
}

/// Polls `probe` every 20 ms until it answers `Some`, failing with `what`
/// after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < until, "not within {deadline:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The endpoint's attempts as `GET …/deliveries` lists them, oldest first.
pub async fn attempts(app: &RegistryApp, key: &str, endpoint: &str) -> Vec<Value> {
    let (status, list) = json_of(
        app.get(
            &format!("/webhook_endpoints/{endpoint}/deliveries?limit=100"),
            key,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    let mut data = list["data"].as_array().unwrap().clone();
    data.reverse();
    data
}

/// Requests per `webhook-id`.
pub fn by_id(received: &[Received]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in received {
        *counts.entry(r.id.clone()).or_insert(0) += 1;
    }
    counts
}
