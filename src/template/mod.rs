//! Templates: finding a user's SVG file, noticing when it changes, and
//! preparing it once per version so a request only splices text in.
//!
//! A prepared template keeps the source and the byte range of every element
//! that has an `id`; applying modifications is string splicing, with the
//! text escaped, so a name can never become markup. The version — a hash of
//! the account, the file and every image file it draws — goes into cache
//! keys, bases and ETags, so output of an old version, or of another
//! account's identical file, is never served for this one.

mod layer;
mod overlay;
mod split;
mod store;
mod tag;
mod write;

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use resvg::usvg;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::fit::{self, Align, FitSpec, Fitted};
use crate::images::{Images, ReadFile};
use crate::modifications::{Color, Modification, Source};
use crate::render::{code_points, FontSpec, RenderError, Renderer};
use layer::{box_of, text_layer};
use overlay::view_box;
use split::{Outline, Place};
use tag::StartTag;
use write::{fit_error, image_href, qr_into, text_into, Request};

pub use store::TemplateStore;

/// Why a template could not be used.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("Unknown template")]
    NotFound,
    #[error("Template rejected: {0}")]
    Rejected(String),
}

/// A template file prepared for splicing.
#[derive(Debug)]
pub struct Template {
    /// The version: SHA-256 over the account, the file and every image
    /// file it draws (name and content). Two accounts' identical files, or
    /// one file before and after a referenced image changed, are different
    /// versions, so no cache entry or base is shared between them.
    pub hash: [u8; 32],
    /// The user's folder, canonical: the only place images may come from.
    pub dir: PathBuf,
    /// The image files the template draws, read and checked when it was
    /// prepared; renders draw these bytes and read no file.
    pub images: Arc<Images>,
    /// Those files as read, so the store can tell when one changes.
    pub files: Vec<ReadFile>,
    source: String,
    layers: HashMap<String, Layer>,
    outline: Outline,
    /// The canvas size the root element declares.
    size: usvg::Size,
    /// The root's user space (its `viewBox`, else `0 0 width height`).
    user_box: [f32; 4],
    /// Where the root's end tag starts; `None` for an empty root.
    root_close: Option<usize>,
}

#[derive(Debug)]
struct Layer {
    /// Bytes of the whole element in the source.
    range: Range<usize>,
    /// Its start tag, for attribute edits.
    tag: StartTag,
    kind: Kind,
    /// `x y width height` when the element has them: a QR code's box.
    bbox: Option<[f32; 4]>,
    place: Place,
}

#[derive(Debug)]
enum Kind {
    Text(Box<TextLayer>),
    Image,
    Other,
}

#[derive(Debug)]
struct TextLayer {
    /// The first `tspan`, which keeps its attributes; other runs go.
    tspan: Option<StartTag>,
    /// The end tags to write after the text.
    close: String,
    /// `x` for the lines after the first, so each starts under the first.
    line_x: String,
    /// How the text fits its box, when the template says.
    fit: Option<(FitSpec, FontSpec)>,
}

/// Modifications resolved against a template.
#[derive(Debug, Default)]
pub struct Plan<'a> {
    edits: Vec<(&'a str, &'a Layer, &'a Modification)>,
    /// Names the template does not have, and changes a layer can't take.
    pub warnings: Vec<String>,
}

/// A template with modifications applied: the SVG to render and what
/// fitting did, for `x-stencil-fit`.
#[derive(Debug)]
pub struct Applied {
    pub svg: String,
    pub fit: Vec<String>,
    /// The image files `svg` may draw: the template's and the request's
    /// assets.
    pub images: Arc<Images>,
    /// Each edit's bytes in the source and in `svg`, in order.
    edits: Vec<(Range<usize>, Range<usize>)>,
}

