//! The raw request target turned into typed parts, before anything is
//! trusted.
//!
//! Pure functions over strings: no I/O, no secrets, no HTTP types. Ids are
//! checked against their character set first of all; because `+` is not in
//! it, the signed payload `user+base+mods` can only be split one way.

use std::borrow::Cow;
use std::fmt;

use thiserror::Error;

/// Why a request target was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("Bad request: {0}")]
    BadRequest(String),
    #[error("Unsupported format")]
    UnsupportedFormat,
    #[error("Missing signature")]
    MissingSignature,
    #[error("Request too large: {0}")]
    TooLarge(String),
    #[error("Expired")]
    Expired,
}

macro_rules! id_type {
    ($name:ident, $what:literal) => {
        #[doc = concat!("A validated ", $what, " id: `[A-Za-z0-9_-]{1,64}`.")]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Accepts only the id character set.
            pub fn parse(raw: &str) -> Result<Self, RequestError> {
                if is_valid_id(raw) {
                    Ok(Self(raw.to_owned()))
                } else {
                    Err(RequestError::BadRequest(format!(
                        concat!(
                            $what,
                            " id must be 1 to 64 of A-Z a-z 0-9 _ - (got {} bytes)"
                        ),
                        raw.len()
                    )))
                }
            }

            /// The id as it appears in URLs and paths.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(UserId, "user");
id_type!(BaseId, "template");

fn is_valid_id(raw: &str) -> bool {
    (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Png,
    Jpeg,
    Webp,
    Pdf,
}

impl Format {
    /// The `Content-Type` of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Jpeg => "image/jpeg",
            Format::Webp => "image/webp",
            Format::Pdf => "application/pdf",
        }
    }

    /// The canonical extension (`.jpeg` and `.jpg` are one format).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpg",
            Format::Webp => "webp",
            Format::Pdf => "pdf",
        }
    }

    /// Raster formats take `scale`/`width`; lossy ones take `quality`.
    pub fn is_raster(self) -> bool {
        self != Format::Pdf
    }

    /// True for the formats with a `quality` setting.
    pub fn is_lossy(self) -> bool {
        matches!(self, Format::Jpeg | Format::Webp)
    }
}

/// The path `/<user_id>/<base_id>.<ext>`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePath {
    pub user: UserId,
    pub base: BaseId,
    pub format: Format,
}

/// Parses the raw (not percent-decoded) path.
pub fn parse_path(path: &str) -> Result<ImagePath, RequestError> {
    let bad = || RequestError::BadRequest("the path must be /<user_id>/<base_id>.<ext>".into());
    let rest = path.strip_prefix('/').ok_or_else(bad)?;
    let (user, file) = rest.split_once('/').ok_or_else(bad)?;
    let (base, ext) = file.rsplit_once('.').ok_or_else(bad)?;
    let user = UserId::parse(user)?;
    let base = BaseId::parse(base)?;
    let format = match ext {
        "png" => Format::Png,
        "jpg" | "jpeg" => Format::Jpeg,
        "webp" => Format::Webp,
        "pdf" => Format::Pdf,
        _ if ext.bytes().all(|b| b.is_ascii_alphanumeric()) && !ext.is_empty() => {
            return Err(RequestError::UnsupportedFormat)
        }
        _ => return Err(bad()),
    };
    Ok(ImagePath { user, base, format })
}

/// The rendering options a query may carry. All of them are signed.
pub const OPTION_NAMES: [&str; 5] = ["exp", "quality", "scale", "v", "width"];

/// The query's parameters, percent-decoded but otherwise exactly as the
/// client sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedQuery {
    /// The `modifications` text; empty when absent.
    pub modifications: String,
    /// The hex signature.
    pub signature: String,
    /// Rendering options as `(name, value)`, sorted by name: the order
    /// they are signed in.
    pub options: Vec<(&'static str, String)>,
}

/// Reads the raw query. It is never form-decoded: a `+` stays a `+`, since
/// clients put standard base64 in the URL without encoding it.
pub fn parse_query(query: Option<&str>) -> Result<SignedQuery, RequestError> {
    let mut modifications: Option<String> = None;
    let mut signature: Option<String> = None;
    let mut options: [Option<String>; OPTION_NAMES.len()] = Default::default();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let option = OPTION_NAMES.iter().position(|name| *name == key);
        let slot = match (key, option) {
            (_, Some(i)) => &mut options[i],
            ("modifications", _) => &mut modifications,
            ("s", _) => &mut signature,
            (other, None) => {
                return Err(RequestError::BadRequest(format!(
                    "unknown query parameter `{}`",
                    percent_decode(other).unwrap_or(Cow::Borrowed("?"))
                )))
            }
        };
        if slot.is_some() {
            return Err(RequestError::BadRequest(format!(
                "repeated query parameter `{key}`"
            )));
        }
        *slot = Some(percent_decode(value)?.into_owned());
    }
    let signature = signature.ok_or(RequestError::MissingSignature)?;
    let options = OPTION_NAMES
        .iter()
        .zip(options)
        .filter_map(|(name, value)| Some((*name, value?)))
        .collect();
    Ok(SignedQuery {
        modifications: modifications.unwrap_or_default(),
        signature,
        options,
    })
}

