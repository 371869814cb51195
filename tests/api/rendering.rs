//! Certificate-grade rendering over HTTP: fitting measured on the pixels,
//! real glyphs or a clear refusal, selectable PDF text, signed options and
//! their bounds, and every kind of bad layer input.

use serde_json::json;

use super::helpers::*;
use super::reference::{decode_any, Image};

/// Pixels of the certificate's magenta-coloured name, as (x, y).
fn magenta(image: &Image) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for (i, p) in image.rgba.chunks(4).enumerate() {
        if p[0] > 170 && p[1] < 100 && p[2] > 170 {
            out.push((i as u32 % image.width, i as u32 / image.width));
        }
    }
    out
}

#[tokio::test]
async fn a_short_and_a_sixty_character_name_land_inside_the_same_box() {
    let app = spawn_app().await;
    let long = "Maximiliana Wilhelmina Augusta of Hohenzollern-Sigmaringen I";
    assert_eq!(long.chars().count(), 60);
    let mut sizes = Vec::new();
    for name in ["Al", long] {
        let mods = json!([{ "name": "text_candidate", "text": name, "color": "#ff00ff" }]);
        let response = app.get(&signed_url(&app, CERT, "png", &mods, &[])).await;
        assert_eq!(response.status(), 200, "{}", error_of(&response));
        let fit = response.headers()["x-stencil-fit"]
            .to_str()
            .unwrap()
            .to_owned();
        let image = decode_any("png", &response.bytes().await.unwrap());
        let ink = magenta(&image);
        assert!(ink.len() > 500, "{name}: the name is drawn");
        // box_candidate in the demo template: x 240..1760, y 555..735.
        let outside: Vec<_> = ink
            .iter()
            .filter(|(x, y)| !(240..=1760).contains(x) || !(555..=735).contains(y))
            .collect();
        assert!(
            outside.is_empty(),
            "{name}: {} pixels outside, e.g. {:?}",
            outside.len(),
            outside.first()
        );
        let (min_x, max_x) = (
            ink.iter().map(|p| p.0).min().unwrap(),
            ink.iter().map(|p| p.0).max().unwrap(),
        );
        sizes.push((fit, max_x - min_x));
    }
    assert_eq!(sizes[0].0, "text_candidate=124px/1 line");
    assert!(
        sizes[1].0.ends_with("px/1 line") && sizes[1].0 != sizes[0].0,
        "{:?}",
        sizes
    );
    assert!(
        sizes[1].1 > 1200,
        "the long name is shrunk to fill the box, not to a sliver: {:?}",
        sizes
    );
}

#[tokio::test]
async fn a_name_that_fits_renders_exactly_as_without_fitting() {
    let app = spawn_app().await;
    let fitted =
        std::fs::read_to_string(repo().join(format!("templates/{USER}/{CERT}.svg"))).unwrap();
    let plain = fitted.replace(r#"data-fit="shrink""#, "");
    assert_ne!(plain, fitted);
    app.write_template(USER, "plain.svg", plain);
    let mods = json!([{ "name": "text_candidate", "text": "John Wick" }]);
    let a = app
        .get(&signed_url(&app, CERT, "png", &mods, &[]))
        .await
        .bytes()
        .await
        .unwrap();
    let b = app
        .get(&signed_url(&app, "plain", "png", &mods, &[]))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(decode_any("png", &a).rgba, decode_any("png", &b).rgba);
}

#[tokio::test]
async fn a_name_that_cannot_fit_under_error_is_refused() {
    let app = spawn_app().await;
    let url = app.reference_url(CERT, &[("text_candidate", &"W".repeat(120))]);
    let response = app.get(&url).await;
    assert_eq!(response.status(), 422);
    assert_eq!(error_of(&response), "Text does not fit: text_candidate");
}

#[tokio::test]
async fn characters_no_font_draws_are_refused_by_code_point() {
    let app = spawn_app().await;
    let url = app.reference_url(CERT, &[("text_candidate", "Ada \u{10FFFD}\u{E000}")]);
    let response = app.get(&url).await;
    assert_eq!(response.status(), 422);
    assert_eq!(error_of(&response), "Missing glyphs: U+10FFFD, U+E000");
}

#[tokio::test]
async fn the_pdf_has_selectable_text_in_embedded_fonts() {
    let app = spawn_app().await;
    let mods = json!([{ "name": "text_candidate", "text": "Ada Lovelace 王小明" }]);
    let response = app.get(&signed_url(&app, CERT, "pdf", &mods, &[])).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("c.pdf");
    std::fs::write(&pdf, response.bytes().await.unwrap()).unwrap();
    require_program("pdftotext", "poppler-utils");
    require_program("pdffonts", "poppler-utils");
    let text = std::process::Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("Ada Lovelace 王小明"), "{text}");
    assert!(text.contains("Foundations of Data Science"), "{text}");
    let fonts = std::process::Command::new("pdffonts")
        .arg(&pdf)
        .output()
        .unwrap();
    let fonts = String::from_utf8(fonts.stdout).unwrap();
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert!(rows.len() >= 3, "{fonts}");
    assert!(
        rows.iter().all(|r| r.contains(" yes yes ")),
        "every font embedded and subset: {fonts}"
    );
}

