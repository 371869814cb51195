//! The signature: payload, HMAC-SHA256, verification against every active
//! secret of a user, and URL building for the signer.
//!
//! Kept alone so that the one piece deciding authenticity is small enough
//! to read in full. It knows nothing of HTTP or templates.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The signed text: `user_id + "+" + base_id + "+" + modifications`.
pub fn payload(user: &str, base: &str, modifications: &str) -> String {
    format!("{user}+{base}+{modifications}")
}

/// The signed text of a URL with rendering options, as signers write it
/// since options had a version marker: `signet2`, the user id, the
/// template id, the modifications and the options sorted by name as
/// `name=value` joined by `&`, one per line. No part of a URL that is
/// served can hold a line feed (ids are refused before the signature,
/// modifications by the base64 decoder and option values by their grammar
/// after it), so the text splits one way only, and no option-free payload
/// starts like it.
pub fn payload_v2(
    user: &str,
    base: &str,
    modifications: &str,
    options: &[(&str, String)],
) -> String {
    format!(
        "signet2\n{user}\n{base}\n{modifications}\n{}",
        joined(options)
    )
}

/// The first payload with options, still accepted for URLs signed with it:
/// the option-free payload, then `"+"` and the options as in `payload_v2`.
/// Without options it is `payload`, so every URL signed before options
/// existed keeps its signature. It reads one way only because
/// `check_modifications` refuses modifications with an `=` before their
/// padding, which every option carries.
pub fn payload_with_options(
    user: &str,
    base: &str,
    modifications: &str,
    options: &[(&str, String)],
) -> String {
    let mut out = payload(user, base, modifications);
    if !options.is_empty() {
        out.push('+');
        out.push_str(&joined(options));
    }
    out
}

/// The payloads a URL's signature may be over: the option-free one, or
/// with options the versioned one and then the first one.
pub fn payloads(
    user: &str,
    base: &str,
    modifications: &str,
    options: &[(&str, String)],
) -> Vec<String> {
    if options.is_empty() {
        vec![payload(user, base, modifications)]
    } else {
        vec![
            payload_v2(user, base, modifications, options),
            payload_with_options(user, base, modifications, options),
        ]
    }
}

fn joined(options: &[(&str, String)]) -> String {
    let mut sorted: Vec<_> = options.iter().collect();
    sorted.sort_by_key(|(name, _)| *name);
    let parts: Vec<String> = sorted.iter().map(|(n, v)| format!("{n}={v}")).collect();
    parts.join("&")
}

/// Why a `modifications` value cannot have been signed as it stands,
/// checked before the signature: base64 of either alphabet, with `=` only
/// as padding at the end.
#[derive(Debug, PartialEq, Eq)]
pub enum Unsigned {
    /// A character no base64 alphabet has; the decoder refuses it after
    /// the signature holds.
    NotBase64,
    /// An `=` before the padding: the shape of a URL's options moved into
    /// its modifications to drop them from the signed payload.
    Forged,
}

pub fn check_modifications(modifications: &str) -> Result<(), Unsigned> {
    let body = modifications.trim_end_matches('=');
    if modifications.len() - body.len() > 2 {
        return Err(Unsigned::NotBase64);
    }
    for b in body.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'-' | b'_' => {}
            b'=' => return Err(Unsigned::Forged),
            _ => return Err(Unsigned::NotBase64),
        }
    }
    Ok(())
}

fn mac(secret: &str, payload: &str) -> HmacSha256 {
    // HMAC is defined for keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key");
    mac.update(payload.as_bytes());
    mac
}

/// Hex HMAC-SHA256 of `payload` under `secret`, lowercase.
pub fn sign(secret: &str, payload: &str) -> String {
    hex::encode(mac(secret, payload).finalize().into_bytes())
}

/// True when `signature` (hex, either case) is the HMAC of `payload` under
/// any of `secrets`. Every secret is tried, whatever matched, and each
/// comparison is constant-time, so timing tells nothing of which secret or
/// how many bytes matched.
pub fn verify(secrets: &[String], payload: &str, signature: &str) -> bool {
    let Ok(expected) = hex::decode(signature) else {
        return false;
    };
    if expected.len() != 32 {
        return false;
    }
    secrets.iter().fold(false, |ok, secret| {
        mac(secret, payload).verify_slice(&expected).is_ok() | ok
    })
}

/// Encodes modifications JSON the way the reference client does: standard
/// base64 without padding, not URL-encoded.
pub fn encode_modifications(json: &str) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(json)
}

/// `json` with every character past ASCII (and DEL) written as `\uXXXX`
/// escapes, UTF-16 surrogate pairs above the BMP, lowercase hex: what
/// Python's `json.dumps` writes by default, so a signer matches the
/// reference client byte for byte. Outside strings JSON is ASCII, so
/// only string contents change, and they decode to the same text.
pub fn ascii_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() && c != '\u{7f}' {
            out.push(c);
            continue;
        }
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            out.push_str(&format!("\\u{unit:04x}"));
        }
    }
    out
}

/// Builds a signed URL exactly as the reference client does.
pub fn signed_url(
    base_url: &str,
    user: &str,
    base: &str,
    ext: &str,
    modifications_json: &str,
    secret: &str,
) -> String {
    signed_url_with_options(base_url, user, base, ext, modifications_json, &[], secret)
}

