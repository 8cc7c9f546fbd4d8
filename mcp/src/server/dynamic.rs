//! Changing what a server offers at run time: `add_*` and `remove_*`, each
//! telling the clients that follow the list.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::context::RequestContext;
use crate::model::{
    CallToolResult, GetPromptResult, ListKind, Prompt, Resource, ResourceContents, Tool,
};
use crate::uri::ResourceUri;

use super::{BuildError, HandlerError, McpServer, ServerBuilder, ToolError};

impl McpServer {
    /// Declares a tool at run time, as [`ServerBuilder::tool`] does, and tells
    /// the clients that follow the tool list.
    ///
    /// # Errors
    /// [`BuildError`] for a duplicate name or a bad schema.
    pub fn add_tool<A, F, Fut>(&self, tool: Tool, handler: F) -> Result<(), BuildError>
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(A, RequestContext<McpServer>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CallToolResult, ToolError>> + Send + 'static,
    {
        self.adopt(ServerBuilder::new("", "").tool(tool, handler))
    }

    /// Declares a prompt at run time, as [`ServerBuilder::prompt`] does, and
    /// tells the clients that follow the prompt list.
    ///
    /// # Errors
    /// [`BuildError::Duplicate`] for a duplicate name.
    pub fn add_prompt<F, Fut>(&self, prompt: Prompt, handler: F) -> Result<(), BuildError>
    where
        F: Fn(HashMap<String, String>, RequestContext<McpServer>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<GetPromptResult, HandlerError>> + Send + 'static,
    {
        self.adopt(ServerBuilder::new("", "").prompt(prompt, handler))
    }

    /// Declares a resource at run time, as [`ServerBuilder::resource`] does,
    /// and tells the clients that follow the resource list.
    ///
    /// # Errors
    /// [`BuildError`] for a duplicate or invalid URI.
    pub fn add_resource<F, Fut>(&self, resource: Resource, handler: F) -> Result<(), BuildError>
    where
        F: Fn(String, RequestContext<McpServer>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<ResourceContents>, HandlerError>> + Send + 'static,
    {
        self.adopt(ServerBuilder::new("", "").resource(resource, handler))
    }

    /// Moves what a scratch builder declared into the live catalog.
    pub(super) fn adopt(&self, builder: ServerBuilder) -> Result<(), BuildError> {
        if let Some(e) = builder.errors.into_iter().next() {
            return Err(e);
        }
        let mut changed = Vec::new();
        {
            let mut catalog = self.inner.catalog.write();
            for tool in &builder.tools {
                let name = tool.name.as_str();
                if catalog.tool(name).is_some() {
                    return Err(BuildError::Duplicate {
                        kind: "tool",
                        name: name.into(),
                    });
                }
            }
            for prompt in &builder.prompts {
                let name = prompt.name.as_str();
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
            catalog.tools.retain(|t| t.name != name);
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
            catalog.prompts.retain(|p| p.name != name);
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
}
