//! PNG encoding of a rendered pixmap.
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

/// Encodes `pixmap` as PNG: RGB when every pixel is opaque, RGBA otherwise.
pub fn encode_png(pixmap: &Pixmap, settings: Settings) -> Result<Vec<u8>, png::EncodingError> {
    let data = pixmap.data();
    let opaque = data.chunks_exact(4).all(|p| p[3] == 255);
    let (color, pixels) = if opaque {
        // Premultiplied and straight colour agree where alpha is 255.
        let rgb: Vec<u8> = data
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        (png::ColorType::Rgb, rgb)
    } else {
        (png::ColorType::Rgba, pixmap.clone().take_demultiplied())
    };
    let mut out = Vec::with_capacity(data.len() / 4);
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
