//! HTTP: the router, the connection loop with its timeouts, and graceful
//! shutdown. Only this module knows status codes and headers.

mod error;
mod first_line;
mod image;
mod state;

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, Method};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{Any, CorsLayer};

pub use error::{escape, header_value, AppError};
pub use state::AppState;

/// How long open connections get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The routes: `/healthz`, and images on every other path.
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
    Router::new()
        .route("/healthz", get(health))
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

/// For load balancers, with the counters operators and tests watch.
async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let stats = state.pool.stats();
    let (entries, bytes) = state.cache.usage();
    let (bases, base_bytes) = state.incremental.usage();
    Json(serde_json::json!({
        "status": "ok",
        "renders_running": stats.running.load(Ordering::SeqCst),
        "renders_waiting": stats.waiting.load(Ordering::SeqCst),
        "renders_started": stats.started.load(Ordering::SeqCst),
        "cache_entries": entries,
        "cache_bytes": bytes,
        "base_entries": bases,
        "base_bytes": base_bytes,
        "font_faces": state.renderer.font_faces(),
    }))
}

/// Serves `listener` until `shutdown` resolves, then lets open connections
/// finish for a bounded time.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let header_timeout = Duration::from_millis(state.config.header_read_timeout_ms);
    let max_url_bytes = state.config.max_url_bytes;
    let app = app(state);
    let graceful = GracefulShutdown::new();
    // axum::serve sets no header-read timeout; hyper's builder with a
    // timer does, so a client that trickles its headers is cut off.
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The read buffer bounds a request's head: room for the longest
    // accepted URL plus ordinary headers, not hyper's default of ~400 KiB.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size((max_url_bytes + 32 * 1024).max(64 * 1024));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let service = TowerToHyperService::new(app.clone());
                    let builder = builder.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        let io = match first_line::check(stream, max_url_bytes, header_timeout).await {
                            first_line::FirstLine::Serve(io) => io,
                            first_line::FirstLine::Done => return,
                        };
                        let connection = builder.serve_connection(TokioIo::new(io), service);
                        if let Err(e) = watcher.watch(connection).await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors, most likely: back off rather
                    // than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: waiting for open connections");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
    }
    Ok(())
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
