//! Raster images a render may draw, each checked once before any format is
//! written: the header's size within a pixel bound, then a strict decode
//! with the same decoders the rasteriser and the PDF writer use (`png`,
//! `zune-jpeg`). A truncated, corrupt or oversized image is refused with a
//! reason instead of vanishing from the picture or failing only the PDF.
//!
//! Files are read here and nowhere else: a template's referenced files are
//! read when it is prepared, kept in memory with their digest, and handed to
//! the renderer, which reads no files. So an image is always drawn from the
//! bytes its digest — part of the template's version and every cache key —
//! was taken over.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use resvg::usvg::{ImageHrefResolver, ImageKind};
use sha2::{Digest, Sha256};

use crate::budget::{canvas_bytes, Budget};
use crate::render::RenderLimits;

/// A checked PNG or JPEG.
#[derive(Clone)]
pub struct Image {
    /// The encoded bytes, shared with every tree that draws them.
    pub kind: ImageKind,
    pub width: u32,
    pub height: u32,
    /// SHA-256 of the bytes.
    pub digest: [u8; 32],
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Image({}x{}, {})",
            self.width,
            self.height,
            hex::encode(&self.digest[..6])
        )
    }
}

/// Checks encoded image bytes: PNG or JPEG, at most `max_pixels`, decoding
/// to the end without an error.
///
/// The decode runs under a lease of `budget` for its pixels.
pub fn check(data: Vec<u8>, max_pixels: u64, budget: &Arc<Budget>) -> Result<Image, String> {
    let size = imagesize::blob_size(&data).map_err(|_| "unreadable image header".to_string())?;
    let (width, height) = (size.width as u64, size.height as u64);
    if width == 0 || height == 0 {
        return Err("the image is empty".into());
    }
    if width.saturating_mul(height) > max_pixels {
        return Err(format!(
            "{width}x{height} pixels is over the limit of {max_pixels}"
        ));
    }
    let (width, height) = (width as u32, height as u32);
    let _lease = budget
        .take(canvas_bytes(width, height) * 2)
        .map_err(|_| "no memory came free to decode the image".to_string())?;
    let png = match imagesize::image_type(&data) {
        Ok(imagesize::ImageType::Png) => true,
        Ok(imagesize::ImageType::Jpeg) => false,
        _ => return Err("only PNG and JPEG images are allowed".into()),
    };
    let decoded = if png {
        decode_png(&data, max_pixels)?
    } else {
        decode_jpeg(&data, width, height)?
    };
    if decoded != (width, height) {
        return Err("the image's size differs from its header".into());
    }
    let digest = Sha256::digest(&data).into();
    let data = Arc::new(data);
    let kind = if png {
        ImageKind::PNG(data)
    } else {
        ImageKind::JPEG(data)
    };
    Ok(Image {
        kind,
        width,
        height,
        digest,
    })
}

fn decode_png(data: &[u8], max_pixels: u64) -> Result<(u32, u32), String> {
    let broken = |e: png::DecodingError| format!("the PNG does not decode ({e})");
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(data),
        png::Limits {
            // RGBA at 16 bits a channel, plus the decoder's own buffers.
            bytes: usize::try_from(max_pixels.saturating_mul(8)).unwrap_or(usize::MAX) + (1 << 20),
        },
    );
    // As the rasteriser decodes: palettes and low bit depths expanded, so a
    // palette image without its palette fails here too.
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(broken)?;
    let len = reader
        .output_buffer_size()
        .ok_or("the PNG is too large to decode")?;
    let mut buf = vec![0; len];
    let info = reader.next_frame(&mut buf).map_err(broken)?;
    reader.finish().map_err(broken)?;
    Ok((info.width, info.height))
}

fn decode_jpeg(data: &[u8], width: u32, height: u32) -> Result<(u32, u32), String> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(width as usize)
        .set_max_height(height as usize);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(data), options);
    decoder
        .decode()
        .map_err(|e| format!("the JPEG does not decode ({e:?})"))?;
    let (w, h) = decoder.dimensions().ok_or("the JPEG has no size")?;
    Ok((w as u32, h as u32))
}

