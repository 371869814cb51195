//! The accept loop and each connection's life: hyper's settings, the
//! guard in front of it, and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use super::guard::Guard;
use super::head::{self, HeadLimits};
use super::state::AppState;

/// How long open connections get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The pause after a failed `accept`.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `listener` until `shutdown` resolves, then lets open connections
/// finish for a bounded time.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let config = Arc::clone(&state.config);
    let stats = Arc::clone(&state.connections);
    let limits = HeadLimits {
        max_url_bytes: config.max_url_bytes,
    };
    let app = super::app(state);
    let graceful = GracefulShutdown::new();
    // axum::serve sets no header-read timeout; hyper's builder with a
    // timer does, so a client that trickles its headers is cut off.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(config.header_read_timeout_ms))
        // The guard ends hyper's input at a refused head; hyper must still
        // finish the responses before it rather than drop them.
        .half_close(true)
        // The guard's bounds are the tighter ones: one more field for the
        // `connection: close` it may add, and a read buffer a little larger
        // than any head it passes.
        .max_headers(head::MAX_HEADERS + 1)
        .max_buf_size(limits.hyper_buf_size());
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let io = Guard::new(stream, limits, Arc::clone(&stats));
                let connection = builder
                    .serve_connection(TokioIo::new(io), TowerToHyperService::new(app.clone()));
                let watched = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = watched.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors, most likely: back off rather
                // than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
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
