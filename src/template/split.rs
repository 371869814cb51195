//! Where a template can be cut in two for incremental rendering: the
//! top-level elements painted before the first edited layer (the same for
//! every request, rendered once) and the rest (rendered per request on top).
//!
//! resvg paints the root's children one after another onto one canvas, so
//! painting the elements before the cut and then, onto that canvas, the
//! elements from the cut on gives the same pixels as painting all of them
//! — provided each half converts to the same nodes it would in the whole
//! document. That holds when nothing one half drops is referenced by what
//! it keeps (an `<use>`, a `url(#…)`, a `href`), when no style rule depends
//! on siblings or matches the root, and when the root itself paints as a
//! plain group (no opacity, filter, mask or clip). Anything else makes the
//! template unsplittable and its renders whole. Elements that draw nothing
//! themselves (`<defs>`, gradients, `<style>`…) are kept in both halves.

use std::collections::HashMap;
use std::ops::Range;

/// SVG elements that paint nothing where they stand.
const NON_DRAWING: &[&str] = &[
    "defs",
    "style",
    "linearGradient",
    "radialGradient",
    "pattern",
    "clipPath",
    "mask",
    "filter",
    "marker",
    "symbol",
    "title",
    "desc",
    "metadata",
];

/// Root attributes that make the root a group composited as a whole, or
/// may (through style rules).
const ROOT_ISOLATING: &[&str] = &[
    "opacity",
    "filter",
    "mask",
    "clip-path",
    "mix-blend-mode",
    "isolation",
    "style",
    "class",
];

const SVG_NS: &str = "http://www.w3.org/2000/svg";

/// The top level of a template, for cutting.
#[derive(Debug)]
pub(crate) struct Outline {
    /// End of the root's start tag and start of its end tag.
    content: Range<usize>,
    children: Vec<Child>,
    /// Why the template cannot be cut, if it cannot.
    pub(crate) unsplittable: Option<&'static str>,
}

#[derive(Debug)]
struct Child {
    range: Range<usize>,
    draws: bool,
}

/// Where a layer sits, for cutting.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place {
    /// Index of its top-level ancestor (itself when top-level); `None` for
    /// the root, or inside an element that does not draw.
    pub(crate) top: Option<usize>,
    /// Some element of the layer has an id that something references, so
    /// an edit may show elsewhere too.
    pub(crate) referenced: bool,
}

impl Outline {
    /// Reads the top level of `doc` (parsed from `source`), and the place
    /// of every element that has an id.
    pub(crate) fn of(
        source: &str,
        doc: &roxmltree::Document<'_>,
        root_tag_len: usize,
    ) -> (Outline, HashMap<roxmltree::NodeId, Place>) {
        let root = doc.root_element();
        let start = root.range().start + root_tag_len;
        let end = source[..root.range().end].rfind("</").unwrap_or(start);
        let top: Vec<roxmltree::Node<'_, '_>> =
            root.children().filter(|n| n.is_element()).collect();
        let children: Vec<Child> = top
            .iter()
            .map(|n| Child {
                range: n.range(),
                draws: draws(*n),
            })
            .collect();

        // Every name referenced, with the top-level elements referencing it
        // (`None`: the root's own attributes).
        let mut referrers: HashMap<&str, Vec<Option<usize>>> = HashMap::new();
        for attr in root.attributes() {
            for name in refs(attr.value()) {
                referrers.entry(name).or_default().push(None);
            }
        }
        for (i, child) in top.iter().enumerate() {
            for node in child.descendants() {
                let attrs = node.attributes().flat_map(|a| refs(a.value()));
                // In a style sheet `#a` is a selector; `url(#a)` refers.
                let css = style_text(node).into_iter().flat_map(|css| {
                    css.split("url(")
                        .skip(1)
                        .flat_map(|rest| refs(rest.split(')').next().unwrap_or("")))
                });
                for name in attrs.chain(css) {
                    referrers.entry(name).or_default().push(Some(i));
                }
            }
        }

        let mut unsplittable = None;
        if end <= start {
            unsplittable = Some("the root element is empty");
        } else if root
            .attributes()
            .any(|a| ROOT_ISOLATING.contains(&a.name()))
        {
            unsplittable = Some("the root element is painted as a group");
        } else if doc
            .descendants()
            .filter_map(style_text)
            .any(|css| !plain_css(css))
        {
            unsplittable = Some("a style rule may depend on siblings or the root");
        } else if top.iter().enumerate().any(|(i, child)| {
            children[i].draws
                && child
                    .descendants()
                    .filter_map(|n| n.attribute("id"))
                    .filter_map(|id| referrers.get(id))
                    .any(|who| who.iter().any(|w| *w != Some(i)))
        }) {
            unsplittable = Some("a drawn element is referenced from elsewhere");
        }

        let mut places = HashMap::new();
        for node in root.descendants().filter(|n| n.has_attribute("id")) {
            let index = node
                .ancestors()
                .find(|a| a.parent() == Some(root))
                .and_then(|t| top.iter().position(|c| *c == t));
            let referenced = node
                .descendants()
                .filter_map(|n| n.attribute("id"))
                .any(|id| referrers.contains_key(id));
            places.insert(
                node.id(),
                Place {
                    top: index.filter(|i| children[*i].draws),
                    referenced,
                },
            );
        }
        (
            Outline {
                content: start..end,
                children,
                unsplittable,
            },
            places,
        )
    }

