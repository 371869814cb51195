//! HEAD, ETag and 304, cache hits, and coalesced misses.

use crate::helpers::*;

#[tokio::test]
async fn head_etag_and_if_none_match_behave_like_a_static_file() {
    let app = spawn_app().await;
    let url = app.reference_url(CERT, &[("text_candidate", "Grace Hopper")]);
    let get = app.get(&url).await;
    assert_eq!(get.status(), 200);
    assert_eq!(get.headers()["access-control-allow-origin"], "*");
    assert!(
        get.headers().get("vary").is_none(),
        "Vary splits CDN caches"
    );
    assert!(get.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("public"));
    let etag = get.headers()["etag"].clone();
    let length = get.headers()["content-length"].clone();
    assert!(etag.to_str().unwrap().starts_with('"'));
    assert_eq!(
        get.bytes().await.unwrap().len().to_string(),
        length.to_str().unwrap()
    );

    let head = app.client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["etag"], etag);
    assert_eq!(head.headers()["content-length"], length);
    assert!(head.bytes().await.unwrap().is_empty());

    let not_modified = app
        .client
        .get(&url)
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);
    assert_eq!(not_modified.headers()["etag"], etag);
    assert!(not_modified.bytes().await.unwrap().is_empty());

    let other = app
        .client
        .get(&url)
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn a_second_request_is_a_hit_with_the_same_bytes_and_no_render() {
    let app = spawn_app().await;
    let url = app.reference_url(CERT, &[("text_candidate", "Alan Turing")]);
    let first = app.get(&url).await;
    assert_eq!(first.headers()["x-stencil-cache"], "miss");
    assert!(first.headers()["server-timing"]
        .to_str()
        .unwrap()
        .starts_with("render;dur="));
    let first = first.bytes().await.unwrap();
    let started = app.renders_started().await;
    let second = app.get(&url).await;
    assert_eq!(second.headers()["x-stencil-cache"], "hit");
    assert!(second.headers().get("server-timing").is_none());
    assert_eq!(second.bytes().await.unwrap(), first);
    assert_eq!(app.renders_started().await, started);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_misses_render_once() {
    let app = spawn_app().await;
    let url = app.reference_url(CERT, &[("text_candidate", "Katherine Johnson")]);
    let before = app.renders_started().await;
    let requests = (0..16).map(|_| {
        let client = app.client.clone();
        let url = url.clone();
        tokio::spawn(async move {
            let response = client.get(&url).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.bytes().await.unwrap()
        })
    });
    let bodies: Vec<_> = futures_join(requests).await;
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(app.renders_started().await - before, 1);
}

#[tokio::test]
async fn a_client_that_disconnects_does_not_cancel_the_render_others_wait_on() {
    let app = spawn_with(|c| c.render_concurrency = 1).await;
    let url = app.reference_url(CERT, &[("text_candidate", "Dorothy Vaughan")]);
    let before = app.renders_started().await;
    let client = app.client.clone();
    let impatient_url = url.clone();
    let impatient = tokio::spawn(async move { client.get(&impatient_url).send().await });
    app.until_rendering().await;
    impatient.abort();
    let patient = app.get(&url).await;
    assert_eq!(patient.status(), 200);
    assert_eq!(
        app.renders_started().await - before,
        1,
        "the render was restarted"
    );
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        out.push(handle.await.unwrap());
    }
    out
}
