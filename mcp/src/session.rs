//! One connection's session: a lightweight actor that reads messages, keeps
//! the lifecycle of its era, and runs each request as a task it owns.
//!
//! The era is decided by the first request and then locked for the
//! connection: `initialize` opens a handshake-era session; a request whose
//! `params._meta` carries `io.modelcontextprotocol/protocolVersion` (or
//! `server/discover`) makes it a 2026-07-28 connection, where every request is
//! validated on its own.
//!
//! Requests run as tasks owned by the session, so a slow tool never blocks
//! the connection: pings, other requests and cancellations are still
//! answered. A cancelled request's task is aborted and gets no response; one
//! that runs past the request timeout is answered with an error and aborted;
//! a panicking handler is answered with `-32603`. When the session ends, its
//! tasks are aborted.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arbor_runtime::timer::{send_after, TimerRef};
use arbor_runtime::{
    spawn_with, Actor, ActorRef, Context, ExitReason, Flow, SpawnError, SpawnOptions,
};
use futures_util::FutureExt;
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use crate::context::{Progress, RequestContext};
use crate::inbound::{Received, Share};
use crate::input::InputRequired;
use crate::jsonrpc::{
    code, decode, ErrorObject, Id, Incoming, Message, Notification, Request, Response,
};
use crate::model::{LogLevel, Method, NotificationMethod};
use crate::outbox::{Frame, Outbox};
use crate::server::{resource_not_found, ListKind, McpServer, Outcome};
use crate::subscription::{subscribe, SubscriptionMsg};
use crate::tasks::{self, TaskSupport};
use crate::uri::ResourceUri;
use crate::version::{Era, ProtocolVersion};

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

/// Where a session stands. Only the states of one era are reachable once the
/// first request has chosen it.
#[derive(Clone, Debug, PartialEq)]
pub enum Lifecycle {
    /// Nothing chosen yet: `initialize`, `ping` or a modern request may come.
    Fresh,
    /// Handshake era: `initialize` answered, `notifications/initialized` not
    /// yet received. Client requests are served; the server sends none.
    Initializing {
        /// The negotiated version.
        version: ProtocolVersion,
        /// The client's capabilities.
        client: Arc<Value>,
    },
    /// Handshake era: initialized.
    Ready {
        /// The negotiated version.
        version: ProtocolVersion,
        /// The client's capabilities.
        client: Arc<Value>,
        /// The level set by `logging/setLevel`.
        log_level: Option<LogLevel>,
    },
    /// 2026-07-28, but only `server/discover` so far: a client that then
    /// picks a handshake version from its result may still `initialize`.
    Discovered,
    /// 2026-07-28: each request carries its own envelope.
    Modern,
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
    /// Reports the lifecycle state (for tests and introspection).
    State(arbor_runtime::Reply<Lifecycle>),
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
    /// A list the handshake-era client follows has changed.
    ListChanged(ListKind),
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
    /// 2025-11-25 tasks this session created, for `tasks/list`.
    legacy_tasks: Vec<String>,
    init_timer: Option<TimerRef>,
    draining: bool,
    /// Handshake era: `resources/subscribe`, by normalised URI.
    subscriptions: HashMap<String, ActorRef<SubscriptionMsg>>,
    /// 2026-07-28: `subscriptions/listen` requests and their subscriptions.
    listens: HashMap<Id, Vec<ActorRef<SubscriptionMsg>>>,
    /// Requests sent to the client, waiting for its answer.
    /// Each with the client request whose handler asked.
    pending: HashMap<Id, (ClientReply, Id)>,
    /// Requests for the client held until `notifications/initialized`.
    held: Vec<HeldRequest>,
    next_server_id: u64,
    /// While a batch's messages are handled: where their answers gather.
    batch: Option<BatchSink>,
    /// While a message is handled: its share of the inbound budget (and its
    /// place), which the request task it starts keeps until its answer is
    /// queued.
    share: Option<Share>,
}

/// A request task in flight.
struct Running {
    /// Which task for its id (an id may be reused once answered).
    serial: u64,
    task: AbortHandle,
    /// Answered in its batch's array, not on its own.
    batched: bool,
    /// Set once its task has its outcome: the answer is on its way, and a
    /// session ending now must not answer it again.
    answered: Arc<AtomicBool>,
}

/// The answers of one 2025-03-26 batch: those given at once, and those of
/// requests still running. They go out as one array once all are in.
#[derive(Default)]
struct BatchSink {
    ready: Vec<Value>,
    waiting: Vec<oneshot::Receiver<Value>>,
}

/// Where the client's answer to a server request goes.
type ClientReply = oneshot::Sender<Result<Value, ErrorObject>>;

/// A request for the client, its answer's way back, and the client request
/// it serves.
type HeldRequest = (Method, Value, ClientReply, Id);

/// A retried request's answers and the state its handler kept.
type Answers = (Map<String, Value>, Option<Value>);

/// The most input rounds one request may take in the handshake era.
const MAX_INPUT_ROUNDS: usize = 8;

/// What seals a 2026-07-28 `requestState`.
const REQUEST_STATE_PURPOSE: &str = "request-state";

