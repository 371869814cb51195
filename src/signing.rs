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

/// The signed text of a URL with rendering options: the payload above,
/// then `"+"` and the options sorted by name as `name=value` joined by `&`.
/// Without options it is the payload above, so every URL signed before
/// options existed keeps its signature.
pub fn payload_with_options(
    user: &str,
    base: &str,
    modifications: &str,
    options: &[(&str, String)],
) -> String {
    let mut out = payload(user, base, modifications);
    let mut sorted: Vec<_> = options.iter().collect();
    sorted.sort_by_key(|(name, _)| *name);
    for (i, (name, value)) in sorted.into_iter().enumerate() {
        out.push(if i == 0 { '+' } else { '&' });
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
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
    let signature = sign(secret, &payload_with_options(user, base, &encoded, options));
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
