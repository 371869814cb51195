//! Checks one request head (request line and header fields) the way hyper
//! will parse it, before hyper sees it, so that a head hyper would refuse
//! is answered by Signet's error mapping instead of hyper's bare `400`,
//! `414` or `431`.
//!
//! The rules mirror hyper 1's `Server::parse` (same `httparse` parser, same
//! `Method` and `Uri` constructors, same `Content-Length` and
//! `Transfer-Encoding` rules) and are never laxer: anything refused here
//! would have been refused there, and anything that passes cannot make
//! hyper answer on its own. Pure: no I/O, no clock.

use axum::http::{HeaderName, Method, Uri};
use thiserror::Error;

/// Most header fields in one request; hyper is given one more, for the
/// `connection: close` the guard may add.
pub const MAX_HEADERS: usize = 100;
/// Bytes of header fields allowed after the request line.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Room in a request line beyond its target: method, spaces, version.
const LINE_SLACK: usize = 32;
/// The longest request target hyper accepts (`MAX_URI_LEN` in hyper).
const HYPER_MAX_URI: usize = u16::MAX as usize - 1;

/// Why a request head was refused. Messages may echo what was sent; the
/// error mapping escapes them.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HeadError {
    #[error("Bad request: {0}")]
    Malformed(String),
    #[error("Request too large: {0}")]
    UriTooLong(String),
    #[error("Request too large: {0}")]
    TooLarge(String),
}

/// The bounds a head is checked against.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// The longest request target, in bytes.
    pub max_url_bytes: usize,
}

impl HeadLimits {
    /// The longest target accepted: the configured one, within hyper's.
    pub fn url_limit(&self) -> usize {
        self.max_url_bytes.min(HYPER_MAX_URI)
    }

    /// The longest request line, up to its line feed.
    pub fn line_limit(&self) -> usize {
        self.url_limit() + LINE_SLACK
    }

    /// The longest head, request line and header fields.
    pub fn head_limit(&self) -> usize {
        self.line_limit() + MAX_HEADER_BYTES
    }

    /// hyper's read buffer: a little more than any head that passes here
    /// (plus the added `connection: close`), so hyper never finds one too
    /// large itself.
    pub fn hyper_buf_size(&self) -> usize {
        (self.head_limit() + 16 * 1024).max(64 * 1024)
    }
}

/// What the bytes at the start of a buffer are.
#[derive(Debug, PartialEq, Eq)]
pub enum Inspection {
    /// The start of a head that may still turn out valid: read more.
    Partial,
    /// A head hyper will accept, of `len` bytes.
    Complete {
        len: usize,
        /// Where the request line ends (after its `\n`): the place for an
        /// added header field.
        line_end: usize,
        /// The body the request declares.
        body: Body,
    },
    /// A head hyper would refuse, with Signet's reason.
    Invalid(HeadError),
}

/// How a request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    /// `Content-Length` bytes follow the head.
    Length(u64),
    /// Chunks follow; their end is found only by parsing them.
    Chunked,
}

/// The number of bytes of empty lines at the start of `buf`, which a server
/// ignores before a request line (RFC 9112 §2.2). A lone `\r` at the end
/// is kept: the next byte decides.
pub fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut at = 0;
    loop {
        match buf.get(at..) {
            Some([b'\n', ..]) => at += 1,
            Some([b'\r', b'\n', ..]) => at += 2,
            _ => return at,
        }
    }
}

/// Inspects the head at the start of `buf` (with no leading empty lines).
pub fn inspect(buf: &[u8], limits: HeadLimits) -> Inspection {
    let url_limit = limits.url_limit();
    let too_long = || {
        Inspection::Invalid(HeadError::UriTooLong(format!(
            "the URL has over {url_limit} bytes (limit {url_limit})"
        )))
    };
    match buf.iter().position(|&b| b == b'\n') {
        Some(end) if end > limits.line_limit() => return too_long(),
        None if buf.len() > limits.line_limit() => return too_long(),
        None => return Inspection::Partial,
        Some(_) => {}
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > limits.head_limit() => {
            return too_large(limits)
        }
        Ok(httparse::Status::Partial) => return Inspection::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return Inspection::Invalid(HeadError::TooLarge(format!(
                "the request has over {MAX_HEADERS} header fields"
            )))
        }
        Err(error) => {
            let what = match error {
                httparse::Error::Token if request.method.is_none() => "the method is not a token",
                httparse::Error::Token => "the request target has a byte a URL cannot hold",
                httparse::Error::Version => "the version is not HTTP/1.0 or HTTP/1.1",
                httparse::Error::HeaderName => "a header name is not a token",
                httparse::Error::HeaderValue => "a header value has a control byte",
                httparse::Error::NewLine => "a line ends in a bare CR",
                _ => "the request head is malformed",
            };
            return malformed(what);
        }
    };
    if len > limits.head_limit() {
        return too_large(limits);
    }
    match check_fields(&request, url_limit) {
        Ok(body) => Inspection::Complete {
            len,
            line_end: buf.iter().position(|&b| b == b'\n').map_or(len, |i| i + 1),
            body,
        },
        Err(error) => Inspection::Invalid(error),
    }
}

fn malformed(what: &str) -> Inspection {
    Inspection::Invalid(HeadError::Malformed(what.into()))
}

fn too_large(limits: HeadLimits) -> Inspection {
    Inspection::Invalid(HeadError::TooLarge(format!(
        "the request head has over {} bytes",
        limits.head_limit()
    )))
}

