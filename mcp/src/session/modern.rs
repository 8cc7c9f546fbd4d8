//! 2026-07-28: every request carries its own `_meta` envelope and is
//! validated on its own; `server/discover`, `subscriptions/listen`, the
//! tasks extension, and the shape every result takes.

use crate::follow::Topic;
use crate::model::params::{
    notification, parse, ListenFilter, ListenParams, SubscriptionsAcknowledgedParams, TaskParams,
    UpdateTaskParams,
};
use crate::model::JsonObject;
use crate::model::{DiscoverResult, RequestMeta};
use std::collections::HashMap;
use std::sync::Arc;

use arbor_runtime::{ActorRef, Context, ExitReason};
use serde_json::{json, Map, Value};

use super::task_run;
use super::{meta, Lifecycle, Session};
use crate::context::RequestContext;
use crate::jsonrpc::{code, ErrorObject, Id, Message, Notification, Request, Response};
use crate::model::{LogLevel, Method, NotificationMethod};
use crate::outbox::Frame;
use crate::server::{ListKind, McpServer};
use crate::subscription::SubscriptionMsg;
use crate::tasks::{self, TaskSupport};
use crate::version::{Era, ProtocolVersion};

/// A 2026-07-28 session's state.
#[derive(Default)]
pub(super) struct Modern {
    /// `subscriptions/listen` requests and their subscriptions.
    pub(super) listens: HashMap<Id, Vec<ActorRef<SubscriptionMsg>>>,
}

