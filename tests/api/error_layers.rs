//! Every error response carries `x-stencil-error`, `nosniff`, `no-store`
//! and the same text body, whichever layer found the error: the router,
//! hyper's parser (bytes it cannot parse, answered by the connection
//! guard) or the handler, on the first request of a connection or a later
//! one.

use crate::helpers::*;
use crate::wire::{exchange, forbidden_in, Answer};

/// Asserts an answer is a mapped error with `status` and a message
/// starting `error`.
fn mapped(answer: &Answer, status: u16, error: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert!(
        answer.error().starts_with(error),
        "{answer:?}: want `{error}…`"
    );
    assert_eq!(
        answer.header("x-content-type-options"),
        Some("nosniff"),
        "{answer:?}"
    );
    assert_eq!(
        answer.header("cache-control"),
        Some("no-store"),
        "{answer:?}"
    );
    assert_eq!(answer.text(), format!("{}\n", answer.error()), "{answer:?}");
    assert_eq!(forbidden_in(&answer.text()), None, "{answer:?}");
}

async fn one(app: &TestApp, request: &[u8]) -> Answer {
    let answers = exchange(app.addr, request).await;
    assert_eq!(
        answers.len(),
        1,
        "{:?}: {answers:?}",
        String::from_utf8_lossy(request)
    );
    answers.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_method_a_route_does_not_take_gets_the_mapped_405() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/healthz", app.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(error_of(&response), "Method not allowed");
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    for request in [
        "get /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "PUT /healthz HTTP/1.0\r\n\r\n",
    ] {
        mapped(
            &one(&app, request.as_bytes()).await,
            405,
            "Method not allowed",
        );
    }
}

#[tokio::test]
async fn heads_hyper_cannot_parse_get_the_mapped_error() {
    let app = spawn_app().await;
    let many_fields = "A: b\r\n".repeat(101);
    let big_field = format!("A: {}\r\n", "b".repeat(60_000));
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (
            b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
            "Bad request: ",
        ),
        (
            b"GET /a<b HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
            "Bad request: ",
        ),
        (b"G(T / HTTP/1.1\r\n\r\n".to_vec(), 400, "Bad request: "),
        (
            b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n".to_vec(),
            400,
            "Bad request: ",
        ),
        (
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx".to_vec(),
            400,
            "Bad request: the Content-Length fields disagree",
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
            400,
            "Bad request: ",
        ),
        (b"GET / HTTP/3.0\r\n\r\n".to_vec(), 400, "Bad request: "),
        (
            format!("GET / HTTP/1.1\r\n{many_fields}\r\n").into_bytes(),
            431,
            "Request too large: ",
        ),
        (
            format!("GET / HTTP/1.1\r\n{big_field}\r\n").into_bytes(),
            431,
            "Request too large: ",
        ),
    ];
    for (request, status, error) in cases {
        mapped(&one(&app, &request).await, status, error);
    }
    let health = app.health().await;
    assert!(health["heads_refused"].as_u64().unwrap() >= 9, "{health}");
}

#[tokio::test]
async fn a_long_url_on_a_reused_connection_gets_the_mapped_414() {
    let app = spawn_app().await;
    let long = format!(
        "/{USER}/{CERT}.png?modifications={}&s=00",
        "A".repeat(70_000)
    );
    let request =
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET {long} HTTP/1.1\r\nHost: x\r\n\r\n");
    let answers = exchange(app.addr, request.as_bytes()).await;
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0].status, 200, "{answers:?}");
    mapped(&answers[1], 414, "Request too large: the URL has over");
}

#[tokio::test]
async fn a_bad_head_after_pipelined_requests_is_answered_after_them_in_order() {
    let app = spawn_app().await;
    let signed = app.reference_url(CERT, &[]);
    let path = signed.trim_start_matches(&app.base_url());
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET {path} HTTP/1.1\r\nHost: x\r\n\r\n\
         GET /x HTTP/1.1\r\nBad Field\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n"
    );
    let answers = exchange(app.addr, request.as_bytes()).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 200, 400], "{answers:?}");
    assert_eq!(answers[1].header("content-type"), Some("image/png"));
    mapped(&answers[2], 400, "Bad request: ");
}

#[tokio::test]
async fn a_length_framed_body_is_passed_on_and_the_next_head_checked() {
    let app = spawn_app().await;
    // The body holds what would be a bad head: it must not be read as one.
    let request = "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nGET /a\x01 HT\
                   GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\
                   GET /a\x01 HTTP/1.1\r\n\r\n";
    let answers = exchange(app.addr, request.as_bytes()).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [405, 200, 400], "{answers:?}");
    mapped(&answers[0], 405, "Method not allowed");
    assert_ne!(answers[0].header("connection"), Some("close"));
    mapped(&answers[2], 400, "Bad request: ");
}

#[tokio::test]
async fn a_chunked_body_is_answered_and_its_connection_closed() {
    let app = spawn_app().await;
    let request = "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                   5\r\nhello\r\n0\r\n\r\nGET /a\x01 HTTP/1.1\r\n\r\n";
    let answers = exchange(app.addr, request.as_bytes()).await;
    assert_eq!(answers.len(), 1, "{answers:?}");
    mapped(&answers[0], 405, "Method not allowed");
    assert_eq!(answers[0].header("connection"), Some("close"));
}

#[tokio::test]
async fn every_mapped_error_has_nosniff() {
    let app = spawn_app().await;
    let url = format!("{}/{USER}/{CERT}.png?modifications=W10", app.base_url());
    let response = app.get(&url).await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let image = app
        .client
        .get(&url)
        .header("accept", "image/png")
        .send()
        .await
        .unwrap();
    assert_eq!(image.headers()["content-type"], "image/png");
    assert_eq!(image.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn requests_with_bodies_keep_their_connection() {
    let app = spawn_app().await;
    let accepted = |h: serde_json::Value| h["connections_accepted"].as_u64().unwrap();
    let before = accepted(app.health().await);
    for _ in 0..3 {
        let response = app
            .client
            .post(format!("{}/healthz", app.base_url()))
            .body("{\"a\":1}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405);
        response.bytes().await.unwrap();
    }
    // The health check's connection served the three posts and this one.
    assert_eq!(accepted(app.health().await), before);
}