/// The images one render may draw from files, by the `href` the SVG names
/// them with. `data:` URIs are not here: they are checked where they enter
/// (template preparation, a modification's `src`).
#[derive(Debug, Default, Clone)]
pub struct Images {
    by_href: HashMap<String, Image>,
}

impl Images {
    pub fn get(&self, href: &str) -> Option<&Image> {
        self.by_href.get(href)
    }

    pub fn is_empty(&self) -> bool {
        self.by_href.is_empty()
    }

    pub fn insert(&mut self, href: String, image: Image) {
        self.by_href.insert(href, image);
    }

    /// Every href and digest in a fixed order: what a version hashes.
    pub fn digests(&self) -> Vec<(&str, [u8; 32])> {
        let mut all: Vec<_> = self
            .by_href
            .iter()
            .map(|(href, image)| (href.as_str(), image.digest))
            .collect();
        all.sort_unstable();
        all
    }

    /// Bytes the images take decoded, as a render holds them.
    pub fn bytes(&self) -> u64 {
        self.by_href
            .values()
            .map(|i| canvas_bytes(i.width, i.height))
            .sum()
    }

    /// These images plus `more` (a request's assets); shares the bytes.
    pub fn with(&self, more: &Images) -> Images {
        let mut all = self.clone();
        all.by_href
            .extend(more.by_href.iter().map(|(h, i)| (h.clone(), i.clone())));
        all
    }
}

/// A file read from a user's folder: where it really is and its metadata
/// at the time of reading, so a later `stat` can tell whether it changed.
#[derive(Debug, Clone)]
pub struct ReadFile {
    pub path: PathBuf,
    pub meta: std::fs::Metadata,
}

/// Reads `href`, a relative path inside `dir` (canonical), within
/// `max_bytes`: no URL, no `..`, no absolute path, no link leaving `dir`,
/// only regular files.
pub fn read_file(href: &str, dir: &Path, max_bytes: u64) -> Result<(Vec<u8>, ReadFile), String> {
    let scheme = href.split_once(':').is_some_and(|(s, _)| !s.contains('/'));
    if scheme {
        return Err("URLs (file:, http:, …) are never fetched".into());
    }
    let relative = Path::new(href);
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err("only paths inside the template's folder are allowed".into());
    }
    let real = dir
        .join(relative)
        .canonicalize()
        .map_err(|_| "not found in the template's folder".to_string())?;
    if !real.starts_with(dir) {
        return Err("links outside the template's folder".into());
    }
    let meta = std::fs::metadata(&real).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > max_bytes {
        return Err(format!(
            "{} bytes is over the limit of {max_bytes}",
            meta.len()
        ));
    }
    let data = std::fs::read(&real).map_err(|e| e.to_string())?;
    if data.len() as u64 > max_bytes {
        return Err("the file grew over the size limit".into());
    }
    Ok((data, ReadFile { path: real, meta }))
}

/// What the template check's resolver found.
#[derive(Default)]
pub(crate) struct Found {
    pub images: Images,
    pub files: Vec<ReadFile>,
    pub errors: Vec<String>,
}

/// The resolver of the template check: reads and strictly checks every
/// file and `data:` image; records what it refuses, which rejects the
/// template (an image must never vanish silently).
pub(crate) fn checker(
    dir: &Path,
    limits: RenderLimits,
    budget: &Arc<Budget>,
    found: &Arc<Mutex<Found>>,
) -> ImageHrefResolver<'static> {
    fn lock(found: &Mutex<Found>) -> std::sync::MutexGuard<'_, Found> {
        found.lock().unwrap_or_else(|e| e.into_inner())
    }
    let (data_found, dir) = (Arc::clone(found), dir.to_owned());
    let (data_budget, budget) = (Arc::clone(budget), Arc::clone(budget));
    let found = Arc::clone(found);
    ImageHrefResolver {
        resolve_data: Box::new(move |mime, data, _| {
            let checked = match mime {
                "image/png" | "image/jpeg" | "image/jpg" | "text/plain" => {
                    check(data.to_vec(), limits.max_pixels, &data_budget)
                }
                other => Err(format!("embedded images must be PNG or JPEG, not {other}")),
            };
            match checked {
                Ok(image) => Some(image.kind),
                Err(why) => {
                    lock(&data_found).errors.push(format!("data: image: {why}"));
                    None
                }
            }
        }),
        resolve_string: Box::new(move |href, _| {
            let read = read_file(href, &dir, limits.max_image_bytes)
                .and_then(|(data, file)| Ok((check(data, limits.max_pixels, &budget)?, file)));
            let mut found = lock(&found);
            match read {
                Ok((image, file)) => {
                    let kind = image.kind.clone();
                    found.images.insert(href.to_owned(), image);
                    found.files.push(file);
                    Some(kind)
                }
                Err(why) => {
                    found.errors.push(format!("image `{href}`: {why}"));
                    None
                }
            }
        }),
    }
}

