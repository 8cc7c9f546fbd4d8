//! A server definition: tools, resources and prompts, written once and
//! served to both eras.
//!
//! [`ServerBuilder`] declares them; [`McpServer`] answers the feature methods
//! (`tools/*`, `resources/*`, `prompts/*`) for any connection. Lifecycle,
//! envelopes and result shapes per era live in [`crate::session`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use parking_lot::RwLock;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::context::RequestContext;
use crate::input::InputRequired;
use crate::jsonrpc::{code, ErrorObject, Limits};
use crate::model::{
    CallToolResult, GetPromptResult, Implementation, Method, NotificationMethod, PromptArgument,
    ResourceContents,
};
use crate::seal::{SealKey, Sealer};
use crate::subscription::SubscriptionMsg;
use crate::tasks::{TaskStore, TaskSupport};
use crate::template::{UriTemplate, Variables};
use crate::uri::ResourceUri;
use crate::version::Era;
use arbor_runtime::{ActorRef, ProcessGroups};

/// Why a tool did not return a result.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// A failure the model sees: becomes a result with `isError: true`.
    #[error("{0}")]
    Failed(String),
    /// The tool needs input from the client first; it runs again with the
    /// answers (see [`crate::input`]).
    #[error("input required")]
    InputRequired(InputRequired),
}

impl ToolError {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        ToolError::Failed(message.into())
    }

    /// Asks the client for input first.
    pub fn input_required(input: InputRequired) -> Self {
        ToolError::InputRequired(input)
    }
}

/// Why a resource or prompt handler did not produce its result.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum HandlerError {
    /// Answer with this JSON-RPC error.
    #[error("{0}")]
    Protocol(ErrorObject),
    /// The handler needs input from the client first; it runs again with
    /// the answers (see [`crate::input`]).
    #[error("input required")]
    InputRequired(InputRequired),
}

impl From<ErrorObject> for HandlerError {
    fn from(e: ErrorObject) -> Self {
        HandlerError::Protocol(e)
    }
}

/// Splits a handler's error into the outcome it asks for.
fn outcome_of(e: HandlerError) -> Result<Outcome, ErrorObject> {
    match e {
        HandlerError::Protocol(e) => Err(e),
        HandlerError::InputRequired(input) => Ok(Outcome::NeedsInput(input)),
    }
}

/// A list whose changes clients can follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `tools/list`.
    Tools,
    /// `prompts/list`.
    Prompts,
    /// `resources/list` and `resources/templates/list`.
    Resources,
}

impl ListKind {
    /// Every kind.
    pub const ALL: [ListKind; 3] = [ListKind::Tools, ListKind::Prompts, ListKind::Resources];

    /// The notification that says the list changed.
    pub fn notification(self) -> NotificationMethod {
        match self {
            ListKind::Tools => NotificationMethod::ToolsListChanged,
            ListKind::Prompts => NotificationMethod::PromptsListChanged,
            ListKind::Resources => NotificationMethod::ResourcesListChanged,
        }
    }

    /// The `subscriptions/listen` filter field that asks for it.
    pub fn filter(self) -> &'static str {
        match self {
            ListKind::Tools => "toolsListChanged",
            ListKind::Prompts => "promptsListChanged",
            ListKind::Resources => "resourcesListChanged",
        }
    }

    /// The process group of the subscribers to this list's changes (not a
    /// URI, so it never meets a resource's group).
    pub(crate) fn group(self) -> String {
        format!("@{}", self.filter())
    }
}

/// What a feature method produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The result.
    Done(Value),
    /// The handler needs input from the client first.
    NeedsInput(InputRequired),
}

type ToolFn = Arc<
    dyn Fn(Value, RequestContext) -> BoxFuture<'static, Result<CallToolResult, ToolError>>
        + Send
        + Sync,
>;
type ResourceFn = Arc<
    dyn Fn(
            String,
            RequestContext,
        ) -> BoxFuture<'static, Result<Vec<ResourceContents>, HandlerError>>
        + Send
        + Sync,
>;
type TemplateFn = Arc<
    dyn Fn(
            Variables,
            String,
            RequestContext,
        ) -> BoxFuture<'static, Result<Vec<ResourceContents>, HandlerError>>
        + Send
        + Sync,
>;
type CompleteFn = Arc<dyn Fn(CompletionRequest) -> BoxFuture<'static, Vec<String>> + Send + Sync>;
type PromptFn = Arc<
    dyn Fn(
            HashMap<String, String>,
            RequestContext,
        ) -> BoxFuture<'static, Result<GetPromptResult, HandlerError>>
        + Send
        + Sync,
>;

struct ToolEntry {
    definition: Value,
    task: TaskSupport,
    headers: Arc<[crate::param_header::ParamHeader]>,
    input: jsonschema::Validator,
    output: Option<jsonschema::Validator>,
    handler: ToolFn,
}

struct ResourceEntry {
    definition: Value,
    uri: String,
    handler: ResourceFn,
    cache: crate::cache::CacheHint,
}

struct TemplateEntry {
    definition: Value,
    template: UriTemplate,
    handler: TemplateFn,
    cache: crate::cache::CacheHint,
}

struct PromptEntry {
    definition: Value,
    arguments: Vec<PromptArgument>,
    handler: PromptFn,
}

/// What a `completion/complete` request asks to complete.
#[derive(Clone, Debug, PartialEq)]
pub struct CompletionRequest {
    /// A prompt's name (`ref/prompt`) or a resource template
    /// (`ref/resource`).
    pub reference: CompletionRef,
    /// The argument (or template variable) being completed.
    pub argument: String,
    /// What the user has typed so far.
    pub value: String,
    /// Arguments already filled in.
    pub context: HashMap<String, String>,
}

/// The target of a completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompletionRef {
    /// A prompt, by name.
    Prompt(String),
    /// A resource template, by its URI template.
    Resource(String),
}

