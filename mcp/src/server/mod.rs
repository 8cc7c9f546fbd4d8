//! A server definition: tools, resources and prompts, written once and
//! served to both eras.
//!
//! [`ServerBuilder`] declares them; [`McpServer`] answers the feature methods
//! (`tools/*`, `resources/*`, `prompts/*`) for any connection. Lifecycle,
//! envelopes and result shapes per era live in [`crate::session`].

mod builder;
mod catalog;
mod completion;
mod config;
mod dynamic;
mod errors;
mod handlers;
pub(crate) mod or_off;
mod paging;

use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::{json, Map, Value};

use crate::auth::Denied;
use crate::cluster::{Event, Peers};
use crate::context::RequestContext;
use crate::follow::{Followers, Topic};
use crate::input::InputRequired;
use crate::jsonrpc::{code, ErrorObject};
pub use crate::model::ListKind;
use crate::model::{Implementation, Method};
use crate::seal::Sealer;
use crate::tasks::{TaskStore, TaskSupport};
use crate::uri::ResourceUri;
use crate::version::Era;

pub use builder::{BuildError, ServerBuilder};
use catalog::{
    Catalog, CompleteFn, PromptEntry, PromptFn, ResourceEntry, ResourceFn, TemplateEntry,
    TemplateFn, ToolEntry, ToolFn,
};
pub use completion::{CompletionRef, CompletionRequest, MAX_COMPLETION_VALUES};
pub use config::ServerConfig;
use errors::outcome_of;
pub use errors::{HandlerError, ToolError};
use paging::Listing;

/// The context a server's handlers get.
type Ctx = RequestContext<McpServer>;

impl RequestContext<McpServer> {
    /// The server serving the request: to change its catalog or tell
    /// subscribers that a resource changed.
    pub fn server(&self) -> &McpServer {
        self.serving()
    }
}

/// What a feature method produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The result.
    Done(Value),
    /// The handler needs input from the client first.
    NeedsInput(InputRequired),
    /// The call becomes a task now ([`ToolError::RunAsTask`]).
    RunAsTask,
}

