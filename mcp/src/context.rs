//! What a handler knows about the request it serves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Map, Value};

use crate::jsonrpc::{Id, Message};
use crate::model::params::{notification, LoggingMessageParams, ProgressParams};
use crate::model::{LogLevel, NotificationMethod};
use crate::outbox::{Frame, Outbox};
use crate::version::{Era, ProtocolVersion};
use tokio_util::sync::{CancellationToken, DropGuard};

/// The request a handler serves: its id, era and version, the client's
/// capabilities, the side serving it (`S`: for a server's handlers,
/// [`McpServer`](crate::McpServer), reached with
/// [`RequestContext::server`]), and where its progress and log messages go
/// when the client asked for them.
#[derive(Clone, Debug)]
pub struct RequestContext<S> {
    id: Id,
    version: ProtocolVersion,
    client_capabilities: Arc<Value>,
    serving: S,
    /// The connection's outbound queue; none for work detached from it
    /// (tasks).
    out: Option<Outbox>,
    progress: Option<Progress>,
    /// The lowest level sent, if the client asked for logs.
    log_level: Option<LogLevel>,
    inputs: Option<Arc<Map<String, Value>>>,
    state: Option<Arc<Value>>,
    /// Cancelled once the request is over: see [`RequestContext::cancelled`].
    cancel: CancellationToken,
    /// Whether the handler runs inside a task.
    in_task: bool,
    /// The request's idempotency key, if it sent one.
    idempotency: Option<crate::idempotency::IdempotencyKey>,
    /// What the request's token grants, when the server checks tokens.
    grant: Option<Arc<crate::auth::Grant>>,
}

impl<S> RequestContext<S> {
    pub(crate) fn new(
        id: Id,
        version: ProtocolVersion,
        client_capabilities: Arc<Value>,
        serving: S,
    ) -> Self {
        RequestContext {
            id,
            version,
            client_capabilities,
            serving,
            out: None,
            progress: None,
            log_level: None,
            inputs: None,
            state: None,
            cancel: CancellationToken::new(),
            in_task: false,
            idempotency: None,
            grant: None,
        }
    }

    /// With what the request's token grants.
    pub(crate) fn with_grant(mut self, grant: Option<Arc<crate::auth::Grant>>) -> Self {
        self.grant = grant;
        self
    }

    /// What the request's token grants (who calls, with which scopes),
    /// when the server checks tokens ([`crate::auth`]).
    pub fn grant(&self) -> Option<&Arc<crate::auth::Grant>> {
        self.grant.as_ref()
    }

    /// With the idempotency key the request sent.
    pub(crate) fn with_idempotency(
        mut self,
        key: Option<crate::idempotency::IdempotencyKey>,
    ) -> Self {
        self.idempotency = key;
        self
    }

    /// The request's idempotency key, and whose it is
    /// ([`crate::idempotency`]).
    pub fn idempotency_key(&self) -> Option<&crate::idempotency::IdempotencyKey> {
        self.idempotency.as_ref()
    }

    /// Whether the handler runs inside a task (tasks extension).
    pub fn in_task(&self) -> bool {
        self.in_task
    }

    /// The same request and its gathered input, detached from the
    /// connection and from the request's end: what a task it becomes runs
    /// with.
    pub(crate) fn detached(&self) -> Self
    where
        S: Clone,
    {
        RequestContext {
            id: self.id.clone(),
            version: self.version,
            client_capabilities: self.client_capabilities.clone(),
            serving: self.serving.clone(),
            out: None,
            progress: None,
            log_level: None,
            inputs: self.inputs.clone(),
            state: self.state.clone(),
            cancel: CancellationToken::new(),
            in_task: self.in_task,
            idempotency: self.idempotency.clone(),
            grant: self.grant.clone(),
        }
    }

    /// The same request, run inside a task.
    pub(crate) fn in_a_task(mut self) -> Self {
        self.in_task = true;
        self
    }

    /// Resolves once the request is over for the client: cancelled
    /// (`notifications/cancelled`, `tasks/cancel`), past the request
    /// timeout, its session gone, or answered. The handler's own future is
    /// dropped at that moment; work it started elsewhere with a clone of
    /// this context (a spawned task, a subprocess) watches here to stop
    /// too, as with the TypeScript SDK's `AbortSignal`.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    /// Whether the request is over (see [`RequestContext::cancelled`]).
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Cancels this request's token when dropped: held by the future that
    /// runs the request, so that aborting it, or its end, cancels.
    pub(crate) fn cancel_on_drop(&self) -> DropGuard {
        self.cancel.clone().drop_guard()
    }

