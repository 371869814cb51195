//! The modifications: lenient base64, then strict JSON, then the text rules.
//!
//! Runs only after the signature holds, so everything here is what the
//! customer signed; it is still bounded and checked, because a signed URL
//! can carry text that would render differently from what was read.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why the modifications were refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ModificationsError {
    #[error("Invalid modifications: {0}")]
    Invalid(String),
    #[error("Request too large: {0}")]
    TooLarge(String),
}

/// One change to one layer. Every field but `name` is optional; at least
/// one must be given. (`ToSchema` describes it in `/v1/openapi.json`,
/// where `POST /v1/sign` takes a list of them.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Modification {
    /// The `id` of the element in the template.
    pub name: String,
    /// The new text content of a text layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The fill: `#rgb`, `#rrggbb` or `#rrggbbaa`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// `false` removes the layer from the picture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible: Option<bool>,
    /// For an `<image>` layer: an asset name in the user's `assets/`
    /// folder, or a `data:` URI of a PNG or JPEG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    /// Text drawn as a QR code inside the layer's box.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qrcode: Option<String>,
}

impl Modification {
    /// A text change, the first and most common kind.
    pub fn text(name: &str, text: &str) -> Modification {
        Modification {
            name: name.into(),
            text: Some(text.into()),
            ..Modification::default()
        }
    }
}

/// The most bytes a QR code can hold (version 40, byte mode, the medium
/// error correction used here).
pub const MAX_QR_BYTES: usize = 2331;
/// The largest image a `data:` URI may carry, decoded.
pub const MAX_DATA_URI_BYTES: usize = 256 * 1024;

/// A colour, checked: `#rrggbb` and an opacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Color {
    pub rgb: [u8; 3],
    pub alpha: u8,
}

impl Color {
    /// Parses `#rgb`, `#rrggbb` or `#rrggbbaa`.
    pub fn parse(raw: &str) -> Option<Color> {
        let hex = raw.strip_prefix('#')?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let digit = |i: usize| u8::from_str_radix(&hex[i..=i], 16).ok();
        let pair = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        match hex.len() {
            3 => Some(Color {
                rgb: [digit(0)? * 17, digit(1)? * 17, digit(2)? * 17],
                alpha: 255,
            }),
            6 | 8 => Some(Color {
                rgb: [pair(0)?, pair(2)?, pair(4)?],
                alpha: if hex.len() == 8 { pair(6)? } else { 255 },
            }),
            _ => None,
        }
    }

    /// CSS declarations setting `property` (`fill`) to this colour.
    pub fn declarations(&self, property: &str) -> String {
        let [r, g, b] = self.rgb;
        let mut out = format!("{property}:#{r:02x}{g:02x}{b:02x}");
        if self.alpha != 255 {
            out.push_str(&format!(
                ";{property}-opacity:{:.3}",
                f32::from(self.alpha) / 255.0
            ));
        }
        out
    }
}

/// Where an `<image>` layer's picture comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source<'a> {
    /// A file in the user's `assets/` folder.
    Asset(&'a str),
    /// A `data:` URI, already checked to be a bounded PNG or JPEG.
    Data(&'a str),
}

impl<'a> Source<'a> {
    /// Checks a `src` value: an asset name (`[A-Za-z0-9._-]`, not starting
    /// with a dot, so never a path) or a base64 `data:` URI of a PNG or JPEG.
    pub fn parse(raw: &'a str) -> Result<Source<'a>, String> {
        if let Some(rest) = raw.strip_prefix("data:") {
            let (kind, data) = rest
                .split_once(";base64,")
                .ok_or("a data: URI must be base64 (data:image/png;base64,…)")?;
            if !matches!(kind, "image/png" | "image/jpeg") {
                return Err(format!(
                    "a data: URI must be image/png or image/jpeg, not {kind}"
                ));
            }
            if data.len() / 4 * 3 > MAX_DATA_URI_BYTES {
                return Err(format!(
                    "the data: URI holds over {MAX_DATA_URI_BYTES} bytes"
                ));
            }
            let bytes = STANDARD
                .decode(data)
                .map_err(|e| format!("the data: URI is not base64 ({e})"))?;
            let png = bytes.starts_with(b"\x89PNG\r\n\x1a\n");
            let jpeg = bytes.starts_with(&[0xFF, 0xD8, 0xFF]);
            if !(png && kind == "image/png" || jpeg && kind == "image/jpeg") {
                return Err(format!("the data: URI does not hold a {kind} image"));
            }
            return Ok(Source::Data(raw));
        }
        let ok = (1..=128).contains(&raw.len())
            && !raw.starts_with('.')
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if ok {
            Ok(Source::Asset(raw))
        } else {
            Err("src must be an asset name (A-Z a-z 0-9 . _ -, not starting with a dot) or a data: URI".into())
        }
    }
}

/// The bytes of a `data:` URI that `Source::parse` admitted.
pub fn data_uri_bytes(uri: &str) -> Result<Vec<u8>, String> {
    let data = uri
        .split_once(";base64,")
        .map(|(_, data)| data)
        .ok_or("a data: URI must be base64")?;
    STANDARD
        .decode(data)
        .map_err(|e| format!("the data: URI is not base64 ({e})"))
}

/// Bounds on what one URL may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_text_chars: usize,
    pub max_modifications: usize,
}

const PADDING_OPTIONAL: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, PADDING_OPTIONAL);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, PADDING_OPTIONAL);

