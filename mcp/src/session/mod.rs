//! One connection's session: a lightweight actor that reads messages, keeps
//! the lifecycle of its era, and runs each request as a task it owns.
//!
//! The era is decided by the first request and then locked for the
//! connection: `initialize` opens a handshake-era session; a request whose
//! `params._meta` carries `io.modelcontextprotocol/protocolVersion` (or
//! `server/discover`) makes it a 2026-07-28 connection, where every request is
//! validated on its own. Each era's state lives in its variant of the
//! session's lifecycle, so no field exists in an era that does not use it:
//!
//! - `mod.rs` (here): the actor, its messages, routing by era, the drain;
//! - `handshake.rs`: `initialize`, the handshake era's methods, requests to
//!   the client, per-resource subscriptions, 2025-11-25 tasks;
//! - `modern.rs`: the 2026-07-28 envelope, its methods,
//!   `subscriptions/listen`, the shape of its results;
//! - `batch.rs`: 2025-03-26 batches;
//! - `running.rs`: requests in flight, each a task the session owns;
//! - `request_state.rs`: the sealed `requestState` of 2026-07-28 input
//!   rounds.
//!
//! Requests run as tasks owned by the session, so a slow tool never blocks
//! the connection: pings, other requests and cancellations are still
//! answered. A cancelled request's task is aborted and gets no response; one
//! that runs past the request timeout is answered with an error and aborted;
//! a panicking handler is answered with `-32603`. When the session ends, its
//! tasks are aborted.

mod access;
mod batch;
mod handshake;
mod modern;
mod request_state;
mod running;
mod task_run;

use crate::model::params::{parse, CancelledParams};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

use arbor_runtime::{
    spawn_with, Actor, ActorRef, Context, ExitReason, Flow, SpawnError, SpawnOptions,
};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::inbound::{Payload, Received, Share};
use crate::jsonrpc::{
    code, decode, ErrorObject, Id, Incoming, Message, Notification, Rejected, Request, Response,
};
use crate::model::{Method, NotificationMethod};
use crate::outbox::{Frame, Outbox};
use crate::server::{resource_not_found, McpServer};
use crate::subscription::{subscribe, SubscriptionMsg};
use crate::uri::ResourceUri;
use crate::version::{Era, ProtocolVersion};

use access::Access;
use batch::BatchSink;
use handshake::Handshake;
pub use modern::envelope_version;
use modern::Modern;
use running::Running;

/// The `_meta` keys of the 2026-07-28 envelope.
pub mod meta {
    /// The protocol version of this request.
    pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
    /// The capabilities the client declares for this request.
    pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
    /// Who the client is.
    pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
    /// The log level this request opts into.
    pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
    /// Who the server is, on results.
    pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
}

/// Where a session stands, as [`SessionMsg::State`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// Nothing chosen yet: `initialize`, `ping` or a modern request may come.
    Fresh,
    /// Handshake era: `initialize` answered at this version,
    /// `notifications/initialized` not yet received.
    Initializing(ProtocolVersion),
    /// Handshake era: initialized at this version.
    Ready(ProtocolVersion),
    /// 2026-07-28, but only `server/discover` so far.
    Discovered,
    /// 2026-07-28: each request carries its own envelope.
    Modern,
}

/// Where a session stands, with the state only its era has. Only the
/// states of one era are reachable once the first request has chosen it.
enum Lifecycle {
    /// Nothing chosen yet.
    Fresh,
    /// `initialize` answered: initializing, then ready.
    Handshake(Handshake),
    /// 2026-07-28, but only `server/discover` so far: a client that then
    /// picks a handshake version from its result may still `initialize`.
    Discovered,
    /// 2026-07-28.
    Modern(Modern),
}

impl Lifecycle {
    /// The era chosen, as the `arbor_mcp_sessions` gauge labels it.
    fn era_label(&self) -> Option<&'static str> {
        match self {
            Lifecycle::Fresh => None,
            Lifecycle::Handshake(_) => Some("handshake"),
            Lifecycle::Discovered | Lifecycle::Modern(_) => Some("2026-07-28"),
        }
    }

    fn report(&self) -> SessionState {
        match self {
            Lifecycle::Fresh => SessionState::Fresh,
            Lifecycle::Handshake(h) if h.is_ready() => SessionState::Ready(h.version),
            Lifecycle::Handshake(h) => SessionState::Initializing(h.version),
            Lifecycle::Discovered => SessionState::Discovered,
            Lifecycle::Modern(_) => SessionState::Modern,
        }
    }
}

