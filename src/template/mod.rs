//! Templates: finding a user's SVG file, noticing when it changes, and
//! preparing it once per version so a request only splices text in.
//!
//! A prepared template keeps the source and the byte range of every element
//! that has an `id`; applying modifications is string splicing, with the
//! text escaped, so a name can never become markup. The version — a hash of
//! the account, the file and every image file it draws — goes into cache
//! keys, bases and ETags, so output of an old version, or of another
//! account's identical file, is never served for this one.

mod split;
mod store;
mod tag;

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
use split::{Outline, Place};
use tag::StartTag;

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

fn text_into(
    out: &mut String,
    layer: &Layer,
    t: &TextLayer,
    text: &str,
    fitted: Option<(&Fitted, &FitSpec)>,
    color: &str,
) {
    let Some((f, spec)) = fitted else {
        layer.tag.write(out, &[], color);
        if let Some(tspan) = &t.tspan {
            tspan.write(out, &[], color);
        }
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                out.push_str("<tspan x=\"");
                out.push_str(&t.line_x);
                out.push_str("\" dy=\"1.2em\">");
            }
            escape_into(out, line);
            if i > 0 {
                out.push_str("</tspan>");
            }
        }
        out.push_str(&t.close);
        return;
    };
    let (x, y) = (f.x.to_string(), f.first_baseline.to_string());
    let mut style = format!("font-size:{}px;text-anchor:{}", f.size, spec.align.anchor());
    if !color.is_empty() {
        style.push(';');
        style.push_str(color);
    }
    let set = [("x", x.as_str()), ("y", y.as_str())];
    layer.tag.write(out, &set, &style);
    if let Some(tspan) = &t.tspan {
        tspan.write(out, &set, &style);
    }
    let advance = spec.line_height * f.size;
    for (i, line) in f.lines.iter().enumerate() {
        if i > 0 {
            out.push_str(&format!("<tspan x=\"{x}\" dy=\"{advance}\">"));
        }
        escape_into(out, line);
        if i > 0 {
            out.push_str("</tspan>");
        }
    }
    out.push_str(&t.close);
}

/// A QR code of `data` as vector paths filling the layer's box (square,
/// centred), with the standard four-module quiet zone in white.
fn qr_into(
    out: &mut String,
    layer: &Layer,
    data: &str,
    color: Option<&str>,
) -> Result<(), RenderError> {
    let Some([x, y, w, h]) = layer.bbox else {
        return Ok(());
    };
    let code = qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| RenderError::TooLarge(format!("QR code: {e}")))?;
    let n = code.width();
    let side = w.min(h);
    let module = side / (n + 8) as f32;
    let (ox, oy) = (
        x + (w - side) / 2.0 + 4.0 * module,
        y + (h - side) / 2.0 + 4.0 * module,
    );
    let dark = color
        .and_then(Color::parse)
        .map_or_else(|| "fill:#000000".to_owned(), |c| c.declarations("fill"));
    out.push_str("<g");
    for attr in ["id", "transform", "class"] {
        if let Some(value) = layer.tag.raw_value(attr) {
            out.push_str(&format!(" {attr}=\"{value}\""));
        }
    }
    out.push_str(&format!(
        "><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/><path shape-rendering=\"crispEdges\" style=\"{dark}\" transform=\"translate({ox} {oy}) scale({module})\" d=\""
    ));
    let colors = code.to_colors();
    for row in 0..n {
        let mut col = 0;
        while col < n {
            if colors[row * n + col] == qrcode::Color::Dark {
                let start = col;
                while col < n && colors[row * n + col] == qrcode::Color::Dark {
                    col += 1;
                }
                out.push_str(&format!(
                    "M{start} {row}h{}v1h-{}z",
                    col - start,
                    col - start
                ));
            } else {
                col += 1;
            }
        }
    }
    out.push_str("\"/></g>");
    Ok(())
}

