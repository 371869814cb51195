//! PNG written as bands of rows that are filtered and compressed
//! independently, so that a render which changes a few rows of a known
//! image compresses only the bands holding them and copies the rest.
//!
//! A PNG's image data is one zlib stream cut into `IDAT` chunks. Here each
//! band is a raw DEFLATE stream of its own (fresh dictionary) ending in a
//! sync flush, so it stops on a byte boundary and any band can follow any
//! other; each band is one `IDAT` chunk with its CRC computed once; the
//! stream's Adler-32 is combined from the bands' checksums. A band's row
//! filters read the row above it, so a band is reused only when that row
//! is unchanged too.

use std::ops::Range;

use flate2::{Compress, Compression, FlushCompress};
use resvg::tiny_skia::Pixmap;

/// Rows per band: small enough that a line of text touches few bands,
/// large enough that a fresh dictionary per band costs little size.
pub const BAND_ROWS: u32 = 16;

/// The DEFLATE level of bands compressed per request, as `encode::SERVER`
/// chose for whole images.
const LEVEL: u32 = 5;

/// The level of a base's bands, compressed once and copied into every
/// response. Level 6 (69 ms for the demo certificate, 0.98× tiny-skia's
/// file) rather than 9 (267 ms, 0.86×): the first miss of a template waits
/// for its base (`cargo bench --bench encode -- base_bands`).
pub const BASE_LEVEL: u32 = 6;

/// The zlib stream header (deflate, 32 KiB window, default level flag).
const ZLIB_HEADER: [u8; 2] = [0x78, 0x9C];

/// An empty final block with fixed codes: ends the DEFLATE stream after
/// bands that each end in a sync flush.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// How pixels are stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Every pixel opaque: no alpha channel.
    Rgb,
    /// Straight (demultiplied) alpha.
    Rgba,
}

impl Layout {
    fn bytes_per_pixel(self) -> usize {
        match self {
            Layout::Rgb => 3,
            Layout::Rgba => 4,
        }
    }
}

/// One compressed band.
#[derive(Debug)]
struct Band {
    /// The whole `IDAT` chunk: length, type, data, CRC.
    chunk: Vec<u8>,
    /// Adler-32 of the band's filtered bytes, and their number.
    adler: u32,
    len: u64,
}

/// An image encoded band by band, kept to encode images that differ from
/// it in a few rows.
#[derive(Debug)]
pub struct Bands {
    width: u32,
    height: u32,
    layout: Layout,
    bands: Vec<Band>,
}

/// Scratch buffers and a compressor, reused across bands and renders.
pub struct Encoder {
    compress: Compress,
    /// Filtered bytes of the band being compressed.
    raw: Vec<u8>,
    /// Unfiltered rows: the one above and the current one.
    above: Vec<u8>,
    row: Vec<u8>,
    /// One candidate filtered row per filter type.
    candidates: [Vec<u8>; 5],
    out: Vec<u8>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new(LEVEL)
    }
}

impl Bands {
    /// Encodes every band of `pixmap`.
    pub fn encode(pixmap: &Pixmap, encoder: &mut Encoder) -> Bands {
        let layout = if pixmap.pixels().iter().all(|p| p.alpha() == 255) {
            Layout::Rgb
        } else {
            Layout::Rgba
        };
        let bands = band_ranges(pixmap.height())
            .map(|rows| encoder.band(pixmap, layout, rows))
            .collect();
        Bands {
            width: pixmap.width(),
            height: pixmap.height(),
            layout,
            bands,
        }
    }

    /// Bytes held.
    pub fn weight(&self) -> usize {
        self.bands.iter().map(|b| b.chunk.len()).sum::<usize>() + 64
    }

