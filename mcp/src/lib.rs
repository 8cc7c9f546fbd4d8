//! The Model Context Protocol for arbor: JSON-RPC 2.0 and both protocol
//! eras, the 2026-07-28 stateless one and the handshake versions
//! 2025-11-25 back to 2024-11-05, with one set of handlers serving both.
//!
//! - [`jsonrpc`]: messages, strict validation, input limits.
//! - [`version`]: protocol versions and eras.
//! - [`model`]: the data types handlers return.
//! - [`client`]: a client for both eras ([`client::Client`]).
//! - [`server`]: declaring tools, resources and prompts ([`ServerBuilder`]).
//! - [`session`]: one connection's lifecycle, per era, as an actor.
//! - [`transport`]: line-delimited streams (stdio, TCP, in memory).

pub mod auth;
pub mod breaker;
pub mod cache;
pub mod cascade;
pub mod client;
pub mod cluster;
pub mod context;
mod follow;
pub mod guard;
pub mod idempotency;
pub mod inbound;
pub mod input;
pub mod jsonrpc;
pub mod memory;
pub mod model;
pub mod outbox;
pub mod param_header;
pub mod rate;
pub mod seal;
pub mod server;
pub mod session;
pub mod stats;
pub mod subscription;
pub mod tasks;
pub mod template;
pub mod trace;
pub mod transport;
pub mod uri;
pub mod version;

pub use cache::{CacheHint, CacheScope, ListCaching};
pub use context::RequestContext;
pub use model::{
    Annotations, CallToolResult, Content, GetPromptResult, Icon, Implementation, LogLevel, Method,
    NotificationMethod, Prompt, PromptArgument, PromptMessage, Resource, ResourceContents,
    ResourceTemplate, Role, TaskSupport, Tool, ToolAnnotations,
};
pub use server::{
    BuildError, CompletionRef, CompletionRequest, HandlerError, ListKind, McpServer, Outcome,
    ServerBuilder, ServerConfig, ToolError,
};
pub use version::{Era, ProtocolVersion};
