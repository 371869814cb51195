//! Reads a connection's first request line before hyper sees it, so an
//! oversized URL gets the protocol's `414` with `x-stencil-error` instead
//! of hyper's bare one (hyper refuses targets over 64 KiB itself, before any
//! handler runs). Later requests on a kept-alive connection are bounded by
//! the handler's own check and, past 64 KiB, by hyper's.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::request::RequestError;

/// What reading the first line found.
pub enum FirstLine {
    /// Hand the connection, with the bytes already read, to hyper.
    Serve(Prefixed),
    /// The connection was answered (or died); nothing more to do.
    Done,
}

/// Reads until the first line feed, at most `limit` bytes of request line.
pub async fn check(mut stream: TcpStream, max_url_bytes: usize, timeout: Duration) -> FirstLine {
    // "GET " + target + " HTTP/1.1\r\n", with room for a longer method.
    let limit = max_url_bytes + 32;
    let mut buf = Vec::with_capacity(4096);
    let read = tokio::time::timeout(timeout, async {
        let mut chunk = [0u8; 4096];
        loop {
            if buf.contains(&b'\n') || buf.len() > limit {
                return Ok::<_, io::Error>(true);
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(false);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    match read {
        Ok(Ok(true)) if buf.len() > limit && !buf[..=limit].contains(&b'\n') => {
            let message = RequestError::TooLarge(format!(
                "the URL has over {max_url_bytes} bytes (limit {max_url_bytes})"
            ))
            .to_string();
            let response = format!(
                "HTTP/1.1 414 URI Too Long\r\nx-stencil-error: {message}\r\ncontent-type: text/plain; charset=utf-8\r\n\
                 cache-control: no-store\r\naccess-control-allow-origin: *\r\nconnection: close\r\n\
                 content-length: {}\r\n\r\n{message}\n",
                message.len() + 1
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
            FirstLine::Done
        }
        Ok(Ok(true)) => FirstLine::Serve(Prefixed {
            head: buf,
            at: 0,
            stream,
        }),
        // A client that closed or sent nothing in time gets nothing.
        _ => FirstLine::Done,
    }
}

/// A stream that first replays bytes already read from it.
pub struct Prefixed {
    head: Vec<u8>,
    at: usize,
    stream: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.head.len() {
            let n = out.remaining().min(self.head.len() - self.at);
            let at = self.at;
            out.put_slice(&self.head[at..at + n]);
            self.at += n;
            if self.at == self.head.len() {
                self.head = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, out)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
