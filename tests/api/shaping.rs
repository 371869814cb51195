//! The shaping oracle: every name of `shaping_cases` is shaped by Signet
//! (the glyphs its renderer draws, from `Renderer::shape`) and by HarfBuzz
//! (`hb-shape` on the same font files), and the two must agree glyph for
//! glyph: face, glyph id, cluster and position. Where one face draws the
//! whole name its ink is also compared with `hb-view`'s.
//!
//! HarfBuzz shapes one run of one font and one direction at a time and does
//! no font fallback or bidi ordering, so each case spells out its runs by
//! hand: which font draws which characters, in which direction. Signet's
//! choice of fonts and visual order is checked against that, not against
//! itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use signet::render::{RenderLimits, Renderer};
use signet::shaping::Glyph;

use super::helpers::*;
use super::reference::decode_png_rgba;
use super::shaping_cases::{cases, Case, Dir, Font};

/// The size names are shaped at: with 1000-unit fonts a pixel is a unit.
const SIZE: f32 = 1000.0;
/// How far apart Signet's and HarfBuzz's glyph positions may be, in pixels
/// at `SIZE`: float rounding, nothing a reader could see.
const POSITION_SLACK: f32 = 0.5;
/// The size ink is compared at, and how far the ink boxes may differ in
/// pixels: two rasterisers antialias an edge differently.
const INK_SIZE: u32 = 100;
const INK_SLACK: i64 = 3;

/// The renderer as the server builds it from the default configuration.
pub fn renderer() -> &'static Renderer {
    static RENDERER: OnceLock<Renderer> = OnceLock::new();
    RENDERER.get_or_init(|| {
        let config = signet::config::Config::default();
        require_extra_fonts(&config);
        let limits = RenderLimits {
            max_nodes: 10_000,
            ..config.render_limits()
        };
        Renderer::new(&repo().join("fonts"), &config.extra_fonts, limits).expect("fonts load")
    })
}

fn font_path(font: Font) -> PathBuf {
    if font.file.starts_with('/') {
        PathBuf::from(font.file)
    } else {
        repo().join("fonts").join(font.file)
    }
}

/// A glyph as HarfBuzz places it, in Signet's terms.
#[derive(Debug)]
struct Expected {
    path: PathBuf,
    index: u32,
    id: u16,
    cluster: usize,
    x: f32,
    y: f32,
}

/// `hb-shape` on one run, its clusters made byte offsets into the whole
/// name and its positions pixels from the line's start at `pen`.
fn harfbuzz_run(font: Font, dir: Dir, text: &str, offset: usize, pen: &mut f32) -> Vec<Expected> {
    require_program("hb-shape", "libharfbuzz-bin");
    let path = font_path(font);
    require_file(&path.to_string_lossy(), "fonts-noto-core");
    let data = std::fs::read(&path).unwrap();
    let upem = ttf_parser::Face::parse(&data, font.index)
        .expect("a font")
        .units_per_em();
    let scale = SIZE / f32::from(upem);
    let output = Command::new("hb-shape")
        // No language from the locale (C is none): usvg shapes without one.
        .env("LC_ALL", "C.UTF-8")
        .env_remove("LANG")
        .args([
            "--output-format=json",
            "--no-glyph-names",
            "--utf8-clusters",
            &format!("--face-index={}", font.index),
            &format!("--direction={}", if dir == Dir::R { "rtl" } else { "ltr" }),
        ])
        .arg(&path)
        .arg(text)
        .output()
        .expect("hb-shape runs");
    assert!(output.status.success(), "hb-shape failed on {text:?}");
    let glyphs: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    let mut out = Vec::new();
    for g in glyphs {
        let int = |k: &str| g[k].as_i64().unwrap_or(0) as f32;
        out.push(Expected {
            path: path.clone(),
            index: font.index,
            id: g["g"].as_u64().unwrap_or(0) as u16,
            cluster: offset + g["cl"].as_u64().unwrap_or(0) as usize,
            x: *pen + int("dx") * scale,
            y: -(int("dy") * scale),
        });
        *pen += int("ax") * scale;
    }
    out
}

/// HarfBuzz's glyphs for a case, run after run in visual order: the runs
/// are given in logical order, and each stretch of right-to-left runs (with
/// the numbers inside it) is drawn from its last run to its first.
fn harfbuzz(case: &Case) -> Vec<Expected> {
    let mut offsets = Vec::new();
    let mut at = 0;
    for run in &case.runs {
        offsets.push(at);
        at += run.text.len();
    }
    assert_eq!(
        case.runs.iter().map(|r| r.text).collect::<String>(),
        case.text,
        "{}: the runs spell the name",
        case.name
    );
    let mut order: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < case.runs.len() {
        if case.runs[i].dir == Dir::L {
            order.push(i);
            i += 1;
            continue;
        }
        let start = i;
        while i < case.runs.len() && case.runs[i].dir != Dir::L {
            i += 1;
        }
        order.extend((start..i).rev());
    }
    let mut pen = 0.0;
    order
        .into_iter()
        .flat_map(|i| {
            let run = &case.runs[i];
            harfbuzz_run(run.font, run.dir, run.text, offsets[i], &mut pen)
        })
        .collect()
}

