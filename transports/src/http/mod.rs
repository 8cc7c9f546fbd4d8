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
//!   rebinding), headers fit [`HttpConfig::max_header_bytes`] (431) and
//!   bodies [`HttpConfig::max_body_bytes`] (413).
//!
//! Each TCP connection is a process under the `http-connections`
//! supervisor, serving HTTP/1.1 with hyper.

mod config;
mod connection;
mod guard;
pub(crate) mod headers;
mod legacy;
mod modern;
mod session;
mod stream;

pub use config::HttpConfig;
pub(crate) use connection::{connections, refusal};
use guard::{accepts, check_origin, cors};
use legacy::{open_legacy, post_legacy};
use modern::post_modern;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arbor_mcp::inbound::{InboundBudget, Spent};
use arbor_mcp::jsonrpc::{
    code, decode, ErrorObject, Id, Incoming, Message, Response as RpcResponse,
};
use arbor_mcp::outbox::{outbox, FrameKind, OutboxReceiver};
use arbor_mcp::session::{envelope_version, start_session, SessionMsg};
use arbor_mcp::{Era, McpServer, Method, NotificationMethod, ProtocolVersion};
use arbor_runtime::{
    spawn, Actor, ActorRef, Context, ExitReason, Flow, ShardedRegistry, SpawnError,
};
use arbor_supervision::{
    ChildSpec, DynamicSupervisor, ShardedDynamicRef, ShardedDynamicSupervisor, Started, Strategy,
    Supervisor,
};
use axum::body::Body;
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
use session::{Answer, Attached, EventId, HttpSessionMsg, Mode, Refusal, STANDALONE};
use stream::{sse_response, AtClose, Closing, OnDrop, SseEvent};

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
type RequestSup = ShardedDynamicRef<(), (ActorRef<SessionMsg>, OutboxReceiver)>;

/// The `http-sessions` supervisor: a handshake-era session of a mode hands
/// back its HTTP process (the one supervised) and its MCP session.
type SessionSup = ShardedDynamicRef<Mode, (ActorRef<HttpSessionMsg>, ActorRef<SessionMsg>)>;

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
}

/// The template of the `http-requests` supervisor: one process per
/// 2026-07-28 request.
pub(crate) fn requests(
    server: McpServer,
) -> DynamicSupervisor<(), (ActorRef<SessionMsg>, OutboxReceiver)> {
    DynamicSupervisor::temporary("http-request", move |(): ()| {
        let server = server.clone();
        async move {
            let (out, received) = outbox(&server.config().outbox);
            let session = start_session(server, out).await?;
            Ok::<_, SpawnError>((session, received))
        }
    })
}

/// The template of the `http-sessions` supervisor.
pub(crate) fn sessions(
    server: McpServer,
    config: Arc<HttpConfig>,
) -> DynamicSupervisor<Mode, (ActorRef<HttpSessionMsg>, ActorRef<SessionMsg>)> {
    DynamicSupervisor::temporary("http-session", move |mode: Mode| {
        session::start(server.clone(), mode, config.clone())
    })
}

/// The router serving every HTTP endpoint.
pub(crate) fn router(
    server: McpServer,
    config: Arc<HttpConfig>,
    origins: Arc<OriginPolicy>,
    session_sup: SessionSup,
    request_sup: RequestSup,
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
    };
    // HEAD would open a stream (and, on /sse, a session) for nothing; any
    // other method is refused naming what is served.
    const MCP_METHODS: &str = "GET, POST, DELETE";
    Router::new()
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
        .layer(cors(&state.origins))
        .with_state(state)
}

