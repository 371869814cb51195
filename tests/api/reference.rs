//! Reference images: each case is rendered by the real server, decoded
//! back to pixels (PDFs through poppler's `pdftoppm`) and compared with
//! `tests/reference/expected/<case>.png` within a per-format tolerance.
//!
//! `UPDATE_REFERENCES=1 cargo test --test api reference` writes the references
//! instead (inspect them before committing). On a mismatch the actual
//! image and a diff (differing pixels in red) are written to
//! `target/reference-diffs/`.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::helpers::*;

/// Decoded pixels, straight RGBA.
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

pub fn decode_png_rgba(bytes: &[u8]) -> Image {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("sized")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    buf.truncate(info.buffer_size());
    let rgba = match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        png::ColorType::GrayscaleAlpha => buf
            .chunks(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        png::ColorType::Grayscale => buf.iter().flat_map(|g| [*g, *g, *g, 255]).collect(),
        png::ColorType::Indexed => unreachable!("expanded"),
    };
    Image {
        width: info.width,
        height: info.height,
        rgba,
    }
}

fn encode_png_rgba(image: &Image) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, image.width, image.height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&image.rgba).unwrap();
    writer.finish().unwrap();
    out
}

/// Rasterises a response body back to pixels, whatever its format.
pub fn decode_any(ext: &str, body: &[u8]) -> Image {
    match ext {
        "png" => decode_png_rgba(body),
        "jpg" => {
            let mut decoder = zune_jpeg::JpegDecoder::new(std::io::Cursor::new(body));
            let rgb = decoder.decode().expect("a JPEG");
            let (w, h) = decoder.dimensions().expect("dimensions");
            Image {
                width: w as u32,
                height: h as u32,
                rgba: rgb
                    .chunks(3)
                    .flat_map(|p| [p[0], p[1], p[2], 255])
                    .collect(),
            }
        }
        "webp" => {
            let image = webp::Decoder::new(body).decode().expect("a WebP");
            let channels = if image.is_alpha() { 4 } else { 3 };
            Image {
                width: image.width(),
                height: image.height(),
                rgba: image
                    .chunks(channels)
                    .flat_map(|p| [p[0], p[1], p[2], if channels == 4 { p[3] } else { 255 }])
                    .collect(),
            }
        }
        "pdf" => {
            let dir = tempfile::tempdir().unwrap();
            let pdf = dir.path().join("out.pdf");
            std::fs::write(&pdf, body).unwrap();
            require_program("pdftoppm", "poppler-utils");
            let status = std::process::Command::new("pdftoppm")
                .args([
                    "-png",
                    "-singlefile",
                    "-scale-to-x",
                    "500",
                    "-scale-to-y",
                    "-1",
                ])
                .arg(&pdf)
                .arg(dir.path().join("page"))
                .status()
                .expect("pdftoppm runs");
            assert!(status.success());
            decode_png_rgba(&std::fs::read(dir.path().join("page.png")).unwrap())
        }
        other => panic!("no decoder for {other}"),
    }
}

struct Case {
    name: &'static str,
    base: &'static str,
    ext: &'static str,
    mods: Value,
    options: &'static [(&'static str, &'static str)],
}

/// Pixels may differ by `threshold` per channel; at most `fraction` of
/// them may differ by more.
fn tolerance(ext: &str) -> (u8, f64) {
    match ext {
        "png" => (24, 0.002),
        "jpg" | "webp" => (24, 0.005),
        _ => (48, 0.02),
    }
}

const SMALL: &[(&str, &str)] = &[("width", "500")];

fn name(text: &str) -> Value {
    json!([{ "name": "text_candidate", "text": text }])
}

fn cases() -> Vec<Case> {
    let cert = |name: &'static str, mods: Value| Case {
        name,
        base: CERT,
        ext: "png",
        mods,
        options: SMALL,
    };
    let seal = std::fs::read(repo().join("tests/reference/templates/assets/seal.png")).unwrap();
    let seal_uri = format!(
        "data:image/png;base64,{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, seal)
    );
    vec![
        cert("cert_short", name("Al")),
        cert(
            "cert_long",
            name("Maximiliana Wilhelmina Augusta von Hohenzollern-Sigmaringen"),
        ),
        cert("cert_two_lines", name("Augusta Ada\nKing-Noel")),
        cert(
            "cert_latin_diacritics",
            name("Ṣọ̀lá Ọlábísí-Adéyẹmí Łukasz Żółć"),
        ),
        cert(
            "cert_greek_cyrillic",
            json!([
                { "name": "text_candidate", "text": "Ελένη Παπαδοπούλου" },
                { "name": "text_course", "text": "Основы анализа данных" }
            ]),
        ),
        cert("cert_arabic", name("ليلى أحمد 2026")),
        cert("cert_hebrew", name("דוד בן-גוריון 1948")),
        cert("cert_hindi", name("अनन्या शर्मा")),
        cert("cert_thai", name("สมชาย ใจดี")),
        cert("cert_chinese", name("王小明")),
        cert("cert_japanese", name("山田 太郎")),
        cert("cert_korean", name("김민준")),
        cert("cert_emoji", name("Zoë 🎓🎉")),
        cert(
            "cert_qrcode",
            json!([
                { "name": "text_candidate", "text": "Ada Lovelace" },
                { "name": "qr_verify", "qrcode": "https://verify.example.org/c/SIG-2026-000001", "color": "#1d2a4d" }
            ]),
        ),
        Case {
            name: "cert_jpg",
            base: CERT,
            ext: "jpg",
            mods: name("Ada Lovelace"),
            options: &[("quality", "80"), ("width", "500")],
        },
        Case {
            name: "cert_webp",
            base: CERT,
            ext: "webp",
            mods: name("Ada Lovelace"),
            options: &[("quality", "80"), ("width", "500")],
        },
        Case {
            name: "cert_pdf",
            base: CERT,
            ext: "pdf",
            mods: name("Ada Lovelace"),
            options: &[],
        },
        Case {
            name: "layers_template",
            base: "layers",
            ext: "png",
            mods: json!([]),
            options: &[],
        },
        Case {
            name: "layers_every_kind",
            base: "layers",
            ext: "png",
            mods: json!([
                { "name": "panel", "color": "#cc3344" },
                { "name": "badge", "visible": false },
                { "name": "logo", "src": "seal.png" },
                { "name": "qr", "qrcode": "https://example.org/verify/42" },
                { "name": "title", "text": "Advanced Certificate in Applied Machine Learning" },
                { "name": "caption", "text": "Colour", "color": "#00aa0080" }
            ]),
            options: &[],
        },
        Case {
            name: "layers_data_uri_and_ellipsis",
            base: "layers",
            ext: "png",
            mods: json!([
                { "name": "logo", "src": seal_uri },
                { "name": "title", "text": "Postgraduate Diploma in Extraordinarily Long Course Names and Their Discontents Volume Two" }
            ]),
            options: &[],
        },
    ]
}