/// Who checks a session's requests against the rate limits
/// ([`crate::rate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateChecks {
    /// Its transport, before they reach the session: HTTP, which answers
    /// 429 with `Retry-After`. The client's address, if known, names it
    /// still (its idempotency keys are its own).
    ByTransport(Option<std::net::IpAddr>),
    /// The session, per request, for a client at this address (none on
    /// stdio): stream transports, whose answer is a JSON-RPC error.
    BySession(Option<std::net::IpAddr>),
}

impl RateChecks {
    /// The client's address, if known.
    pub fn address(self) -> Option<std::net::IpAddr> {
        match self {
            RateChecks::ByTransport(address) | RateChecks::BySession(address) => address,
        }
    }
}

/// The session's messages.
#[derive(Debug)]
pub enum SessionMsg {
    /// One message (a line on stdio) as read from the transport, with its
    /// share of the connection's inbound budget, if it has one.
    Incoming(Received),
    /// The request's task has finished (answered, failed or timed out).
    Finished(Id, u64),
    /// The initialization deadline passed.
    InitDeadline,
    /// Reports where the session stands (for tests and introspection).
    State(arbor_runtime::Reply<SessionState>),
    /// The input has ended: finish the requests in flight, then stop.
    Drain,
    /// Stop as a server shutdown stops a session (requests in flight answer
    /// up to `drain_timeout`, the rest get an error, listens end with their
    /// result), but after the messages already queued, which a stop would
    /// overtake.
    Shutdown,
    /// A request task asks the client for input (handshake era): sent once
    /// the session is initialized, answered through `reply`.
    ServerRequest {
        /// The client method.
        method: Method,
        /// Its params.
        params: Value,
        /// Where the client's answer goes.
        reply: oneshot::Sender<Result<Value, ErrorObject>>,
        /// The client request whose handler asks.
        related: Id,
    },
    /// A request sent to the client was not answered in time.
    ServerRequestExpired(Id),
    /// The transport read a token for the whole connection (a WebSocket's
    /// upgrade request): the session's access, before any message.
    Authorize(std::sync::Arc<crate::auth::Grant>),
    /// The time to authenticate (the initialization timeout) has passed.
    AuthDeadline,
    /// A grant the session held has ended ([`crate::auth`]).
    AccessEnded(std::sync::Arc<crate::auth::Grant>, crate::auth::Ending),
}

struct Session {
    server: McpServer,
    out: Outbox,
    state: Lifecycle,
    /// A task leaves `in_flight` as soon as its answer is ready (so the id
    /// is free when the client has it), but its answer still costs memory
    /// until the outbox takes it: the outbox counts it as owed until then
    /// ([`Outbox::owe`]), and `max_in_flight` bounds both.
    in_flight: HashMap<Id, Running>,
    next_task: u64,
    /// The input has ended: stop once the requests in flight are answered.
    draining: bool,
    /// While a batch's messages are handled: where their answers gather.
    batch: Option<BatchSink>,
    /// While a message is handled: its share of the inbound budget (and its
    /// place), which the request task it starts keeps until its answer is
    /// queued.
    share: Option<Share>,
    rate: RateChecks,
    /// Who it serves, when the server checks tokens.
    access: Access,
    /// While a message is handled: why its token was refused, for each of
    /// its requests.
    refused: Option<ErrorObject>,
}

