//! The client process: one per connection. It owns the connection's state
//! (dialling, negotiating, ready, waiting to redial, closed), the
//! pending-request table and the request timers; everything reaches it as
//! a message, so no two things ever race on a request.

use std::collections::VecDeque;
use std::sync::Arc;

use arbor_runtime::timer::send_after;
use arbor_runtime::{Actor, Context, ExitReason, Flow};
use rand::Rng;
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::config::{ClientConfig, VersionChoice};
use super::connector::Connector;
use super::inbox::{ClientMsg, Inbox};
use super::pending::Pending;
use super::session::{Negotiated, Shared};
use super::task_answers::TaskAnswers;
use super::wire::{Outgoing, Wire};
use super::ClientError;
use crate::jsonrpc::{Id, Message, Notification, Request, Response};
use crate::model::params::{CancelledParams, InitializeParams, RequestMeta};
use crate::model::{DiscoverResult, InitializeResult, ProgressParams};
use crate::version::{Era, ProtocolVersion};

/// A request not yet sent: the connection is not ready.
struct Queued {
    id: Id,
    method: String,
    params: Option<Map<String, Value>>,
    param_headers: Vec<(String, String)>,
}

/// Where the negotiation of a new connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// `server/discover` sent (2026-07-28).
    Discover,
    /// `initialize` sent (handshake era).
    Initialize,
}

/// The connection's state.
enum Link {
    /// A dial is under way.
    Dialling,
    /// Connected; the version is being agreed.
    Negotiating {
        wire: Arc<dyn Wire>,
        step: Step,
        id: Id,
    },
    /// Ready for requests.
    Ready {
        wire: Arc<dyn Wire>,
        session: Arc<Negotiated>,
    },
    /// Lost; redialling after a backoff.
    Backoff,
}

/// The client process's state.
pub(crate) struct ClientProcess {
    connector: Arc<dyn Connector>,
    config: Arc<ClientConfig>,
    shared: Arc<Shared>,
    link: Link,
    /// Which connection is current; what an older one delivers is dropped.
    epoch: u64,
    /// Consecutive failed dials, for the backoff.
    attempt: u32,
    /// Whether this connection's `server/discover` was already retried
    /// after an unsupported-version answer that listed 2026-07-28.
    discover_retried: bool,
    pending: Pending<Value>,
    backlog: VecDeque<Queued>,
    /// Told once the first connection is ready, or why it never will be.
    first: Option<oneshot::Sender<Result<(), ClientError>>>,
    /// What the handlers declare in `initialize`, built once.
    capabilities: crate::model::JsonObject,
    /// The server's requests the client runs as tasks (2025-11-25).
    task_answers: Arc<TaskAnswers>,
    /// The fixed part of the 2026-07-28 envelope, built once.
    envelope: Map<String, Value>,
}

impl ClientProcess {
    pub(crate) fn new(
        connector: Arc<dyn Connector>,
        config: Arc<ClientConfig>,
        shared: Arc<Shared>,
        first: oneshot::Sender<Result<(), ClientError>>,
    ) -> Self {
        let capabilities = config.handlers.capabilities();
        let fixed = RequestMeta {
            protocol_version: Some(ProtocolVersion::V2026_07_28.as_str().into()),
            client_capabilities: Some(capabilities.clone()),
            client_info: Some(config.client_info.clone()),
            ..RequestMeta::default()
        };
        let envelope = match serde_json::to_value(fixed) {
            Ok(Value::Object(envelope)) => envelope,
            _ => Map::new(),
        };
        // 2026-07-28 has no server requests, hence no tasks for them.
        let mut capabilities = capabilities;
        if let Some(tasks) = config.handlers.task_capability() {
            capabilities.insert("tasks".into(), tasks);
        }
        ClientProcess {
            capabilities,
            task_answers: Arc::new(TaskAnswers::new(&config)),
            envelope,
            connector,
            config,
            shared,
            link: Link::Dialling,
            epoch: 0,
            attempt: 0,
            discover_retried: false,
            pending: Pending::default(),
            backlog: VecDeque::new(),
            first: Some(first),
        }
    }

