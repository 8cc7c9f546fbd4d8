//! The handshake era (2024-11-05 to 2025-11-25): `initialize` and
//! `notifications/initialized`, the era's own methods (`ping`,
//! `logging/setLevel`, per-resource subscriptions, 2025-11-25 tasks), and
//! requests the server sends the client (sampling, elicitation, roots).

use crate::follow::{Follower, Topic};
use crate::model::params::{
    notification, parse, InitializeParams, ResourceParams, ResourceUpdatedParams, SetLevelParams,
    TaskParams,
};
use crate::model::InitializeResult;
use std::collections::HashMap;
use std::sync::Arc;

use arbor_runtime::timer::{send_after, TimerRef};
use arbor_runtime::{ActorRef, Context, ExitReason};
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;

use super::{lifecycle_error, Lifecycle, Session, SessionMsg};
use crate::jsonrpc::{code, ErrorObject, Id, Message, Notification, Request, Response};
use crate::model::{LogLevel, Method, NotificationMethod};
use crate::outbox::Frame;
use crate::subscription::SubscriptionMsg;
use crate::tasks::TaskSupport;
use crate::uri::ResourceUri;
use crate::version::{Era, ProtocolVersion};

/// Where the client's answer to a server request goes.
type ClientReply = oneshot::Sender<Result<Value, ErrorObject>>;

/// A request for the client, its answer's way back, and the client request
/// it serves.
pub(super) type HeldRequest = (Method, Value, ClientReply, Id);

/// A handshake-era session's state, from `initialize` on.
pub(super) struct Handshake {
    /// The negotiated version.
    pub(super) version: ProtocolVersion,
    /// The client's capabilities.
    pub(super) client: Arc<Value>,
    pub(super) phase: Phase,
    /// `resources/subscribe`, by normalised URI.
    pub(super) subscriptions: HashMap<String, ActorRef<SubscriptionMsg>>,
    /// Requests sent to the client, waiting for its answer, each with the
    /// client request whose handler asked.
    pending: HashMap<Id, (ClientReply, Id)>,
    next_server_id: u64,
    /// 2025-11-25 tasks this session created, for `tasks/list`.
    legacy_tasks: Vec<String>,
}

/// Before and after `notifications/initialized`.
pub(super) enum Phase {
    /// `initialize` answered: client requests are served; the server sends
    /// none yet.
    Initializing {
        /// The initialization deadline.
        deadline: TimerRef,
        /// Requests for the client, held until the client is initialized.
        held: Vec<HeldRequest>,
    },
    /// Initialized.
    Ready {
        /// The level set by `logging/setLevel`.
        log_level: Option<LogLevel>,
    },
}

impl Handshake {
    /// Whether `notifications/initialized` has come.
    pub(super) fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready { .. })
    }

    fn log_level(&self) -> Option<LogLevel> {
        match self.phase {
            Phase::Ready { log_level } => log_level,
            Phase::Initializing { .. } => None,
        }
    }

    /// Stops the initialization deadline, if it still runs.
    pub(super) fn cancel_deadline(&mut self) {
        if let Phase::Initializing { deadline, .. } = &self.phase {
            deadline.cancel();
        }
    }
}

impl Session {
    fn handshake_state(&mut self) -> Option<&mut Handshake> {
        match &mut self.state {
            Lifecycle::Handshake(h) => Some(h),
            _ => None,
        }
    }

    pub(super) async fn initialize(&mut self, request: Request, ctx: &mut Context<Self>) {
        let params: InitializeParams = match parse(request.params.unwrap_or_default()) {
            Ok(params) => params,
            Err(error) => return self.respond(Some(request.id), Err(error)).await,
        };
        let version = ProtocolVersion::negotiate_handshake(&params.protocol_version);
        let client = Arc::new(Value::Object(params.capabilities));
        let mut capabilities = match self.server.capabilities(Era::Handshake) {
            Value::Object(capabilities) => capabilities,
            _ => Map::new(),
        };
        if version == ProtocolVersion::V2025_11_25 && self.server.serves_tasks() {
            capabilities.insert(
                "tasks".into(),
                json!({ "list": {}, "cancel": {}, "requests": { "tools": { "call": {} } } }),
            );
        }
        let result = InitializeResult {
            protocol_version: version.as_str().into(),
            capabilities,
            server_info: self.server.info().clone(),
            instructions: self.server.instructions().map(str::to_string),
        };
        // Until notifications/initialized comes, or the deadline.
        let deadline = send_after(
            self.server.config().init_timeout,
            ctx.myself().clone(),
            SessionMsg::InitDeadline,
        );
        self.set_state(Lifecycle::Handshake(Handshake {
            version,
            client,
            phase: Phase::Initializing {
                deadline,
                held: Vec::new(),
            },
            subscriptions: HashMap::new(),
            pending: HashMap::new(),
            next_server_id: 0,
            legacy_tasks: Vec::new(),
        }));
        let result = serde_json::to_value(result).map_err(|e| ErrorObject::internal(e.to_string()));
        self.respond(Some(request.id), result).await;
    }