/// The most values one completion returns, as the spec allows.
pub const MAX_COMPLETION_VALUES: usize = 100;

/// Server settings. Every limit has a default and can be changed.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Limits on incoming messages.
    pub limits: Limits,
    /// Items per page of a list result. Default: 50.
    pub page_size: usize,
    /// How long a cursor stays valid. Default: 10 minutes.
    pub cursor_ttl: Duration,
    /// How long a request may run before it is answered with a timeout
    /// error and its handler aborted. Default: 60 s.
    pub request_timeout: Duration,
    /// How long a handshake-era connection may take to initialize before it
    /// is closed. Default: 30 s.
    pub init_timeout: Duration,
    /// How long a session that is shut down waits for its requests in
    /// flight to answer before it aborts them. Keep it below the session's
    /// shutdown timeout under its supervisor (5 s). Default: 4 s.
    pub drain_timeout: Duration,
    /// The most requests one connection may have in flight. Default: 64.
    pub max_in_flight: usize,
    /// The most bytes of received messages one connection's session may
    /// hold, queued or kept by requests still running, before its transport
    /// stops reading (see [`crate::inbound`]). Default: 16 MiB.
    pub max_inbound_bytes: usize,
    /// The most bytes all connections together may hold in received
    /// messages and in answers not yet taken by their clients (see
    /// [`crate::memory`]). `None` (the default): half the machine's memory
    /// ([`MemoryBudget::default_bytes`](crate::memory::MemoryBudget::default_bytes)).
    pub max_buffered_bytes: Option<usize>,
    /// The most resource subscriptions one connection may hold (both eras
    /// together). Default: 100.
    pub max_subscriptions: usize,
    /// Progress notifications per request, at most one per this interval
    /// (the final one always goes). Default: 50 ms.
    pub progress_interval: Duration,
    /// Caching hints of `server/discover` and the lists (2026-07-28).
    /// Default: none may be reused ([`crate::cache`]).
    pub list_caching: crate::cache::ListCaching,
    /// How long a sealed 2026-07-28 `requestState` stays valid. Default: 10 min.
    pub request_state_ttl: Duration,
    /// How long a task is kept from its creation. Default: 10 min.
    pub task_ttl: Duration,
    /// The polling interval suggested to clients for tasks. Default: 500 ms.
    pub task_poll_interval: Duration,
    /// The most tasks kept at once; more are refused with `-32603`.
    /// Default: 10 000.
    pub max_tasks: usize,
    /// How long the server waits for the client to answer a request it sent
    /// (elicitation, sampling, roots) in the handshake era. Default: 60 s.
    pub server_request_timeout: Duration,
    /// Each connection's outbound queue: its bounds and what happens when
    /// a client does not read.
    pub outbox: crate::outbox::OutboxConfig,
    /// Messages read from a connection and waiting for its session; when
    /// full, the transport stops reading. Default: 64.
    pub session_mailbox: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            page_size: 50,
            cursor_ttl: Duration::from_secs(600),
            request_timeout: Duration::from_secs(60),
            init_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(4),
            max_in_flight: 64,
            max_inbound_bytes: 16 << 20,
            max_buffered_bytes: None,
            max_subscriptions: 100,
            progress_interval: Duration::from_millis(50),
            list_caching: crate::cache::ListCaching::default(),
            request_state_ttl: Duration::from_secs(600),
            server_request_timeout: Duration::from_secs(60),
            outbox: crate::outbox::OutboxConfig::default(),
            session_mailbox: 64,
            task_ttl: Duration::from_secs(600),
            task_poll_interval: Duration::from_millis(500),
            max_tasks: 10_000,
        }
    }
}

/// Why a server definition is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// Two tools, resources or prompts share a name.
    #[error("duplicate {kind} {name:?}")]
    Duplicate {
        /// `tool`, `resource` or `prompt`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A setting names a tool that was not declared.
    #[error("no tool {0:?} declared")]
    UnknownTool(String),
    /// A setting names a resource or template that was not declared.
    #[error("no resource or template {0:?} declared")]
    UnknownResource(String),
    /// A resource URI is not a valid, safe URI.
    #[error("resource uri {uri:?}: {reason}")]
    InvalidUri {
        /// The URI.
        uri: String,
        /// Why.
        reason: String,
    },
    /// A tool's schema is not a valid JSON Schema, or not an object schema.
    #[error("tool {tool:?}: invalid {which} schema: {reason}")]
    InvalidSchema {
        /// The tool.
        tool: String,
        /// `input` or `output`.
        which: &'static str,
        /// Why.
        reason: String,
    },
}

/// Declares a server.
pub struct ServerBuilder {
    info: Implementation,
    instructions: Option<String>,
    config: ServerConfig,
    key: Option<SealKey>,
    tools: Vec<ToolEntry>,
    resources: Vec<ResourceEntry>,
    templates: Vec<TemplateEntry>,
    prompts: Vec<PromptEntry>,
    completer: Option<CompleteFn>,
    errors: Vec<BuildError>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("info", &self.info)
            .finish()
    }
}

fn compile(
    schema: &Value,
    tool: &str,
    which: &'static str,
) -> Result<jsonschema::Validator, BuildError> {
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err(BuildError::InvalidSchema {
            tool: tool.to_string(),
            which,
            reason: "the root must have \"type\": \"object\"".into(),
        });
    }
    jsonschema::validator_for(schema).map_err(|e| BuildError::InvalidSchema {
        tool: tool.to_string(),
        which,
        reason: e.to_string(),
    })
}

/// The input schema of `T`, without the Rust type name schemars puts in
/// `title` (models see it, and it names nothing of theirs).
fn schema_of<T: JsonSchema>() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(T))
        .unwrap_or_else(|_| json!({"type": "object"}));
    if let Some(root) = schema.as_object_mut() {
        root.remove("title");
    }
    schema
}