/// Decodes the `modifications` query value.
pub fn decode(raw: &str, limits: Limits) -> Result<Vec<Modification>, ModificationsError> {
    let invalid = |m: String| ModificationsError::Invalid(m);
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    let url_safe = raw.contains(['-', '_']);
    if url_safe && raw.contains(['+', '/']) {
        return Err(invalid(
            "base64 mixes the standard (+/) and URL-safe (-_) alphabets".into(),
        ));
    }
    let engine = if url_safe { &URL_SAFE } else { &STANDARD };
    let bytes = engine
        .decode(raw)
        .map_err(|e| invalid(format!("not base64 ({e})")))?;
    let json = String::from_utf8(bytes).map_err(|_| invalid("not UTF-8 once decoded".into()))?;
    let mods: Vec<Modification> = serde_json::from_str(&json).map_err(|e| {
        invalid(format!(
            "{e}; expected a JSON array of {{\"name\":…,\"text\":…}} objects (fields: name, text, color, visible, src, qrcode)"
        ))
    })?;
    if mods.len() > limits.max_modifications {
        return Err(ModificationsError::TooLarge(format!(
            "{} modifications (limit {})",
            mods.len(),
            limits.max_modifications
        )));
    }
    for (i, m) in mods.iter().enumerate() {
        if mods[..i].iter().any(|earlier| earlier.name == m.name) {
            return Err(invalid(format!("layer `{}` is modified twice", m.name)));
        }
        check_fields(m, limits)?;
    }
    Ok(mods)
}

/// Checks every field of one modification. Shared with the signer, so a
/// bad value is refused before it is signed rather than after it is posted.
pub fn check_fields(m: &Modification, limits: Limits) -> Result<(), ModificationsError> {
    let invalid = |m: String| ModificationsError::Invalid(m);
    let layer = &m.name;
    if m.text.is_none()
        && m.color.is_none()
        && m.visible.is_none()
        && m.src.is_none()
        && m.qrcode.is_none()
    {
        return Err(invalid(format!(
            "modification of `{layer}` changes nothing (give text, color, visible, src or qrcode)"
        )));
    }
    let kinds = [m.text.is_some(), m.src.is_some(), m.qrcode.is_some()];
    if kinds.iter().filter(|k| **k).count() > 1 {
        return Err(invalid(format!(
            "layer `{layer}`: text, src and qrcode each replace the layer; give one"
        )));
    }
    if let Some(text) = &m.text {
        check_text(layer, text, limits)?;
    }
    if let Some(color) = &m.color {
        if Color::parse(color).is_none() {
            let shown: String = color.chars().take(20).collect();
            return Err(invalid(format!(
                "color of layer `{layer}` must be #rgb, #rrggbb or #rrggbbaa (got `{shown}`)"
            )));
        }
    }
    if let Some(src) = &m.src {
        Source::parse(src).map_err(|why| invalid(format!("src of layer `{layer}`: {why}")))?;
    }
    if let Some(qr) = &m.qrcode {
        if qr.is_empty() || qr.len() > MAX_QR_BYTES {
            return Err(invalid(format!(
                "qrcode of layer `{layer}` has {} bytes; a QR code holds 1 to {MAX_QR_BYTES}",
                qr.len()
            )));
        }
        // Bounded by what a QR code holds, not by `max_text_chars`.
        check_chars(layer, "qrcode", qr)?;
    }
    Ok(())
}