    fn dial(&mut self, ctx: &Context<Self>) {
        self.epoch += 1;
        self.discover_retried = false;
        self.link = Link::Dialling;
        let epoch = self.epoch;
        let connector = self.connector.clone();
        let me = ctx.myself().clone();
        let inbox = Inbox::new(me.clone(), epoch);
        tokio::spawn(async move {
            let wire = connector.connect(inbox).await;
            let _ = me.send_system(ClientMsg::Dialled { epoch, wire });
        });
    }

    /// The connection is lost: every request sent on it fails now (it may
    /// or may not have run: the caller decides whether to retry), those
    /// still queued wait for the next one, and the client redials after a
    /// backoff when its transport allows.
    fn lost(&mut self, why: String, ctx: &mut Context<Self>) {
        self.shared.set_session(None);
        // What was sent fails now; what waits in the queue was never sent,
        // and waits on for the next connection (or its own timeout).
        let queued: std::collections::HashSet<Id> =
            self.backlog.iter().map(|q| q.id.clone()).collect();
        let failed = self
            .pending
            .fail_unless(&ClientError::Disconnected(why.clone()), |id| {
                queued.contains(id)
            });
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(ClientError::Transport(why)));
            ctx.stop(ExitReason::Normal);
            return;
        }
        tracing::info!(%why, failed, "client connection lost");
        if !self.connector.reconnects() || !self.config.reconnect.enabled {
            self.fail_backlog(&ClientError::Disconnected(why.clone()));
            ctx.stop(ExitReason::Normal);
            return;
        }
        self.link = Link::Backoff;
        let delay = self
            .config
            .reconnect
            .delay(self.attempt, rand::rng().random::<f64>());
        self.attempt = self.attempt.saturating_add(1);
        send_after(delay, ctx.myself().clone(), ClientMsg::Redial);
    }

    fn fail_backlog(&mut self, error: &ClientError) {
        for queued in self.backlog.drain(..) {
            self.pending.resolve(&queued.id, Err(error.clone()));
        }
    }

    async fn negotiate(&mut self, wire: Arc<dyn Wire>, step: Step, ctx: &mut Context<Self>) {
        let id = self.shared.ids.next();
        let (method, params, version) = match step {
            Step::Discover => (
                "server/discover",
                self.envelope(Map::new(), None),
                Some(ProtocolVersion::V2026_07_28),
            ),
            Step::Initialize => {
                let version = match self.config.version {
                    VersionChoice::Pinned(v) if v.era() == Era::Handshake => v,
                    _ => ProtocolVersion::LATEST_HANDSHAKE,
                };
                let params = InitializeParams {
                    protocol_version: version.as_str().to_string(),
                    capabilities: self.capabilities.clone(),
                    client_info: Some(self.config.client_info.clone()),
                };
                let params = match serde_json::to_value(params) {
                    Ok(Value::Object(map)) => map,
                    _ => Map::new(),
                };
                ("initialize", params, None)
            }
        };
        let message = Message::Request(Request {
            id: id.clone(),
            method: method.into(),
            params: Some(params),
        });
        let mut out = Outgoing::new(message);
        out.version = version;
        let after = self.config.negotiation_timeout;
        send_after(
            after,
            ctx.myself().clone(),
            ClientMsg::Timeout(id.clone(), after),
        );
        self.link = Link::Negotiating {
            wire: wire.clone(),
            step,
            id,
        };
        if let Err(why) = wire.send(out).await {
            self.lost(why, ctx);
        }
    }

    /// The 2026-07-28 envelope merged into a request's `_meta`: the fixed
    /// part built once, the log level and progress token per request.
    fn envelope(
        &self,
        mut params: Map<String, Value>,
        progress: Option<&Id>,
    ) -> Map<String, Value> {
        let meta = params
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(meta) = meta {
            for (k, v) in &self.envelope {
                meta.entry(k.clone()).or_insert_with(|| v.clone());
            }
            // What may change from one request to the next.
            let level = self
                .shared
                .log_level()
                .and_then(|l| serde_json::to_value(l).ok());
            if let Some(level) = level {
                meta.entry("io.modelcontextprotocol/logLevel")
                    .or_insert(level);
            }
            if let Some(token) = progress.and_then(|id| serde_json::to_value(id).ok()) {
                meta.entry("progressToken").or_insert(token);
            }
        }
        params
    }

    async fn negotiated(
        &mut self,
        step: Step,
        outcome: Result<Value, ClientError>,
        ctx: &mut Context<Self>,
    ) {
        let Link::Negotiating { wire, .. } = &self.link else {
            return;
        };
        let wire = wire.clone();
        let session = match (step, outcome) {
            (Step::Discover, Ok(result)) => {
                match serde_json::from_value::<DiscoverResult>(result) {
                    Ok(found) if found.supported_versions.iter().any(|v| v == "2026-07-28") => {
                        Negotiated::modern(found)
                    }
                    Ok(found) if self.config.version == VersionChoice::Auto => {
                        tracing::debug!(offered = ?found.supported_versions, "no 2026-07-28: falling back to initialize");
                        return self.negotiate(wire, Step::Initialize, ctx).await;
                    }
                    Ok(found) => {
                        return self.refuse(
                            ClientError::Version {
                                offered: found.supported_versions,
                            },
                            ctx,
                        );
                    }
                    Err(e) if self.config.version == VersionChoice::Auto => {
                        tracing::debug!(error = %e, "unreadable server/discover: falling back to initialize");
                        return self.negotiate(wire, Step::Initialize, ctx).await;
                    }
                    Err(e) => {
                        return self.refuse(
                            ClientError::Malformed {
                                method: "server/discover".into(),
                                reason: e.to_string(),
                            },
                            ctx,
                        )
                    }
                }
            }
            (Step::Discover, Err(ClientError::Server(e)))
                if e.code == crate::jsonrpc::code::UNSUPPORTED_PROTOCOL_VERSION
                    && offers_modern(e.data.as_ref())
                    && !self.discover_retried =>
            {
                // The server says it speaks 2026-07-28 after all (a
                // gateway's first answer, a version it just enabled): ask
                // once more with it.
                self.discover_retried = true;
                return self.negotiate(wire, Step::Discover, ctx).await;
            }
            (Step::Discover, Err(error)) => {
                if self.config.version == VersionChoice::Auto {
                    tracing::debug!(%error, "server/discover refused: falling back to initialize");
                    return self.negotiate(wire, Step::Initialize, ctx).await;
                }
                return self.refuse(error, ctx);
            }
            (Step::Initialize, Ok(result)) => {
                match serde_json::from_value::<InitializeResult>(result) {
                    Ok(init) => match ProtocolVersion::parse(&init.protocol_version)
                        .filter(|v| v.era() == Era::Handshake)
                        .filter(|v| match self.config.version {
                            VersionChoice::Pinned(pinned) => *v == pinned,
                            VersionChoice::Auto => true,
                        }) {
                        Some(version) => {
                            let initialized = Outgoing {
                                message: Message::Notification(Notification {
                                    method: "notifications/initialized".into(),
                                    params: None,
                                }),
                                version: Some(version),
                                param_headers: Vec::new(),
                            };
                            if let Err(why) = wire.send(initialized).await {
                                return self.lost(why, ctx);
                            }
                            Negotiated::handshake(version, init)
                        }
                        None => {
                            return self.refuse(
                                ClientError::Version {
                                    offered: vec![init.protocol_version],
                                },
                                ctx,
                            )
                        }
                    },
                    Err(e) => {
                        return self.refuse(
                            ClientError::Malformed {
                                method: "initialize".into(),
                                reason: e.to_string(),
                            },
                            ctx,
                        )
                    }
                }
            }
            (Step::Initialize, Err(error @ ClientError::Timeout(_))) => {
                return self.lost(error.to_string(), ctx)
            }
            (Step::Initialize, Err(error)) => return self.refuse(error, ctx),
        };
        let session = Arc::new(session);
        self.shared.set_session(Some(session.clone()));
        self.attempt = 0;
        self.link = Link::Ready {
            wire,
            session: session.clone(),
        };
        if let Some(first) = self.first.take() {
            let _ = first.send(Ok(()));
        }
        while let Some(queued) = self.backlog.pop_front() {
            self.transmit(queued, ctx).await;
        }
    }

    /// Negotiation failed for good: the client stops.
    fn refuse(&mut self, error: ClientError, ctx: &mut Context<Self>) {
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(error.clone()));
        }
        self.pending.fail_all(&error);
        self.fail_backlog(&error);
        ctx.stop(ExitReason::Normal);
    }

    /// Sends a request on the ready connection, or queues it.
    async fn transmit(&mut self, queued: Queued, ctx: &mut Context<Self>) {
        let Link::Ready { wire, session } = &self.link else {
            let max = self.config.max_queued;
            if self.backlog.len() >= max {
                let error = ClientError::Transport(format!(
                    "{max} requests already wait for the connection"
                ));
                self.pending.resolve(&queued.id, Err(error));
            } else {
                self.backlog.push_back(queued);
            }
            return;
        };
        if !self.pending.is_waiting(&queued.id) {
            return; // timed out or cancelled while queued
        }
        let (wire, version) = (wire.clone(), session.version);
        let wants_progress = self.pending.progress(&queued.id).is_some();
        let progress = wants_progress.then_some(&queued.id);
        let params = queued.params.unwrap_or_default();
        let params = match version.era() {
            Era::Modern => self.envelope(params, progress),
            Era::Handshake => with_progress_token(params, progress),
        };
        let out = Outgoing {
            message: Message::Request(Request {
                id: queued.id,
                method: queued.method,
                params: Some(params),
            }),
            version: Some(version),
            param_headers: queued.param_headers,
        };
        if let Err(why) = wire.send(out).await {
            self.lost(why, ctx);
        }
    }

    /// Gives up on `id` (timeout or cancel): resolves it, and tells the
    /// server when it had been sent.
    async fn give_up(&mut self, id: Id, error: ClientError) {
        let was_sent = !self.backlog.iter().any(|q| q.id == id);
        if !self.pending.resolve(&id, Err(error.clone())) {
            return;
        }
        self.backlog.retain(|q| q.id != id);
        if let (true, Link::Ready { wire, session }) = (was_sent, &self.link) {
            let reason = match error {
                ClientError::Timeout(after) => format!("timed out after {after:?}"),
                _ => "cancelled by the client".into(),
            };
            let params = CancelledParams {
                request_id: id,
                reason: Some(reason),
            };
            let notification = crate::model::params::notification(
                crate::model::NotificationMethod::Cancelled,
                &params,
            );
            let out = Outgoing {
                message: Message::Notification(notification),
                version: Some(session.version),
                param_headers: Vec::new(),
            };
            let _ = wire.send(out).await;
        }
    }

    async fn inbound(&mut self, message: Message, ctx: &mut Context<Self>) {
        match message {
            Message::Response(Response {
                id: Some(id),
                outcome,
            }) => {
                let outcome = outcome.map_err(ClientError::Server);
                self.settle(id, outcome, ctx).await;
            }
            Message::Response(Response { id: None, outcome }) => {
                tracing::warn!(error = ?outcome.err(), "the server reported an error about no request");
            }
            Message::Request(request) => self.answer(request),
            Message::Notification(notification) => self.notified(notification),
        }
    }

    /// Resolves request `id`, the negotiation's own included.
    async fn settle(
        &mut self,
        id: Id,
        outcome: Result<Value, ClientError>,
        ctx: &mut Context<Self>,
    ) {
        if let Link::Negotiating {
            step, id: asked, ..
        } = &self.link
        {
            if *asked == id {
                let step = *step;
                return self.negotiated(step, outcome, ctx).await;
            }
        }
        if !self.pending.resolve(&id, outcome) {
            tracing::debug!(%id, "an answer for no waiting request (late or duplicate): dropped");
        }
    }

    /// Answers a server request with the client's handlers, off the
    /// process (a handler may wait on a person).
    fn answer(&self, request: Request) {
        let wire = match &self.link {
            Link::Ready { wire, .. } | Link::Negotiating { wire, .. } => wire.clone(),
            _ => return,
        };
        let version = self.shared.session().map(|s| s.version);
        let config = self.config.clone();
        let tasks = self.task_answers.clone();
        tokio::spawn(async move {
            let params = request.params.unwrap_or_default();
            let outcome = tasks
                .answer(&config.handlers, &request.method, params)
                .await;
            let out = Outgoing {
                message: Message::Response(Response {
                    id: Some(request.id),
                    outcome,
                }),
                version,
                param_headers: Vec::new(),
            };
            let _ = wire.send(out).await;
        });
    }

    fn notified(&self, notification: Notification) {
        if notification.method == "notifications/progress" {
            if let Some(progress) = notification
                .params
                .clone()
                .and_then(|p| crate::model::params::parse::<ProgressParams>(p).ok())
            {
                if let Some(to) = self.pending.progress(&progress.progress_token) {
                    let _ = to.send(progress);
                }
            }
        }
        self.shared.notified(notification);
    }
}