/// Starts a session that writes everything it sends to `out`, one JSON value
/// per message. Feed it with [`SessionMsg::Incoming`]; it ends (normally)
/// when the initialization deadline passes unmet, and is killed like any
/// process.
///
/// # Errors
/// Only if the actor fails to start, which it does not by design.
pub async fn start_session(
    server: McpServer,
    out: Outbox,
) -> Result<ActorRef<SessionMsg>, SpawnError> {
    let outbox = out.clone();
    // The connection's account with the server's memory budget: what it
    // queues for the client and, through its transport's inbound budget,
    // what it receives.
    let account = server.memory().consumer();
    outbox.charge(account.clone());
    let options = SpawnOptions {
        mailbox_capacity: server.config().session_mailbox.max(1),
    };
    let session = spawn_with(
        Session {
            server,
            out,
            state: Lifecycle::Fresh,
            in_flight: HashMap::new(),
            next_task: 0,
            legacy_tasks: Vec::new(),
            init_timer: None,
            draining: false,
            subscriptions: HashMap::new(),
            listens: HashMap::new(),
            pending: HashMap::new(),
            held: Vec::new(),
            next_server_id: 0,
            batch: None,
            share: None,
        },
        options,
    )
    .await?;
    outbox.bind(session.process());
    account.bind(session.process());
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
                self.share = Some(received.share);
                Box::pin(self.incoming(&received.bytes, ctx)).await;
                // Nothing kept it: the message is done with.
                self.share = None;
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
            SessionMsg::InitDeadline => {
                if matches!(self.state, Lifecycle::Initializing { .. }) {
                    tracing::info!(target: "arbor::mcp", "session did not initialize in time");
                    ctx.stop(ExitReason::shutdown_with("initialization timeout"));
                }
            }
            SessionMsg::State(reply) => {
                reply.send(self.state.clone());
            }
            SessionMsg::ServerRequest {
                method,
                params,
                reply,
                related,
            } => match self.state {
                Lifecycle::Ready { .. } => {
                    self.ask_client((method, params, reply, related), ctx).await
                }
                Lifecycle::Initializing { .. } => self.held.push((method, params, reply, related)),
                Lifecycle::Fresh | Lifecycle::Discovered | Lifecycle::Modern => {
                    let _ = reply.send(Err(ErrorObject::internal(
                        "no handshake session to send the request on",
                    )));
                }
            },
            SessionMsg::ListChanged(kind) => {
                if let Lifecycle::Ready { .. } = self.state {
                    let n = Message::Notification(Notification {
                        method: kind.notification().as_str().into(),
                        params: None,
                    });
                    self.send(Frame::new(&n, None)).await;
                }
            }
            SessionMsg::ServerRequestExpired(id) => {
                if let Some((reply, related)) = self.pending.remove(&id) {
                    let timeout = self.server.config().server_request_timeout;
                    let _ = reply.send(Err(ErrorObject::new(
                        code::REQUEST_TIMEOUT,
                        "the client did not answer in time",
                    )
                    .with_data(json!({ "timeoutMs": timeout.as_millis() as u64 }))));
                    let cancel = Message::Notification(Notification {
                        method: NotificationMethod::Cancelled.as_str().into(),
                        params: Some(Map::from_iter([
                            (
                                "requestId".to_string(),
                                serde_json::to_value(&id).unwrap_or(Value::Null),
                            ),
                            ("reason".to_string(), Value::from("timeout")),
                        ])),
                    });
                    self.send(Frame::new(&cancel, Some(related))).await;
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
            while self.in_flight.values().any(|r| !r.task.is_finished())
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        // Listens end with their result, as at the end of input; without
        // waiting on a client that does not read.
        let listens: Vec<_> = self.listens.drain().collect();
        for (id, subs) in listens {
            let answer = self.listen_ended(id.clone(), subs);
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
        if let Some(timer) = self.init_timer.take() {
            timer.cancel();
        }
    }
}

impl Session {
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
            Lifecycle::Initializing { version, .. } | Lifecycle::Ready { version, .. } => {
                Some(*version)
            }
            Lifecycle::Discovered | Lifecycle::Modern => Some(ProtocolVersion::V2026_07_28),
            Lifecycle::Fresh => None,
        }
    }

    async fn incoming(&mut self, bytes: &[u8], ctx: &mut Context<Self>) {
        let allow_batch = self.version().is_some_and(ProtocolVersion::allows_batches);
        match decode(bytes, &self.server.config().limits, allow_batch) {
            Err(rejected) => {
                self.release_memory();
                let related = rejected.id.clone();
                self.send(Frame::new(&Message::Response(rejected.response()), related))
                    .await
            }
            Ok(Incoming::Single(message)) => self.message(message, ctx).await,
            Ok(Incoming::Batch(items)) => {
                // 2025-03-26 batches: the answers go out as one array, once
                // the last running request has answered; the session goes on
                // meanwhile.
                self.batch = Some(BatchSink::default());
                // The batch's answer belongs to its first request, so a
                // transport with streams routes it to the batch's own.
                let first = items.iter().find_map(|item| match item {
                    Ok(Message::Request(r)) => Some(r.id.clone()),
                    _ => None,
                });
                for item in items {
                    match item {
                        Ok(message) => self.message(message, ctx).await,
                        Err(rejected) => self.respond(rejected.id, Err(rejected.error)).await,
                    }
                }
                let sink = self.batch.take().unwrap_or_default();
                if sink.ready.is_empty() && sink.waiting.is_empty() {
                    return;
                }
                let out = self.out.clone();
                let share = self.share.take();
                tokio::spawn(async move {
                    let mut share = share;
                    let mut answers = sink.ready;
                    for answer in sink.waiting {
                        // A cancelled request drops its sender: no answer.
                        if let Ok(value) = answer.await {
                            answers.push(value);
                        }
                    }
                    if let Some(share) = share.as_mut() {
                        share.release_memory();
                    }
                    if !answers.is_empty() {
                        let _ = out.send(Frame::batch(answers, first)).await;
                    }
                });
            }
        }
    }

    async fn message(&mut self, message: Message, ctx: &mut Context<Self>) {
        match message {
            Message::Request(request) => self.request(request, ctx).await,
            Message::Notification(n) => {
                let was_ready = matches!(self.state, Lifecycle::Ready { .. });
                self.notification(n);
                if !was_ready && matches!(self.state, Lifecycle::Ready { .. }) {
                    for kind in ListKind::ALL {
                        self.server.subscribers().join(kind.group(), &ctx.process());
                    }
                }
                if matches!(self.state, Lifecycle::Ready { .. }) && !self.held.is_empty() {
                    for held in std::mem::take(&mut self.held) {
                        self.ask_client(held, ctx).await;
                    }
                }
            }
            Message::Response(r) => match r.id.as_ref().and_then(|id| self.pending.remove(id)) {
                Some((reply, _)) => {
                    let _ = reply.send(r.outcome);
                }
                None => {
                    tracing::debug!(target: "arbor::mcp", id = ?r.id, "response to no request of ours; ignored");
                }
            },
        }
    }

    fn notification(&mut self, n: Notification) {
        match n.method.parse::<NotificationMethod>() {
            Ok(NotificationMethod::Initialized) => {
                if let Lifecycle::Initializing { version, client } = &self.state {
                    self.state = Lifecycle::Ready {
                        version: *version,
                        client: client.clone(),
                        log_level: None,
                    };
                    if let Some(timer) = self.init_timer.take() {
                        timer.cancel();
                    }
                }
            }
            Ok(NotificationMethod::Cancelled) => {
                let id = n
                    .params
                    .as_ref()
                    .and_then(|p| p.get("requestId"))
                    .and_then(|v| serde_json::from_value::<Id>(v.clone()).ok());
                if let Some(id) = id {
                    if let Some(running) = self.in_flight.remove(&id) {
                        running.task.abort();
                    }
                    for sub in self.listens.remove(&id).unwrap_or_default() {
                        sub.process().stop(ExitReason::Normal);
                    }
                }
            }
            _ => {}
        }
    }

    async fn request(&mut self, request: Request, ctx: &mut Context<Self>) {
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
                self.state = if method == Some(Method::ServerDiscover) {
                    Lifecycle::Discovered
                } else {
                    Lifecycle::Modern
                };
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
                    self.state = Lifecycle::Modern;
                }
                self.modern(method, request, ctx).await;
            }
            Lifecycle::Modern => self.modern(method, request, ctx).await,
            Lifecycle::Initializing { .. } | Lifecycle::Ready { .. } => {
                self.handshake(method, request, ctx).await
            }
        }
    }

    async fn initialize(&mut self, request: Request, ctx: &mut Context<Self>) {
        let params = request.params.unwrap_or_default();
        let Some(requested) = params.get("protocolVersion").and_then(Value::as_str) else {
            let error = ErrorObject::invalid_params("initialize needs protocolVersion")
                .with_data(json!({ "field": "protocolVersion" }));
            return self.respond(Some(request.id), Err(error)).await;
        };
        let version = ProtocolVersion::negotiate_handshake(requested);
        let client = Arc::new(
            params
                .get("capabilities")
                .cloned()
                .unwrap_or_else(|| json!({})),
        );
        let mut result = json!({
            "protocolVersion": version.as_str(),
            "capabilities": self.server.capabilities(Era::Handshake),
            "serverInfo": self.server.info(),
        });
        if let Some(text) = self.server.instructions() {
            result["instructions"] = text.into();
        }
        if version == ProtocolVersion::V2025_11_25 && self.server.serves_tasks() {
            result["capabilities"]["tasks"] =
                json!({ "list": {}, "cancel": {}, "requests": { "tools": { "call": {} } } });
        }
        self.state = Lifecycle::Initializing { version, client };
        // Until notifications/initialized comes, or the deadline.
        self.init_timer = Some(send_after(
            self.server.config().init_timeout,
            ctx.myself().clone(),
            SessionMsg::InitDeadline,
        ));
        self.respond(Some(request.id), Ok(result)).await;
    }

    async fn handshake(
        &mut self,
        method: Option<Method>,
        request: Request,
        ctx: &mut Context<Self>,
    ) {
        let (version, client) = match &self.state {
            Lifecycle::Initializing { version, client }
            | Lifecycle::Ready {
                version, client, ..
            } => (*version, client.clone()),
            _ => return,
        };
        let Some(method) = method else {
            let error = ErrorObject::method_not_found(&request.method);
            return self.respond(Some(request.id), Err(error)).await;
        };
        match method {
            Method::Initialize => {
                let error = lifecycle_error("the session is already initialized", "initialized");
                self.respond(Some(request.id), Err(error)).await;
            }
            Method::Ping => self.respond(Some(request.id), Ok(json!({}))).await,
            Method::LoggingSetLevel => {
                let level = request
                    .params
                    .as_ref()
                    .and_then(|p| p.get("level"))
                    .and_then(Value::as_str)
                    .and_then(|l| l.parse::<LogLevel>().ok());
                let outcome = match (level, &mut self.state) {
                    (Some(level), Lifecycle::Ready { log_level, .. }) => {
                        *log_level = Some(level);
                        Ok(json!({}))
                    }
                    (Some(_), _) => Err(lifecycle_error(
                        "wait for notifications/initialized",
                        "initializing",
                    )),
                    (None, _) => Err(ErrorObject::invalid_params("invalid log level")
                        .with_data(json!({ "field": "level", "allowed": LogLevel::names() }))),
                };
                self.respond(Some(request.id), outcome).await;
            }
            Method::ResourcesSubscribe | Method::ResourcesUnsubscribe
                if self.server.serves(Method::ResourcesRead) =>
            {
                let outcome = self.subscription(method, &request, ctx).await;
                self.respond(Some(request.id), outcome).await;
            }
            Method::TasksGet | Method::TasksCancel | Method::TasksList | Method::TasksResult
                if version == ProtocolVersion::V2025_11_25 && self.server.serves_tasks() =>
            {
                let task = request
                    .params
                    .as_ref()
                    .and_then(|p| p.get("taskId"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let store = self.server.tasks();
                let outcome = match (method, task) {
                    (Method::TasksList, _) => Ok(store.legacy_list(&self.legacy_tasks)),
                    (Method::TasksGet, Some(task)) => store.legacy_get(&task),
                    (Method::TasksCancel, Some(task)) => store.legacy_cancel(&task),
                    (Method::TasksResult, Some(task)) => {
                        if let Err(error) = self.admit(&request.id) {
                            return self.respond(Some(request.id), Err(error)).await;
                        }
                        let server = self.server.clone();
                        let work = async move { server.tasks().legacy_result(&task).await };
                        return self.spawn_answer(request.id, method, work, ctx);
                    }
                    _ => Err(ErrorObject::invalid_params("missing taskId")
                        .with_data(json!({ "field": "taskId" }))),
                };
                self.respond(Some(request.id), outcome).await;
            }
            method if self.server.serves(method) => {
                let level = match &self.state {
                    Lifecycle::Ready { log_level, .. } => *log_level,
                    _ => None,
                };
                self.run(method, request, version, client, level, false, ctx)
                    .await;
            }
            method => {
                let error = ErrorObject::method_not_found(method.as_str());
                self.respond(Some(request.id), Err(error)).await;
            }
        }
    }

    /// Validates a 2026-07-28 request's envelope, then serves it.
    async fn modern(&mut self, method: Option<Method>, request: Request, ctx: &mut Context<Self>) {
        let (envelope, requested, caps) = match open_envelope(request.params.as_ref()) {
            Ok(parts) => parts,
            Err(error) => return self.respond(Some(request.id), Err(error)).await,
        };
        if ProtocolVersion::parse(requested).map(ProtocolVersion::era) != Some(Era::Modern) {
            let error = ErrorObject::new(code::UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version")
                .with_data(json!({ "supported": ProtocolVersion::supported(Era::Modern), "requested": requested }));
            return self.respond(Some(request.id), Err(error)).await;
        }
        // The spec's order: envelope, version, method, then the rest.
        let known = method.filter(|m| {
            m.in_era(Era::Modern)
                && match m {
                    Method::ServerDiscover | Method::SubscriptionsListen => true,
                    m if m.is_task() => self.server.serves_tasks(),
                    m => self.server.serves(*m),
                }
        });
        let Some(method) = known else {
            let error = ErrorObject::method_not_found(&request.method);
            return self.respond(Some(request.id), Err(error)).await;
        };
        let level = match envelope.get(meta::LOG_LEVEL) {
            None => None,
            Some(level) => match level.as_str().map(str::parse::<LogLevel>) {
                Some(Ok(level)) => Some(level),
                _ => {
                    let error = ErrorObject::invalid_params("invalid log level").with_data(
                        json!({ "field": meta::LOG_LEVEL, "allowed": LogLevel::names() }),
                    );
                    return self.respond(Some(request.id), Err(error)).await;
                }
            },
        };
        let client = Arc::new(caps.clone());
        if method == Method::ToolsCall {
            match self.runs_as_task(&request, &client) {
                Some(Ok(())) => return self.start_task(request, client).await,
                Some(Err(error)) => return self.respond(Some(request.id), Err(error)).await,
                None => {}
            }
        }
        match method {
            Method::ServerDiscover => {
                let mut result = json!({
                    "supportedVersions": ProtocolVersion::ALL.iter().rev().map(|v| v.as_str()).collect::<Vec<_>>(),
                    "capabilities": self.server.capabilities(Era::Modern),
                });
                if let Some(text) = self.server.instructions() {
                    result["instructions"] = text.into();
                }
                let shaped = shape_modern(&self.server, Method::ServerDiscover, result);
                self.respond(Some(request.id), Ok(shaped)).await;
            }
            Method::SubscriptionsListen => self.listen(request, ctx).await,
            Method::TasksGet | Method::TasksUpdate | Method::TasksCancel => {
                let outcome = self.task_method(method, &request, &client);
                let outcome = outcome.map(|r| shape_modern(&self.server, method, r));
                self.respond(Some(request.id), outcome).await;
            }
            _ => {
                self.run(
                    method,
                    request,
                    ProtocolVersion::V2026_07_28,
                    client,
                    level,
                    true,
                    ctx,
                )
                .await
            }
        }
    }

    /// Sends a request to the client and keeps its reply channel until the
    /// answer comes or the server-request timeout passes.
    async fn ask_client(&mut self, request: HeldRequest, ctx: &mut Context<Self>) {
        let (method, params, reply, related) = request;
        self.next_server_id += 1;
        let id = Id::String(format!("arbor-{}", self.next_server_id).into());
        let params = match params {
            Value::Object(p) => Some(p),
            _ => None,
        };
        self.pending.insert(id.clone(), (reply, related.clone()));
        send_after(
            self.server.config().server_request_timeout,
            ctx.myself().clone(),
            SessionMsg::ServerRequestExpired(id.clone()),
        );
        let request = Message::Request(Request {
            id,
            method: method.as_str().into(),
            params,
        });
        self.send(Frame::new(&request, Some(related))).await;
    }

    /// Whether a 2026-07-28 `tools/call` runs as a task: `Some(Ok)` to start
    /// one, `Some(Err)` when the tool needs the extension the client lacks,
    /// `None` to answer it directly.
    fn runs_as_task(&self, request: &Request, client: &Value) -> Option<Result<(), ErrorObject>> {
        let name = request.params.as_ref()?.get("name")?.as_str()?;
        match (
            self.server.tool_task_support(name)?,
            tasks::declared(client),
        ) {
            (TaskSupport::Never, _) | (TaskSupport::Optional, false) => None,
            (TaskSupport::Optional | TaskSupport::Required, true) => Some(Ok(())),
            (TaskSupport::Required, false) => Some(Err(tasks::missing_extension())),
        }
    }

    async fn start_task(&mut self, request: Request, client: Arc<Value>) {
        let mut params = request.params.unwrap_or_default();
        params.remove("_meta");
        let request_ctx = RequestContext::new(
            request.id.clone(),
            ProtocolVersion::V2026_07_28,
            client,
            self.server.clone(),
        );
        let created = tasks::start(&self.server, params, request_ctx)
            .map(|created| shape_modern(&self.server, Method::ToolsCall, created));
        self.respond(Some(request.id), created).await;
    }

    fn task_method(
        &self,
        method: Method,
        request: &Request,
        client: &Value,
    ) -> Result<Value, ErrorObject> {
        if !tasks::declared(client) {
            return Err(tasks::missing_extension());
        }
        let params = request.params.clone().unwrap_or_default();
        let id = params
            .get("taskId")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ErrorObject::invalid_params("missing taskId")
                    .with_data(json!({ "field": "taskId" }))
            })?;
        let store = self.server.tasks();
        match method {
            Method::TasksGet => store.get(id),
            Method::TasksCancel => store.cancel(id),
            _ => {
                let responses = match params.get("inputResponses") {
                    Some(Value::Object(r)) => r.clone(),
                    _ => {
                        return Err(
                            ErrorObject::invalid_params("inputResponses must be an object")
                                .with_data(json!({ "field": "inputResponses" })),
                        )
                    }
                };
                store.update(id, responses)
            }
        }
    }

    fn subscription_count(&self) -> usize {
        self.subscriptions.len() + self.listens.values().map(Vec::len).sum::<usize>()
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

    /// Handshake era: `resources/subscribe` and `resources/unsubscribe`.
    async fn subscription(
        &mut self,
        method: Method,
        request: &Request,
        ctx: &mut Context<Self>,
    ) -> Result<Value, ErrorObject> {
        let uri = request
            .params
            .as_ref()
            .and_then(|p| p.get("uri"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ErrorObject::invalid_params("missing uri").with_data(json!({ "field": "uri" }))
            })?;
        if method == Method::ResourcesUnsubscribe {
            if let Ok(parsed) = ResourceUri::parse(uri) {
                if let Some(sub) = self.subscriptions.remove(parsed.as_str()) {
                    sub.process().stop(ExitReason::Normal);
                }
            }
            return Ok(json!({}));
        }
        if ResourceUri::parse(uri).is_ok_and(|u| self.subscriptions.contains_key(u.as_str())) {
            return Ok(json!({}));
        }
        let parsed = self.subscribable(uri, Era::Handshake, 0)?;
        let notification = Frame::new(
            &Message::Notification(Notification {
                method: NotificationMethod::ResourcesUpdated.as_str().into(),
                params: Some(Map::from_iter([("uri".to_string(), Value::from(uri))])),
            }),
            None,
        );
        let sub = self.start_subscription(notification, ctx).await?;
        self.server
            .subscribers()
            .join(parsed.as_str().to_string(), &sub.process());
        self.subscriptions.insert(parsed.as_str().to_string(), sub);
        Ok(json!({}))
    }

    /// Starts a subscription actor; it gets updates once it joins a group.
    async fn start_subscription(
        &self,
        notification: Frame,
        ctx: &mut Context<Self>,
    ) -> Result<ActorRef<SubscriptionMsg>, ErrorObject> {
        subscribe(&ctx.process(), self.out.clone(), notification)
            .await
            .map_err(|e| ErrorObject::internal(e.to_string()))
    }

    /// 2026-07-28: `subscriptions/listen`. Acknowledges the subset it honours
    /// first, then delivers updates tagged with the listen request's id until
    /// the client cancels it or the input ends.
    async fn listen(&mut self, request: Request, ctx: &mut Context<Self>) {
        let id = request.id.clone();
        if self.listens.contains_key(&id) || self.in_flight.contains_key(&id) {
            let error = ErrorObject::new(
                code::INVALID_REQUEST,
                "a request with this id is already in flight",
            )
            .with_data(json!({ "id": id }));
            return self.respond(Some(id), Err(error)).await;
        }
        let filter = request.params.as_ref().and_then(|p| p.get("notifications"));
        let Some(filter) = filter.and_then(Value::as_object) else {
            let error =
                ErrorObject::invalid_params("subscriptions/listen needs a notifications filter")
                    .with_data(json!({ "field": "notifications" }));
            return self.respond(Some(id), Err(error)).await;
        };
        let wanted: Vec<String> = match filter.get("resourceSubscriptions") {
            None => Vec::new(),
            Some(v) => match serde_json::from_value(v.clone()) {
                Ok(list) => list,
                Err(_) => {
                    let error =
                        ErrorObject::invalid_params("resourceSubscriptions must be a list of URIs")
                            .with_data(json!({ "field": "notifications.resourceSubscriptions" }));
                    return self.respond(Some(id), Err(error)).await;
                }
            },
        };
        let max = self.server.config().max_subscriptions;
        if self.subscription_count() >= max {
            let error = ErrorObject::invalid_params("too many subscriptions on this connection")
                .with_data(json!({ "limit": "max_subscriptions", "max": max }));
            return self.respond(Some(id), Err(error)).await;
        }
        let id_value = serde_json::to_value(&id).unwrap_or(Value::Null);
        let mut honoured = Vec::new();
        let mut subs = Vec::new();
        // Groups are joined only after the acknowledgement is queued, so no
        // update can overtake it.
        let mut joins: Vec<(String, ActorRef<SubscriptionMsg>)> = Vec::new();
        for uri in wanted {
            let Ok(parsed) = self.subscribable(&uri, Era::Modern, subs.len()) else {
                continue;
            };
            let mut params = Map::new();
            params.insert("uri".into(), Value::from(uri.as_str()));
            params.insert(
                "_meta".into(),
                json!({ "io.modelcontextprotocol/subscriptionId": id_value }),
            );
            let notification = Frame::new(
                &Message::Notification(Notification {
                    method: NotificationMethod::ResourcesUpdated.as_str().into(),
                    params: Some(params),
                }),
                Some(id.clone()),
            );
            if let Ok(sub) = self.start_subscription(notification, ctx).await {
                joins.push((parsed.as_str().to_string(), sub.clone()));
                subs.push(sub);
                honoured.push(uri);
            }
        }
        let mut ack = Map::new();
        for kind in ListKind::ALL {
            if filter.get(kind.filter()).and_then(Value::as_bool) != Some(true)
                || self.subscription_count() + subs.len() >= self.server.config().max_subscriptions
            {
                continue;
            }
            let notification = Frame::new(
                &Message::Notification(Notification {
                    method: kind.notification().as_str().into(),
                    params: Some(Map::from_iter([(
                        "_meta".to_string(),
                        json!({ "io.modelcontextprotocol/subscriptionId": id_value }),
                    )])),
                }),
                Some(id.clone()),
            );
            if let Ok(sub) = self.start_subscription(notification, ctx).await {
                joins.push((kind.group(), sub.clone()));
                subs.push(sub);
                ack.insert(kind.filter().into(), Value::Bool(true));
            }
        }
        if filter.contains_key("resourceSubscriptions") {
            ack.insert("resourceSubscriptions".into(), json!(honoured));
        }
        let ack = Message::Notification(Notification {
            method: NotificationMethod::SubscriptionsAcknowledged
                .as_str()
                .into(),
            params: Some(Map::from_iter([
                ("notifications".to_string(), Value::Object(ack)),
                (
                    "_meta".to_string(),
                    json!({ "io.modelcontextprotocol/subscriptionId": id_value }),
                ),
            ])),
        });
        // Queued and joined with no await between when there is room: a
        // client that acts on the acknowledgement at once must find the
        // subscription live.
        if let Err(ack) = self.out.queue_now(Frame::new(&ack, Some(id.clone()))) {
            self.send(ack).await;
        }
        for (group, sub) in joins {
            self.server.subscribers().join(group, &sub.process());
        }
        self.listens.insert(id, subs);
    }

    /// Ends every listen with its final result.
    async fn end_listens(&mut self) {
        let listens: Vec<_> = self.listens.drain().collect();
        for (id, subs) in listens {
            let answer = self.listen_ended(id.clone(), subs);
            self.send(Frame::new(&answer, Some(id))).await;
        }
    }

    /// Stops a listen's subscriptions; the result that ends it.
    fn listen_ended(&self, id: Id, subs: Vec<ActorRef<SubscriptionMsg>>) -> Message {
        for sub in subs {
            sub.process().stop(ExitReason::Normal);
        }
        let id_value = serde_json::to_value(&id).unwrap_or(Value::Null);
        let result = shape_modern(
            &self.server,
            Method::SubscriptionsListen,
            json!({ "_meta": { "io.modelcontextprotocol/subscriptionId": id_value } }),
        );
        Message::Response(Response {
            id: Some(id),
            outcome: Ok(result),
        })
    }

    /// Runs a feature request as a task owned by this session.
    /// Refuses a request whose id is in use, or one past the in-flight limit.
    fn admit(&self, id: &Id) -> Result<(), ErrorObject> {
        if self.in_flight.contains_key(id) || self.listens.contains_key(id) {
            return Err(ErrorObject::new(
                code::INVALID_REQUEST,
                "a request with this id is already in flight",
            )
            .with_data(json!({ "id": id })));
        }
        let max = self.server.config().max_in_flight;
        if self.in_flight.len() >= max || self.out.owed() >= max {
            return Err(
                ErrorObject::new(code::INVALID_REQUEST, "too many requests in flight")
                    .with_data(json!({ "limit": "max_in_flight", "max": max })),
            );
        }
        Ok(())
    }

    /// Runs `work` as a task owned by this session and answers request `id`
    /// with its outcome: bounded by the request timeout, a panic answered
    /// `-32603`, aborted without an answer if the client cancels.
    fn spawn_answer(
        &mut self,
        id: Id,
        method: Method,
        work: impl std::future::Future<Output = Result<Value, ErrorObject>> + Send + 'static,
        ctx: &mut Context<Self>,
    ) {
        let (out, myself) = (self.out.clone(), ctx.myself().clone());
        let timeout = self.server.config().request_timeout;
        let task_id = id.clone();
        self.next_task += 1;
        let serial = self.next_task;
        let batched = self.batch.is_some();
        let reply_to = self.batch.as_mut().map(|batch| {
            let (tx, rx) = oneshot::channel();
            batch.waiting.push(rx);
            tx
        });
        let unsent = self.out.owe();
        let answered = Arc::new(AtomicBool::new(false));
        let answering = answered.clone();
        // In a batch, the task gathering its answers keeps the share.
        let share = if batched { None } else { self.share.take() };
        let task = tokio::spawn(async move {
            let mut held = (unsent, share);
            let outcome =
                match tokio::time::timeout(timeout, AssertUnwindSafe(work).catch_unwind()).await {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(_panic)) => Err(ErrorObject::internal("the handler failed")
                        .with_data(json!({ "method": method.as_str() }))),
                    Err(_) => Err(ErrorObject::new(code::REQUEST_TIMEOUT, "request timed out")
                        .with_data(json!({ "timeoutMs": timeout.as_millis() as u64 }))),
                };
            // The request's share of the server's memory goes before its
            // answer waits for one of its own: held on to, the two would
            // wait on each other once the budget is spent.
            if let Some(share) = held.1.as_mut() {
                share.release_memory();
            }
            let response = Message::Response(Response {
                id: Some(task_id.clone()),
                outcome,
            });
            // Finished first, so the id is free once the client has the answer.
            answering.store(true, Ordering::Release);
            let _ = myself.send_system(SessionMsg::Finished(task_id.clone(), serial));
            match reply_to {
                Some(batch) => {
                    let _ = batch.send(response.to_value());
                }
                None => {
                    let _ = out.send(Frame::new(&response, Some(task_id))).await;
                }
            }
        });
        self.in_flight.insert(
            id,
            Running {
                serial,
                task: task.abort_handle(),
                batched,
                answered,
            },
        );
    }

    /// Runs a feature request as a task owned by this session.
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &mut self,
        method: Method,
        request: Request,
        version: ProtocolVersion,
        client: Arc<Value>,
        log_level: Option<LogLevel>,
        modern: bool,
        ctx: &mut Context<Self>,
    ) {
        let Request { id, params, .. } = request;
        if let Err(error) = self.admit(&id) {
            return self.respond(Some(id), Err(error)).await;
        }
        let config = self.server.config();
        let mut params = params.unwrap_or_default();
        let progress = params
            .get("_meta")
            .and_then(|m| m.get("progressToken"))
            .filter(|t| t.is_string() || t.is_i64())
            .map(|token| Progress::new(token.clone(), config.progress_interval));
        params.remove("_meta");
        let mut request_ctx = RequestContext::new(id.clone(), version, client, self.server.clone())
            .with_output(self.out.clone(), progress, log_level);
        if modern {
            match open_request_state(&self.server, method, &mut params) {
                Ok(Some((inputs, state))) => request_ctx = request_ctx.with_inputs(inputs, state),
                Ok(None) => {}
                Err(error) => return self.respond(Some(id), Err(error)).await,
            }
        }
        let (server, myself) = (self.server.clone(), ctx.myself().clone());
        if version == ProtocolVersion::V2025_11_25 && method == Method::ToolsCall {
            match self.legacy_task(&mut params) {
                Ok(false) => {}
                Ok(true) => {
                    let work = async move {
                        serve_request(
                            &server,
                            Method::ToolsCall,
                            params,
                            request_ctx,
                            false,
                            &myself,
                        )
                        .await
                    };
                    let created = tasks::start_legacy(&self.server, work).map(|(task, created)| {
                        self.legacy_tasks.push(task);
                        created
                    });
                    return self.respond(Some(id), created).await;
                }
                Err(error) => return self.respond(Some(id), Err(error)).await,
            }
        }
        let work = async move {
            serve_request(&server, method, params, request_ctx, modern, &myself).await
        };
        self.spawn_answer(id, method, work, ctx);
    }

    /// 2025-11-25: whether a `tools/call` runs as a task (its `task` param
    /// asks for one), checked against the tool's `taskSupport`.
    fn legacy_task(&self, params: &mut Map<String, Value>) -> Result<bool, ErrorObject> {
        let asked = params.remove("task").is_some();
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match (self.server.tool_task_support(name), asked) {
            (None, _)
            | (Some(TaskSupport::Never), false)
            | (Some(TaskSupport::Optional), false) => Ok(false),
            (Some(TaskSupport::Never), true) => {
                Err(ErrorObject::method_not_found(Method::ToolsCall.as_str())
                    .with_data(json!({ "tool": name, "taskSupport": "forbidden" })))
            }
            (Some(TaskSupport::Required), false) => {
                Err(ErrorObject::method_not_found(Method::ToolsCall.as_str())
                    .with_data(json!({ "tool": name, "taskSupport": "required" })))
            }
            (Some(_), true) => Ok(true),
        }
    }
}

