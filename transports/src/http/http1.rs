//! HTTP/1.1 on one connection. arbor reads each request head itself and
//! answers the plain requests (a `Content-Length` body or none) through the
//! router, writing the answer itself; anything else (a chunked body, HTTP/1.0,
//! `HEAD`, an upgrade, a head that is malformed or over the limits) is handed
//! to hyper, with what was read, for the rest of the connection.
//!
//! Why not hyper for everything: hyper keeps an 8 KiB read buffer and an
//! 8 KiB header buffer for the life of every connection, idle or streaming,
//! and cannot be told to let them go. Most of arbor's HTTP connections are
//! idle keep-alives or long-lived SSE streams, and there those buffers were
//! most of what a session cost. Here an idle connection holds its socket and
//! nothing else; a stream holds its socket and its body.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use arbor_runtime::Stopping;
use axum::body::{Body, Bytes};
use axum::http::{HeaderName, Method, Request, Version};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;

use super::*;

/// How much a connection reads ahead of the request it serves (a pipelined
/// next request) while an answer is pending or streaming.
const READ_AHEAD: usize = 16 << 10;

/// The interim answer to `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Serves one connection until the client leaves, a limit ends it, or its
/// process is asked to stop: then streams with nothing in flight end, the request in progress
/// finishes (for up to `drain`), and the connection closes.
// An async block, not an async fn: an async fn's future would keep its
// arguments twice, for the life of the connection.
#[allow(clippy::manual_async_fn)]
pub(crate) fn serve(
    stream: TcpStream,
    router: Router,
    config: Arc<HttpConfig>,
    stopping: Stopping,
    drain: Duration,
) -> impl std::future::Future<Output = ()> + Send {
    async move {
        let (closing, closing_rx) = watch::channel(false);
        // Set once asked to stop: when the drain ends.
        let mut deadline = None;
        let client = stream.peer_addr().ok().map(|a| ClientAddress(a.ip()));
        let mut conn = Conn {
            stream,
            client,
            read: Vec::new(),
            unread: 0,
            interim: 0,
            config,
            closing: closing_rx.clone(),
        };
        loop {
            let head = tokio::select! {
                head = tokio::time::timeout(conn.config.header_read_timeout, conn.read_head()) => head,
                _ = stopping.requested() => return,
            };
            let head = match head {
                Ok(Ok(Head::Plain(head))) => head,
                Ok(Ok(Head::ForHyper)) => {
                    // Boxed, as is each exchange: the task of an idle connection
                    // keeps room only for what it waits on now.
                    return Box::pin(hyper_serves(
                        conn, router, closing, closing_rx, stopping, drain,
                    ))
                    .await;
                }
                // Idle or slow past the header timeout, or the client left.
                Ok(Err(_)) | Err(_) => return,
            };
            let exchange =
                Box::pin(conn.exchange(head, router.clone(), Closing(closing_rx.clone())));
            let exchanged =
                until_stopped(exchange, &stopping, &closing, &mut deadline, drain).await;
            let next = match exchanged {
                Some(Exchanged::Done(next)) => next,
                Some(Exchanged::Streaming(body, next)) => {
                    // The exchange is gone: a stream that lasts for hours
                    // keeps only its body and this loop. One begun while
                    // draining has what is left of the drain.
                    let streaming = Box::pin(conn.stream_body(body, next));
                    match until_stopped(streaming, &stopping, &closing, &mut deadline, drain).await
                    {
                        Some(Ok(next)) => next,
                        Some(Err(_)) | None => Next::Close,
                    }
                }
                None => Next::Close,
            };
            // Draining: no next request.
            if next == Next::Close || deadline.is_some() {
                let _ = conn.stream.shutdown().await;
                return;
            }
            if conn.read.is_empty() {
                // Idle: hold no buffer.
                conn.read = Vec::new();
            }
        }
    }
}

