//! What an error answer may not contain: the characters that act on a
//! terminal, a log viewer or a browser.

/// The characters no error text may carry raw: C0 controls (every one),
/// DEL, C1 controls, and the bidi controls.
pub fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// The first forbidden character in `text` other than the body's final
/// line feed.
pub fn forbidden_in(text: &str) -> Option<char> {
    text.strip_suffix('\n')
        .unwrap_or(text)
        .chars()
        .find(|&c| is_forbidden(c))
}