/// hyper's checks after `httparse`, and how the body is framed.
fn check_fields(request: &httparse::Request<'_, '_>, url_limit: usize) -> Result<Body, HeadError> {
    let bad = |what: &str| HeadError::Malformed(what.into());
    let (Some(method), Some(target), Some(version)) =
        (request.method, request.path, request.version)
    else {
        return Err(bad("the request line is incomplete"));
    };
    if target.len() > url_limit {
        return Err(HeadError::UriTooLong(format!(
            "the URL has {} bytes (limit {url_limit})",
            target.len()
        )));
    }
    Method::from_bytes(method.as_bytes()).map_err(|_| bad("the method is not a token"))?;
    Uri::try_from(target.as_bytes()).map_err(|_| bad("the request target is not a URI"))?;
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked = false;
    for header in request.headers.iter() {
        if header.name.len() >= 1 << 16 {
            return Err(HeadError::TooLarge("a header name has over 64 KiB".into()));
        }
        HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| bad("a header name is not a token"))?;
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if version == 0 {
                return Err(bad("HTTP/1.0 has no Transfer-Encoding"));
            }
            transfer_encoding = true;
            content_length = None;
            chunked = ends_in_chunked(header.value);
        } else if header.name.eq_ignore_ascii_case("content-length") && !transfer_encoding {
            let length =
                digits(header.value).ok_or_else(|| bad("Content-Length is not a number"))?;
            if content_length.is_some_and(|seen| seen != length) {
                return Err(bad("the Content-Length fields disagree"));
            }
            content_length = Some(length);
        }
    }
    if transfer_encoding && !chunked {
        return Err(bad("Transfer-Encoding does not end in chunked"));
    }
    Ok(match (transfer_encoding, content_length) {
        (true, _) => Body::Chunked,
        (false, Some(length)) if length > 0 => Body::Length(length),
        _ => Body::None,
    })
}

/// hyper's rule: the last coding of the field is `chunked`, in a value of
/// visible ASCII.
fn ends_in_chunked(value: &[u8]) -> bool {
    let visible = value
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b));
    visible
        && std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.rsplit(',').next())
            .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"))
}

/// Decimal digits only, as hyper reads `Content-Length`; `None` past
/// `u64` or past the largest length hyper takes.
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    // hyper refuses the top two values (its markers for chunked and
    // close-delimited bodies) as too large.
    (n <= u64::MAX - 2).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits { max_url_bytes: 100 };

    fn check(head: &str) -> Inspection {
        inspect(head.as_bytes(), LIMITS)
    }

    fn refused(head: &str) -> HeadError {
        match check(head) {
            Inspection::Invalid(error) => error,
            other => panic!("{head:?} passed: {other:?}"),
        }
    }

    #[test]
    fn a_plain_get_is_complete_without_a_body() {
        let head = "GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            check(head),
            Inspection::Complete {
                len: head.len(),
                line_end: 21,
                body: Body::None
            }
        );
        assert_eq!(check("GET / HTTP/1.1\r\nHost: x\r\n"), Inspection::Partial);
        assert_eq!(check("GET / HT"), Inspection::Partial);
    }

    #[test]
    fn heads_hyper_would_refuse_are_refused_with_a_reason() {
        for (head, reason) in [
            ("G\u{1}T / HTTP/1.1\r\n\r\n", "method"),
            ("GET /a\u{7f}b HTTP/1.1\r\n\r\n", "target"),
            ("GET /a<b HTTP/1.1\r\n\r\n", "URI"),
            ("GET http:// HTTP/1.1\r\n\r\n", "URI"),
            ("GET / HTTP/2.0\r\n\r\n", "version"),
            ("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", "header name"),
            ("GET / HTTP/1.1\r\nA: b\u{1}c\r\n\r\n", "control"),
            ("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", "header value"),
            (
                "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "disagree",
            ),
            (
                "GET / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n",
                "not a number",
            ),
            (
                "GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
                "not a number",
            ),
            (
                "GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                "chunked",
            ),
            (
                "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                "HTTP/1.0",
            ),
        ] {
            let error = refused(head);
            assert!(
                matches!(&error, HeadError::Malformed(m) if m.contains(reason)),
                "{head:?}: {error}"
            );
        }
    }

    #[test]
    fn long_lines_and_heads_and_many_fields_are_too_large() {
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(150));
        assert!(matches!(refused(&long), HeadError::UriTooLong(_)));
        // Known before the line ends.
        assert!(matches!(
            refused(&"a".repeat(200)),
            HeadError::UriTooLong(_)
        ));
        let fields = "A: b\r\n".repeat(MAX_HEADERS + 1);
        let many = format!("GET / HTTP/1.1\r\n{fields}\r\n");
        assert!(matches!(refused(&many), HeadError::TooLarge(_)));
        let big = format!(
            "GET / HTTP/1.1\r\nA: {}",
            "b".repeat(MAX_HEADER_BYTES + 200)
        );
        assert!(matches!(refused(&big), HeadError::TooLarge(_)));
    }

    #[test]
    fn bodies_are_declared_by_a_length_or_chunked() {
        for (head, body) in [
            (
                "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
                Body::Length(5),
            ),
            ("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", Body::None),
            (
                "POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n",
                Body::Length(3),
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                Body::Chunked,
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n",
                Body::Chunked,
            ),
        ] {
            match check(head) {
                Inspection::Complete { body: b, .. } => assert_eq!(b, body, "{head:?}"),
                other => panic!("{head:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn empty_lines_before_a_request_are_counted_to_be_skipped() {
        assert_eq!(leading_empty_lines(b"\r\n\n\r\nGET"), 5);
        assert_eq!(leading_empty_lines(b"\r\n\r"), 2);
        assert_eq!(leading_empty_lines(b"\rX"), 0);
    }
}
