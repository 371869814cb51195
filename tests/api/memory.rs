//! Renders, base builds and image decodes share one memory budget: a
//! render that would need more than all of it is refused before it
//! allocates, and the ones that fit are all served.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn a_render_needing_more_than_the_memory_budget_is_refused_before_it_allocates() {
    // Room for a whole render of the demo certificate at its own size
    // (2000×1414, four canvases of 11.3 MB), not at twice its width.
    let app = spawn_with(|c| c.render_memory_bytes = 60 * 1024 * 1024).await;
    let mods = json!([{ "name": "text_candidate", "text": "Ada" }]);
    let fits = app.get(&signed_url(&app, CERT, "png", &mods, &[])).await;
    assert_eq!(fits.status(), 200, "{}", error_of(&fits));
    let wide = app
        .get(&signed_url(&app, CERT, "png", &mods, &[("width", "4000")]))
        .await;
    assert_eq!(wide.status(), 400, "{}", error_of(&wide));
    assert!(
        error_of(&wide).contains("bytes of memory (render_memory_bytes is 62914560)"),
        "{}",
        error_of(&wide)
    );
}

#[tokio::test]
async fn renders_that_fit_the_budget_together_are_all_served() {
    let app = spawn_with(|c| {
        c.render_memory_bytes = 60 * 1024 * 1024;
        c.render_concurrency = 4;
    })
    .await;
    let requests = (0..6).map(|i| {
        let mods = json!([{ "name": "text_candidate", "text": format!("Name {i}") }]);
        let url = signed_url(&app, CERT, "png", &mods, &[("width", "1000")]);
        let client = app.client.clone();
        tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
    });
    for request in requests.collect::<Vec<_>>() {
        assert_eq!(request.await.unwrap(), 200);
    }
}
