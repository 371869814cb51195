//! Unit tests of template preparation, planning and splicing.

use super::*;
use crate::render::RenderLimits;

fn renderer() -> Renderer {
    let fonts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fonts");
    let limits = RenderLimits {
        max_pixels: 1 << 24,
        max_image_bytes: 1 << 20,
        max_image_pixels: 1 << 20,
        max_memory_bytes: 1 << 30,
        memory_wait: std::time::Duration::from_secs(10),
        max_nodes: 10_000,
    };
    Renderer::new(&fonts, &[], limits).unwrap()
}

fn prepare(svg: &str) -> Template {
    Template::prepare("u", svg.into(), std::env::temp_dir(), &renderer()).unwrap()
}

fn apply_all(t: &Template, mods: &[Modification]) -> Result<Applied, RenderError> {
    t.apply(&t.plan(mods), &renderer())
}

fn apply(t: &Template, name: &str, text: &str) -> String {
    apply_all(t, &[Modification::text(name, text)]).unwrap().svg
}

const SVG: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text id="a" x="5" y="9">old</text><svg:text xmlns:svg="http://www.w3.org/2000/svg" id="b" style="x"><tspan x="1 2" y="3" id="c">Jane</tspan><tspan x="1" y="6">Doe</tspan></svg:text><text id="e"/><rect id="r"/></svg>"#;

