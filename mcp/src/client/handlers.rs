//! What the client answers when the server asks it something: sampling,
//! elicitation and roots. The same handlers serve both eras: a handshake-era
//! server sends the request on the connection; a 2026-07-28 server returns
//! `input_required` and the client retries with the answers.

use std::future::Future;
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::{json, Map, Value};

use super::wire::BoxFuture;
use crate::jsonrpc::ErrorObject;
use crate::model::{
    CreateMessageParams, CreateMessageResult, ElicitAction, ElicitRequestParams, ElicitResult,
    JsonObject, ListRootsResult, Method, Root,
};
use crate::rate::{Bucket, Rate, DEFAULT_SERVER_REQUESTS};

/// The limit's name in the errors a flooding server gets.
const SERVER_REQUESTS: &str = "server_requests";

type Sampler = Arc<
    dyn Fn(CreateMessageParams) -> BoxFuture<'static, Result<CreateMessageResult, ErrorObject>>
        + Send
        + Sync,
>;
type Elicitor = Arc<
    dyn Fn(ElicitRequestParams) -> BoxFuture<'static, Result<ElicitResult, ErrorObject>>
        + Send
        + Sync,
>;

/// The client's answers to server requests; each one registered declares
/// its capability.
#[derive(Clone)]
pub struct ClientHandlers {
    sampling: Option<Sampler>,
    elicitation: Option<(Elicitor, ElicitModes)>,
    /// `None`: the client declares no roots.
    roots: Option<Arc<RwLock<Vec<Root>>>>,
    /// How fast the server may ask (`None`: as fast as it likes).
    rate: Option<Arc<Bucket>>,
}

impl Default for ClientHandlers {
    fn default() -> Self {
        ClientHandlers {
            sampling: None,
            elicitation: None,
            roots: None,
            rate: Some(Arc::new(Bucket::new(
                SERVER_REQUESTS,
                DEFAULT_SERVER_REQUESTS,
            ))),
        }
    }
}

impl std::fmt::Debug for ClientHandlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandlers")
            .field("sampling", &self.sampling.is_some())
            .field("elicitation", &self.elicitation.as_ref().map(|(_, m)| *m))
            .field("roots", &self.roots.as_ref().map(|r| r.read().len()))
            .finish()
    }
}

/// Which elicitation modes the client's handler takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElicitModes {
    /// Forms only.
    Form,
    /// Forms and URLs.
    FormAndUrl,
}

impl ClientHandlers {
    /// Answers `sampling/createMessage` with `f`.
    pub fn sampling<F, Fut>(&mut self, f: F)
    where
        F: Fn(CreateMessageParams) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CreateMessageResult, ErrorObject>> + Send + 'static,
    {
        self.sampling = Some(Arc::new(move |p| Box::pin(f(p))));
    }

    /// Answers `elicitation/create` with `f`, in the given modes. An
    /// accepted form is completed with the schema's defaults for every field
    /// the handler left out.
    pub fn elicitation<F, Fut>(&mut self, modes: ElicitModes, f: F)
    where
        F: Fn(ElicitRequestParams) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ElicitResult, ErrorObject>> + Send + 'static,
    {
        self.elicitation = Some((Arc::new(move |p| Box::pin(f(p))), modes));
    }

    /// Answers `roots/list` with `roots` (changeable later, see
    /// [`Client::set_roots`](super::Client::set_roots)).
    pub fn roots(&mut self, roots: Vec<Root>) {
        self.roots = Some(Arc::new(RwLock::new(roots)));
    }

    /// Replaces the roots; `false` if the client declared none.
    pub(crate) fn set_roots(&self, roots: Vec<Root>) -> bool {
        match &self.roots {
            Some(shared) => {
                *shared.write() = roots;
                true
            }
            None => false,
        }
    }

