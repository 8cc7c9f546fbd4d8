//! What a server offers right now: the tools, resources, templates and
//! prompts with their handlers. Generic over the context handlers get (`C`,
//! [`C`](crate::context::C) of the server), so the
//! catalog needs nothing of the server that holds it.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::model::{CallToolResult, GetPromptResult, PromptArgument, ResourceContents};
use crate::tasks::TaskSupport;
use crate::template::{UriTemplate, Variables};

use super::completion::CompletionRequest;
use super::errors::{HandlerError, ToolError};

pub(super) type ToolFn<C> =
    Arc<dyn Fn(Value, C) -> BoxFuture<'static, Result<CallToolResult, ToolError>> + Send + Sync>;
pub(super) type ResourceFn<C> = Arc<
    dyn Fn(String, C) -> BoxFuture<'static, Result<Vec<ResourceContents>, HandlerError>>
        + Send
        + Sync,
>;
pub(super) type TemplateFn<C> = Arc<
    dyn Fn(Variables, String, C) -> BoxFuture<'static, Result<Vec<ResourceContents>, HandlerError>>
        + Send
        + Sync,
>;
pub(super) type CompleteFn =
    Arc<dyn Fn(CompletionRequest) -> BoxFuture<'static, Vec<String>> + Send + Sync>;
pub(super) type PromptFn<C> = Arc<
    dyn Fn(HashMap<String, String>, C) -> BoxFuture<'static, Result<GetPromptResult, HandlerError>>
        + Send
        + Sync,
>;

pub(super) struct ToolEntry<C> {
    pub(super) name: String,
    /// The definition as listed, serialised once.
    pub(super) definition: Value,
    pub(super) task: TaskSupport,
    /// Whether the call gathers input before it becomes a task.
    pub(super) task_after_input: bool,
    /// Whether repeats with an idempotency key replay the first result.
    pub(super) keyed: bool,
    pub(super) headers: Arc<[crate::param_header::ParamHeader]>,
    pub(super) input: jsonschema::Validator,
    pub(super) output: Option<jsonschema::Validator>,
    pub(super) handler: ToolFn<C>,
}

pub(super) struct ResourceEntry<C> {
    pub(super) definition: Value,
    pub(super) uri: String,
    pub(super) handler: ResourceFn<C>,
    pub(super) cache: crate::cache::CacheHint,
}

pub(super) struct TemplateEntry<C> {
    pub(super) definition: Value,
    pub(super) template: UriTemplate,
    pub(super) handler: TemplateFn<C>,
    pub(super) cache: crate::cache::CacheHint,
}

pub(super) struct PromptEntry<C> {
    pub(super) name: String,
    /// The definition as listed, serialised once.
    pub(super) definition: Value,
    pub(super) arguments: Vec<PromptArgument>,
    pub(super) handler: PromptFn<C>,
}

/// What a server offers right now: tools, resources, templates, prompts.
/// Entries are shared so a call holds no lock while its handler runs.
pub(super) struct Catalog<C> {
    pub(super) tools: Vec<Arc<ToolEntry<C>>>,
    pub(super) tool_index: HashMap<String, usize>,
    pub(super) resources: Vec<Arc<ResourceEntry<C>>>,
    pub(super) templates: Vec<Arc<TemplateEntry<C>>>,
    pub(super) prompts: Vec<Arc<PromptEntry<C>>>,
}

impl<C> Default for Catalog<C> {
    fn default() -> Self {
        Catalog {
            tools: Vec::new(),
            tool_index: HashMap::new(),
            resources: Vec::new(),
            templates: Vec::new(),
            prompts: Vec::new(),
        }
    }
}

impl<C> Catalog<C> {
    pub(super) fn index_tools(&mut self) {
        self.tool_index = self
            .tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
    }

    pub(super) fn tool(&self, name: &str) -> Option<Arc<ToolEntry<C>>> {
        self.tool_index.get(name).map(|&i| self.tools[i].clone())
    }

    pub(super) fn prompt(&self, name: &str) -> Option<Arc<PromptEntry<C>>> {
        self.prompts.iter().find(|p| p.name == name).cloned()
    }
}