    /// Number of top-level elements.
    pub(crate) fn len(&self) -> usize {
        self.children.len()
    }

    fn cut(&self, at: usize) -> usize {
        self.children
            .get(at)
            .map_or(self.content.end, |c| c.range.start)
    }

    /// The document with only the elements before `at` drawing.
    pub(crate) fn before(&self, source: &str, at: usize) -> String {
        let cut = self.cut(at);
        let mut out = String::with_capacity(source.len());
        out.push_str(&source[..cut]);
        for child in self.children.iter().skip(at).filter(|c| !c.draws) {
            out.push_str(&source[child.range.clone()]);
        }
        out.push_str(&source[self.content.end..]);
        out
    }

    /// The drawing elements from `at` on.
    pub(crate) fn drawn_from(&self, at: usize) -> impl Iterator<Item = usize> + '_ {
        (at..self.children.len()).filter(|i| self.children[*i].draws)
    }

    /// Bytes of top-level element `i` in the source.
    pub(crate) fn range(&self, i: usize) -> Range<usize> {
        self.children[i].range.clone()
    }

    /// A document of the root, the elements that draw nothing, and
    /// `pieces` (drawing elements' text, in document order).
    pub(crate) fn alone<'a>(&self, source: &str, pieces: impl Iterator<Item = &'a str>) -> String {
        let mut out = String::with_capacity(source.len());
        out.push_str(&source[..self.content.start]);
        for child in self.children.iter().filter(|c| !c.draws) {
            out.push_str(&source[child.range.clone()]);
        }
        pieces.for_each(|p| out.push_str(p));
        out.push_str(&source[self.content.end..]);
        out
    }
}

/// Whether an element paints where it stands. Unknown SVG elements count
/// as drawing, the safe side: they are only left out of the other half.
fn draws(node: roxmltree::Node<'_, '_>) -> bool {
    let name = node.tag_name();
    name.namespace() == Some(SVG_NS) && !NON_DRAWING.contains(&name.name())
}

fn style_text<'a>(node: roxmltree::Node<'a, '_>) -> Option<&'a str> {
    (node.is_element() && node.tag_name().name() == "style")
        .then(|| node.text())
        .flatten()
}

/// Names after a `#` in an attribute value or style sheet: `href="#a"`,
/// `url(#a)`. Colours such as `#fff` come along; they only make the check
/// more careful.
fn refs(text: &str) -> impl Iterator<Item = &str> {
    text.split('#').skip(1).filter_map(|rest| {
        let end = rest
            .find(|c: char| {
                c.is_whitespace() || matches!(c, ')' | '"' | '\'' | ';' | ',' | '{' | '}')
            })
            .unwrap_or(rest.len());
        (end > 0).then(|| &rest[..end])
    })
}

