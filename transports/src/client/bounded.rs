//! Bounds on what a server sends the client over HTTP: a JSON body, and
//! each event of an SSE stream, may be at most so many bytes. Past the
//! bound the body or stream is given up with [`TooLarge`], before the bytes
//! are held: a hostile or broken server cannot make the client buffer
//! without end.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::Response;

/// What was larger than the bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the server sent a message larger than {0} bytes")]
pub(crate) struct TooLarge(pub(crate) usize);

/// Why a bounded body or stream ended early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// Reading failed.
    #[error("reading the answer: {0}")]
    Read(#[from] reqwest::Error),
    /// Past the bound.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
}

/// The whole body, if it is at most `max` bytes (a `Content-Length` past
/// it is refused before anything is read).
pub(crate) async fn body(mut response: Response, max: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(TooLarge(max).into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max {
            return Err(TooLarge(max).into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The body's bytes, ending with [`TooLarge`] once one SSE event (its
/// bytes up to and with the blank line that ends it) passes `max`.
pub(crate) fn events(
    response: Response,
    max: usize,
) -> impl Stream<Item = Result<Bytes, BodyError>> + Send + Unpin {
    let mut boundary = EventBoundary::default();
    let mut over = false;
    response.bytes_stream().map(move |chunk| {
        if over {
            return Err(TooLarge(max).into());
        }
        let chunk = chunk?;
        if boundary.feed(&chunk) > max {
            over = true;
            return Err(TooLarge(max).into());
        }
        Ok(chunk)
    })
}

/// Whether an SSE error is the bound being passed.
pub(crate) fn is_too_large(error: &sse_stream::Error) -> Option<TooLarge> {
    match error {
        sse_stream::Error::Body(e) => match e.downcast_ref::<BodyError>() {
            Some(BodyError::TooLarge(t)) => Some(*t),
            _ => None,
        },
        _ => None,
    }
}

/// Counts the bytes of the event being read: an event ends at a blank line
/// (`\n\n`, `\r\n\r\n` or `\r\r`, split across chunks or not).
#[derive(Debug, Default)]
struct EventBoundary {
    /// Bytes of the current event so far.
    since: usize,
    /// Whether the last byte ended a line (so one more line end is blank).
    at_line_start: bool,
    /// Whether the last byte was `\r` (a `\n` after it ends the same line).
    after_cr: bool,
    /// Whether the current event has ended: the next byte starts another,
    /// unless it is the `\n` of the `\r\n` that ended it.
    ended: bool,
}

impl EventBoundary {
    /// Feeds a chunk; the largest an event grew to in it (its blank line
    /// included), so an event begun and ended in one chunk counts too.
    fn feed(&mut self, chunk: &[u8]) -> usize {
        let mut peak = 0;
        for &b in chunk {
            let crlf = b == b'\n' && self.after_cr;
            if self.ended && !crlf {
                self.since = 0;
                self.ended = false;
            }
            self.since += 1;
            peak = peak.max(self.since);
            match b {
                b'\n' if crlf => self.after_cr = false,
                b'\r' | b'\n' => {
                    self.ended = self.at_line_start;
                    self.at_line_start = !self.at_line_start;
                    self.after_cr = b == b'\r';
                }
                _ => {
                    self.at_line_start = false;
                    self.after_cr = false;
                }
            }
        }
        peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_counted_from_the_last_blank_line_across_chunks_and_line_ends() {
        for blank in ["\n\n", "\r\n\r\n", "\r\r"] {
            let n = blank.len();
            let mut b = EventBoundary::default();
            assert_eq!(b.feed(b"data: 12345"), 11, "{blank:?}");
            // The blank line split across two chunks ends the event.
            let (first, second) = blank.split_at(n / 2);
            b.feed(first.as_bytes());
            assert_eq!(b.feed(second.as_bytes()), 11 + n, "{blank:?}");
            assert_eq!(b.feed(b"data: x\n"), 8, "{blank:?}");
            // One line end is not a blank line: the event goes on.
            assert_eq!(b.feed(b"data: y"), 15, "{blank:?}");
            // A whole event in one chunk counts at its largest; the next
            // starts from nothing.
            let mut b = EventBoundary::default();
            let event = format!("data: 12345{blank}");
            assert_eq!(b.feed(event.as_bytes()), 11 + n, "{blank:?}");
            assert_eq!(b.feed(b"ab"), 2, "{blank:?}");
        }
    }
}
