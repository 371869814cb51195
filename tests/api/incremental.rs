//! Incremental renders are whole renders, pixel for pixel: two servers,
//! one with template bases and one without (`base_cache_max_bytes = 0`),
//! answer the same URLs, and the decoded images must be identical. Every
//! template in the repository is covered, each of its text layers edited
//! alone and all together, plus the other kinds of edit, other formats and
//! sizes, and templates that must fall back to whole renders.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::helpers::*;
use super::reference::decode_png_rgba;

/// A server with bases and one without, with every template of the repo
/// (the shipped ones, the reference ones, the incremental ones).
async fn pair() -> (TestApp, TestApp) {
    let on = spawn_reference_app().await;
    let off = spawn_with(|c| c.base_cache_max_bytes = 0).await;
    copy_dir(
        &repo().join("tests/reference/templates"),
        &off.templates.path().join(USER),
    );
    for app in [&on, &off] {
        copy_dir(
            &repo().join("tests/incremental/templates"),
            &app.templates.path().join(USER),
        );
    }
    (on, off)
}

/// Every `.svg` of the repository's template folders.
fn templates() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in [
        repo().join("templates").join(USER),
        repo().join("tests/reference/templates"),
        repo().join("tests/incremental/templates"),
    ] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "svg") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Ids of a template's `<text>` layers.
fn text_layers(path: &Path) -> Vec<String> {
    let source = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&source).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.attribute("id").map(str::to_owned))
        .collect()
}

/// Templates whose renders must stay whole, and why.
const WHOLE: &[&str] = &["faded", "referenced", "sibling-style"];

/// `server-timing`'s description: how the image was rendered.
fn how(response: &reqwest::Response) -> String {
    let timing = response.headers()["server-timing"].to_str().unwrap();
    timing.split("desc=").nth(1).unwrap_or("").to_string()
}

/// Requests `mods` from both servers and asserts the same pixels (the
/// same bytes for JPEG and WebP, whose encoders are deterministic), and
/// that the server with bases rendered as `expect`. A base is built after
/// the first miss that needs it, which renders whole: an incremental
/// render is first asked for under another cache key (`v`), so that the
/// compared one finds its base built or being built.
async fn same(
    on: &TestApp,
    off: &TestApp,
    base: &str,
    ext: &str,
    mods: &Value,
    options: &[(&str, &str)],
    expect: &str,
) {
    if expect == "incremental" {
        let mut first = options.to_vec();
        first.push(("v", "first"));
        let first = on.get(&signed_url(on, base, ext, mods, &first)).await;
        assert_eq!(first.status(), 200, "{}", error_of(&first));
    }
    let a = on.get(&signed_url(on, base, ext, mods, options)).await;
    let b = off.get(&signed_url(off, base, ext, mods, options)).await;
    let what = format!("{base}.{ext} {mods} {options:?}");
    assert_eq!(a.status(), 200, "{what}: {}", error_of(&a));
    assert_eq!(b.status(), 200, "{what}: {}", error_of(&b));
    assert_eq!(how(&a), expect, "{what}");
    assert_eq!(how(&b), "whole", "{what}");
    let (a, b) = (a.bytes().await.unwrap(), b.bytes().await.unwrap());
    if ext == "png" {
        let (a, b) = (decode_png_rgba(&a), decode_png_rgba(&b));
        assert_eq!((a.width, a.height), (b.width, b.height), "{what}");
        let differ = a
            .rgba
            .chunks(4)
            .zip(b.rgba.chunks(4))
            .filter(|(p, q)| p != q)
            .count();
        assert_eq!(differ, 0, "{what}: {differ} pixels differ");
    } else {
        assert!(a == b, "{what}: the bodies differ");
    }
}

#[tokio::test]
async fn every_template_renders_the_same_pixels_incrementally_as_whole() {
    let (on, off) = pair().await;
    let mut checked = 0;
    for path in templates() {
        let base = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let expect = if WHOLE.contains(&base.as_str()) {
            "whole"
        } else {
            "incremental"
        };
        let layers = text_layers(&path);
        assert!(!layers.is_empty(), "{base} has text layers");
        // Each layer alone, twice with different text (the second reuses
        // the canvas the first dirtied), then all of them together.
        for round in ["Zoë Ångström", "Li Wei"] {
            for layer in &layers {
                let mods = json!([{ "name": layer, "text": format!("{round} {layer}") }]);
                same(&on, &off, &base, "png", &mods, &[], expect).await;
                checked += 1;
            }
        }
        let all: Vec<Value> = layers
            .iter()
            .map(|l| json!({ "name": l, "text": "Every layer" }))
            .collect();
        same(&on, &off, &base, "png", &Value::Array(all), &[], expect).await;
        // No edit that lands: everything comes from the base.
        let none = json!([{ "name": "no_such_layer", "text": "x" }]);
        same(&on, &off, &base, "png", &none, &[], expect).await;
        checked += 2;
    }
    assert!(checked > 60, "{checked} comparisons");
}