/// The error for a 2026-07-28 request without its `_meta` envelope.
fn missing_envelope() -> ErrorObject {
    ErrorObject::invalid_params(
        "a 2026-07-28 request needs params._meta with io.modelcontextprotocol/protocolVersion and io.modelcontextprotocol/clientCapabilities",
    )
    .with_data(json!({ "field": "_meta", "required": [meta::PROTOCOL_VERSION, meta::CLIENT_CAPABILITIES] }))
}

/// The protocol version a 2026-07-28 request's envelope names, once the
/// envelope has what every such request must carry (checked before
/// anything else about the request, as the specification orders it).
///
/// # Errors
/// `-32602` naming the missing fields.
pub fn envelope_version(params: Option<&Map<String, Value>>) -> Result<&str, ErrorObject> {
    open_envelope(params).map(|(_, version, _)| version)
}

/// A 2026-07-28 request's `_meta`, with the version and client
/// capabilities every such request carries.
fn open_envelope(
    params: Option<&Map<String, Value>>,
) -> Result<(&Map<String, Value>, &str, &Value), ErrorObject> {
    let envelope = params
        .and_then(|p| p.get("_meta"))
        .and_then(Value::as_object)
        .ok_or_else(missing_envelope)?;
    let version = envelope.get(meta::PROTOCOL_VERSION).and_then(Value::as_str);
    let caps = envelope
        .get(meta::CLIENT_CAPABILITIES)
        .filter(|c| c.is_object());
    match (version, caps) {
        (Some(version), Some(caps)) => Ok((envelope, version, caps)),
        _ => Err(missing_envelope()),
    }
}