/// Runs `work` to its end. Once the connection is asked to stop, tells
/// what it serves (`closing`) and lets it run until `deadline`, set then to
/// `drain` from now and kept for what follows (a streamed answer's body):
/// `None` if it did not finish by then.
async fn until_stopped<F: std::future::Future>(
    mut work: Pin<Box<F>>,
    stopping: &Stopping,
    closing: &watch::Sender<bool>,
    deadline: &mut Option<tokio::time::Instant>,
    drain: Duration,
) -> Option<F::Output> {
    let until = match *deadline {
        Some(until) => until,
        None => tokio::select! {
            done = work.as_mut() => return Some(done),
            _ = stopping.requested() => {
                let _ = closing.send(true);
                *deadline.insert(tokio::time::Instant::now() + drain)
            }
        },
    };
    tokio::time::timeout_at(until, work).await.ok()
}

/// A connection arbor serves: the socket and what was read past the
/// request served so far.
struct Conn {
    stream: TcpStream,
    /// Put on each request, for the per-address rate limits.
    client: Option<ClientAddress>,
    /// Bytes read and not yet used; empty (and unallocated) when idle.
    read: Vec<u8>,
    /// Bytes of the current request's body not yet taken: in `read`
    /// (which then holds nothing else) or still on the socket.
    unread: usize,
    /// Bytes of a `100 Continue` not yet written.
    interim: usize,
    config: Arc<HttpConfig>,
    /// Set once the connection is shutting down: what is answered then
    /// says `connection: close`, so no client pools it.
    closing: watch::Receiver<bool>,
}

/// What the next request is.
enum Head {
    /// One arbor answers.
    Plain(Box<PlainHead>),
    /// One hyper answers: it takes the connection, with what was read.
    ForHyper,
}

/// A request head arbor serves, parsed.
struct PlainHead {
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    /// The body's length, from `Content-Length` (zero without one).
    body_len: usize,
    /// The client waits for `100 Continue` before it sends the body (sent
    /// when the handler first asks for it).
    expects_continue: bool,
    /// `Connection: close`: the connection ends after this answer.
    close: bool,
}

/// Whether the connection goes on after an exchange.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    KeepAlive,
    Close,
}

/// How an exchange (or the writing of its answer) ended.
enum Exchanged {
    /// Answered whole.
    Done(Next),
    /// The head of a streamed answer is written; its body follows.
    Streaming(Body, Next),
}