fn text_layer(
    source: &str,
    doc: &roxmltree::Document<'_>,
    tree: &usvg::Tree,
    node: roxmltree::Node<'_, '_>,
    name: &str,
) -> Result<TextLayer, TemplateError> {
    let mut text = TextLayer {
        tspan: None,
        close: format!("</{name}>"),
        line_x: String::new(),
        fit: None,
    };
    let mut x = node.attribute("x");
    if let Some(tspan) = node
        .descendants()
        .skip(1)
        .find(|n| n.is_element() && n.tag_name().name() == "tspan")
    {
        let tag = StartTag::of(source, tspan)?;
        text.close = format!("</{}>{}", tag.name(), text.close);
        text.tspan = Some(tag);
        x = tspan.attribute("x").or(x);
    }
    let first_x = x
        .and_then(|x| x.split([' ', ',', '\t', '\n']).find(|s| !s.is_empty()))
        .unwrap_or("0");
    escape_into(&mut text.line_x, first_x);
    if node.attribute("data-fit").is_some() {
        text.fit = Some(fit_spec(doc, tree, node)?);
    }
    Ok(text)
}

/// A length attribute in user units (a bare number or `px`), finite.
fn px(node: roxmltree::Node<'_, '_>, name: &str) -> Option<f32> {
    node.attribute(name)
        .and_then(|v| v.trim().trim_end_matches("px").parse::<f32>().ok())
        .filter(|v| v.is_finite())
}

/// `x y width height` of an element that has a positive width and height.
fn box_of(node: roxmltree::Node<'_, '_>) -> Option<[f32; 4]> {
    match (px(node, "width"), px(node, "height")) {
        (Some(w), Some(h)) if w > 0.0 && h > 0.0 => Some([
            px(node, "x").unwrap_or(0.0),
            px(node, "y").unwrap_or(0.0),
            w,
            h,
        ]),
        _ => None,
    }
}

/// Reads the `data-fit` attributes of a text layer (see `fit`), with the
/// font, size and position usvg resolved for it.
fn fit_spec(
    doc: &roxmltree::Document<'_>,
    tree: &usvg::Tree,
    node: roxmltree::Node<'_, '_>,
) -> Result<(FitSpec, FontSpec), TemplateError> {
    let id = node.attribute("id").unwrap_or_default();
    let reject = |why: String| TemplateError::Rejected(format!("text layer `{id}`: {why}"));
    let wrap = match node.attribute("data-fit") {
        Some("shrink") => false,
        Some("wrap") => true,
        other => {
            return Err(reject(format!(
                "data-fit must be shrink or wrap, not {other:?}"
            )))
        }
    };
    let Some(usvg::Node::Text(text)) = tree.node_by_id(id) else {
        return Err(reject(
            "a fitted layer needs sample text in the template, to find its font".into(),
        ));
    };
    let (font, size) = FontSpec::of(text).ok_or_else(|| reject("no font resolved".into()))?;
    let chunk = &text.chunks()[0];
    let (x, baseline) = (chunk.x().unwrap_or(0.0), chunk.y().unwrap_or(0.0));
    let anchor = match chunk.anchor() {
        usvg::TextAnchor::Start => Align::Start,
        usvg::TextAnchor::Middle => Align::Middle,
        usvg::TextAnchor::End => Align::End,
    };
    let number = |name: &str, lo: f32, hi: f32| -> Result<Option<f32>, TemplateError> {
        match node.attribute(name) {
            None => Ok(None),
            Some(_) => px(node, name)
                .filter(|v| (lo..=hi).contains(v))
                .map(Some)
                .ok_or_else(|| reject(format!("{name} must be a number from {lo} to {hi}"))),
        }
    };
    let (left, right, top) = match (node.attribute("data-box"), number("data-width", 1.0, 1e6)?) {
        (Some(box_id), _) => {
            let rect = doc
                .descendants()
                .find(|n| n.attribute("id") == Some(box_id))
                .ok_or_else(|| {
                    reject(format!(
                        "data-box names `{box_id}`, which is not in the template"
                    ))
                })?;
            match box_of(rect) {
                Some([bx, by, w, _]) => (bx, bx + w, Some(by)),
                None => {
                    return Err(reject(format!(
                        "data-box `{box_id}` needs a width and a height"
                    )))
                }
            }
        }
        (None, Some(w)) => match anchor {
            Align::Start => (x, x + w, None),
            Align::Middle => (x - w / 2.0, x + w / 2.0, None),
            Align::End => (x - w, x, None),
        },
        (None, None) => return Err(reject("data-fit needs data-box or data-width".into())),
    };
    let align = match node.attribute("data-align") {
        None => anchor,
        Some(raw) => Align::parse(raw)
            .ok_or_else(|| reject("data-align must be start, middle or end".into()))?,
    };
    let ellipsis = match node.attribute("data-overflow") {
        None | Some("error") => false,
        Some("ellipsis") => true,
        Some(_) => return Err(reject("data-overflow must be error or ellipsis".into())),
    };
    let max_lines =
        number("data-max-lines", 1.0, 20.0)?.map_or(if wrap { 2 } else { 1 }, |n| n as usize);
    let spec = FitSpec {
        wrap,
        left,
        right,
        top,
        size,
        min_size: number("data-min-size", 1.0, 10_000.0)?
            .unwrap_or(size / 2.0)
            .min(size),
        max_lines,
        line_height: number("data-line-height", 0.5, 4.0)?.unwrap_or(1.2),
        align,
        ellipsis,
        baseline,
    };
    Ok((spec, font))
}