    /// The PNG file of `pixmap`, whose rows for which `same` is true are
    /// those of the image `self` was made from: bands whose rows and the
    /// row above are all the same are copied, the others compressed anew.
    /// `None` when the sizes differ, or when a changed row is translucent
    /// and `self` has no alpha channel.
    pub fn png(&self, pixmap: &Pixmap, same: &[bool], encoder: &mut Encoder) -> Option<Vec<u8>> {
        if (pixmap.width(), pixmap.height()) != (self.width, self.height)
            || same.len() != self.height as usize
        {
            return None;
        }
        let mut out = Vec::with_capacity(self.weight() + 1024);
        out.extend_from_slice(b"\x89PNG\r\n\x1a\n");
        let mut ihdr = Vec::with_capacity(13);
        ihdr.extend_from_slice(&self.width.to_be_bytes());
        ihdr.extend_from_slice(&self.height.to_be_bytes());
        let color_type = match self.layout {
            Layout::Rgb => 2,
            Layout::Rgba => 6,
        };
        // 8 bits per channel, deflate, adaptive filtering, no interlace.
        ihdr.extend_from_slice(&[8, color_type, 0, 0, 0]);
        push_chunk(&mut out, b"IHDR", &ihdr);
        push_chunk(&mut out, b"IDAT", &ZLIB_HEADER);
        let mut adler = 1u32;
        for (band, rows) in self.bands.iter().zip(band_ranges(self.height)) {
            let above = rows.start.saturating_sub(1) as usize;
            let fresh;
            let band = if same[above..rows.end as usize].iter().all(|s| *s) {
                band
            } else {
                if self.layout == Layout::Rgb && !opaque(pixmap, rows.clone()) {
                    return None;
                }
                fresh = encoder.band(pixmap, self.layout, rows);
                &fresh
            };
            out.extend_from_slice(&band.chunk);
            adler = adler32_combine(adler, band.adler, band.len);
        }
        let mut end = FINAL_BLOCK.to_vec();
        end.extend_from_slice(&adler.to_be_bytes());
        push_chunk(&mut out, b"IDAT", &end);
        push_chunk(&mut out, b"IEND", &[]);
        Some(out)
    }
}

impl Encoder {
    /// An encoder compressing at DEFLATE `level` (0–9).
    pub fn new(level: u32) -> Encoder {
        Encoder {
            compress: Compress::new(Compression::new(level.min(9)), false),
            raw: Vec::new(),
            above: Vec::new(),
            row: Vec::new(),
            candidates: Default::default(),
            out: Vec::new(),
        }
    }

    /// Filters and compresses `rows` of `pixmap` as one band.
    fn band(&mut self, pixmap: &Pixmap, layout: Layout, rows: Range<u32>) -> Band {
        let bpp = layout.bytes_per_pixel();
        let stride = pixmap.width() as usize * bpp;
        self.raw.clear();
        self.above.clear();
        self.above.resize(stride, 0);
        if rows.start > 0 {
            convert_row(pixmap, rows.start - 1, layout, &mut self.above);
        }
        for y in rows {
            convert_row(pixmap, y, layout, &mut self.row);
            let best = filter_row(&self.row, &self.above, bpp, &mut self.candidates);
            self.raw.push(best as u8);
            self.raw.extend_from_slice(&self.candidates[best]);
            std::mem::swap(&mut self.row, &mut self.above);
        }
        let adler = simd_adler32::adler32(&self.raw.as_slice());
        self.compress.reset();
        self.out.clear();
        let mut input = &self.raw[..];
        loop {
            self.out.reserve(input.len() / 4 + 4096);
            let before = self.compress.total_in();
            // A compressor never fails on well-formed arguments; the
            // buffer simply grows and the loop goes on.
            let _ = self
                .compress
                .compress_vec(input, &mut self.out, FlushCompress::Sync);
            let used = (self.compress.total_in() - before) as usize;
            input = &input[used..];
            if input.is_empty() && self.out.len() < self.out.capacity() {
                break;
            }
        }
        let mut chunk = Vec::with_capacity(self.out.len() + 12);
        push_chunk(&mut chunk, b"IDAT", &self.out);
        Band {
            chunk,
            adler,
            len: self.raw.len() as u64,
        }
    }
}

fn band_ranges(height: u32) -> impl Iterator<Item = Range<u32>> {
    (0..height)
        .step_by(BAND_ROWS as usize)
        .map(move |y| y..(y + BAND_ROWS).min(height))
}

fn opaque(pixmap: &Pixmap, rows: Range<u32>) -> bool {
    let w = pixmap.width() as usize;
    pixmap.pixels()[rows.start as usize * w..rows.end as usize * w]
        .iter()
        .all(|p| p.alpha() == 255)
}

