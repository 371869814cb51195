//! The fonts: loaded once, in file-name order, with the generic families
//! set; which code points they cover (so a character no font has is
//! refused, never drawn as an empty box); and the fallback order and
//! selector the renderer and fitting share.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use resvg::usvg::{self, fontdb};

/// Preferred bundled family for each generic family, first found wins.
const GENERIC: &[(&str, &[&str])] = &[
    ("serif", &["Noto Serif", "DejaVu Serif"]),
    ("sans-serif", &["Noto Sans", "DejaVu Sans"]),
    ("monospace", &["DejaVu Sans Mono", "Noto Sans Mono"]),
    ("cursive", &["Dancing Script"]),
    ("fantasy", &["Dancing Script"]),
];

/// Loads every font in `fonts_dir`, then each of `extra_fonts` that
/// exists (installed fonts too large to ship, such as CJK and emoji), sets
/// the generic families, and gives the database, the default family and
/// the fallback order. Fails when there is no font at all, since text
/// would then vanish.
pub fn load(
    fonts_dir: &Path,
    extra_fonts: &[PathBuf],
) -> Result<(fontdb::Database, String, Vec<fontdb::ID>), String> {
    let mut db = fontdb::Database::new();
    // Sorted, so every machine loads the faces, and so picks fallbacks,
    // in the same order.
    let mut files: Vec<PathBuf> = std::fs::read_dir(fonts_dir)
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    for path in files.iter().filter(|p| {
        p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            matches!(
                e.to_ascii_lowercase().as_str(),
                "ttf" | "otf" | "ttc" | "otc"
            )
        })
    }) {
        if let Err(e) = db.load_font_file(path) {
            tracing::warn!(path = %path.display(), error = %e, "font not loaded");
        }
    }
    for path in extra_fonts {
        if let Err(e) = db.load_font_file(path) {
            tracing::info!(path = %path.display(), error = %e, "extra font not loaded");
        }
    }
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
    // Fallback order: proportional faces first (a monospace or script
    // face is a poor stand-in for a missing letter), in load order.
    let mut fallback: Vec<fontdb::ID> =
        db.faces().filter(|f| !f.monospaced).map(|f| f.id).collect();
    fallback.extend(db.faces().filter(|f| f.monospaced).map(|f| f.id));
    let ids: Vec<fontdb::ID> = db.faces().map(|f| f.id).collect();
    for id in ids {
        // SAFETY: fontdb maps a font file on every access to a face loaded
        // from a path (its `memmap` feature); this keeps one mapping per
        // file for the process's life instead of opening and mapping the
        // file again for each shaping, fallback lookup and coverage query,
        // which cost about a millisecond each. The hazard is the same as
        // before, a mapped file changed in place by another process: font
        // files are read-only package or project files, and packages
        // replace theirs by rename, which leaves this mapping of the old
        // file whole.
        unsafe {
            db.make_shared_face_data(id);
        }
    }
    Ok((db, default_family, fallback))
}

/// Which code points the loaded fonts cover: one bit per code point.
pub(crate) struct Coverage(Vec<u64>);

impl Coverage {
    pub(crate) fn of(db: &fontdb::Database) -> Coverage {
        let mut bits = vec![0u64; 0x11_0000 / 64];
        for face in db.faces() {
            db.with_face_data(face.id, |data, index| {
                let Ok(font) = ttf_parser::Face::parse(data, index) else {
                    return;
                };
                let Some(cmap) = font.tables().cmap else {
                    return;
                };
                for table in cmap.subtables.into_iter().filter(|t| t.is_unicode()) {
                    table.codepoints(|cp| {
                        if let Some(word) = bits.get_mut(cp as usize / 64) {
                            *word |= 1 << (cp % 64);
                        }
                    });
                }
            });
        }
        Coverage(bits)
    }

    pub(crate) fn has(&self, c: char) -> bool {
        let cp = c as usize;
        self.0[cp / 64] & (1 << (cp % 64)) != 0
    }
}

/// Characters that draw nothing by design: spaces, joiners, variation
/// selectors, bidi marks and tags. Shaping handles them without a glyph.
pub(crate) fn draws_nothing(c: char) -> bool {
    c.is_whitespace()
        || matches!(c as u32,
            0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5
            | 0x180B..=0x180F | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F
            | 0x3164 | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0 | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF)
}

/// Picks the face drawing a character the chosen font lacks: the first in
/// `order` that has it, preferring the weight class (bold or not) of the
/// text's own font so a bold name stays bold in every script.
pub(crate) fn fallback_selector(order: Arc<Vec<fontdb::ID>>) -> usvg::FallbackSelectionFn<'static> {
    Box::new(move |c, used, db| {
        let db: &fontdb::Database = db;
        let bold = |id: fontdb::ID| db.face(id).is_some_and(|f| f.weight.0 >= 600);
        let want_bold = used.first().is_some_and(|id| bold(*id));
        let candidates = || {
            order
                .iter()
                .copied()
                .filter(|id| !used.contains(id) && has_char(db, *id, c))
        };
        candidates()
            .find(|id| bold(*id) == want_bold)
            .or_else(|| candidates().next())
    })
}

fn has_char(db: &fontdb::Database, id: fontdb::ID, c: char) -> bool {
    db.with_face_data(id, |data, index| {
        ttf_parser::Face::parse(data, index).is_ok_and(|f| f.glyph_index(c).is_some())
    })
    .unwrap_or(false)
}
