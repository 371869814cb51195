//! URLs made by the customers' own signing code render.

use crate::helpers::*;

async fn png_of(app: &TestApp, url: &str) -> Vec<u8> {
    let response = app.get(url).await;
    assert_eq!(response.status(), 200, "{url}: {}", error_of(&response));
    assert_eq!(response.headers()["content-type"], "image/png");
    response.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn a_plain_ascii_name_renders_the_certificate() {
    let app = spawn_app().await;
    let url = app.reference_url(CERT, &[("text_candidate", "John Wick")]);
    let png = decode_png(&png_of(&app, &url).await);
    assert_eq!((png.width(), png.height()), (2000, 1414));
    let default = decode_png(&png_of(&app, &app.reference_url(CERT, &[])).await);
    assert_ne!(png.data(), default.data(), "the name changed nothing");
}

#[tokio::test]
async fn names_whose_base64_holds_plus_and_slash_verify() {
    let app = spawn_app().await;
    let url = app.reference_url(CERT, &[("text_candidate", "Zoë ~~~ Ångström??")]);
    let mods = url
        .split("modifications=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(mods.contains('+') && mods.contains('/'), "{mods}");
    png_of(&app, &url).await;
}

#[tokio::test]
async fn non_ascii_names_render_and_each_differs() {
    let app = spawn_app().await;
    let mut seen = Vec::new();
    for name in [
        "Zoë Ångström",
        "Дмитрий Иванов",
        "Ελένη Παπαδοπούλου",
        "José Müller 🎓",
    ] {
        let url = app.reference_url(CERT, &[("text_candidate", name)]);
        let png = png_of(&app, &url).await;
        assert!(!seen.contains(&png), "{name} rendered like an earlier name");
        seen.push(png);
    }
}

#[tokio::test]
async fn a_client_that_percent_encodes_the_base64_verifies_the_same() {
    let app = spawn_app().await;
    let url = app.reference_url(CERT, &[("text_candidate", "Mia ~?>?")]);
    let (head, rest) = url.split_once("modifications=").unwrap();
    let (mods, sig) = rest.split_once("&s=").unwrap();
    let escaped_mods = mods.replace('+', "%2B").replace('/', "%2F");
    let encoded = format!("{head}modifications={escaped_mods}&s={sig}");
    let plain = app.get(&url).await;
    let escaped = app.get(&encoded).await;
    assert_eq!(escaped.status(), 200, "{}", error_of(&escaped));
    assert_eq!(plain.headers()["etag"], escaped.headers()["etag"]);
}

#[tokio::test]
async fn url_safe_base64_signed_as_sent_is_the_same_image() {
    let app = spawn_app().await;
    let json = r#"[{"name":"text_candidate","text":"Mia ~?>?x"}]"#;
    let standard = signet::signing::encode_modifications(json);
    assert!(standard.contains('+') && standard.contains('/'));
    let url_safe = standard.replace('+', "-").replace('/', "_");
    let padding = "=".repeat((4 - url_safe.len() % 4) % 4);
    assert!(!padding.is_empty());
    let a = app
        .get(&app.raw_url(USER, SECRET, CERT, "png", &standard))
        .await;
    let b = app
        .get(&app.raw_url(USER, SECRET, CERT, "png", &format!("{url_safe}{padding}")))
        .await;
    assert_eq!(b.status(), 200, "{}", error_of(&b));
    assert_eq!(a.headers()["etag"], b.headers()["etag"]);
}

#[tokio::test]
async fn changing_one_letter_of_the_name_breaks_the_signature() {
    let app = spawn_app().await;
    let url = app.reference_url(CERT, &[("text_candidate", "John Wick")]);
    let other = app.reference_url(CERT, &[("text_candidate", "John Wicj")]);
    let forged = format!(
        "{}&s={}",
        other.split("&s=").next().unwrap(),
        url.split("&s=").nth(1).unwrap()
    );
    let response = app.get(&forged).await;
    assert_eq!(response.status(), 403);
    assert_eq!(error_of(&response), "Invalid signature");
}

#[tokio::test]
async fn any_active_secret_verifies_and_a_retired_one_does_not() {
    let app = spawn_with(|c| c.users[0].secrets = vec!["new-secret".into(), SECRET.into()]).await;
    let old = app.reference_url(CERT, &[("text_candidate", "Old Link")]);
    let new = reference_url(
        &app.base_url(),
        USER,
        "new-secret",
        CERT,
        &[("text_candidate", "New Link")],
    );
    assert_eq!(app.get(&old).await.status(), 200);
    assert_eq!(app.get(&new).await.status(), 200);

    let rotated = spawn_with(|c| c.users[0].secrets = vec!["new-secret".into()]).await;
    let old = rotated.reference_url(CERT, &[("text_candidate", "Old Link")]);
    assert_eq!(error_of(&rotated.get(&old).await), "Invalid signature");
}

#[tokio::test]
async fn one_users_secret_opens_nothing_of_another_user() {
    let app = spawn_app().await;
    // USER's secret on OTHER_USER's path.
    let url = reference_url(&app.base_url(), OTHER_USER, SECRET, "mine", &[]);
    assert_eq!(error_of(&app.get(&url).await), "Invalid signature");
    // USER's own path to OTHER_USER's template id finds nothing.
    let url = app.reference_url("mine", &[]);
    let response = app.get(&url).await;
    assert_eq!(
        (response.status().as_u16(), error_of(&response)),
        (404, "Unknown template".into())
    );
    // OTHER_USER's own URL works.
    let url = reference_url(&app.base_url(), OTHER_USER, OTHER_SECRET, "mine", &[]);
    assert_eq!(app.get(&url).await.status(), 200);
}