#[tokio::test]
async fn every_case_matches_its_reference_image() {
    let app = spawn_reference_app().await;
    let bless = std::env::var_os("UPDATE_REFERENCES").is_some();
    let expected_dir = repo().join("tests/reference/expected");
    let diff_dir = repo().join("target/reference-diffs");
    let mut failures = Vec::new();
    for case in cases() {
        let url = signed_url(&app, case.base, case.ext, &case.mods, case.options);
        let response = app.get(&url).await;
        assert_eq!(
            response.status(),
            200,
            "{}: {}",
            case.name,
            error_of(&response)
        );
        let body = response.bytes().await.unwrap();
        let actual = decode_any(case.ext, &body);
        let path = expected_dir.join(format!("{}.png", case.name));
        if bless {
            std::fs::write(&path, encode_png_rgba(&actual)).unwrap();
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            failures.push(format!(
                "{}: no reference (UPDATE_REFERENCES=1 writes it)",
                case.name
            ));
            continue;
        };
        let expected = decode_png_rgba(&bytes);
        if let Some(why) = compare(
            &actual,
            &expected,
            tolerance(case.ext),
            &diff_dir,
            case.name,
        ) {
            failures.push(format!("{}: {why}", case.name));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// `None` when the images agree within `tolerance`; otherwise why, with
/// the actual image and a diff written to `diff_dir`.
fn compare(
    actual: &Image,
    expected: &Image,
    (threshold, fraction): (u8, f64),
    diff_dir: &PathBuf,
    name: &str,
) -> Option<String> {
    if (actual.width, actual.height) != (expected.width, expected.height) {
        return Some(format!(
            "size {}×{}, reference {}×{}",
            actual.width, actual.height, expected.width, expected.height
        ));
    }
    let mut diff = Image {
        width: actual.width,
        height: actual.height,
        rgba: Vec::with_capacity(actual.rgba.len()),
    };
    let mut differing = 0usize;
    for (a, e) in actual.rgba.chunks(4).zip(expected.rgba.chunks(4)) {
        let off = a.iter().zip(e).any(|(x, y)| x.abs_diff(*y) > threshold);
        differing += usize::from(off);
        let grey = (e[0] / 4 + e[1] / 4 + e[2] / 4) / 3 + 128;
        diff.rgba.extend(if off {
            [255, 0, 0, 255]
        } else {
            [grey, grey, grey, 255]
        });
    }
    let share = differing as f64 / (actual.width * actual.height) as f64;
    if share <= fraction {
        return None;
    }
    std::fs::create_dir_all(diff_dir).unwrap();
    std::fs::write(
        diff_dir.join(format!("{name}.actual.png")),
        encode_png_rgba(actual),
    )
    .unwrap();
    std::fs::write(
        diff_dir.join(format!("{name}.diff.png")),
        encode_png_rgba(&diff),
    )
    .unwrap();
    Some(format!(
        "{:.3}% of pixels differ by more than {threshold} (allowed {:.3}%); see {}",
        share * 100.0,
        fraction * 100.0,
        diff_dir.display()
    ))
}

#[test]
fn the_comparison_catches_a_changed_region_and_forgives_noise() {
    let base = Image {
        width: 100,
        height: 100,
        rgba: vec![200; 100 * 100 * 4],
    };
    let mut noisy = Image {
        rgba: base.rgba.clone(),
        ..base
    };
    for (i, v) in noisy.rgba.iter_mut().enumerate() {
        *v = v.wrapping_add((i % 7) as u8);
    }
    let dir = std::env::temp_dir().join("signet-compare-test");
    assert_eq!(compare(&noisy, &base, (24, 0.002), &dir, "noise"), None);
    let mut changed = Image {
        rgba: base.rgba.clone(),
        ..base
    };
    changed.rgba[..4 * 100 * 3].fill(0);
    assert!(compare(&changed, &base, (24, 0.002), &dir, "changed").is_some());
    assert!(dir.join("changed.diff.png").exists());
}
