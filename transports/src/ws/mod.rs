//! WebSocket: one JSON-RPC message per text frame, both MCP eras (the
//! session tells them apart, as on every transport).
//!
//! - **Handshake.** Served at [`PATH`]. A client offering the [`SUBPROTOCOL`]
//!   `mcp` gets it back; one offering only other subprotocols is refused with
//!   HTTP 400; one offering none is served. `Host` and `Origin` are checked
//!   as on the HTTP port. Every refusal is an HTTP answer (see
//!   `handshake.rs`): 503 at the connection limit, 403, 404, 405, 426, 400,
//!   431. The handshake runs beside the accept loop, bounded by
//!   `WsConfig::handshake_timeout`.
//! - **Frames.** Each text message goes to the session as one message, and
//!   reading stops while the session's mailbox is full. Each message the
//!   session sends goes out as one text frame. A binary frame closes the
//!   connection with 1003, a message over `max_message_bytes` (the server's
//!   limit, as on the line transports) with 1009, invalid UTF-8 with 1007, a
//!   protocol violation with 1002.
//! - **Keep-alive.** After `ping_interval` without a frame from the
//!   client, a ping; after `pong_timeout` more with nothing, close 1011.
//!   Client pings are answered at once. A frame the client does not take
//!   within `ping_interval + pong_timeout` drops the connection.
//! - **Close.** The session ending closes with 1000 once its last message is
//!   out. A client's close is acknowledged at once (tungstenite echoes the
//!   client's code, 1000 for a normal close) and the session is drained:
//!   requests in flight run to their end, their answers discarded, since no
//!   data frame may follow a close received (RFC 6455 §5.5.1).
//! - **Memory.** 1 KiB read and write buffers per connection instead of
//!   tungstenite's 128 KiB; a message in flight costs its own size on top.
//!   Outgoing messages are bounded by `max(max_message_bytes, 16 MiB)`: a
//!   larger response is replaced by an error for its request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arbor_mcp::inbound::InboundBudget;
use arbor_mcp::outbox::{outbox, Frame, FrameKind, OutboxReceiver};
use arbor_mcp::session::{start_session, RateChecks, SessionMsg};
use arbor_mcp::McpServer;
use arbor_runtime::timer::sleep_until_or_never;
use arbor_runtime::{ActorRef, ExitReason, SendError, SpawnError};
use arbor_supervision::{ChildSpec, DynamicSupervisor, ShardedDynamicRef, Started};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::listen::{Admit, Carries, Limit, Slot, TurnedAway};
use crate::origin::OriginPolicy;

mod handshake;
use crate::config::WsConfig;

/// The path MCP is served at: `ws://HOST:PORT/mcp`.
pub const PATH: &str = "/mcp";

/// The WebSocket subprotocol negotiated with clients that offer it.
pub const SUBPROTOCOL: &str = "mcp";

/// Read and write buffer per connection. tungstenite's default allocates
/// 128 KiB up front for reading, which at 100 000 idle connections is
/// 12 GiB; a JSON-RPC message rarely needs more than a few KiB at a time.
pub(crate) const BUFFER: usize = 1 << 10;

/// The floor of the outgoing message bound: answers are often larger than
/// requests (a resource read, a long tool result), so they are not held to
/// the incoming limit.
const MIN_OUTGOING: usize = 16 << 20;

/// The longest close reason a close frame carries (125 bytes of control
/// payload, less the 2-byte code).
const MAX_REASON: usize = 123;

/// The error code of an answer replaced for being too large (JSON-RPC
/// internal error).
const INTERNAL_ERROR: i64 = -32603;

/// A handshaken connection.
type Ws = WebSocketStream<crate::tls::Accepted>;

/// A handshaken connection and what its upgrade request's token grants.
type Upgraded = (Ws, Option<Arc<arbor_mcp::auth::Grant>>);

