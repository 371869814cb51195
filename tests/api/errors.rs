//! Every row of the spec's error table, and the bad input around it.

use crate::helpers::*;

/// Asserts the status and the start of `x-stencil-error`, and that the
/// failure is not cacheable.
async fn expect(app: &TestApp, url: &str, status: u16, error: &str) -> reqwest::Response {
    let response = app.get(url).await;
    assert_eq!(
        response.status().as_u16(),
        status,
        "{url}: {}",
        error_of(&response)
    );
    assert!(
        error_of(&response).starts_with(error),
        "{url}: got `{}`, want `{error}…`",
        error_of(&response)
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    response
}

#[tokio::test]
async fn a_url_without_a_signature_is_missing_its_signature() {
    let app = spawn_app().await;
    let url = format!("{}/{USER}/{CERT}.png?modifications=W10", app.base_url());
    expect(&app, &url, 400, "Missing signature").await;
}

#[tokio::test]
async fn malformed_paths_and_queries_are_bad_requests() {
    let app = spawn_app().await;
    let good = app.reference_url(CERT, &[]);
    let query = good.split_once('?').unwrap().1;
    for path in [
        format!("/{USER}/..%2F{CERT}.png"),
        format!("/{USER}%00/{CERT}.png"),
        format!("/{USER}/{CERT}"),
        format!("/{USER}/a.b.png"),
        format!("/{USER}/x/{CERT}.png"),
        "/".to_string(),
    ] {
        expect(
            &app,
            &format!("{}{path}?{query}", app.base_url()),
            400,
            "Bad request: ",
        )
        .await;
    }
    // The same signature twice, or the modifications twice.
    let sig = good.split("&s=").nth(1).unwrap();
    expect(
        &app,
        &format!("{good}&s={sig}"),
        400,
        "Bad request: repeated",
    )
    .await;
    expect(
        &app,
        &format!("{good}&modifications=W10"),
        400,
        "Bad request: repeated",
    )
    .await;
    expect(
        &app,
        &format!("{good}&utm=1"),
        400,
        "Bad request: unknown query parameter",
    )
    .await;
}

#[tokio::test]
async fn unknown_users_templates_and_formats_are_not_found() {
    let app = spawn_app().await;
    let url = reference_url(&app.base_url(), "nobody", SECRET, CERT, &[]);
    expect(&app, &url, 404, "Unknown user").await;
    expect(
        &app,
        &app.reference_url("nothing_here", &[]),
        404,
        "Unknown template",
    )
    .await;
    let gif = app.reference_url(CERT, &[]).replace(".png?", ".gif?");
    expect(&app, &gif, 404, "Unsupported format").await;
}

#[tokio::test]
async fn modifications_that_are_not_base64_json_or_the_right_shape_are_invalid() {
    let app = spawn_app().await;
    let b64 = signet::signing::encode_modifications;
    for (mods, detail) in [
        ("***".to_string(), "not base64"),
        (b64("not json"), "expected"),
        (
            b64(r#"{"name":"text_candidate","text":"x"}"#),
            "expected a sequence",
        ),
        (b64(r#"[{"name":"text_candidate"}]"#), "changes nothing"),
        (
            b64(r#"[{"name":"text_candidate","text":"a\u202eb"}]"#),
            "bidi",
        ),
        (
            b64(r#"[{"name":"text_candidate","text":"a\u0007b"}]"#),
            "control",
        ),
    ] {
        let url = app.raw_url(USER, SECRET, CERT, "png", &mods);
        let response = expect(&app, &url, 400, "Invalid modifications: ").await;
        assert!(
            error_of(&response).contains(detail),
            "{}",
            error_of(&response)
        );
    }
}

#[tokio::test]
async fn oversized_urls_texts_and_modification_lists_are_too_large() {
    let app = spawn_with(|c| c.max_url_bytes = 64 * 1024).await;
    let huge = format!(
        "/{USER}/{CERT}.png?modifications={}&s=00",
        "A".repeat(200_000)
    );
    let (status, head) = raw_get(app.addr, &huge).await;
    assert_eq!(status, 414, "{head}");
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("x-stencil-error: request too large: the url has"),
        "{head}"
    );
    let long_name = "x".repeat(20_000);
    let url = app.reference_url(CERT, &[("text_candidate", &long_name)]);
    expect(
        &app,
        &url,
        400,
        "Request too large: text of layer `text_candidate`",
    )
    .await;
    let many: Vec<(String, &str)> = (0..65).map(|i| (format!("layer{i}"), "x")).collect();
    let pairs: Vec<(&str, &str)> = many.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    expect(
        &app,
        &app.reference_url(CERT, &pairs),
        400,
        "Request too large: 65 modifications",
    )
    .await;
}

#[tokio::test]
async fn templates_that_cannot_be_rendered_safely_are_rejected() {
    let app = spawn_app().await;
    app.write_template(
        USER,
        "huge.svg",
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"/>"#,
    );
    app.write_template(
        USER,
        "truncated.svg",
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect"#,
    );
    app.write_template(
        USER,
        "entities.svg",
        r#"<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><svg xmlns="http://www.w3.org/2000/svg"><text>&b;</text></svg>"#,
    );
    app.write_template(USER, "html.svg", "<html><body>hi</body></html>");
    app.write_template(USER, "binary.svg", [0xff, 0xfe, 0x00, 0x01]);
    for (base, detail) in [
        ("huge", "100000×100000"),
        ("truncated", "invalid SVG"),
        ("entities", "invalid SVG"),
        ("html", "not <svg>"),
        ("binary", "not UTF-8"),
    ] {
        let response = expect(
            &app,
            &app.reference_url(base, &[]),
            422,
            "Template rejected: ",
        )
        .await;
        let error = error_of(&response);
        assert!(error.contains(&detail.replace('×', "\\u{d7}")), "{error}");
    }
    // The server keeps serving everyone else.
    assert_eq!(app.get(&app.reference_url(CERT, &[])).await.status(), 200);
}

#[tokio::test]
async fn a_render_past_its_deadline_fails_and_the_failure_is_remembered() {
    let app = spawn_with(|c| c.render_timeout_ms = 1).await;
    app.write_template(USER, "slow.svg", slow_svg());
    let url = app.reference_url("slow", &[]);
    expect(&app, &url, 500, "Render failed").await;
    let started = app.renders_started().await;
    expect(&app, &url, 500, "Render failed").await;
    assert_eq!(
        app.renders_started().await,
        started,
        "a remembered failure rendered again"
    );
}

#[tokio::test]
async fn a_render_that_would_wait_beyond_the_queue_bound_is_answered_busy() {
    let app = spawn_with(|c| {
        c.render_concurrency = 1;
        c.max_waiting_renders = 0;
        c.render_timeout_ms = 120_000;
    })
    .await;
    app.write_template(USER, "slow.svg", slow_svg());
    let cached = app.reference_url(CERT, &[]);
    assert_eq!(app.get(&cached).await.status(), 200);
    let first = app.reference_url("slow", &[("t", "first")]);
    let client = app.client.clone();
    let running = tokio::spawn(async move { client.get(&first).send().await.unwrap().status() });
    app.until_rendering().await;
    let response = expect(
        &app,
        &app.reference_url("slow", &[("t", "second")]),
        503,
        "Server busy",
    )
    .await;
    assert_eq!(response.headers()["retry-after"], "1");
    // Hits are still answered while the only slot is taken.
    let hit = app.get(&cached).await;
    assert_eq!(hit.headers()["x-stencil-cache"], "hit");
    assert_eq!(running.await.unwrap(), 200);
}

#[tokio::test]
async fn browsers_get_a_png_explaining_the_error_and_curl_gets_text() {
    let app = spawn_app().await;
    let url = format!("{}/{USER}/{CERT}.png", app.base_url());
    let img = app
        .client
        .get(&url)
        .header("accept", "image/avif,image/webp,*/*")
        .send()
        .await
        .unwrap();
    assert_eq!(img.headers()["content-type"], "image/png");
    assert_eq!(error_of(&img), "Missing signature");
    let png = img.bytes().await.unwrap();
    assert!(decode_png(&png).width() > 100);
    // Details differ, the picture (one per kind of error) does not.
    let mut pictures = Vec::new();
    for param in ["a", "b"] {
        let bad = format!("{url}?s=00&{param}=1");
        let response = app
            .client
            .get(&bad)
            .header("accept", "image/png")
            .send()
            .await
            .unwrap();
        assert!(
            error_of(&response).ends_with(&format!("`{param}`")),
            "{}",
            error_of(&response)
        );
        pictures.push(response.bytes().await.unwrap());
    }
    assert_eq!(pictures[0], pictures[1]);
    let text = app
        .client
        .get(&url)
        .header("accept", "*/*")
        .send()
        .await
        .unwrap();
    assert!(text.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(text.text().await.unwrap(), "Missing signature\n");
}

#[tokio::test]
async fn other_methods_are_refused_with_the_error_header() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.reference_url(CERT, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(error_of(&response), "Method not allowed");
    assert_eq!(response.headers()["allow"], "GET, HEAD");
}

#[tokio::test]
async fn markup_in_a_name_is_drawn_as_text_not_parsed() {
    let app = spawn_app().await;
    let attack = r##"</text><rect width="2000" height="1414" fill="#ff0000"/><text>"##;
    let response = app
        .get(&app.reference_url(CERT, &[("text_candidate", attack)]))
        .await;
    assert_eq!(response.status(), 200, "{}", error_of(&response));
    let png = decode_png(&response.bytes().await.unwrap());
    assert_ne!(
        pixel(&png, 1000, 1000),
        [255, 0, 0, 255],
        "the markup became a rectangle"
    );
}

#[tokio::test]
async fn unknown_layers_are_ignored_and_reported() {
    let app = spawn_app().await;
    let url = app.reference_url(
        CERT,
        &[
            ("text_candidate", "Ada"),
            ("no_such_layer", "x"),
            ("odd\u{e9}", "y"),
        ],
    );
    let response = app.get(&url).await;
    assert_eq!(response.status(), 200);
    let warning = response.headers()["x-stencil-warning"].to_str().unwrap();
    assert!(
        warning.contains("unknown layer `no_such_layer`"),
        "{warning}"
    );
    assert!(warning.contains("odd\\u{e9}"), "{warning}");
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_with(|c| c.header_read_timeout_ms = 300).await;
    for partial in ["GET /healthz HT", "GET /healthz HTTP/1.1\r\nHost: x\r\n"] {
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(partial.as_bytes()).await.unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            stream.read_to_end(&mut rest),
        )
        .await;
        assert!(
            closed.is_ok(),
            "the server kept a half-sent request open: {partial:?}"
        );
    }
}