    /// `notifications/initialized`: the session is ready; it follows the
    /// server's lists and sends the requests for the client held so far.
    pub(super) async fn initialized(&mut self, ctx: &mut Context<Self>) {
        let Some(h) = self.handshake_state() else {
            return;
        };
        let Phase::Initializing { deadline, held } =
            std::mem::replace(&mut h.phase, Phase::Ready { log_level: None })
        else {
            return;
        };
        deadline.cancel();
        let follower = Follower::Session(self.out.clone());
        self.server
            .followers()
            .follow(Topic::Lists, &ctx.process(), follower);
        for request in held {
            self.ask_client(request, ctx).await;
        }
    }

    /// The initialization deadline passed: a session still initializing
    /// stops.
    pub(super) fn init_deadline(&mut self, ctx: &mut Context<Self>) {
        if self.handshake_state().is_some_and(|h| !h.is_ready()) {
            tracing::info!(target: "arbor::mcp", "session did not initialize in time");
            ctx.stop(ExitReason::shutdown_with("initialization timeout"));
        }
    }

    pub(super) async fn handshake(
        &mut self,
        method: Option<Method>,
        request: Request,
        ctx: &mut Context<Self>,
    ) {
        let Some(h) = self.handshake_state() else {
            return;
        };
        let (version, client, level) = (h.version, h.client.clone(), h.log_level());
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
                let level = parse::<SetLevelParams>(request.params.clone().unwrap_or_default())
                    .ok()
                    .map(|p| p.level);
                let phase = self.handshake_state().map(|h| &mut h.phase);
                let outcome = match (level, phase) {
                    (Some(level), Some(Phase::Ready { log_level })) => {
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
                let task = parse::<TaskParams>(request.params.clone().unwrap_or_default())
                    .map(|p| p.task_id);
                let store = self.server.tasks();
                let grant = self.access.grant();
                let outcome = match (method, task) {
                    (Method::TasksList, _) => Ok(store.legacy_list(
                        match &self.state {
                            Lifecycle::Handshake(h) => h.legacy_tasks.as_slice(),
                            _ => &[],
                        },
                        grant.as_deref(),
                    )),
                    (Method::TasksGet, Ok(task)) => store.legacy_get(&task, grant.as_deref()),
                    (Method::TasksCancel, Ok(task)) => store.legacy_cancel(&task, grant.as_deref()),
                    (Method::TasksResult, Ok(task)) => {
                        if let Err(error) = self.admit(&request.id) {
                            return self.respond(Some(request.id), Err(error)).await;
                        }
                        let server = self.server.clone();
                        let work = async move {
                            server.tasks().legacy_result(&task, grant.as_deref()).await
                        };
                        let trace = request
                            .params
                            .as_ref()
                            .and_then(crate::trace::TraceParent::from_params);
                        return self.spawn_answer(request.id, method, trace, work, ctx);
                    }
                    (_, Err(error)) => Err(error),
                    (other, Ok(_)) => Err(ErrorObject::method_not_found(other.as_str())),
                };
                self.respond(Some(request.id), outcome).await;
            }
            method if self.server.serves(method) => {
                self.run(method, request, version, client, level, ctx).await;
            }
            method => {
                let error = ErrorObject::method_not_found(method.as_str());
                self.respond(Some(request.id), Err(error)).await;
            }
        }
    }

