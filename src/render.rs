//! SVG text in, image bytes out: the safe parse options, the size bounds,
//! the memory leases, the rasteriser and the PDF writer, and the text
//! measurement that fitting relies on, with the fonts of `fonts`.
//!
//! Synchronous and CPU-bound; callers run it on the blocking pool. It reads
//! files only when a template is checked (`Renderer::check`), through
//! `images`, which admits PNG and JPEG files inside the template's own
//! folder; a render draws the images read then, from memory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use resvg::tiny_skia;
use resvg::usvg::{self, fontdb, ImageHrefResolver};
use thiserror::Error;

use crate::budget::{self, Budget, Lease, Refused};
use crate::encode;
use crate::fit::{Align, Ink};
use crate::fonts::{self, fallback_selector, Coverage};
use crate::images::{self, checker, drawer, Images, ReadFile};
use crate::options::{RenderOptions, DEFAULT_QUALITY};
use crate::request::Format;
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
    /// The output asked for is over the size bounds.
    #[error("Request too large: {0}")]
    TooLarge(String),
    /// Text no font can draw; the message lists the code points.
    #[error("Missing glyphs: {0}")]
    MissingGlyphs(String),
    /// A fitted layer that overflows with `data-overflow="error"`.
    #[error("Text does not fit: {0}")]
    DoesNotFit(String),
    /// A `src` naming no file in the user's `assets/` folder.
    #[error("Asset not found: {0}")]
    AssetNotFound(String),
    /// No render memory came free in time: the server's load, not the
    /// request's fault, so it is answered as busy and never remembered.
    #[error("Server busy")]
    Busy,
    /// An image given in a modification that does not decode or is too
    /// large for its layer; the message names the layer.
    #[error("Image rejected: {0}")]
    ImageRejected(String),
}

/// Bounds on what a template may make the renderer do.
#[derive(Debug, Clone, Copy)]
pub struct RenderLimits {
    /// Largest output, and largest embedded image, in pixels.
    pub max_pixels: u64,
    /// Largest embedded image file, in bytes.
    pub max_image_bytes: u64,
    /// Most pixels an image given in a URL may decode to.
    pub max_image_pixels: u64,
    /// The memory budget of renders, base builds and image decodes.
    pub max_memory_bytes: u64,
    /// Longest a render waits for its share of that budget.
    pub memory_wait: Duration,
    /// Most XML nodes in a document.
    pub max_nodes: u32,
}

/// A finished image with the time each stage took.
#[derive(Debug)]
pub struct Rendered {
    pub body: Vec<u8>,
    /// Parsing and rasterising.
    pub raster: Duration,
    pub encode: Duration,
}

/// The font properties a fitted layer is measured with.
#[derive(Debug, Clone, PartialEq)]
pub struct FontSpec {
    /// A CSS `font-family` list.
    pub family: String,
    pub weight: u16,
    pub style: &'static str,
    pub letter_spacing: f32,
}

impl FontSpec {
    /// The font of a text node's first span, as usvg resolved it.
    pub fn of(text: &usvg::Text) -> Option<(FontSpec, f32)> {
        let span = text.chunks().first()?.spans().first()?;
        let font = span.font();
        let family = font
            .families()
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let style = match font.style() {
            usvg::FontStyle::Normal => "normal",
            usvg::FontStyle::Italic => "italic",
            usvg::FontStyle::Oblique => "oblique",
        };
        let spec = FontSpec {
            family,
            weight: font.weight(),
            style,
            letter_spacing: span.letter_spacing(),
        };
        Some((spec, span.font_size().get()))
    }
}

