//! TCP: newline-delimited JSON-RPC, the same framing and limits as stdio.
//!
//! This module also assembles the whole transport tree ([`start`], [`tree`])
//! and its settings ([`TransportConfig`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arbor_mcp::transport::{start_connection, TransportError};
use arbor_mcp::McpServer;
use arbor_supervision::{
    DynamicSupervisor, ShardedDynamicSupervisor, StartError, Strategy, Supervisor, SupervisorRef,
};
use parking_lot::Mutex;
use tokio::net::TcpStream;

use crate::http::{self, HttpConfig};
use crate::listen::{listener, HandOver, Limit};
use crate::origin::OriginPolicy;
use crate::ws;

/// Transport settings. Every limit has a default.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Where TCP listens. Default: `127.0.0.1:0` (a free port on loopback).
    pub tcp: SocketAddr,
    /// Where WebSocket listens (path [`ws::PATH`]). Default: `127.0.0.1:0`.
    pub ws: SocketAddr,
    /// Where HTTP listens: Streamable HTTP on [`http::PATH`], legacy
    /// HTTP+SSE on [`http::SSE_PATH`]. Default: `127.0.0.1:0`.
    pub http: SocketAddr,
    /// HTTP limits and settings.
    pub http_config: HttpConfig,
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
    /// A TCP or WebSocket connection that has read and written no message
    /// for this long is closed (HTTP sessions have
    /// [`HttpConfig::idle_timeout`]). Zero turns it off. Default: 5 minutes.
    pub idle_timeout: Duration,
    /// A WebSocket connection from which nothing has arrived for this long
    /// is sent a ping. Zero turns keep-alive pings off. Default: 30 s.
    pub ws_ping_interval: Duration,
    /// A WebSocket connection that sends nothing (no pong, no frame at all)
    /// for this long after a ping is closed with 1011. Default: 10 s.
    ///
    /// It also bounds the rest of a connection's end: a closing client has
    /// this long to take the close frame and hang up. And a frame the client
    /// does not take within `ws_ping_interval + ws_pong_timeout` (at least
    /// 1 s) drops the connection, as it is not reading.
    pub ws_pong_timeout: Duration,
    /// How long a WebSocket client may take over its opening handshake.
    /// Default: 10 s.
    pub ws_handshake_timeout: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            tcp: SocketAddr::from(([127, 0, 0, 1], 0)),
            ws: SocketAddr::from(([127, 0, 0, 1], 0)),
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_config: HttpConfig::default(),
            origins: OriginPolicy::default(),
            max_connections: None,
            shards: 4,
            idle_timeout: Duration::from_secs(300),
            ws_ping_interval: Duration::from_secs(30),
            ws_pong_timeout: Duration::from_secs(10),
            ws_handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Where the transports listen.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// The TCP address, once bound.
    pub tcp: SocketAddr,
    /// The WebSocket address, once bound; it serves [`ws::PATH`].
    pub ws: SocketAddr,
    /// The HTTP address, once bound.
    pub http: SocketAddr,
}

impl Endpoints {
    /// One line per endpoint, with its full URL.
    pub fn urls(&self) -> Vec<String> {
        let [streamable, legacy] = http::urls(self.http);
        vec![
            streamable,
            legacy,
            format!("ws://{}{}", self.ws, ws::PATH),
            format!("tcp://{}", self.tcp),
        ]
    }
}

/// The addresses the listeners of a [`tree`] have bound. Each listener
/// writes its own once bound, and binds it again after a restart.
#[derive(Clone, Debug)]
pub struct Bound {
    tcp: Arc<Mutex<SocketAddr>>,
    ws: Arc<Mutex<SocketAddr>>,
    http: Arc<Mutex<SocketAddr>>,
}

impl Bound {
    /// The addresses as they are now: the configured ones until the
    /// listeners have started, the bound ones (real ports) after.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            tcp: *self.tcp.lock(),
            ws: *self.ws.lock(),
            http: *self.http.lock(),
        }
    }
}

/// The read buffer of one TCP connection, in bytes.
const READ_BUFFER: usize = 1024;