    /// A request task asks the client for input: sent once the session is
    /// initialized, held until then.
    pub(super) async fn server_request(&mut self, request: HeldRequest, ctx: &mut Context<Self>) {
        if self.handshake_state().is_some() {
            // Refused to the handler that asks, before the client sees it.
            if let Err(limited) = self.server.limiter().server_request(ctx.pid().as_u64()) {
                let _ = request.2.send(Err(limited.error()));
                return;
            }
        }
        match self.handshake_state().map(|h| &mut h.phase) {
            Some(Phase::Ready { .. }) => self.ask_client(request, ctx).await,
            Some(Phase::Initializing { held, .. }) => held.push(request),
            None => {
                let _ = request.2.send(Err(ErrorObject::internal(
                    "no handshake session to send the request on",
                )));
            }
        }
    }

    /// Sends a request to the client and keeps its reply channel until the
    /// answer comes or the server-request timeout passes.
    async fn ask_client(&mut self, request: HeldRequest, ctx: &mut Context<Self>) {
        let (method, params, reply, related) = request;
        let Some(h) = self.handshake_state() else {
            let _ = reply.send(Err(ErrorObject::internal(
                "no handshake session to send the request on",
            )));
            return;
        };
        h.next_server_id += 1;
        let id = Id::String(format!("arbor-{}", h.next_server_id).into());
        h.pending.insert(id.clone(), (reply, related.clone()));
        let params = match params {
            Value::Object(p) => Some(p),
            _ => None,
        };
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

    /// The client's answer to a request of ours.
    pub(super) fn client_answered(&mut self, response: Response) {
        let pending = response
            .id
            .as_ref()
            .zip(self.handshake_state())
            .and_then(|(id, h)| h.pending.remove(id));
        match pending {
            Some((reply, _)) => {
                let _ = reply.send(response.outcome);
            }
            None => {
                tracing::debug!(target: "arbor::mcp", id = ?response.id, "response to no request of ours; ignored");
            }
        }
    }

    /// A request sent to the client was not answered in time: its handler
    /// hears so, and the client is told the request is cancelled.
    pub(super) async fn server_request_expired(&mut self, id: Id) {
        let Some((reply, related)) = self.handshake_state().and_then(|h| h.pending.remove(&id))
        else {
            return;
        };
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

    /// Handshake era: `resources/subscribe` and `resources/unsubscribe`.
    async fn subscription(
        &mut self,
        method: Method,
        request: &Request,
        ctx: &mut Context<Self>,
    ) -> Result<Value, ErrorObject> {
        let ResourceParams { uri } = parse(request.params.clone().unwrap_or_default())?;
        let uri = uri.as_str();
        let Some(h) = self.handshake_state() else {
            return Err(ErrorObject::internal("not a handshake session"));
        };
        if method == Method::ResourcesUnsubscribe {
            if let Ok(parsed) = ResourceUri::parse(uri) {
                if let Some(sub) = h.subscriptions.remove(parsed.as_str()) {
                    sub.process().stop(ExitReason::Normal);
                }
            }
            return Ok(json!({}));
        }
        if ResourceUri::parse(uri).is_ok_and(|u| h.subscriptions.contains_key(u.as_str())) {
            return Ok(json!({}));
        }
        let parsed = self.subscribable(uri, Era::Handshake, 0)?;
        let notification = Frame::new(
            &Message::Notification(notification(
                NotificationMethod::ResourcesUpdated,
                &ResourceUpdatedParams { uri: uri.into() },
            )),
            None,
        );
        let sub = self.start_subscription(ctx).await?;
        self.server.followers().subscribe(
            Topic::Resource(parsed.as_str().into()),
            &sub,
            self.out.clone(),
            notification,
        );
        if let Some(h) = self.handshake_state() {
            h.subscriptions.insert(parsed.as_str().to_string(), sub);
        }
        Ok(json!({}))
    }

    /// 2025-11-25: whether a `tools/call` runs as a task (its `task` param
    /// asks for one), checked against the tool's `taskSupport`.
    pub(super) fn legacy_task(&self, params: &mut Map<String, Value>) -> Result<bool, ErrorObject> {
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

    /// Keeps a 2025-11-25 task this session created, for `tasks/list`.
    pub(super) fn keep_legacy_task(&mut self, task: String) {
        if let Some(h) = self.handshake_state() {
            h.legacy_tasks.push(task);
        }
    }
}
