//! The stamp drawn over a certificate that does not stand, or that comes
//! from the sandbox: SVG markup appended as the template's last element,
//! so it lies over everything and is drawn by the same renderer in every
//! format (the PDF included, as vector text).
//!
//! A status word (`REVOKED`, `SUSPENDED`, `EXPIRED`) also washes the
//! whole certificate pale: the stamp must not be croppable into a clean
//! image.

/// Angle of the stamp, in degrees (counter-clockwise, as rubber stamps
/// are usually set).
const ANGLE: f32 = -18.0;
/// Font size as a share of the canvas' shorter side, for one line.
const ONE_LINE: f32 = 0.12;
/// The same with two lines.
const TWO_LINES: f32 = 0.095;
/// Width of a capital of the stamp's bold sans-serif, in ems (with the
/// letter spacing): enough for the frame to clear the widest word.
const CAP_WIDTH: f32 = 0.78;

/// The colour of a stamp word.
fn colour(word: &str) -> &'static str {
    match word {
        "REVOKED" => "#b71c1c",
        "SUSPENDED" => "#d84315",
        "EXPIRED" => "#455a64",
        _ => "#1565c0",
    }
}

/// The markup of a stamp with `words` (top to bottom) over the user box
/// `[x, y, width, height]` of a template; empty without words.
pub fn markup(user_box: [f32; 4], words: &[&str]) -> String {
    if words.is_empty() {
        return String::new();
    }
    let [x, y, w, h] = user_box;
    let (cx, cy) = (x + w / 2.0, y + h / 2.0);
    let size = w.min(h) * if words.len() > 1 { TWO_LINES } else { ONE_LINE };
    let line = size * 1.25;
    let longest = words.iter().map(|w| w.chars().count()).max().unwrap_or(0) as f32;
    let frame_w = longest * CAP_WIDTH * size + size;
    let frame_h = line * words.len() as f32 + size * 0.5;
    // The status word gives the frame its colour; a sandbox stamp alone
    // is blue.
    let main = colour(words.last().copied().unwrap_or_default());
    let voided = words.iter().any(|w| *w != "SPECIMEN");
    // A sandbox stamp leaves the layout readable beneath it; a status
    // stamp hides what it covers.
    let ground = if voided { 0.82 } else { 0.0 };
    let mut out = String::with_capacity(1024);
    out.push_str("<g id=\"signet-stamp\">");
    if voided {
        out.push_str(&format!(
            "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{w:.2}\" height=\"{h:.2}\" \
             fill=\"#ffffff\" fill-opacity=\"0.55\"/>"
        ));
    }
    out.push_str(&format!(
        "<g transform=\"rotate({ANGLE} {cx:.2} {cy:.2})\">\
         <rect x=\"{:.2}\" y=\"{:.2}\" width=\"{frame_w:.2}\" height=\"{frame_h:.2}\" \
         rx=\"{:.2}\" fill=\"#ffffff\" fill-opacity=\"{ground}\" stroke=\"{main}\" \
         stroke-width=\"{:.2}\"/>",
        cx - frame_w / 2.0,
        cy - frame_h / 2.0,
        size * 0.2,
        size * 0.12,
    ));
    // Baselines: the lines' block centred on the centre, each baseline
    // about 0.35 em below its line's middle (cap height ≈ 0.7 em).
    let top = cy - line * words.len() as f32 / 2.0;
    for (i, word) in words.iter().enumerate() {
        let baseline = top + line * (i as f32 + 0.5) + size * 0.35;
        out.push_str(&format!(
            "<text x=\"{cx:.2}\" y=\"{baseline:.2}\" text-anchor=\"middle\" \
             font-family=\"sans-serif\" font-weight=\"bold\" font-size=\"{size:.2}\" \
             letter-spacing=\"{:.2}\" fill=\"{}\">{word}</text>",
            size * 0.08,
            colour(word),
        ));
    }
    out.push_str("</g></g>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_words_no_stamp_and_a_status_word_voids_the_image() {
        assert_eq!(markup([0.0, 0.0, 100.0, 50.0], &[]), "");
        let specimen = markup([0.0, 0.0, 100.0, 50.0], &["SPECIMEN"]);
        assert!(specimen.contains(">SPECIMEN</text>"));
        assert!(!specimen.contains("fill-opacity=\"0.55\""));
        let revoked = markup([0.0, 0.0, 100.0, 50.0], &["SPECIMEN", "REVOKED"]);
        assert!(revoked.contains("fill-opacity=\"0.55\""));
        assert!(revoked.contains("#b71c1c"));
        assert!(roxmltree::Document::parse(&revoked).is_ok());
    }
}