/// The WebSocket settings, worked out once per tree.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    config: WebSocketConfig,
    max_outgoing: usize,
    ping_interval: Duration,
    pong_timeout: Duration,
    handshake_timeout: Duration,
    /// No message either way for this long closes the connection (1001).
    idle_timeout: Option<Duration>,
    /// How long one frame may take to be written: a client that takes
    /// nothing for as long as it could leave a ping unanswered is not
    /// reading.
    write_timeout: Duration,
    /// How long the session may take to finish after the socket is done:
    /// every request is bound by the request timeout.
    drain_deadline: Duration,
    /// The session's inbound budget (`ServerConfig::max_inbound_bytes`).
    inbound_bytes: usize,
    /// `ServerConfig::max_in_flight`: messages the session holds at once.
    max_in_flight: usize,
    /// The request head limits (`HttpConfig`'s, as on the HTTP port).
    handshake: handshake::Limits,
}

impl Settings {
    pub(crate) fn new(server: &McpServer, config: &WsConfig) -> Self {
        let max_message = server.config().limits.max_message_bytes;
        let max_outgoing = max_message.max(MIN_OUTGOING);
        let ws = WebSocketConfig::default()
            .read_buffer_size(BUFFER)
            .write_buffer_size(BUFFER)
            // Room for one outgoing frame (we wait for each to be flushed
            // before the next) and the control frames queued beside it.
            .max_write_buffer_size(max_outgoing + 2 * BUFFER)
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message));
        Settings {
            config: ws,
            max_outgoing,
            ping_interval: config.ping_interval,
            pong_timeout: config.pong_timeout,
            handshake_timeout: config.handshake_timeout,
            idle_timeout: Some(config.idle_timeout).filter(|t| !t.is_zero()),
            write_timeout: (config.ping_interval + config.pong_timeout).max(Duration::from_secs(1)),
            drain_deadline: server.config().request_timeout + Duration::from_secs(1),
            inbound_bytes: server.config().max_inbound_bytes,
            max_in_flight: server.config().max_in_flight,
            handshake: handshake::Limits {
                max_header_bytes: config.max_header_bytes,
                max_headers: config.max_headers,
            },
        }
    }
}

/// The session template of the `ws-connections` supervisor: each child
/// takes a handshaken connection, starts its session and serves it.
/// A session is its connection: once ended there is nothing to restart.
pub(crate) fn sessions(
    server: McpServer,
    settings: Settings,
) -> DynamicSupervisor<Upgraded, ActorRef<SessionMsg>> {
    let shutdown = crate::tree::session_shutdown(&server);
    DynamicSupervisor::temporary("ws-session", move |(ws, grant): Upgraded| {
        let server = server.clone();
        async move {
            let (tx, rx) = outbox(&server.config().outbox);
            let client = ws.get_ref().peer_addr().ok().map(|a| a.ip());
            let session = start_session(server, tx, RateChecks::BySession(client)).await?;
            if let Some(grant) = grant {
                // Before anything the client sends.
                let _ = session.send(SessionMsg::Authorize(grant)).await;
            }
            tokio::spawn(serve(ws, session.clone(), rx, settings));
            Ok::<_, SpawnError>(session)
        }
    })
    .shutdown(shutdown)
}

/// The `ws-connections` supervisor: each session is moved its connection.
pub(crate) type Sessions = ShardedDynamicRef<Upgraded, ActorRef<SessionMsg>>;

/// The `ws-listener` child.
pub(crate) fn listener(
    server: McpServer,
    at: crate::listen::Bind,
    connections: Sessions,
    limit: Limit,
    settings: Settings,
    origins: Arc<OriginPolicy>,
    tls: Option<crate::tls::Tls>,
) -> ChildSpec {
    crate::listen::listener("ws-listener", at, move || WsAdmit {
        server: server.clone(),
        connections: connections.clone(),
        limit: limit.clone(),
        settings,
        origins: origins.clone(),
        tls: tls.clone(),
        handshakes: JoinSet::new(),
    })
}

