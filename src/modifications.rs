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

/// One change to one layer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Modification {
    /// The `id` of the element in the template.
    pub name: String,
    /// The new text content.
    pub text: String,
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
            "{e}; expected a JSON array of {{\"name\":…,\"text\":…}} objects"
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
        check_text(&m.name, &m.text, limits)?;
    }
    Ok(mods)
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
    if let Some(c) = text.chars().find(|&c| is_refused(c)) {
        return Err(ModificationsError::Invalid(format!(
            "text of layer `{layer}` contains U+{:04X}, a control or bidi override character",
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
        assert_eq!(want[0].text, "a?>~~~");
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
        assert_eq!(mods[0].text, "Zoë 🎓");
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
