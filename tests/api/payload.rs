//! The signed payload reads one way only: options cannot be moved into the
//! modifications to drop them, URLs with options are signed with a
//! versioned payload, and URLs signed with the first one keep working.

use crate::helpers::*;
use signet::signing;

const JSON: &str = r#"[{"name":"text_candidate","text":"Ada"}]"#;

fn url(app: &TestApp, mods: &str, query: &str, payload: &str) -> String {
    let sig = signing::sign(SECRET, payload);
    format!(
        "{}/{USER}/{CERT}.png?modifications={mods}{query}&s={sig}",
        app.base_url()
    )
}

#[tokio::test]
async fn an_expiry_moved_into_the_modifications_is_an_invalid_signature() {
    let app = spawn_app().await;
    let mods = signing::encode_modifications(JSON);
    let options = [("exp", "1000".to_string())];
    // Signed with an expiry long past, in the first payload with options.
    let signed = signing::payload_with_options(USER, CERT, &mods, &options);
    let expired = app.get(&url(&app, &mods, "&exp=1000", &signed)).await;
    assert_eq!(expired.status(), 410, "{}", error_of(&expired));
    // The same signature, the option moved into `modifications`: the
    // option-free payload is the same text.
    let moved = format!("{mods}+exp=1000");
    assert_eq!(signing::payload(USER, CERT, &moved), signed);
    let forged = app.get(&url(&app, &moved, "", &signed)).await;
    assert_eq!(forged.status(), 403, "{}", error_of(&forged));
    assert_eq!(error_of(&forged), "Invalid signature");
}

#[tokio::test]
async fn options_verify_under_the_versioned_payload_and_the_first_one() {
    let app = spawn_app().await;
    let mods = signing::encode_modifications(JSON);
    let options = [("width", "500".to_string())];
    let v2 = signing::payload_v2(USER, CERT, &mods, &options);
    let v1 = signing::payload_with_options(USER, CERT, &mods, &options);
    assert_ne!(v1, v2);
    for payload in [&v2, &v1] {
        let response = app.get(&url(&app, &mods, "&width=500", payload)).await;
        assert_eq!(response.status(), 200, "{}", error_of(&response));
    }
    // The library's signer writes the versioned one.
    let built = signing::signed_url_with_options(
        &app.base_url(),
        USER,
        CERT,
        "png",
        JSON,
        &options,
        SECRET,
    );
    assert!(built.ends_with(&signing::sign(SECRET, &v2)), "{built}");
    // Without options the payload is the seed's, byte for byte.
    let plain = app
        .get(&app.reference_url(CERT, &[("text_candidate", "Ada")]))
        .await;
    assert_eq!(plain.status(), 200);
}