/// Starts a session that writes everything it sends to `out`, one JSON value
/// per message, its requests rate limited as `rate` says. Feed it with
/// [`SessionMsg::Incoming`]; it ends (normally) when the initialization
/// deadline passes unmet, and is killed like any process.
///
/// # Errors
/// Only if the actor fails to start, which it does not by design.
pub async fn start_session(
    server: McpServer,
    out: Outbox,
    rate: RateChecks,
) -> Result<ActorRef<SessionMsg>, SpawnError> {
    let outbox = out.clone();
    // The connection's account with the server's memory budget: what it
    // queues for the client and, through its transport's inbound budget,
    // what it receives.
    let account = server.memory().consumer();
    outbox.charge(account.clone());
    outbox.shed_under(server.guard().clone());
    let options = SpawnOptions {
        mailbox_capacity: server.config().session_mailbox.max(1),
    };
    // A connection must show a token as soon as it must initialize.
    let auth_deadline = match (server.auth(), rate) {
        (Some(_), RateChecks::BySession(_)) => Some(server.config().init_timeout),
        _ => None,
    };
    let session = spawn_with(
        Session {
            server,
            out,
            state: Lifecycle::Fresh,
            in_flight: HashMap::new(),
            next_task: 0,
            draining: false,
            batch: None,
            share: None,
            rate,
            access: Access::default(),
            refused: None,
        },
        options,
    )
    .await?;
    outbox.bind(session.process());
    account.bind(session.process());
    if let Some(after) = auth_deadline {
        arbor_runtime::timer::send_after(after, session.clone(), SessionMsg::AuthDeadline);
    }
    Ok(session)
}

fn lifecycle_error(message: &str, state: &str) -> ErrorObject {
    ErrorObject::new(code::INVALID_REQUEST, message).with_data(json!({ "lifecycle": state }))
}

impl Actor for Session {
    type Msg = SessionMsg;

    async fn handle(&mut self, msg: SessionMsg, ctx: &mut Context<Self>) -> Flow {
        match msg {
            // Boxed: the request path is a large future, and an idle
            // session should not carry room for it in its task.
            SessionMsg::Incoming(received) => {
                self.out.touch();
                self.share = Some(received.share);
                if let (Some(grant), Some(auth)) = (received.grant, self.server.auth().cloned()) {
                    if let Err(denied) = self.authorize(grant, ctx) {
                        self.refused = Some(denied.error(&auth, None));
                    }
                }
                Box::pin(self.incoming(received.payload, ctx)).await;
                // Nothing kept it: the message is done with.
                self.share = None;
                self.refused = None;
            }
            SessionMsg::Finished(id, serial) => {
                // Only the task that finished: the id may be in use again.
                if self.in_flight.get(&id).is_some_and(|r| r.serial == serial) {
                    self.in_flight.remove(&id);
                }
                if self.draining && self.in_flight.is_empty() {
                    ctx.stop(ExitReason::Normal);
                }
            }
            SessionMsg::Drain => {
                self.draining = true;
                self.end_listens().await;
                if self.in_flight.is_empty() {
                    ctx.stop(ExitReason::Normal);
                }
            }
            SessionMsg::Shutdown => ctx.stop(ExitReason::Shutdown),
            SessionMsg::InitDeadline => self.init_deadline(ctx),
            SessionMsg::State(reply) => {
                reply.send(self.state.report());
            }
            SessionMsg::ServerRequest {
                method,
                params,
                reply,
                related,
            } => {
                self.server_request((method, params, reply, related), ctx)
                    .await
            }
            SessionMsg::ServerRequestExpired(id) => self.server_request_expired(id).await,
            SessionMsg::AccessEnded(grant, ending) => self.access_ended(&grant, ending, ctx),
            SessionMsg::AuthDeadline => self.auth_deadline(ctx),
            SessionMsg::Authorize(grant) => {
                if let Err(denied) = self.authorize(grant, ctx) {
                    tracing::warn!(target: "arbor::auth", "token refused: {denied}");
                }
            }
        }
        Ok(())
    }

