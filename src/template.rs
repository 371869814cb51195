//! Templates: finding a user's SVG file, noticing when it changes, and
//! preparing it once per version so a request only splices text in.
//!
//! A prepared template keeps the source and the byte range of every element
//! that has an `id`; applying modifications is string splicing, with the
//! text escaped, so a name can never become markup. The content hash of the
//! file is the version: it goes into cache keys and ETags, so output of an
//! old version is never served for a new one.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::modifications::Modification;
use crate::render::Renderer;
use crate::request::{BaseId, UserId};

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
fn escape_into(out: &mut String, text: &str) {
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

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// A file changed within this long of its previous check may change again
/// without its stamp changing (timestamps are coarse), so it is re-read
/// until it has been quiet this long.
const RACY_WINDOW: Duration = Duration::from_secs(2);

struct Entry {
    stamp: Stamp,
    /// When the file was last read: a stamp is trusted only once the file
    /// was older than `RACY_WINDOW` at that moment.
    trusted: bool,
    result: Result<Arc<Template>, TemplateError>,
}

/// The user folders and their prepared templates.
pub struct TemplateStore {
    /// Root folder holding one folder per user.
    dir: PathBuf,
    /// Largest file read.
    max_bytes: u64,
    /// Parser and size checker shared with rendering.
    renderer: Arc<Renderer>,
    /// Prepared templates by user and id, with the stamp they were read at.
    entries: RwLock<HashMap<(UserId, BaseId), Arc<Entry>>>,
}

impl TemplateStore {
    pub fn new(dir: PathBuf, max_bytes: u64, renderer: Arc<Renderer>) -> TemplateStore {
        TemplateStore {
            dir,
            max_bytes,
            renderer,
            entries: RwLock::default(),
        }
    }

    /// The current version of a template. A `stat` decides whether the
    /// prepared copy still holds; reading and preparing a changed file runs
    /// on the blocking pool.
    pub async fn get(
        self: &Arc<Self>,
        user: &UserId,
        base: &BaseId,
    ) -> Result<Arc<Template>, TemplateError> {
        let key = (user.clone(), base.clone());
        let path = self
            .dir
            .join(user.as_str())
            .join(format!("{}.svg", base.as_str()));
        // One stat per request: cheap next to everything else a request
        // does, and what makes edits visible without a restart.
        let meta = std::fs::metadata(&path).map_err(|_| TemplateError::NotFound)?;
        let stamp = Stamp::of(&meta);
        let known = self.read_entries().get(&key).cloned();
        if let Some(entry) = &known {
            if entry.trusted && entry.stamp == stamp {
                return entry.result.clone();
            }
        }
        let store = Arc::clone(self);
        let entry = tokio::task::spawn_blocking(move || store.load(&path, &meta, known))
            .await
            .map_err(|_| TemplateError::Rejected("the template could not be prepared".into()))?;
        let result = entry.result.clone();
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, Arc::new(entry));
        result
    }

    fn read_entries(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<(UserId, BaseId), Arc<Entry>>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn load(&self, path: &Path, meta: &std::fs::Metadata, known: Option<Arc<Entry>>) -> Entry {
        let stamp = Stamp::of(meta);
        let age = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .unwrap_or_default();
        let trusted = age >= RACY_WINDOW;
        let result = self.read(path, meta).and_then(|source| {
            let hash: [u8; 32] = Sha256::digest(source.as_bytes()).into();
            match known.as_ref().map(|e| &e.result) {
                Some(Ok(t)) if t.hash == hash => Ok(Arc::clone(t)),
                _ => {
                    let dir = path.parent().map(Path::to_owned).unwrap_or_default();
                    let dir = dir.canonicalize().map_err(|_| TemplateError::NotFound)?;
                    Template::prepare(source, dir, &self.renderer).map(Arc::new)
                }
            }
        });
        if let Err(TemplateError::Rejected(why)) = &result {
            tracing::warn!(path = %path.display(), %why, "template rejected");
        }
        Entry {
            stamp,
            trusted,
            result,
        }
    }

    fn read(&self, path: &Path, meta: &std::fs::Metadata) -> Result<String, TemplateError> {
        if !meta.is_file() {
            return Err(TemplateError::Rejected("not a regular file".into()));
        }
        // A symlink may point anywhere; only files inside the user's own
        // folder are read.
        let user_dir = path.parent().and_then(|d| d.canonicalize().ok());
        let real = path.canonicalize().ok();
        match (user_dir, real) {
            (Some(dir), Some(real)) if real.starts_with(&dir) => {}
            _ => {
                return Err(TemplateError::Rejected(
                    "the file lies outside the user's folder".into(),
                ))
            }
        }
        if meta.len() > self.max_bytes {
            return Err(TemplateError::Rejected(format!(
                "the file has {} bytes (limit {})",
                meta.len(),
                self.max_bytes
            )));
        }
        let bytes = std::fs::read(path).map_err(|_| TemplateError::NotFound)?;
        if bytes.len() as u64 > self.max_bytes {
            return Err(TemplateError::Rejected(
                "the file grew over the size limit".into(),
            ));
        }
        String::from_utf8(bytes)
            .map_err(|_| TemplateError::Rejected("the file is not UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::RenderLimits;

    fn prepare(svg: &str) -> Template {
        let fonts = Path::new(env!("CARGO_MANIFEST_DIR")).join("fonts");
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