/// Takes accepted connections through the WebSocket handshake.
struct WsAdmit {
    /// Each connection is a session of it: new ones are rate limited by
    /// address.
    server: McpServer,
    connections: Sessions,
    limit: Limit,
    settings: Settings,
    /// The `Host` and `Origin` a handshake may carry.
    origins: Arc<OriginPolicy>,
    /// TLS (`wss`), when the listener speaks it.
    tls: Option<crate::tls::Tls>,
    /// Handshakes in progress: they end with the listener that owns them,
    /// so a listener restart leaves none behind.
    handshakes: JoinSet<()>,
}

impl Admit for WsAdmit {
    async fn admit(&mut self, stream: TcpStream) {
        // Reap the handshakes that are over, so the set stays as small as
        // the number in progress.
        while self.handshakes.try_join_next().is_some() {}
        // The place is taken at accept: a handshake in progress costs
        // memory as a connection does.
        let slot = self.limit.acquire();
        let turned_away = TurnedAway::check(
            &stream,
            slot.as_ref(),
            &self.limit,
            &self.server,
            Carries::Session,
            &self.connections,
        );
        self.handshakes.spawn(handshake(
            stream,
            slot,
            turned_away,
            self.connections.clone(),
            self.settings,
            self.origins.clone(),
            self.server.auth().cloned(),
            self.tls.clone(),
        ));
    }
}

/// Runs the opening handshake and, once it succeeds, starts the session.
#[allow(clippy::too_many_arguments)] // What the listener holds, passed on.
async fn handshake(
    stream: TcpStream,
    slot: Option<Slot>,
    turned_away: Option<TurnedAway>,
    connections: Sessions,
    settings: Settings,
    origins: Arc<OriginPolicy>,
    auth: Option<arbor_mcp::auth::Authenticator>,
    tls: Option<crate::tls::Tls>,
) {
    // The TLS handshake, then the WebSocket one, within one timeout.
    let accepting = async {
        let stream = match &tls {
            None => crate::tls::Accepted::Plain(stream),
            Some(tls) => tls
                .accept(stream, crate::tls::Alpn::WebSocket)
                .await
                .map_err(handshake::Failed::Gone)?,
        };
        handshake::accept(
            stream,
            turned_away,
            &origins,
            settings.handshake,
            settings.config,
            auth.as_ref(),
        )
        .await
    };
    let ws = match timeout(settings.handshake_timeout, accepting).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(target: "arbor::transports", error = %e, "websocket handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(target: "arbor::transports", "websocket handshake timed out");
            return;
        }
    };
    // Turned away, the handshake was refused above; matched rather than
    // assumed.
    let Some(slot) = slot else { return };
    match connections.start_child(ws).await {
        Ok(Started::Running(session)) => slot.hold_until_exit(&session.process()),
        Ok(Started::Ignore) => {}
        Err(e) => {
            tracing::warn!(target: "arbor::transports", error = %e, "websocket connection not started");
        }
    }
}

/// Why a connection's frame loop ended, and so how it is closed.
#[derive(Debug)]
enum End {
    /// The client sent a close frame; tungstenite has queued the answer.
    ClientClosed,
    /// Close with this code and reason.
    Close(CloseCode, String),
    /// The socket failed or is not being read: nothing more can be sent.
    Gone,
}

impl End {
    fn close(code: CloseCode, reason: impl Into<String>) -> End {
        End::Close(code, reason.into())
    }
}

/// How a connection closes once its session has ended: 1000 when it ended
/// by itself (with its `{shutdown, Term}` reason, if it gave one), 1001 when
/// the server is shutting down, 1011 with the reason when it was killed or
/// crashed.
fn session_ended(reason: &ExitReason) -> End {
    match reason {
        ExitReason::Normal => End::close(CloseCode::Normal, "session ended"),
        // Its token expired or was revoked: 1008, with the reason.
        ExitReason::ShutdownWith(term) if term.starts_with(arbor_mcp::auth::ACCESS_ENDED) => {
            End::close(CloseCode::Policy, term.to_string())
        }
        ExitReason::ShutdownWith(term) => {
            End::close(CloseCode::Normal, format!("session ended: {term}"))
        }
        ExitReason::Shutdown => End::close(CloseCode::Away, "server shutting down"),
        _ => End::close(CloseCode::Error, format!("session ended: {reason}")),
    }
}

