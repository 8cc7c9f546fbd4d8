//! HTTP: Streamable HTTP for both protocol eras on [`PATH`], and the legacy
//! HTTP+SSE transport (2024-11-05) on [`SSE_PATH`] and [`MESSAGE_PATH`].
//!
//! * 2026-07-28: every POST stands alone. Its headers must agree with its
//!   body (`headers.rs`); it is served by a request process of its own under
//!   the `http-requests` supervisor, answered as JSON, or as an SSE stream
//!   when notifications come first (`subscriptions/listen` always). A
//!   client that closes the stream cancels the request.
//! * 2025-03-26 to 2025-11-25: `initialize` opens a session
//!   (`Mcp-Session-Id`, 128 random bits) under the `http-sessions`
//!   supervisor, found through a [`ShardedRegistry`]; see `session.rs` for
//!   its streams and resumption. `DELETE` ends it; an ended or unknown
//!   session is a 404.
//! * Every request: `Host` and `Origin` must name an allowed host (DNS
//!   rebinding; a middleware over every route, `guard.rs`), headers fit
//!   [`HttpConfig::max_header_bytes`] (431) and bodies
//!   [`HttpConfig::max_body_bytes`] (413; the body extractor, `body.rs`).
//!
//! Each TCP connection is a process under the `http-connections`
//! supervisor, serving HTTP/1.1: plain requests by arbor's own reader and
//! writer (`http1.rs`, so an idle or streaming connection keeps no
//! buffers), anything else by hyper.

mod auth;
mod body;
mod config;
mod connection;
mod door;
pub mod forward;
mod guard;
mod handshake;
pub(crate) mod headers;
mod http1;
mod legacy;
mod modern;
mod respond;
mod session;
mod stream;