/// A JSON-RPC error as an HTTP response.
fn rpc_error(status: StatusCode, id: Option<Id>, error: ErrorObject) -> Response {
    let body = Message::Response(RpcResponse::error(id, error)).to_value();
    json_response(status, body.to_string())
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A transport-level refusal (`-32000`, as SDKs send), with `data`.
fn refuse(status: StatusCode, message: &str, data: Value) -> Response {
    rpc_error(
        status,
        None,
        ErrorObject::new(-32000, message).with_data(data),
    )
}

/// The HTTP status for a JSON-RPC error, as Streamable HTTP maps them.
fn status_for(error_code: i64) -> StatusCode {
    match error_code {
        code::PARSE_ERROR
        | code::INVALID_REQUEST
        | code::HEADER_MISMATCH
        | code::MISSING_REQUIRED_CLIENT_CAPABILITY
        | code::UNSUPPORTED_PROTOCOL_VERSION => StatusCode::BAD_REQUEST,
        code::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

/// The checks every POST passes: origin, media types, body size.
async fn read_post(
    http: &Http,
    headers: &HeaderMap,
    body: Body,
    streamable: bool,
) -> Result<Vec<u8>, Box<Response>> {
    check_origin(headers, &http.origins)?;
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json_body {
        return Err(Box::new(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type: Content-Type must be application/json",
            json!({ "contentType": headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) }),
        )));
    }
    if streamable
        && !(accepts(headers, "application/json") && accepts(headers, "text/event-stream"))
    {
        return Err(Box::new(refuse(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: Accept must list application/json and text/event-stream",
            json!({ "accept": headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) }),
        )));
    }
    let max = http.config.max_body_bytes;
    let deadline = http.config.body_read_timeout;
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, max)).await {
        Ok(Ok(bytes)) => Ok(bytes.to_vec()),
        Ok(Err(e)) => {
            let error = e.into_inner();
            // Over the limit, or a body that is not well formed (a broken
            // chunked encoding, a connection cut mid-body).
            if error.is::<http_body_util::LengthLimitError>() {
                Err(Box::new(refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Payload Too Large",
                    json!({ "limit": "max_body_bytes", "max": max }),
                )))
            } else {
                Err(Box::new(refuse(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: the body could not be read",
                    json!({ "detail": error.to_string() }),
                )))
            }
        }
        Err(_) => Err(Box::new(refuse(
            StatusCode::REQUEST_TIMEOUT,
            "Request Timeout: the body did not arrive in time",
            json!({ "limit": "body_read_timeout", "ms": deadline.as_millis() as u64 }),
        ))),
    }
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
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match read_post(&http, &headers, body, true).await {
        Ok(bytes) => bytes,
        Err(refusal) => return *refusal,
    };
    let message = match decode(&bytes, &http.server.config().limits, true) {
        Ok(message) => message,
        Err(rejected) => return rpc_error(StatusCode::BAD_REQUEST, rejected.id, rejected.error),
    };
    let closing = closing.map(|Extension(c)| c);
    if is_modern(&message, &headers) {
        return post_modern(http, headers, message, bytes, closing).await;
    }
    uncancelled(post_handshake(http, headers, message, bytes, closing)).await
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

/// A handshake-era POST to `/mcp`.
async fn post_handshake(
    http: Http,
    headers: HeaderMap,
    message: Incoming,
    bytes: Vec<u8>,
    closing: Option<Closing>,
) -> Response {
    let session_id = headers.get(SESSION_ID).and_then(|v| v.to_str().ok());
    if let Some(id) = session_id {
        return match http
            .sessions
            .whereis_actor::<HttpSessionMsg>(&id.to_string())
        {
            Some(session) => {
                handshake(&http, &headers, session, message, bytes, None, closing).await
            }
            None => session_not_found(id),
        };
    }
    let initialize = matches!(&message, Incoming::Single(Message::Request(r)) if r.method == Method::Initialize.as_str());
    if !initialize {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Bad Request: Mcp-Session-Id header is required (or send a 2026-07-28 request with its _meta envelope)",
            json!({ "header": "Mcp-Session-Id" }),
        );
    }
    let (session, id) = match open_session(&http, Mode::Streamable).await {
        Ok(opened) => opened,
        Err(refusal) => return refusal,
    };
    handshake(&http, &headers, session, message, bytes, Some(id), closing).await
}

fn session_not_found(id: &str) -> Response {
    rpc_error(
        StatusCode::NOT_FOUND,
        None,
        ErrorObject::new(-32001, "Session not found").with_data(json!({ "sessionId": id })),
    )
}

