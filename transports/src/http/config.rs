//! HTTP's settings, with their defaults.

use std::net::SocketAddr;
use std::time::Duration;

/// HTTP settings. Every limit has a default.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Where HTTP listens: Streamable HTTP on [`PATH`](super::PATH), legacy
    /// HTTP+SSE on [`SSE_PATH`](super::SSE_PATH). Default: `127.0.0.1:0` (a
    /// free port on loopback).
    pub addr: SocketAddr,
    /// The largest request head (request line and headers), in bytes;
    /// larger heads are answered 431. Default: 8 KiB, the least hyper
    /// allows (smaller settings count as 8 KiB).
    pub max_header_bytes: usize,
    /// The most headers in one request (431 past it). Default: 64.
    pub max_headers: usize,
    /// The largest request body; larger ones are answered 413.
    /// Default: 4 MiB.
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers; also how
    /// long an idle keep-alive connection stays open. Default: 10 s.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body (408 after).
    /// Default: 30 s.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// A handshake-era session with no open stream, no request in flight and
    /// no request for this long is ended. Zero turns it off. Default: 5
    /// minutes.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// The most handshake-era sessions (Streamable HTTP and legacy SSE
    /// together) alive at once; sessions outlive connections, so this, not
    /// the connection limit, bounds them. Past it `initialize` (or `GET
    /// /sse`) is answered 503. Default: 10 000.
    pub max_sessions: usize,
    /// How often an SSE stream with nothing to say sends a comment; also
    /// how long a 2026-07-28 answer may take before its POST turns into a
    /// stream. Zero turns both off. Default: 15 s.
    #[serde(with = "humantime_serde")]
    pub sse_keep_alive: Duration,
    /// The reconnection delay suggested on priming events. Default: 500 ms.
    #[serde(with = "humantime_serde")]
    pub sse_retry: Duration,
    /// Events queued for one SSE body before a slow client's stream is
    /// detached (it resumes from the replay buffer). Default: 64.
    pub stream_buffer: usize,
    /// Events a session keeps for resumption. Default: 256.
    pub replay_events: usize,
    /// Bytes of events a session keeps for resumption. Default: 256 KiB.
    pub replay_bytes: usize,
    /// How long an event is kept for resumption. Default: 5 minutes.
    #[serde(with = "humantime_serde")]
    pub replay_age: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_header_bytes: 8 << 10,
            max_headers: 64,
            max_body_bytes: 4 << 20,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            max_sessions: 10_000,
            sse_keep_alive: Duration::from_secs(15),
            sse_retry: Duration::from_millis(500),
            stream_buffer: 64,
            replay_events: 256,
            replay_bytes: 256 << 10,
            replay_age: Duration::from_secs(300),
        }
    }
}
