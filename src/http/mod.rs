//! HTTP: the router, the connection loop with its timeouts, and graceful
//! shutdown. Only this module knows status codes and headers.
//!
//! Layout: `server` accepts and runs connections; `guard` stands between
//! each socket and hyper (checked heads, write timeout); `head` holds the
//! rules a head is checked by; `image` is the signed-URL handler and
//! `certificate` the one of a certificate's images; `error` turns every
//! failure, from any of them, into a response.

mod certificate;
mod error;
mod guard;
mod head;
mod image;
mod preview;
mod server;
mod state;

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, HeaderMap, Method};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{Any, CorsLayer};

pub use error::{escape, header_value, AppError};
pub use head::HeadError;
pub use server::serve;
pub use state::{AppState, ConnectionStats};

/// The routes: `/healthz`, the registry under `/v1` when there is one,
/// and images on every other path.
pub fn app(state: AppState) -> Router {
    // Any origin gets the same bytes, so `Vary: Origin` would only split
    // CDN caches.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .vary([])
        .allow_methods([Method::GET, Method::HEAD])
        .expose_headers([
            header::ETAG,
            "x-stencil-error".parse().expect("valid header name"),
            "x-stencil-warning".parse().expect("valid header name"),
            "x-stencil-cache".parse().expect("valid header name"),
            "x-stencil-fit".parse().expect("valid header name"),
            "server-timing".parse().expect("valid header name"),
        ]);
    let mut router = Router::new()
        // A method the route does not take gets the mapped 405, not
        // axum's bare one.
        .route("/healthz", get(health).fallback(method_not_allowed))
        // A certificate's images, drawn from its record; without a
        // registry every id is unknown.
        .route(
            "/c/{*rest}",
            get(certificate::certificate).fallback(certificate::certificate),
        );
    // The registry's API is its own router, answering in its own JSON
    // errors; the image path below never sees a `/v1` request.
    if let Some(registry) = &state.registry {
        router = router.nest("/v1", crate::registry::http::router(registry.clone()));
    }
    router
        .fallback(image::image)
        .with_state(state)
        .layer(CatchPanicLayer::custom(panicked))
        .layer(cors)
}

/// A bug in a handler still answers in the protocol's terms.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    AppError::Panicked.text_response()
}

async fn method_not_allowed(State(state): State<AppState>, headers: HeaderMap) -> Response {
    AppError::MethodNotAllowed
        .into_response_for(&state, &headers)
        .await
}

/// For load balancers, with the counters operators and tests watch.
async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let stats = state.pool.stats();
    let (entries, bytes) = state.cache.usage();
    let (bases, base_bytes) = state.incremental.usage();
    let (memory_leased, memory_budget) = state.renderer.memory();
    Json(serde_json::json!({
        "status": "ok",
        "renders_running": stats.running.load(Ordering::SeqCst),
        "renders_waiting": stats.waiting.load(Ordering::SeqCst),
        "renders_started": stats.started.load(Ordering::SeqCst),
        "cache_entries": entries,
        "cache_bytes": bytes,
        "base_entries": bases,
        "base_bytes": base_bytes,
        "render_memory_leased": memory_leased,
        "render_memory_bytes": memory_budget,
        "font_faces": state.renderer.font_faces(),
        "connections_open": state.connections.open.load(Ordering::SeqCst),
        "connections_accepted": state.connections.accepted.load(Ordering::SeqCst),
        "write_timeouts": state.connections.write_timeouts.load(Ordering::SeqCst),
        "heads_refused": state.connections.heads_refused.load(Ordering::SeqCst),
    }))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