/// What a TCP client past the connection limit reads before the close.
fn tcp_refusal(max: usize) -> String {
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{{\"code\":-32603,\"message\":\"server at its connection limit\",\"data\":{{\"limit\":\"max_connections\",\"max\":{max}}}}}}}\n"
    )
}

/// Starts the transport tree for `server` and returns its supervisor and
/// where it listens.
///
/// # Errors
/// A [`StartError`] when a listener cannot bind.
pub async fn start(
    server: McpServer,
    config: TransportConfig,
) -> Result<(SupervisorRef, Endpoints), StartError> {
    let (tree, bound) = tree(server, config);
    let sup = tree.start().await?;
    Ok((sup, bound.endpoints()))
}

/// Descriptors kept free of connections: listeners, the runtime's own, and
/// room to accept a connection only to refuse it.
const SPARE_DESCRIPTORS: u64 = 32;

/// The connection limit when none is configured.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;

/// The connection limit, lowered to what the process's descriptor limit can
/// hold: past it `accept` fails and clients wait unanswered instead of being
/// refused. Only a configured limit that had to be lowered is worth a
/// warning.
fn within_descriptors(configured: Option<usize>) -> usize {
    let max = configured.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    #[cfg(unix)]
    if let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        let room = usize::try_from(soft.saturating_sub(SPARE_DESCRIPTORS).max(1)).unwrap_or(max);
        if room < max && configured.is_none() {
            tracing::debug!(
                target: "arbor::transports",
                max_connections = room,
                descriptor_limit = soft,
                "connection limit set by the file descriptor limit"
            );
            return room;
        }
        if room < max {
            tracing::warn!(
                target: "arbor::transports",
                max_connections = max,
                lowered_to = room,
                descriptor_limit = soft,
                "max_connections lowered to fit the file descriptor limit (raise it with ulimit -n)"
            );
            return room;
        }
    }
    max
}

/// The transport tree, to start alone ([`start`]) or as a child of another,
/// and where its listeners end up bound.
pub fn tree(server: McpServer, config: TransportConfig) -> (Supervisor, Bound) {
    let limit = Limit::new(within_descriptors(config.max_connections));
    let bound = Bound {
        tcp: Arc::new(Mutex::new(config.tcp)),
        ws: Arc::new(Mutex::new(config.ws)),
        http: Arc::new(Mutex::new(config.http)),
    };

    let tcp_server = server.clone();
    let idle = Some(config.idle_timeout).filter(|t| !t.is_zero());
    let sessions = DynamicSupervisor::temporary("session", move |stream: TcpStream| {
        let server = tcp_server.clone();
        async move {
            // Replies are single lines: do not hold them back for more.
            let _ = stream.set_nodelay(true);
            let (read, write) = stream.into_split();
            // A small read buffer: lines longer than it are read in pieces,
            // and an idle connection should not hold tokio's default 8 KiB.
            let read = tokio::io::BufReader::with_capacity(READ_BUFFER, read);
            let connection = start_connection(server, read, write, idle).await?;
            Ok::<_, TransportError>(connection.process)
        }
    });
    let tcp_connections = ShardedDynamicSupervisor::new(config.shards, sessions);
    let tcp_handle = tcp_connections.handle();
    let tcp_limit = limit.clone();
    let tcp_listener = listener("tcp-listener", bound.tcp.clone(), move || HandOver {
        connections: tcp_handle.clone(),
        limit: tcp_limit.clone(),
        refusal: tcp_refusal,
    });

    let origins = Arc::new(config.origins.clone());
    let ws_settings = ws::Settings::new(&server, &config);
    let ws_connections =
        ShardedDynamicSupervisor::new(config.shards, ws::sessions(server.clone(), ws_settings));
    let ws_listener = ws::listener(
        bound.ws.clone(),
        ws_connections.handle(),
        limit.clone(),
        ws_settings,
        origins.clone(),
    );

    let http_config = Arc::new(config.http_config.clone());
    let http_sessions = ShardedDynamicSupervisor::new(
        config.shards,
        http::sessions(server.clone(), http_config.clone()),
    );
    let http_requests =
        ShardedDynamicSupervisor::new(config.shards, http::requests(server.clone()));
    let router = http::router(
        server.clone(),
        http_config.clone(),
        origins.clone(),
        http_sessions.handle(),
        http_requests.handle(),
    );
    let http_connections = ShardedDynamicSupervisor::new(
        config.shards,
        // Past the sessions' drain, so the errors for what it cut short
        // still go out before the connection closes.
        http::connections(
            router,
            http_config,
            server.config().drain_timeout + Duration::from_secs(1),
        ),
    );
    let http_handle = http_connections.handle();
    let http_listener = listener("http-listener", bound.http.clone(), move || HandOver {
        connections: http_handle.clone(),
        limit: limit.clone(),
        refusal: http::refusal,
    });

    // HTTP connections stop first, so their streams drain while the
    // sessions they wait on still run.
    let http = Supervisor::new(Strategy::RestForOne)
        .intensity(10, Duration::from_secs(5))
        .child(http_sessions.into_child_spec("http-sessions"))
        .child(http_requests.into_child_spec("http-requests"))
        .child(http_connections.into_child_spec("http-connections"));
    // The transports drain together at shutdown: one after another, their
    // drain times added up past what a client waits.
    let connections = Supervisor::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(5))
        .stop_together()
        .child(tcp_connections.into_child_spec("tcp-connections"))
        .child(ws_connections.into_child_spec("ws-connections"))
        .child(http.into_child_spec("http"));
    // rest_for_one, connection supervisors first and listeners last: a
    // listener restart leaves every live connection alone.
    let tree = Supervisor::new(Strategy::RestForOne)
        .name("transports")
        .intensity(10, Duration::from_secs(5))
        .child(connections.into_child_spec("connections"))
        .child(tcp_listener)
        .child(ws_listener)
        .child(http_listener);
    (tree, bound)
}
