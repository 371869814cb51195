//! Fitting and wrapping measure the shaped text: a long name in an Indic
//! or Arabic script shrinks or wraps into its box exactly as a Latin one
//! does, and a script no font has is refused rather than drawn as boxes.

use serde_json::json;

use super::helpers::*;
use super::reference::{decode_any, Image};

/// Pixels drawn in magenta, as (x, y).
fn magenta(image: &Image) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for (i, p) in image.rgba.chunks(4).enumerate() {
        if p[0] > 170 && p[1] < 100 && p[2] > 170 {
            out.push((i as u32 % image.width, i as u32 / image.width));
        }
    }
    out
}

/// The pixels of `ink` outside the box `x`, `y` (inclusive ranges).
fn outside(
    ink: &[(u32, u32)],
    x: std::ops::RangeInclusive<u32>,
    y: std::ops::RangeInclusive<u32>,
) -> Vec<(u32, u32)> {
    ink.iter()
        .copied()
        .filter(|(px, py)| !x.contains(px) || !y.contains(py))
        .collect()
}

/// Renders `name` in `layer` of `base`, in magenta; returns the fit header
/// and the magenta pixels.
async fn fitted(app: &TestApp, base: &str, layer: &str, name: &str) -> (String, Vec<(u32, u32)>) {
    let mods = json!([{ "name": layer, "text": name, "color": "#ff00ff" }]);
    let response = app.get(&signed_url(app, base, "png", &mods, &[])).await;
    assert_eq!(response.status(), 200, "{name}: {}", error_of(&response));
    let fit = response.headers()["x-stencil-fit"]
        .to_str()
        .unwrap()
        .to_owned();
    let image = decode_any("png", &response.bytes().await.unwrap());
    (fit, magenta(&image))
}

#[tokio::test]
async fn long_indic_and_arabic_names_shrink_into_the_box_like_a_latin_one() {
    let app = spawn_app().await;
    for name in [
        "Maximiliana Wilhelmina Augusta of Hohenzollern-Sigmaringen I",
        "अनामिका शर्मा श्रीनिवासन कृष्णमूर्ति त्रिपाठी चतुर्वेदी",
        "প্রিয়াঙ্কা চক্রবর্তী বন্দ্যোপাধ্যায় মুখোপাধ্যায়",
        "கார்த்திகேயன் பொன்னுசாமி சுப்பிரமணியன்",
        "عبد الرحمن بن محمد بن عبد الله الهاشمي القرشي",
    ] {
        let (fit, ink) = fitted(&app, CERT, "text_candidate", name).await;
        assert!(ink.len() > 500, "{name}: the name is drawn");
        // box_candidate in the demo template: x 240..1760, y 555..735.
        let out = outside(&ink, 240..=1760, 555..=735);
        assert!(
            out.is_empty(),
            "{name}: {} pixels outside, e.g. {:?}",
            out.len(),
            out.first()
        );
        assert!(
            fit.ends_with("px/1 line") && fit != "text_candidate=124px/1 line",
            "{name}: shrunk onto one line: {fit}"
        );
        let (min_x, max_x) = (
            ink.iter().map(|p| p.0).min().unwrap(),
            ink.iter().map(|p| p.0).max().unwrap(),
        );
        assert!(
            max_x - min_x > 1350,
            "{name}: shrunk to fill the box's width, not less: {} px at {fit}",
            max_x - min_x
        );
        // Centred on the anchor at x = 1000: the width fitting measured is
        // the width drawn.
        let centre = (min_x + max_x) as i64 / 2;
        assert!(
            (centre - 1000).abs() <= 12,
            "{name}: ink centred at {centre}, not 1000"
        );
    }
}

