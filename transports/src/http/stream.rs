//! Server-sent events: what a stream carries, and the response body that
//! carries it to one client.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use arbor_runtime::channel;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use futures_util::stream::{self, StreamExt};
use tokio::sync::watch;

/// One event for a client's SSE stream.
#[derive(Clone, Debug)]
pub(crate) struct SseEvent {
    /// The event id, where the stream is resumable.
    pub(crate) id: Option<String>,
    /// The event type (`endpoint`, `message`), if not the default.
    pub(crate) name: Option<&'static str>,
    /// The data: one JSON-RPC message, or empty for a priming event.
    pub(crate) data: Arc<str>,
    /// The reconnection delay to suggest.
    pub(crate) retry: Option<Duration>,
}

impl SseEvent {
    pub(crate) fn data(data: Arc<str>) -> Self {
        SseEvent {
            id: None,
            name: None,
            data,
            retry: None,
        }
    }

    /// The event as written on the wire. Empty data is written as an empty
    /// `data:` line, so clients see the event (a priming event's id).
    fn encode(&self) -> Bytes {
        let mut out = String::with_capacity(self.data.len() + 48);
        if let Some(id) = &self.id {
            out.push_str("id: ");
            out.push_str(id);
            out.push('\n');
        }
        if let Some(name) = self.name {
            out.push_str("event: ");
            out.push_str(name);
            out.push('\n');
        }
        if let Some(retry) = self.retry {
            out.push_str(&format!("retry: {}\n", retry.as_millis()));
        }
        for line in self.data.split('\n') {
            out.push_str("data: ");
            out.push_str(line.strip_suffix('\r').unwrap_or(line));
            out.push('\n');
        }
        out.push('\n');
        Bytes::from(out)
    }
}

/// Set when the connection is shut down: streams that wait for nothing in
/// flight (standalone GET streams, listens) end then, so the connection can
/// close within the drain time. A legacy GET stream carries its session's
/// answers: its session drains instead, and the stream ends with it.
#[derive(Clone, Debug)]
pub(crate) struct Closing(pub(crate) watch::Receiver<bool>);

/// The client's IP address, put on each request by its connection, for
/// the per-address rate limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientAddress(pub(crate) std::net::IpAddr);

impl Closing {
    /// Completes once the connection is shutting down.
    pub(crate) async fn closed(mut self) {
        let _ = self.0.wait_for(|closing| *closing).await;
    }
}

/// The next event (`Some(None)` once the senders are gone), or `None` after
/// `keep_alive` of silence; a zero `keep_alive` waits for ever.
pub(crate) async fn recv_or_keep_alive<T>(
    events: &mut channel::Receiver<T>,
    keep_alive: Duration,
) -> Option<Option<T>> {
    if keep_alive.is_zero() {
        return Some(events.recv().await);
    }
    tokio::time::timeout(keep_alive, events.recv()).await.ok()
}

/// Runs `on_drop` when the body that owns it is dropped: the client has
/// gone, or the stream has ended.
pub(crate) struct OnDrop(Option<Box<dyn FnOnce() + Send>>);

impl OnDrop {
    pub(crate) fn new(f: impl FnOnce() + Send + 'static) -> Self {
        OnDrop(Some(Box::new(f)))
    }
}

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// What a stream does when its connection is shut down.
pub(crate) enum AtClose {
    /// It ends: it waits for nothing in flight (a standalone GET stream).
    End,
    /// This runs once (its session starts to drain) and the stream goes on
    /// carrying what the drain answers, ending when its senders are gone.
    Drain(Box<dyn FnOnce() + Send>),
}

/// An SSE response that sends `first`, then what arrives on `events` until
/// every sender is gone, with a keep-alive comment after `keep_alive` of
/// silence; when `closing` fires, as its [`AtClose`] says. `guard` is
/// dropped with the body.
pub(crate) fn sse_response(
    first: Vec<SseEvent>,
    // Boxed: a stream held up by a slow client queues pointers.
    events: channel::Receiver<Box<SseEvent>>,
    keep_alive: Duration,
    guard: OnDrop,
    closing: Option<(Closing, AtClose)>,
) -> Response {
    let first = stream::iter(first.into_iter().map(|e| Ok::<_, Infallible>(e.encode())));
    let (closing, at_close) = closing.unzip();
    let closed = Box::pin(async move {
        match closing {
            Some(closing) => closing.closed().await,
            None => std::future::pending().await,
        }
    });
    let rest = stream::unfold(
        (events, guard, closed, at_close),
        move |(mut events, guard, mut closed, mut at_close)| async move {
            let chunk = loop {
                tokio::select! {
                    next = recv_or_keep_alive(&mut events, keep_alive) => break match next {
                        Some(Some(event)) => event.encode(),
                        Some(None) => return None,
                        None => Bytes::from_static(b":\n\n"),
                    },
                    _ = &mut closed, if at_close.is_some() => match at_close.take() {
                        Some(AtClose::Drain(drain)) => drain(),
                        _ => return None,
                    },
                }
            };
            Some((Ok(chunk), (events, guard, closed, at_close)))
        },
    );
    let body = Body::from_stream(first.chain(rest));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies must pass events on as they come.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