impl Session {
    /// Validates a 2026-07-28 request's envelope, then serves it.
    pub(super) async fn modern(
        &mut self,
        method: Option<Method>,
        request: Request,
        ctx: &mut Context<Self>,
    ) {
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
        // The envelope read whole, once the version and method passed.
        let envelope: RequestMeta = match parse(envelope.clone()) {
            Ok(envelope) => envelope,
            Err(error) => {
                let error = if error.data.as_ref().and_then(|d| d.get("field"))
                    == Some(&Value::from(meta::LOG_LEVEL))
                {
                    ErrorObject::invalid_params("invalid log level").with_data(
                        json!({ "field": meta::LOG_LEVEL, "allowed": LogLevel::names() }),
                    )
                } else {
                    error
                };
                return self.respond(Some(request.id), Err(error)).await;
            }
        };
        let level = envelope.log_level;
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
                let discovered = DiscoverResult {
                    supported_versions: ProtocolVersion::ALL
                        .iter()
                        .rev()
                        .map(|v| v.as_str().to_string())
                        .collect(),
                    capabilities: match self.server.capabilities(Era::Modern) {
                        Value::Object(capabilities) => capabilities,
                        _ => Map::new(),
                    },
                    instructions: self.server.instructions().map(str::to_string),
                    meta: None,
                };
                let shaped = serde_json::to_value(discovered)
                    .map(|result| shape_modern(&self.server, Method::ServerDiscover, result))
                    .map_err(|e| ErrorObject::internal(e.to_string()));
                self.respond(Some(request.id), shaped).await;
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
                    ctx,
                )
                .await
            }
        }
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
            // The call gathers its input first; its handler says when it
            // becomes a task.
            (TaskSupport::Optional | TaskSupport::Required, true)
                if self.server.tool_task_after_input(name) =>
            {
                None
            }
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
        )
        .with_grant(self.access.grant());
        let created = task_run::start(&self.server, params, request_ctx)
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
        let store = self.server.tasks();
        let grant = self.access.grant();
        let by = grant.as_deref();
        match method {
            Method::TasksGet | Method::TasksCancel => {
                let TaskParams { task_id } = parse(params)?;
                if method == Method::TasksGet {
                    store.get(&task_id, by)
                } else {
                    store.cancel(&task_id, by)
                }
            }
            _ => {
                let UpdateTaskParams {
                    task_id,
                    input_responses,
                } = parse(params)?;
                store.update(&task_id, input_responses, by)
            }
        }
    }

    /// 2026-07-28: `subscriptions/listen`. Acknowledges the subset it honours
    /// first, then delivers updates tagged with the listen request's id until
    /// the client cancels it or the input ends.
    async fn listen(&mut self, request: Request, ctx: &mut Context<Self>) {
        let id = request.id.clone();
        if self.listening(&id) || self.in_flight.contains_key(&id) {
            let error = ErrorObject::new(
                code::INVALID_REQUEST,
                "a request with this id is already in flight",
            )
            .with_data(json!({ "id": id }));
            return self.respond(Some(id), Err(error)).await;
        }
        let filter = match parse::<ListenParams>(request.params.clone().unwrap_or_default()) {
            Ok(ListenParams { notifications }) => notifications,
            Err(error) => return self.respond(Some(id), Err(error)).await,
        };
        let wanted = filter.resource_subscriptions.clone().unwrap_or_default();
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
        let mut joins: Vec<(Topic, ActorRef<SubscriptionMsg>, Frame)> = Vec::new();
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
            if let Ok(sub) = self.start_subscription(ctx).await {
                joins.push((
                    Topic::Resource(parsed.as_str().into()),
                    sub.clone(),
                    notification,
                ));
                subs.push(sub);
                honoured.push(uri);
            }
        }
        let mut ack = ListenFilter::default();
        for kind in ListKind::ALL {
            if !filter.follows(kind)
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
            if let Ok(sub) = self.start_subscription(ctx).await {
                joins.push((Topic::List(kind), sub.clone(), notification));
                subs.push(sub);
                match kind {
                    ListKind::Tools => ack.tools_list_changed = true,
                    ListKind::Prompts => ack.prompts_list_changed = true,
                    ListKind::Resources => ack.resources_list_changed = true,
                }
            }
        }
        if filter.resource_subscriptions.is_some() {
            ack.resource_subscriptions = Some(honoured);
        }
        let acknowledged = SubscriptionsAcknowledgedParams {
            notifications: ack,
            meta: JsonObject::from_iter([(
                "io.modelcontextprotocol/subscriptionId".to_string(),
                id_value.clone(),
            )]),
        };
        let ack = Message::Notification(notification(
            NotificationMethod::SubscriptionsAcknowledged,
            &acknowledged,
        ));
        // Queued and joined with no await between when there is room: a
        // client that acts on the acknowledgement at once must find the
        // subscription live.
        if let Err(ack) = self.out.queue_now(Frame::new(&ack, Some(id.clone()))) {
            self.send(ack).await;
        }
        for (topic, sub, notification) in joins {
            self.server
                .followers()
                .subscribe(topic, &sub, self.out.clone(), notification);
        }
        if let Lifecycle::Modern(m) = &mut self.state {
            m.listens.insert(id, subs);
        }
    }

    /// Whether `id` is a listen in progress.
    pub(super) fn listening(&self, id: &Id) -> bool {
        matches!(&self.state, Lifecycle::Modern(m) if m.listens.contains_key(id))
    }

    /// `notifications/cancelled` for a listen: its subscriptions stop (a
    /// cancelled request gets no answer).
    pub(super) fn cancel_listen(&mut self, id: &Id) {
        if let Lifecycle::Modern(m) = &mut self.state {
            for sub in m.listens.remove(id).unwrap_or_default() {
                sub.process().stop(ExitReason::Normal);
            }
        }
    }

    /// Ends every listen with its final result.
    pub(super) async fn end_listens(&mut self) {
        for (id, answer) in self.take_listens() {
            self.send(Frame::new(&answer, Some(id))).await;
        }
    }

    /// Stops every listen's subscriptions; the results that end them.
    pub(super) fn take_listens(&mut self) -> Vec<(Id, Message)> {
        let listens = match &mut self.state {
            Lifecycle::Modern(m) => std::mem::take(&mut m.listens),
            _ => return Vec::new(),
        };
        listens
            .into_iter()
            .map(|(id, subs)| (id.clone(), self.listen_ended(id, subs)))
            .collect()
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

/// Adds what every 2026-07-28 result carries: `resultType`, the server's
/// identity in `_meta`, and cache hints where the method is cacheable.
pub(super) fn shape_modern(server: &McpServer, method: Method, result: Value) -> Value {
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