use auth::Granted;
use body::{AcceptsBoth, JsonBody};
pub use config::HttpConfig;
pub(crate) use connection::{connections, refusal};
use guard::{accepts, cors, origin_guard};
use handshake::{delete_mcp, deliver, drains, get_mcp, open_session, post_handshake, Undelivered};
use legacy::{open_legacy, post_legacy};
use modern::post_modern;
use respond::{
    busy, json_response, no_batches, not_allowed, refuse, rpc_error, session_not_found, status_for,
    stream_response,
};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use arbor_mcp::inbound::{InboundBudget, Spent};
use arbor_mcp::jsonrpc::{
    code, decode, ErrorObject, Id, Incoming, Message, Response as RpcResponse,
};
use arbor_mcp::outbox::{outbox, FrameKind, OutboxReceiver};
use arbor_mcp::rate::Requester;
use arbor_mcp::session::{envelope_version, start_session, RateChecks, SessionMsg};
use arbor_mcp::{Era, McpServer, Method, NotificationMethod, ProtocolVersion};
use arbor_runtime::{ActorRef, ExitReason, ShardedRegistry, SpawnError};
use arbor_supervision::cascade::Cascade;
use arbor_supervision::{
    ChildSpec, DynamicSupervisor, ShardedDynamicRef, ShardedDynamicSupervisor, Shutdown, Started,
    Strategy, Supervisor,
};
use axum::extract::{Extension, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::listen::Limit;
use crate::origin::OriginPolicy;
use door::{isolated, overloaded, rate_limited, turned_away, Client};
use session::{Answer, Attached, EventId, HttpSessionMsg, Mode, Refusal, STANDALONE};
use stream::{sse_response, AtClose, ClientAddress, Closing, OnDrop, SseEvent};

/// The Streamable HTTP endpoint.
pub const PATH: &str = "/mcp";
/// The legacy transport's event stream.
pub const SSE_PATH: &str = "/sse";
/// Where legacy clients POST their messages.
pub const MESSAGE_PATH: &str = "/message";

/// The session header.
const SESSION_ID: &str = "mcp-session-id";

/// The 2026-07-28 header checks, public only for `fuzz/fuzz_targets/http_headers.rs`.
#[doc(hidden)]
pub fn fuzz_header_checks(
    headers: &HeaderMap,
    request: &arbor_mcp::jsonrpc::Request,
    version: &str,
    server: &McpServer,
) -> Result<(), ErrorObject> {
    headers::check(headers, request, version, server)
}

/// The `http-requests` supervisor: a 2026-07-28 request process hands
/// back its session and its output.
type RequestSup = ShardedDynamicRef<Option<IpAddr>, (ActorRef<SessionMsg>, OutboxReceiver)>;

/// What an HTTP session is started with: its mode, its client's address.
type Opening = (Mode, Option<IpAddr>);

/// A started HTTP session: its HTTP process (the one supervised) and its
/// MCP session.
type OpenedSession = (ActorRef<HttpSessionMsg>, ActorRef<SessionMsg>);

/// The `http-sessions` supervisor: a handshake-era session of a mode hands
/// back its HTTP process and its MCP session.
type SessionSup = ShardedDynamicRef<Opening, OpenedSession>;

/// The `http-sessions` supervisor, before it starts.
type SessionSupervisor = ShardedDynamicSupervisor<Opening, OpenedSession>;

/// The `http-requests` supervisor, before it starts.
type RequestSupervisor =
    ShardedDynamicSupervisor<Option<IpAddr>, (ActorRef<SessionMsg>, OutboxReceiver)>;

/// Everything a handler needs.
#[derive(Clone)]
struct Http {
    server: McpServer,
    config: Arc<HttpConfig>,
    /// The `Host` and `Origin` accepted.
    origins: Arc<OriginPolicy>,
    /// Streamable HTTP sessions by `Mcp-Session-Id`.
    sessions: ShardedRegistry<String>,
    /// Legacy HTTP+SSE sessions by `sessionId`: a separate name space, so
    /// an id works only on the transport that issued it.
    legacy_sessions: ShardedRegistry<String>,
    /// Sessions alive, against `max_sessions`.
    session_limit: Limit,
    session_sup: SessionSup,
    request_sup: RequestSup,
    /// The cluster's way to the other nodes' sessions, in a cluster.
    forward: Option<Arc<dyn forward::Forward>>,
}

/// The template of the `http-requests` supervisor: one process per
/// 2026-07-28 request, from a client at this address.
pub(crate) fn requests(
    server: McpServer,
) -> DynamicSupervisor<Option<IpAddr>, (ActorRef<SessionMsg>, OutboxReceiver)> {
    let shutdown = crate::tree::session_shutdown(&server);
    DynamicSupervisor::temporary("http-request", move |client: Option<IpAddr>| {
        let server = server.clone();
        async move {
            let (out, received) = outbox(&server.config().outbox);
            let session = start_session(server, out, RateChecks::ByTransport(client)).await?;
            Ok::<_, SpawnError>((session, received))
        }
    })
    .shutdown(shutdown)
}

/// The template of the `http-sessions` supervisor.
pub(crate) fn sessions(
    server: McpServer,
    config: Arc<HttpConfig>,
) -> DynamicSupervisor<Opening, OpenedSession> {
    let shutdown = crate::tree::session_shutdown(&server);
    DynamicSupervisor::temporary("http-session", move |(mode, client)| {
        session::start(server.clone(), mode, client, config.clone())
    })
    .shutdown(shutdown)
}

/// The router serving every HTTP endpoint.
pub(crate) fn router(
    server: McpServer,
    config: Arc<HttpConfig>,
    origins: Arc<OriginPolicy>,
    session_sup: SessionSup,
    request_sup: RequestSup,
    forward: Option<Arc<dyn forward::Forward>>,
) -> Router {
    let session_limit = Limit::new(config.max_sessions);
    let state = Http {
        server,
        config,
        origins,
        sessions: ShardedRegistry::new(),
        legacy_sessions: ShardedRegistry::new(),
        session_limit,
        session_sup,
        request_sup,
        forward: forward.clone(),
    };
    // HEAD would open a stream (and, on /sse, a session) for nothing; any
    // other method is refused naming what is served.
    const MCP_METHODS: &str = "GET, POST, DELETE";
    let router = Router::new()
        .route(
            PATH,
            post(post_mcp)
                .get(get_mcp)
                .delete(delete_mcp)
                .head(|| not_allowed(MCP_METHODS))
                .fallback(|| not_allowed(MCP_METHODS)),
        )
        .route(
            SSE_PATH,
            get(open_legacy)
                .head(|| not_allowed("GET"))
                .fallback(|| not_allowed("GET")),
        )
        .route(
            MESSAGE_PATH,
            post(post_legacy).fallback(|| not_allowed("POST")),
        )
        // The MCP routes need a token when the server checks them; the
        // metadata that says how to get one does not.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        // Another node's session is its business, token and all.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forward::foreign_sessions,
        ))
        .route(arbor_mcp::auth::METADATA_PATH, get(auth::metadata))
        .route(
            &format!("{}/{{*resource}}", arbor_mcp::auth::METADATA_PATH),
            get(auth::metadata),
        )
        // Host and Origin first, for every route; CORS outside them, so a
        // preflight from an allowed page is answered.
        .layer(axum::middleware::from_fn_with_state(
            state.origins.clone(),
            origin_guard,
        ))
        .layer(cors(&state.origins))
        .with_state(state);
    if let Some(forward) = &forward {
        // So that other nodes reach this node's sessions.
        forward.serve_here(forward::LocalHttp(router.clone()));
    }
    router
}

