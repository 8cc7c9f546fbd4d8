//! The whole transport tree: which transports it serves, its supervisors
//! and listeners, and where they end up bound.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arbor_mcp::McpServer;
use arbor_supervision::cascade::Cascade;
use arbor_supervision::{
    ChildSpec, ShardedDynamicSupervisor, Shutdown, StartError, Strategy, Supervisor, SupervisorRef,
};
use parking_lot::Mutex;

use crate::config::TransportConfig;
use crate::http;
use crate::listen::{Bind, Limit};
use crate::tcp;
use crate::ws;

/// What a stopping process is given past the drain it waits for: time for
/// the errors of what the drain cut short to go out.
pub(crate) const DRAIN_MARGIN: Duration = Duration::from_secs(1);

/// How long a session's process may take to stop: the server's
/// `drain_timeout` and [`DRAIN_MARGIN`], so that a longer drain is waited
/// for rather than cut short by its supervisor.
pub(crate) fn session_shutdown(server: &McpServer) -> Shutdown {
    Shutdown::Timeout(server.config().drain_timeout + DRAIN_MARGIN)
}

/// Where the transports listen; `None` for a transport not served.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// The TCP address, once bound.
    pub tcp: Option<SocketAddr>,
    /// The WebSocket address, once bound; it serves [`ws::PATH`].
    pub ws: Option<SocketAddr>,
    /// The HTTP address, once bound.
    pub http: Option<SocketAddr>,
    /// Whether every listener speaks TLS (`https`, `wss`, `tcp+tls`).
    pub tls: bool,
}

impl Endpoints {
    /// One line per endpoint served, with its full URL: Streamable HTTP,
    /// legacy SSE, WebSocket, TCP.
    pub fn urls(&self) -> Vec<String> {
        let mut urls = Vec::new();
        let (http, ws, tcp) = match self.tls {
            true => ("https", "wss", "tcp+tls"),
            false => ("http", "ws", "tcp"),
        };
        if let Some(addr) = self.http {
            urls.extend(http::urls(addr).map(|url| url.replacen("http", http, 1)));
        }
        if let Some(addr) = self.ws {
            urls.push(format!("{ws}://{addr}{}", ws::PATH));
        }
        if let Some(addr) = self.tcp {
            urls.push(format!("{tcp}://{addr}"));
        }
        urls
    }
}

/// The addresses the listeners of a [`tree`] have bound. Each listener
/// writes its own once bound, and binds it again after a restart.
#[derive(Clone, Debug)]
pub struct Bound {
    tcp: Option<Arc<Mutex<SocketAddr>>>,
    ws: Option<Arc<Mutex<SocketAddr>>>,
    http: Option<Arc<Mutex<SocketAddr>>>,
    cascades: Vec<Cascade>,
    tls: bool,
}

impl Bound {
    /// The addresses as they are now: the configured ones until the
    /// listeners have started, the bound ones (real ports) after.
    pub fn endpoints(&self) -> Endpoints {
        let now = |slot: &Option<Arc<Mutex<SocketAddr>>>| slot.as_ref().map(|a| *a.lock());
        Endpoints {
            tcp: now(&self.tcp),
            ws: now(&self.ws),
            http: now(&self.http),
            tls: self.tls,
        }
    }

    /// The cascades of the transports' sessions, one per transport
    /// ([`arbor_mcp::cascade`]); none when the server detects none. Whoever
    /// starts the tree as a child of another watches their
    /// [`Cascade::stopped`] for the andon, as [`start`] does.
    pub fn cascades(&self) -> &[Cascade] {
        &self.cascades
    }
}

/// Starts the transport tree for `server` and returns its supervisor and
/// where it listens.
///
/// # Examples
///
/// ```
/// use arbor_mcp::ServerBuilder;
/// use arbor_transports::{start, TcpConfig, TransportConfig};
///
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = ServerBuilder::new("hello", "1.0.0").build()?;
/// // TCP only, on a free port of loopback.
/// let config = TransportConfig {
///     tcp: Some(TcpConfig::default()),
///     ..TransportConfig::none()
/// };
/// let (tree, endpoints) = start(server, config).await?;
/// assert_eq!(endpoints.urls().len(), 1);
/// tree.shutdown().await; // drains every connection, then stops
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// A [`StartError`] when a listener cannot bind.
pub async fn start(
    server: McpServer,
    config: TransportConfig,
) -> Result<(SupervisorRef, Endpoints), StartError> {
    if let Some(auth) = server.auth() {
        // The revocation list holds before the first token is checked.
        auth.start();
    }
    let (tree, bound) = tree(server, config);
    let sup = tree.start().await?;
    crate::cascade::andon(bound.cascades.clone(), sup.process());
    Ok((sup, bound.endpoints()))
}