/// The render error for a layer that could not be fitted.
fn fit_error(name: &str, error: fit::FitError) -> RenderError {
    match error {
        fit::FitError::DoesNotFit | fit::FitError::Unmeasurable => {
            RenderError::DoesNotFit(name.to_owned())
        }
        fit::FitError::TooMuchWork(which) => RenderError::DoesNotFit(format!(
            "{name} (laying it out takes more measuring than a {which} is allowed)"
        )),
        fit::FitError::Expired => crate::deadline::Expired.into(),
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

/// What `apply` knows of the request beyond its modifications.
struct Request<'a> {
    renderer: &'a Renderer,
    assets: &'a Images,
    scale: f32,
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

/// The `href` for layer `name`'s `src`, checked: an asset must have been
/// read by the store; every image must decode and be within the layer's
/// bound (its size at the output scale, a few times over, and never more
/// than the configured image bound).
fn image_href(
    name: &str,
    layer: &Layer,
    src: &str,
    request: &Request<'_>,
) -> Result<String, RenderError> {
    let renderer = request.renderer;
    let bound = layer_pixel_bound(layer, request.scale, renderer.image_pixel_limit());
    let rejected = |why: String| RenderError::ImageRejected(format!("layer `{name}`: {why}"));
    match Source::parse(src) {
        Ok(Source::Data(uri)) => {
            let data = crate::modifications::data_uri_bytes(uri).map_err(rejected)?;
            renderer.check_data_image(data, bound).map_err(rejected)?;
            Ok(uri.to_owned())
        }
        Ok(Source::Asset(asset)) => {
            let href = format!("assets/{asset}");
            let image = request
                .assets
                .get(&href)
                .ok_or_else(|| RenderError::AssetNotFound(asset.to_owned()))?;
            let pixels = u64::from(image.width) * u64::from(image.height);
            if pixels > bound {
                return Err(rejected(format!(
                    "{asset} is {}x{} pixels, over the layer's limit of {bound}",
                    image.width, image.height
                )));
            }
            Ok(href)
        }
        Err(why) => Err(RenderError::AssetNotFound(why)),
    }
}

/// The most pixels an image drawn in `layer` may decode to: the layer's
/// box at the output scale, twice over on each axis (sharp on any screen),
/// at least 256×256 for tiny boxes, and never more than `limit`. A layer
/// without a box is bounded by `limit` alone.
fn layer_pixel_bound(layer: &Layer, scale: f32, limit: u64) -> u64 {
    match layer.bbox {
        Some([_, _, w, h]) => {
            let side = |v: f32| (f64::from(v.abs()) * f64::from(scale) * 2.0).ceil();
            let pixels = side(w) * side(h);
            (pixels.min(limit as f64) as u64).max(65_536).min(limit)
        }
        None => limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::RenderLimits;

    fn renderer() -> Renderer {
        let fonts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fonts");
        let limits = RenderLimits {
            max_pixels: 1 << 24,
            max_image_bytes: 1 << 20,
            max_image_pixels: 1 << 20,
            max_memory_bytes: 1 << 30,
            memory_wait: std::time::Duration::from_secs(10),
            max_nodes: 10_000,
        };
        Renderer::new(&fonts, &[], limits).unwrap()
    }

    fn prepare(svg: &str) -> Template {
        Template::prepare("u", svg.into(), std::env::temp_dir(), &renderer()).unwrap()
    }

    fn apply_all(t: &Template, mods: &[Modification]) -> Result<Applied, RenderError> {
        t.apply(&t.plan(mods), &renderer())
    }

    fn apply(t: &Template, name: &str, text: &str) -> String {
        apply_all(t, &[Modification::text(name, text)]).unwrap().svg
    }

    const SVG: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text id="a" x="5" y="9">old</text><svg:text xmlns:svg="http://www.w3.org/2000/svg" id="b" style="x"><tspan x="1 2" y="3" id="c">Jane</tspan><tspan x="1" y="6">Doe</tspan></svg:text><text id="e"/><rect id="r"/></svg>"#;

    #[test]
    fn text_replaces_the_content_and_is_escaped() {
        let t = prepare(SVG);
        let out = apply(&t, "a", "<b>&'\"");
        assert!(
            out.contains(r#"<text id="a" x="5" y="9">&lt;b&gt;&amp;&apos;&quot;</text>"#),
            "{out}"
        );
        let self_closing = apply(&t, "e", "x");
        assert!(
            self_closing.contains(r#"<text id="e">x</text>"#),
            "{self_closing}"
        );
    }

    #[test]
    fn text_goes_into_the_first_tspan_and_other_runs_are_dropped() {
        let t = prepare(SVG);
        let out = apply(&t, "b", "Ada");
        assert!(
            out.contains(r#"<svg:text xmlns:svg="http://www.w3.org/2000/svg" id="b" style="x"><tspan x="1 2" y="3" id="c">Ada</tspan></svg:text>"#),
            "{out}"
        );
        assert!(!out.contains("Doe"));
    }

    #[test]
    fn line_feeds_become_lines_under_the_first() {
        let t = prepare(SVG);
        let out = apply(&t, "b", "Ada\nLovelace");
        assert!(
            out.contains(r#">Ada<tspan x="1" dy="1.2em">Lovelace</tspan></tspan></svg:text>"#),
            "{out}"
        );
    }

    #[test]
    fn unknown_non_text_and_nested_layers_are_warnings() {
        let t = prepare(SVG);
        let mods = [
            Modification::text("zz", "x"),
            Modification::text("r", "x"),
            Modification::text("b", "x"),
            Modification::text("c", "y"),
        ];
        let plan = t.plan(&mods);
        assert_eq!(plan.warnings.len(), 3, "{:?}", plan.warnings);
        let out = t.apply(&plan, &renderer()).unwrap().svg;
        assert!(out.contains(">x</tspan>") && !out.contains(">y<"), "{out}");
    }

    #[test]
    fn colour_is_appended_to_the_style_and_hidden_layers_vanish() {
        let t = prepare(SVG);
        let mods = [
            Modification {
                name: "r".into(),
                color: Some("#0a0b0c80".into()),
                ..Modification::default()
            },
            Modification {
                name: "a".into(),
                visible: Some(false),
                ..Modification::default()
            },
            Modification {
                text: Some("Ada".into()),
                color: Some("#f00".into()),
                ..Modification::text("b", "")
            },
        ];
        let out = apply_all(&t, &mods).unwrap().svg;
        assert!(
            out.contains(r##"<rect id="r" style="fill:#0a0b0c;fill-opacity:0.502"></rect>"##),
            "{out}"
        );
        assert!(!out.contains(r#"id="a""#), "{out}");
        assert!(
            out.contains(
                r##"style="x;fill:#ff0000"><tspan x="1 2" y="3" id="c" style="fill:#ff0000">Ada"##
            ),
            "{out}"
        );
    }

    #[test]
    fn a_qr_code_fills_the_box_with_square_modules_and_a_quiet_zone() {
        let t = prepare(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100"><rect id="q" x="10" y="20" width="100" height="60" transform="rotate(1)"/></svg>"#,
        );
        let mods = [Modification {
            name: "q".into(),
            qrcode: Some("https://example.org/v/123".into()),
            ..Modification::default()
        }];
        let out = apply_all(&t, &mods).unwrap().svg;
        // Version 2 (25 modules) + 8 quiet modules in a 60-unit square.
        let module = 60.0_f32 / 33.0;
        assert!(out.contains(r##"<g id="q" transform="rotate(1)"><rect x="10" y="20" width="100" height="60" fill="#ffffff"/>"##), "{out}");
        assert!(
            out.contains(&format!(
                "translate({} {}) scale({module})",
                30.0 + 4.0 * module,
                20.0 + 4.0 * module
            )),
            "{out}"
        );
        assert!(
            out.contains("M0 0h7v1h-7z"),
            "the finder pattern's top row: {out}"
        );
    }

    #[test]
    fn src_takes_an_asset_inside_the_folder_or_a_data_uri_and_refuses_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("assets")).unwrap();
        let png = crate::encode::encode_png(
            &resvg::tiny_skia::Pixmap::new(2, 2).unwrap(),
            crate::encode::SERVER,
        )
        .unwrap();
        std::fs::write(dir.path().join("assets/logo.png"), &png).unwrap();
        std::fs::write(dir.path().join("assets/fake.png"), b"not a png").unwrap();
        let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="9" height="9"><image id="i" width="9" height="9" xlink:href="assets/logo.png"/></svg>"#;
        let dir = dir.path().canonicalize().unwrap();
        let renderer = Arc::new(renderer());
        let t = Template::prepare("u", svg.into(), dir.clone(), &renderer).unwrap();
        let store = TemplateStore::new(dir.clone(), 1 << 20, Arc::clone(&renderer));
        let with = |src: &str| {
            let mods = [Modification {
                name: "i".into(),
                src: Some(src.into()),
                ..Modification::default()
            }];
            let assets = store.assets_blocking(&dir, &store::asset_names(&mods))?;
            t.apply_with(&t.plan(&mods), &renderer, &assets, 1.0)
        };
        use base64::Engine;
        let uri = format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&png)
        );
        let out = with(&uri).unwrap().svg;
        assert!(
            out.contains(&format!(r#"xlink:href="{uri}"></image>"#)),
            "{out}"
        );
        let out = with("logo.png").unwrap().svg;
        assert!(
            out.contains(r#"xlink:href="assets/logo.png"></image>"#),
            "{out}"
        );
        for missing in ["nope.png", "fake.png"] {
            assert!(
                matches!(with(missing), Err(RenderError::AssetNotFound(m)) if m.starts_with(missing))
            );
        }
        // A 9×9 layer takes at most 256×256 pixels (the floor of the bound).
        let big = crate::encode::encode_png(
            &resvg::tiny_skia::Pixmap::new(300, 300).unwrap(),
            crate::encode::SERVER,
        )
        .unwrap();
        std::fs::write(dir.join("assets/big.png"), &big).unwrap();
        assert!(
            matches!(with("big.png"), Err(RenderError::ImageRejected(m)) if m.contains("over the layer's limit")),
        );
        let big_uri = format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&big)
        );
        assert!(
            matches!(with(&big_uri), Err(RenderError::ImageRejected(m)) if m.starts_with("layer `i`"))
        );
    }

    #[test]
    fn text_no_font_covers_is_refused_with_its_code_points() {
        let t = prepare(SVG);
        let err = apply_all(
            &t,
            &[Modification::text("a", "Ada \u{10FFFD}\u{E000} \u{200D}")],
        )
        .unwrap_err();
        assert_eq!(err, RenderError::MissingGlyphs("U+10FFFD, U+E000".into()));
        // Each code point once, across layers too.
        let mods = [
            Modification::text("a", "\u{E000}\u{10FFFD}"),
            Modification::text("e", "\u{E001}\u{E000}"),
        ];
        let err = apply_all(&t, &mods).unwrap_err();
        assert_eq!(
            err,
            RenderError::MissingGlyphs("U+E000, U+10FFFD, U+E001".into())
        );
    }

    const FITTED: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="400"><rect id="box" x="100" y="100" width="800" height="200" fill="none"/><text id="name" x="500" y="250" text-anchor="middle" font-family="serif" font-size="100" data-fit="shrink" data-box="box" data-min-size="20" data-overflow="ellipsis">Jane Doe</text><text id="w" x="500" y="250" font-size="100" data-fit="wrap" data-width="600" data-max-lines="3">Jane</text></svg>"#;

    /// The ink of layer `id` in the rendered SVG, in canvas units.
    fn ink(svg: &str, id: &str) -> resvg::usvg::Rect {
        let r = renderer();
        let doc = r.parse_xml(svg).unwrap();
        let (tree, _, _) = r.check(&doc, &std::env::temp_dir()).unwrap();
        match tree.node_by_id(id) {
            Some(resvg::usvg::Node::Text(t)) => t.flattened().abs_bounding_box(),
            _ => panic!("no text {id} in {svg}"),
        }
    }

    #[test]
    fn fitted_names_short_and_long_stay_inside_their_box() {
        let t = prepare(FITTED);
        for name in [
            "Al",
            "Maximiliana Wilhelmina Augusta von Hohenzollern-Sigmaringen",
            "Ṣọ̀lá Ọlábísí-Adéyẹmí",
        ] {
            let applied = apply_all(&t, &[Modification::text("name", name)]).unwrap();
            let b = ink(&applied.svg, "name");
            assert!(b.left() >= 99.99 && b.right() <= 900.01, "{name}: {b:?}");
            assert!(b.top() >= 100.0 && b.bottom() <= 300.0, "{name}: {b:?}");
            assert!(applied.fit[0].starts_with("name="), "{:?}", applied.fit);
        }
        let short = apply_all(&t, &[Modification::text("name", "Al")]).unwrap();
        assert_eq!(short.fit, vec!["name=100px/1 line"]);
    }

    #[test]
    fn wrapped_text_breaks_into_lines_inside_its_width() {
        let t = prepare(FITTED);
        let applied = apply_all(
            &t,
            &[Modification::text(
                "w",
                "Augusta Ada King Countess of Lovelace",
            )],
        )
        .unwrap();
        assert!(applied.fit[0].contains("lines"), "{:?}", applied.fit);
        let b = ink(&applied.svg, "w");
        // `data-width` with text-anchor start: the box is x .. x + 600.
        assert!(b.left() >= 500.0 && b.right() <= 1100.0, "{b:?}");
        assert!(
            b.bottom() <= 250.0 + 40.0,
            "the last line stays on the baseline: {b:?}"
        );
    }

    #[test]
    fn an_overflow_under_error_is_refused_and_under_ellipsis_is_cut() {
        let t = prepare(&FITTED.replace(r#" data-overflow="ellipsis""#, ""));
        let long = "W".repeat(200);
        assert_eq!(
            apply_all(&t, &[Modification::text("name", &long)]).unwrap_err(),
            RenderError::DoesNotFit("name".into())
        );
        let t = prepare(FITTED);
        let applied = apply_all(&t, &[Modification::text("name", &long)]).unwrap();
        assert_eq!(applied.fit, vec!["name=20px/1 line/ellipsis"]);
        assert!(applied.svg.contains("W…</text>"));
        let b = ink(&applied.svg, "name");
        assert!(b.left() >= 99.99 && b.right() <= 900.01, "{b:?}");
    }

    #[test]
    fn bad_fit_declarations_reject_the_template() {
        for (from, to) in [
            (r#"data-fit="shrink""#, r#"data-fit="squeeze""#),
            (r#"data-box="box""#, r#"data-box="nope""#),
            (r#"data-min-size="20""#, r#"data-min-size="-1""#),
            (r#"data-overflow="ellipsis""#, r#"data-overflow="hide""#),
        ] {
            let svg = FITTED.replace(from, to);
            let err = Template::prepare("u", svg, std::env::temp_dir(), &renderer()).unwrap_err();
            assert!(
                matches!(err, TemplateError::Rejected(ref m) if m.contains("`name`")),
                "{to}: {err:?}"
            );
        }
    }
}
