//! Graceful shutdown: requests in flight finish, new connections are refused.

use crate::helpers::*;

#[tokio::test]
async fn a_shutdown_lets_the_request_in_flight_finish_then_stops_listening() {
    let mut app = spawn_with(|c| c.render_timeout_ms = 120_000).await;
    app.write_template(USER, "slow.svg", slow_svg());
    let url = app.reference_url("slow", &[]);
    let client = app.client.clone();
    let in_flight = tokio::spawn(async move { client.get(&url).send().await.map(|r| r.status()) });
    app.until_rendering().await;
    app.shutdown.take().unwrap().send(()).unwrap();
    assert_eq!(in_flight.await.unwrap().unwrap(), 200);
    app.server.take().unwrap().await.unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(app.addr).await.is_err());
}
