//! What the transports serve, and their settings: one optional section per
//! transport (`None` serves none), and what they share.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::http::HttpConfig;
use crate::listen::{DEFAULT_BACKLOG, DEFAULT_SHARDS};
use crate::origin::OriginPolicy;

/// Transport settings. Every limit has a default; by default every
/// transport is served on loopback, each on a free port.
///
/// ```
/// use arbor_transports::{TransportConfig, TcpConfig};
///
/// // TCP only, on a port of our choosing.
/// let config = TransportConfig {
///     tcp: Some(TcpConfig { addr: "127.0.0.1:7000".parse().unwrap(), ..TcpConfig::default() }),
///     ..TransportConfig::none()
/// };
/// assert!(config.ws.is_none() && config.http.is_none());
/// ```
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Newline-delimited JSON-RPC over TCP.
    pub tcp: Option<TcpConfig>,
    /// WebSocket (path [`crate::ws::PATH`]).
    pub ws: Option<WsConfig>,
    /// Streamable HTTP and legacy HTTP+SSE.
    pub http: Option<HttpConfig>,
    /// The `Host` and `Origin` every HTTP and WebSocket listener accepts.
    /// Default: loopback names only.
    pub origins: OriginPolicy,
    /// The most connections served at once, TCP, WebSocket and HTTP
    /// together (one shared count: it bounds the process's memory, whichever
    /// way clients come in). A WebSocket connection counts from its accept,
    /// so handshakes in progress count too. More TCP connections are
    /// accepted and closed at once with a line saying why; more WebSocket
    /// and HTTP connections get an HTTP 503. `None` (the default): 100 000,
    /// or what the process's file descriptor limit holds if that is less
    /// (the limit less 32: listeners, the runtime, and room to accept a
    /// connection only to refuse it). `Some(n)`: `n`, lowered to what the
    /// descriptor limit holds with a warning.
    pub max_connections: Option<usize>,
    /// Connection supervisor shards, per transport. Default: 4.
    pub shards: usize,
    /// Connections the kernel queues for each listener before it accepts
    /// them; a dial past a full queue waits a SYN retransmit (1 s). Linux
    /// caps it at `net.core.somaxconn`. Default: 4096.
    pub listen_backlog: u32,
    /// Bind every listener with SO_REUSEPORT, so that several processes
    /// (the nodes of `arbor serve --nodes`) serve the same ports, the kernel
    /// spreading connections across them. Default: off.
    pub reuse_port: bool,
    /// TLS on every network listener (HTTPS with HTTP/2, `wss`, TCP over
    /// TLS), loaded by [`crate::tls::Tls::load`]; `None`: plain.
    pub tls: Option<crate::tls::Tls>,
    /// In a cluster: how HTTP requests for other nodes' sessions reach
    /// them ([`crate::http::forward`]); `None`: a node alone.
    pub forward: Option<Arc<dyn crate::http::forward::Forward>>,
}

impl TransportConfig {
    /// No transport at all: the start for serving only some.
    pub fn none() -> Self {
        TransportConfig {
            tcp: None,
            ws: None,
            http: None,
            ..TransportConfig::default()
        }
    }
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            tcp: Some(TcpConfig::default()),
            ws: Some(WsConfig::default()),
            http: Some(HttpConfig::default()),
            origins: OriginPolicy::default(),
            max_connections: None,
            shards: DEFAULT_SHARDS,
            listen_backlog: DEFAULT_BACKLOG,
            tls: None,
            forward: None,
            reuse_port: false,
        }
    }
}

/// TCP's settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TcpConfig {
    /// Where TCP listens. Default: `127.0.0.1:0` (a free port on loopback).
    pub addr: SocketAddr,
    /// A connection that has read and written no message for this long is
    /// closed. Zero turns it off. Default: 5 minutes.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// WebSocket's settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsConfig {
    /// Where WebSocket listens. Default: `127.0.0.1:0`.
    pub addr: SocketAddr,
    /// A connection that has read and written no message for this long is
    /// closed (1001). Zero turns it off. Default: 5 minutes.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A connection from which nothing has arrived for this long is sent a
    /// ping. Zero turns keep-alive pings off. Default: 30 s.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// A connection that sends nothing (no pong, no frame at all) for this
    /// long after a ping is closed with 1011. Default: 10 s.
    ///
    /// It also bounds the rest of a connection's end: a closing client has
    /// this long to take the close frame and hang up. And a frame the client
    /// does not take within `ping_interval + pong_timeout` (at least 1 s)
    /// drops the connection, as it is not reading.
    #[serde(with = "humantime_serde")]
    pub pong_timeout: Duration,
    /// How long a client may take over its opening handshake. Default: 10 s.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// The largest opening handshake head, in bytes (431 past it), as
    /// HTTP's. Default: 8 KiB.
    pub max_header_bytes: usize,
    /// The most headers in an opening handshake (431 past it). Default: 64.
    pub max_headers: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        let http = HttpConfig::default();
        WsConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            idle_timeout: Duration::from_secs(300),
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_header_bytes: http.max_header_bytes,
            max_headers: http.max_headers,
        }
    }
}
