//! SVG text in, PNG bytes out: the fonts, the safe parse options, the size
//! bound and the rasteriser.
//!
//! Synchronous and CPU-bound; callers run it on the blocking pool. It reads
//! files only through the image resolver, which admits PNG and JPEG files
//! inside the template's own folder and nothing else.

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use resvg::tiny_skia;
use resvg::usvg::{self, fontdb, ImageHrefResolver, ImageKind};
use thiserror::Error;

use crate::encode;
use crate::template::escape_into;

/// Why a render produced no image.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum RenderError {
    /// The template cannot be rendered safely; the message says why.
    #[error("Template rejected: {0}")]
    Rejected(String),
    /// Something went wrong that is not the template's fault.
    #[error("Render failed")]
    Failed(String),
}

/// Bounds on what a template may make the renderer do.
#[derive(Debug, Clone, Copy)]
pub struct RenderLimits {
    /// Largest output, and largest embedded image, in pixels.
    pub max_pixels: u64,
    /// Largest embedded image file, in bytes.
    pub max_image_bytes: u64,
    /// Most XML nodes in a document.
    pub max_nodes: u32,
}

/// A finished image with the time each stage took.
#[derive(Debug)]
pub struct Rendered {
    pub png: Vec<u8>,
    /// Parsing and rasterising.
    pub raster: Duration,
    pub encode: Duration,
}

/// The shared font database and limits.
pub struct Renderer {
    /// Loaded once at start and shared by every render.
    fontdb: Arc<fontdb::Database>,
    /// The family used where a template names none.
    default_family: String,
    limits: RenderLimits,
}

/// Preferred bundled family for each generic family, first found wins.
const GENERIC: &[(&str, &[&str])] = &[
    ("serif", &["Noto Serif", "DejaVu Serif"]),
    ("sans-serif", &["Noto Sans", "DejaVu Sans"]),
    ("monospace", &["DejaVu Sans Mono", "Noto Sans Mono"]),
    ("cursive", &["Dancing Script"]),
    ("fantasy", &["Dancing Script"]),
];

impl Renderer {
    /// Loads every font in `fonts_dir`; fails when there is none, since
    /// text would then silently vanish.
    pub fn new(fonts_dir: &Path, limits: RenderLimits) -> Result<Renderer, String> {
        let mut db = fontdb::Database::new();
        db.load_fonts_dir(fonts_dir);
        if db.is_empty() {
            return Err(format!(
                "no fonts found in {} (run from the folder holding fonts/, or set fonts_dir / SIGNET_FONTS_DIR)",
                fonts_dir.display()
            ));
        }
        let families: Vec<String> = db
            .faces()
            .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
            .collect();
        let pick = |wanted: &[&str]| {
            wanted
                .iter()
                .find(|w| families.iter().any(|f| f == *w))
                .map(|w| w.to_string())
                .unwrap_or_else(|| families[0].clone())
        };
        let mut default_family = families[0].clone();
        for (generic, wanted) in GENERIC {
            let family = pick(wanted);
            match *generic {
                "serif" => {
                    default_family = family.clone();
                    db.set_serif_family(family)
                }
                "sans-serif" => db.set_sans_serif_family(family),
                "monospace" => db.set_monospace_family(family),
                "cursive" => db.set_cursive_family(family),
                _ => db.set_fantasy_family(family),
            }
        }
        Ok(Renderer {
            fontdb: Arc::new(db),
            default_family,
            limits,
        })
    }

    /// Number of font faces loaded.
    pub fn font_faces(&self) -> usize {
        self.fontdb.len()
    }