#[test]
fn text_replaces_the_content_and_is_escaped() {
    let t = prepare(SVG);
    let out = apply(&t, "a", "<b>&'\"");
    assert!(
        out.contains(r#"<text id="a" x="5" y="9">&lt;b&gt;&amp;&apos;&quot;</text>"#),
        "{out}"
    );
    let self_closing = apply(&t, "e", "x");
    assert!(
        self_closing.contains(r#"<text id="e">x</text>"#),
        "{self_closing}"
    );
}

#[test]
fn text_goes_into_the_first_tspan_and_other_runs_are_dropped() {
    let t = prepare(SVG);
    let out = apply(&t, "b", "Ada");
    assert!(
        out.contains(r#"<svg:text xmlns:svg="http://www.w3.org/2000/svg" id="b" style="x"><tspan x="1 2" y="3" id="c">Ada</tspan></svg:text>"#),
        "{out}"
    );
    assert!(!out.contains("Doe"));
}

#[test]
fn line_feeds_become_lines_under_the_first() {
    let t = prepare(SVG);
    let out = apply(&t, "b", "Ada\nLovelace");
    assert!(
        out.contains(r#">Ada<tspan x="1" dy="1.2em">Lovelace</tspan></tspan></svg:text>"#),
        "{out}"
    );
}

#[test]
fn unknown_non_text_and_nested_layers_are_warnings() {
    let t = prepare(SVG);
    let mods = [
        Modification::text("zz", "x"),
        Modification::text("r", "x"),
        Modification::text("b", "x"),
        Modification::text("c", "y"),
    ];
    let plan = t.plan(&mods);
    assert_eq!(plan.warnings.len(), 3, "{:?}", plan.warnings);
    let out = t.apply(&plan, &renderer()).unwrap().svg;
    assert!(out.contains(">x</tspan>") && !out.contains(">y<"), "{out}");
}

#[test]
fn colour_is_appended_to_the_style_and_hidden_layers_vanish() {
    let t = prepare(SVG);
    let mods = [
        Modification {
            name: "r".into(),
            color: Some("#0a0b0c80".into()),
            ..Modification::default()
        },
        Modification {
            name: "a".into(),
            visible: Some(false),
            ..Modification::default()
        },
        Modification {
            text: Some("Ada".into()),
            color: Some("#f00".into()),
            ..Modification::text("b", "")
        },
    ];
    let out = apply_all(&t, &mods).unwrap().svg;
    assert!(
        out.contains(r##"<rect id="r" style="fill:#0a0b0c;fill-opacity:0.502"></rect>"##),
        "{out}"
    );
    assert!(!out.contains(r#"id="a""#), "{out}");
    assert!(
        out.contains(
            r##"style="x;fill:#ff0000"><tspan x="1 2" y="3" id="c" style="fill:#ff0000">Ada"##
        ),
        "{out}"
    );
}

#[test]
fn a_qr_code_fills_the_box_with_square_modules_and_a_quiet_zone() {
    let t = prepare(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100"><rect id="q" x="10" y="20" width="100" height="60" transform="rotate(1)"/></svg>"#,
    );
    let mods = [Modification {
        name: "q".into(),
        qrcode: Some("https://example.org/v/123".into()),
        ..Modification::default()
    }];
    let out = apply_all(&t, &mods).unwrap().svg;
    // Version 2 (25 modules) + 8 quiet modules in a 60-unit square.
    let module = 60.0_f32 / 33.0;
    assert!(out.contains(r##"<g id="q" transform="rotate(1)"><rect x="10" y="20" width="100" height="60" fill="#ffffff"/>"##), "{out}");
    assert!(
        out.contains(&format!(
            "translate({} {}) scale({module})",
            30.0 + 4.0 * module,
            20.0 + 4.0 * module
        )),
        "{out}"
    );
    assert!(
        out.contains("M0 0h7v1h-7z"),
        "the finder pattern's top row: {out}"
    );
}

#[test]
fn src_takes_an_asset_inside_the_folder_or_a_data_uri_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("assets")).unwrap();
    let png = crate::encode::encode_png(
        &resvg::tiny_skia::Pixmap::new(2, 2).unwrap(),
        crate::encode::SERVER,
    )
    .unwrap();
    std::fs::write(dir.path().join("assets/logo.png"), &png).unwrap();
    std::fs::write(dir.path().join("assets/fake.png"), b"not a png").unwrap();
    let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="9" height="9"><image id="i" width="9" height="9" xlink:href="assets/logo.png"/></svg>"#;
    let dir = dir.path().canonicalize().unwrap();
    let renderer = Arc::new(renderer());
    let t = Template::prepare("u", svg.into(), dir.clone(), &renderer).unwrap();
    let store = TemplateStore::new(dir.clone(), 1 << 20, Arc::clone(&renderer));
    let with = |src: &str| {
        let mods = [Modification {
            name: "i".into(),
            src: Some(src.into()),
            ..Modification::default()
        }];
        let assets = store.assets_blocking(&dir, &store::asset_names(&mods))?;
        t.apply_with(&t.plan(&mods), &renderer, &assets, 1.0)
    };
    use base64::Engine;
    let uri = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&png)
    );
    let out = with(&uri).unwrap().svg;
    assert!(
        out.contains(&format!(r#"xlink:href="{uri}"></image>"#)),
        "{out}"
    );
    let out = with("logo.png").unwrap().svg;
    assert!(
        out.contains(r#"xlink:href="assets/logo.png"></image>"#),
        "{out}"
    );
    for missing in ["nope.png", "fake.png"] {
        assert!(
            matches!(with(missing), Err(RenderError::AssetNotFound(m)) if m.starts_with(missing))
        );
    }
    // A 9×9 layer takes at most 256×256 pixels (the floor of the bound).
    let big = crate::encode::encode_png(
        &resvg::tiny_skia::Pixmap::new(300, 300).unwrap(),
        crate::encode::SERVER,
    )
    .unwrap();
    std::fs::write(dir.join("assets/big.png"), &big).unwrap();
    assert!(
        matches!(with("big.png"), Err(RenderError::ImageRejected(m)) if m.contains("over the layer's limit")),
    );
    let big_uri = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&big)
    );
    assert!(
        matches!(with(&big_uri), Err(RenderError::ImageRejected(m)) if m.starts_with("layer `i`"))
    );
}

#[test]
fn text_no_font_covers_is_refused_with_its_code_points() {
    let t = prepare(SVG);
    let err = apply_all(
        &t,
        &[Modification::text("a", "Ada \u{10FFFD}\u{E000} \u{200D}")],
    )
    .unwrap_err();
    assert_eq!(err, RenderError::MissingGlyphs("U+10FFFD, U+E000".into()));
    // Each code point once, across layers too.
    let mods = [
        Modification::text("a", "\u{E000}\u{10FFFD}"),
        Modification::text("e", "\u{E001}\u{E000}"),
    ];
    let err = apply_all(&t, &mods).unwrap_err();
    assert_eq!(
        err,
        RenderError::MissingGlyphs("U+E000, U+10FFFD, U+E001".into())
    );
}

const FITTED: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="400"><rect id="box" x="100" y="100" width="800" height="200" fill="none"/><text id="name" x="500" y="250" text-anchor="middle" font-family="serif" font-size="100" data-fit="shrink" data-box="box" data-min-size="20" data-overflow="ellipsis">Jane Doe</text><text id="w" x="500" y="250" font-size="100" data-fit="wrap" data-width="600" data-max-lines="3">Jane</text></svg>"#;

/// The ink of layer `id` in the rendered SVG, in canvas units.
fn ink(svg: &str, id: &str) -> resvg::usvg::Rect {
    let r = renderer();
    let doc = r.parse_xml(svg).unwrap();
    let (tree, _, _) = r.check(&doc, &std::env::temp_dir()).unwrap();
    match tree.node_by_id(id) {
        Some(resvg::usvg::Node::Text(t)) => t.flattened().abs_bounding_box(),
        _ => panic!("no text {id} in {svg}"),
    }
}

#[test]
fn fitted_names_short_and_long_stay_inside_their_box() {
    let t = prepare(FITTED);
    for name in [
        "Al",
        "Maximiliana Wilhelmina Augusta von Hohenzollern-Sigmaringen",
        "Ṣọ̀lá Ọlábísí-Adéyẹmí",
    ] {
        let applied = apply_all(&t, &[Modification::text("name", name)]).unwrap();
        let b = ink(&applied.svg, "name");
        assert!(b.left() >= 99.99 && b.right() <= 900.01, "{name}: {b:?}");
        assert!(b.top() >= 100.0 && b.bottom() <= 300.0, "{name}: {b:?}");
        assert!(applied.fit[0].starts_with("name="), "{:?}", applied.fit);
    }
    let short = apply_all(&t, &[Modification::text("name", "Al")]).unwrap();
    assert_eq!(short.fit, vec!["name=100px/1 line"]);
}

#[test]
fn wrapped_text_breaks_into_lines_inside_its_width() {
    let t = prepare(FITTED);
    let applied = apply_all(
        &t,
        &[Modification::text(
            "w",
            "Augusta Ada King Countess of Lovelace",
        )],
    )
    .unwrap();
    assert!(applied.fit[0].contains("lines"), "{:?}", applied.fit);
    let b = ink(&applied.svg, "w");
    // `data-width` with text-anchor start: the box is x .. x + 600.
    assert!(b.left() >= 500.0 && b.right() <= 1100.0, "{b:?}");
    assert!(
        b.bottom() <= 250.0 + 40.0,
        "the last line stays on the baseline: {b:?}"
    );
}

#[test]
fn an_overflow_under_error_is_refused_and_under_ellipsis_is_cut() {
    let t = prepare(&FITTED.replace(r#" data-overflow="ellipsis""#, ""));
    let long = "W".repeat(200);
    assert_eq!(
        apply_all(&t, &[Modification::text("name", &long)]).unwrap_err(),
        RenderError::DoesNotFit("name".into())
    );
    let t = prepare(FITTED);
    let applied = apply_all(&t, &[Modification::text("name", &long)]).unwrap();
    assert_eq!(applied.fit, vec!["name=20px/1 line/ellipsis"]);
    assert!(applied.svg.contains("W…</text>"));
    let b = ink(&applied.svg, "name");
    assert!(b.left() >= 99.99 && b.right() <= 900.01, "{b:?}");
}

#[test]
fn bad_fit_declarations_reject_the_template() {
    for (from, to) in [
        (r#"data-fit="shrink""#, r#"data-fit="squeeze""#),
        (r#"data-box="box""#, r#"data-box="nope""#),
        (r#"data-min-size="20""#, r#"data-min-size="-1""#),
        (r#"data-overflow="ellipsis""#, r#"data-overflow="hide""#),
    ] {
        let svg = FITTED.replace(from, to);
        let err = Template::prepare("u", svg, std::env::temp_dir(), &renderer()).unwrap_err();
        assert!(
            matches!(err, TemplateError::Rejected(ref m) if m.contains("`name`")),
            "{to}: {err:?}"
        );
    }
}

#[test]
fn an_overlay_goes_last_in_the_root_whatever_the_edits_and_what_follows() {
    let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10" viewBox="0 0 40 20"><text id="a" x="5" y="9">old</text></svg ><!-- </svg> -->"#;
    let t = prepare(svg);
    assert_eq!(t.user_box(), [0.0, 0.0, 40.0, 20.0]);
    let applied = apply_all(&t, &[Modification::text("a", "a much longer text")]).unwrap();
    let out = t.with_overlay(&applied, "<g id=\"o\"/>").unwrap();
    assert!(
        out.ends_with(r#"a much longer text</text><g id="o"/></svg ><!-- </svg> -->"#),
        "{out}"
    );
    assert!(roxmltree::Document::parse(&out).is_ok());
    // Without a viewBox the user box is the canvas.
    let t =
        prepare(r#"<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"><rect/></svg>"#);
    assert_eq!(t.user_box(), [0.0, 0.0, 20.0, 10.0]);
}