impl Applied {
    /// Where source position `at` (outside any edit, or at an edit's
    /// boundary) is in `svg`.
    fn position(&self, at: usize) -> usize {
        self.edits
            .iter()
            .filter(|(from, _)| from.end <= at)
            .fold(at, |pos, (from, to)| pos + to.len() - from.len())
    }
}

impl Template {
    /// Parses and checks `source` of `account`; `dir` is the canonical
    /// user folder.
    pub fn prepare(
        account: &str,
        source: String,
        dir: PathBuf,
        renderer: &Renderer,
    ) -> Result<Template, TemplateError> {
        let doc = renderer
            .parse_xml(&source)
            .map_err(TemplateError::Rejected)?;
        let root = doc.root_element();
        if root.tag_name().name() != "svg" {
            return Err(TemplateError::Rejected(
                "the root element is not <svg>".into(),
            ));
        }
        // A trial parse finds forbidden image references and oversize
        // canvases once per version instead of on every render.
        let (tree, images, files) = renderer
            .check(&doc, &dir)
            .map_err(TemplateError::Rejected)?;
        let hash = version(account, &source, &images);
        let root_close = {
            let range = root.range();
            let whole = &source[range.clone()];
            (!whole.ends_with("/>"))
                .then(|| whole.rfind("</").map(|at| range.start + at))
                .flatten()
        };
        let user_box = view_box(root.attribute("viewBox")).unwrap_or([
            0.0,
            0.0,
            tree.size().width(),
            tree.size().height(),
        ]);
        let (outline, places) = Outline::of(&source, &doc, StartTag::of(&source, root)?.len);
        let mut layers = HashMap::new();
        // The root is not a layer: hiding or restyling it would edit the
        // whole document, which a template cannot render.
        for node in root.descendants().skip(1).filter(|n| n.is_element()) {
            let Some(id) = node.attribute("id") else {
                continue;
            };
            if layers.contains_key(id) {
                continue;
            }
            let tag = StartTag::of(&source, node)?;
            let kind = match node.tag_name().name() {
                "text" | "tspan" => Kind::Text(Box::new(text_layer(
                    &source,
                    &doc,
                    &tree,
                    node,
                    tag.name(),
                )?)),
                "image" => Kind::Image,
                _ => Kind::Other,
            };
            layers.insert(
                id.to_owned(),
                Layer {
                    range: node.range(),
                    tag,
                    kind,
                    bbox: box_of(node),
                    place: places.get(&node.id()).copied().unwrap_or(Place {
                        top: None,
                        referenced: true,
                    }),
                },
            );
        }
        Ok(Template {
            hash,
            dir,
            images: Arc::new(images),
            files,
            source,
            layers,
            outline,
            size: tree.size(),
            user_box,
            root_close,
        })
    }

    /// Matches modifications to layers; layers nested in an edited layer
    /// are skipped with a warning, since the outer edit replaces them.
    pub fn plan<'a>(&'a self, mods: &'a [Modification]) -> Plan<'a> {
        let mut plan = Plan::default();
        let mut unknown = 0;
        for m in mods {
            let Some((name, layer)) = self.layers.get_key_value(&m.name) else {
                plan.warnings.push(format!("unknown layer `{}`", m.name));
                unknown += 1;
                continue;
            };
            if m.text.is_some() && !matches!(layer.kind, Kind::Text(_)) {
                plan.warnings
                    .push(format!("layer `{}` is not a text element", m.name));
            }
            if m.src.is_some() && !matches!(layer.kind, Kind::Image) {
                plan.warnings
                    .push(format!("layer `{}` is not an <image>", m.name));
            }
            if m.qrcode.is_some() && layer.bbox.is_none() {
                plan.warnings.push(format!(
                    "layer `{}` has no width and height to hold a QR code",
                    m.name
                ));
            }
            plan.edits.push((name, layer, m));
        }
        plan.edits.sort_by_key(|(_, layer, _)| layer.range.start);
        let mut end = 0;
        plan.edits.retain(|(_, layer, _)| {
            let keep = layer.range.start >= end;
            end = end.max(layer.range.end);
            keep
        });
        if plan.edits.len() < mods.len() - unknown {
            plan.warnings
                .push("a layer inside another edited layer was ignored".into());
        }
        plan
    }