/// Runs one feature request to its result, in its era: input a handler asks
/// for becomes an `input_required` result (2026-07-28) or requests to the
/// client through the session (handshake), after which the handler runs
/// again with the answers.
async fn serve_request(
    server: &McpServer,
    method: Method,
    params: Map<String, Value>,
    mut ctx: RequestContext,
    modern: bool,
    session: &ActorRef<SessionMsg>,
) -> Result<Value, ErrorObject> {
    for _ in 0..MAX_INPUT_ROUNDS {
        let input = match server.call(method, params.clone(), ctx.clone()).await? {
            Outcome::Done(result) if modern => return Ok(shape_modern(server, method, result)),
            Outcome::Done(result) => return Ok(result),
            Outcome::NeedsInput(input) => input,
        };
        if let Some(missing) = input.missing_capabilities(ctx.client_capabilities(), ctx.version())
        {
            let code = if modern {
                code::MISSING_REQUIRED_CLIENT_CAPABILITY
            } else {
                code::INVALID_PARAMS
            };
            return Err(ErrorObject::new(
                code,
                "the request needs a client capability that was not declared",
            )
            .with_data(json!({ "requiredCapabilities": missing })));
        }
        if modern {
            return input_required(server, method, &params, &input);
        }
        let mut answers = Map::new();
        for (key, request) in &input.requests {
            let (reply, answer) = oneshot::channel();
            session
                .send_system(SessionMsg::ServerRequest {
                    method: request.method(),
                    params: request.params(ctx.version()),
                    reply,
                    related: ctx.id().clone(),
                })
                .map_err(|_| ErrorObject::internal("the session has ended"))?;
            let answer = answer
                .await
                .map_err(|_| ErrorObject::internal("the session has ended"))??;
            answers.insert(key.clone(), answer);
        }
        ctx = ctx.with_inputs(answers, input.state.clone());
    }
    Err(
        ErrorObject::internal("the handler asked for input too many times")
            .with_data(json!({ "limit": MAX_INPUT_ROUNDS })),
    )
}

