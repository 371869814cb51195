//! Template versions: an edit takes effect without a restart and never
//! serves the old image.

use crate::helpers::*;

fn square(color: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100"><rect width="200" height="100" fill="{color}"/><text id="t" x="10" y="50">x</text></svg>"#
    )
}

#[tokio::test]
async fn an_edited_template_is_served_at_once_without_a_restart() {
    let app = spawn_app().await;
    app.write_template(USER, "square.svg", square("#0000ff"));
    let url = app.reference_url("square", &[("t", "Ada")]);
    let first = app.get(&url).await;
    let first_etag = first.headers()["etag"].clone();
    assert_eq!(
        pixel(&decode_png(&first.bytes().await.unwrap()), 150, 20),
        [0, 0, 255, 255]
    );
    // Same size, written straight away: only the content tells the versions apart.
    app.write_template(USER, "square.svg", square("#00ff00"));
    let second = app.get(&url).await;
    assert_ne!(second.headers()["etag"], first_etag);
    assert_eq!(
        pixel(&decode_png(&second.bytes().await.unwrap()), 150, 20),
        [0, 255, 0, 255]
    );
}

#[tokio::test]
async fn a_template_that_is_deleted_becomes_unknown_and_can_come_back() {
    let app = spawn_app().await;
    let path = app.write_template(USER, "gone.svg", square("#ff0000"));
    let url = app.reference_url("gone", &[]);
    assert_eq!(app.get(&url).await.status(), 200);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(error_of(&app.get(&url).await), "Unknown template");
    app.write_template(USER, "gone.svg", square("#ff0000"));
    assert_eq!(app.get(&url).await.status(), 200);
}

#[tokio::test]
async fn a_multi_line_name_renders_each_line() {
    let app = spawn_app().await;
    app.write_template(
        USER,
        "lines.svg",
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="400" height="200"><rect width="400" height="200" fill="#fff"/><text id="t" x="20" y="60" font-size="40">x</text></svg>"##,
    );
    let render = |text: &'static str| {
        let url = app.reference_url("lines", &[("t", text)]);
        let app = &app;
        async move {
            let response = app.get(&url).await;
            assert_eq!(response.status(), 200);
            decode_png(&response.bytes().await.unwrap())
        }
    };
    let (one, two) = (render("Ada Lovelace").await, render("Ada\nLovelace").await);
    // The second line sits below the first line's baseline.
    let ink_below = |png: &resvg::tiny_skia::Pixmap| {
        (75..110).any(|y| (20..300).any(|x| pixel(png, x, y)[0] < 100))
    };
    assert!(!ink_below(&one));
    assert!(ink_below(&two));
}

#[tokio::test]
async fn the_root_element_is_not_a_layer_and_editing_it_changes_nothing() {
    let app = spawn_app().await;
    app.write_template(
        USER,
        "rooted.svg",
        r##"<svg id="page" xmlns="http://www.w3.org/2000/svg" width="200" height="100"><rect width="200" height="100" fill="#00f"/></svg>"##,
    );
    for mods in [
        serde_json::json!([{ "name": "page", "visible": false }]),
        serde_json::json!([{ "name": "page", "color": "#f00" }]),
    ] {
        let response = app
            .get(&signed_url(&app, "rooted", "png", &mods, &[]))
            .await;
        assert_eq!(response.status(), 200, "{mods}: {}", error_of(&response));
        let warning = response.headers()["x-stencil-warning"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(warning.contains("unknown layer `page`"), "{warning}");
        let png = decode_png(&response.bytes().await.unwrap());
        assert_eq!(pixel(&png, 100, 50), [0, 0, 255, 255]);
    }
}
