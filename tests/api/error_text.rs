//! Error text that echoes what a client sent: escaped alike in the body
//! and the header, bounded, never able to act on a terminal, a log viewer
//! or a browser.

use crate::helpers::*;
use crate::wire::forbidden_in;

/// The text body and the header of an error response.
async fn error_text(app: &TestApp, url: &str) -> (u16, String, String) {
    let response = app.get(url).await;
    let status = response.status().as_u16();
    let header = error_of(&response);
    assert_eq!(
        response.headers()["x-content-type-options"],
        "nosniff",
        "{url}"
    );
    let body = response.text().await.unwrap();
    (status, header, body)
}

/// A URL whose options are signed as the server reads them, percent-decoded.
fn with_option(app: &TestApp, name: &str, sent: &str, decoded: &str) -> String {
    let mods = signet::signing::encode_modifications("[]");
    let payload = signet::signing::payload_v2(USER, CERT, &mods, &[(name, decoded.to_string())]);
    let sig = signet::signing::sign(SECRET, &payload);
    format!(
        "{}/{USER}/{CERT}.png?modifications={mods}&{name}={sent}&s={sig}",
        app.base_url()
    )
}

#[tokio::test]
async fn control_and_bidi_characters_sent_in_any_part_are_escaped_in_body_and_header() {
    let app = spawn_app().await;
    let signed = app.reference_url(CERT, &[]);
    let json = |mods: &str| {
        app.raw_url(
            USER,
            SECRET,
            CERT,
            "png",
            &signet::signing::encode_modifications(mods),
        )
    };
    let cases = [
        (
            format!("{signed}&%0d%0aX-Injected:%20yes=1"),
            "\\r\\nX-Injected: yes",
        ),
        (format!("{signed}&%1b%5b31mred=1"), "\\u{1b}[31mred"),
        (format!("{signed}&a%e2%80%aeb=1"), "a\\u{202e}b"),
        (format!("{signed}&tab%09here=1"), "tab\\there"),
        (with_option(&app, "v", "%00", "\u{0}"), "\\u{0}"),
        (with_option(&app, "v", "%c2%85x", "\u{85}x"), "\\u{85}x"),
        (
            json(r#"[{"name":"\u0000","text":"x"},{"name":"\u0000","text":"y"}]"#),
            "\\u{0}",
        ),
        (
            json(r##"[{"name":"text_candidate","color":"#fff\n"}]"##),
            "#fff\\n",
        ),
        (json(r#"[{"name":"a","te\u001bxt":"x"}]"#), "te\\u{1b}xt"),
        (json(r#"[{"name":"a","\u2066x":"y"}]"#), "\\u{2066}x"),
    ];
    for (url, shown) in cases {
        let (status, header, body) = error_text(&app, &url).await;
        assert_eq!(status, 400, "{url}: {header}");
        assert_eq!(
            forbidden_in(&body),
            None,
            "{url}: raw character in {body:?}"
        );
        assert!(body.contains(shown), "{url}: {body:?} lacks {shown:?}");
        assert_eq!(body, format!("{header}\n"), "{url}: body and header differ");
    }
}

#[tokio::test]
async fn an_echoed_text_is_bounded_in_body_and_header() {
    let app = spawn_app().await;
    let signed = app.reference_url(CERT, &[]);
    let name = "%e2%80%ae".repeat(1500);
    let (status, header, body) = error_text(&app, &format!("{signed}&{name}=1")).await;
    assert_eq!(status, 400);
    assert!(body.len() <= 513, "{} bytes", body.len());
    assert!(header.ends_with("..."), "{header}");
    assert_eq!(body, format!("{header}\n"));
}
