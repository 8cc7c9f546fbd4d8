//! The MCP data types of both eras, one file per concern. Field names follow
//! the schema (`camelCase` on the wire).
//!
//! - [`method`]: every method and notification name, with each era's rules;
//! - [`log_level`]: the ordered log levels;
//! - [`list`]: the lists whose changes clients follow;
//! - [`content`]: content blocks and resource contents;
//! - [`tool`], [`prompt`], [`implementation`]: what tools and prompts return,
//!   and who a peer is.

pub mod content;
pub mod implementation;
pub mod list;
pub mod log_level;
pub mod method;
pub mod prompt;
pub mod tool;

use serde_json::{Map, Value};

pub use content::{Content, ResourceContents};
pub use implementation::Implementation;
pub use list::ListKind;
pub use log_level::{LogLevel, UnknownLogLevel};
pub use method::{Method, NotificationMethod, UnknownMethod};
pub use prompt::{GetPromptResult, PromptArgument, PromptMessage, Role};
pub use tool::CallToolResult;

/// A JSON object, as params and results are.
pub type JsonObject = Map<String, Value>;