/// `sup`, counting its children's failures in `cascade` when there is one.
pub(crate) fn with_cascade<A: Send + 'static, H: arbor_supervision::ChildHandle>(
    sup: ShardedDynamicSupervisor<A, H>,
    cascade: Option<Cascade>,
) -> ShardedDynamicSupervisor<A, H> {
    match cascade {
        Some(cascade) => sup.cascade(cascade),
        None => sup,
    }
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
/// and where its listeners end up bound. Only the transports `config` names
/// are served.
pub fn tree(server: McpServer, config: TransportConfig) -> (Supervisor, Bound) {
    let limit = Limit::new(within_descriptors(config.max_connections));
    let slot = |addr: SocketAddr| Arc::new(Mutex::new(addr));
    let mut bound = Bound {
        tcp: config.tcp.as_ref().map(|c| slot(c.addr)),
        ws: config.ws.as_ref().map(|c| slot(c.addr)),
        http: config.http.as_ref().map(|c| slot(c.addr)),
        cascades: Vec::new(),
        tls: config.tls.is_some(),
    };
    if let Some(tls) = &config.tls {
        tls.watch();
    }
    // One per transport, shared by its shards: the sessions of one
    // transport fail together (one handler, one input), and isolating one
    // leaves the others serving.
    let mut cascade = |subtree: &str| {
        let cascade = crate::cascade::of(&server, subtree);
        bound.cascades.extend(cascade.clone());
        cascade
    };
    let tcp_cascade = cascade("tcp-connections");
    let ws_cascade = cascade("ws-connections");
    let http_cascade = cascade("http");
    let origins = Arc::new(config.origins.clone());
    let at = |addr: &Arc<Mutex<SocketAddr>>| Bind {
        addr: addr.clone(),
        backlog: config.listen_backlog,
        reuse_port: config.reuse_port,
    };
    // Each transport: its connections' supervisor and its listener.
    let mut served: Vec<(ChildSpec, ChildSpec)> = Vec::new();
    if let (Some(tcp), Some(addr)) = (&config.tcp, &bound.tcp) {
        let connections = with_cascade(
            ShardedDynamicSupervisor::new(config.shards, tcp::sessions(server.clone(), tcp)),
            tcp_cascade,
        );
        let listener = tcp::listener(
            server.clone(),
            at(addr),
            connections.handle(),
            limit.clone(),
            config.tls.clone(),
        );
        served.push((connections.into_child_spec("tcp-connections"), listener));
    }
    if let (Some(ws), Some(addr)) = (&config.ws, &bound.ws) {
        let settings = ws::Settings::new(&server, ws);
        let connections = with_cascade(
            ShardedDynamicSupervisor::new(config.shards, ws::sessions(server.clone(), settings)),
            ws_cascade,
        );
        let listener = ws::listener(
            server.clone(),
            at(addr),
            connections.handle(),
            limit.clone(),
            settings,
            origins.clone(),
            config.tls.clone(),
        );
        served.push((connections.into_child_spec("ws-connections"), listener));
    }
    if let (Some(http), Some(addr)) = (&config.http, &bound.http) {
        served.push(http::transport(
            server.clone(),
            http.clone(),
            config.shards,
            at(addr),
            limit.clone(),
            origins.clone(),
            http_cascade,
            config.tls.clone(),
            config.forward.clone(),
        ));
    }
    // The transports drain together at shutdown: one after another, their
    // drain times added up past what a client waits.
    let mut connections = Supervisor::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(5))
        .stop_together();
    let mut listeners = Vec::new();
    for (sup, listener) in served {
        connections = connections.child(sup);
        listeners.push(listener);
    }
    // rest_for_one, connection supervisors first and listeners last: a
    // listener restart leaves every live connection alone.
    let mut tree = Supervisor::new(Strategy::RestForOne)
        .name("transports")
        .intensity(10, Duration::from_secs(5))
        .child(connections.into_child_spec("connections"));
    for listener in listeners {
        tree = tree.child(listener);
    }
    // Last: its restart restarts nothing else.
    if let Some(guard) = crate::shedding::worker(server) {
        tree = tree.child(guard);
    }
    (tree, bound)
}
