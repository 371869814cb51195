//! Templates may read images only from their own folder, and only PNG or
//! JPEG within the bounds.

use crate::helpers::*;
use base64::Engine;

fn with_image(href: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="100" height="100"><image width="100" height="100" xlink:href="{href}"/></svg>"#
    )
}

/// Asserts that template `base` is rejected for a reason mentioning `why`.
async fn assert_rejected(app: &TestApp, base: &str, why: &str) {
    let response = app.get(&app.reference_url(base, &[])).await;
    let error = error_of(&response);
    assert_eq!(response.status(), 422, "{base}: {error}");
    assert!(
        error.starts_with("Template rejected: ") && error.contains(why),
        "{base}: {error}"
    );
}

#[tokio::test]
async fn references_outside_the_folder_or_to_the_network_reject_the_template() {
    let app = spawn_app().await;
    std::fs::write(
        app.templates.path().join("secret.png"),
        solid_png(4, 4, [1, 2, 3]),
    )
    .unwrap();
    std::fs::create_dir_all(app.templates.path().join(OTHER_USER)).unwrap();
    std::fs::write(
        app.templates.path().join(OTHER_USER).join("theirs.png"),
        solid_png(4, 4, [1, 2, 3]),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        app.templates.path().join("secret.png"),
        app.templates.path().join(USER).join("link.png"),
    )
    .unwrap();
    let svg_data = base64::engine::general_purpose::STANDARD
        .encode(r#"<svg xmlns="http://www.w3.org/2000/svg"/>"#);
    let cases = [
        ("/etc/passwd".to_string(), "inside the template"),
        ("../secret.png".to_string(), "inside the template"),
        (format!("../{OTHER_USER}/theirs.png"), "inside the template"),
        ("file:///etc/hostname".to_string(), "never fetched"),
        ("http://127.0.0.1:9/x.png".to_string(), "never fetched"),
        ("link.png".to_string(), "outside"),
        ("missing.png".to_string(), "not found"),
        (
            format!("data:image/svg+xml;base64,{svg_data}"),
            "PNG or JPEG",
        ),
    ];
    for (i, (href, why)) in cases.iter().enumerate() {
        app.write_template(USER, &format!("img{i}.svg"), with_image(href));
        assert_rejected(&app, &format!("img{i}"), why).await;
    }
}

#[tokio::test]
async fn a_fifo_named_like_an_image_is_refused_without_being_opened() {
    let app = spawn_app().await;
    let fifo = app.templates.path().join(USER).join("pipe.png");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    app.write_template(USER, "pipe.svg", with_image("pipe.png"));
    assert_rejected(&app, "pipe", "not a regular file").await;
}

#[tokio::test]
async fn images_inside_the_folder_and_png_data_uris_are_drawn() {
    let app = spawn_app().await;
    std::fs::write(
        app.templates.path().join(USER).join("red.png"),
        solid_png(10, 10, [255, 0, 0]),
    )
    .unwrap();
    app.write_template(USER, "local.svg", with_image("red.png"));
    let data = base64::engine::general_purpose::STANDARD.encode(solid_png(10, 10, [0, 0, 255]));
    app.write_template(
        USER,
        "inline.svg",
        with_image(&format!("data:image/png;base64,{data}")),
    );
    for (base, want) in [("local", [255, 0, 0, 255]), ("inline", [0, 0, 255, 255])] {
        let response = app.get(&app.reference_url(base, &[])).await;
        assert_eq!(response.status(), 200, "{}", error_of(&response));
        assert_eq!(
            pixel(&decode_png(&response.bytes().await.unwrap()), 50, 50),
            want
        );
    }
}

#[tokio::test]
async fn oversized_images_and_templates_outside_the_users_folder_are_refused() {
    let app = spawn_with(|c| c.max_pixels = 1_000_000).await;
    std::fs::write(
        app.templates.path().join(USER).join("big.png"),
        solid_png(2000, 1000, [0, 0, 0]),
    )
    .unwrap();
    app.write_template(USER, "bigimg.svg", with_image("big.png"));
    assert_rejected(&app, "bigimg", "over the limit").await;

    let outside = app.templates.path().join("outside.svg");
    std::fs::write(&outside, with_image("x.png")).unwrap();
    std::os::unix::fs::symlink(&outside, app.templates.path().join(USER).join("escape.svg"))
        .unwrap();
    assert_rejected(&app, "escape", "outside").await;
}