    /// The SVG text with the planned edits applied, for a request with no
    /// assets at scale 1.
    pub fn apply(&self, plan: &Plan<'_>, renderer: &Renderer) -> Result<Applied, RenderError> {
        self.apply_with(plan, renderer, &Images::default(), 1.0)
    }

    /// The SVG text with the planned edits applied. `assets` are the
    /// request's `src` files, read by the store; `scale` is the output's
    /// pixels per template unit, which bounds the images a layer takes.
    /// Text is checked against the fonts and fitted here, and images are
    /// decoded, so this is render work: callers run it on the blocking pool.
    pub fn apply_with(
        &self,
        plan: &Plan<'_>,
        renderer: &Renderer,
        assets: &Images,
        scale: f32,
    ) -> Result<Applied, RenderError> {
        let request = Request {
            renderer,
            assets,
            scale,
        };
        let mut out = String::with_capacity(self.source.len() + 256);
        let mut fit = Vec::new();
        let mut missing =
            renderer.missing_glyphs(plan.edits.iter().filter_map(|(_, _, m)| m.text.as_deref()));
        if !missing.is_empty() {
            missing.truncate(10);
            return Err(RenderError::MissingGlyphs(code_points(&missing)));
        }
        let mut at = 0;
        let mut edits = Vec::with_capacity(plan.edits.len());
        // Fitting's bound is per request, over every fitted layer.
        let mut budget = fit::Allowance::REQUEST;
        for (name, layer, m) in &plan.edits {
            out.push_str(&self.source[at..layer.range.start]);
            at = layer.range.end;
            let start = out.len();
            let fitting = (&mut fit, &mut budget);
            self.edit_into(&mut out, name, layer, m, &request, fitting)?;
            edits.push((layer.range.clone(), start..out.len()));
        }
        out.push_str(&self.source[at..]);
        let images = if assets.is_empty() {
            Arc::clone(&self.images)
        } else {
            Arc::new(self.images.with(assets))
        };
        Ok(Applied {
            svg: out,
            fit,
            images,
            edits,
        })
    }

    /// Writes `layer` with modification `m` applied.
    fn edit_into(
        &self,
        out: &mut String,
        name: &str,
        layer: &Layer,
        m: &Modification,
        request: &Request<'_>,
        (fit, budget): (&mut Vec<String>, &mut fit::Allowance),
    ) -> Result<(), RenderError> {
        let renderer = request.renderer;
        if m.visible == Some(false) {
            return Ok(());
        }
        let style = m
            .color
            .as_deref()
            .and_then(Color::parse)
            .map(|c| c.declarations("fill"))
            .unwrap_or_default();
        match (&layer.kind, m) {
            (
                _,
                Modification {
                    qrcode: Some(data), ..
                },
            ) if layer.bbox.is_some() => {
                qr_into(out, layer, data, m.color.as_deref())?;
            }
            (
                Kind::Text(t),
                Modification {
                    text: Some(text), ..
                },
            ) => {
                let fitted = match &t.fit {
                    Some((spec, font)) => {
                        let measure =
                            |line: &str, size: f32| renderer.measure(font, spec.align, line, size);
                        let f = fit::fit_within(spec, text, budget, measure)
                            .map_err(|e| fit_error(name, e))?;
                        fit.push(f.report(name));
                        Some((f, spec))
                    }
                    None => None,
                };
                let fitted = fitted.as_ref().map(|(f, spec)| (f, *spec));
                text_into(out, layer, t, text, fitted, &style);
            }
            (Kind::Image, Modification { src: Some(src), .. }) => {
                let href = image_href(name, layer, src, request)?;
                let href_names: Vec<&str> = ["href", "xlink:href"]
                    .into_iter()
                    .filter(|n| layer.tag.raw_value(n).is_some())
                    .collect();
                let set: Vec<(&str, &str)> = if href_names.is_empty() {
                    vec![("href", href.as_str())]
                } else {
                    href_names.iter().map(|n| (*n, href.as_str())).collect()
                };
                self.element_into(out, layer, &set, &style);
            }
            _ => self.element_into(out, layer, &[], &style),
        }
        Ok(())
    }