/// Builds a signed URL carrying rendering options (`scale=2`, …), which are
/// signed too. Option values are URL-safe by their grammar, so they go into
/// the URL as they are signed.
pub fn signed_url_with_options(
    base_url: &str,
    user: &str,
    base: &str,
    ext: &str,
    modifications_json: &str,
    options: &[(&str, String)],
    secret: &str,
) -> String {
    let encoded = encode_modifications(modifications_json);
    let payload = match options {
        [] => payload(user, base, &encoded),
        _ => payload_v2(user, base, &encoded, options),
    };
    let signature = sign(secret, &payload);
    let base_url = base_url.trim_end_matches('/');
    let mut url = format!("{base_url}/{user}/{base}.{ext}?modifications={encoded}");
    for (name, value) in options {
        url.push_str(&format!("&{name}={value}"));
    }
    url.push_str(&format!("&s={signature}"));
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "be6a052e-bce8-4c14-8bbb-ea6b6f9941d5";
    const BASE: &str = "TEafv3AfNptmzii4zj2jkc";
    // Produced by clients/sign_url.py (and the customers' reference client) for "John Wick".
    const MODS: &str = "W3sibmFtZSI6InRleHRfY2FuZGlkYXRlIiwidGV4dCI6IkpvaG4gV2ljayJ9XQ";
    const SIG: &str = "991d1351b7429f4bb516b7970661fe7cb14848cc87ca6d98c5534de870def41c";

    #[test]
    fn options_extend_the_payload_sorted_and_leave_it_alone_when_absent() {
        assert_eq!(
            payload_with_options(USER, BASE, MODS, &[]),
            payload(USER, BASE, MODS)
        );
        let options = [
            ("width", "800".to_string()),
            ("exp", "1900000000".to_string()),
        ];
        assert_eq!(
            payload_with_options("u", "b", "m", &options),
            "u+b+m+exp=1900000000&width=800"
        );
    }

    #[test]
    fn options_moved_into_the_modifications_are_refused_before_verifying() {
        let options = [("exp", "1900000000".to_string())];
        let signed = payload_with_options(USER, BASE, MODS, &options);
        // The same text as an option-free payload with longer modifications.
        let moved = format!("{MODS}+exp=1900000000");
        assert_eq!(payload(USER, BASE, &moved), signed);
        assert_eq!(check_modifications(&moved), Err(Unsigned::Forged));
        assert_eq!(check_modifications(MODS), Ok(()));
        assert_eq!(check_modifications("YQ=="), Ok(()));
        assert_eq!(check_modifications("a-_b"), Ok(()));
        assert_eq!(check_modifications(""), Ok(()));
        assert_eq!(check_modifications("***"), Err(Unsigned::NotBase64));
        assert_eq!(check_modifications("a b"), Err(Unsigned::NotBase64));
        assert_eq!(check_modifications("YQ==="), Err(Unsigned::NotBase64));
        // The versioned payload cannot be produced without options.
        assert!(payload_v2(USER, BASE, MODS, &options).starts_with("signet2\n"));
        assert_eq!(
            payloads(USER, BASE, MODS, &[]),
            vec![payload(USER, BASE, MODS)]
        );
    }

    #[test]
    fn ascii_json_escapes_as_pythons_json_dumps_does() {
        // json.dumps(["Zoë", "🎓", "\x7f"], separators=(",", ":"))
        assert_eq!(
            ascii_json("[\"Zoë\",\"🎓\",\"\u{7f}\"]"),
            r#"["Zo\u00eb","\ud83c\udf93","\u007f"]"#
        );
        assert_eq!(ascii_json(r#"{"a":"b\n"}"#), r#"{"a":"b\n"}"#);
    }

    #[test]
    fn the_reference_clients_signature_is_reproduced() {
        assert_eq!(sign("secretzzzz", &payload(USER, BASE, MODS)), SIG);
        let json = r#"[{"name":"text_candidate","text":"John Wick"}]"#;
        assert_eq!(encode_modifications(json), MODS);
        let url = signed_url("http://h/", USER, BASE, "png", json, "secretzzzz");
        assert_eq!(
            url,
            format!("http://h/{USER}/{BASE}.png?modifications={MODS}&s={SIG}")
        );
    }

    #[test]
    fn any_active_secret_verifies_and_case_does_not_matter() {
        let secrets = vec!["old".to_string(), "secretzzzz".to_string()];
        let p = payload(USER, BASE, MODS);
        assert!(verify(&secrets, &p, SIG));
        assert!(verify(&secrets, &p, &SIG.to_uppercase()));
    }

    #[test]
    fn a_changed_letter_or_a_wrong_length_fails() {
        let secrets = vec!["secretzzzz".to_string()];
        assert!(!verify(
            &secrets,
            &payload(
                USER,
                BASE,
                "W3sibmFtZSI6InRleHRfY2FuZGlkYXRlIiwidGV4dCI6IkpvaG4gV2lja30"
            ),
            SIG
        ));
        assert!(!verify(&secrets, &payload(USER, BASE, MODS), &SIG[..62]));
        assert!(!verify(&secrets, &payload(USER, BASE, MODS), "zz"));
        assert!(!verify(&[], &payload(USER, BASE, MODS), SIG));
    }
}
