//! Raw HTTP/1.1 over a socket, for bytes no client library would send:
//! write a request (or several, pipelined), read every answer until the
//! server closes, and split the answers apart.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One response as it came over the wire.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Header names lower-cased, values as sent (lossy UTF-8).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn error(&self) -> &str {
        self.header("x-stencil-error").unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Long enough for any answer of a healthy server on a loaded machine;
/// reached only when a test is failing.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Sends `request` (then ends the sending side) and returns every answer
/// read until the server closes. A write the server refuses to read, or a
/// reset, ends the exchange with what was read so far.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<Answer> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let request = request.to_vec();
    let writing = tokio::spawn(async move {
        if writer.write_all(&request).await.is_ok() {
            let _ = writer.shutdown().await;
        }
        writer
    });
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server neither answered nor closed");
    drop(writing.await);
    parse_answers(&bytes)
}

/// Splits a byte stream of responses (each with a `content-length`, or
/// the last one running to the end).
pub fn parse_answers(mut bytes: &[u8]) -> Vec<Answer> {
    let mut answers = Vec::new();
    while let Some(end) = find(bytes, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let rest = &bytes[end + 4..];
        let bodiless = status < 200 || status == 204 || status == 304;
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(if bodiless { 0 } else { rest.len() })
            .min(rest.len());
        answers.push(Answer {
            status,
            headers,
            body: rest[..length].to_vec(),
        });
        bytes = &rest[length..];
    }
    answers
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

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

/// Writes `request` on a kept-alive `stream` and reads one answer.
pub async fn ask(stream: &mut TcpStream, request: &str) -> Answer {
    stream.write_all(request.as_bytes()).await.expect("write");
    read_answer(stream).await
}

/// Reads exactly one answer (its head and `content-length` body).
pub async fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(end) = find(&bytes, b"\r\n\r\n") {
                let answer = &parse_answers(&bytes)[0];
                let length = answer
                    .header("content-length")
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if bytes.len() >= end + 4 + length {
                    return;
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer");
    parse_answers(&bytes).into_iter().next().expect("an answer")
}
