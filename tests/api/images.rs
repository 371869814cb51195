//! Images given in a URL (`src` as a `data:` URI) are decoded strictly and
//! bounded by their layer before any format is written: a broken or
//! oversized one is a `422` naming the layer, in every format alike, never
//! an empty layer or a `500` from the PDF writer.

use base64::Engine;
use serde_json::json;

use crate::helpers::*;

const PHOTO: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300"><rect width="400" height="300" fill="#eee"/><image id="photo" x="100" y="50" width="200" height="200" href="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="/></svg>"##;

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(kind);
    out.extend(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend(crc.finalize().to_be_bytes());
}

/// A PNG of `w`×`h` in colour type `colour` at 8 bits, with `rows` as the
/// filtered scanlines, with or without a palette.
fn png(w: u32, h: u32, colour: u8, rows: &[u8], palette: bool) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, colour, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    if palette {
        chunk(&mut out, b"PLTE", &[255, 0, 0]);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut z, rows).unwrap();
    chunk(&mut out, b"IDAT", &z.finish().unwrap());
    chunk(&mut out, b"IEND", &[]);
    out
}

fn uri(kind: &str, bytes: &[u8]) -> String {
    format!(
        "data:image/{kind};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// A JPEG whose header declares `w`×`h` and whose data is cut short.
fn truncated_jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 90)
        .encode(&[200u8; 16 * 16 * 3], 16, 16, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    let sof = jpeg.windows(2).position(|m| m == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    jpeg.truncate(jpeg.len() - 40);
    jpeg
}

async fn answer(app: &TestApp, ext: &str, src: &str) -> (u16, String) {
    let mods = json!([{ "name": "photo", "src": src }]);
    let response = app.get(&signed_url(app, "photo", ext, &mods, &[])).await;
    (response.status().as_u16(), error_of(&response))
}

#[tokio::test]
async fn a_png_that_does_not_decode_is_refused_in_every_format() {
    let app = spawn_app().await;
    app.write_template(USER, "photo.svg", PHOTO);
    let rows: Vec<u8> = (0..4).flat_map(|_| [0u8, 1, 2, 3, 4]).collect();
    let good = png(
        4,
        4,
        2,
        &(0..4).flat_map(|_| [0u8; 13]).collect::<Vec<_>>(),
        false,
    );
    let cases = [
        ("a palette image without PLTE", png(4, 4, 3, &rows, false)),
        ("an unknown filter byte", {
            let mut rows = rows.clone();
            rows[0] = 9;
            png(4, 4, 3, &rows, true)
        }),
        ("a truncated IDAT", {
            let mut cut = good.clone();
            cut.truncate(cut.len() - 20);
            cut
        }),
    ];
    assert_eq!(answer(&app, "png", &uri("png", &good)).await.0, 200);
    for (what, bytes) in cases {
        for ext in ["png", "pdf", "jpg", "webp"] {
            let (status, error) = answer(&app, ext, &uri("png", &bytes)).await;
            assert_eq!(status, 422, "{what} as .{ext}: {error}");
            assert!(
                error.starts_with("Image rejected: layer `photo`: the PNG does not decode"),
                "{what} as .{ext}: {error}"
            );
        }
    }
}

#[tokio::test]
async fn an_image_far_larger_than_its_layer_is_refused_before_decoding() {
    let app = spawn_app().await;
    app.write_template(USER, "photo.svg", PHOTO);
    // 328 bytes declaring 5000×5000 on a 200×200 layer.
    let (status, error) = answer(&app, "png", &uri("jpeg", &truncated_jpeg(5000, 5000))).await;
    assert_eq!(status, 422, "{error}");
    assert!(
        error.contains("5000x5000 pixels is over the limit of 160000"),
        "{error}"
    );
    // A 1-bit PNG of 12,000×12,000 compresses to a few kilobytes.
    let mut header = png(1, 1, 0, &[0, 0], false);
    header[16..20].copy_from_slice(&12_000u32.to_be_bytes());
    header[20..24].copy_from_slice(&12_000u32.to_be_bytes());
    let (status, error) = answer(&app, "pdf", &uri("png", &header)).await;
    assert_eq!(status, 422, "{error}");
    assert!(error.contains("12000x12000 pixels is over"), "{error}");
}

#[tokio::test]
async fn a_jpeg_cut_short_is_refused_and_a_whole_one_drawn() {
    let app = spawn_app().await;
    app.write_template(USER, "photo.svg", PHOTO);
    let (status, error) = answer(&app, "png", &uri("jpeg", &truncated_jpeg(16, 16))).await;
    assert_eq!(status, 422, "{error}");
    assert!(error.contains("the JPEG does not decode"), "{error}");
    let mut whole = Vec::new();
    jpeg_encoder::Encoder::new(&mut whole, 90)
        .encode(&[10u8; 16 * 16 * 3], 16, 16, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    let mods = json!([{ "name": "photo", "src": uri("jpeg", &whole) }]);
    let response = app.get(&signed_url(&app, "photo", "png", &mods, &[])).await;
    assert_eq!(response.status(), 200, "{}", error_of(&response));
    let image = decode_png(&response.bytes().await.unwrap());
    assert!(pixel(&image, 200, 150)[0] < 40, "the JPEG was drawn");
}