    /// Parses XML with DTDs off (no entity expansion) and a node bound.
    pub fn parse_xml<'a>(&self, svg: &'a str) -> Result<roxmltree::Document<'a>, String> {
        let options = roxmltree::ParsingOptions {
            allow_dtd: false,
            nodes_limit: self.limits.max_nodes,
            ..roxmltree::ParsingOptions::default()
        };
        roxmltree::Document::parse_with_options(svg, options)
            .map_err(|e| format!("invalid SVG: {e}"))
    }

    fn options(
        &self,
        dir: &Path,
        errors: Option<Arc<Mutex<Vec<String>>>>,
    ) -> usvg::Options<'static> {
        usvg::Options {
            resources_dir: None,
            font_family: self.default_family.clone(),
            fontdb: Arc::clone(&self.fontdb),
            image_href_resolver: resolver(dir.to_owned(), self.limits, errors),
            ..usvg::Options::default()
        }
    }

    /// Checks a template once: every image reference resolves inside its
    /// folder and the canvas is within bounds.
    pub fn check(&self, doc: &roxmltree::Document<'_>, dir: &Path) -> Result<(u32, u32), String> {
        let errors = Arc::new(Mutex::new(Vec::new()));
        let tree = usvg::Tree::from_xmltree(doc, &self.options(dir, Some(Arc::clone(&errors))))
            .map_err(|e| format!("invalid SVG: {e}"))?;
        if let Some(first) = errors.lock().unwrap_or_else(|e| e.into_inner()).first() {
            return Err(first.clone());
        }
        self.canvas_size(&tree)
    }

    fn canvas_size(&self, tree: &usvg::Tree) -> Result<(u32, u32), String> {
        let size = tree.size().to_int_size();
        let (w, h) = (size.width(), size.height());
        if u64::from(w) * u64::from(h) > self.limits.max_pixels {
            return Err(format!(
                "the canvas is {w}×{h} pixels (limit {} pixels)",
                self.limits.max_pixels
            ));
        }
        Ok((w, h))
    }

    /// Parses and rasterises SVG text. `dir` is where its images may come
    /// from.
    pub fn rasterize(&self, svg: &str, dir: &Path) -> Result<tiny_skia::Pixmap, RenderError> {
        let doc = self.parse_xml(svg).map_err(RenderError::Rejected)?;
        let tree = usvg::Tree::from_xmltree(&doc, &self.options(dir, None))
            .map_err(|e| RenderError::Rejected(format!("invalid SVG: {e}")))?;
        drop(doc);
        // The bound comes before the allocation: a pixmap that fails to
        // allocate aborts the process.
        let (width, height) = self.canvas_size(&tree).map_err(RenderError::Rejected)?;
        let mut pixmap = tiny_skia::Pixmap::new(width, height).ok_or_else(|| {
            RenderError::Rejected(format!("cannot draw a {width}×{height} canvas"))
        })?;
        resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
        Ok(pixmap)
    }

    /// Renders SVG text to PNG.
    pub fn render(&self, svg: &str, dir: &Path) -> Result<Rendered, RenderError> {
        let started = Instant::now();
        let pixmap = self.rasterize(svg, dir)?;
        let rastered = Instant::now();
        let png = encode::encode_png(&pixmap, encode::SERVER)
            .map_err(|e| RenderError::Failed(format!("PNG encoding: {e}")))?;
        Ok(Rendered {
            png,
            raster: rastered - started,
            encode: rastered.elapsed(),
        })
    }

    /// A small PNG that shows `message`, for `<img>` tags pointing at a
    /// failing URL.
    pub fn render_message(&self, message: &str) -> Option<Vec<u8>> {
        let shown: String = message
            .chars()
            .take(110)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut text = String::new();
        escape_into(&mut text, &shown);
        let svg = format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="720" height="80">
<rect width="720" height="80" fill="#fdecea" stroke="#c62828" stroke-width="4"/>
<text x="20" y="32" font-family="sans-serif" font-size="18" font-weight="bold" fill="#b71c1c">Image unavailable: {text}</text>
<text x="20" y="60" font-family="sans-serif" font-size="15" fill="#3e2723">The x-stencil-error response header gives the details.</text></svg>"##
        );
        self.render(&svg, Path::new("/nonexistent"))
            .ok()
            .map(|r| r.png)
    }
}

/// The image resolver: PNG and JPEG only, from `data:` URIs or from files
/// inside `dir`, within the size bounds. Anything refused is recorded in
/// `errors` when given (the template check) and skipped otherwise.
fn resolver(
    dir: PathBuf,
    limits: RenderLimits,
    errors: Option<Arc<Mutex<Vec<String>>>>,
) -> ImageHrefResolver<'static> {
    let errors_data = errors.clone();
    ImageHrefResolver {
        resolve_data: Box::new(move |mime, data, _| {
            let kind = match mime {
                "image/png" | "image/jpeg" | "image/jpg" | "text/plain" => {
                    raster_kind(data, limits)
                }
                other => Err(format!("embedded images must be PNG or JPEG, not {other}")),
            };
            kind.map_err(|why| refuse(&errors_data, format!("data: image: {why}")))
                .ok()
        }),
        resolve_string: Box::new(move |href, _| {
            read_local(href, &dir, limits)
                .map_err(|why| refuse(&errors, format!("image `{href}`: {why}")))
                .ok()
        }),
    }
}

fn refuse(errors: &Option<Arc<Mutex<Vec<String>>>>, why: String) {
    tracing::debug!(%why, "image reference refused");
    if let Some(errors) = errors {
        errors.lock().unwrap_or_else(|e| e.into_inner()).push(why);
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

fn read_local(href: &str, dir: &Path, limits: RenderLimits) -> Result<ImageKind, String> {
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
    let path = dir.join(relative);
    let real = path
        .canonicalize()
        .map_err(|_| "not found in the template's folder".to_string())?;
    if !real.starts_with(dir) {
        return Err("links outside the template's folder".into());
    }
    let meta = std::fs::metadata(&real).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > limits.max_image_bytes {
        return Err(format!(
            "{} bytes is over the limit of {}",
            meta.len(),
            limits.max_image_bytes
        ));
    }
    let data = std::fs::read(&real).map_err(|e| e.to_string())?;
    raster_kind(Arc::new(data), limits)
}