/// What the sealed request state binds: a digest of the method, the target
/// and the arguments, so an answer cannot be replayed onto another call and
/// the state stays small whatever the arguments.
fn binding(method: Method, params: &Map<String, Value>) -> String {
    use sha2::{Digest, Sha256};
    let bound = json!({
        "method": method.as_str(),
        "name": params.get("name"),
        "uri": params.get("uri"),
        "arguments": params.get("arguments"),
    });
    let digest = Sha256::digest(bound.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 2026-07-28 `input_required` result, with the state sealed.
fn input_required(
    server: &McpServer,
    method: Method,
    params: &Map<String, Value>,
    input: &InputRequired,
) -> Result<Value, ErrorObject> {
    let payload = json!({ "bind": binding(method, params), "state": input.state });
    let payload = serde_json::to_vec(&payload).map_err(|e| ErrorObject::internal(e.to_string()))?;
    let token = server.sealer().seal(
        REQUEST_STATE_PURPOSE,
        &payload,
        server.config().request_state_ttl,
    );
    let result = json!({
        "resultType": "input_required",
        "inputRequests": input.wire_requests(),
        "requestState": token,
    });
    Ok(shape_modern(server, method, result))
}

/// Takes a retried request's `inputResponses` and `requestState` out of its
/// params; the state must open (once), and be bound to this very call.
fn open_request_state(
    server: &McpServer,
    method: Method,
    params: &mut Map<String, Value>,
) -> Result<Option<Answers>, ErrorObject> {
    let state = params.remove("requestState");
    let responses = params.remove("inputResponses");
    let Some(state) = state else {
        // Answers with no state are still answers (the client chose them
        // either way), but with no state kept: a handler that kept some
        // sees none, and asks again.
        return match responses {
            Some(Value::Object(r)) => Ok(Some((r, None))),
            _ => Ok(None),
        };
    };
    let bad = |why: &str| {
        ErrorObject::invalid_params(format!("invalid requestState: {why}"))
            .with_data(json!({ "field": "requestState", "reason": why }))
    };
    let token = state.as_str().ok_or_else(|| bad("not a string"))?;
    // Checked first, then spent: a state shown for the wrong call stays
    // usable for the right one.
    let payload = server
        .sealer()
        .open(REQUEST_STATE_PURPOSE, token)
        .map_err(|e| bad(&e.to_string()))?;
    let payload: Value = serde_json::from_slice(&payload).map_err(|_| bad("unreadable"))?;
    if payload.get("bind").and_then(Value::as_str) != Some(binding(method, params).as_str()) {
        return Err(bad("issued for another request"));
    }
    server
        .sealer()
        .open_once(REQUEST_STATE_PURPOSE, token)
        .map_err(|e| bad(&e.to_string()))?;
    let responses = match responses {
        Some(Value::Object(r)) => r,
        None => Map::new(),
        Some(_) => {
            return Err(
                ErrorObject::invalid_params("inputResponses must be an object")
                    .with_data(json!({ "field": "inputResponses" })),
            )
        }
    };
    let kept = payload.get("state").filter(|s| !s.is_null()).cloned();
    Ok(Some((responses, kept)))
}

/// Adds what every 2026-07-28 result carries: `resultType`, the server's
/// identity in `_meta`, and cache hints where the method is cacheable.
fn shape_modern(server: &McpServer, method: Method, result: Value) -> Value {
    let mut obj = match result {
        Value::Object(obj) => obj,
        other => {
            let mut m = Map::new();
            m.insert("value".into(), other);
            m
        }
    };
    obj.entry("resultType").or_insert_with(|| "complete".into());
    // Only complete results are cacheable; `resources/read` has its
    // resource's hint already.
    if obj.get("resultType").and_then(Value::as_str) == Some("complete") {
        if let Some(hint) = server.config().list_caching.for_method(method) {
            hint.apply(&mut obj);
        }
    }
    let meta = obj.entry("_meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        meta.insert(meta::SERVER_INFO.into(), json!(server.info()));
    }
    Value::Object(obj)
}
