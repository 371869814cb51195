//! Webhook fan-out on SQLite (in a temporary folder) to a receiver on
//! loopback that checks every signature with its own HMAC:
//!
//! 1. throughput: 10,000 events committed at once (as a batch of
//!    certificate changes would leave them in the outbox), then the time
//!    until the receiver has accepted all 10,000 deliveries;
//! 2. latency: 200 events committed one at a time, each waited for, from
//!    the commit to the receiver seeing its first attempt; once found by
//!    the worker's poll alone (what a change that pokes nothing gets),
//!    once with `Registry::events_appended` poked after the commit.
//!
//! `cargo bench --bench webhooks` (`-- N` for another number of events)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use signet::config::{Config, UserConfig};
use signet::registry::store::{now_us, NewEvent};
use signet::registry::webhook::endpoint::{NewEndpoint, Owner};
use signet::registry::{Actor, Environment, Registry};

const LATENCY_SAMPLES: usize = 200;
const PER_TRANSACTION: usize = 1000;

/// What the receiver saw: accepted deliveries, bad signatures, and when
/// each webhook-id first arrived.
struct Seen {
    key: Vec<u8>,
    accepted: AtomicUsize,
    refused: AtomicUsize,
    first: Mutex<std::collections::HashMap<String, Instant>>,
}

async fn receive(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&seen.key) else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&body);
    if signature != format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())) {
        seen.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::BAD_REQUEST;
    }
    if let Ok(mut first) = seen.first.lock() {
        first.entry(id.to_owned()).or_insert(at);
    }
    seen.accepted.fetch_add(1, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}

fn percentile(times: &mut [Duration], p: f64) -> Duration {
    times.sort_unstable();
    times[((times.len() - 1) as f64 * p) as usize]
}

async fn append(registry: &Registry, n: usize) -> Vec<String> {
    let store = &registry.store;
    let mut ids = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let count = left.min(PER_TRANSACTION);
        let mut tx = store.begin().await.expect("a transaction");
        let now = now_us();
        for _ in 0..count {
            let event = NewEvent {
                account_id: "bench",
                livemode: true,
                kind: "certificate.issued",
                certificate_id: Some("cert_bench"),
                data: serde_json::json!({"status": "issued", "changes": {}}),
            };
            ids.push(
                store
                    .append_event(&mut *tx, &event, now)
                    .await
                    .expect("appended"),
            );
        }
        tx.commit().await.expect("committed");
        left -= count;
    }
    ids
}

async fn wait_for(what: &str, bound: Duration, done: impl Fn() -> bool) {
    let until = Instant::now() + bound;
    while !done() {
        assert!(Instant::now() < until, "{what} not within {bound:?}");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

fn main() {
    let total: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let data = tempfile::tempdir().expect("a folder");
    let mut config = Config {
        data_dir: data.path().to_owned(),
        users: vec![UserConfig {
            id: "bench".into(),
            secrets: vec!["a bench secret of more than thirty-two bytes".into()],
            ..UserConfig::default()
        }],
        ..Config::default()
    };
    config.webhooks.allow_private_networks = true;
    runtime.block_on(async {
        let registry = Registry::open(&config).await.expect("registry opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let url = format!("http://{}/hook", listener.local_addr().expect("an address"));
        let owner = Owner {
            account_id: "bench",
            environment: Environment::Live,
        };
        let new = NewEndpoint {
            url,
            events: vec!["*".into()],
            description: None,
        };
        let endpoint = registry
            .create_endpoint(owner, new, &Actor::cli(), None)
            .await
            .expect("an endpoint");
        let key = STANDARD
            .decode(endpoint.secret.trim_start_matches("whsec_"))
            .expect("a key");
        let seen = Arc::new(Seen {
            key,
            accepted: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            first: Mutex::default(),
        });
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(Arc::clone(&seen));
        tokio::spawn(async move { axum::serve(listener, app).await });

        let written = Instant::now();
        append(&registry, total).await;
        let started = Instant::now();
        println!("{total} events committed in {:.1?}", started - written);
        registry.events_appended();
        wait_for("every delivery", Duration::from_secs(600), || {
            seen.accepted.load(Ordering::SeqCst) >= total
        })
        .await;
        let took = started.elapsed();
        println!(
            "fan-out: {total} deliveries in {took:.2?}: {:.0} deliveries/s, {} refused signatures",
            total as f64 / took.as_secs_f64(),
            seen.refused.load(Ordering::SeqCst)
        );

        for poke in [false, true] {
            let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
            for _ in 0..LATENCY_SAMPLES {
                let ids = append(&registry, 1).await;
                let committed = Instant::now();
                if poke {
                    registry.events_appended();
                }
                let id = ids[0].clone();
                wait_for("a delivery", Duration::from_secs(30), || {
                    seen.first
                        .lock()
                        .map(|f| f.contains_key(&id))
                        .unwrap_or(false)
                })
                .await;
                let at = seen.first.lock().expect("the map")[&id];
                latencies.push(at.saturating_duration_since(committed));
            }
            println!(
                "change to first attempt ({}): p50 {:.1?}, p99 {:.1?}",
                if poke { "poked" } else { "poll only" },
                percentile(&mut latencies, 0.5),
                percentile(&mut latencies, 0.99)
            );
        }
    });
}