/// Row `y` as the file stores it: RGB, or straight-alpha RGBA.
fn convert_row(pixmap: &Pixmap, y: u32, layout: Layout, out: &mut Vec<u8>) {
    let w = pixmap.width() as usize;
    let pixels = &pixmap.pixels()[y as usize * w..(y as usize + 1) * w];
    out.clear();
    match layout {
        // Premultiplied and straight colour agree where alpha is 255.
        Layout::Rgb => out.extend(pixels.iter().flat_map(|p| [p.red(), p.green(), p.blue()])),
        Layout::Rgba => out.extend(pixels.iter().flat_map(|p| {
            let c = p.demultiply();
            [c.red(), c.green(), c.blue(), c.alpha()]
        })),
    }
}

/// Fills one candidate per PNG filter type and returns the type whose
/// output has the smallest sum of absolute values (as signed bytes): the
/// usual adaptive heuristic, the png crate's among them.
fn filter_row(row: &[u8], above: &[u8], bpp: usize, candidates: &mut [Vec<u8>; 5]) -> usize {
    for c in candidates.iter_mut() {
        c.clear();
        c.resize(row.len(), 0);
    }
    let [none, sub, up, avg, paeth] = candidates;
    none.copy_from_slice(row);
    for i in 0..row.len() {
        let (a, c) = if i >= bpp {
            (row[i - bpp], above[i - bpp])
        } else {
            (0, 0)
        };
        let b = above[i];
        let x = row[i];
        sub[i] = x.wrapping_sub(a);
        up[i] = x.wrapping_sub(b);
        avg[i] = x.wrapping_sub(((u16::from(a) + u16::from(b)) / 2) as u8);
        paeth[i] = x.wrapping_sub(paeth_predictor(a, b, c));
    }
    let cost =
        |v: &Vec<u8>| -> u64 { v.iter().map(|&b| u64::from((b as i8).unsigned_abs())).sum() };
    (0..5).min_by_key(|&t| cost(&candidates[t])).unwrap_or(0)
}

