//! The accept loop and each connection's life: a bound on connections,
//! the file-descriptor limit, hyper's settings, and graceful shutdown.
//!
//! At most `max_connections` are served at once. When all are taken the
//! loop stops accepting, so new clients wait in the kernel's listen queue
//! and are served as soon as one closes, instead of the process running
//! out of descriptors and failing every `accept` (which is logged at most
//! once per [`ACCEPT_LOG_EVERY`], with a count of the ones not logged).
//! A connection ends when its client closes it, when it sends no complete
//! head for `header_read_timeout_ms` (idle keep-alive included: hyper
//! restarts that timer before every head), or when a response waits
//! `write_timeout_ms` for the client to read any of it (see `guard`).

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::guard::Guard;
use super::head::{self, HeadLimits};
use super::state::{AppState, ConnectionStats};

/// How long open connections get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The most often a failing `accept` is logged.
pub const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);
/// The pause after a failed `accept`, so that running out of descriptors
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Descriptors kept for everything but connections (templates, fonts, the
/// listener), at most.
const FD_RESERVE: u64 = 64;

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
    let write_timeout = Duration::from_millis(config.write_timeout_ms.max(1));
    let slots = Arc::new(Semaphore::new(connection_cap(config.max_connections)));
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
    let mut accept_errors = Throttle::default();
    tokio::pin!(shutdown);
    loop {
        // A free slot first: while none is, nothing is accepted.
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let open = Open::new(permit, Arc::clone(&stats));
                let io = guarded(stream, limits, write_timeout, &stats);
                // The peer's address, for the registry's audit log.
                let service = tower::Layer::layer(
                    &axum::Extension(axum::extract::ConnectInfo(peer)),
                    app.clone(),
                );
                let connection =
                    builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
                let watched = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = watched.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    drop(open);
                });
            }
            Err(e) => {
                if let Some(unlogged) = accept_errors.tick(Instant::now()) {
                    tracing::warn!(error = %e, unlogged, "accept failed");
                }
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

fn guarded(
    stream: TcpStream,
    limits: HeadLimits,
    write_timeout: Duration,
    stats: &Arc<ConnectionStats>,
) -> Guard {
    let _ = stream.set_nodelay(true);
    Guard::new(stream, limits, write_timeout, Arc::clone(stats))
}

/// A connection's slot and its place in the counters, given back however
/// the connection ends.
struct Open {
    _permit: OwnedSemaphorePermit,
    stats: Arc<ConnectionStats>,
}

impl Open {
    fn new(permit: OwnedSemaphorePermit, stats: Arc<ConnectionStats>) -> Open {
        stats.open.fetch_add(1, Ordering::SeqCst);
        stats.accepted.fetch_add(1, Ordering::SeqCst);
        Open {
            _permit: permit,
            stats,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The configured cap, lowered to what the descriptor limit allows once
/// the limit is raised as far as it goes.
fn connection_cap(configured: usize) -> usize {
    let configured = configured.max(1);
    let Some(files) = raise_fd_limit() else {
        return configured;
    };
    let room = files.saturating_sub((files / 4).min(FD_RESERVE)).max(1);
    match usize::try_from(room) {
        Ok(room) if room < configured => {
            tracing::warn!(
                configured,
                room,
                files,
                "max_connections is above what the open-file limit allows; serving {room} at once"
            );
            room
        }
        _ => configured,
    }
}

/// Raises the soft limit on open files to the hard limit and returns the
/// limit in force (`None` where it cannot be read).
#[cfg(unix)]
fn raise_fd_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit. Some systems refuse an
        // unlimited soft limit; the old one then stays.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    Some(files(limit.rlim_cur))
}

/// `rlim_t` is `u64` on Linux but not everywhere.
#[cfg(unix)]
#[allow(clippy::useless_conversion)]
fn files(limit: libc::rlim_t) -> u64 {
    u64::try_from(limit).unwrap_or(u64::MAX)
}

#[cfg(not(unix))]
fn raise_fd_limit() -> Option<u64> {
    None
}

/// Says when a repeated event is to be logged: the first time, then at
/// most once per [`ACCEPT_LOG_EVERY`].
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    unlogged: u64,
}

impl Throttle {
    /// `Some(n)` when the event at `now` is to be logged, `n` being the
    /// events not logged since the last one.
    fn tick(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < ACCEPT_LOG_EVERY => {
                self.unlogged += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.unlogged))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_accept_is_logged_at_most_once_per_period_with_a_count() {
        let mut throttle = Throttle::default();
        let start = Instant::now();
        assert_eq!(throttle.tick(start), Some(0));
        for i in 1..=99 {
            assert_eq!(throttle.tick(start + Duration::from_millis(i * 100)), None);
        }
        assert_eq!(throttle.tick(start + ACCEPT_LOG_EVERY), Some(99));
        assert_eq!(throttle.tick(start + ACCEPT_LOG_EVERY), None);
    }

    #[cfg(unix)]
    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let files = raise_fd_limit().expect("readable on unix");
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        assert_eq!(super::files(limit.rlim_cur), files);
        assert!(connection_cap(usize::MAX) >= 1);
        assert_eq!(connection_cap(3), 3);
    }
}