/// Whether a message is written for 2026-07-28: its envelope or the
/// protocol version header says so.
fn is_modern(message: &Incoming, headers: &HeaderMap) -> bool {
    let header_modern = headers::text(headers, headers::PROTOCOL_VERSION)
        .ok()
        .flatten()
        .and_then(ProtocolVersion::parse)
        .is_some_and(|v| v.era() == Era::Modern);
    let body_modern = match message {
        Incoming::Single(Message::Request(r)) => r
            .params
            .as_ref()
            .and_then(|p| p.get("_meta"))
            .and_then(|m| m.get(arbor_mcp::session::meta::PROTOCOL_VERSION))
            .is_some(),
        _ => false,
    };
    header_modern || body_modern
}

/// `POST /mcp`.
async fn post_mcp(
    State(http): State<Http>,
    closing: Option<Extension<Closing>>,
    Client(client): Client,
    grant: Granted,
    headers: HeaderMap,
    _: AcceptsBoth,
    JsonBody(bytes): JsonBody,
) -> Response {
    let message = match decode(&bytes, &http.server.config().limits, true) {
        Ok(message) => message,
        Err(rejected) => return rpc_error(StatusCode::BAD_REQUEST, rejected.id, rejected.error),
    };
    if let Some(forbidden) = auth::scope_refusal(&http, &grant, &message) {
        return forbidden;
    }
    let closing = closing.map(|Extension(c)| c);
    if is_modern(&message, &headers) {
        // Sessionless: only the address's limit.
        let from = Requester {
            address: client,
            session: None,
        };
        if let Some(refusal) = turned_away(&http, from, &message) {
            return refusal;
        }
        return post_modern(http, headers, message, bytes, client, closing, grant).await;
    }
    uncancelled(post_handshake(
        http, headers, message, bytes, client, closing, grant,
    ))
    .await
}

