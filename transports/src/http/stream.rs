//! Server-sent events: what a stream carries, and the response body that
//! carries it to one client.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use tokio::sync::mpsc;

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

    fn into_event(self) -> Event {
        let mut event = Event::default().data(&*self.data);
        if let Some(id) = self.id {
            event = event.id(id);
        }
        if let Some(name) = self.name {
            event = event.event(name);
        }
        if let Some(retry) = self.retry {
            event = event.retry(retry);
        }
        event
    }
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

/// An SSE response that sends what arrives on `events` until every sender
/// is gone, with keep-alive comments every `keep_alive`; `guard` is dropped
/// with the body.
pub(crate) fn sse_response(
    first: Vec<SseEvent>,
    events: mpsc::Receiver<SseEvent>,
    keep_alive: Duration,
    guard: OnDrop,
) -> Response {
    let body = events_stream(first, events, guard);
    let mut response = Sse::new(body)
        .keep_alive(KeepAlive::new().interval(keep_alive).text(""))
        .into_response();
    // Proxies must pass events on as they come.
    response.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    response
}

fn events_stream(
    first: Vec<SseEvent>,
    events: mpsc::Receiver<SseEvent>,
    guard: OnDrop,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let first = stream::iter(first.into_iter().map(|e| Ok(e.into_event())));
    let rest = stream::unfold((events, guard), |(mut events, guard)| async move {
        let event = events.recv().await?;
        Some((Ok(event.into_event()), (events, guard)))
    });
    futures_util::StreamExt::chain(first, rest)
}
