//! Endpoint secrets and the Standard Webhooks signature.
//!
//! A secret is `whsec_` and the base64 of 32 random bytes; the HMAC key is
//! those bytes. A delivery carries `webhook-id` (the event's id, the same
//! on every retry so a receiver can drop duplicates), `webhook-timestamp`
//! (Unix seconds of the attempt) and `webhook-signature: v1,<base64 of
//! HMAC-SHA256(key, id "." timestamp "." body)>`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::registry::error::RegistryError;

/// What every secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a new secret (the specification asks for 24 to 64).
const SECRET_BYTES: usize = 32;

/// A new endpoint secret from the operating system's randomness.
pub fn new_secret() -> Result<String, RegistryError> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| RegistryError::Database(format!("no OS randomness: {e}")))?;
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)))
}

/// The HMAC key of `secret`: the bytes its base64 part decodes to.
/// `None` for a text that is not a secret (a row damaged by hand).
pub fn key_of(secret: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX)?)
        .ok()
        .filter(|key| !key.is_empty())
}

/// The `webhook-signature` value of one attempt.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_standard_webhooks_vector_signs_as_published() {
        // The example of the Standard Webhooks specification and its
        // reference libraries.
        let key = key_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_new_secret_is_prefixed_base64_of_32_random_bytes() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert_ne!(a, b);
        assert_eq!(key_of(&a).unwrap().len(), 32);
        assert!(key_of("whsec_").is_none() && key_of("sk_live_x").is_none());
    }
}