struct Inner {
    info: Implementation,
    instructions: Option<String>,
    config: ServerConfig,
    sealer: Sealer,
    catalog: RwLock<Catalog<Ctx>>,
    completer: Option<CompleteFn>,
    tasks: TaskStore,
    followers: Followers,
    memory: crate::memory::MemoryBudget,
    limiter: crate::rate::Limiter,
    breakers: crate::breaker::Breakers,
    guard: crate::guard::ResourceGuard,
    idempotency: Option<crate::idempotency::Store>,
    auth: Option<crate::auth::Authenticator>,
    /// The other nodes, once this one joins a cluster.
    peers: std::sync::OnceLock<Arc<dyn crate::cluster::Peers>>,
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

/// The era's error for an unknown resource: `-32002` in the handshake era,
/// `-32602` with `data.uri` in 2026-07-28.
pub fn resource_not_found(uri: &str, era: Era) -> ErrorObject {
    let code = match era {
        Era::Handshake => code::RESOURCE_NOT_FOUND,
        Era::Modern => code::INVALID_PARAMS,
    };
    ErrorObject::new(code, format!("Resource not found: {uri}")).with_data(json!({ "uri": uri }))
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

    /// The rate limits' buckets, shared by all its transports.
    pub fn limiter(&self) -> &crate::rate::Limiter {
        &self.inner.limiter
    }

    /// Its handlers' circuit breakers.
    pub fn breakers(&self) -> &crate::breaker::Breakers {
        &self.inner.breakers
    }

    /// Its resource guard: how close the process is to its limits.
    pub fn guard(&self) -> &crate::guard::ResourceGuard {
        &self.inner.guard
    }

    /// Its resource server, when `config.auth` turns authorization on
    /// ([`crate::auth`]).
    pub fn auth(&self) -> Option<&crate::auth::Authenticator> {
        self.inner.auth.as_ref()
    }

    pub(crate) fn sealer(&self) -> &Sealer {
        &self.inner.sealer
    }

    /// Tells every client that follows `kind` that it changed, on this node
    /// and (in a cluster) the others; returns how many were told here.
    /// Called by the `add_*` and `remove_*` methods.
    pub fn list_changed(&self, kind: ListKind) -> usize {
        let event = Event::ListChanged { list: kind };
        self.tell_peers(&event);
        self.deliver(&event)
    }

    /// Tells every subscriber of `uri` that the resource changed, on this
    /// node and (in a cluster) the others; returns how many were told here.
    /// Subscribers whose queues are full miss this update.
    pub fn resource_updated(&self, uri: &str) -> usize {
        let Ok(uri) = ResourceUri::parse(uri) else {
            return 0;
        };
        let topic = Topic::Resource(uri.as_str().into());
        self.tell_peers(&Event::ResourceUpdated {
            uri: uri.into_string(),
        });
        // Normalised already: told here without parsing it again.
        self.inner.followers.tell(&topic)
    }

    /// Joins a cluster: from now on what this node's clients are told, the
    /// other nodes' are too, through `peers`.
    ///
    /// # Errors
    /// Gives `peers` back when the server has joined one already.
    pub fn join(&self, peers: Arc<dyn Peers>) -> Result<(), Arc<dyn Peers>> {
        self.inner.peers.set(peers)
    }

    /// What another node told: its followers here are told, and no one
    /// else (nothing echoes); returns how many were told.
    pub fn deliver(&self, event: &Event) -> usize {
        match event {
            Event::ListChanged { list } => self.inner.followers.tell(&Topic::List(*list)),
            Event::ResourceUpdated { uri } => ResourceUri::parse(uri).map_or(0, |uri| {
                self.inner
                    .followers
                    .tell(&Topic::Resource(uri.as_str().into()))
            }),
        }
    }

    fn tell_peers(&self, event: &Event) {
        if let Some(peers) = self.inner.peers.get() {
            peers.publish(event);
        }
    }

    /// Live subscriptions to `uri`, across all connections.
    pub fn subscriber_count(&self, uri: &str) -> usize {
        ResourceUri::parse(uri).map_or(0, |u| {
            self.inner
                .followers
                .count(&Topic::Resource(u.as_str().into()))
        })
    }

    pub(crate) fn followers(&self) -> &Followers {
        &self.inner.followers
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

    /// Whether the tool `name` gathers its input before it becomes a task
    /// ([`Tool::task_after_input`](crate::Tool::task_after_input)).
    pub fn tool_task_after_input(&self, name: &str) -> bool {
        self.inner
            .catalog
            .read()
            .tool(name)
            .is_some_and(|t| t.task_after_input)
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
        let mut extensions = Map::new();
        if era == Era::Modern && catalog.tools.iter().any(|t| t.task != TaskSupport::Never) {
            extensions.insert(crate::tasks::EXTENSION.into(), json!({}));
        }
        if let (Some(store), true) = (
            &self.inner.idempotency,
            catalog.tools.iter().any(|t| t.keyed),
        ) {
            let ttl_ms = u64::try_from(store.config().ttl.as_millis()).unwrap_or(u64::MAX);
            extensions.insert(
                crate::idempotency::EXTENSION.into(),
                json!({ "ttlMs": ttl_ms }),
            );
        }
        if !extensions.is_empty() {
            // The handshake era has no extensions: arbor's go under
            // `experimental` there (the tasks extension is 2026-07-28 only).
            let at = match era {
                Era::Modern => "extensions",
                Era::Handshake => "experimental",
            };
            caps.insert(at.into(), Value::Object(extensions));
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
        ctx: RequestContext<McpServer>,
    ) -> Result<Outcome, ErrorObject> {
        // Fail closed: with authorization on, a request reaches a handler
        // only with a grant that permits it.
        let access = match self.auth() {
            Some(auth) => {
                let Some(grant) = ctx.grant() else {
                    return Err(Denied::from(crate::auth::AuthError::Missing).error(auth, None));
                };
                auth.permits(grant, method, Some(&params))
                    .map_err(|denied| denied.error(auth, None))?;
                Some((auth, grant.clone()))
            }
            None => None,
        };
        let listed = |list: Listing| -> Result<Outcome, ErrorObject> {
            let catalog = self.inner.catalog.read();
            let items: Vec<&Value> = match list {
                Listing::Tools => catalog.tools.iter().map(|t| &t.definition).collect(),
                Listing::Resources => catalog.resources.iter().map(|r| &r.definition).collect(),
                Listing::ResourceTemplates => {
                    catalog.templates.iter().map(|t| &t.definition).collect()
                }
                Listing::Prompts => catalog.prompts.iter().map(|p| &p.definition).collect(),
            };
            let items = match &access {
                Some((auth, grant)) => items
                    .into_iter()
                    .filter(|item| auth.shows(grant, list.kind(), item))
                    .collect(),
                None => items,
            };
            self.page(list, &params, items).map(Outcome::Done)
        };
        match method {
            Method::ToolsCall => self.call_tool(params, ctx).await,
            Method::ResourcesRead => self.read_resource(params, ctx).await,
            Method::PromptsGet => self.get_prompt(params, ctx).await,
            Method::ToolsList => listed(Listing::Tools),
            Method::ResourcesList => listed(Listing::Resources),
            Method::ResourcesTemplatesList => listed(Listing::ResourceTemplates),
            Method::PromptsList => listed(Listing::Prompts),
            Method::CompletionComplete => self.complete(&params).await.map(Outcome::Done),
            other => Err(ErrorObject::method_not_found(other.as_str())),
        }
    }
}