/// `U+0041, U+00E9`: characters as the errors and warnings name them.
pub fn code_points(chars: &[char]) -> String {
    chars
        .iter()
        .map(|c| format!("U+{:04X}", *c as u32))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The shared font database and limits.
pub struct Renderer {
    /// Loaded once at start and shared by every render.
    fontdb: Arc<fontdb::Database>,
    coverage: Coverage,
    /// Faces tried, in order, for a character the chosen font lacks.
    fallback: Arc<Vec<fontdb::ID>>,
    /// The family used where a template names none.
    default_family: String,
    limits: RenderLimits,
    /// Held by every piece of work that allocates canvases or decodes.
    budget: Arc<Budget>,
    /// Lines measured lately, by the SVG that measures them: the same
    /// field text ("Advanced Project Management") is measured for every
    /// certificate of a course, and the fonts never change while the
    /// server runs.
    measured: moka::sync::Cache<String, Option<Ink>>,
}

/// Most measured lines kept (each a few hundred bytes).
const MAX_MEASURED: u64 = 20_000;
/// Longest line kept measured, in bytes.
const MAX_MEASURED_TEXT: usize = 64;

impl Renderer {
    /// Loads every font in `fonts_dir`, then each of `extra_fonts` that
    /// exists (installed fonts too large to ship, such as CJK and emoji);
    /// fails when there is no font at all, since text would then vanish.
    pub fn new(
        fonts_dir: &Path,
        extra_fonts: &[PathBuf],
        limits: RenderLimits,
    ) -> Result<Renderer, String> {
        let (db, default_family, fallback) = fonts::load(fonts_dir, extra_fonts)?;
        Ok(Renderer {
            coverage: Coverage::of(&db),
            fallback: Arc::new(fallback),
            fontdb: Arc::new(db),
            default_family,
            limits,
            budget: Budget::new(limits.max_memory_bytes, limits.memory_wait),
            measured: moka::sync::Cache::new(MAX_MEASURED),
        })
    }

    /// Number of font faces loaded.
    pub fn font_faces(&self) -> usize {
        self.fontdb.len()
    }

    /// The characters of `texts` that no loaded font can draw, each once,
    /// in order of first appearance.
    pub fn missing_glyphs<'a>(&self, texts: impl IntoIterator<Item = &'a str>) -> Vec<char> {
        let mut missing: Vec<char> = Vec::new();
        for c in texts.into_iter().flat_map(str::chars) {
            if !fonts::draws_nothing(c) && !self.coverage.has(c) && !missing.contains(&c) {
                missing.push(c);
            }
        }
        missing
    }

    /// The ink of `text` on one line at `size`, relative to an anchor at
    /// x = 0 placed by `align`: what fitting compares with its box. `None`
    /// when the line has no ink.
    pub fn measure(&self, font: &FontSpec, align: Align, text: &str, size: f32) -> Option<Ink> {
        let mut svg = String::with_capacity(256 + text.len());
        svg.push_str(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"><text font-family=""#,
        );
        escape_into(&mut svg, &font.family);
        svg.push_str(&format!(
            r#"" font-size="{size}" font-weight="{}" font-style="{}" letter-spacing="{}" text-anchor="{}">"#,
            font.weight,
            font.style,
            font.letter_spacing,
            align.anchor()
        ));
        escape_into(&mut svg, text);
        svg.push_str("</text></svg>");
        // Only a line as short as a name or a field is kept: a long text
        // being fitted is measured in pieces that seldom come back.
        if text.len() > MAX_MEASURED_TEXT {
            return self.measure_svg(&svg);
        }
        if let Some(ink) = self.measured.get(&svg) {
            return ink;
        }
        let ink = self.measure_svg(&svg);
        self.measured.insert(svg, ink);
        ink
    }

    /// The ink of the one `<text>` of `svg`.
    fn measure_svg(&self, svg: &str) -> Option<Ink> {
        let doc = self.parse_xml(svg).ok()?;
        let options = self.options(drawer(&Arc::default(), self.limits));
        let tree = usvg::Tree::from_xmltree(&doc, &options).ok()?;
        let usvg::Node::Text(text) = tree.root().children().first()? else {
            return None;
        };
        // The outlines, not the layout box: italic overhangs count.
        let b = text.flattened().bounding_box();
        Some((b.left(), b.right()))
    }

    /// The most pixels an image given in a URL may decode to.
    pub fn image_pixel_limit(&self) -> u64 {
        self.limits.max_image_pixels.min(self.limits.max_pixels)
    }

    /// Reads and checks the PNG or JPEG file `href` inside `dir`.
    pub fn read_image(&self, href: &str, dir: &Path) -> Result<(images::Image, ReadFile), String> {
        let (data, file) = images::read_file(href, dir, self.limits.max_image_bytes)?;
        Ok((
            images::check(data, self.limits.max_pixels, &self.budget)?,
            file,
        ))
    }

    /// Checks the image of a `data:` URI strictly, within `max_pixels`.
    pub fn check_data_image(
        &self,
        data: Vec<u8>,
        max_pixels: u64,
    ) -> Result<images::Image, String> {
        images::check(data, max_pixels.min(self.limits.max_pixels), &self.budget)
    }

    /// A lease of `bytes` of the memory budget, waited for.
    pub fn lease(&self, bytes: u64) -> Result<Lease, RenderError> {
        self.budget.take(bytes).map_err(|refused| match refused {
            Refused::TooLarge { need, limit } => RenderError::TooLarge(format!(
                "the render needs about {need} bytes of memory (render_memory_bytes is {limit})"
            )),
            Refused::TimedOut => RenderError::Busy,
        })
    }

    /// Bytes leased now and the budget, for `/healthz`.
    pub fn memory(&self) -> (u64, u64) {
        (self.budget.used(), self.budget.limit())
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

    fn options(&self, image_href_resolver: ImageHrefResolver<'static>) -> usvg::Options<'static> {
        usvg::Options {
            resources_dir: None,
            font_family: self.default_family.clone(),
            fontdb: Arc::clone(&self.fontdb),
            image_href_resolver,
            font_resolver: usvg::FontResolver {
                select_font: usvg::FontResolver::default_font_selector(),
                select_fallback: fallback_selector(Arc::clone(&self.fallback)),
            },
            ..usvg::Options::default()
        }
    }

    /// Checks a template once: every image it references is read from its
    /// folder and decodes within the bounds, and the canvas is within
    /// bounds. The tree is returned for what else preparation reads from it
    /// (fonts of fitted layers), with the images read and their files.
    pub fn check(
        &self,
        doc: &roxmltree::Document<'_>,
        dir: &Path,
    ) -> Result<(usvg::Tree, Images, Vec<ReadFile>), String> {
        let found = Arc::new(Mutex::new(images::Found::default()));
        let resolver = checker(dir, self.limits, &self.budget, &found);
        let tree = usvg::Tree::from_xmltree(doc, &self.options(resolver))
            .map_err(|e| format!("invalid SVG: {e}"))?;
        let found = std::mem::take(&mut *found.lock().unwrap_or_else(|e| e.into_inner()));
        if let Some(first) = found.errors.first() {
            return Err(first.clone());
        }
        self.canvas_size(&tree)?;
        Ok((tree, found.images, found.files))
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

    /// Parses SVG text; `images` are the files it may draw.
    pub fn tree(&self, svg: &str, images: &Arc<Images>) -> Result<usvg::Tree, RenderError> {
        let doc = self.parse_xml(svg).map_err(RenderError::Rejected)?;
        let tree = usvg::Tree::from_xmltree(&doc, &self.options(drawer(images, self.limits)))
            .map_err(|e| RenderError::Rejected(format!("invalid SVG: {e}")))?;
        self.canvas_size(&tree).map_err(RenderError::Rejected)?;
        Ok(tree)
    }

    /// The output canvas for a canvas of `size` scaled by `factor` (given the canvas
    /// width): width, height and the scale, checked against the bounds.
    pub fn output_size(
        &self,
        size: usvg::Size,
        factor: impl Fn(u32) -> f32,
    ) -> Result<(u32, u32, f32), RenderError> {
        let k = factor(size.to_int_size().width());
        let (width, height) = (
            (size.width() * k).ceil().max(1.0) as u64,
            (size.height() * k).ceil().max(1.0) as u64,
        );
        // The bound comes before any allocation: a pixmap that fails to
        // allocate aborts the process.
        if width * height > self.limits.max_pixels {
            return Err(RenderError::TooLarge(format!(
                "the output would be {width}x{height} pixels (limit {} pixels)",
                self.limits.max_pixels
            )));
        }
        Ok((width as u32, height as u32, k))
    }

    /// Parses and rasterises SVG text, scaled by `factor`. `images` are
    /// the files it may draw.
    pub fn rasterize(
        &self,
        svg: &str,
        images: &Arc<Images>,
        factor: impl Fn(u32) -> f32,
    ) -> Result<tiny_skia::Pixmap, RenderError> {
        let tree = self.tree(svg, images)?;
        let (width, height, k) = self.output_size(tree.size(), factor)?;
        let _lease = self.lease(whole_bytes(width, height, images))?;
        let mut pixmap = blank(width, height)?;
        paint(&tree, k, &mut pixmap);
        Ok(pixmap)
    }

    /// Encodes a rendered canvas as a raster `format`.
    pub fn encode(
        &self,
        pixmap: &tiny_skia::Pixmap,
        format: Format,
        options: &RenderOptions,
    ) -> Result<Vec<u8>, RenderError> {
        let quality = options.quality.unwrap_or(DEFAULT_QUALITY);
        match format {
            Format::Jpeg => encode::encode_jpeg(pixmap, quality).map_err(RenderError::TooLarge),
            Format::Webp => encode::encode_webp(pixmap, quality).map_err(RenderError::TooLarge),
            _ => encode::encode_png(pixmap, encode::SERVER)
                .map_err(|e| RenderError::Failed(format!("PNG encoding: {e}"))),
        }
    }

    /// Renders SVG text to `format` with `options`.
    pub fn render(
        &self,
        svg: &str,
        images: &Arc<Images>,
        format: Format,
        options: &RenderOptions,
    ) -> Result<Rendered, RenderError> {
        let started = Instant::now();
        if format == Format::Pdf {
            let tree = self.tree(svg, images)?;
            // The writer decodes each image once more and holds the page.
            let _lease = self.lease(2 * images.bytes() + svg.len() as u64 * 4)?;
            let rastered = Instant::now();
            let body = pdf(&tree).map_err(RenderError::Failed)?;
            return Ok(Rendered {
                body,
                raster: rastered - started,
                encode: rastered.elapsed(),
            });
        }
        let tree = self.tree(svg, images)?;
        let (width, height, k) = self.output_size(tree.size(), |w| options.factor(w))?;
        let _lease = self.lease(whole_bytes(width, height, images))?;
        let mut pixmap = blank(width, height)?;
        paint(&tree, k, &mut pixmap);
        let rastered = Instant::now();
        crate::deadline::check()?;
        let body = self.encode(&pixmap, format, options)?;
        Ok(Rendered {
            body,
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
        self.render(
            &svg,
            &Arc::default(),
            Format::Png,
            &RenderOptions::default(),
        )
        .ok()
        .map(|r| r.body)
    }
}

/// Canvases' worth of memory a whole render is leased: the canvas, the
/// layers resvg allocates for groups with opacity, filters or masks, and
/// the encoder's buffers and output.
pub const WHOLE_CANVASES: u64 = 4;

/// The lease of a whole render at `width`×`height` drawing `images`.
pub fn whole_bytes(width: u32, height: u32, images: &Images) -> u64 {
    WHOLE_CANVASES * budget::canvas_bytes(width, height) + images.bytes()
}

/// A transparent canvas of a size `Renderer::output_size` admitted.
pub fn blank(width: u32, height: u32) -> Result<tiny_skia::Pixmap, RenderError> {
    tiny_skia::Pixmap::new(width, height)
        .ok_or_else(|| RenderError::Rejected(format!("cannot draw a {width}×{height} canvas")))
}

/// Paints `tree` scaled by `k` over what `pixmap` already holds.
pub fn paint(tree: &usvg::Tree, k: f32, pixmap: &mut tiny_skia::Pixmap) {
    resvg::render(
        tree,
        tiny_skia::Transform::from_scale(k, k),
        &mut pixmap.as_mut(),
    );
}

/// Writes the tree as a one-page PDF, one CSS pixel to 0.75 pt (96 dpi),
/// with its text as real text in subset, embedded fonts, so it can be
/// selected, searched and printed sharp.
fn pdf(tree: &usvg::Tree) -> Result<Vec<u8>, String> {
    use krilla_svg::SurfaceExt;
    let size = tree.size();
    let (w, h) = (size.width() * 0.75, size.height() * 0.75);
    let page_size = krilla::geom::Size::from_wh(w, h).ok_or("empty page")?;
    let mut document = krilla::Document::new();
    let mut page = document.start_page_with(krilla::page::PageSettings::new(page_size));
    let mut surface = page.surface();
    surface
        .draw_svg(tree, page_size, krilla_svg::SvgSettings::default())
        .ok_or("the SVG could not be drawn")?;
    surface.finish();
    page.finish();
    document.finish().map_err(|e| format!("PDF: {e:?}"))
}