/// Starts an HTTP session and registers it under a fresh id.
async fn open_session(
    http: &Http,
    mode: Mode,
) -> Result<(ActorRef<HttpSessionMsg>, String), Response> {
    let Some(place) = http.session_limit.acquire() else {
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: server at its session limit",
            json!({ "limit": "max_sessions", "max": http.session_limit.max() }),
        ));
    };
    let unavailable = |e: String| {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the session could not start",
            json!({ "reason": e }),
        )
    };
    let started = http.session_sup.start_child(mode).await;
    let (session, _) = started
        .map_err(|e| unavailable(e.to_string()))?
        .running()
        .ok_or_else(|| unavailable("no session".into()))?;
    place.hold_until_exit(&session.process());
    // 128 bits from a CSPRNG (rand's thread generator, seeded by the OS).
    let id: String = rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let registry = match mode {
        Mode::Streamable => &http.sessions,
        Mode::Legacy => &http.legacy_sessions,
    };
    registry
        .register(id.clone(), &session.process())
        .map_err(|e| unavailable(e.to_string()))?;
    Ok((session, id))
}

/// Whether streams of a request with these headers (or this `initialize`)
/// open with a priming event: only from 2025-11-25, which clients of older
/// versions cannot parse.
fn primed(headers: &HeaderMap, message: &Incoming) -> bool {
    let version = match message {
        Incoming::Single(Message::Request(r)) if r.method == Method::Initialize.as_str() => r
            .params
            .as_ref()
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str)
            .and_then(ProtocolVersion::parse),
        _ => headers::text(headers, headers::PROTOCOL_VERSION)
            .ok()
            .flatten()
            .and_then(ProtocolVersion::parse),
    };
    version.is_some_and(|v| v >= ProtocolVersion::V2025_11_25)
}

/// A request within a handshake-era session: its `MCP-Protocol-Version`,
/// when sent, must be a handshake-era version (400 otherwise, also when
/// repeated or unreadable).
fn check_session_version(headers: &HeaderMap) -> Result<(), Box<Response>> {
    let version = match headers::text(headers, headers::PROTOCOL_VERSION) {
        Ok(version) => version,
        Err(error) => return Err(Box::new(rpc_error(StatusCode::BAD_REQUEST, None, error))),
    };
    match version {
        Some(v) if ProtocolVersion::parse(v).is_none_or(|v| v.era() != Era::Handshake) => {
            Err(Box::new(refuse(
                StatusCode::BAD_REQUEST,
                "Bad Request: unsupported MCP-Protocol-Version",
                json!({ "requested": v, "supported": ProtocolVersion::supported(Era::Handshake) }),
            )))
        }
        _ => Ok(()),
    }
}

/// A POST to a handshake-era session.
async fn handshake(
    http: &Http,
    headers: &HeaderMap,
    session: ActorRef<HttpSessionMsg>,
    message: Incoming,
    bytes: Vec<u8>,
    new_id: Option<String>,
    closing: Option<Closing>,
) -> Response {
    if new_id.is_none() {
        if let Err(refusal) = check_session_version(headers) {
            return *refusal;
        }
    }
    // `None`: nothing in the message is answered.
    let (requests, answer) = match &message {
        Incoming::Single(Message::Request(r)) => (vec![r.id.clone()], Some(Answer::Each)),
        Incoming::Single(_) => (Vec::new(), None),
        Incoming::Batch(items) => {
            let ids: Vec<Id> = items
                .iter()
                .filter_map(|m| match m {
                    Ok(Message::Request(r)) => Some(r.id.clone()),
                    _ => None,
                })
                .collect();
            // Rejected entries are answered in the batch's array too.
            let certain = items.iter().any(|m| m.is_err());
            let answer = (certain || !ids.is_empty()).then_some(Answer::Array { certain });
            (ids, answer)
        }
    };
    let gone = || session_not_found(new_id.as_deref().unwrap_or("?"));
    let batch = matches!(message, Incoming::Batch(_));
    let Some(answer) = answer else {
        return match deliver(&session, batch, bytes).await {
            Ok(()) => {
                cancelled(&session, &message);
                StatusCode::ACCEPTED.into_response()
            }
            Err(Undelivered::Gone) => gone(),
            Err(Undelivered::Busy(spent)) => busy(http, spent),
            Err(Undelivered::NoBatches(version)) => no_batches(version),
        };
    };
    // The session learns its version from the `initialize` that opens it.
    let negotiated = match &message {
        Incoming::Single(Message::Request(r)) if new_id.is_some() => r
            .params
            .as_ref()
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str)
            .map(ProtocolVersion::negotiate_handshake),
        _ => None,
    };
    let (reply, attached) = oneshot::channel();
    let opened = session
        .send(HttpSessionMsg::Open {
            requests,
            answer,
            primed: primed(headers, &message),
            batch,
            negotiated,
            bytes,
            reply,
        })
        .await;
    let attached = match opened {
        Ok(()) => attached.await,
        Err(_) => return gone(),
    };
    let (attached, received) = match attached {
        Ok(Ok(opened)) => opened,
        Ok(Err(Refusal::Busy(spent))) => return busy(http, spent),
        Ok(Err(Refusal::NoBatches(version))) => return no_batches(version),
        Ok(Err(Refusal::DuplicateId(id))) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                Some(id.clone()),
                ErrorObject::new(
                    code::INVALID_REQUEST,
                    "a request with this id is already in flight in this session",
                )
                .with_data(json!({ "id": id })),
            )
        }
        Ok(Err(_)) | Err(_) => return gone(),
    };
    if attached
        .session
        .send(SessionMsg::Incoming(received))
        .await
        .is_err()
    {
        return gone();
    }
    // A batch may cancel other requests beside its own.
    cancelled(&session, &message);
    // Answers in flight are drained, not cut: at the connection's shutdown
    // the MCP session drains (up to its drain timeout, then answers what is
    // left with an error), and the stream ends once its requests have
    // their answers.
    let closing = closing.map(|c| (c, drains(&attached.session)));
    let mut response = stream_response(session, attached, Vec::new(), &http.config, closing);
    if let Some(id) = new_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert(SESSION_ID, id);
    }
    response
}

