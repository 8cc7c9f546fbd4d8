//! Declaring a server: [`ServerBuilder`] takes its tools, resources,
//! templates and prompts and builds the [`McpServer`](super::McpServer).

use super::Ctx;
use std::any::TypeId;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use parking_lot::RwLock;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::context::RequestContext;
use crate::model::tool::{empty_object_schema, schema_of};
use crate::model::{
    Annotations, CallToolResult, GetPromptResult, Icon, Implementation, Prompt, Resource,
    ResourceContents, ResourceTemplate, Tool,
};
use crate::seal::{SealKey, Sealer};
use crate::tasks::TaskStore;
use crate::template::Variables;
use crate::uri::ResourceUri;

use super::{
    Catalog, CompleteFn, CompletionRequest, HandlerError, Inner, McpServer, PromptEntry, PromptFn,
    ResourceEntry, ResourceFn, ServerConfig, TemplateEntry, TemplateFn, ToolEntry, ToolError,
    ToolFn,
};

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
    /// An icon a client should not load, or annotations out of range, on
    /// a tool, resource, template or prompt.
    #[error("{owner:?}: {reason}")]
    InvalidDefinition {
        /// The tool, resource, template or prompt.
        owner: String,
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
    /// The `auth` configuration cannot work ([`crate::auth`]).
    #[error("{0}")]
    Auth(String),
}

/// Declares a server: its tools, resources, templates and prompts, served
/// to both eras by the [`McpServer`](super::McpServer) it builds.
///
/// # Examples
///
/// ```
/// use arbor_mcp::{CallToolResult, Method, ServerBuilder, Tool};
/// use schemars::JsonSchema;
/// use serde::Deserialize;
///
/// #[derive(Deserialize, JsonSchema)]
/// struct Greet {
///     /// Who to greet.
///     name: String,
/// }
///
/// let server = ServerBuilder::new("hello", "1.0.0")
///     .tool(Tool::new("greet").description("Greets someone"), |a: Greet, _ctx| async move {
///         Ok(CallToolResult::text(format!("Hello, {}!", a.name)))
///     })
///     .build()
///     .expect("a valid server");
/// assert!(server.serves(Method::ToolsCall));
/// assert!(!server.serves(Method::PromptsGet));
/// ```
#[must_use = "a builder does nothing until built"]
pub struct ServerBuilder {
    pub(super) info: Implementation,
    pub(super) instructions: Option<String>,
    pub(super) config: ServerConfig,
    pub(super) key: Option<SealKey>,
    pub(super) tools: Vec<ToolEntry<Ctx>>,
    pub(super) resources: Vec<ResourceEntry<Ctx>>,
    pub(super) templates: Vec<TemplateEntry<Ctx>>,
    pub(super) prompts: Vec<PromptEntry<Ctx>>,
    pub(super) completer: Option<CompleteFn>,
    pub(super) errors: Vec<BuildError>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("info", &self.info)
            .finish()
    }
}