/// True when a style sheet's selectors only name elements, classes, ids
/// and attributes: no pseudo-classes (`:first-child`), sibling
/// combinators, universal selector, at-rules, or `svg` (the root).
fn plain_css(css: &str) -> bool {
    let mut depth = 0usize;
    let mut selectors = String::new();
    for c in css.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 => selectors.push(c),
            _ => {}
        }
    }
    let selectors = selectors.to_ascii_lowercase();
    !selectors.contains([':', '+', '~', '*', '@', '\\'])
        && !selectors
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_')
            .any(|word| word == "svg")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outline(svg: &str) -> (Outline, Vec<(String, Place)>) {
        let doc = roxmltree::Document::parse(svg).unwrap();
        let root = doc.root_element();
        let tag_len = svg[root.range().start..].find('>').unwrap() + 1;
        let (outline, places) = Outline::of(svg, &doc, tag_len);
        let mut named: Vec<(String, Place)> = places
            .into_iter()
            .map(|(id, p)| {
                (
                    doc.get_node(id)
                        .unwrap()
                        .attribute("id")
                        .unwrap()
                        .to_owned(),
                    p,
                )
            })
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        (outline, named)
    }

    const SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><defs><linearGradient id="g"/></defs><rect id="a" fill="url(#g)"/><g id="b"><text id="t">x</text></g><defs id="late"><path id="p"/></defs><circle id="c"/></svg>"##;

    #[test]
    fn halves_keep_non_drawing_elements_and_split_the_rest() {
        let (o, places) = outline(SVG);
        assert_eq!(o.unsplittable, None);
        assert_eq!(o.len(), 5);
        let top: Vec<(&str, Option<usize>)> =
            places.iter().map(|(n, p)| (n.as_str(), p.top)).collect();
        assert_eq!(
            top,
            [
                ("a", Some(1)),
                ("b", Some(2)),
                ("c", Some(4)),
                ("g", None),
                ("late", None),
                ("p", None),
                ("t", Some(2))
            ]
        );
        assert!(places.iter().find(|(n, _)| n == "g").unwrap().1.referenced);
        assert!(!places.iter().find(|(n, _)| n == "t").unwrap().1.referenced);
        let before = o.before(SVG, 2);
        assert!(before.contains(r#"<rect id="a""#) && before.contains(r#"id="late""#));
        assert!(!before.contains(r#"id="b""#) && !before.contains(r#"id="c""#));
        assert_eq!(o.drawn_from(2).collect::<Vec<_>>(), [2, 4]);
        let alone = o.alone(SVG, [&SVG[o.range(4)]].into_iter());
        assert!(alone.contains("linearGradient") && alone.contains(r#"id="late""#));
        assert!(alone.contains(r#"<circle id="c"/></svg>"#));
        assert!(!alone.contains(r#"<rect id="a""#) && !alone.contains(r#"id="b""#));
        // Cutting after the last element keeps everything before.
        assert!(o.before(SVG, 5).ends_with("</svg>"));
    }

    #[test]
    fn references_into_drawn_elements_styles_and_root_groups_forbid_a_cut() {
        let used = SVG.replace("<circle id=\"c\"/>", "<use href=\"#a\"/>");
        assert_eq!(
            outline(&used).0.unsplittable,
            Some("a drawn element is referenced from elsewhere")
        );
        let self_ref = SVG.replace(
            "<g id=\"b\">",
            "<g id=\"b\"><clipPath id=\"k\"/><rect clip-path=\"url(#k)\"/>",
        );
        assert_eq!(outline(&self_ref).0.unsplittable, None);
        let faded = SVG.replace("height=\"10\"", "height=\"10\" opacity=\"0.5\"");
        assert!(outline(&faded).0.unsplittable.is_some());
        for css in [
            "rect:first-child{fill:red}",
            "svg rect{fill:red}",
            "a+b{}",
            "*{fill:red}",
            "@media print{a{}}",
        ] {
            let styled = SVG.replace("<defs>", &format!("<style>{css}</style><defs>"));
            assert!(outline(&styled).0.unsplittable.is_some(), "{css}");
        }
        let plain = SVG.replace(
            "<defs>",
            "<style>.st0{fill:#fff;stroke:url(#g)} #a{opacity:.5}</style><defs>",
        );
        assert_eq!(outline(&plain).0.unsplittable, None);
    }
}
