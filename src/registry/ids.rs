//! Random ids and API key secrets, and the hash a secret is stored as.
//!
//! Everything random here comes from the operating system (`getrandom`):
//! ids of objects are 128 bits, key secrets 256 bits, so neither can be
//! guessed or enumerated.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use super::error::RegistryError;

/// The characters of base62, in value order: ids and secrets stay
/// selectable with a double click and need no escaping anywhere.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Base62 digits of a `u128`, padded: 62^22 > 2^128.
const DIGITS_PER_U128: usize = 22;
/// Characters of a key shown in lists (`sk_live_` and four more), enough
/// to tell keys apart and far too few to help guess one.
const REDACTED_CHARS: usize = 4;
/// How every key secret starts.
const KEY_PREFIXES: [&str; 2] = ["sk_live_", "sk_test_"];

/// The environment a key works in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Live,
    Test,
}

impl Environment {
    /// `live` or `test`, as the CLI takes it.
    pub fn parse(text: &str) -> Option<Environment> {
        match text {
            "live" => Some(Environment::Live),
            "test" => Some(Environment::Test),
            _ => None,
        }
    }

    pub fn is_live(self) -> bool {
        self == Environment::Live
    }

    pub fn from_live(live: bool) -> Environment {
        if live {
            Environment::Live
        } else {
            Environment::Test
        }
    }

    /// The secret's prefix: `sk_live_` or `sk_test_`.
    pub fn key_prefix(self) -> &'static str {
        match self {
            Environment::Live => "sk_live_",
            Environment::Test => "sk_test_",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
        }
    }
}

fn random<const N: usize>() -> Result<[u8; N], RegistryError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| RegistryError::Database(format!("no OS randomness: {e}")))?;
    Ok(bytes)
}

fn base62(bytes: [u8; 16], out: &mut String) {
    let mut value = u128::from_be_bytes(bytes);
    let mut digits = [b'0'; DIGITS_PER_U128];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    out.extend(digits.iter().map(|&d| char::from(d)));
}

/// A new id with `prefix` (`key_`, `ae_`, later `cert_`…) and 128 random
/// bits.
pub fn new_id(prefix: &str) -> Result<String, RegistryError> {
    let mut id = String::with_capacity(prefix.len() + DIGITS_PER_U128);
    id.push_str(prefix);
    base62(random::<16>()?, &mut id);
    Ok(id)
}

/// 32 random bytes, hex: a certificate's salt, so that a commitment to
/// its record (the transparency log, later) cannot be tested against
/// guesses of the recipient's name.
pub fn new_salt() -> Result<String, RegistryError> {
    Ok(hex::encode(random::<32>()?))
}

/// A newly made key secret. Not `Debug`: it must not reach a log by
/// accident.
pub struct NewSecret {
    /// `sk_live_…` or `sk_test_…`: what the caller is shown, once.
    pub secret: String,
    /// What is stored instead.
    pub hash: String,
    /// The prefix and a few characters, for lists.
    pub redacted: String,
}

/// A new secret of 256 random bits for `environment`.
pub fn new_secret(environment: Environment) -> Result<NewSecret, RegistryError> {
    let bytes = random::<32>()?;
    let mut secret = String::from(environment.key_prefix());
    let (high, low) = bytes.split_at(16);
    for half in [high, low] {
        let mut part = [0u8; 16];
        part.copy_from_slice(half);
        base62(part, &mut secret);
    }
    Ok(NewSecret {
        hash: hash_secret(&secret),
        redacted: redact(&secret),
        secret,
    })
}

/// The stored form of a secret.
///
/// A plain SHA-256 is enough, and a slow password hash would be wrong:
/// secrets carry 256 random bits, so there is no dictionary to guess
/// from, and every request hashes its key. Keys are found by this hash
/// (an index lookup), so the secret is never compared byte by byte; what
/// a lookup's timing could reveal is a hash prefix, which does not help
/// find a preimage.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn redact(secret: &str) -> String {
    let shown = secret.len().min(8 + REDACTED_CHARS);
    format!("{}…", &secret[..shown])
}

/// `text` with every key-shaped run (`sk_live_`/`sk_test_` and the
/// base62 characters after it) cut to its redacted form, for logs: a
/// client that puts its key where an id belongs (`DELETE
/// /v1/api_keys/sk_live_…`) must not have it written down.
pub fn redact_keys(text: &str) -> Cow<'_, str> {
    let next_key = |from: &str| KEY_PREFIXES.iter().filter_map(|p| from.find(p)).min();
    let Some(mut at) = next_key(text) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        out.push_str(&rest[..at]);
        let key = &rest[at..];
        // Both prefixes are eight ASCII bytes; what follows is cut at
        // the first byte no secret has.
        let digits = key[8..]
            .bytes()
            .take_while(u8::is_ascii_alphanumeric)
            .count();
        out.push_str(&redact(&key[..8 + digits]));
        rest = &key[8 + digits..];
        match next_key(rest) {
            Some(next) => at = next,
            None => break,
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The environment of a presented key, when it has the shape of one:
/// a prefix and 44 base62 characters. Anything else is never looked up.
pub fn parse_secret(presented: &str) -> Option<Environment> {
    let (environment, rest) = if let Some(rest) = presented.strip_prefix("sk_live_") {
        (Environment::Live, rest)
    } else if let Some(rest) = presented.strip_prefix("sk_test_") {
        (Environment::Test, rest)
    } else {
        return None;
    };
    (rest.len() == 2 * DIGITS_PER_U128 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(environment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_secret_parses_as_its_environment_and_hashes_to_what_is_stored() {
        let made = new_secret(Environment::Test).unwrap();
        assert!(made.secret.starts_with("sk_test_"));
        assert_eq!(parse_secret(&made.secret), Some(Environment::Test));
        assert_eq!(hash_secret(&made.secret), made.hash);
        assert!(!made.redacted.contains(&made.secret[12..]));
    }

    #[test]
    fn two_ids_differ_and_have_their_prefix_and_length() {
        let (a, b) = (new_id("key_").unwrap(), new_id("key_").unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with("key_") && a.len() == 4 + 22);
    }

    #[test]
    fn a_key_in_logged_text_is_cut_to_its_redacted_form() {
        let key = new_secret(Environment::Live).unwrap().secret;
        let path = format!("/api_keys/{key}/sk_test_AbCdEf9?x=sk_other");
        let shown = redact_keys(&path);
        assert_eq!(
            shown,
            format!("/api_keys/{}…/sk_test_AbCd…?x=sk_other", &key[..12])
        );
        assert!(!shown.contains(&key[12..20]));
        assert!(matches!(
            redact_keys("/certificates/cert_1"),
            Cow::Borrowed(_)
        ));
        assert_eq!(redact_keys("sk_live_"), "sk_live_…");
    }

    #[test]
    fn malformed_keys_are_not_keys() {
        for text in [
            "",
            "sk_live_",
            "sk_prod_abc",
            &format!("sk_live_{}", "é".repeat(44)),
        ] {
            assert_eq!(parse_secret(text), None, "{text}");
        }
    }
}