#[tokio::test]
async fn the_issues_hindi_name_keeps_the_designed_size_and_its_word_space() {
    let app = spawn_app().await;
    let (fit, ink) = fitted(&app, CERT, "text_candidate", "अनामिका शर्मा").await;
    assert_eq!(fit, "text_candidate=124px/1 line");
    assert!(outside(&ink, 240..=1760, 555..=735).is_empty());
    // Columns with no ink between the two words: the word space, about a
    // quarter em (hb-view draws it 26 px wide at 100 px).
    let (min_x, max_x) = (
        ink.iter().map(|p| p.0).min().unwrap(),
        ink.iter().map(|p| p.0).max().unwrap(),
    );
    let mut inked = vec![false; (max_x - min_x + 1) as usize];
    for (x, _) in &ink {
        inked[(x - min_x) as usize] = true;
    }
    let widest_gap = inked.split(|c| *c).map(|gap| gap.len()).max().unwrap_or(0);
    assert!(
        widest_gap >= 20,
        "the word space is drawn: widest gap {widest_gap} px"
    );
}

const WRAP: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="800" height="420">
  <rect width="800" height="420" fill="#ffffff"/>
  <rect id="box" x="100" y="40" width="600" height="340" fill="none"/>
  <text id="name" x="400" y="360" text-anchor="middle" font-family="serif" font-size="90"
        data-fit="wrap" data-box="box" data-min-size="20" data-max-lines="3">Jane Doe</text>
</svg>"##;

#[tokio::test]
async fn wrapped_names_in_several_scripts_break_into_lines_inside_the_box() {
    let app = spawn_app().await;
    app.write_template(USER, "wrap.svg", WRAP);
    for name in [
        "Augusta Ada King Countess of Lovelace",
        "अनामिका शर्मा श्रीनिवासन त्रिपाठी",
        "ಕೃಷ್ಣಮೂರ್ತಿ ಗೌಡ ಶ್ರೀನಿವಾಸ ರಾವ್",
        "محمد عبد الله الهاشمي القرشي",
    ] {
        let (fit, ink) = fitted(&app, "wrap", "name", name).await;
        let lines: u32 = fit
            .rsplit('/')
            .next()
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(lines >= 2, "{name}: wrapped onto several lines: {fit}");
        let out = outside(&ink, 100..=700, 40..=380);
        assert!(
            out.is_empty(),
            "{name} at {fit}: {} pixels outside, e.g. {:?}",
            out.len(),
            out.first()
        );
        // Each line has its own band of rows: a row with no ink between.
        let (top, bottom) = (
            ink.iter().map(|p| p.1).min().unwrap(),
            ink.iter().map(|p| p.1).max().unwrap(),
        );
        let mut rows = vec![false; (bottom - top + 1) as usize];
        for (_, y) in &ink {
            rows[(y - top) as usize] = true;
        }
        let bands = rows.split(|r| !*r).filter(|b| !b.is_empty()).count();
        assert!(bands >= 2, "{name}: {bands} bands of ink at {fit}");
    }
}

#[tokio::test]
async fn names_in_the_scripts_debian_adds_render_and_one_no_font_has_is_refused() {
    let app = spawn_app().await;
    for name in [
        "შოთა რუსთაველი",
        "ኃይለ ሥላሴ",
        "කුමාරසිංහ",
        "សុខ ស្រីមុំ",
        "အောင်ဆန်းစုကြည်",
        "Արամ Խաչատրյան",
        "ਗੁਰਪ੍ਰੀਤ ਸਿੰਘ",
    ] {
        let (_, ink) = fitted(&app, CERT, "text_candidate", name).await;
        assert!(ink.len() > 500, "{name}: drawn");
        // Fitting measures a line's width; its height is the template's to
        // allow for. Myanmar's stacked medials hang a few pixels below the
        // demo box at the designed size, so the rows are checked with room.
        let out = outside(&ink, 240..=1760, 540..=750);
        assert!(
            out.is_empty(),
            "{name}: {} pixels outside, e.g. {:?}",
            out.len(),
            out.first()
        );
    }
    // Santali in Ol Chiki: no font Signet loads has the script.
    let url = app.reference_url(CERT, &[("text_candidate", "ᱥᱟᱱᱛᱟᱲᱤ")]);
    let response = app.get(&url).await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        error_of(&response),
        "Missing glyphs: U+1C65, U+1C5F, U+1C71, U+1C5B, U+1C72, U+1C64"
    );
}