#[tokio::test]
async fn options_are_signed_bounded_and_change_the_output() {
    let app = spawn_app().await;
    let mods = json!([{ "name": "text_candidate", "text": "Ada" }]);
    let small = app
        .get(&signed_url(&app, CERT, "png", &mods, &[("width", "500")]))
        .await;
    assert_eq!(small.status(), 200);
    let image = decode_any("png", &small.bytes().await.unwrap());
    assert_eq!((image.width, image.height), (500, 354));
    let scaled = app
        .get(&signed_url(&app, CERT, "png", &mods, &[("scale", "0.1")]))
        .await;
    assert_eq!(decode_any("png", &scaled.bytes().await.unwrap()).width, 200);

    // Added after signing: the signature no longer matches.
    let unsigned = signed_url(&app, CERT, "png", &mods, &[]).replace("&s=", "&width=4000&s=");
    assert_eq!(error_of(&app.get(&unsigned).await), "Invalid signature");

    // v changes the cache entry and ETag, not the picture.
    let v1 = app
        .get(&signed_url(&app, CERT, "png", &mods, &[("v", "1")]))
        .await;
    let v2 = app
        .get(&signed_url(&app, CERT, "png", &mods, &[("v", "2")]))
        .await;
    assert_ne!(v1.headers()["etag"], v2.headers()["etag"]);
    assert_eq!(v2.headers()["x-stencil-cache"], "miss");
    // The same pixels; not always the same bytes, as the first miss of a
    // template renders whole and the next one incrementally.
    let (v1, v2) = (v1.bytes().await.unwrap(), v2.bytes().await.unwrap());
    assert!(
        decode_png(&v1).data() == decode_png(&v2).data(),
        "v changed the picture"
    );

    let future = (signet::options::unix_now() + 3600).to_string();
    let live = app
        .get(&signed_url(&app, CERT, "png", &mods, &[("exp", &future)]))
        .await;
    assert_eq!(live.status(), 200);
    let max_age: u64 = live.headers()["cache-control"]
        .to_str()
        .unwrap()
        .trim_start_matches("public, max-age=")
        .parse()
        .unwrap();
    assert!(
        max_age <= 3600 && max_age > 3500,
        "a shared cache keeps it no longer than it lives"
    );
    let expired = app
        .get(&signed_url(
            &app,
            CERT,
            "png",
            &mods,
            &[("exp", "1700000000")],
        ))
        .await;
    assert_eq!(
        (expired.status().as_u16(), error_of(&expired)),
        (410, "Expired".into())
    );

    for (ext, options, needle) in [
        (
            "png",
            vec![("scale", "5")],
            "option `scale` must be a number from 0.1 to 4",
        ),
        (
            "png",
            vec![("width", "0")],
            "option `width` must be a whole number from 16 to 10000",
        ),
        (
            "png",
            vec![("quality", "80")],
            "`quality` applies to .jpg and .webp only",
        ),
        ("jpg", vec![("quality", "101")], "option `quality`"),
        ("pdf", vec![("width", "500")], "a PDF is vector"),
        ("png", vec![("scale", "1"), ("width", "100")], "not both"),
        ("png", vec![("v", "a b")], "option `v`"),
    ] {
        let response = app.get(&signed_url(&app, CERT, ext, &mods, &options)).await;
        assert_eq!(response.status(), 400, "{options:?}");
        assert!(
            error_of(&response).starts_with("Bad request: "),
            "{}",
            error_of(&response)
        );
        assert!(
            error_of(&response).contains(needle),
            "{}",
            error_of(&response)
        );
    }
    let huge = app
        .get(&signed_url(&app, CERT, "png", &mods, &[("scale", "4")]))
        .await;
    assert_eq!(huge.status(), 400, "8000×5656 is over max_pixels");
    assert!(
        error_of(&huge).starts_with("Request too large: the output would be 8000x5656"),
        "{}",
        error_of(&huge)
    );
}