/// Serves one connection until it is closed, then lets the session finish.
///
/// An `async move` block rather than an `async fn`, which would keep its
/// arguments twice (as passed, and as moved into its body) for as long as
/// the connection lives.
#[allow(clippy::manual_async_fn)] // See above: the async fn is larger.
fn serve(
    mut ws: Ws,
    session: ActorRef<SessionMsg>,
    mut out: OutboxReceiver,
    settings: Settings,
) -> impl Future<Output = ()> + Send {
    async move {
        let end = pump(&mut ws, &session, &mut out, &settings).await;
        // Nothing more can reach the client: what the session still sends is
        // dropped at once instead of blocking it.
        drop(out);
        // Boxed: a connection keeps no room for its ending (the close's discard
        // buffer, its timers) while it is served.
        Box::pin(async move {
            // Requests in flight run to their end (each bound by the request
            // timeout), then the session stops.
            let _ = session.send_system(SessionMsg::Drain);
            finish(&mut ws, end, &settings).await;
            drop(ws);
            let process = session.process();
            if timeout(settings.drain_deadline, process.wait())
                .await
                .is_err()
            {
                process.stop(ExitReason::Shutdown);
                process.wait().await;
            }
        })
        .await;
    }
}

/// What a waiting delivery to the session resolves to.
type Delivery<'a> = Pin<Box<dyn Future<Output = Result<(), SendError<SessionMsg>>> + Send + 'a>>;

