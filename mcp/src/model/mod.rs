//! The MCP data types of both eras, one file per concern. Field names follow
//! the schema (`camelCase` on the wire).
//!
//! - [`method`]: every method and notification name, with each era's rules;
//! - [`params`], [`results`], [`task`]: each method's params and results,
//!   typed;
//! - [`log_level`]: the ordered log levels;
//! - [`list`]: the lists whose changes clients follow;
//! - [`content`]: content blocks and resource contents;
//! - [`tool`], [`resource`], [`prompt`]: the definitions a server lists, and
//!   what tools and prompts return;
//! - [`annotations`], [`icon`]: hints and icons on those;
//! - [`requests`], [`answers`]: what a server asks a client, and what the
//!   client answers;
//! - [`implementation`]: who a peer is.

/// The builder methods every listed definition shares: a title, a
/// description, icons, metadata.
macro_rules! described {
    ($ty:ty) => {
        impl $ty {
            /// With a name for people.
            pub fn title(mut self, title: impl Into<String>) -> Self {
                self.title = Some(title.into());
                self
            }

            /// With a description.
            pub fn description(mut self, description: impl Into<String>) -> Self {
                self.description = Some(description.into());
                self
            }

            /// With an icon.
            pub fn icon(mut self, icon: $crate::model::Icon) -> Self {
                self.icons.push(icon);
                self
            }

            /// With metadata.
            pub fn meta(mut self, meta: $crate::model::JsonObject) -> Self {
                self.meta = Some(meta);
                self
            }
        }
    };
}

pub mod annotations;
pub mod answers;
pub mod content;
pub mod icon;
pub mod implementation;
pub mod list;
pub mod log_level;
pub mod method;
pub mod params;
pub mod prompt;
pub mod requests;
pub mod resource;
pub mod results;
pub mod task;
pub mod tool;

use serde_json::{Map, Value};

pub use annotations::Annotations;
pub use answers::{CreateMessageResult, ElicitAction, ElicitResult, ListRootsResult, Root};
pub use content::{Content, ResourceContents};
pub use icon::{Icon, IconTheme};
pub use implementation::Implementation;
pub use list::ListKind;
pub use log_level::{LogLevel, UnknownLogLevel};
pub use method::{Method, NotificationMethod, UnknownMethod};
pub use params::{
    CallToolParams, CancelledParams, CompleteArgument, CompleteContext, CompleteParams,
    CompleteReference, GetPromptParams, InitializeParams, ListParams, ListenFilter, ListenParams,
    LoggingMessageParams, ProgressParams, RequestMeta, ResourceParams, ResourceUpdatedParams,
    SetLevelParams, TaskParams, UpdateTaskParams,
};
pub use prompt::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role};
pub use requests::{CreateMessageParams, ElicitRequestParams, SamplingMessage};
pub use resource::{Resource, ResourceTemplate};
pub use results::{
    CompleteResult, Completion, DiscoverResult, InitializeResult, InputRequestCall,
    InputRequiredResult, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, ReadResourceResult, ResultType,
};
pub use task::{LegacyTaskView, TaskState, TaskView};
pub use tool::{CallToolResult, TaskSupport, Tool, ToolAnnotations, ToolExecution};

/// A JSON object, as params and results are.
pub type JsonObject = Map<String, Value>;
