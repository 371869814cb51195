//! Templates: finding a user's SVG file, noticing when it changes, and
//! preparing it once per version so a request only splices text in.
//!
//! A prepared template keeps the source and the byte range of every element
//! that has an `id`; applying modifications is string splicing, with the
//! text escaped, so a name can never become markup. The content hash of the
//! file is the version: it goes into cache keys and ETags, so output of an
//! old version is never served for a new one.

mod store;

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::modifications::Modification;
use crate::render::Renderer;

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
    /// SHA-256 of the file: the version.
    pub hash: [u8; 32],
    /// The user's folder, canonical: the only place images may come from.
    pub dir: PathBuf,
    source: String,
    layers: HashMap<String, Layer>,
}

#[derive(Debug)]
struct Layer {
    /// Bytes of the whole element in the source.
    range: Range<usize>,
    /// `None` for elements that hold no text (they can't take `text`).
    text: Option<TextLayer>,
}

#[derive(Debug)]
struct TextLayer {
    /// Start tags to reopen: the element's own, then its first `tspan`'s.
    open: String,
    /// The matching end tags.
    close: String,
    /// `x` for the lines after the first, so each starts under the first.
    line_x: String,
}

/// Modifications resolved against a template.
#[derive(Debug, Default)]
pub struct Plan<'a> {
    edits: Vec<(&'a Layer, &'a str)>,
    /// Names the template does not have, or that can't take text.
    pub warnings: Vec<String>,
}

impl Template {
    /// Parses and checks `source`; `dir` is the canonical user folder.
    pub fn prepare(
        source: String,
        dir: PathBuf,
        renderer: &Renderer,
    ) -> Result<Template, TemplateError> {
        let hash = Sha256::digest(source.as_bytes()).into();
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
        renderer
            .check(&doc, &dir)
            .map_err(TemplateError::Rejected)?;
        let mut layers = HashMap::new();
        for node in root.descendants().filter(|n| n.is_element()) {
            let Some(id) = node.attribute("id") else {
                continue;
            };
            if layers.contains_key(id) {
                continue;
            }
            let text = matches!(node.tag_name().name(), "text" | "tspan")
                .then(|| text_layer(&source, node))
                .transpose()?;
            layers.insert(
                id.to_owned(),
                Layer {
                    range: node.range(),
                    text,
                },
            );
        }
        Ok(Template {
            hash,
            dir,
            source,
            layers,
        })
    }

    /// Matches modifications to layers; layers nested in an edited layer
    /// are skipped with a warning, since the outer edit replaces them.
    pub fn plan<'a>(&'a self, mods: &'a [Modification]) -> Plan<'a> {
        let mut plan = Plan::default();
        for m in mods {
            match self.layers.get(&m.name) {
                None => plan.warnings.push(format!("unknown layer `{}`", m.name)),
                Some(Layer { text: None, .. }) => plan
                    .warnings
                    .push(format!("layer `{}` is not a text element", m.name)),
                Some(layer) => plan.edits.push((layer, &m.text)),
            }
        }
        plan.edits.sort_by_key(|(layer, _)| layer.range.start);
        let mut end = 0;
        plan.edits.retain(|(layer, _)| {
            let keep = layer.range.start >= end;
            end = end.max(layer.range.end);
            keep
        });
        if plan.edits.len() < mods.len() - plan.warnings.len() {
            plan.warnings
                .push("a layer inside another edited layer was ignored".into());
        }
        plan
    }

    /// The SVG text with the planned edits applied.
    pub fn apply(&self, plan: &Plan<'_>) -> String {
        let mut out = String::with_capacity(self.source.len() + 256);
        let mut at = 0;
        for (layer, text) in &plan.edits {
            let Some(t) = &layer.text else { continue };
            out.push_str(&self.source[at..layer.range.start]);
            out.push_str(&t.open);
            for (i, line) in text.split('\n').enumerate() {
                if i > 0 {
                    out.push_str("<tspan x=\"");
                    out.push_str(&t.line_x);
                    out.push_str("\" dy=\"1.2em\">");
                }
                escape_into(&mut out, line);
                if i > 0 {
                    out.push_str("</tspan>");
                }
            }
            out.push_str(&t.close);
            at = layer.range.end;
        }
        out.push_str(&self.source[at..]);
        out
    }
}

fn text_layer(source: &str, node: roxmltree::Node<'_, '_>) -> Result<TextLayer, TemplateError> {
    let (open, name) = start_tag(source, node.range().start)?;
    let mut text = TextLayer {
        open,
        close: format!("</{name}>"),
        line_x: String::new(),
    };
    let mut x = node.attribute("x");
    if let Some(tspan) = node
        .descendants()
        .skip(1)
        .find(|n| n.is_element() && n.tag_name().name() == "tspan")
    {
        let (open, name) = start_tag(source, tspan.range().start)?;
        text.open.push_str(&open);
        text.close = format!("</{name}>{}", text.close);
        x = tspan.attribute("x").or(x);
    }
    let first_x = x
        .and_then(|x| x.split([' ', ',', '\t', '\n']).find(|s| !s.is_empty()))
        .unwrap_or("0");
    escape_into(&mut text.line_x, first_x);
    Ok(text)
}

/// The raw start tag at `start` (made non-self-closing) and its name.
fn start_tag(source: &str, start: usize) -> Result<(String, &str), TemplateError> {
    let bytes = source.as_bytes();
    let mut quote = None;
    let mut end = None;
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if q == b => quote = None,
            (None, b'>') => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    let end = end.ok_or_else(|| TemplateError::Rejected("unterminated start tag".into()))?;
    let inner = source[start + 1..end].trim_end_matches('/');
    let name_len = inner
        .find(|c: char| c.is_ascii_whitespace() || c == '/')
        .unwrap_or(inner.len());
    Ok((format!("<{inner}>"), &inner[..name_len]))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::RenderLimits;

    fn prepare(svg: &str) -> Template {
        let fonts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fonts");
        let limits = RenderLimits {
            max_pixels: 1 << 24,
            max_image_bytes: 1 << 20,
            max_nodes: 10_000,
        };
        let renderer = Renderer::new(&fonts, limits).unwrap();
        Template::prepare(svg.into(), std::env::temp_dir(), &renderer).unwrap()
    }

    fn apply(t: &Template, name: &str, text: &str) -> String {
        let mods = [Modification {
            name: name.into(),
            text: text.into(),
        }];
        t.apply(&t.plan(&mods))
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
            Modification {
                name: "zz".into(),
                text: "x".into(),
            },
            Modification {
                name: "r".into(),
                text: "x".into(),
            },
            Modification {
                name: "b".into(),
                text: "x".into(),
            },
            Modification {
                name: "c".into(),
                text: "y".into(),
            },
        ];
        let plan = t.plan(&mods);
        assert_eq!(plan.warnings.len(), 3, "{:?}", plan.warnings);
        let out = t.apply(&plan);
        assert!(out.contains(">x</tspan>") && !out.contains(">y<"), "{out}");
    }
}
