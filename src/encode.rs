//! Encoding a rendered pixmap as PNG, JPEG or WebP (PDF is written from
//! the vector tree, in `render`).
//!
//! tiny-skia's own encoder always writes RGBA at the png crate's default
//! (balanced) level after copying the whole canvas to demultiply it.
//! Certificates are opaque, so here an opaque canvas is written as RGB
//! (no alpha to compress, no demultiplication), and the compression level is
//! a parameter so `benches/encode.rs` can compare them on real output.

use resvg::tiny_skia::Pixmap;

pub use png::{DeflateCompression, Filter};

/// How to compress: the DEFLATE level and the row filter.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub deflate: DeflateCompression,
    pub filter: Filter,
}

/// What the server uses, chosen with `benches/encode.rs` on the demo
/// certificate: level 5 (zlib-rs) over RGB is as small as tiny-skia's
/// default encoding (1.00x its size with the stock miniz backend) in 40% of
/// its time; lower levels grow the file by 14% or more.
pub const SERVER: Settings = Settings {
    deflate: DeflateCompression::Level(5),
    filter: Filter::Adaptive,
};

/// Straight-alpha pixels for an encoder: RGB when every pixel is opaque
/// (nothing to demultiply, a quarter less to compress), RGBA otherwise.
enum Pixels {
    Rgb(Vec<u8>),
    Rgba(Vec<u8>),
}

fn pixels(pixmap: &Pixmap) -> Pixels {
    let data = pixmap.data();
    if data.chunks_exact(4).all(|p| p[3] == 255) {
        // Premultiplied and straight colour agree where alpha is 255.
        Pixels::Rgb(
            data.chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
        )
    } else {
        Pixels::Rgba(pixmap.clone().take_demultiplied())
    }
}

/// Encodes `pixmap` as PNG: RGB when every pixel is opaque, RGBA otherwise.
pub fn encode_png(pixmap: &Pixmap, settings: Settings) -> Result<Vec<u8>, png::EncodingError> {
    let (color, pixels) = match pixels(pixmap) {
        Pixels::Rgb(rgb) => (png::ColorType::Rgb, rgb),
        Pixels::Rgba(rgba) => (png::ColorType::Rgba, rgba),
    };
    let mut out = Vec::with_capacity(pixmap.data().len() / 4);
    let mut encoder = png::Encoder::new(&mut out, pixmap.width(), pixmap.height());
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_deflate_compression(settings.deflate);
    encoder.set_filter(settings.filter);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(out)
}

/// Largest side each raster format can hold.
pub const MAX_JPEG_SIDE: u32 = 65_535;
pub const MAX_WEBP_SIDE: u32 = 16_383;

/// Encodes `pixmap` as baseline JPEG at `quality` (1–100). JPEG has no
/// alpha: translucent pixels are composited onto white, as a browser shows
/// them on a white page.
pub fn encode_jpeg(pixmap: &Pixmap, quality: u8) -> Result<Vec<u8>, String> {
    let (w, h) = side_u16(pixmap, MAX_JPEG_SIDE)?;
    let rgb: Vec<u8> = pixmap
        .data()
        .chunks_exact(4)
        .flat_map(|p| {
            // Premultiplied: colour + (1 - alpha) × white.
            let white = 255 - p[3];
            [p[0] + white, p[1] + white, p[2] + white]
        })
        .collect();
    let mut out = Vec::with_capacity(rgb.len() / 10);
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Encodes `pixmap` as lossy WebP at `quality` (1–100), keeping alpha when
/// there is any.
pub fn encode_webp(pixmap: &Pixmap, quality: u8) -> Result<Vec<u8>, String> {
    side_u16(pixmap, MAX_WEBP_SIDE)?;
    let (w, h) = (pixmap.width(), pixmap.height());
    let pixels = pixels(pixmap);
    let encoder = match &pixels {
        Pixels::Rgb(rgb) => webp::Encoder::from_rgb(rgb, w, h),
        Pixels::Rgba(rgba) => webp::Encoder::from_rgba(rgba, w, h),
    };
    let memory = encoder.encode_simple(false, f32::from(quality));
    memory
        .map(|m| m.to_vec())
        .map_err(|e| format!("WebP encoding: {e:?}"))
}

fn side_u16(pixmap: &Pixmap, max: u32) -> Result<(u16, u16), String> {
    let (w, h) = (pixmap.width(), pixmap.height());
    if w > max || h > max {
        return Err(format!(
            "{w}×{h} is over the format's limit of {max} pixels a side"
        ));
    }
    Ok((w as u16, h as u16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use resvg::tiny_skia::{Color, Pixmap};

    fn roundtrip(pixmap: &Pixmap) -> Pixmap {
        Pixmap::decode_png(&encode_png(pixmap, SERVER).unwrap()).unwrap()
    }

    #[test]
    fn an_opaque_canvas_round_trips_exactly() {
        let mut pixmap = Pixmap::new(7, 5).unwrap();
        pixmap.fill(Color::from_rgba8(10, 200, 30, 255));
        pixmap.pixels_mut()[3] = resvg::tiny_skia::ColorU8::from_rgba(1, 2, 3, 255).premultiply();
        assert_eq!(roundtrip(&pixmap).data(), pixmap.data());
    }

    #[test]
    fn jpeg_and_webp_have_their_signatures_and_side_limits() {
        let mut pixmap = Pixmap::new(16, 16).unwrap();
        pixmap.fill(Color::from_rgba8(0, 0, 0, 0));
        let jpeg = encode_jpeg(&pixmap, 90).unwrap();
        assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF]);
        let webp = encode_webp(&pixmap, 80).unwrap();
        assert_eq!((&webp[..4], &webp[8..12]), (&b"RIFF"[..], &b"WEBP"[..]));
        let decoded = webp::Decoder::new(&encode_webp(&pixmap, 80).unwrap())
            .decode()
            .unwrap();
        assert_eq!(decoded.width(), 16);
        let big = Pixmap::new(MAX_WEBP_SIDE + 1, 1).unwrap();
        assert!(encode_webp(&big, 80).is_err());
    }

    #[test]
    fn a_translucent_canvas_keeps_its_alpha() {
        let mut pixmap = Pixmap::new(3, 3).unwrap();
        pixmap.fill(Color::from_rgba8(200, 100, 50, 128));
        assert_eq!(roundtrip(&pixmap).data(), pixmap.data());
        assert_eq!(
            Pixmap::decode_png(&pixmap.encode_png().unwrap())
                .unwrap()
                .data(),
            roundtrip(&pixmap).data()
        );
    }
}