    /// The capabilities these handlers declare.
    pub fn capabilities(&self) -> JsonObject {
        let mut caps = Map::new();
        if self.sampling.is_some() {
            caps.insert("sampling".into(), json!({}));
        }
        if let Some((_, modes)) = &self.elicitation {
            let declared = match modes {
                ElicitModes::Form => json!({ "form": {} }),
                ElicitModes::FormAndUrl => json!({ "form": {}, "url": {} }),
            };
            caps.insert("elicitation".into(), declared);
        }
        if self.roots.is_some() {
            caps.insert("roots".into(), json!({ "listChanged": true }));
        }
        caps
    }

    /// The 2025-11-25 `tasks` capability: which of the server's requests
    /// the client runs as tasks (those it has a handler for).
    pub(crate) fn task_capability(&self) -> Option<Value> {
        let mut requests = Map::new();
        if self.sampling.is_some() {
            requests.insert("sampling".into(), json!({ "createMessage": {} }));
        }
        if self.elicitation.is_some() {
            requests.insert("elicitation".into(), json!({ "create": {} }));
        }
        (!requests.is_empty()).then(|| json!({ "list": {}, "cancel": {}, "requests": requests }))
    }

    /// Whether the client runs `method` as a task when asked to.
    pub(crate) fn runs_as_task(&self, method: &str) -> bool {
        match method.parse::<Method>() {
            Ok(Method::SamplingCreateMessage) => self.sampling.is_some(),
            Ok(Method::ElicitationCreate) => self.elicitation.is_some(),
            _ => false,
        }
    }

    /// How fast the server may send requests (`None`: no limit); past
    /// it they are answered `-32029` without running a handler. Default:
    /// [`DEFAULT_SERVER_REQUESTS`].
    pub fn server_request_rate(&mut self, rate: Option<Rate>) {
        self.rate = rate.map(|rate| Arc::new(Bucket::new(SERVER_REQUESTS, rate)));
    }

    /// Answers one server request: its result, or the JSON-RPC error.
    pub(crate) async fn answer(&self, method: &str, params: Value) -> Result<Value, ErrorObject> {
        self.admit(method)?;
        self.run(method, params).await
    }

    /// Takes one of the server's requests from the rate's bucket, or the
    /// `-32029` to answer instead. A ping is how a server tells the client
    /// is alive: never refused.
    pub(crate) fn admit(&self, method: &str) -> Result<(), ErrorObject> {
        match &self.rate {
            Some(bucket) if method.parse::<Method>() != Ok(Method::Ping) => {
                bucket.check().map_err(|limited| limited.error())
            }
            _ => Ok(()),
        }
    }

    /// Answers one server request already admitted.
    pub(crate) async fn run(&self, method: &str, params: Value) -> Result<Value, ErrorObject> {
        match method.parse::<Method>() {
            Ok(Method::SamplingCreateMessage) => {
                let sampler = self
                    .sampling
                    .clone()
                    .ok_or_else(|| ErrorObject::method_not_found(method))?;
                let params: CreateMessageParams = read_params(params)?;
                to_value(sampler(params).await?)
            }
            Ok(Method::ElicitationCreate) => {
                let (elicitor, modes) = self
                    .elicitation
                    .clone()
                    .ok_or_else(|| ErrorObject::method_not_found(method))?;
                let params = elicit_params(params)?;
                if matches!(params, ElicitRequestParams::Url { .. }) && modes == ElicitModes::Form {
                    return Err(ErrorObject::invalid_params(
                        "this client takes form elicitations only",
                    ));
                }
                let schema = match &params {
                    ElicitRequestParams::Form {
                        requested_schema, ..
                    } => Some(requested_schema.clone()),
                    ElicitRequestParams::Url { .. } => None,
                };
                let mut answer = elicitor(params).await?;
                if let (ElicitAction::Accept, Some(schema)) = (answer.action, schema) {
                    apply_defaults(answer.content.get_or_insert_with(Map::new), &schema);
                }
                to_value(answer)
            }
            Ok(Method::RootsList) => {
                let roots = self
                    .roots
                    .as_ref()
                    .ok_or_else(|| ErrorObject::method_not_found(method))?;
                to_value(ListRootsResult {
                    roots: roots.read().clone(),
                })
            }
            Ok(Method::Ping) => Ok(json!({})),
            _ => Err(ErrorObject::method_not_found(method)),
        }
    }
}