/// The resolver of a render: files from `images`, read and checked when
/// the template was; `data:` images were checked where they entered, so
/// only their kind is read here.
pub(crate) fn drawer(images: &Arc<Images>, limits: RenderLimits) -> ImageHrefResolver<'static> {
    let images = Arc::clone(images);
    ImageHrefResolver {
        resolve_data: Box::new(move |mime, data, _| {
            let kind = match mime {
                "image/png" | "image/jpeg" | "image/jpg" | "text/plain" => {
                    raster_kind(data, limits)
                }
                other => Err(format!("embedded images must be PNG or JPEG, not {other}")),
            };
            kind.map_err(|why| tracing::warn!(%why, "data: image refused at render"))
                .ok()
        }),
        resolve_string: Box::new(move |href, _| {
            let image = images.get(href).map(|i| i.kind.clone());
            if image.is_none() {
                tracing::warn!(%href, "image not read with its template");
            }
            image
        }),
    }
}

fn raster_kind(data: Arc<Vec<u8>>, limits: RenderLimits) -> Result<ImageKind, String> {
    let size = imagesize::blob_size(&data).map_err(|_| "unreadable image header".to_string())?;
    if (size.width as u64).saturating_mul(size.height as u64) > limits.max_pixels {
        return Err(format!(
            "{}×{} pixels is over the limit of {}",
            size.width, size.height, limits.max_pixels
        ));
    }
    match imagesize::image_type(&data) {
        Ok(imagesize::ImageType::Png) => Ok(ImageKind::PNG(data)),
        Ok(imagesize::ImageType::Jpeg) => Ok(ImageKind::JPEG(data)),
        _ => Err("only PNG and JPEG images are allowed".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(data: Vec<u8>, max_pixels: u64) -> Result<Image, String> {
        super::check(
            data,
            max_pixels,
            &Budget::new(1 << 30, std::time::Duration::ZERO),
        )
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        resvg::tiny_skia::Pixmap::new(w, h)
            .unwrap()
            .encode_png()
            .unwrap()
    }

    #[test]
    fn a_whole_png_passes_and_a_truncated_one_is_refused() {
        let whole = png(40, 30);
        let image = check(whole.clone(), 10_000).unwrap();
        assert_eq!((image.width, image.height), (40, 30));
        let cut = whole[..whole.len() - 20].to_vec();
        assert!(check(cut, 10_000).unwrap_err().contains("does not decode"));
    }

    #[test]
    fn the_pixel_bound_is_read_from_the_header_before_decoding() {
        let err = check(png(200, 100), 19_999).unwrap_err();
        assert!(err.contains("200x100 pixels is over the limit"), "{err}");
    }

    #[test]
    fn a_jpeg_cut_short_is_refused_in_strict_mode() {
        let pixmap = resvg::tiny_skia::Pixmap::new(64, 64).unwrap();
        let jpeg = crate::encode::encode_jpeg(&pixmap, 90).unwrap();
        assert!(check(jpeg.clone(), 10_000).is_ok());
        let cut = jpeg[..jpeg.len() / 2].to_vec();
        assert!(check(cut, 10_000)
            .unwrap_err()
            .contains("JPEG does not decode"));
    }

    #[test]
    fn only_png_and_jpeg_pass() {
        assert!(check(b"GIF89a\x01\x00\x01\x00".to_vec(), 100).is_err());
        assert!(check(b"hello".to_vec(), 100).is_err());
    }
}