/// At the connection's shutdown, `session` drains: its requests in flight
/// answer, up to its drain timeout, and the rest get an error.
fn drains(session: &ActorRef<SessionMsg>) -> AtClose {
    let session = session.clone();
    AtClose::Drain(Box::new(move || {
        let _ = session.send_system(SessionMsg::Shutdown);
    }))
}

/// A cancelled request gets no answer: its stream ends now (a batch's waits
/// for the others' array).
fn cancelled(session: &ActorRef<HttpSessionMsg>, message: &Incoming) {
    for id in cancelled_requests(message) {
        let _ = session.send_system(HttpSessionMsg::Cancelled(id));
    }
}

/// The requests a message's `notifications/cancelled` name.
fn cancelled_requests(message: &Incoming) -> Vec<Id> {
    let items: Vec<&Message> = match message {
        Incoming::Single(m) => vec![m],
        Incoming::Batch(items) => items.iter().filter_map(|m| m.as_ref().ok()).collect(),
    };
    items
        .into_iter()
        .filter_map(|m| match m {
            Message::Notification(n) if n.method == NotificationMethod::Cancelled.as_str() => {
                n.params.as_ref()
            }
            _ => None,
        })
        .filter_map(|p| p.get("requestId"))
        .filter_map(|id| serde_json::from_value::<Id>(id.clone()).ok())
        .collect()
}

/// How often, and how many times, a GET that finds the standalone stream
/// attached asks again before it is refused (250 ms in all).
const CONFLICT_RECHECKS: u32 = 10;
const CONFLICT_RECHECK_EVERY: Duration = Duration::from_millis(25);

/// `GET /mcp`: a session's standalone stream, or a resumed one.
async fn get_mcp(
    State(http): State<Http>,
    closing: Option<Extension<Closing>>,
    headers: HeaderMap,
) -> Response {
    uncancelled(get_stream(http, closing, headers)).await
}