/// Runs `work` to its end even if the client goes away meanwhile: a session
/// opened, or a stream opened for a request, must go on to deliver the
/// request, or it would wait for an answer that never comes.
async fn uncancelled(
    work: impl std::future::Future<Output = Response> + Send + 'static,
) -> Response {
    tokio::spawn(work)
        .await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Where HTTP listens, for [`crate::Endpoints`].
pub(crate) fn urls(addr: SocketAddr) -> [String; 2] {
    [
        format!("http://{addr}{PATH}"),
        format!("http://{addr}{SSE_PATH}"),
    ]
}

/// The session and request supervisors, and the router that hands work
/// to them: what the transport tree and [`mount`] both serve.
fn served(
    server: &McpServer,
    config: &Arc<HttpConfig>,
    shards: usize,
    origins: Arc<OriginPolicy>,
    cascade: Option<Cascade>,
    forward: Option<Arc<dyn forward::Forward>>,
) -> (SessionSupervisor, RequestSupervisor, Router) {
    // Sessions and 2026-07-28 requests count together: either era's
    // clients hit the same handlers.
    let sessions = crate::tree::with_cascade(
        ShardedDynamicSupervisor::new(shards, self::sessions(server.clone(), config.clone())),
        cascade.clone(),
    );
    let requests = crate::tree::with_cascade(
        ShardedDynamicSupervisor::new(shards, self::requests(server.clone())),
        cascade,
    );
    let router = self::router(
        server.clone(),
        config.clone(),
        origins,
        sessions.handle(),
        requests.handle(),
        forward,
    );
    (sessions, requests, router)
}

/// HTTP's part of the transport tree: its supervisor (sessions, 2026-07-28
/// requests, connections) and its listener.
#[allow(clippy::too_many_arguments)] // One per part of the tree it builds.
pub(crate) fn transport(
    server: McpServer,
    config: HttpConfig,
    shards: usize,
    at: crate::listen::Bind,
    limit: Limit,
    origins: Arc<OriginPolicy>,
    cascade: Option<Cascade>,
    tls: Option<crate::tls::Tls>,
    forward: Option<Arc<dyn forward::Forward>>,
) -> (ChildSpec, ChildSpec) {
    let config = Arc::new(config);
    let (sessions, requests, router) = served(&server, &config, shards, origins, cascade, forward);
    let connections = ShardedDynamicSupervisor::new(
        shards,
        // Past the sessions' drain, so the errors for what it cut short
        // still go out before the connection closes.
        self::connections(
            router,
            config,
            server.config().drain_timeout + crate::tree::DRAIN_MARGIN,
        ),
    );
    let handle = connections.handle();
    let listener = crate::listen::listener("http-listener", at, move || crate::listen::HandOver {
        connections: handle.clone(),
        limit: limit.clone(),
        server: server.clone(),
        carries: crate::listen::Carries::Requests,
        refusal,
        tls: tls.clone().map(|tls| (tls, crate::tls::Alpn::Http)),
    });
    // HTTP connections stop first, so their streams drain while the
    // sessions they wait on still run.
    let http = Supervisor::new(Strategy::RestForOne)
        .intensity(10, Duration::from_secs(5))
        .child(sessions.into_child_spec("http-sessions"))
        .child(requests.into_child_spec("http-requests"))
        .child(connections.into_child_spec("http-connections"));
    (http.into_child_spec("http"), listener)
}

/// Streamable HTTP and the legacy transport, mounted in an axum app of the
/// caller's: the routes ([`PATH`], [`SSE_PATH`], [`MESSAGE_PATH`]) to merge
/// into it, and the tree that supervises their sessions and 2026-07-28
/// requests. The app serves the connections; `config.addr` is not used.
///
/// # Examples
/// ```
/// use arbor_mcp::{CallToolResult, ServerBuilder, Tool};
/// use arbor_transports::http::{mount, HttpConfig};
/// use arbor_transports::OriginPolicy;
/// use axum::routing::get;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = ServerBuilder::new("hello", "1.0.0")
///     .tool(Tool::new("hi"), |(), _ctx| async move { Ok(CallToolResult::text("hi")) })
///     .build()?;
/// let mcp = mount(server, HttpConfig::default(), OriginPolicy::default()).await?;
/// let app = axum::Router::new()
///     .route("/health", get(|| async { "ok" }))
///     .merge(mcp.router());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let serving = tokio::spawn(async move { axum::serve(listener, app).await });
/// // ... clients use http://ADDR/mcp ...
/// serving.abort();
/// mcp.shutdown().await;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// A [`StartError`](arbor_supervision::StartError) when the tree cannot
/// start.
pub async fn mount(
    server: McpServer,
    config: HttpConfig,
    origins: OriginPolicy,
) -> Result<Mounted, arbor_supervision::StartError> {
    let config = Arc::new(config);
    let shards = crate::listen::DEFAULT_SHARDS;
    let cascade = crate::cascade::of(&server, "http");
    let (sessions, requests, router) = served(
        &server,
        &config,
        shards,
        Arc::new(origins),
        cascade.clone(),
        None,
    );
    let tree = Supervisor::new(Strategy::RestForOne)
        .name("http")
        .intensity(10, Duration::from_secs(5))
        .child(sessions.into_child_spec("http-sessions"))
        .child(requests.into_child_spec("http-requests"))
        .start()
        .await?;
    crate::cascade::andon(cascade.into_iter().collect(), tree.process());
    Ok(Mounted { router, tree })
}

/// arbor's HTTP routes in a caller's app, and the tree behind them (see
/// [`mount`]).
#[derive(Debug)]
#[must_use = "the routes serve nothing until merged into an app"]
pub struct Mounted {
    router: Router,
    tree: arbor_supervision::SupervisorRef,
}

impl Mounted {
    /// The routes, to merge into (or nest in) the app.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The tree supervising the sessions and requests: for the kill
    /// hooks, the tree view, a stop.
    pub fn tree(&self) -> &arbor_supervision::SupervisorRef {
        &self.tree
    }

    /// Stops the sessions (each answers what it has in flight, within the
    /// server's drain timeout) and the tree.
    pub async fn shutdown(self) -> ExitReason {
        self.tree.shutdown().await
    }
}