#[tokio::test]
async fn every_format_answers_with_its_content_type() {
    let app = spawn_app().await;
    let mods = json!([{ "name": "text_candidate", "text": "Ada" }]);
    for (ext, content_type, magic) in [
        ("png", "image/png", &b"\x89PNG"[..]),
        ("jpg", "image/jpeg", &b"\xFF\xD8\xFF"[..]),
        ("jpeg", "image/jpeg", &b"\xFF\xD8\xFF"[..]),
        ("webp", "image/webp", &b"RIFF"[..]),
        ("pdf", "application/pdf", &b"%PDF"[..]),
    ] {
        let response = app.get(&signed_url(&app, CERT, ext, &mods, &[])).await;
        assert_eq!(response.status(), 200, "{ext}");
        assert_eq!(response.headers()["content-type"], content_type);
        assert!(response.bytes().await.unwrap().starts_with(magic), "{ext}");
    }
}

#[tokio::test]
async fn bad_layer_input_is_a_clear_error() {
    let app = spawn_with(|c| c.max_url_bytes = 1 << 20).await;
    copy_dir(
        &repo().join("tests/reference/templates"),
        &app.templates.path().join(USER),
    );
    for (mods, status, message) in [
        (json!([{ "name": "panel", "color": "red" }]), 400, "Invalid modifications: color of layer `panel` must be #rgb, #rrggbb or #rrggbbaa (got `red`)"),
        (json!([{ "name": "logo", "src": "../../etc/passwd" }]), 400, "Invalid modifications: src of layer `logo`: src must be an asset name"),
        (json!([{ "name": "logo", "src": "missing.png" }]), 422, "Asset not found: missing.png"),
        (json!([{ "name": "logo", "src": "https://evil.example/x.png" }]), 400, "Invalid modifications: src of layer `logo`"),
        (json!([{ "name": "qr", "qrcode": "x".repeat(3000) }]), 400, "Invalid modifications: qrcode of layer `qr` has 3000 bytes"),
        (json!([{ "name": "panel", "visible": "no" }]), 400, "Invalid modifications: invalid type"),
    ] {
        let response = app.get(&signed_url(&app, "layers", "png", &mods, &[])).await;
        assert_eq!(response.status(), status, "{}", error_of(&response));
        assert!(error_of(&response).starts_with(message), "{}", error_of(&response));
    }
    // A layer kind mismatch is a warning, like an unknown layer.
    let mods = json!([{ "name": "panel", "src": "seal.png" }]);
    let response = app
        .get(&signed_url(&app, "layers", "png", &mods, &[]))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-stencil-warning"],
        "layer `panel` is not an <image>"
    );
}