#[tokio::test]
async fn other_edits_formats_and_sizes_render_the_same_pixels() {
    let (on, off) = pair().await;
    let inc = "incremental";
    let cases = [
        (
            "stacked",
            json!([{ "name": "qr", "qrcode": "https://example.org/v/1" }]),
        ),
        (
            "stacked",
            json!([{ "name": "name", "text": "Colour", "color": "#cc0000" }]),
        ),
        ("stacked", json!([{ "name": "name", "visible": false }])),
        (
            "stacked",
            json!([{ "name": "shadow", "text": "Shade" }, { "name": "name", "text": "Shade" }]),
        ),
        (
            "layers",
            json!([{ "name": "logo", "src": "seal.png" }, { "name": "badge", "color": "#00aa88" }]),
        ),
        (
            "layers",
            json!([{ "name": "qr", "qrcode": "SIG-1" }, { "name": "title", "text": "A title long enough to wrap onto two lines" }]),
        ),
        (
            CERT,
            json!([{ "name": "qr_verify", "qrcode": "https://example.org/verify/SIG-2026" }]),
        ),
        (
            CERT,
            json!([{ "name": "text_candidate", "text": "Ada\nLovelace" }]),
        ),
    ];
    for (base, mods) in &cases {
        same(&on, &off, base, "png", mods, &[], inc).await;
    }
    let name = json!([{ "name": "text_candidate", "text": "Grace Hopper" }]);
    for ext in ["jpg", "webp"] {
        same(&on, &off, CERT, ext, &name, &[], inc).await;
    }
    same(&on, &off, CERT, "png", &name, &[("width", "640")], inc).await;
    same(&on, &off, CERT, "png", &name, &[("scale", "0.5")], inc).await;
    // Back to full size after other sizes, and on to another template.
    same(
        &on,
        &off,
        CERT,
        "png",
        &json!([{ "name": "text_candidate", "text": "Alan Turing" }]),
        &[],
        inc,
    )
    .await;
    same(
        &on,
        &off,
        "clear",
        "png",
        &json!([{ "name": "label", "text": "See-through" }]),
        &[],
        inc,
    )
    .await;
    // PDF is written from the vector tree, never from a base.
    let pdf = on.get(&signed_url(&on, CERT, "pdf", &name, &[])).await;
    assert_eq!(pdf.status(), 200);
    assert_eq!(how(&pdf), "whole");
}

#[tokio::test]
async fn the_first_miss_renders_whole_while_the_base_is_built_for_the_next() {
    let app = spawn_app().await;
    let name = |text: &str| json!([{ "name": "text_candidate", "text": text }]);
    let first = app
        .get(&signed_url(&app, CERT, "png", &name("Ada"), &[]))
        .await;
    assert_eq!(first.status(), 200);
    assert_eq!(how(&first), "whole");
    // The build started by the first miss is joined, not repeated.
    let second = app
        .get(&signed_url(&app, CERT, "png", &name("Grace"), &[]))
        .await;
    assert_eq!(second.status(), 200);
    assert_eq!(how(&second), "incremental");
    let health = app.health().await;
    assert_eq!(health["base_entries"], 1, "{health}");
}

#[tokio::test]
async fn a_template_edit_is_never_served_from_the_old_base() {
    let (on, off) = pair().await;
    let name = |text: &str| json!([{ "name": "name", "text": text }]);
    same(
        &on,
        &off,
        "clear",
        "png",
        &name("First"),
        &[],
        "incremental",
    )
    .await;
    // The same file changed under both servers: new version, new base.
    let edited = std::fs::read_to_string(repo().join("tests/incremental/templates/clear.svg"))
        .unwrap()
        .replace("#2255aa", "#aa2255")
        .replace(r#"id="label""#, r#"id="name""#);
    for app in [&on, &off] {
        app.write_template(USER, "clear.svg", &edited);
    }
    same(
        &on,
        &off,
        "clear",
        "png",
        &name("Second"),
        &[],
        "incremental",
    )
    .await;
    let url = signed_url(&on, "clear", "png", &name("Third"), &[]);
    let image = decode_png(&on.get(&url).await.bytes().await.unwrap());
    // The circle is the edited template's colour, not the base's.
    let [r, _, b, _] = pixel(&image, 40, 80);
    assert!(r > b, "the new circle colour shows: {r} vs {b}");
}