impl Conn {
    /// Reads until a whole head is in, and parses it. A head arbor does not
    /// serve (or cannot parse) is left in `read` for hyper.
    async fn read_head(&mut self) -> std::io::Result<Head> {
        loop {
            if !self.read.is_empty() {
                match parse_head(&self.read, &self.config) {
                    Parse::Plain(head, len) => {
                        self.read.drain(..len);
                        if self.read.is_empty() {
                            // A stream may last for hours: it holds no buffer.
                            self.read = Vec::new();
                        }
                        return Ok(Head::Plain(head));
                    }
                    Parse::ForHyper => return Ok(Head::ForHyper),
                    Parse::Partial => {}
                }
            }
            if self.fill().await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Reads what the socket has into `read`; 0 at the end of the stream.
    async fn fill(&mut self) -> std::io::Result<usize> {
        loop {
            self.stream.readable().await?;
            self.read.reserve(1024);
            match self.stream.try_read_buf(&mut self.read) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Calls the router, feeding it the body as it asks for it, and
    /// writes its answer.
    async fn exchange(
        &mut self,
        head: Box<PlainHead>,
        router: Router,
        closing: Closing,
    ) -> Exchanged {
        let PlainHead {
            method,
            uri,
            headers,
            body_len,
            expects_continue,
            close,
        } = *head;
        let (body, feed) = if self.read.len() >= body_len {
            // All of it came with the head, as it usually does.
            let rest = self.read.split_off(body_len);
            (Body::from(std::mem::replace(&mut self.read, rest)), None)
        } else {
            // All of it, what came with the head included: `read` holds
            // only body bytes now, and they count as unread until taken.
            self.unread = body_len;
            let (incoming, feed) = Incoming::new(body_len);
            (Body::new(incoming), Some(feed))
        };
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.version_mut() = Version::HTTP_11;
        *request.headers_mut() = headers;
        request.extensions_mut().insert(closing);
        if let Some(client) = self.client {
            request.extensions_mut().insert(client);
        }
        let mut router = router;
        // Boxed apart from the exchange, so a streaming answer does not
        // keep room for the router's future (most of the exchange) for
        // the life of its stream.
        let answer = Box::pin(tower_service::Service::call(&mut router, request));
        // A client that leaves while its answer is pending cancels it, as
        // with hyper: dropping the handler's future is how it learns.
        let body_read_timeout = self.config.body_read_timeout;
        let watch = async {
            if let Some(feed) = feed {
                // Past the deadline the feed goes, and a handler still
                // reading sees its body fail as timed out (a 408 from
                // `JsonBody`), not hang.
                let late = feed.chunks.clone();
                let fed =
                    tokio::time::timeout(body_read_timeout, self.feed(feed, expects_continue));
                match fed.await {
                    Ok(Err(Gone)) => return,
                    Ok(Ok(())) => {}
                    Err(_) => {
                        let _ = late.try_send(Err(std::io::ErrorKind::TimedOut.into()));
                    }
                }
                drop(late);
            }
            self.peer_gone().await
        };
        let response = tokio::select! {
            response = answer => match response {
                Ok(response) => response,
                Err(never) => match never {},
            },
            _ = watch => return Exchanged::Done(Next::Close),
        };
        // Answered before all of the body was read (a refusal, say): what
        // is left of it cannot be told from a next request, so the
        // connection ends.
        let close = close || self.unread > 0;
        if self.finish_interim().await.is_err() {
            return Exchanged::Done(Next::Close);
        }
        let next = match self.write_response(response, close).await {
            Ok(Exchanged::Streaming(body, next)) if self.unread == 0 => {
                return Exchanged::Streaming(body, next)
            }
            Ok(Exchanged::Streaming(body, next)) => self.stream_body(body, next).await,
            Ok(Exchanged::Done(next)) => Ok(next),
            Err(e) => Err(e),
        };
        if self.unread > 0 {
            self.linger().await;
        }
        Exchanged::Done(match next {
            Ok(Next::KeepAlive) if !close => Next::KeepAlive,
            _ => Next::Close,
        })
    }

    /// Feeds the body to the handler once it first asks for it (sending
    /// `100 Continue` then, if the client waits for one), a read at a time,
    /// until it is all read or the handler lets it go. `Err`: the client
    /// left.
    async fn feed(&mut self, feed: Feed, expects_continue: bool) -> Result<(), Gone> {
        let Feed { wanted, chunks } = feed;
        if wanted.await.is_err() {
            // The handler answered, or dropped the body, without reading it.
            return Ok(());
        }
        if expects_continue && self.read.is_empty() {
            self.interim = CONTINUE.len();
            self.finish_interim().await.map_err(|_| Gone)?;
        }
        if !self.read.is_empty() {
            let first = std::mem::take(&mut self.read);
            self.unread -= first.len();
            if chunks.send(Ok(Bytes::from(first))).await.is_err() {
                return Ok(());
            }
        }
        while self.unread > 0 {
            // Exactly what is left of the body at most: what follows it
            // is the next request's.
            let mut data = vec![0u8; self.unread.min(READ_AHEAD)];
            loop {
                self.stream.readable().await.map_err(|_| Gone)?;
                match self.stream.try_read(&mut data) {
                    Ok(0) => return Err(Gone),
                    Ok(n) => {
                        data.truncate(n);
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return Err(Gone),
                }
            }
            self.unread -= data.len();
            if chunks.send(Ok(Bytes::from(data))).await.is_err() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Writes what is left of a `100 Continue` begun by [`Conn::feed`]: an
    /// answer that came meanwhile must not follow half an interim line.
    async fn finish_interim(&mut self) -> std::io::Result<()> {
        while self.interim > 0 {
            let from = CONTINUE.len() - self.interim;
            let n = self.stream.write(&CONTINUE[from..]).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.interim -= n;
        }
        Ok(())
    }

    /// After an answer sent with some of the body unread: stops writing and
    /// reads (and drops) the rest for a while, so that closing with it
    /// unread does not reset the connection before the client has read the
    /// answer.
    async fn linger(&mut self) {
        let _ = self.stream.shutdown().await;
        self.drop_unread();
        let drain = async {
            while self.unread > 0 {
                if self.stream.readable().await.is_err() {
                    return;
                }
                let mut sink = [0u8; 4096];
                let want = self.unread.min(sink.len());
                match self.stream.try_read(&mut sink[..want]) {
                    Ok(0) => return,
                    Ok(n) => self.unread -= n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        };
        let _ = tokio::time::timeout(self.config.body_read_timeout, drain).await;
    }

    /// Writes `response`: in one write when its length is known, else
    /// chunked, a write per frame, as the frames come. Stops (and closes)
    /// when the client leaves.
    async fn write_response(
        &mut self,
        response: Response,
        close: bool,
    ) -> std::io::Result<Exchanged> {
        let (parts, mut body) = response.into_parts();
        // The handler may end the connection too, by saying so.
        let close = close
            || *self.closing.borrow()
            || parts
                .headers
                .get_all(header::CONNECTION)
                .iter()
                .any(|v| has_token(v, "close"));
        let done = if close { Next::Close } else { Next::KeepAlive };
        let bodiless = parts.status.is_informational()
            || parts.status == StatusCode::NO_CONTENT
            || parts.status == StatusCode::NOT_MODIFIED;
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(parts.status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(
            parts
                .status
                .canonical_reason()
                .unwrap_or("<none>")
                .as_bytes(),
        );
        out.extend_from_slice(b"\r\n");
        for (name, value) in &parts.headers {
            if is_framing(name) {
                continue;
            }
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !parts.headers.contains_key(header::DATE) {
            out.extend_from_slice(b"date: ");
            out.extend_from_slice(&http_date());
            out.extend_from_slice(b"\r\n");
        }
        if close {
            out.extend_from_slice(b"connection: close\r\n");
        }
        if bodiless {
            out.extend_from_slice(b"\r\n");
            self.stream.write_all(&out).await?;
            return Ok(Exchanged::Done(done));
        }
        if let Some(len) = axum::body::HttpBody::size_hint(&body).exact() {
            out.extend_from_slice(format!("content-length: {len}\r\n\r\n").as_bytes());
            // Watched as a stream is: a body of known length may still be
            // slow to produce.
            loop {
                match self.next_data(&mut body).await {
                    Ok(Some(data)) => out.extend_from_slice(&data),
                    Ok(None) => break,
                    Err(Gone) => return Ok(Exchanged::Done(Next::Close)),
                }
            }
            self.stream.write_all(&out).await?;
            return Ok(Exchanged::Done(done));
        }
        out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
        self.stream.write_all(&out).await?;
        Ok(Exchanged::Streaming(body, done))
    }

    /// Streams a body whose head is written, a chunk per frame as the
    /// frames come; `done` once it ends, `Close` if the client left.
    async fn stream_body(&mut self, mut body: Body, done: Next) -> std::io::Result<Next> {
        loop {
            match self.next_data(&mut body).await {
                Ok(Some(data)) if data.is_empty() => {}
                Ok(Some(data)) => self.stream.write_all(&chunk(&data)).await?,
                Ok(None) => break,
                Err(Gone) => return Ok(Next::Close),
            }
        }
        self.stream.write_all(b"0\r\n\r\n").await?;
        Ok(done)
    }

    /// The body's next data (trailers skipped), watching meanwhile for the
    /// client leaving; `None` at the end of the body.
    async fn next_data(&mut self, body: &mut Body) -> Result<Option<Bytes>, Gone> {
        loop {
            let frame = tokio::select! {
                frame = body.frame() => frame,
                _ = self.peer_gone() => return Err(Gone),
            };
            match frame {
                None => return Ok(None),
                Some(Err(_)) => return Err(Gone),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
    /// Completes when the client has closed its side (or the socket
    /// failed). What it sends meanwhile is kept in `read` (a pipelined
    /// request), up to [`READ_AHEAD`], or dropped if it is the rest of a
    /// body the handler did not read; past that the client counts as gone,
    /// since no longer watching would let a stream outlive it.
    async fn peer_gone(&mut self) {
        loop {
            self.drop_unread();
            if self.read.len() >= READ_AHEAD {
                return;
            }
            if self.stream.readable().await.is_err() {
                return;
            }
            let mut chunk = [0u8; 1024];
            match self.stream.try_read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => self.read.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    }

    /// Drops what was read of a body nobody reads.
    fn drop_unread(&mut self) {
        let n = self.unread.min(self.read.len());
        if n > 0 {
            self.read.drain(..n);
            self.unread -= n;
        }
    }
}

/// A request body still on the socket, as the handler sees it: the
/// connection reads it only once the handler first polls it.
struct Incoming {
    /// Sent on the first poll.
    wanted: Option<oneshot::Sender<()>>,
    chunks: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    /// Bytes of it not yet handed to the handler.
    left: u64,
}

/// The connection's side of an [`Incoming`] body.
struct Feed {
    /// Fires when the handler first polls the body; fails if it drops the
    /// body unpolled.
    wanted: oneshot::Receiver<()>,
    chunks: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
}

impl Incoming {
    fn new(len: usize) -> (Incoming, Feed) {
        let (wanted, wanted_rx) = oneshot::channel();
        let (chunks, chunks_rx) = tokio::sync::mpsc::channel(1);
        let incoming = Incoming {
            wanted: Some(wanted),
            chunks: chunks_rx,
            left: len as u64,
        };
        let feed = Feed {
            wanted: wanted_rx,
            chunks,
        };
        (incoming, feed)
    }
}

impl hyper::body::Body for Incoming {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        if let Some(wanted) = self.wanted.take() {
            let _ = wanted.send(());
        }
        if self.left == 0 {
            return Poll::Ready(None);
        }
        match std::task::ready!(self.chunks.poll_recv(cx)) {
            Some(Ok(data)) => {
                self.left = self.left.saturating_sub(data.len() as u64);
                Poll::Ready(Some(Ok(hyper::body::Frame::data(data))))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
            // The client left before all of it came.
            None => Poll::Ready(Some(Err(std::io::ErrorKind::UnexpectedEof.into()))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left)
    }
}

/// Now as an HTTP date (RFC 9110 §6.6.1: an origin server with a clock
/// sends one), formatted once a second per thread.
fn http_date() -> [u8; 29] {
    use std::cell::Cell;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local! {
        static CACHED: Cell<(u64, [u8; 29])> = const { Cell::new((u64::MAX, [0; 29])) };
    }
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with(|cached| {
        let (at, date) = cached.get();
        if at == second {
            return date;
        }
        let mut fresh = [0u8; 29];
        let text = httpdate::fmt_http_date(now);
        // Always 29 bytes (IMF-fixdate); a shorter one would only be cut.
        let n = text.len().min(29);
        fresh[..n].copy_from_slice(&text.as_bytes()[..n]);
        cached.set((second, fresh));
        fresh
    })
}

/// An answer cannot go on: the client left, or the body failed.
struct Gone;

/// One chunk of a chunked body.
fn chunk(data: &Bytes) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 12);
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// Headers this module writes itself.
fn is_framing(name: &HeaderName) -> bool {
    name == header::CONTENT_LENGTH
        || name == header::TRANSFER_ENCODING
        || name == header::CONNECTION
}

/// What parsing the bytes read so far gave.
enum Parse {
    /// A head arbor serves, and its length in bytes.
    Plain(Box<PlainHead>, usize),
    /// Not all of the head is in yet.
    Partial,
    /// One for hyper (or malformed: hyper answers it as it should).
    ForHyper,
}

fn parse_head(read: &[u8], config: &HttpConfig) -> Parse {
    let parsed = crate::head::parse(read, config.max_headers, config.max_header_bytes, |head| {
        plain_head(head, config)
    });
    match parsed {
        crate::head::Parsed::Complete(Some(head), len) => Parse::Plain(head, len),
        crate::head::Parsed::Partial => Parse::Partial,
        // hyper answers these as it should (400, 431, or serves them).
        _ => Parse::ForHyper,
    }
}

/// The head, if it is one arbor serves.
fn plain_head(parsed: &httparse::Request<'_, '_>, config: &HttpConfig) -> Option<Box<PlainHead>> {
    let (Some(method), Some(path), Some(1)) = (parsed.method, parsed.path, parsed.version) else {
        return None;
    };
    let method = Method::from_bytes(method.as_bytes()).ok()?;
    if method == Method::HEAD || method == Method::CONNECT {
        return None;
    }
    let uri = path.parse::<axum::http::Uri>().ok()?;
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    let mut body_len = None;
    let mut expects_continue = false;
    let mut close = false;
    for h in parsed.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return None;
        };
        if name == header::TRANSFER_ENCODING || name == header::UPGRADE {
            return None;
        }
        if name == header::CONTENT_LENGTH {
            // Digits only (RFC 9112 §6.3): `+5` would parse as a usize, and
            // a length read otherwise than a proxy reads it smuggles.
            let digits = value.as_bytes();
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let n = value.to_str().ok()?.parse::<usize>().ok()?;
            if body_len.is_some_and(|m| m != n) {
                return None;
            }
            body_len = Some(n);
        }
        if name == header::EXPECT {
            expects_continue = value.as_bytes().eq_ignore_ascii_case(b"100-continue");
        }
        if name == header::CONNECTION {
            close |= has_token(&value, "close");
        }
        headers.append(name, value);
    }
    let body_len = body_len.unwrap_or(0);
    if body_len > config.max_body_bytes {
        // hyper reads what it must of it before the 413, so that the
        // client sees the answer rather than a reset.
        return None;
    }
    Some(Box::new(PlainHead {
        method,
        uri,
        headers,
        body_len,
        expects_continue,
        close,
    }))
}

/// Whether a comma-separated header lists `token`.
fn has_token(value: &HeaderValue, token: &str) -> bool {
    value
        .to_str()
        .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// Hands the connection to hyper, with what was read, until it ends.
async fn hyper_serves(
    conn: Conn,
    router: Router,
    closing: watch::Sender<bool>,
    closing_rx: watch::Receiver<bool>,
    stopping: Stopping,
    drain: Duration,
) {
    let Conn {
        stream,
        client,
        read,
        config,
        ..
    } = conn;
    let service = routed(router, closing_rx, client);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes.max(8 << 10))
        .max_headers(config.max_headers);
    let io = Rewind {
        read: Bytes::from(read),
        stream,
    };
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopping.requested() => {
            // Streams with nothing in flight end now; the request in
            // progress finishes (up to the drain time); then close.
            let _ = closing.send(true);
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(drain, conn.as_mut()).await;
        }
    }
}

/// The router as hyper's service: each request learns its client and when
/// its connection is shut down.
fn routed(
    router: Router,
    closing: watch::Receiver<bool>,
    client: Option<ClientAddress>,
) -> impl hyper::service::Service<
    axum::http::Request<hyper::body::Incoming>,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(
        move |mut request: axum::http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(Closing(closing.clone()));
            if let Some(client) = client {
                request.extensions_mut().insert(client);
            }
            let mut router = router.clone();
            async move { tower_service::Service::call(&mut router, request).await }
        },
    )
}

/// Serves a TLS connection with hyper: HTTP/2 when the client chose it by
/// ALPN, HTTP/1.1 otherwise, each request told its client and when the
/// connection closes, as [`serve`] tells them.
pub(crate) async fn serve_tls(
    stream: crate::tls::Accepted,
    router: Router,
    config: Arc<HttpConfig>,
    stopping: Stopping,
    drain: Duration,
) {
    let (closing, closing_rx) = watch::channel(false);
    let client = stream.peer_addr().ok().map(|a| ClientAddress(a.ip()));
    let h2 = stream.is_h2();
    let service = routed(router, closing_rx, client);
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes.max(8 << 10))
        .max_headers(config.max_headers);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(256)
        // A connection whose peer is gone is found out and closed.
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = if h2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    };
    let io = hyper_util::rt::TokioIo::new(stream);
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopping.requested() => {
            let _ = closing.send(true);
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(drain, conn.as_mut()).await;
        }
    }
}

/// The socket, with the bytes already read from it put back in front.
struct Rewind {
    read: Bytes,
    stream: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.read.is_empty() {
            let n = self.read.len().min(buf.remaining());
            let head = self.read.split_to(n);
            buf.put_slice(&head);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &str) -> Parse {
        parse_head(raw.as_bytes(), &HttpConfig::default())
    }

    #[test]
    fn a_plain_post_is_served_here_with_its_length() {
        let raw = "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Length: 12\r\nConnection: keep-alive, close\r\n\r\n{\"a\":1}";
        let Parse::Plain(head, len) = parsed(raw) else {
            panic!("not served here");
        };
        assert_eq!(len, raw.len() - "{\"a\":1}".len());
        assert_eq!(head.body_len, 12);
        assert!(head.close);
        assert_eq!(head.method, Method::POST);
        assert_eq!(
            head.headers.get(header::HOST).map(|v| v.as_bytes()),
            Some(b"localhost".as_slice())
        );
    }

    #[test]
    fn what_arbor_does_not_serve_goes_to_hyper() {
        for raw in [
            "POST /mcp HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /mcp HTTP/1.0\r\n\r\n",
            "HEAD /mcp HTTP/1.1\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "GET /mcp HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GE T /mcp HTTP/1.1\r\n\r\n",
        ] {
            assert!(matches!(parsed(raw), Parse::ForHyper), "{raw:?}");
        }
        assert!(matches!(
            parsed("GET /mcp HTTP/1.1\r\nHost: a"),
            Parse::Partial
        ));
    }

    #[test]
    fn a_head_over_the_header_limits_goes_to_hyper_which_answers_431() {
        let config = HttpConfig {
            max_headers: 2,
            ..HttpConfig::default()
        };
        let raw = "GET /mcp HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert!(matches!(
            parse_head(raw.as_bytes(), &config),
            Parse::ForHyper
        ));
        let long = format!("GET /mcp HTTP/1.1\r\nA: {}\r\n\r\n", "x".repeat(9000));
        assert!(matches!(parsed(&long), Parse::ForHyper));
    }

    #[tokio::test]
    async fn an_idle_connection_task_holds_little() -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let _client = TcpStream::connect(addr).await?;
        let (stream, _) = listener.accept().await?;
        let mut size = 0;
        let serving = arbor_runtime::spawn_task(|stopping| {
            let serving = serve(
                stream,
                Router::new(),
                Arc::new(HttpConfig::default()),
                stopping,
                Duration::from_secs(1),
            );
            size = std::mem::size_of_val(&serving);
            async move {
                serving.await;
                Ok(())
            }
        });
        serving.kill();
        eprintln!("serve future: {size} bytes");
        // The exchange and hyper's connection are boxed: unboxed, this was
        // several KiB.
        assert!(size < 1024, "{size} bytes");
        Ok(())
    }

    /// A handler that answers `Connection: close` ends the connection:
    /// the header goes out once, and the socket closes after the answer,
    /// which carries the current `Date`.
    #[tokio::test]
    async fn a_handler_saying_connection_close_ends_the_connection_with_a_date(
    ) -> std::io::Result<()> {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut client = TcpStream::connect(addr).await?;
        let (stream, _) = listener.accept().await?;
        let router = Router::new().route(
            "/",
            axum::routing::get(|| async { ([(header::CONNECTION, "close")], "bye") }),
        );
        let serving = arbor_runtime::spawn_task(|stopping| async move {
            let config = Arc::new(HttpConfig::default());
            serve(stream, router, config, stopping, Duration::from_secs(1)).await;
            Ok(())
        });
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut answer))
            .await
            .map_err(|_| std::io::Error::other("the connection stayed open"))??;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert_eq!(answer.matches("connection: close").count(), 1, "{answer}");
        assert!(answer.ends_with("bye"), "{answer}");
        let date = answer
            .lines()
            .find_map(|l| l.strip_prefix("date: "))
            .ok_or_else(|| std::io::Error::other("no date header"))?;
        let sent = httpdate::parse_http_date(date).map_err(std::io::Error::other)?;
        let off = std::time::SystemTime::now()
            .duration_since(sent)
            .map_err(std::io::Error::other)?;
        assert!(off < Duration::from_secs(5), "{date}");
        let ended = tokio::time::timeout(Duration::from_secs(5), serving.wait()).await;
        assert_eq!(ended.ok(), Some(arbor_runtime::ExitReason::Normal));
        Ok(())
    }

    /// A connection serving `router` as a task process, and its client.
    async fn served(
        router: Router,
        drain: Duration,
    ) -> std::io::Result<(arbor_runtime::ProcessRef, TcpStream)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let client = TcpStream::connect(listener.local_addr()?).await?;
        let (stream, _) = listener.accept().await?;
        let process = arbor_runtime::spawn_task(move |stopping| async move {
            let config = Arc::new(HttpConfig::default());
            serve(stream, router, config, stopping, drain).await;
            Ok(())
        });
        Ok((process, client))
    }

    /// Reads until `until` is in what came (or the stream ends).
    async fn read_until(client: &mut TcpStream, until: &str) -> std::io::Result<String> {
        use tokio::io::AsyncReadExt;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains(until) {
            let n = tokio::time::timeout(Duration::from_secs(3), client.read(&mut buf))
                .await
                .map_err(|_| std::io::Error::other("no answer"))??;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&got).into_owned())
    }

