//! Rendering options of a URL (`scale`, `width`, `quality`, `exp`, `v`):
//! parsed, bounded and checked against the format, after the signature
//! holds.
//!
//! They are signed like the modifications (see `signing::payload`), so a
//! viewer cannot enlarge a certificate, lower its quality or lift its
//! expiry. Every value has a bound; anything outside is refused, never
//! clamped, so a URL renders exactly what its signer asked for or nothing.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::request::{Format, RequestError};

/// Bounds of the numeric options.
pub const SCALE_RANGE: (f32, f32) = (0.1, 4.0);
pub const WIDTH_RANGE: (u32, u32) = (16, 10_000);
pub const QUALITY_RANGE: (u8, u8) = (1, 100);
/// Quality used by the lossy formats when the URL names none.
pub const DEFAULT_QUALITY: u8 = 90;

/// Options that change the output. `exp` is not among them: it decides
/// whether a URL answers, not what it shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RenderOptions {
    pub scale: Option<f32>,
    pub width: Option<u32>,
    pub quality: Option<u8>,
    /// Unix time after which the URL answers `410 Expired`.
    pub exp: Option<u64>,
    /// A version tag: only the cache key changes with it.
    pub v: Option<String>,
}

impl RenderOptions {
    /// Parses the signed options of a request for `format`; `now` is Unix
    /// seconds.
    pub fn parse(
        options: &[(&'static str, String)],
        format: Format,
        now: u64,
    ) -> Result<RenderOptions, RequestError> {
        let mut out = RenderOptions::default();
        for (name, value) in options {
            let value = value.as_str();
            match *name {
                "scale" => {
                    let (lo, hi) = SCALE_RANGE;
                    let scale = value
                        .parse::<f32>()
                        .ok()
                        .filter(|s| s.is_finite() && (lo..=hi).contains(s) && value.len() <= 8)
                        .ok_or_else(|| bad(name, value, &format!("a number from {lo} to {hi}")))?;
                    out.scale = Some(scale);
                }
                "width" => {
                    let (lo, hi) = WIDTH_RANGE;
                    out.width = Some(int(name, value, lo, hi)?);
                }
                "quality" => {
                    let (lo, hi) = QUALITY_RANGE;
                    out.quality = Some(int(name, value, lo, hi)?);
                }
                "exp" => out.exp = Some(int(name, value, 0, 99_999_999_999)?),
                "v" => {
                    let ok = (1..=64).contains(&value.len())
                        && value
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
                    if !ok {
                        return Err(bad(name, value, "1 to 64 of A-Z a-z 0-9 . _ -"));
                    }
                    out.v = Some(value.to_owned());
                }
                _ => return Err(RequestError::BadRequest(format!("unknown option `{name}`"))),
            }
        }
        if out.scale.is_some() && out.width.is_some() {
            return Err(RequestError::BadRequest(
                "give `scale` or `width`, not both".into(),
            ));
        }
        if !format.is_raster() && (out.scale.is_some() || out.width.is_some()) {
            return Err(RequestError::BadRequest(
                "`scale` and `width` apply to raster formats; a PDF is vector".into(),
            ));
        }
        if out.quality.is_some() && !format.is_lossy() {
            return Err(RequestError::BadRequest(
                "`quality` applies to .jpg and .webp only".into(),
            ));
        }
        if out.exp.is_some_and(|exp| now >= exp) {
            return Err(RequestError::Expired);
        }
        Ok(out)
    }

    /// The factor from the template's canvas to the output.
    pub fn factor(&self, canvas_width: u32) -> f32 {
        match (self.scale, self.width) {
            (Some(scale), _) => scale,
            (None, Some(width)) => width as f32 / canvas_width.max(1) as f32,
            (None, None) => 1.0,
        }
    }

    /// Bytes that identify the output these options produce, for cache
    /// keys: parsed values, so `1` and `1.0` share an entry.
    pub fn key_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        out.extend(self.scale.map_or(0, f32::to_bits).to_le_bytes());
        out.extend(self.width.unwrap_or(0).to_le_bytes());
        out.push(self.quality.unwrap_or(0));
        out.extend(self.v.as_deref().unwrap_or("").as_bytes());
        out
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn int<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    name: &str,
    value: &str,
    lo: T,
    hi: T,
) -> Result<T, RequestError> {
    value
        .parse::<T>()
        .ok()
        .filter(|v| value.bytes().all(|b| b.is_ascii_digit()) && *v >= lo && *v <= hi)
        .ok_or_else(|| bad(name, value, &format!("a whole number from {lo} to {hi}")))
}

fn bad(name: &str, value: &str, wanted: &str) -> RequestError {
    let shown: String = value.chars().take(20).collect();
    RequestError::BadRequest(format!("option `{name}` must be {wanted} (got `{shown}`)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(
        query: &[(&'static str, &str)],
        format: Format,
    ) -> Result<RenderOptions, RequestError> {
        let owned: Vec<_> = query.iter().map(|(k, v)| (*k, v.to_string())).collect();
        RenderOptions::parse(&owned, format, 1_000)
    }

    #[test]
    fn values_inside_their_bounds_parse() {
        let o = parse(
            &[("quality", "75"), ("scale", "0.5"), ("v", "2026.1")],
            Format::Jpeg,
        )
        .unwrap();
        assert_eq!(o.quality, Some(75));
        assert_eq!(o.scale, Some(0.5));
        assert_eq!(o.factor(2000), 0.5);
        let w = parse(&[("width", "500")], Format::Png).unwrap();
        assert_eq!(w.factor(2000), 0.25);
    }

    #[test]
    fn values_out_of_bounds_or_for_the_wrong_format_are_bad_requests() {
        for (query, format) in [
            (vec![("scale", "4.01")], Format::Png),
            (vec![("scale", "0")], Format::Png),
            (vec![("scale", "NaN")], Format::Png),
            (vec![("scale", "inf")], Format::Png),
            (vec![("width", "10001")], Format::Png),
            (vec![("width", "+50")], Format::Png),
            (vec![("quality", "0")], Format::Jpeg),
            (vec![("quality", "80")], Format::Png),
            (vec![("scale", "1"), ("width", "100")], Format::Png),
            (vec![("scale", "1")], Format::Pdf),
            (vec![("v", "a/b")], Format::Png),
            (vec![("v", "")], Format::Png),
            (vec![("exp", "-1")], Format::Png),
        ] {
            assert!(
                matches!(parse(&query, format), Err(RequestError::BadRequest(_))),
                "{query:?}"
            );
        }
    }

    #[test]
    fn a_past_expiry_is_expired_and_a_future_one_is_not() {
        assert_eq!(
            parse(&[("exp", "999")], Format::Png),
            Err(RequestError::Expired)
        );
        assert_eq!(
            parse(&[("exp", "1000")], Format::Png),
            Err(RequestError::Expired)
        );
        assert_eq!(
            parse(&[("exp", "1001")], Format::Png).unwrap().exp,
            Some(1001)
        );
    }

    #[test]
    fn equal_values_share_a_key_and_the_version_changes_it() {
        let a = parse(&[("scale", "1")], Format::Png).unwrap();
        let b = parse(&[("scale", "1.0")], Format::Png).unwrap();
        let c = parse(&[("scale", "1"), ("v", "2")], Format::Png).unwrap();
        assert_eq!(a.key_bytes(), b.key_bytes());
        assert_ne!(a.key_bytes(), c.key_bytes());
    }
}