pub(super) fn compile(
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

    /// A tool whose handler takes arguments of type `A`: the input schema is
    /// derived from `A` (replacing any `tool` names), and a tool without
    /// arguments takes `()`.
    ///
    /// Arguments are checked against the schema before `handler` runs; a
    /// mismatch is a tool result with `isError` set listing each violation
    /// (the specification counts it as a tool execution error, which the
    /// model sees and can correct), not a protocol error.
    pub fn tool<A, F, Fut>(self, tool: Tool, handler: F) -> Self
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(A, RequestContext<McpServer>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CallToolResult, ToolError>> + Send + 'static,
    {
        let no_args = TypeId::of::<A>() == TypeId::of::<()>();
        let schema = if no_args {
            empty_object_schema()
        } else {
            schema_of::<A>()
        };
        let handler = Arc::new(handler);
        self.tool_with_schema(tool.input_schema(schema), move |args, ctx| {
            let handler = handler.clone();
            async move {
                // `()` reads from null: its arguments are an empty object.
                let args = if no_args { Value::Null } else { args };
                let args: A = serde_json::from_value(args)
                    .map_err(|e| ToolError::new(format!("arguments: {e}")))?;
                handler(args, ctx).await
            }
        })
    }

    /// A tool whose handler takes its validated arguments as JSON, checked
    /// against the input schema `tool` names (an object schema; by default
    /// one without properties).
    pub fn tool_with_schema<F, Fut>(mut self, tool: Tool, handler: F) -> Self
    where
        F: Fn(Value, RequestContext<McpServer>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CallToolResult, ToolError>> + Send + 'static,
    {
        let name = tool.name.clone();
        if self.tools.iter().any(|t| t.name == name) {
            self.errors
                .push(BuildError::Duplicate { kind: "tool", name });
            return self;
        }
        if let Some(reason) = tool.icons.iter().find_map(Icon::problem) {
            self.errors.push(BuildError::InvalidDefinition {
                owner: name,
                reason,
            });
            return self;
        }
        let input = match compile(&tool.input_schema, &name, "input") {
            Ok(v) => v,
            Err(e) => {
                self.errors.push(e);
                return self;
            }
        };
        let output = match tool
            .output_schema
            .as_ref()
            .map(|s| compile(s, &name, "output"))
            .transpose()
        {
            Ok(v) => v,
            Err(e) => {
                self.errors.push(e);
                return self;
            }
        };
        let headers = match crate::param_header::param_headers(&tool.input_schema) {
            Ok(headers) => headers.into(),
            Err(reason) => {
                self.errors.push(BuildError::InvalidSchema {
                    tool: name,
                    which: "input",
                    reason,
                });
                return self;
            }
        };
        let task = tool.tasks();
        let task_after_input = tool.task_after_input;
        let keyed = tool.is_idempotency_keyed();
        let definition = match serde_json::to_value(&tool) {
            Ok(definition) => definition,
            Err(e) => {
                self.errors.push(BuildError::InvalidSchema {
                    tool: name,
                    which: "definition",
                    reason: e.to_string(),
                });
                return self;
            }
        };
        let handler: ToolFn<Ctx> = Arc::new(move |args, ctx| Box::pin(handler(args, ctx)));
        self.tools.push(ToolEntry {
            name,
            definition,
            task,
            task_after_input,
            keyed,
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
    pub fn resource_template<F, Fut>(mut self, template: ResourceTemplate, handler: F) -> Self
    where
        F: Fn(Variables, String, RequestContext<McpServer>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<ResourceContents>, HandlerError>> + Send + 'static,
    {
        let text = template.uri_template.as_str().to_string();
        if self.templates.iter().any(|t| t.template.as_str() == text) {
            self.errors.push(BuildError::Duplicate {
                kind: "resource template",
                name: text,
            });
            return self;
        }
        let problem = template
            .icons
            .iter()
            .find_map(Icon::problem)
            .or_else(|| template.annotations.as_ref().and_then(Annotations::problem));
        if let Some(reason) = problem {
            self.errors.push(BuildError::InvalidDefinition {
                owner: text,
                reason,
            });
            return self;
        }
        let definition = serde_json::to_value(&template).unwrap_or(Value::Null);
        let handler: TemplateFn<Ctx> =
            Arc::new(move |vars, uri, ctx| Box::pin(handler(vars, uri, ctx)));
        self.templates.push(TemplateEntry {
            definition,
            template: template.uri_template,
            handler,
            cache: crate::cache::CacheHint::NONE,
        });
        self
    }

    /// A resource at a fixed URI.
    pub fn resource<F, Fut>(mut self, resource: Resource, handler: F) -> Self
    where
        F: Fn(String, RequestContext<McpServer>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<ResourceContents>, HandlerError>> + Send + 'static,
    {
        let normalized = match ResourceUri::parse(&resource.uri) {
            Ok(u) => u.as_str().to_string(),
            Err(e) => {
                self.errors.push(BuildError::InvalidUri {
                    uri: resource.uri,
                    reason: e.to_string(),
                });
                return self;
            }
        };
        if self.resources.iter().any(|r| r.uri == normalized) {
            self.errors.push(BuildError::Duplicate {
                kind: "resource",
                name: resource.uri,
            });
            return self;
        }
        let problem = resource
            .icons
            .iter()
            .find_map(Icon::problem)
            .or_else(|| resource.annotations.as_ref().and_then(Annotations::problem));
        if let Some(reason) = problem {
            self.errors.push(BuildError::InvalidDefinition {
                owner: resource.uri,
                reason,
            });
            return self;
        }
        let definition = serde_json::to_value(&resource).unwrap_or(Value::Null);
        let handler: ResourceFn<Ctx> = Arc::new(move |uri, ctx| Box::pin(handler(uri, ctx)));
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

    /// A prompt; the required arguments it declares are checked before
    /// `handler` runs.
    pub fn prompt<F, Fut>(mut self, prompt: Prompt, handler: F) -> Self
    where
        F: Fn(HashMap<String, String>, RequestContext<McpServer>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<GetPromptResult, HandlerError>> + Send + 'static,
    {
        let name = prompt.name.clone();
        if self.prompts.iter().any(|p| p.name == name) {
            self.errors.push(BuildError::Duplicate {
                kind: "prompt",
                name,
            });
            return self;
        }
        if let Some(reason) = prompt.icons.iter().find_map(Icon::problem) {
            self.errors.push(BuildError::InvalidDefinition {
                owner: name,
                reason,
            });
            return self;
        }
        let definition = serde_json::to_value(&prompt).unwrap_or(Value::Null);
        let handler: PromptFn<Ctx> = Arc::new(move |args, ctx| Box::pin(handler(args, ctx)));
        self.prompts.push(PromptEntry {
            name,
            definition,
            arguments: prompt.arguments,
            handler,
        });
        self
    }

    /// Completes prompt arguments and template variables. The target and the
    /// argument are checked to exist before `handler` runs; at most
    /// [`MAX_COMPLETION_VALUES`](super::MAX_COMPLETION_VALUES) values are returned, with `hasMore` set when
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
        let auth = match &self.config.auth {
            Some(config) => {
                Some(crate::auth::Authenticator::new(config.clone()).map_err(BuildError::Auth)?)
            }
            None => None,
        };
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
                followers: Default::default(),
                memory: crate::memory::MemoryBudget::new(
                    self.config
                        .max_buffered_bytes
                        .unwrap_or_else(crate::memory::MemoryBudget::default_bytes),
                ),
                limiter: crate::rate::Limiter::new(&self.config.rate_limits),
                breakers: crate::breaker::Breakers::new(self.config.circuit_breaker),
                guard: crate::guard::ResourceGuard::new(self.config.resource_guard.clone()),
                idempotency: self
                    .config
                    .idempotency
                    .clone()
                    .map(crate::idempotency::Store::new),
                auth,
                peers: std::sync::OnceLock::new(),
                config: self.config,
            }),
        })
    }
}
