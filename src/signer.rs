//! What a signer checks before it signs, and the URL it signs: shared by
//! `signet sign` and `/v1/sign`, so both refuse what the server would
//! refuse and both write the bytes the reference client writes.
//!
//! A refused name is reported to whoever is signing, instead of showing
//! as an error image once the link is posted. Nothing here reads a
//! template or a font: the caller decides what else to check.

use std::fmt;

use crate::modifications::{self, Limits, Modification};
use crate::signing;

/// What every signature of one template needs.
#[derive(Debug, Clone)]
pub struct UrlSigner {
    /// Scheme and host the URLs start with.
    pub base_url: String,
    /// The account (`user_id`).
    pub user: String,
    /// The template (`base_id`).
    pub base: String,
    /// The extension, which names the format.
    pub ext: String,
    /// Signed rendering options, in the order the URL shows them.
    pub options: Vec<(&'static str, String)>,
    /// The account's first active secret: the others only verify, which
    /// is how a rotation is rolled out.
    pub secret: String,
    /// The bounds the server applies to the modifications.
    pub limits: Limits,
    /// The longest request target the server accepts.
    pub max_url_bytes: usize,
}

/// Why a URL was not signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// More modifications than one URL may carry.
    TooMany { count: usize, limit: usize },
    /// Modification `index` is refused; `field` is the one at fault when
    /// a single field is (`name`, `text`).
    Modification {
        index: usize,
        field: Option<&'static str>,
        message: String,
    },
    /// The URL would be longer than the server reads.
    TooLong { bytes: usize, limit: usize },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::TooMany { count, limit } => {
                write!(f, "{count} modifications (limit {limit})")
            }
            Refusal::Modification { message, .. } => f.write_str(message),
            Refusal::TooLong { bytes, limit } => {
                write!(f, "the URL would have {bytes} bytes (server limit {limit})")
            }
        }
    }
}

impl UrlSigner {
    /// The signed URL of `mods`, after the rules the server applies to
    /// them once the signature holds.
    pub fn url(&self, mods: &[Modification]) -> Result<String, Refusal> {
        check(mods, self.limits)?;
        let url = signing::signed_url_with_options(
            &self.base_url,
            &self.user,
            &self.base,
            &self.ext,
            &modifications_json(mods),
            &self.options,
            &self.secret,
        );
        let bytes = url.len() - self.base_url.trim_end_matches('/').len();
        if bytes > self.max_url_bytes {
            return Err(Refusal::TooLong {
                bytes,
                limit: self.max_url_bytes,
            });
        }
        Ok(url)
    }
}

/// The server's rules for the modifications of one URL
/// (`modifications::decode` applies them after the signature).
pub fn check(mods: &[Modification], limits: Limits) -> Result<(), Refusal> {
    if mods.len() > limits.max_modifications {
        return Err(Refusal::TooMany {
            count: mods.len(),
            limit: limits.max_modifications,
        });
    }
    for (index, m) in mods.iter().enumerate() {
        let refused = |field, error: modifications::ModificationsError| Refusal::Modification {
            index,
            field,
            message: error.to_string(),
        };
        if mods[..index].iter().any(|earlier| earlier.name == m.name) {
            return Err(Refusal::Modification {
                index,
                field: Some("name"),
                message: format!("layer `{}` is modified twice", m.name),
            });
        }
        if let Some(text) = &m.text {
            modifications::check_text(&m.name, text, limits)
                .map_err(|e| refused(Some("text"), e))?;
        }
        modifications::check_fields(m, limits).map_err(|e| refused(None, e))?;
    }
    Ok(())
}

/// The modifications as the reference client (`clients/sign_url.py`,
/// Python's `json.dumps` with compact separators) writes them: fields in
/// order, no spaces, every character past ASCII as a `\uXXXX` escape.
/// So a URL signed here is byte for byte the one the account's own code
/// signs for the same text.
pub fn modifications_json(mods: &[Modification]) -> String {
    // A list of plain structs of strings and booleans always serialises.
    let json = serde_json::to_string(mods).unwrap_or_else(|_| "[]".into());
    signing::ascii_json(&json)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_text_chars: 10,
        max_modifications: 2,
    };

    fn signer() -> UrlSigner {
        UrlSigner {
            base_url: "http://h/".into(),
            user: "u".into(),
            base: "b".into(),
            ext: "png".into(),
            options: Vec::new(),
            secret: "secretzzzz".into(),
            limits: LIMITS,
            max_url_bytes: 200,
        }
    }

    #[test]
    fn the_refused_modification_and_its_field_are_named() {
        let text = |n: &str, t: &str| Modification::text(n, t);
        let field = |mods: &[Modification]| match check(mods, LIMITS) {
            Err(Refusal::Modification { index, field, .. }) => Some((index, field)),
            _ => None,
        };
        assert_eq!(
            field(&[text("a", "ok"), text("b", "x\u{202E}")]),
            Some((1, Some("text")))
        );
        assert_eq!(
            field(&[text("a", "ok"), text("a", "again")]),
            Some((1, Some("name")))
        );
        let nothing = Modification {
            name: "a".into(),
            ..Modification::default()
        };
        assert_eq!(field(&[nothing]), Some((0, None)));
        assert!(matches!(
            check(&[text("a", "1"), text("b", "2"), text("c", "3")], LIMITS),
            Err(Refusal::TooMany { count: 3, limit: 2 })
        ));
        assert_eq!(check(&[text("a", "ok\nok")], LIMITS), Ok(()));
    }

    #[test]
    fn a_url_over_the_servers_bound_is_not_signed() {
        let mut small = signer();
        small.max_url_bytes = 20;
        let refused = small.url(&[Modification::text("a", "b")]).unwrap_err();
        assert!(
            matches!(refused, Refusal::TooLong { limit: 20, .. }),
            "{refused}"
        );
        assert!(signer().url(&[Modification::text("a", "b")]).is_ok());
    }

    #[test]
    fn non_ascii_text_is_written_as_the_reference_client_escapes_it() {
        let json = modifications_json(&[Modification::text("n", "Zoë 🎓\n")]);
        assert_eq!(json, r#"[{"name":"n","text":"Zo\u00eb \ud83c\udf93\n"}]"#);
    }
}
