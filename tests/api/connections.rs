//! Connections are bounded: a client that never reads is closed after the
//! write timeout, and past `max_connections` new clients wait until one
//! closes instead of being accepted.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::*;
use crate::wire::{ask, read_answer, PATIENCE};

const HEALTH: &str = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn a_client_that_pipelines_and_never_reads_is_closed_after_the_write_timeout() {
    let app = spawn_with(|c| c.write_timeout_ms = 300).await;
    let url = app.reference_url(CERT, &[]);
    assert_eq!(app.get(&url).await.status(), 200);
    let path = url.trim_start_matches(&app.base_url()).to_string();
    let socket = TcpSocket::new_v4().unwrap();
    // A small window fills at once: the server's writes stall sooner.
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(app.addr).await.unwrap();
    let burst = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").repeat(20);
    // The server answers into the kernel's buffers until they are full,
    // stops reading, and so this write blocks, until the server gives up on
    // the connection and resets it.
    let closed = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Err(e) = stream.write_all(burst.as_bytes()).await {
                return e;
            }
        }
    })
    .await;
    let error = closed.expect("the server kept a connection that reads nothing");
    assert!(
        matches!(
            error.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "{error}"
    );
    let health = app.health().await;
    assert!(health["write_timeouts"].as_u64().unwrap() >= 1, "{health}");
    assert_eq!(app.get(&url).await.status(), 200);
}

#[tokio::test]
async fn a_connection_past_the_cap_waits_and_is_served_once_another_closes() {
    let app = spawn_with(|c| c.max_connections = 1).await;
    let mut first = TcpStream::connect(app.addr).await.unwrap();
    let health = ask(&mut first, HEALTH).await;
    assert_eq!(health.status, 200);
    let mut second = TcpStream::connect(app.addr).await.unwrap();
    second.write_all(HEALTH.as_bytes()).await.unwrap();
    // The first connection is served again, and the count shows the second
    // was never accepted.
    let again = ask(&mut first, HEALTH).await;
    let counters: serde_json::Value = serde_json::from_slice(&again.body).unwrap();
    assert_eq!(counters["connections_open"], 1, "{counters}");
    assert_eq!(counters["connections_accepted"], 1, "{counters}");
    // Nor is it answered while the first stays open. (A bound on waiting
    // for something that must not happen; nothing waits on it to proceed.)
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), second.read(&mut byte)).await;
    assert!(early.is_err(), "answered past the cap: {early:?}");
    drop(first);
    let answer = read_answer(&mut second).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let counters: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(counters["connections_accepted"], 2, "{counters}");
}