    /// Where this template can be cut for `plan`: the index of the first
    /// top-level element holding an edit, or why it cannot be (see
    /// `split`). With no edit the cut is after the last element.
    pub fn cut(&self, plan: &Plan<'_>) -> Result<usize, &'static str> {
        if let Some(why) = self.outline.unsplittable {
            return Err(why);
        }
        let mut at = self.outline.len();
        for (_, layer, _) in &plan.edits {
            if layer.place.referenced {
                return Err("an edited layer is referenced from elsewhere");
            }
            at = at.min(
                layer
                    .place
                    .top
                    .ok_or("an edited layer is not drawn where it stands")?,
            );
        }
        Ok(at)
    }

    /// The template with only the elements before cut `at` drawing: the
    /// part of the canvas every request at that cut shares.
    pub fn before_cut(&self, at: usize) -> String {
        self.outline.before(&self.source, at)
    }

    /// The top-level elements that draw, from cut `at` on, each with
    /// whether an edit of `plan` lands in it.
    pub fn drawn_after(&self, plan: &Plan<'_>, at: usize) -> Vec<(usize, bool)> {
        self.outline
            .drawn_from(at)
            .map(|i| {
                let range = self.outline.range(i);
                let edited = plan
                    .edits
                    .iter()
                    .any(|(_, l, _)| range.start <= l.range.start && l.range.end <= range.end);
                (i, edited)
            })
            .collect()
    }

    /// The template with only top-level elements `run` drawing, as
    /// `applied` has them (as the template has them when `None`).
    pub fn alone(&self, applied: Option<&Applied>, run: &[usize]) -> String {
        let pieces = run.iter().map(|i| {
            let range = self.outline.range(*i);
            match applied {
                Some(a) => &a.svg[a.position(range.start)..a.position(range.end)],
                None => &self.source[range],
            }
        });
        self.outline.alone(&self.source, pieces)
    }

    /// The canvas size the template declares.
    pub fn size(&self) -> usvg::Size {
        self.size
    }

    /// The template's own text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The ids of the text layers, with the raw value (entities not
    /// expanded) of `attribute` on each: how the registry reads which
    /// layer takes a recipient's name and which are fields.
    pub fn text_layers<'a>(
        &'a self,
        attribute: &'a str,
    ) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        self.layers
            .iter()
            .filter(|(_, layer)| matches!(layer.kind, Kind::Text(_)))
            .map(move |(id, layer)| (id.as_str(), layer.tag.raw_value(attribute)))
    }

    /// The element with its start tag edited and its content kept.
    fn element_into(&self, out: &mut String, layer: &Layer, set: &[(&str, &str)], style: &str) {
        layer.tag.write(out, set, style);
        out.push_str(&self.source[layer.range.start + layer.tag.len..layer.range.end]);
        if layer.tag.self_closing {
            out.push_str("</");
            out.push_str(layer.tag.name());
            out.push('>');
        }
    }
}

/// Escapes text for element content or a double-quoted attribute.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

/// A template's version: the account, the file and every image file it
/// draws, each length-prefixed so no two inputs run together.
fn version(account: &str, source: &str, images: &Images) -> [u8; 32] {
    let mut hash = Sha256::new();
    let mut part = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    part(account.as_bytes());
    part(source.as_bytes());
    for (href, digest) in images.digests() {
        part(href.as_bytes());
        part(&digest);
    }
    hash.finalize().into()
}

#[cfg(test)]
mod tests;