/// Applies the text rules to one layer's text. Shared with the signer, so a
/// name is refused before it is signed rather than after it is posted.
pub fn check_text(layer: &str, text: &str, limits: Limits) -> Result<(), ModificationsError> {
    let chars = text.chars().count();
    if chars > limits.max_text_chars {
        return Err(ModificationsError::TooLarge(format!(
            "text of layer `{layer}` has {chars} characters (limit {})",
            limits.max_text_chars
        )));
    }
    check_chars(layer, "text", text)
}

/// Refuses control and bidi override characters in `what` of `layer`.
fn check_chars(layer: &str, what: &str, text: &str) -> Result<(), ModificationsError> {
    if let Some(c) = text.chars().find(|&c| is_refused(c)) {
        return Err(ModificationsError::Invalid(format!(
            "{what} of layer `{layer}` contains U+{:04X}, a control or bidi override character",
            c as u32
        )));
    }
    Ok(())
}

/// Control characters other than the line feed, the bidi embedding,
/// override and isolate controls (they make text read differently from
/// what was signed), and the two non-characters XML cannot carry.
fn is_refused(c: char) -> bool {
    (c.is_control() && c != '\n')
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
        || c == '\u{FFFE}'
        || c == '\u{FFFF}'
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_text_chars: 100,
        max_modifications: 3,
    };

    #[test]
    fn a_qr_code_may_hold_more_characters_than_a_text_may() {
        let json = format!(
            r#"[{{"name":"q","qrcode":"{}"}}]"#,
            "x".repeat(MAX_QR_BYTES)
        );
        assert!(decode(&STANDARD.encode(&json), LIMITS).is_ok());
        let json = r#"[{"name":"q","qrcode":"a\u202eb"}]"#;
        assert!(decode(&STANDARD.encode(json), LIMITS).is_err());
    }

    fn enc(engine: &GeneralPurpose, json: &str) -> String {
        engine.encode(json)
    }

    #[test]
    fn every_base64_flavour_decodes_to_the_same_modifications() {
        // '?>' and '~' make both 62 and 63 appear in the encoding.
        let json = r#"[{"name":"t","text":"a?>~~~"}]"#;
        let padded = enc(&base64::engine::general_purpose::STANDARD, json);
        assert!(padded.contains('+') || padded.contains('/'), "{padded}");
        let want = decode(&padded, LIMITS).unwrap();
        assert_eq!(want[0].text.as_deref(), Some("a?>~~~"));
        for raw in [
            padded.trim_end_matches('=').to_string(),
            enc(&base64::engine::general_purpose::URL_SAFE, json),
            enc(&base64::engine::general_purpose::URL_SAFE_NO_PAD, json),
        ] {
            assert_eq!(decode(&raw, LIMITS).unwrap(), want, "{raw}");
        }
    }

    #[test]
    fn json_escapes_including_surrogate_pairs_decode() {
        let json = r#"[{"name":"t","text":"Zo\u00eb \ud83c\udf93"}]"#;
        let mods = decode(&enc(&STANDARD, json), LIMITS).unwrap();
        assert_eq!(mods[0].text.as_deref(), Some("Zoë 🎓"));
    }

    #[test]
    fn colours_parse_in_their_three_forms_and_nothing_else() {
        assert_eq!(Color::parse("#fff").map(|c| c.rgb), Some([255; 3]));
        let c = Color::parse("#1d2a4d80").unwrap();
        assert_eq!((c.rgb, c.alpha), ([0x1d, 0x2a, 0x4d], 0x80));
        assert_eq!(c.declarations("fill"), "fill:#1d2a4d;fill-opacity:0.502");
        for bad in [
            "red",
            "#ff",
            "#fffff",
            "#gggggg",
            "fff",
            "#1d2a4d8",
            "#\u{e9}e9",
        ] {
            assert!(Color::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn every_field_is_checked_and_an_empty_change_is_refused() {
        let png = STANDARD.encode(b"\x89PNG\r\n\x1a\nrest");
        let ok = format!(
            r##"[{{"name":"a","color":"#abc","visible":false}},{{"name":"b","src":"logo.png"}},{{"name":"c","src":"data:image/png;base64,{png}"}},{{"name":"d","qrcode":"https://x"}}]"##
        );
        let big = Limits {
            max_text_chars: 10_000,
            max_modifications: 10,
        };
        assert_eq!(decode(&enc(&STANDARD, &ok), big).unwrap().len(), 4);
        let long_qr = format!(
            r#"[{{"name":"q","qrcode":"{}"}}]"#,
            "x".repeat(MAX_QR_BYTES + 1)
        );
        assert!(decode(&enc(&STANDARD, &long_qr), big).is_err());
        let big_uri = format!(
            r#"[{{"name":"a","src":"data:image/png;base64,{}"}}]"#,
            "A".repeat(MAX_DATA_URI_BYTES / 3 * 4 + 8)
        );
        for (json, needle) in [
            (r#"[{"name":"a"}]"#, "changes nothing"),
            (r#"[{"name":"a","color":"blue"}]"#, "must be #rgb"),
            (r#"[{"name":"a","src":"../x.png"}]"#, "asset name"),
            (r#"[{"name":"a","src":".hidden"}]"#, "asset name"),
            (
                r#"[{"name":"a","src":"data:image/svg+xml;base64,PHN2Zz4"}]"#,
                "image/png",
            ),
            (
                r#"[{"name":"a","src":"data:image/png;base64,/9j/4AAQ"}]"#,
                "does not hold",
            ),
            (r#"[{"name":"a","text":"x","qrcode":"y"}]"#, "give one"),
            (r#"[{"name":"a","qrcode":""}]"#, "1 to"),
            (big_uri.as_str(), "holds over 262144 bytes"),
        ] {
            match decode(&enc(&STANDARD, json), LIMITS) {
                Err(ModificationsError::Invalid(m)) => assert!(m.contains(needle), "{json}: {m}"),
                other => panic!("{json}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_empty_string_means_no_modifications() {
        assert_eq!(decode("", LIMITS).unwrap(), vec![]);
    }

    #[test]
    fn malformed_input_is_invalid_with_a_precise_reason() {
        let cases = [
            ("!!!!", "not base64"),
            ("ab+c-d", "mixes"),
            (&enc(&STANDARD, "[{\"name\":1}]") as &str, "invalid type"),
            (
                &enc(&STANDARD, "{\"name\":\"t\",\"text\":\"x\"}"),
                "expected a sequence",
            ),
            (
                &enc(&STANDARD, "[{\"name\":\"t\",\"text\":\"x\",\"colour\":1}]"),
                "unknown field",
            ),
            (
                &enc(&STANDARD, "[{\"name\":\"t\",\"text\":\"\\ud800\"}]"),
                "hex escape",
            ),
            (
                &enc(
                    &STANDARD,
                    "[{\"name\":\"t\",\"text\":\"a\"},{\"name\":\"t\",\"text\":\"b\"}]",
                ),
                "twice",
            ),
        ];
        for (raw, needle) in cases {
            match decode(raw, LIMITS) {
                Err(ModificationsError::Invalid(m)) => assert!(m.contains(needle), "{m}"),
                other => panic!("{raw}: {other:?}"),
            }
        }
    }

    #[test]
    fn control_and_bidi_override_characters_are_refused_but_line_feeds_pass() {
        for bad in [
            "a\u{0}b",
            "a\tb",
            "a\u{202E}b",
            "a\u{2067}b",
            "\u{85}",
            "\u{FFFF}",
        ] {
            assert!(
                matches!(
                    check_text("t", bad, LIMITS),
                    Err(ModificationsError::Invalid(_))
                ),
                "{bad:?}"
            );
        }
        assert!(check_text("t", "line one\nline two \u{200F}", LIMITS).is_ok());
    }

    #[test]
    fn too_long_text_and_too_many_modifications_are_too_large() {
        let long = "é".repeat(101);
        assert!(matches!(
            check_text("t", &long, LIMITS),
            Err(ModificationsError::TooLarge(_))
        ));
        let json = r#"[{"name":"a","text":""},{"name":"b","text":""},{"name":"c","text":""},{"name":"d","text":""}]"#;
        assert!(matches!(
            decode(&enc(&STANDARD, json), LIMITS),
            Err(ModificationsError::TooLarge(_))
        ));
    }
}