fn percent_decode(value: &str) -> Result<Cow<'_, str>, RequestError> {
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .map_err(|_| {
            RequestError::BadRequest("a query value is not UTF-8 once percent-decoded".into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_path_parses_into_its_parts() {
        let p = parse_path("/be6a052e-bce8/TEafv3_x.png").unwrap();
        assert_eq!(p.user.as_str(), "be6a052e-bce8");
        assert_eq!(p.base.as_str(), "TEafv3_x");
        assert_eq!(p.format, Format::Png);
    }

    #[test]
    fn ids_with_dots_nul_plus_or_percent_escapes_are_bad_requests() {
        for path in [
            "/../x.png",
            "/u/..%2Fx.png",
            "/u%00/x.png",
            "/u+v/x.png",
            "/u/a.b.png",
            "/u/x/y.png",
            "//x.png",
            "/u/.png",
            "/u/x",
            "/u",
        ] {
            assert!(
                matches!(parse_path(path), Err(RequestError::BadRequest(_))),
                "{path}"
            );
        }
        let long = format!("/{}/x.png", "a".repeat(65));
        assert!(matches!(
            parse_path(&long),
            Err(RequestError::BadRequest(_))
        ));
    }

    #[test]
    fn an_unknown_extension_is_an_unsupported_format() {
        assert_eq!(parse_path("/u/b.gif"), Err(RequestError::UnsupportedFormat));
        assert_eq!(parse_path("/u/b.jpeg").unwrap().format, Format::Jpeg);
        assert_eq!(parse_path("/u/b.jpg").unwrap().format, Format::Jpeg);
        assert_eq!(parse_path("/u/b.pdf").unwrap().format, Format::Pdf);
        assert_eq!(parse_path("/u/b.PNG"), Err(RequestError::UnsupportedFormat));
    }

    #[test]
    fn a_raw_plus_stays_a_plus_and_escapes_are_decoded() {
        let q = parse_query(Some("modifications=ab+c/d&s=FF")).unwrap();
        assert_eq!(q.modifications, "ab+c/d");
        assert_eq!(q.signature, "FF");
        let q = parse_query(Some("modifications=ab%2Bc%2Fd%3D&s=ff")).unwrap();
        assert_eq!(q.modifications, "ab+c/d=");
    }

    #[test]
    fn options_are_collected_sorted_by_name() {
        let q = parse_query(Some("width=800&s=00&v=2&exp=17")).unwrap();
        assert_eq!(
            q.options,
            vec![
                ("exp", "17".into()),
                ("v", "2".into()),
                ("width", "800".into())
            ]
        );
        assert!(parse_query(Some("s=00")).unwrap().options.is_empty());
        assert!(matches!(
            parse_query(Some("v=1&v=2&s=00")),
            Err(RequestError::BadRequest(_))
        ));
    }

    #[test]
    fn absent_modifications_mean_the_empty_string() {
        let q = parse_query(Some("s=00")).unwrap();
        assert_eq!(q.modifications, "");
    }

    #[test]
    fn a_missing_signature_is_reported_as_such() {
        assert_eq!(parse_query(None), Err(RequestError::MissingSignature));
        assert_eq!(
            parse_query(Some("modifications=x")),
            Err(RequestError::MissingSignature)
        );
    }

    #[test]
    fn repeated_or_unknown_parameters_are_bad_requests() {
        for q in ["s=1&s=1", "modifications=a&modifications=a&s=1", "s=1&x=2"] {
            assert!(
                matches!(parse_query(Some(q)), Err(RequestError::BadRequest(_))),
                "{q}"
            );
        }
    }
}

#[cfg(test)]
mod garbage {
    use super::*;

    /// A small deterministic generator: the same inputs on every run.
    fn inputs() -> impl Iterator<Item = String> {
        let alphabet: Vec<char> = "aZ09-_./%+&=?s\u{0}\u{e9}\u{202e} modifications"
            .chars()
            .collect();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        (0..20_000).map(move |_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 40) as usize;
            (0..len)
                .map(|i| alphabet[((state >> (i % 50)) as usize + i * 7) % alphabet.len()])
                .collect()
        })
    }

    #[test]
    fn no_input_makes_the_parsers_panic() {
        let limits = crate::modifications::Limits {
            max_text_chars: 10,
            max_modifications: 2,
        };
        for input in inputs() {
            let _ = parse_path(&input);
            let _ = parse_path(&format!("/{input}"));
            let _ = parse_query(Some(&input));
            let _ = crate::modifications::decode(&input, limits);
            let _ = crate::signing::verify(&["k".into()], &input, &input);
        }
    }
}
