//! Text as the renderer shapes it: which face draws each glyph, the glyph,
//! the characters it stands for and where it is drawn.
//!
//! The glyphs come from the same usvg text layout the renderer paints and
//! fitting measures, read back from the laid-out tree. They exist so that
//! shaping can be checked against an independent shaper (the tests compare
//! them with HarfBuzz's `hb-shape`), and so that a reader of a wrong
//! rendering can see which face and glyph drew each character.

use std::path::PathBuf;

use resvg::usvg::{self, fontdb};

use crate::render::Renderer;
use crate::template::escape_into;

/// The face a glyph is drawn from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Face {
    /// Its family name, as CSS would name it.
    pub family: String,
    /// The font file, for faces loaded from one (every face Signet loads).
    pub path: Option<PathBuf>,
    /// The face's index in a collection (`.ttc`), 0 otherwise.
    pub index: u32,
}

/// One shaped glyph of a line.
#[derive(Debug, Clone, PartialEq)]
pub struct Glyph {
    pub face: Face,
    /// The glyph id in the face.
    pub id: u16,
    /// The byte offset in the text of the first character of the glyph's
    /// cluster, as a shaper numbers clusters.
    pub cluster: usize,
    /// Where the glyph's origin is drawn, in pixels from the start of the
    /// line on its baseline, its shaping offset included; y grows down.
    pub x: f32,
    pub y: f32,
}

impl Renderer {
    /// Shapes `text` on one line in `family` (a CSS `font-family` list) at
    /// `size` pixels, with the fonts and fallback order of every render.
    /// Glyphs are in visual order, left to right. Empty when the text has
    /// nothing to draw.
    pub fn shape(&self, family: &str, size: f32, text: &str) -> Result<Vec<Glyph>, String> {
        let mut svg = String::with_capacity(200 + text.len());
        svg.push_str(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"><text font-family=""#,
        );
        escape_into(&mut svg, family);
        svg.push_str(&format!(r#"" font-size="{size}">"#));
        escape_into(&mut svg, text);
        svg.push_str("</text></svg>");
        let tree = self
            .tree(&svg, &Default::default())
            .map_err(|e| e.to_string())?;
        let Some(usvg::Node::Text(node)) = tree.root().children().first() else {
            return Ok(Vec::new());
        };
        let db = tree.fontdb();
        let mut placed = Vec::new();
        for span in node.layouted() {
            for g in &span.positioned_glyphs {
                let ts = g.transform();
                placed.push((g, ts.tx, ts.ty));
            }
        }
        let texts: Vec<&str> = placed.iter().map(|(g, _, _)| g.text.as_str()).collect();
        let clusters = clusters(text, &texts)?;
        Ok(placed
            .iter()
            .zip(clusters)
            .map(|((g, x, y), cluster)| Glyph {
                face: face(db, g.font),
                id: g.id.0,
                cluster,
                x: *x,
                y: *y,
            })
            .collect())
    }
}

fn face(db: &fontdb::Database, id: fontdb::ID) -> Face {
    let Some(info) = db.face(id) else {
        return Face {
            family: String::new(),
            path: None,
            index: 0,
        };
    };
    let path = match &info.source {
        fontdb::Source::File(path) | fontdb::Source::SharedFile(path, _) => Some(path.clone()),
        fontdb::Source::Binary(_) => None,
    };
    Face {
        family: info
            .families
            .first()
            .map(|(name, _)| name.clone())
            .unwrap_or_default(),
        path,
        index: info.index,
    }
}

/// The cluster of each glyph, from the characters usvg attributes to it.
///
/// usvg does not keep a glyph's cluster, only the text from its cluster's
/// start to the next glyph's cluster in visual order: within a left-to-right
/// run those texts follow each other from the run's start, within a
/// right-to-left run they precede each other from its end. The runs are the
/// text's bidi runs, found as usvg finds them (a left-to-right paragraph).
fn clusters(text: &str, glyph_texts: &[&str]) -> Result<Vec<usize>, String> {
    // usvg collapses and trims white space as SVG does; the name a template
    // receives has had that done before it is drawn.
    let text = collapse_spaces(text);
    let bidi = unicode_bidi::BidiInfo::new(&text, Some(unicode_bidi::Level::ltr()));
    let mut out = Vec::with_capacity(glyph_texts.len());
    let mut next = 0;
    if let Some(paragraph) = bidi.paragraphs.first() {
        let (levels, runs) = bidi.visual_runs(paragraph, paragraph.range.clone());
        for run in runs {
            let ltr = levels[run.start].is_ltr();
            let (mut covered, mut pos) = (0, if ltr { run.start } else { run.end });
            // A run ends once its texts cover it; in a right-to-left run the
            // glyphs after a cluster's first have empty texts and still
            // belong to it.
            while next < glyph_texts.len()
                && (covered < run.len() || (!ltr && glyph_texts[next].is_empty()))
            {
                let len = glyph_texts[next].len();
                if ltr {
                    out.push(pos);
                    pos += len;
                } else {
                    pos = pos.saturating_sub(len);
                    out.push(pos);
                }
                covered += len;
                next += 1;
            }
        }
    }
    if out.len() != glyph_texts.len() {
        return Err(format!(
            "{} glyphs, {} of them placed in the text's runs",
            glyph_texts.len(),
            out.len()
        ));
    }
    Ok(out)
}

/// `text` as SVG's default white-space handling draws it: tabs and line
/// breaks as spaces, runs of spaces as one, none at either end.
fn collapse_spaces(text: &str) -> String {
    text.split([' ', '\t', '\n', '\r'])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_to_right_clusters_follow_each_other_from_the_start() {
        // नामि: न+ा one cluster (0), ि+म another (6); usvg gives the text
        // to the last glyph of each cluster.
        let texts = ["", "ना", "", "मि"];
        assert_eq!(clusters("नामि", &texts).unwrap(), vec![0, 0, 6, 6]);
    }

    #[test]
    fn right_to_left_clusters_precede_each_other_from_the_end() {
        // "שָׁלוֹם" drawn right to left: ם first, then וֹ, ל, שָׁ; the later
        // glyphs of a cluster (its marks) have empty texts.
        let text = "שָׁלוֹם";
        let texts = ["ם", "וֹ", "", "ל", "שָׁ", "", ""];
        assert_eq!(clusters(text, &texts).unwrap(), vec![12, 8, 8, 6, 0, 0, 0]);
    }

    #[test]
    fn glyphs_that_do_not_fit_the_text_are_an_error() {
        assert!(clusters("ab", &["a", "b", "c"]).is_err());
    }
}