/// Moves frames between the socket and the session until one side ends.
async fn pump(
    ws: &mut Ws,
    session: &ActorRef<SessionMsg>,
    out: &mut OutboxReceiver,
    settings: &Settings,
) -> End {
    let process = session.process();
    let exited = process.wait();
    tokio::pin!(exited);
    // A message the session's full mailbox has not taken yet. While there
    // is one, the socket is not read: that is the backpressure.
    // The reader pauses at the in-flight limit instead of refusing.
    let inbound = InboundBudget::new(settings.inbound_bytes)
        .with_places(settings.max_in_flight)
        .with_memory(out.memory());
    let mut delivering: Option<Delivery<'_>> = None;
    let mut alive = Keepalive::new(settings);
    let mut active = tokio::time::Instant::now();
    // Let go by the memory budget: the client does not read, so what is
    // queued for it goes unwritten and the socket is dropped.
    let account = out.memory();
    let reaped = async {
        match &account {
            Some(account) => account.reaped().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(reaped);
    loop {
        let idle_at = settings.idle_timeout.map(|t| active + t);
        // One timer for both deadlines: an idle connection parks here, and
        // each timer is room it holds and a registration per message.
        let ping_at = (delivering.is_none() && alive.on()).then(|| alive.deadline());
        let wake_at = match (idle_at, ping_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            // The session's output first: it must never wait on our reading.
            biased;
            () = &mut reaped => {
                while out.try_recv_frame().is_some() {}
                return End::Gone;
            }
            value = out.recv_frame() => match value {
                Some(value) => {
                    active = tokio::time::Instant::now();
                    // Boxed, as is every write below: an idle connection
                    // parks in the select above, and keeps no room for them.
                    let sent = tokio::select! {
                        sent = Box::pin(send_value(ws, value, settings)) => sent,
                        () = &mut reaped => {
                            while out.try_recv_frame().is_some() {}
                            return End::Gone;
                        }
                    };
                    if let Err(end) = sent {
                        return end;
                    }
                }
                // Every sender gone: the session is ending (its outbox may
                // close a moment before its exit is recorded).
                None => {
                    return match Box::pin(timeout(Duration::from_secs(1), &mut exited)).await {
                        Ok(reason) => session_ended(&reason),
                        Err(_) => End::close(CloseCode::Normal, "session ended"),
                    };
                }
            },
            reason = &mut exited => {
                // All it sent before it ended is queued: deliver that, then
                // close. Later sends (from tasks it left) go nowhere.
                while let Some(value) = out.try_recv_frame() {
                    if let Err(end) = Box::pin(send_value(ws, value, settings)).await {
                        return end;
                    }
                }
                return session_ended(&reason);
            }
            sent = async {
                match delivering.as_mut() {
                    Some(delivery) => delivery.await,
                    None => std::future::pending().await,
                }
            }, if delivering.is_some() => {
                delivering = None;
                // The client could not be heard while we were not reading.
                alive.heard();
                if let Err(e) = sent {
                    if let Some(end) = refused(e) {
                        return end;
                    }
                }
            }
            () = sleep_until_or_never(wake_at) => {
                let now = tokio::time::Instant::now();
                if ping_at.is_some_and(|at| at <= now) {
                    if alive.pinged_at.is_some() {
                        return End::close(CloseCode::Error, "keepalive: no pong within pong_timeout");
                    }
                    alive.pinged_at = Some(Instant::now());
                    let ping = ws.send(Message::Ping(Default::default()));
                    if let Err(end) = written(Box::pin(timeout(settings.write_timeout, ping)).await) {
                        return end;
                    }
                } else if idle_at.is_some_and(|at| at <= now) {
                    if out.busy() {
                        // Quiet, but its handlers are at work.
                        active = now;
                        continue;
                    }
                    return End::close(CloseCode::Away, "idle timeout");
                }
            }
            frame = ws.next(), if delivering.is_none() => {
                let message = match frame {
                    None => return End::Gone,
                    Some(Err(e)) => return failed(e),
                    Some(Ok(message)) => message,
                };
                alive.heard();
                match message {
                    Message::Text(text) => {
                        active = tokio::time::Instant::now();
                        let received = match inbound.try_admit(text.as_bytes().to_vec()) {
                            Ok(received) => received,
                            Err((bytes, _)) => {
                                // The session holds its budget's worth:
                                // wait for room before reading on.
                                let inbound = &inbound;
                                delivering = Some(Box::pin(async move {
                                    let received = inbound.admit(bytes).await;
                                    session.send(SessionMsg::Incoming(received)).await
                                }));
                                continue;
                            }
                        };
                        match session.try_send(SessionMsg::Incoming(received)) {
                            Ok(()) => {}
                            Err(SendError::Full(msg)) => {
                                delivering = Some(Box::pin(session.send(msg)));
                            }
                            Err(e) => {
                                if let Some(end) = refused(e) {
                                    return end;
                                }
                            }
                        }
                    }
                    Message::Binary(_) => {
                        return End::close(
                            CloseCode::Unsupported,
                            "binary frames are not supported: send JSON-RPC as text",
                        );
                    }
                    Message::Ping(_) => {
                        // tungstenite has queued the pong, but writes it only
                        // with the next read or write: send it now.
                        if let Err(end) = written(Box::pin(timeout(settings.write_timeout, ws.flush())).await) {
                            return end;
                        }
                    }
                    Message::Close(_) => return End::ClientClosed,
                    Message::Pong(_) | Message::Frame(_) => {}
                }
            }
        }
    }
}

/// When the client was last heard from, and whether a ping awaits its pong.
#[derive(Debug)]
struct Keepalive {
    interval: Duration,
    timeout: Duration,
    heard_at: Instant,
    pinged_at: Option<Instant>,
}

impl Keepalive {
    fn new(settings: &Settings) -> Self {
        Keepalive {
            interval: settings.ping_interval,
            timeout: settings.pong_timeout,
            heard_at: Instant::now(),
            pinged_at: None,
        }
    }

    /// Pings are on unless the interval is zero.
    fn on(&self) -> bool {
        !self.interval.is_zero()
    }

    /// Any frame is a sign of life, not only the pong.
    fn heard(&mut self) {
        self.heard_at = Instant::now();
        self.pinged_at = None;
    }

    /// When to ping, or, once pinged, when to give up.
    fn deadline(&self) -> Instant {
        match self.pinged_at {
            Some(at) => at + self.timeout,
            None => self.heard_at + self.interval,
        }
    }
}

/// What to do when the session does not take a message: `None` when it has
/// ended (its exit closes the connection once its output is out).
fn refused(e: SendError<SessionMsg>) -> Option<End> {
    match e {
        SendError::Closed(_) => None,
        SendError::Full(_) | SendError::Overloaded(_) => Some(End::close(
            CloseCode::Again,
            "server overloaded: try again later",
        )),
    }
}

/// The close a read error calls for.
fn failed(e: WsError) -> End {
    match e {
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => End::close(
            CloseCode::Size,
            format!("message exceeds max_message_bytes ({size} > {max_size})"),
        ),
        WsError::Capacity(e) => End::close(CloseCode::Size, e.to_string()),
        WsError::Utf8(_) => End::close(
            CloseCode::Invalid,
            "invalid UTF-8 in a text frame or close reason",
        ),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => End::Gone,
        WsError::Protocol(e) => End::close(CloseCode::Protocol, e.to_string()),
        WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Io(_) => End::Gone,
        e => {
            tracing::debug!(target: "arbor::transports", error = %e, "websocket read failed");
            End::Gone
        }
    }
}

/// Sends one of the session's messages as one text frame, or an error in
/// place of an answer too large to send.
async fn send_value(ws: &mut Ws, frame: Frame, settings: &Settings) -> Result<(), End> {
    let mut text = frame.json;
    if text.len() > settings.max_outgoing {
        let size = text.len();
        match frame.related.filter(|_| frame.kind == FrameKind::Response) {
            Some(id) => {
                text = json!({
                    "jsonrpc": "2.0",
                    "id": id,
                    "error": {
                        "code": INTERNAL_ERROR,
                        "message": "the answer is too large to send",
                        "data": {"limit": "max_outgoing_bytes", "max": settings.max_outgoing, "actual": size},
                    },
                })
                .to_string();
            }
            None => {
                tracing::warn!(target: "arbor::transports", size, "websocket message too large to send; dropped");
                return Ok(());
            }
        }
    }
    let sending = ws.send(Message::Text(text.into()));
    written(timeout(settings.write_timeout, sending).await)
}

/// A write's outcome: a failed or timed-out write leaves nothing to close
/// politely.
fn written<E: std::fmt::Display>(
    outcome: Result<Result<(), E>, tokio::time::error::Elapsed>,
) -> Result<(), End> {
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::debug!(target: "arbor::transports", error = %e, "websocket write failed");
            Err(End::Gone)
        }
        Err(_) => {
            tracing::debug!(target: "arbor::transports", "websocket client not reading; dropped");
            Err(End::Gone)
        }
    }
}

/// Closes the socket as `end` says, giving the client `pong_timeout` to
/// take the close frame and hang up.
async fn finish(ws: &mut Ws, end: End, settings: &Settings) {
    let grace = settings.pong_timeout;
    let sent = match end {
        End::Gone => return,
        End::ClientClosed => timeout(grace, ws.flush()).await,
        End::Close(code, mut reason) => {
            truncate(&mut reason, MAX_REASON);
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            timeout(grace, ws.close(Some(frame))).await
        }
    };
    if !matches!(sent, Ok(Ok(()))) {
        return;
    }
    // A lingering close, on the raw socket: after an oversized frame the
    // stream is mid-frame and must not be parsed again, and closing with
    // unread input would reset the connection, losing the close frame on
    // its way. So: our side done, then discard until the client hangs up.
    let stream = ws.get_mut();
    let _ = timeout(grace, async {
        let _ = stream.shutdown().await;
        let mut discard = [0u8; 1024];
        while let Ok(n) = stream.read(&mut discard).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Cuts `text` to at most `max` bytes, on a character boundary.
fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut at = max;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
    }
}