fn paeth_predictor(a: u8, b: u8, c: u8) -> u8 {
    let (ia, ib, ic) = (i16::from(a), i16::from(b), i16::from(c));
    let p = ia + ib - ic;
    let (pa, pb, pc) = ((p - ia).abs(), (p - ib).abs(), (p - ic).abs());
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

fn push_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// The Adler-32 of two byte strings joined, from their own checksums and
/// the second's length (zlib's `adler32_combine`).
fn adler32_combine(first: u32, second: u32, second_len: u64) -> u32 {
    const BASE: u64 = 65521;
    let rem = second_len % BASE;
    let mut sum1 = u64::from(first & 0xffff);
    let mut sum2 = (rem * sum1) % BASE;
    sum1 += u64::from(second & 0xffff) + BASE - 1;
    sum2 += u64::from(first >> 16) + u64::from(second >> 16) + BASE - rem;
    if sum1 >= BASE {
        sum1 -= BASE;
    }
    if sum1 >= BASE {
        sum1 -= BASE;
    }
    if sum2 >= BASE << 1 {
        sum2 -= BASE << 1;
    }
    if sum2 >= BASE {
        sum2 -= BASE;
    }
    ((sum2 << 16) | sum1) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use resvg::tiny_skia::{Color, ColorU8, Paint, PathBuilder, Transform};

    fn picture(w: u32, h: u32, alpha: u8) -> Pixmap {
        let mut pixmap = Pixmap::new(w, h).unwrap();
        pixmap.fill(Color::from_rgba8(250, 245, 230, alpha));
        let mut paint = Paint::default();
        paint.set_color_rgba8(30, 60, 200, 255);
        let circle =
            PathBuilder::from_circle(w as f32 / 2.0, h as f32 / 3.0, h as f32 / 4.0).unwrap();
        pixmap.fill_path(
            &circle,
            &paint,
            Default::default(),
            Transform::identity(),
            None,
        );
        pixmap
    }

    /// The image data of a PNG inflated by a decoder that checks the
    /// stream's Adler-32 (PNG decoders may skip that check).
    fn inflate_checked(png: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let mut data = Vec::new();
        let mut at = 8;
        while at < png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            if &png[at + 4..at + 8] == b"IDAT" {
                data.extend_from_slice(&png[at + 8..at + 8 + len]);
            }
            at += len + 12;
        }
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(&data[..])
            .read_to_end(&mut raw)
            .expect("a valid zlib stream with a correct checksum");
        raw
    }

    #[test]
    fn adler_combine_matches_the_checksum_of_the_joined_bytes() {
        let a: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let b: Vec<u8> = (0..100_003u32).map(|i| (i * 13 % 241) as u8).collect();
        let joined: Vec<u8> = a.iter().chain(&b).copied().collect();
        let combined = adler32_combine(
            simd_adler32::adler32(&a.as_slice()),
            simd_adler32::adler32(&b.as_slice()),
            b.len() as u64,
        );
        assert_eq!(combined, simd_adler32::adler32(&joined.as_slice()));
        assert_eq!(
            adler32_combine(1, simd_adler32::adler32(&a.as_slice()), a.len() as u64),
            simd_adler32::adler32(&a.as_slice())
        );
    }

    #[test]
    fn banded_files_decode_to_the_pixels_opaque_and_translucent() {
        for alpha in [255, 90] {
            let pixmap = picture(101, 75, alpha);
            let mut encoder = Encoder::default();
            let bands = Bands::encode(&pixmap, &mut encoder);
            let none_same = vec![false; 75];
            let png = bands.png(&pixmap, &none_same, &mut encoder).unwrap();
            assert_eq!(Pixmap::decode_png(&png).unwrap().data(), pixmap.data());
            let bpp = if alpha == 255 { 3 } else { 4 };
            assert_eq!(inflate_checked(&png).len(), 75 * (1 + 101 * bpp));
            // Every band reused: the file is still whole and valid.
            let png = bands.png(&pixmap, &[true; 75], &mut encoder).unwrap();
            assert_eq!(Pixmap::decode_png(&png).unwrap().data(), pixmap.data());
        }
    }

    #[test]
    fn only_changed_bands_are_recompressed_and_the_result_is_exact() {
        let base = picture(64, 100, 255);
        let mut encoder = Encoder::default();
        let bands = Bands::encode(&base, &mut encoder);
        let mut changed = base.clone();
        let mut same = vec![true; 100];
        // Rows 40 and 41 change: bands 2 (rows 32..48) is re-made, and so
        // is nothing else; row 47 unchanged keeps band 3 reusable.
        for y in [40usize, 41] {
            for x in 0..64 {
                changed.pixels_mut()[y * 64 + x] =
                    ColorU8::from_rgba(9, (x * 3) as u8, 7, 255).premultiply();
            }
            same[y] = false;
        }
        let png = bands.png(&changed, &same, &mut encoder).unwrap();
        assert_eq!(Pixmap::decode_png(&png).unwrap().data(), changed.data());
        inflate_checked(&png);
        // Claiming nothing changed gives the old image back: the reuse is
        // real, not a re-encode of the new pixels.
        let png = bands.png(&changed, &[true; 100], &mut encoder).unwrap();
        assert_eq!(Pixmap::decode_png(&png).unwrap().data(), base.data());
        // A change in the last row of a band re-makes the next band too,
        // since its first row is filtered against that row.
        let mut last = base.clone();
        last.pixels_mut()[47 * 64] = ColorU8::from_rgba(0, 0, 0, 255).premultiply();
        let mut same = vec![true; 100];
        same[47] = false;
        let png = bands.png(&last, &same, &mut encoder).unwrap();
        assert_eq!(Pixmap::decode_png(&png).unwrap().data(), last.data());
    }

    #[test]
    fn a_translucent_change_to_an_opaque_base_is_refused() {
        let base = picture(20, 20, 255);
        let mut encoder = Encoder::default();
        let bands = Bands::encode(&base, &mut encoder);
        let see_through = picture(20, 20, 100);
        assert!(bands
            .png(&see_through, &[false; 20], &mut encoder)
            .is_none());
        assert!(bands
            .png(&picture(21, 20, 255), &[false; 20], &mut encoder)
            .is_none());
    }
}