    /// Sends progress and logs to `out`: progress when the client gave a
    /// token, logs from `log_level` up.
    pub(crate) fn with_output(
        mut self,
        out: Outbox,
        progress: Option<Progress>,
        log_level: Option<LogLevel>,
    ) -> Self {
        self.out = Some(out);
        self.progress = progress;
        self.log_level = log_level;
        self
    }

    /// The side serving the request.
    pub(crate) fn serving(&self) -> &S {
        &self.serving
    }

    /// Lets the client's stream for this request go (SEP-1699 polling): on
    /// Streamable HTTP (2025-11-25) the server closes the request's SSE
    /// stream after a retry hint, and the client resumes it with
    /// `Last-Event-ID`; what the handler sends meanwhile waits in the
    /// stream's replay buffer. Other transports ignore it.
    pub fn release_stream(&self) {
        if let Some(out) = &self.out {
            out.release(self.id.clone());
        }
    }

    /// The context of the next run of a handler that asked for input.
    pub(crate) fn with_inputs(mut self, inputs: Map<String, Value>, state: Option<Value>) -> Self {
        self.inputs = Some(Arc::new(inputs));
        self.state = state.map(Arc::new);
        self
    }

    /// The client's answer to the input request the handler made under
    /// `key`, on the run after it asked (see [`crate::input`]).
    pub fn input_response(&self, key: &str) -> Option<&Value> {
        self.inputs.as_ref()?.get(key)
    }

    /// [`RequestContext::input_response`] read as `T` (an
    /// [`ElicitResult`](crate::model::ElicitResult),
    /// [`CreateMessageResult`](crate::model::CreateMessageResult) or
    /// [`ListRootsResult`](crate::model::ListRootsResult)): `None` before
    /// the client answered, an error if its answer is not a `T`.
    pub fn input<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Option<Result<T, serde_json::Error>> {
        self.input_response(key).map(T::deserialize)
    }

    /// The state the handler kept with its input request, on the next run.
    pub fn request_state(&self) -> Option<&Value> {
        self.state.as_deref()
    }

    /// Sends a `notifications/message` log entry to the client, if the
    /// client asked for logs at `level` or above: with `logging/setLevel` in
    /// the handshake era, with the request's `logLevel` in 2026-07-28 (never
    /// otherwise). Returns whether it was sent.
    pub fn log(&self, level: LogLevel, logger: Option<&str>, data: Value) -> bool {
        let (Some(out), Some(min_level)) = (&self.out, self.log_level) else {
            return false;
        };
        if level < min_level {
            return false;
        }
        let entry = LoggingMessageParams {
            level,
            logger: logger.map(str::to_string),
            data,
        };
        let message = Message::Notification(notification(NotificationMethod::Message, &entry));
        out.try_send(Frame::new(&message, Some(self.id.clone())))
            .is_ok()
    }

    /// The request id.
    pub fn id(&self) -> &Id {
        &self.id
    }

    /// The protocol version the request is served under.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The era the request is served under.
    pub fn era(&self) -> Era {
        self.version.era()
    }

    /// The capabilities the client declared (for this request in the
    /// 2026-07-28 era, for the session in the handshake era).
    pub fn client_capabilities(&self) -> &Value {
        &self.client_capabilities
    }

    /// Reports progress, if the client asked for it with a progress token.
    /// Values must increase; a value not above the last is dropped, and so
    /// are reports closer together than the server's progress interval
    /// (except the one that reaches `total`). Returns whether it was sent.
    pub fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) -> bool {
        match (&self.progress, &self.out) {
            (Some(p), Some(out)) => p.report(out, &self.id, progress, total, message),
            _ => false,
        }
    }
}

/// Sends `notifications/progress` for one request's token.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    token: Id,
    interval: Duration,
    last: Arc<Mutex<Option<(f64, Instant)>>>,
}

impl Progress {
    pub(crate) fn new(token: Id, interval: Duration) -> Self {
        Progress {
            token,
            interval,
            last: Arc::new(Mutex::new(None)),
        }
    }

    fn report(
        &self,
        out: &Outbox,
        request: &Id,
        progress: f64,
        total: Option<f64>,
        message: Option<&str>,
    ) -> bool {
        if !progress.is_finite() {
            return false;
        }
        let now = Instant::now();
        let done = total.is_some_and(|t| progress >= t);
        {
            let mut last = self.last.lock();
            if let Some((value, at)) = *last {
                if progress <= value || (!done && now.duration_since(at) < self.interval) {
                    return false;
                }
            }
            *last = Some((progress, now));
        }
        let report = ProgressParams {
            progress_token: self.token.clone(),
            progress,
            total,
            message: message.map(str::to_string),
        };
        let message = Message::Notification(notification(NotificationMethod::Progress, &report));
        out.try_send(Frame::new(&message, Some(request.clone())))
            .is_ok()
    }
}
