//! A start tag of the template kept as raw text with the position of each
//! attribute value, so an edit can set or replace attributes without
//! re-serialising anything else of the element (prefixes, entities and
//! attribute order stay as the designer saved them).

use std::ops::Range;

use super::{escape_into, TemplateError};

#[derive(Debug, Clone)]
pub(crate) struct StartTag {
    /// `<name attr="v" …` without the closing `>` or `/>`.
    raw: String,
    /// Qualified name and the value's byte range in `raw`, quotes excluded.
    attrs: Vec<(String, Range<usize>)>,
    /// Bytes of the tag in the source, `>` included.
    pub(crate) len: usize,
    /// Written as `<x/>`: there is no end tag to keep.
    pub(crate) self_closing: bool,
}

impl StartTag {
    /// The start tag of `node` in `source`.
    pub(crate) fn of(
        source: &str,
        node: roxmltree::Node<'_, '_>,
    ) -> Result<StartTag, TemplateError> {
        let start = node.range().start;
        let end = tag_end(source, start)
            .ok_or_else(|| TemplateError::Rejected("unterminated start tag".into()))?;
        let self_closing = source[start..end].ends_with('/');
        let raw = source[start..end].trim_end_matches('/').to_owned();
        let attrs = node
            .attributes()
            .filter(|a| a.range_value().end <= start + raw.len())
            .map(|a| {
                let q = a.range_qname();
                let v = a.range_value();
                (source[q].to_owned(), v.start - start..v.end - start)
            })
            .collect();
        Ok(StartTag {
            raw,
            attrs,
            len: end + 1 - start,
            self_closing,
        })
    }

    /// The raw value of attribute `qname`, entities not expanded.
    pub(crate) fn raw_value(&self, qname: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(name, _)| name == qname)
            .map(|(_, range)| &self.raw[range.clone()])
    }

    /// The element's name as written (with its prefix, if any).
    pub(crate) fn name(&self) -> &str {
        let inner = &self.raw[1..];
        let len = inner
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(inner.len());
        &inner[..len]
    }

    /// Writes the tag (as an open tag, never self-closing) with `set`
    /// values (unescaped; escaped here) replacing or added after the
    /// existing attributes, and `style` declarations appended to the
    /// style attribute, where they win over what it already says.
    pub(crate) fn write(&self, out: &mut String, set: &[(&str, &str)], style: &str) {
        let mut edits: Vec<(Range<usize>, String)> = Vec::new();
        let mut added = String::new();
        for (name, value) in set {
            let mut escaped = String::new();
            escape_into(&mut escaped, value);
            match self.attrs.iter().find(|(q, _)| q == name) {
                Some((_, range)) => edits.push((range.clone(), escaped)),
                None => added.push_str(&format!(" {name}=\"{escaped}\"")),
            }
        }
        if !style.is_empty() {
            let mut escaped = String::new();
            escape_into(&mut escaped, style);
            match self.attrs.iter().find(|(q, _)| q == "style") {
                Some((_, range)) => {
                    let old = &self.raw[range.clone()];
                    edits.push((range.clone(), format!("{old};{escaped}")));
                }
                None => added.push_str(&format!(" style=\"{escaped}\"")),
            }
        }
        edits.sort_by_key(|(range, _)| range.start);
        let mut at = 0;
        for (range, value) in edits {
            out.push_str(&self.raw[at..range.start]);
            out.push_str(&value);
            at = range.end;
        }
        out.push_str(self.raw[at..].trim_end());
        out.push_str(&added);
        out.push('>');
    }
}

/// The index of the `>` closing the start tag at `start`.
fn tag_end(source: &str, start: usize) -> Option<usize> {
    let mut quote = None;
    for (i, &b) in source.as_bytes().iter().enumerate().skip(start) {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if q == b => quote = None,
            (None, b'>') => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(svg: &str) -> StartTag {
        let doc = roxmltree::Document::parse(svg).unwrap();
        let node = doc.descendants().find(|n| n.has_tag_name("image")).unwrap();
        StartTag::of(svg, node).unwrap()
    }

    #[test]
    fn attributes_are_replaced_in_place_added_at_the_end_and_styles_appended() {
        let t = tag(
            r#"<svg xmlns:xl="http://www.w3.org/1999/xlink"><image id="p" xl:href='a.png' style="opacity:.5" /></svg>"#,
        );
        assert_eq!(t.name(), "image");
        assert_eq!(t.raw_value("xl:href"), Some("a.png"));
        let mut out = String::new();
        t.write(&mut out, &[("xl:href", "b&c.png"), ("x", "3")], "fill:#fff");
        assert_eq!(
            out,
            r#"<image id="p" xl:href='b&amp;c.png' style="opacity:.5;fill:#fff" x="3">"#
        );
        let mut plain = String::new();
        tag(r#"<svg><image/></svg>"#).write(&mut plain, &[], "display:none");
        assert_eq!(plain, r#"<image style="display:none">"#);
    }
}