/// A session's standalone stream, or a resumed one.
async fn get_stream(
    http: Http,
    closing: Option<Extension<Closing>>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = check_origin(&headers, &http.origins) {
        return *refusal;
    }
    let Some(id) = headers.get(SESSION_ID).and_then(|v| v.to_str().ok()) else {
        // 2026-07-28 has no GET stream: `subscriptions/listen` replaces it.
        return method_not_allowed();
    };
    if let Err(refusal) = check_session_version(&headers) {
        return *refusal;
    }
    if !accepts(&headers, "text/event-stream") {
        return refuse(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: Accept must list text/event-stream",
            json!({ "accept": headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) }),
        );
    }
    let Some(session) = http
        .sessions
        .whereis_actor::<HttpSessionMsg>(&id.to_string())
    else {
        return session_not_found(id);
    };
    let after = match headers.get("last-event-id").map(|v| v.to_str()) {
        None => None,
        Some(text) => match text.ok().and_then(EventId::parse) {
            Some(after) => Some(after),
            None => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: Last-Event-ID is not an event of this server",
                    json!({ "header": "Last-Event-ID" }),
                )
            }
        },
    };
    let primed = headers::text(&headers, headers::PROTOCOL_VERSION)
        .ok()
        .flatten()
        .and_then(ProtocolVersion::parse)
        .is_some_and(|v| v >= ProtocolVersion::V2025_11_25);
    // A client that closes its stream and opens another at once may be
    // faster than its old connection's end is noticed (a moment later, on
    // another task): a stream still attached is asked about again briefly
    // before the 409.
    let mut conflicts = 0;
    let answer = loop {
        let (reply, answer) = oneshot::channel();
        if session
            .send(HttpSessionMsg::Get {
                after,
                primed,
                reply,
            })
            .await
            .is_err()
        {
            return session_not_found(id);
        }
        match answer.await {
            Ok(Err(Refusal::Conflict)) if conflicts < CONFLICT_RECHECKS => {
                conflicts += 1;
                tokio::time::sleep(CONFLICT_RECHECK_EVERY).await;
            }
            answer => break answer,
        }
    };
    match answer {
        Err(_) => session_not_found(id),
        Ok(Err(Refusal::Conflict)) => refuse(
            StatusCode::CONFLICT,
            "Conflict: only one standalone SSE stream is allowed per session",
            json!({ "sessionId": id }),
        ),
        Ok(Err(Refusal::UnknownEvent)) => refuse(
            StatusCode::BAD_REQUEST,
            "Bad Request: Last-Event-ID names no stream of this session",
            json!({ "header": "Last-Event-ID" }),
        ),
        Ok(Err(Refusal::Evicted)) => refuse(
            StatusCode::BAD_REQUEST,
            "Bad Request: events after Last-Event-ID are no longer kept; resuming would lose them",
            json!({ "header": "Last-Event-ID", "limit": ["replay_events", "replay_bytes", "replay_age"] }),
        ),
        // Only POSTs open streams for requests (and take budget).
        Ok(Err(Refusal::DuplicateId(_) | Refusal::Busy(_) | Refusal::NoBatches(_))) => {
            session_not_found(id)
        }
        Ok(Ok(attached)) => {
            // The standalone stream waits for nothing; a resumed request
            // stream carries its request's answer, so its session drains.
            let at_close = if attached.stream == STANDALONE {
                AtClose::End
            } else {
                drains(&attached.session)
            };
            let closing = closing.map(|Extension(c)| (c, at_close));
            stream_response(session, attached, Vec::new(), &http.config, closing)
        }
    }
}

/// Why a message could not be handed to a session.
enum Undelivered {
    /// The session has ended.
    Gone,
    /// The session (or the server) holds its inbound budget's worth already.
    Busy(Spent),
    /// A batch, in a session whose version has none.
    NoBatches(ProtocolVersion),
}

/// 400 for a batch where the negotiated version has none, on the POST that
/// sent it.
fn no_batches(version: ProtocolVersion) -> Response {
    rpc_error(
        StatusCode::BAD_REQUEST,
        None,
        ErrorObject::new(
            code::INVALID_REQUEST,
            "JSON-RPC batches are not supported by this protocol version",
        )
        .with_data(json!({ "protocolVersion": version.as_str() })),
    )
}

/// Hands a message that opens no stream to the session's MCP session, with
/// its share of the session's inbound budget. An HTTP client is not made to
/// wait for room (its POST would hold its body meanwhile, however many it
/// sends): it is told to retry.
async fn deliver(
    session: &ActorRef<HttpSessionMsg>,
    batch: bool,
    bytes: Vec<u8>,
) -> Result<(), Undelivered> {
    let (reply, answer) = oneshot::channel();
    session
        .send(HttpSessionMsg::Touch { batch, reply })
        .await
        .map_err(|_| Undelivered::Gone)?;
    let (mcp, inbound) = match answer.await {
        Ok(Ok(touched)) => touched,
        Ok(Err(Refusal::NoBatches(version))) => return Err(Undelivered::NoBatches(version)),
        Ok(Err(_)) | Err(_) => return Err(Undelivered::Gone),
    };
    let received = inbound
        .try_admit(bytes)
        .map_err(|(_, spent)| Undelivered::Busy(spent))?;
    mcp.send(SessionMsg::Incoming(received))
        .await
        .map_err(|_| Undelivered::Gone)
}