    async fn terminate(&mut self, reason: &ExitReason) {
        // Asked to shut down (the server is stopping): let the requests in
        // flight finish and answer, up to the drain timeout.
        if *reason == ExitReason::Shutdown {
            let deadline = tokio::time::Instant::now() + self.server.config().drain_timeout;
            for running in self.in_flight.values_mut() {
                // Woken by each task's end; one deadline for all of them.
                if tokio::time::timeout_at(deadline, &mut running.task)
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
        // Listens end with their result, as at the end of input; without
        // waiting on a client that does not read.
        for (id, answer) in self.take_listens() {
            let _ = self.out.try_send(Frame::new(&answer, Some(id)));
        }
        for (id, running) in self.in_flight.drain() {
            if running.task.is_finished() {
                continue;
            }
            if running.answered.load(Ordering::Acquire) {
                // Its answer is on its way: let it go out.
                continue;
            }
            running.task.abort();
            if running.batched {
                // Its batch's array goes out without it: a lone answer
                // would end the batch's stream before the array.
                continue;
            }
            // Said, not left to a timeout: the client may retry elsewhere.
            // Without waiting: a client that does not read goes without.
            let error = ErrorObject::internal("the session ended before the request was answered")
                .with_data(json!({ "reason": reason.to_string() }));
            let answer = Message::Response(Response::error(Some(id.clone()), error));
            let _ = self.out.try_send(Frame::new(&answer, Some(id)));
        }
        if let Lifecycle::Handshake(h) = &mut self.state {
            h.cancel_deadline();
        }
        if let Some(era) = self.state.era_label() {
            metrics::gauge!("arbor_mcp_sessions", "era" => era).decrement(1.0);
        }
    }
}

impl Session {
    /// Moves to `next`, keeping `arbor_mcp_sessions` (by era) in step.
    pub(super) fn set_state(&mut self, next: Lifecycle) {
        let (before, after) = (self.state.era_label(), next.era_label());
        if before != after {
            if let Some(era) = before {
                metrics::gauge!("arbor_mcp_sessions", "era" => era).decrement(1.0);
            }
            if let Some(era) = after {
                metrics::gauge!("arbor_mcp_sessions", "era" => era).increment(1.0);
            }
        }
        self.state = next;
    }

    async fn send(&self, frame: Frame) {
        // Closed: the connection is closing. Full: it overflowed under the
        // disconnect policy, and this session is being stopped.
        let _ = self.out.send(frame).await;
    }

    /// Gives back the server-wide memory share of the message being
    /// handled, before an answer waits for one of its own: held on to, the
    /// two would wait on each other once the budget is spent.
    fn release_memory(&mut self) {
        if let Some(share) = self.share.as_mut() {
            share.release_memory();
        }
    }

    async fn respond(&mut self, id: Option<Id>, outcome: Result<Value, ErrorObject>) {
        self.release_memory();
        let related = id.clone();
        let response = Message::Response(Response { id, outcome });
        match &mut self.batch {
            Some(batch) => batch.ready.push(response.to_value()),
            None => self.send(Frame::new(&response, related)).await,
        }
    }

    fn version(&self) -> Option<ProtocolVersion> {
        match &self.state {
            Lifecycle::Handshake(h) => Some(h.version),
            Lifecycle::Discovered | Lifecycle::Modern(_) => Some(ProtocolVersion::V2026_07_28),
            Lifecycle::Fresh => None,
        }
    }

    async fn incoming(&mut self, payload: Payload, ctx: &mut Context<Self>) {
        let allow_batch = self.version().is_some_and(ProtocolVersion::allows_batches);
        let decoded = match payload {
            Payload::Bytes(bytes) => decode(&bytes, &self.server.config().limits, allow_batch),
            Payload::Decoded(Incoming::Batch(_)) if !allow_batch => Err(Rejected::no_batches()),
            Payload::Decoded(message) => Ok(message),
        };
        match decoded {
            Err(rejected) => {
                self.release_memory();
                let related = rejected.id.clone();
                self.send(Frame::new(&Message::Response(rejected.response()), related))
                    .await
            }
            Ok(Incoming::Single(message)) => self.message(message, ctx).await,
            Ok(Incoming::Batch(items)) => self.batch(items, ctx).await,
        }
    }

    async fn message(&mut self, message: Message, ctx: &mut Context<Self>) {
        match message {
            Message::Request(request) => self.request(request, ctx).await,
            Message::Notification(n) => self.notification(n, ctx).await,
            // Only handshake-era sessions send the client requests.
            Message::Response(r) => self.client_answered(r),
        }
    }

    async fn notification(&mut self, n: Notification, ctx: &mut Context<Self>) {
        match n.method.parse::<NotificationMethod>() {
            Ok(NotificationMethod::Initialized) => self.initialized(ctx).await,
            Ok(NotificationMethod::Cancelled) => {
                let cancelled = n.params.map(parse::<CancelledParams>);
                if let Some(Ok(CancelledParams { request_id: id, .. })) = cancelled {
                    if let Some(running) = self.in_flight.remove(&id) {
                        running.task.abort();
                    }
                    self.cancel_listen(&id);
                }
            }
            _ => {}
        }
    }

    async fn request(&mut self, request: Request, ctx: &mut Context<Self>) {
        // A ping costs less than its refusal would.
        if request.method != Method::Ping.as_str() {
            if let Err(overloaded) = self.server.guard().admit_request() {
                self.respond(Some(request.id), Err(overloaded.error()))
                    .await;
                return;
            }
        }
        if let RateChecks::BySession(address) = self.rate {
            let from = crate::rate::Requester {
                address,
                session: Some(ctx.pid().as_u64()),
            };
            if let Err(limited) = self.server.limiter().request(&from) {
                self.respond(Some(request.id), Err(limited.error())).await;
                return;
            }
        }
        if let Some(auth) = self.server.auth().cloned() {
            if let Some(refused) = self.refused.clone() {
                return self.respond(Some(request.id), Err(refused)).await;
            }
            if access::is_authenticate(&request) {
                return self.authenticate(&auth, request, ctx).await;
            }
            if let Err(denied) = self.admitted(&auth, &request) {
                return self.respond(Some(request.id), Err(denied)).await;
            }
        }
        let modern_meta = request
            .params
            .as_ref()
            .and_then(|p| p.get("_meta"))
            .and_then(|m| m.get(meta::PROTOCOL_VERSION))
            .is_some();
        // Unknown (`None`) is answered -32601 by the era that has chosen.
        let method = request.method.parse::<Method>().ok();
        match &self.state {
            Lifecycle::Fresh if modern_meta => {
                self.set_state(if method == Some(Method::ServerDiscover) {
                    Lifecycle::Discovered
                } else {
                    Lifecycle::Modern(Modern::default())
                });
                self.modern(method, request, ctx).await;
            }
            Lifecycle::Fresh => match method {
                Some(Method::Initialize) => self.initialize(request, ctx).await,
                // Malformed: answered by the envelope check, era not chosen.
                Some(Method::ServerDiscover) => self.modern(method, request, ctx).await,
                Some(Method::Ping) => self.respond(Some(request.id), Ok(json!({}))).await,
                _ => {
                    let error = lifecycle_error(
                        "the session is not initialized: send initialize first (or a 2026-07-28 request with its _meta envelope)",
                        "not_initialized",
                    );
                    self.respond(Some(request.id), Err(error)).await;
                }
            },
            Lifecycle::Discovered if method == Some(Method::Initialize) && !modern_meta => {
                self.initialize(request, ctx).await;
            }
            Lifecycle::Discovered => {
                if method != Some(Method::ServerDiscover) {
                    self.set_state(Lifecycle::Modern(Modern::default()));
                }
                self.modern(method, request, ctx).await;
            }
            Lifecycle::Modern(_) => self.modern(method, request, ctx).await,
            Lifecycle::Handshake(_) => self.handshake(method, request, ctx).await,
        }
    }

    /// Subscriptions this connection holds, in either era.
    fn subscription_count(&self) -> usize {
        match &self.state {
            Lifecycle::Handshake(h) => h.subscriptions.len(),
            Lifecycle::Modern(m) => m.listens.values().map(Vec::len).sum::<usize>(),
            Lifecycle::Fresh | Lifecycle::Discovered => 0,
        }
    }

    /// Checks a URI to subscribe to: valid, known, and within the limit.
    fn subscribable(
        &self,
        uri: &str,
        era: Era,
        pending: usize,
    ) -> Result<ResourceUri, ErrorObject> {
        let parsed = ResourceUri::parse(uri).map_err(|e| {
            ErrorObject::invalid_params(format!("invalid resource uri: {e}"))
                .with_data(json!({ "uri": uri, "reason": e.to_string() }))
        })?;
        if !self.server.has_resource(&parsed) {
            return Err(resource_not_found(uri, era));
        }
        let max = self.server.config().max_subscriptions;
        if self.subscription_count() + pending >= max {
            return Err(
                ErrorObject::invalid_params("too many subscriptions on this connection")
                    .with_data(json!({ "limit": "max_subscriptions", "max": max })),
            );
        }
        Ok(parsed)
    }

    /// Starts a subscription actor; it gets updates once it joins a group.
    async fn start_subscription(
        &self,
        ctx: &mut Context<Self>,
    ) -> Result<ActorRef<SubscriptionMsg>, ErrorObject> {
        subscribe(&ctx.process())
            .await
            .map_err(|e| ErrorObject::internal(e.to_string()))
    }
}