/// Whether an unsupported-version error's `data.supported` lists 2026-07-28.
fn offers_modern(data: Option<&Value>) -> bool {
    data.and_then(|d| d.get("supported"))
        .and_then(Value::as_array)
        .is_some_and(|versions| {
            versions
                .iter()
                .any(|v| v == ProtocolVersion::V2026_07_28.as_str())
        })
}

fn with_progress_token(
    mut params: Map<String, Value>,
    progress: Option<&Id>,
) -> Map<String, Value> {
    if let Some(id) = progress {
        let meta = params
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if let (Value::Object(meta), Ok(token)) = (meta, serde_json::to_value(id)) {
            meta.insert("progressToken".into(), token);
        }
    }
    params
}

impl Actor for ClientProcess {
    type Msg = ClientMsg;

    async fn init(&mut self, ctx: &mut Context<Self>) -> Flow {
        self.dial(ctx);
        Ok(())
    }

    async fn handle(&mut self, msg: ClientMsg, ctx: &mut Context<Self>) -> Flow {
        match msg {
            ClientMsg::Request {
                id,
                method,
                params,
                timeout,
                param_headers,
                progress,
                reply,
            } => {
                self.pending.open(&id, reply, progress);
                send_after(
                    timeout,
                    ctx.myself().clone(),
                    ClientMsg::Timeout(id.clone(), timeout),
                );
                self.transmit(
                    Queued {
                        id,
                        method,
                        params,
                        param_headers,
                    },
                    ctx,
                )
                .await;
            }
            ClientMsg::Notify(notification) => {
                if let Link::Ready { wire, session } = &self.link {
                    let mut notification = notification;
                    if session.version.era() == Era::Modern {
                        let params = notification.params.take().unwrap_or_default();
                        notification.params = Some(self.envelope(params, None));
                    }
                    let out = Outgoing {
                        message: Message::Notification(notification),
                        version: Some(session.version),
                        param_headers: Vec::new(),
                    };
                    let wire = wire.clone();
                    if let Err(why) = wire.send(out).await {
                        self.lost(why, ctx);
                    }
                }
            }
            ClientMsg::Cancel(id) => self.give_up(id, ClientError::Cancelled).await,
            ClientMsg::Timeout(id, after) => match &self.link {
                // A silent server: in Auto, one that ignores
                // `server/discover` may still answer `initialize`.
                Link::Negotiating { id: asked, .. } if *asked == id => {
                    self.settle(id, Err(ClientError::Timeout(after)), ctx).await;
                }
                _ => self.give_up(id, ClientError::Timeout(after)).await,
            },
            ClientMsg::Inbound { epoch, message } if epoch == self.epoch => {
                self.inbound(message, ctx).await;
            }
            ClientMsg::Inbound { .. } => {}
            ClientMsg::Failed { epoch, id, error } if epoch == self.epoch => {
                self.settle(id, Err(error), ctx).await;
            }
            ClientMsg::Failed { .. } => {}
            ClientMsg::Closed { epoch, why } if epoch == self.epoch => self.lost(why, ctx),
            ClientMsg::Closed { .. } => {}
            ClientMsg::Dialled { epoch, wire } if epoch == self.epoch => match wire {
                Ok(wire) => {
                    let step = match self.config.version {
                        VersionChoice::Pinned(v) if v.era() == Era::Handshake => Step::Initialize,
                        _ => Step::Discover,
                    };
                    self.negotiate(wire, step, ctx).await;
                }
                Err(why) => self.lost(why, ctx),
            },
            ClientMsg::Dialled { .. } => {}
            ClientMsg::Redial => {
                if matches!(self.link, Link::Backoff) {
                    self.dial(ctx);
                }
            }
            ClientMsg::Shutdown(done) => {
                if let Link::Ready { wire, .. } | Link::Negotiating { wire, .. } = &self.link {
                    wire.close().await;
                }
                let closed = ClientError::Disconnected("the client was closed".into());
                self.pending.fail_all(&closed);
                self.fail_backlog(&closed);
                self.shared.set_session(None);
                let _ = done.send(());
                ctx.stop(ExitReason::Normal);
            }
        }
        Ok(())
    }

    async fn terminate(&mut self, _reason: &ExitReason) {
        let gone = ClientError::Stopped;
        self.pending.fail_all(&gone);
        self.fail_backlog(&gone);
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(gone));
        }
    }
}