    /// Part of a body comes with its head to a handler that never reads
    /// it, and the rest after: all of it is dropped, none of it is read as
    /// a request (its last bytes are one), and the next real request is
    /// answered on the same connection.
    #[tokio::test]
    async fn a_body_the_handler_ignores_is_never_read_as_a_request() -> std::io::Result<()> {
        let router = Router::new()
            .route(
                "/",
                axum::routing::post(|| async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    "slow"
                }),
            )
            .route("/real", axum::routing::get(|| async { "real" }));
        let (_process, mut client) = served(router, Duration::from_secs(1)).await?;
        let smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
        let body = format!("{}{smuggled}", "x".repeat(100 - smuggled.len()));
        let head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n";
        client
            .write_all(format!("{head}{}", &body[..40]).as_bytes())
            .await?;
        tokio::time::sleep(Duration::from_millis(30)).await;
        client.write_all(&body.as_bytes()[40..]).await?;
        let first = read_until(&mut client, "slow").await?;
        client
            .write_all(b"GET /real HTTP/1.1\r\nHost: x\r\n\r\n")
            .await?;
        let all = first + &read_until(&mut client, "real").await?;
        assert_eq!(all.matches("HTTP/1.1 200").count(), 2, "{all}");
        assert_eq!(all.matches("HTTP/1.1 ").count(), 2, "{all}");
        Ok(())
    }

    /// A streamed answer that begins while the connection drains is sent
    /// whole, its last chunk included, before the connection closes.
    #[tokio::test]
    async fn a_stream_begun_while_draining_is_sent_whole() -> std::io::Result<()> {
        let router = Router::new().route(
            "/",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                use futures_util::StreamExt;
                let chunks = futures_util::stream::iter(["one", "two"]).then(|c| async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, std::convert::Infallible>(Bytes::from_static(c.as_bytes()))
                });
                Body::from_stream(chunks)
            }),
        );
        let (process, mut client) = served(router, Duration::from_secs(2)).await?;
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        process.stop(arbor_runtime::ExitReason::Shutdown);
        let answer = read_until(&mut client, "0\r\n\r\n").await?;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("connection: close"), "{answer}");
        assert!(answer.contains("one") && answer.contains("two"), "{answer}");
        assert!(answer.ends_with("0\r\n\r\n"), "{answer}");
        let ended = tokio::time::timeout(Duration::from_secs(3), process.wait()).await;
        assert_eq!(ended.ok(), Some(arbor_runtime::ExitReason::Shutdown));
        Ok(())
    }

    #[test]
    fn chunks_carry_their_length_in_hex() {
        assert_eq!(
            chunk(&Bytes::from_static(&[b'x'; 26])),
            [b"1a\r\n".as_slice(), &[b'x'; 26], b"\r\n"].concat()
        );
    }
}
