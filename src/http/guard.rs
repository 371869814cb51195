//! The connection's byte stream as hyper sees it: every request head is
//! checked before hyper parses it, writes that make no progress time out,
//! and an error answer of Signet's own is written when hyper is done.
//!
//! Why not let hyper answer bad heads: hyper writes a bare `400`, `414` or
//! `431` of its own for a head it cannot parse, with none of the headers
//! every Signet error carries, and offers no hook to change it. So the
//! guard hands hyper whole heads only, each checked by [`head::inspect`]
//! with hyper's own rules. At a head hyper would refuse, the guard stops:
//! hyper reads the end of the stream there, finishes the responses to the
//! requests before it (hyper runs with `half_close`, so an end of input
//! does not cancel a response being written), and closes. Its close comes
//! through [`Guard::poll_shutdown`], which first writes the error answer
//! built by the one error mapping, so responses stay in request order on
//! every request of a kept-alive connection, not only the first.
//!
//! A body framed by `Content-Length` is passed to hyper unchecked, byte for
//! byte, and the head after it is checked as usual, so a client can keep
//! its connection across API calls with bodies. A chunked body's end is
//! found only by parsing its chunks, so such a request is the last one
//! checked: the guard adds `connection: close` to its head, and hyper
//! answers it and closes.
//!
//! Pipelining is bounded by construction: hyper answers one request at a
//! time and reads the next only after answering, and the guard reads from
//! the socket only when it holds no whole head, at most [`READ_CHUNK`]
//! bytes at a time. So a connection holds one request in progress and one
//! read of pipelined bytes; the rest waits in the kernel, where TCP flow
//! control stops the sender. A sender that never reads fills the send
//! buffer instead, and the write timeout closes it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::error::AppError;
use super::head::{self, Body, HeadLimits, Inspection};
use super::state::ConnectionStats;

/// Bytes read from the socket at once, and so the most pipelined bytes
/// held beyond the request being answered.
pub const READ_CHUNK: usize = 8 * 1024;
/// How long, and how many bytes, the guard goes on reading after its last
/// answer: closing a socket with unread input resets it, and a reset can
/// destroy the answer before the client reads it.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;
/// The header field added to a request with a body.
const CLOSE: &[u8] = b"connection: close\r\n";

/// A connection's socket, between the kernel and hyper.
pub struct Guard {
    stream: TcpStream,
    limits: HeadLimits,
    /// Bytes read from the socket that hyper has not taken yet.
    buf: Vec<u8>,
    /// How many bytes at the front of `buf` belong to checked requests.
    checked: usize,
    /// True when `buf` holds bytes not yet inspected as they now stand.
    unread: bool,
    /// True after a request with a chunked body: hyper closes after it,
    /// and the rest is passed on unchecked.
    passthrough: bool,
    /// Bytes of a length-framed body still to pass on unchecked.
    body_left: u64,
    /// True once hyper is to read the end of the stream: a real one, or a
    /// refused head.
    ended: bool,
    /// Signet's answer to a refused head, and how much of it is written.
    answer: Option<(Vec<u8>, usize)>,
    /// True once the write side is shut down.
    shut: bool,
    /// Bytes discarded while lingering.
    lingered: usize,
    /// How long a write may wait for the peer to read.
    write_timeout: Duration,
    /// Armed while a write waits; cleared by any progress.
    stall: Option<Pin<Box<Sleep>>>,
    /// Runs while lingering.
    linger: Option<Pin<Box<Sleep>>>,
    /// Counters shown by `/healthz`.
    stats: Arc<ConnectionStats>,
}

impl Guard {
    pub fn new(
        stream: TcpStream,
        limits: HeadLimits,
        write_timeout: Duration,
        stats: Arc<ConnectionStats>,
    ) -> Guard {
        Guard {
            stream,
            limits,
            buf: Vec::new(),
            checked: 0,
            unread: false,
            passthrough: false,
            body_left: 0,
            ended: false,
            answer: None,
            shut: false,
            lingered: 0,
            write_timeout,
            stall: None,
            linger: None,
            stats,
        }
    }