fn read_params<T: serde::de::DeserializeOwned>(params: Value) -> Result<T, ErrorObject> {
    match params {
        Value::Object(map) => crate::model::params::parse(map),
        _ => crate::model::params::parse(Map::new()),
    }
}

/// An elicitation's params; before 2025-11-25 `mode` is not sent and every
/// elicitation is a form.
fn elicit_params(params: Value) -> Result<ElicitRequestParams, ErrorObject> {
    let mut map = match params {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    map.entry("mode").or_insert_with(|| "form".into());
    crate::model::params::parse(map)
}

fn to_value<T: serde::Serialize>(answer: T) -> Result<Value, ErrorObject> {
    serde_json::to_value(answer).map_err(|e| ErrorObject::internal(e.to_string()))
}

/// Fills in every top-level field of `schema` that has a `default` and is
/// missing from `content` (SEP-1034).
pub fn apply_defaults(content: &mut JsonObject, schema: &Value) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, property) in properties {
        if let Some(default) = property.get("default") {
            content
                .entry(name.clone())
                .or_insert_with(|| default.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_accepted_form_gets_the_schema_defaults_and_keeps_what_was_filled() {
        let mut handlers = ClientHandlers::default();
        handlers.elicitation(ElicitModes::Form, |_| async {
            let mut content = Map::new();
            content.insert("name".into(), "Ada".into());
            Ok(ElicitResult {
                action: ElicitAction::Accept,
                content: Some(content),
            })
        });
        let schema = json!({"type": "object", "properties": {
            "name": {"type": "string", "default": "nobody"},
            "age": {"type": "integer", "default": 30},
            "bare": {"type": "string"},
        }});
        let answer = handlers
            .answer(
                "elicitation/create",
                json!({"message": "who?", "requestedSchema": schema}),
            )
            .await;
        let answer = answer.unwrap_or_default();
        assert_eq!(answer["content"], json!({"name": "Ada", "age": 30}));
        // A URL elicitation is refused by a form-only client.
        let refused = handlers
            .answer(
                "elicitation/create",
                json!({"mode": "url", "message": "go", "url": "https://x", "elicitationId": "e"}),
            )
            .await;
        assert_eq!(refused.err().map(|e| e.code), Some(-32602));
        // No sampling handler: method not found.
        let none = handlers.answer("sampling/createMessage", json!({})).await;
        assert_eq!(none.err().map(|e| e.code), Some(-32601));
    }

    #[tokio::test]
    async fn a_server_asking_faster_than_the_rate_is_refused_without_a_handler_run() {
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut handlers = ClientHandlers::default();
        handlers.server_request_rate(Rate::new(5, 2));
        let counted = asked.clone();
        handlers.sampling(move |_| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Err(ErrorObject::internal("no model here")) }
        });
        let params = json!({"messages": [], "maxTokens": 1});
        for _ in 0..2 {
            let error = handlers
                .answer("sampling/createMessage", params.clone())
                .await;
            assert_eq!(error.err().map(|e| e.code), Some(-32603), "the handler ran");
        }
        let limited = handlers
            .answer("sampling/createMessage", params.clone())
            .await;
        let limited = limited.err().map(|e| (e.code, e.data));
        let (code, data) = limited.unwrap_or_default();
        assert_eq!(code, crate::jsonrpc::code::RATE_LIMITED);
        assert_eq!(data.unwrap_or_default()["limit"], "server_requests");
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Off: as fast as it likes.
        handlers.server_request_rate(None);
        for _ in 0..10 {
            let error = handlers
                .answer("sampling/createMessage", params.clone())
                .await;
            assert_eq!(error.err().map(|e| e.code), Some(-32603));
        }
    }
}
