//! The demo MCP server `arbor serve` offers: a few tools, a resource and a
//! prompt, served alike to both protocol eras.

use arbor_mcp::{Prompt, Resource, Tool};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arbor_mcp::{
    CacheHint, CallToolResult, Content, GetPromptResult, McpServer, PromptArgument, PromptMessage,
    ResourceContents, Role, ServerBuilder, ServerConfig, ToolError,
};
use schemars::JsonSchema;
use serde::Deserialize;

/// Arguments of `echo`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct EchoArgs {
    /// The text to send back.
    pub message: String,
}

/// Arguments of `add`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddArgs {
    /// First addend.
    pub a: f64,
    /// Second addend.
    pub b: f64,
}

/// Arguments of `count`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CountArgs {
    /// How many steps (1 to 100).
    #[schemars(range(min = 1, max = 100))]
    pub steps: u32,
    /// Milliseconds per step (at most 1000).
    #[schemars(range(max = 1000))]
    pub step_ms: u64,
}

/// Arguments of `bump`: none.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct BumpArgs {}

/// The subscribable resource `bump` changes.
pub const COUNTER_URI: &str = "arbor://demo/counter";

/// The demo server.
///
/// # Errors
/// Never in practice: the definition is fixed and valid.
pub fn mcp_server() -> Result<McpServer, arbor_mcp::server::BuildError> {
    mcp_server_with(ServerConfig::default())
}

/// The demo server with these settings.
///
/// # Errors
/// Never in practice: the definition is fixed and valid.
pub fn mcp_server_with(config: ServerConfig) -> Result<McpServer, arbor_mcp::server::BuildError> {
    let counter = Arc::new(AtomicU64::new(0));
    let bumped = counter.clone();
    ServerBuilder::new("arbor-demo", env!("CARGO_PKG_VERSION"))
        .config(config)
        .instructions("A demo arbor server: echo, add, count (with progress), bump (changes the subscribable counter resource), a readme resource and a greeting prompt.")
        .tool(Tool::new("echo").description("Returns the message it is given"), |args: EchoArgs, _ctx| async move {
            Ok(CallToolResult::text(args.message))
        })
        .tool(Tool::new("add").description("Adds two numbers"), |args: AddArgs, _ctx| async move {
            let sum = args.a + args.b;
            if sum.is_finite() {
                Ok(CallToolResult::text(sum.to_string()))
            } else {
                Err(ToolError::new("the sum is not a finite number"))
            }
        })
        .tool(Tool::new("count").description("Counts to `steps`, reporting progress at each step"), |args: CountArgs, ctx| async move {
            for step in 1..=args.steps {
                tokio::time::sleep(Duration::from_millis(args.step_ms)).await;
                ctx.progress(f64::from(step), Some(f64::from(args.steps)), None);
            }
            Ok(CallToolResult::text(format!("counted to {}", args.steps)))
        })
        .tool(Tool::new("bump").description("Adds one to the counter resource and tells its subscribers"), move |_: BumpArgs, ctx| {
            let counter = bumped.clone();
            async move {
                let value = counter.fetch_add(1, Ordering::Relaxed) + 1;
                ctx.server().resource_updated(COUNTER_URI);
                Ok(CallToolResult::text(value.to_string()))
            }
        })
        .resource(Resource::new(COUNTER_URI, "counter").mime_type("text/plain"), move |uri, _ctx| {
            let value = counter.load(Ordering::Relaxed);
            async move { Ok(vec![ResourceContents::text(uri, Some("text/plain"), value.to_string())]) }
        })
        .resource(Resource::new("arbor://demo/readme", "readme").mime_type("text/plain"), |uri, _ctx| async move {
            Ok(vec![ResourceContents::text(
                uri,
                Some("text/plain"),
                "arbor serves MCP from supervised actors; kill one and it comes back.",
            )])
        })
        // The readme never changes: 2026-07-28 clients may keep it an hour.
        // The counter changes with every bump, so it keeps the default (no
        // reuse), as do the lists.
        .cache_resource("arbor://demo/readme", CacheHint::public(Duration::from_secs(3600)))
        .prompt(Prompt::new("greet").description("A greeting for someone").arguments(vec![PromptArgument::required("name", "Who to greet")]), |args, _ctx| async move {
                let name = args.get("name").cloned().unwrap_or_default();
                Ok(GetPromptResult {
                    description: Some("A greeting".into()),
                    messages: vec![PromptMessage {
                        role: Role::User,
                        content: Content::text(format!("Please greet {name} warmly.")),
                    }],
                })
            })
        .build()
}