    /// Decides what the unchecked bytes at the front of `buf` are.
    fn inspect(&mut self) {
        let skip = head::leading_empty_lines(&self.buf);
        self.buf.drain(..skip);
        if self.buf.is_empty() {
            return;
        }
        match head::inspect(&self.buf, self.limits) {
            Inspection::Partial => {}
            Inspection::Complete {
                len,
                line_end,
                body,
            } => match body {
                Body::None => self.checked = len,
                Body::Length(n) => {
                    self.checked = len;
                    self.body_left = n;
                }
                Body::Chunked => {
                    self.buf.splice(line_end..line_end, CLOSE.iter().copied());
                    self.passthrough = true;
                    self.checked = self.buf.len();
                }
            },
            Inspection::Invalid(error) => {
                tracing::debug!(%error, "refused a request head");
                self.stats.heads_refused.fetch_add(1, Ordering::Relaxed);
                self.answer = Some((AppError::from(error).raw_response(), 0));
                self.ended = true;
                self.buf = Vec::new();
            }
        }
    }

    /// A write is waiting: arms the timer, or fails once it has run out.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let timeout = self.write_timeout;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if stall.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        tracing::debug!(?timeout, "the peer read nothing in time; closing");
        self.stats.write_timeouts.fetch_add(1, Ordering::Relaxed);
        // A reset frees the unsent bytes at once; a normal close would
        // leave them queued to a peer that does not read.
        let _ = self.stream.set_zero_linger();
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the peer read nothing within the write timeout",
        )))
    }

    /// Maps a write's outcome: bytes taken disarm the timer, a wait arms it.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match result {
            Poll::Pending => self.stalled(cx),
            Poll::Ready(Ok(0)) => Poll::Ready(Ok(0)),
            ready => {
                self.stall = None;
                ready
            }
        }
    }

    /// Reads and drops what the peer still sends, for a bounded time.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let linger = self
            .linger
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(LINGER)));
        let mut scratch = [0u8; 4096];
        while self.lingered < LINGER_BYTES {
            let mut read = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.stream).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if !read.filled().is_empty() => {
                    self.lingered += read.filled().len();
                }
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return linger.as_mut().poll(cx),
            }
        }
        Poll::Ready(())
    }
}

impl AsyncRead for Guard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.checked > 0 {
                let n = this.checked.min(out.remaining());
                out.put_slice(&this.buf[..n]);
                this.buf.drain(..n);
                this.checked -= n;
                // Pipelined bytes after this request come next.
                this.unread = this.checked == 0 && this.body_left == 0 && !this.buf.is_empty();
                return Poll::Ready(Ok(()));
            }
            if this.body_left > 0 && !this.buf.is_empty() {
                // Body bytes already read go on as they are.
                let n = this.body_left.min(this.buf.len() as u64);
                this.checked = n as usize;
                this.body_left -= n;
                continue;
            }
            if this.passthrough {
                return Pin::new(&mut this.stream).poll_read(cx, out);
            }
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            if this.unread {
                this.unread = false;
                this.inspect();
                continue;
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.stream).poll_read(cx, &mut read))?;
            let fresh = read.filled();
            if fresh.is_empty() {
                // A head cut short by the end of input needs no answer:
                // nobody is left to read one.
                this.ended = true;
                this.buf = Vec::new();
                continue;
            }
            this.buf.extend_from_slice(fresh);
            // Parse only when a line may have ended or a bound is passed, so
            // a head trickled a byte at a time costs no parse per byte.
            // Body bytes are never parsed.
            this.unread = this.body_left == 0
                && (fresh.contains(&b'\n') || this.buf.len() > this.limits.line_limit());
        }
    }
}

impl AsyncWrite for Guard {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.wrote(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.wrote(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A flush moves no bytes (a socket has nothing to flush), so it is
        // no progress either.
        match Pin::new(&mut self.stream).poll_flush(cx) {
            Poll::Pending => self.stalled(cx),
            ready => ready,
        }
    }

    /// hyper is done: the answer to a refused head, then the end of the
    /// stream, then a short linger.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while let Some((answer, at)) = this.answer.take() {
            if at == answer.len() {
                break;
            }
            let result = Pin::new(&mut this.stream).poll_write(cx, &answer[at..]);
            match this.wrote(cx, result) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => this.answer = Some((answer, at + n)),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    this.answer = Some((answer, at));
                    return Poll::Pending;
                }
            }
        }
        if !this.shut {
            match Pin::new(&mut this.stream).poll_shutdown(cx) {
                Poll::Pending => return this.stalled(cx),
                Poll::Ready(result) => result?,
            }
            this.shut = true;
        }
        this.poll_linger(cx).map(Ok)
    }
}