/// 429: the session's inbound budget is spent for now.
fn busy(http: &Http, spent: Spent) -> Response {
    let (message, data) = match spent {
        Spent::Connection => (
            "Too Many Requests: the session holds its inbound budget's worth of messages",
            json!({ "limit": "max_inbound_bytes", "max": http.server.config().max_inbound_bytes }),
        ),
        Spent::Server => (
            "Too Many Requests: the server holds its memory budget's worth of messages",
            json!({ "limit": "max_buffered_bytes", "max": http.server.memory().max_bytes() }),
        ),
    };
    let mut response = refuse(StatusCode::TOO_MANY_REQUESTS, message, data);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// The SSE response for a stream the session attached: `before`, then what
/// the session routes to it; the session hears when the client goes.
fn stream_response(
    session: ActorRef<HttpSessionMsg>,
    attached: Attached,
    mut before: Vec<SseEvent>,
    config: &HttpConfig,
    closing: Option<(Closing, AtClose)>,
) -> Response {
    let (stream, attach) = (attached.stream, attached.attach);
    let detach = OnDrop::new(move || {
        let _ = session.send_system(HttpSessionMsg::Detached { stream, attach });
    });
    before.extend(attached.first);
    sse_response(
        before,
        attached.events,
        config.sse_keep_alive,
        detach,
        closing,
    )
}

/// 405, with the methods the path serves.
async fn not_allowed(allow: &'static str) -> Response {
    let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn method_not_allowed() -> Response {
    let mut response = refuse(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method Not Allowed: without a session, only POST is served",
        json!({ "allow": ["POST"] }),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
    response
}

/// `DELETE /mcp`: ends a session.
async fn delete_mcp(State(http): State<Http>, headers: HeaderMap) -> Response {
    if let Err(refusal) = check_origin(&headers, &http.origins) {
        return *refusal;
    }
    let Some(id) = headers.get(SESSION_ID).and_then(|v| v.to_str().ok()) else {
        return method_not_allowed();
    };
    if let Err(refusal) = check_session_version(&headers) {
        return *refusal;
    }
    // Unregistered first: a request that comes now finds no session.
    let deleted = http
        .sessions
        .unregister(&id.to_string())
        .and_then(|p| ActorRef::<HttpSessionMsg>::from_process(&p));
    match deleted {
        Some(session) => {
            let _ = session.send_system(HttpSessionMsg::Delete);
            StatusCode::OK.into_response()
        }
        None => session_not_found(id),
    }
}

/// Where HTTP listens, for [`crate::Endpoints`].
pub(crate) fn urls(addr: SocketAddr) -> [String; 2] {
    [
        format!("http://{addr}{PATH}"),
        format!("http://{addr}{SSE_PATH}"),
    ]
}

/// HTTP's part of the transport tree: its supervisor (sessions, 2026-07-28
/// requests, connections) and its listener.
pub(crate) fn transport(
    server: McpServer,
    config: HttpConfig,
    shards: usize,
    addr: Arc<parking_lot::Mutex<SocketAddr>>,
    limit: Limit,
    origins: Arc<OriginPolicy>,
) -> (ChildSpec, ChildSpec) {
    let config = Arc::new(config);
    let sessions =
        ShardedDynamicSupervisor::new(shards, self::sessions(server.clone(), config.clone()));
    let requests = ShardedDynamicSupervisor::new(shards, self::requests(server.clone()));
    let router = self::router(
        server.clone(),
        config.clone(),
        origins,
        sessions.handle(),
        requests.handle(),
    );
    let connections = ShardedDynamicSupervisor::new(
        shards,
        // Past the sessions' drain, so the errors for what it cut short
        // still go out before the connection closes.
        self::connections(
            router,
            config,
            server.config().drain_timeout + Duration::from_secs(1),
        ),
    );
    let handle = connections.handle();
    let listener =
        crate::listen::listener("http-listener", addr, move || crate::listen::HandOver {
            connections: handle.clone(),
            limit: limit.clone(),
            refusal,
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