/// Why Signet's glyphs differ from HarfBuzz's, or `None`.
fn difference(signet: &[Glyph], expected: &[Expected]) -> Option<String> {
    let show = |g: &Glyph| {
        format!(
            "{}:{} cl {} at {:.1},{:.1}",
            g.face
                .path
                .as_deref()
                .and_then(Path::file_stem)
                .unwrap_or_default()
                .to_string_lossy(),
            g.id,
            g.cluster,
            g.x,
            g.y
        )
    };
    let show_hb = |e: &Expected| {
        format!(
            "{}:{} cl {} at {:.1},{:.1}",
            e.path.file_stem().unwrap_or_default().to_string_lossy(),
            e.id,
            e.cluster,
            e.x,
            e.y
        )
    };
    if signet.len() != expected.len() {
        return Some(format!(
            "{} glyphs, HarfBuzz {}:\n  signet   {:?}\n  harfbuzz {:?}",
            signet.len(),
            expected.len(),
            signet.iter().map(show).collect::<Vec<_>>(),
            expected.iter().map(show_hb).collect::<Vec<_>>()
        ));
    }
    for (i, (g, e)) in signet.iter().zip(expected).enumerate() {
        let same_face = g
            .face
            .path
            .as_deref()
            .and_then(|p| p.canonicalize().ok())
            .zip(e.path.canonicalize().ok())
            .is_some_and(|(a, b)| a == b)
            && g.face.index == e.index;
        if !same_face
            || g.id != e.id
            || g.cluster != e.cluster
            || (g.x - e.x).abs() > POSITION_SLACK
            || (g.y - e.y).abs() > POSITION_SLACK
        {
            return Some(format!(
                "glyph {i}: signet {}, harfbuzz {}",
                show(g),
                show_hb(e)
            ));
        }
    }
    None
}

/// The size of the box around an image's ink, as (width, height); `None`
/// for a blank image.
type InkBox = Option<(i64, i64)>;

/// The ink box of a PNG drawn dark on white.
fn ink_box(png: &[u8]) -> InkBox {
    let image = decode_png_rgba(png);
    let (mut x0, mut y0, mut x1, mut y1) = (i64::MAX, i64::MAX, i64::MIN, i64::MIN);
    for (i, p) in image.rgba.chunks(4).enumerate() {
        let dark = p[3] > 127 && (u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2])) < 384;
        if dark {
            let (x, y) = (
                (i as u32 % image.width) as i64,
                (i as u32 / image.width) as i64,
            );
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    (x0 <= x1).then(|| (x1 - x0 + 1, y1 - y0 + 1))
}

/// Signet's ink box and `hb-view`'s for a name one face draws in one run.
fn ink_boxes(case: &Case) -> (InkBox, InkBox) {
    require_program("hb-view", "libharfbuzz-bin");
    let run = &case.runs[0];
    let path = font_path(run.font);
    let out = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new("hb-view")
        .env("LC_ALL", "C.UTF-8")
        .env_remove("LANG")
        .args([
            "--output-format=png",
            &format!("--font-size={INK_SIZE}"),
            "--margin=0",
            &format!("--face-index={}", run.font.index),
            &format!(
                "--direction={}",
                if run.dir == Dir::R { "rtl" } else { "ltr" }
            ),
            "-o",
        ])
        .arg(out.path())
        .arg(&path)
        .arg(case.text)
        .status()
        .expect("hb-view runs");
    assert!(status.success(), "hb-view failed on {:?}", case.text);
    let harfbuzz = ink_box(&std::fs::read(out.path()).unwrap());

    let (text, family) = (xml_escape(case.text), xml_escape(case.family));
    let width = INK_SIZE * (case.text.chars().count() as u32 + 2);
    let svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}"><rect width="100%" height="100%" fill="white"/><text x="{INK_SIZE}" y="{INK_SIZE}" font-family="{family}" font-size="{INK_SIZE}">{text}</text></svg>"#,
        h = INK_SIZE * 2
    );
    let png = renderer()
        .render(
            &svg,
            &Default::default(),
            signet::request::Format::Png,
            &Default::default(),
        )
        .expect("renders");
    (ink_box(&png.body), harfbuzz)
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[test]
fn every_name_shapes_glyph_for_glyph_as_harfbuzz_shapes_it() {
    let mut failures = Vec::new();
    for case in cases() {
        let signet = match renderer().shape(case.family, SIZE, case.text) {
            Ok(glyphs) => glyphs,
            Err(e) => {
                failures.push(format!("{} {:?}: {e}", case.name, case.text));
                continue;
            }
        };
        if let Some(why) = difference(&signet, &harfbuzz(&case)) {
            failures.push(format!("{} {:?}: {why}", case.name, case.text));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_name_one_face_draws_has_the_ink_box_hb_view_draws() {
    let mut failures = Vec::new();
    for case in cases().iter().filter(|c| c.runs.len() == 1 && c.ink) {
        let (signet, harfbuzz) = ink_boxes(case);
        let close = match (signet, harfbuzz) {
            (Some((w, h)), Some((hw, hh))) => {
                (w - hw).abs() <= INK_SLACK && (h - hh).abs() <= INK_SLACK
            }
            _ => false,
        };
        if !close {
            failures.push(format!(
                "{} {:?}: signet ink {signet:?}, hb-view {harfbuzz:?}",
                case.name, case.text
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_oracle_catches_a_glyph_in_the_wrong_place() {
    // The comparison itself, on the issue's name: moving one glyph by a
    // pixel, or dropping one, is a difference.
    let case = cases()
        .into_iter()
        .find(|c| c.name == "devanagari_issue_direct")
        .expect("the case");
    let expected = harfbuzz(&case);
    let mut signet = renderer().shape(case.family, SIZE, case.text).unwrap();
    assert_eq!(difference(&signet, &expected), None);
    signet[3].x += 1.0;
    assert!(difference(&signet, &expected).is_some());
    signet[3].x -= 1.0;
    signet.remove(1);
    assert!(difference(&signet, &expected).is_some());
}
