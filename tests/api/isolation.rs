//! One account never sees another's images, and a changed image file is a
//! new version: every base and cache entry is keyed by everything it was
//! painted from.

use serde_json::json;

use crate::helpers::*;

/// A logo drawn from the account's own folder, and a name beside it.
const SHARED: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100"><rect width="200" height="100" fill="#fff"/><image x="0" y="0" width="100" height="100" href="logo.png"/><text id="name" x="110" y="50" font-size="20">x</text></svg>"##;

const RED: [u8; 3] = [220, 20, 20];
const BLUE: [u8; 3] = [20, 20, 220];
const GREEN: [u8; 3] = [20, 180, 20];

/// The logo's colour in `user`'s `shared.png` for `name`, and how it was
/// rendered.
async fn logo(app: &TestApp, user: &str, secret: &str, name: &str) -> ([u8; 3], String) {
    let mods = json!([{ "name": "name", "text": name }]).to_string();
    let url = signet::signing::signed_url_with_options(
        &app.base_url(),
        user,
        "shared",
        "png",
        &mods,
        &[],
        secret,
    );
    let response = app.get(&url).await;
    assert_eq!(response.status(), 200, "{}", error_of(&response));
    let how = response
        .headers()
        .get("server-timing")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let png = decode_png(&response.bytes().await.unwrap());
    let [r, g, b, _] = pixel(&png, 50, 50);
    ([r, g, b], how)
}

async fn two_accounts() -> TestApp {
    let app = spawn_app().await;
    for (user, colour) in [(USER, RED), (OTHER_USER, BLUE)] {
        app.write_template(user, "shared.svg", SHARED);
        app.write_template(user, "logo.png", solid_png(100, 100, colour));
    }
    app
}

#[tokio::test]
async fn two_accounts_with_the_same_template_each_get_their_own_logo() {
    // Alice first, then Bob; on a fresh server, Bob first.
    for alice_first in [true, false] {
        let app = two_accounts().await;
        let order = if alice_first {
            [(USER, SECRET, RED), (OTHER_USER, OTHER_SECRET, BLUE)]
        } else {
            [(OTHER_USER, OTHER_SECRET, BLUE), (USER, SECRET, RED)]
        };
        for (user, secret, colour) in order {
            // The first miss renders whole and builds the base; the next
            // ones are painted over it.
            for name in ["First", "Second", "Third"] {
                let (seen, how) = logo(&app, user, secret, name).await;
                assert_eq!(seen, colour, "{user}'s {name} ({how})");
            }
            let (_, how) = logo(&app, user, secret, "Fourth").await;
            assert!(how.contains("incremental"), "{user}: {how}");
        }
    }
}

#[tokio::test]
async fn a_replaced_logo_shows_in_every_render_after_it() {
    let app = two_accounts().await;
    for name in ["First", "Second"] {
        assert_eq!(logo(&app, USER, SECRET, name).await.0, RED);
    }
    let (_, how) = logo(&app, USER, SECRET, "Third").await;
    assert!(how.contains("incremental"), "{how}");
    app.write_template(USER, "logo.png", solid_png(100, 100, GREEN));
    for name in ["First", "Fourth", "Fifth"] {
        let (seen, how) = logo(&app, USER, SECRET, name).await;
        assert_eq!(seen, GREEN, "{name} ({how})");
    }
}

#[tokio::test]
async fn a_replaced_asset_named_by_src_is_a_new_image() {
    let app = spawn_app().await;
    app.write_template(
        USER,
        "photo.svg",
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><image id="photo" width="100" height="100" href="assets/blank.png"/></svg>"##,
    );
    app.write_template(USER, "assets/blank.png", solid_png(10, 10, [255, 255, 255]));
    app.write_template(USER, "assets/face.png", solid_png(50, 50, RED));
    let mods = json!([{ "name": "photo", "src": "face.png" }]);
    let url = signed_url(&app, "photo", "png", &mods, &[]);
    let first = app.get(&url).await;
    assert_eq!(first.status(), 200, "{}", error_of(&first));
    let etag = first.headers()["etag"].clone();
    assert_eq!(
        pixel(&decode_png(&first.bytes().await.unwrap()), 50, 50)[..3],
        RED
    );

    app.write_template(USER, "assets/face.png", solid_png(50, 50, BLUE));
    let second = app.get(&url).await;
    assert_eq!(second.status(), 200, "{}", error_of(&second));
    assert_ne!(second.headers()["etag"], etag);
    assert_eq!(
        pixel(&decode_png(&second.bytes().await.unwrap()), 50, 50)[..3],
        BLUE
    );
}