impl ServerBuilder {
    /// A server called `name`, version `version`.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        ServerBuilder {
            info: Implementation::new(name, version),
            instructions: None,
            config: ServerConfig::default(),
            key: None,
            tools: Vec::new(),
            resources: Vec::new(),
            templates: Vec::new(),
            prompts: Vec::new(),
            completer: None,
            errors: Vec::new(),
        }
    }

    /// Instructions for the model, sent at discovery or initialization.
    pub fn instructions(mut self, text: impl Into<String>) -> Self {
        self.instructions = Some(text.into());
        self
    }

    /// Replaces the settings.
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// The key that seals cursors and request state. Instances that serve
    /// the same clients behind a load balancer must share it; by default each
    /// server makes its own at random.
    pub fn seal_key(mut self, key: SealKey) -> Self {
        self.key = Some(key);
        self
    }

    /// A tool whose arguments are `A`; its input schema is derived from `A`.
    ///
    /// Arguments are checked against the schema before `handler` runs; a
    /// mismatch is a tool result with `isError` set listing each violation
    /// (the specification counts it as a tool execution error, which the
    /// model sees and can correct), not a protocol error.
    pub fn tool<A, F, Fut>(self, name: &str, description: &str, handler: F) -> Self
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(A, RequestContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CallToolResult, ToolError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.tool_with_schema(
            name,
            description,
            schema_of::<A>(),
            None,
            move |args, ctx| {
                let handler = handler.clone();
                async move {
                    let args: A = serde_json::from_value(args)
                        .map_err(|e| ToolError::new(format!("arguments: {e}")))?;
                    handler(args, ctx).await
                }
            },
        )
    }

    /// A tool with an explicit input schema (and optional output schema);
    /// `handler` gets the validated arguments as JSON.
    pub fn tool_with_schema<F, Fut>(
        mut self,
        name: &str,
        description: &str,
        input_schema: Value,
        output_schema: Option<Value>,
        handler: F,
    ) -> Self
    where
        F: Fn(Value, RequestContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CallToolResult, ToolError>> + Send + 'static,
    {
        if self.tools.iter().any(|t| t.definition["name"] == name) {
            self.errors.push(BuildError::Duplicate {
                kind: "tool",
                name: name.into(),
            });
            return self;
        }
        let input = match compile(&input_schema, name, "input") {
            Ok(v) => v,
            Err(e) => {
                self.errors.push(e);
                return self;
            }
        };
        let output = match output_schema
            .as_ref()
            .map(|s| compile(s, name, "output"))
            .transpose()
        {
            Ok(v) => v,
            Err(e) => {
                self.errors.push(e);
                return self;
            }
        };
        let headers = match crate::param_header::param_headers(&input_schema) {
            Ok(headers) => headers.into(),
            Err(reason) => {
                self.errors.push(BuildError::InvalidSchema {
                    tool: name.into(),
                    which: "input",
                    reason,
                });
                return self;
            }
        };
        let mut definition = json!({
            "name": name,
            "description": description,
            "inputSchema": input_schema,
        });
        if let Some(out) = output_schema {
            definition["outputSchema"] = out;
        }
        let handler: ToolFn = Arc::new(move |args, ctx| Box::pin(handler(args, ctx)));
        self.tools.push(ToolEntry {
            definition,
            task: TaskSupport::Never,
            headers,
            input,
            output,
            handler,
        });
        self
    }

    /// A family of resources whose URIs match an RFC 6570 template; `handler`
    /// gets the matched variables and the URI. Variable constraints declared
    /// on the template (`UriTemplate::with_var`) are checked first: a value
    /// that breaks one is a `-32602` error naming the variable.
    pub fn resource_template<F, Fut>(
        mut self,
        template: UriTemplate,
        name: &str,
        mime_type: Option<&str>,
        handler: F,
    ) -> Self
    where
        F: Fn(Variables, String, RequestContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<ResourceContents>, HandlerError>> + Send + 'static,
    {
        if self
            .templates
            .iter()
            .any(|t| t.template.as_str() == template.as_str())
        {
            self.errors.push(BuildError::Duplicate {
                kind: "resource template",
                name: template.as_str().into(),
            });
            return self;
        }
        let mut definition = json!({ "uriTemplate": template.as_str(), "name": name });
        if let Some(m) = mime_type {
            definition["mimeType"] = m.into();
        }
        let handler: TemplateFn = Arc::new(move |vars, uri, ctx| Box::pin(handler(vars, uri, ctx)));
        self.templates.push(TemplateEntry {
            definition,
            template,
            handler,
            cache: crate::cache::CacheHint::NONE,
        });
        self
    }

    /// A resource at a fixed URI.
    pub fn resource<F, Fut>(
        mut self,
        uri: &str,
        name: &str,
        mime_type: Option<&str>,
        handler: F,
    ) -> Self
    where
        F: Fn(String, RequestContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<ResourceContents>, HandlerError>> + Send + 'static,
    {
        let normalized = match ResourceUri::parse(uri) {
            Ok(u) => u.as_str().to_string(),
            Err(e) => {
                self.errors.push(BuildError::InvalidUri {
                    uri: uri.into(),
                    reason: e.to_string(),
                });
                return self;
            }
        };
        if self.resources.iter().any(|r| r.uri == normalized) {
            self.errors.push(BuildError::Duplicate {
                kind: "resource",
                name: uri.into(),
            });
            return self;
        }
        let mut definition = json!({ "uri": uri, "name": name });
        if let Some(m) = mime_type {
            definition["mimeType"] = m.into();
        }
        let handler: ResourceFn = Arc::new(move |uri, ctx| Box::pin(handler(uri, ctx)));
        self.resources.push(ResourceEntry {
            definition,
            uri: normalized,
            handler,
            cache: crate::cache::CacheHint::NONE,
        });
        self
    }

    /// Sets how long 2026-07-28 clients may reuse what `resources/read`
    /// gives for the resource at `uri`, or for the template written
    /// `uri` (both declared before). The default, [`CacheHint::NONE`], is
    /// right for anything that can change: declare only what is immutable
    /// for a while.
    ///
    /// [`CacheHint::NONE`]: crate::cache::CacheHint::NONE
    pub fn cache_resource(mut self, uri: &str, hint: crate::cache::CacheHint) -> Self {
        let normalized = ResourceUri::parse(uri).map(|u| u.as_str().to_string());
        if let Some(entry) = self
            .resources
            .iter_mut()
            .find(|r| normalized.as_deref().is_ok_and(|n| r.uri == n))
        {
            entry.cache = hint;
        } else if let Some(entry) = self
            .templates
            .iter_mut()
            .find(|t| t.template.as_str() == uri)
        {
            entry.cache = hint;
        } else {
            self.errors.push(BuildError::UnknownResource(uri.into()));
        }
        self
    }

    /// A prompt with declared arguments; required ones are checked before
    /// `handler` runs.
    pub fn prompt<F, Fut>(
        mut self,
        name: &str,
        description: &str,
        arguments: Vec<PromptArgument>,
        handler: F,
    ) -> Self
    where
        F: Fn(HashMap<String, String>, RequestContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<GetPromptResult, HandlerError>> + Send + 'static,
    {
        if self.prompts.iter().any(|p| p.definition["name"] == name) {
            self.errors.push(BuildError::Duplicate {
                kind: "prompt",
                name: name.into(),
            });
            return self;
        }
        let definition = json!({
            "name": name,
            "description": description,
            "arguments": arguments,
        });
        let handler: PromptFn = Arc::new(move |args, ctx| Box::pin(handler(args, ctx)));
        self.prompts.push(PromptEntry {
            definition,
            arguments,
            handler,
        });
        self
    }

    /// Sets whether the tool `name` (declared before) runs as a task for
    /// clients that declare the tasks extension.
    pub fn task_support(mut self, name: &str, support: TaskSupport) -> Self {
        match self.tools.iter_mut().find(|t| t.definition["name"] == name) {
            Some(tool) => {
                tool.task = support;
                // 2025-11-25 clients read this from the tool itself.
                let level = match support {
                    TaskSupport::Never => "forbidden",
                    TaskSupport::Optional => "optional",
                    TaskSupport::Required => "required",
                };
                tool.definition["execution"] = json!({ "taskSupport": level });
            }
            None => self.errors.push(BuildError::UnknownTool(name.into())),
        }
        self
    }

    /// Completes prompt arguments and template variables. The target and the
    /// argument are checked to exist before `handler` runs; at most
    /// [`MAX_COMPLETION_VALUES`] values are returned, with `hasMore` set when
    /// there were more.
    pub fn completion<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(CompletionRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<String>> + Send + 'static,
    {
        self.completer = Some(Arc::new(move |req| Box::pin(handler(req))));
        self
    }

    /// The finished server.
    ///
    /// # Errors
    /// The first [`BuildError`] in the definition.
    pub fn build(mut self) -> Result<McpServer, BuildError> {
        if let Some(e) = self.errors.drain(..).next() {
            return Err(e);
        }
        let key = self.key.unwrap_or_else(SealKey::generate);
        let mut catalog = Catalog {
            tools: self.tools.into_iter().map(Arc::new).collect(),
            tool_index: HashMap::new(),
            resources: self.resources.into_iter().map(Arc::new).collect(),
            templates: self.templates.into_iter().map(Arc::new).collect(),
            prompts: self.prompts.into_iter().map(Arc::new).collect(),
        };
        catalog.index_tools();
        Ok(McpServer {
            inner: Arc::new(Inner {
                info: self.info,
                instructions: self.instructions,
                sealer: Sealer::new(key),
                catalog: RwLock::new(catalog),
                completer: self.completer,
                tasks: TaskStore::new(
                    self.config.task_ttl,
                    self.config.task_poll_interval,
                    self.config.max_tasks,
                ),
                subscribers: ProcessGroups::new(),
                memory: crate::memory::MemoryBudget::new(
                    self.config
                        .max_buffered_bytes
                        .unwrap_or_else(crate::memory::MemoryBudget::default_bytes),
                ),
                config: self.config,
            }),
        })
    }
}

struct Inner {
    info: Implementation,
    instructions: Option<String>,
    config: ServerConfig,
    sealer: Sealer,
    catalog: RwLock<Catalog>,
    completer: Option<CompleteFn>,
    tasks: TaskStore,
    subscribers: ProcessGroups<String>,
    memory: crate::memory::MemoryBudget,
}

/// What a server offers right now: tools, resources, templates, prompts.
/// Entries are shared so a call holds no lock while its handler runs.
#[derive(Default)]
struct Catalog {
    tools: Vec<Arc<ToolEntry>>,
    tool_index: HashMap<String, usize>,
    resources: Vec<Arc<ResourceEntry>>,
    templates: Vec<Arc<TemplateEntry>>,
    prompts: Vec<Arc<PromptEntry>>,
}

impl Catalog {
    fn index_tools(&mut self) {
        self.tool_index = self
            .tools
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((t.definition["name"].as_str()?.to_string(), i)))
            .collect();
    }

    fn tool(&self, name: &str) -> Option<Arc<ToolEntry>> {
        self.tool_index.get(name).map(|&i| self.tools[i].clone())
    }

    fn prompt(&self, name: &str) -> Option<Arc<PromptEntry>> {
        self.prompts
            .iter()
            .find(|p| p.definition["name"] == name)
            .cloned()
    }
}

/// A built server: cheap to clone, shared by every connection.
#[derive(Clone)]
pub struct McpServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("info", &self.inner.info)
            .field("tools", &self.inner.catalog.read().tools.len())
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct CursorState {
    list: String,
    offset: usize,
}

const CURSOR_PURPOSE: &str = "cursor";

fn params_field<T: DeserializeOwned>(
    params: &Map<String, Value>,
    field: &str,
) -> Result<Option<T>, ErrorObject> {
    match params.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| {
            ErrorObject::invalid_params(format!("invalid {field}: {e}"))
                .with_data(json!({ "field": field }))
        }),
    }
}

fn required_field<T: DeserializeOwned>(
    params: &Map<String, Value>,
    field: &str,
) -> Result<T, ErrorObject> {
    params_field(params, field)?.ok_or_else(|| {
        ErrorObject::invalid_params(format!("missing {field}")).with_data(json!({ "field": field }))
    })
}

impl McpServer {
    /// Who the server is.
    pub fn info(&self) -> &Implementation {
        &self.inner.info
    }

    /// Its instructions.
    pub fn instructions(&self) -> Option<&str> {
        self.inner.instructions.as_deref()
    }

    /// Its settings.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The memory budget all its connections share.
    pub fn memory(&self) -> &crate::memory::MemoryBudget {
        &self.inner.memory
    }

    pub(crate) fn sealer(&self) -> &Sealer {
        &self.inner.sealer
    }

    /// Declares a tool at run time, as [`ServerBuilder::tool`] does, and tells
    /// the clients that follow the tool list.
    ///
    /// # Errors
    /// [`BuildError`] for a duplicate name or a bad schema.
    pub fn add_tool<A, F, Fut>(
        &self,
        name: &str,
        description: &str,
        handler: F,
    ) -> Result<(), BuildError>
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(A, RequestContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CallToolResult, ToolError>> + Send + 'static,
    {
        self.adopt(ServerBuilder::new("", "").tool(name, description, handler))
    }

    /// Declares a prompt at run time, as [`ServerBuilder::prompt`] does, and
    /// tells the clients that follow the prompt list.
    ///
    /// # Errors
    /// [`BuildError::Duplicate`] for a duplicate name.
    pub fn add_prompt<F, Fut>(
        &self,
        name: &str,
        description: &str,
        arguments: Vec<PromptArgument>,
        handler: F,
    ) -> Result<(), BuildError>
    where
        F: Fn(HashMap<String, String>, RequestContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<GetPromptResult, HandlerError>> + Send + 'static,
    {
        self.adopt(ServerBuilder::new("", "").prompt(name, description, arguments, handler))
    }

    /// Declares a resource at run time, as [`ServerBuilder::resource`] does,
    /// and tells the clients that follow the resource list.
    ///
    /// # Errors
    /// [`BuildError`] for a duplicate or invalid URI.
    pub fn add_resource<F, Fut>(
        &self,
        uri: &str,
        name: &str,
        mime_type: Option<&str>,
        handler: F,
    ) -> Result<(), BuildError>
    where
        F: Fn(String, RequestContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<ResourceContents>, HandlerError>> + Send + 'static,
    {
        self.adopt(ServerBuilder::new("", "").resource(uri, name, mime_type, handler))
    }

    /// Moves what a scratch builder declared into the live catalog.
    fn adopt(&self, builder: ServerBuilder) -> Result<(), BuildError> {
        if let Some(e) = builder.errors.into_iter().next() {
            return Err(e);
        }
        let mut changed = Vec::new();
        {
            let mut catalog = self.inner.catalog.write();
            for tool in &builder.tools {
                let name = tool.definition["name"].as_str().unwrap_or_default();
                if catalog.tool(name).is_some() {
                    return Err(BuildError::Duplicate {
                        kind: "tool",
                        name: name.into(),
                    });
                }
            }
            for prompt in &builder.prompts {
                let name = prompt.definition["name"].as_str().unwrap_or_default();
                if catalog.prompt(name).is_some() {
                    return Err(BuildError::Duplicate {
                        kind: "prompt",
                        name: name.into(),
                    });
                }
            }
            for resource in &builder.resources {
                if catalog.resources.iter().any(|r| r.uri == resource.uri) {
                    return Err(BuildError::Duplicate {
                        kind: "resource",
                        name: resource.uri.clone(),
                    });
                }
            }
            if !builder.tools.is_empty() {
                catalog
                    .tools
                    .extend(builder.tools.into_iter().map(Arc::new));
                catalog.index_tools();
                changed.push(ListKind::Tools);
            }
            if !builder.prompts.is_empty() {
                catalog
                    .prompts
                    .extend(builder.prompts.into_iter().map(Arc::new));
                changed.push(ListKind::Prompts);
            }
            if !builder.resources.is_empty() {
                catalog
                    .resources
                    .extend(builder.resources.into_iter().map(Arc::new));
                changed.push(ListKind::Resources);
            }
        }
        for kind in changed {
            self.list_changed(kind);
        }
        Ok(())
    }

    /// Removes a tool; `false` if there was none. Tells the clients that
    /// follow the tool list.
    pub fn remove_tool(&self, name: &str) -> bool {
        let removed = {
            let mut catalog = self.inner.catalog.write();
            let before = catalog.tools.len();
            catalog.tools.retain(|t| t.definition["name"] != name);
            catalog.index_tools();
            catalog.tools.len() != before
        };
        if removed {
            self.list_changed(ListKind::Tools);
        }
        removed
    }

    /// Removes a prompt; `false` if there was none. Tells the clients that
    /// follow the prompt list.
    pub fn remove_prompt(&self, name: &str) -> bool {
        let removed = {
            let mut catalog = self.inner.catalog.write();
            let before = catalog.prompts.len();
            catalog.prompts.retain(|p| p.definition["name"] != name);
            catalog.prompts.len() != before
        };
        if removed {
            self.list_changed(ListKind::Prompts);
        }
        removed
    }

    /// Removes a resource by URI; `false` if there was none. Tells the
    /// clients that follow the resource list.
    pub fn remove_resource(&self, uri: &str) -> bool {
        let Ok(uri) = ResourceUri::parse(uri) else {
            return false;
        };
        let removed = {
            let mut catalog = self.inner.catalog.write();
            let before = catalog.resources.len();
            catalog.resources.retain(|r| r.uri != uri.as_str());
            catalog.resources.len() != before
        };
        if removed {
            self.list_changed(ListKind::Resources);
        }
        removed
    }

    /// Tells every client that follows `kind` that it changed; returns how
    /// many were told. Called by the `add_*` and `remove_*` methods.
    pub fn list_changed(&self, kind: ListKind) -> usize {
        let mut told = 0;
        self.inner.subscribers.for_each_member(&kind.group(), |p| {
            let sent = match ActorRef::<SubscriptionMsg>::from_process(p) {
                Some(sub) => sub.try_send(SubscriptionMsg::Updated).is_ok(),
                None => ActorRef::<crate::session::SessionMsg>::from_process(p).is_some_and(|s| {
                    s.try_send(crate::session::SessionMsg::ListChanged(kind))
                        .is_ok()
                }),
            };
            told += usize::from(sent);
        });
        told
    }

    /// Tells every subscriber of `uri` that the resource changed; returns how
    /// many were told. Subscribers whose queues are full miss this update.
    pub fn resource_updated(&self, uri: &str) -> usize {
        let Ok(uri) = ResourceUri::parse(uri) else {
            return 0;
        };
        let mut told = 0;
        self.inner
            .subscribers
            .for_each_member(&uri.as_str().to_string(), |p| {
                if ActorRef::<SubscriptionMsg>::from_process(p)
                    .is_some_and(|s| s.try_send(SubscriptionMsg::Updated).is_ok())
                {
                    told += 1;
                }
            });
        told
    }

    /// Live subscriptions to `uri`, across all connections.
    pub fn subscriber_count(&self, uri: &str) -> usize {
        ResourceUri::parse(uri).map_or(0, |u| {
            self.inner.subscribers.member_count(&u.as_str().to_string())
        })
    }

    pub(crate) fn subscribers(&self) -> &ProcessGroups<String> {
        &self.inner.subscribers
    }

    /// Whether `uri` names a resource: a declared one or a template match.
    pub(crate) fn has_resource(&self, uri: &ResourceUri) -> bool {
        let catalog = self.inner.catalog.read();
        catalog.resources.iter().any(|r| r.uri == uri.as_str())
            || catalog
                .templates
                .iter()
                .any(|t| matches!(t.template.match_uri(uri.as_str()), Ok(Some(_))))
    }

    pub(crate) fn tasks(&self) -> &TaskStore {
        &self.inner.tasks
    }

    /// Whether any tool runs as a task (the `tasks/*` methods exist).
    pub fn serves_tasks(&self) -> bool {
        self.inner
            .catalog
            .read()
            .tools
            .iter()
            .any(|t| t.task != TaskSupport::Never)
    }

    /// The parameters of tool `name` that HTTP clients mirror into
    /// `Mcp-Param-*` headers, if there is such a tool.
    pub fn tool_param_headers(
        &self,
        name: &str,
    ) -> Option<Arc<[crate::param_header::ParamHeader]>> {
        self.inner
            .catalog
            .read()
            .tool(name)
            .map(|t| t.headers.clone())
    }

    /// How the tool `name` runs, if there is such a tool.
    pub fn tool_task_support(&self, name: &str) -> Option<TaskSupport> {
        self.inner.catalog.read().tool(name).map(|t| t.task)
    }

    /// The capabilities this server offers in `era` (extensions exist only
    /// in 2026-07-28).
    pub fn capabilities(&self, era: Era) -> Value {
        let mut caps = Map::new();
        let catalog = self.inner.catalog.read();
        if !catalog.tools.is_empty() {
            caps.insert("tools".into(), json!({ "listChanged": true }));
        }
        if !catalog.resources.is_empty() || !catalog.templates.is_empty() {
            caps.insert(
                "resources".into(),
                json!({ "listChanged": true, "subscribe": true }),
            );
        }
        if !catalog.prompts.is_empty() {
            caps.insert("prompts".into(), json!({ "listChanged": true }));
        }
        if self.inner.completer.is_some() {
            caps.insert("completions".into(), json!({}));
        }
        // Handlers may log (RequestContext::log) in either era.
        caps.insert("logging".into(), json!({}));
        if era == Era::Modern && catalog.tools.iter().any(|t| t.task != TaskSupport::Never) {
            caps.insert("extensions".into(), json!({ crate::tasks::EXTENSION: {} }));
        }
        Value::Object(caps)
    }

    /// Whether `method` is a feature method this server answers.
    pub fn serves(&self, method: Method) -> bool {
        let catalog = self.inner.catalog.read();
        match method {
            Method::ToolsList | Method::ToolsCall => !catalog.tools.is_empty(),
            Method::ResourcesList | Method::ResourcesRead | Method::ResourcesTemplatesList => {
                !catalog.resources.is_empty() || !catalog.templates.is_empty()
            }
            Method::PromptsList | Method::PromptsGet => !catalog.prompts.is_empty(),
            Method::CompletionComplete => self.inner.completer.is_some(),
            _ => false,
        }
    }

    /// Answers one feature method. The caller has checked lifecycle and
    /// envelope, and shapes the result for its era.
    ///
    /// # Errors
    /// The JSON-RPC error to answer with.
    pub async fn call(
        &self,
        method: Method,
        params: Map<String, Value>,
        ctx: RequestContext,
    ) -> Result<Outcome, ErrorObject> {
        let listed = |list: &str| -> Result<Outcome, ErrorObject> {
            let catalog = self.inner.catalog.read();
            let items: Vec<&Value> = match list {
                "tools" => catalog.tools.iter().map(|t| &t.definition).collect(),
                "resources" => catalog.resources.iter().map(|r| &r.definition).collect(),
                "resourceTemplates" => catalog.templates.iter().map(|t| &t.definition).collect(),
                _ => catalog.prompts.iter().map(|p| &p.definition).collect(),
            };
            self.page(list, &params, items).map(Outcome::Done)
        };
        match method {
            Method::ToolsCall => self.call_tool(params, ctx).await,
            Method::ResourcesRead => self.read_resource(params, ctx).await,
            Method::PromptsGet => self.get_prompt(params, ctx).await,
            Method::ToolsList => listed("tools"),
            Method::ResourcesList => listed("resources"),
            Method::ResourcesTemplatesList => listed("resourceTemplates"),
            Method::PromptsList => listed("prompts"),
            Method::CompletionComplete => self.complete(&params).await.map(Outcome::Done),
            other => Err(ErrorObject::method_not_found(other.as_str())),
        }
    }

    fn page(
        &self,
        list: &str,
        params: &Map<String, Value>,
        all: Vec<&Value>,
    ) -> Result<Value, ErrorObject> {
        let offset = match params_field::<String>(params, "cursor")? {
            None => 0,
            Some(cursor) => self.open_cursor(list, &cursor)?,
        };
        if offset > all.len() {
            return Err(ErrorObject::invalid_params("cursor out of range")
                .with_data(json!({ "cursor": "stale" })));
        }
        let size = self.inner.config.page_size.max(1);
        let end = (offset + size).min(all.len());
        let mut result = Map::new();
        result.insert(
            list.into(),
            Value::Array(all[offset..end].iter().map(|v| (*v).clone()).collect()),
        );
        if end < all.len() {
            let state = CursorState {
                list: list.into(),
                offset: end,
            };
            let payload =
                serde_json::to_vec(&state).map_err(|e| ErrorObject::internal(e.to_string()))?;
            let cursor =
                self.inner
                    .sealer
                    .seal(CURSOR_PURPOSE, &payload, self.inner.config.cursor_ttl);
            result.insert("nextCursor".into(), cursor.into());
        }
        Ok(Value::Object(result))
    }

    fn open_cursor(&self, list: &str, cursor: &str) -> Result<usize, ErrorObject> {
        let bad = |why: &str| {
            ErrorObject::invalid_params(format!("invalid cursor: {why}"))
                .with_data(json!({ "cursor": cursor }))
        };
        let payload = self
            .inner
            .sealer
            .open(CURSOR_PURPOSE, cursor)
            .map_err(|e| bad(&e.to_string()))?;
        let state: CursorState = serde_json::from_slice(&payload).map_err(|_| bad("unreadable"))?;
        if state.list != list {
            return Err(bad("issued for another list"));
        }
        Ok(state.offset)
    }

    async fn call_tool(
        &self,
        params: Map<String, Value>,
        ctx: RequestContext,
    ) -> Result<Outcome, ErrorObject> {
        let name: String = required_field(&params, "name")?;
        let args = params_field::<Value>(&params, "arguments")?.unwrap_or_else(|| json!({}));
        let tool = self.inner.catalog.read().tool(&name);
        let Some(tool) = tool else {
            return Err(ErrorObject::invalid_params(format!("unknown tool: {name}"))
                .with_data(json!({ "tool": name })));
        };
        let violations: Vec<Value> = tool
            .input
            .iter_errors(&args)
            .map(|e| json!({ "path": e.instance_path().to_string(), "message": e.to_string() }))
            .collect();
        if !violations.is_empty() {
            // The spec counts input validation errors as tool execution
            // errors (both eras): the model sees them and can correct itself.
            let mut text = format!("invalid arguments for tool {name}:");
            for v in &violations {
                text.push_str(&format!(
                    "\n- {}: {}",
                    v["path"].as_str().unwrap_or(""),
                    v["message"].as_str().unwrap_or("")
                ));
            }
            return Ok(Outcome::Done(
                serde_json::to_value(CallToolResult::error(text))
                    .map_err(|e| ErrorObject::internal(e.to_string()))?,
            ));
        }
        let result = match (tool.handler)(args, ctx).await {
            Ok(result) => result,
            Err(ToolError::Failed(message)) => CallToolResult::error(message),
            Err(ToolError::InputRequired(input)) => return Ok(Outcome::NeedsInput(input)),
        };
        if let (Some(validator), false) = (&tool.output, result.is_error) {
            let structured = result.structured_content.clone().unwrap_or(Value::Null);
            let violations: Vec<String> = validator
                .iter_errors(&structured)
                .map(|e| e.to_string())
                .collect();
            if !violations.is_empty() {
                return Err(ErrorObject::internal(format!(
                    "tool {name} returned output that violates its output schema"
                ))
                .with_data(json!({ "tool": name, "errors": violations })));
            }
        }
        serde_json::to_value(result)
            .map(Outcome::Done)
            .map_err(|e| ErrorObject::internal(e.to_string()))
    }

    async fn complete(&self, params: &Map<String, Value>) -> Result<Value, ErrorObject> {
        let Some(completer) = &self.inner.completer else {
            return Err(ErrorObject::method_not_found(
                Method::CompletionComplete.as_str(),
            ));
        };
        let reference: Value = required_field(params, "ref")?;
        let argument: Value = required_field(params, "argument")?;
        let (Some(arg_name), Some(value)) = (
            argument.get("name").and_then(Value::as_str),
            argument.get("value").and_then(Value::as_str),
        ) else {
            return Err(
                ErrorObject::invalid_params("argument needs a name and a value")
                    .with_data(json!({ "field": "argument" })),
            );
        };
        let reference = match reference.get("type").and_then(Value::as_str) {
            Some("ref/prompt") => {
                let name = reference
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let prompt = self.inner.catalog.read().prompt(name).ok_or_else(|| {
                    ErrorObject::invalid_params(format!("unknown prompt: {name}"))
                        .with_data(json!({ "prompt": name }))
                })?;
                if !prompt.arguments.iter().any(|a| a.name == arg_name) {
                    return Err(ErrorObject::invalid_params(format!(
                        "prompt {name} has no argument {arg_name}"
                    ))
                    .with_data(json!({ "prompt": name, "argument": arg_name })));
                }
                CompletionRef::Prompt(name.to_string())
            }
            Some("ref/resource") => {
                let uri = reference
                    .get("uri")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let template = self
                    .inner
                    .catalog
                    .read()
                    .templates
                    .iter()
                    .find(|t| t.template.as_str() == uri)
                    .cloned()
                    .ok_or_else(|| {
                        ErrorObject::invalid_params(format!("unknown resource template: {uri}"))
                            .with_data(json!({ "uri": uri }))
                    })?;
                if !template.template.variables().any(|v| v == arg_name) {
                    return Err(ErrorObject::invalid_params(format!(
                        "template {uri} has no variable {arg_name}"
                    ))
                    .with_data(json!({ "uri": uri, "argument": arg_name })));
                }
                CompletionRef::Resource(uri.to_string())
            }
            _ => {
                return Err(ErrorObject::invalid_params(
                    "ref.type must be ref/prompt or ref/resource",
                )
                .with_data(json!({ "field": "ref.type" })))
            }
        };
        let context = params
            .get("context")
            .and_then(|c| c.get("arguments"))
            .and_then(|a| serde_json::from_value::<HashMap<String, String>>(a.clone()).ok())
            .unwrap_or_default();
        let mut values = completer(CompletionRequest {
            reference,
            argument: arg_name.to_string(),
            value: value.to_string(),
            context,
        })
        .await;
        let total = values.len();
        values.truncate(MAX_COMPLETION_VALUES);
        Ok(
            json!({ "completion": { "values": values, "total": total, "hasMore": total > MAX_COMPLETION_VALUES } }),
        )
    }

    async fn read_resource(
        &self,
        params: Map<String, Value>,
        ctx: RequestContext,
    ) -> Result<Outcome, ErrorObject> {
        let uri: String = required_field(&params, "uri")?;
        let era = ctx.era();
        let parsed = ResourceUri::parse(&uri).map_err(|e| {
            ErrorObject::invalid_params(format!("invalid resource uri: {e}"))
                .with_data(json!({ "uri": uri, "reason": e.to_string() }))
        })?;
        let (entry, templates) = {
            let catalog = self.inner.catalog.read();
            let entry = catalog
                .resources
                .iter()
                .find(|r| r.uri == parsed.as_str())
                .cloned();
            (entry, catalog.templates.clone())
        };
        // The resource's own caching hint (2026-07-28 only).
        let read = |contents: Vec<ResourceContents>, cache: crate::cache::CacheHint| {
            let mut result = Map::new();
            result.insert("contents".into(), json!(contents));
            if era == Era::Modern {
                cache.apply(&mut result);
            }
            Outcome::Done(Value::Object(result))
        };
        if let Some(entry) = entry {
            return match (entry.handler)(uri, ctx).await {
                Ok(contents) => Ok(read(contents, entry.cache)),
                Err(e) => outcome_of(e),
            };
        }
        for entry in &templates {
            match entry.template.match_uri(parsed.as_str()) {
                Ok(None) => continue,
                Ok(Some(vars)) => {
                    return match (entry.handler)(vars, uri, ctx).await {
                        Ok(contents) => Ok(read(contents, entry.cache)),
                        Err(e) => outcome_of(e),
                    };
                }
                Err(e) => {
                    return Err(ErrorObject::invalid_params(format!("invalid resource uri: {e}"))
                        .with_data(json!({ "uri": uri, "template": entry.template.as_str(), "reason": e.to_string() })));
                }
            }
        }
        Err(resource_not_found(&uri, era))
    }

    async fn get_prompt(
        &self,
        params: Map<String, Value>,
        ctx: RequestContext,
    ) -> Result<Outcome, ErrorObject> {
        let name: String = required_field(&params, "name")?;
        let args: HashMap<String, String> = params_field(&params, "arguments")?.unwrap_or_default();
        let prompt = self.inner.catalog.read().prompt(&name);
        let Some(prompt) = prompt else {
            return Err(
                ErrorObject::invalid_params(format!("unknown prompt: {name}"))
                    .with_data(json!({ "prompt": name })),
            );
        };
        let missing: Vec<&str> = prompt
            .arguments
            .iter()
            .filter(|a| a.required && !args.contains_key(&a.name))
            .map(|a| a.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(ErrorObject::invalid_params(format!(
                "prompt {name}: missing required arguments"
            ))
            .with_data(json!({ "prompt": name, "missing": missing })));
        }
        let unknown: Vec<&String> = args
            .keys()
            .filter(|k| !prompt.arguments.iter().any(|a| &a.name == *k))
            .collect();
        if !unknown.is_empty() {
            return Err(
                ErrorObject::invalid_params(format!("prompt {name}: unknown arguments"))
                    .with_data(json!({ "prompt": name, "unknown": unknown })),
            );
        }
        match (prompt.handler)(args, ctx).await {
            Ok(result) => serde_json::to_value(result)
                .map(Outcome::Done)
                .map_err(|e| ErrorObject::internal(e.to_string())),
            Err(e) => outcome_of(e),
        }
    }
}

/// The era's error for an unknown resource: `-32002` in the handshake era,
/// `-32602` with `data.uri` in 2026-07-28.
pub fn resource_not_found(uri: &str, era: Era) -> ErrorObject {
    let code = match era {
        Era::Handshake => code::RESOURCE_NOT_FOUND,
        Era::Modern => code::INVALID_PARAMS,
    };
    ErrorObject::new(code, format!("Resource not found: {uri}")).with_data(json!({ "uri": uri }))
}
