//! A signing secret as the configuration holds it: it never shows in
//! `Debug` output, logs or error messages, only through `expose`.

use serde::Deserialize;

/// Secrets shorter than this are accepted with a warning: an HMAC key
/// should carry at least as many bytes as the hash's output.
pub const RECOMMENDED_BYTES: usize = 32;

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret's text, for signing and verifying only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(<{} bytes, redacted>)", self.0.len())
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_owned())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_names_the_length_and_never_the_text() {
        let shown = format!("{:?}", Secret::from("hunter2-very-secret"));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("19 bytes"), "{shown}");
    }
}
