//! The demo MCP server `arbor serve` offers: tools (with titles and
//! behaviour hints), resources, a resource template, a prompt and
//! completion of names, served alike to both protocol eras.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arbor_mcp::template::UriTemplate;
use arbor_mcp::{
    Annotations, CacheHint, CallToolResult, CompletionRequest, Content, GetPromptResult, McpServer,
    Prompt, PromptArgument, PromptMessage, Resource, ResourceContents, ResourceTemplate, Role,
    ServerBuilder, ServerConfig, Tool, ToolAnnotations, ToolError,
};
use schemars::JsonSchema;
use serde::Deserialize;

/// Arguments of `echo`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct EchoArgs {
    /// The text to send back.
    pub message: String,
}

/// Arguments of `add`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct AddArgs {
    /// First addend.
    pub a: f64,
    /// Second addend.
    pub b: f64,
}

/// Arguments of `count`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct CountArgs {
    /// How many steps (1 to 100).
    #[schemars(range(min = 1, max = 100))]
    pub steps: u32,
    /// Milliseconds per step (at most 1000).
    #[schemars(range(max = 1000))]
    pub step_ms: u64,
}

/// The subscribable resource `bump` changes.
pub(crate) const COUNTER_URI: &str = "arbor://demo/counter";

/// The demo server.
///
/// # Errors
/// Never in practice: the definition is fixed and valid.
pub(crate) fn mcp_server() -> Result<McpServer, arbor_mcp::server::BuildError> {
    mcp_server_with(ServerConfig::default())
}

/// The names the `greet` prompt and the `greeting` template complete.
const FRIENDS: [&str; 5] = ["Ada", "Alan", "Barbara", "Grace", "Joe"];

/// The demo server with these settings.
///
/// # Errors
/// Never in practice: the definition is fixed and valid.
pub(crate) fn mcp_server_with(
    config: ServerConfig,
) -> Result<McpServer, arbor_mcp::server::BuildError> {
    demo_builder(config)?.build()
}

/// The demo server's definition, to finish with a key of its cluster's.
///
/// # Errors
/// Never in practice: the definition is fixed and valid.
pub(crate) fn demo_builder(
    config: ServerConfig,
) -> Result<arbor_mcp::ServerBuilder, arbor_mcp::server::BuildError> {
    let counter = Arc::new(AtomicU64::new(0));
    let bumped = counter.clone();
    let read_only = ToolAnnotations {
        read_only_hint: Some(true),
        open_world_hint: Some(false),
        ..ToolAnnotations::default()
    };
    let greetings = UriTemplate::parse("arbor://demo/greetings/{name}").map_err(|e| {
        arbor_mcp::server::BuildError::InvalidUri {
            uri: "arbor://demo/greetings/{name}".into(),
            reason: e.to_string(),
        }
    })?;
    Ok(ServerBuilder::new("arbor-demo", env!("CARGO_PKG_VERSION"))
        .config(config)
        .instructions(
            "A demo arbor server: echo, add, count (with progress), bump (changes the \
             subscribable counter resource), a readme resource, greetings for anyone \
             (a resource template) and a greeting prompt, both completing names.",
        )
        .tool(
            Tool::new("echo")
                .title("Echo")
                .description("Returns the message it is given")
                .annotations(read_only.clone()),
            |args: EchoArgs, _ctx| async move { Ok(CallToolResult::text(args.message)) },
        )
        .tool(
            Tool::new("add")
                .title("Add")
                .description("Adds two numbers")
                .annotations(read_only.clone()),
            |args: AddArgs, _ctx| async move {
                let sum = args.a + args.b;
                if sum.is_finite() {
                    Ok(CallToolResult::text(sum.to_string()))
                } else {
                    Err(ToolError::new("the sum is not a finite number"))
                }
            },
        )
        .tool(
            Tool::new("count")
                .title("Count")
                .description("Counts to `steps`, reporting progress at each step")
                .annotations(read_only),
            |args: CountArgs, ctx| async move {
                for step in 1..=args.steps {
                    tokio::time::sleep(Duration::from_millis(args.step_ms)).await;
                    ctx.progress(f64::from(step), Some(f64::from(args.steps)), None);
                }
                Ok(CallToolResult::text(format!("counted to {}", args.steps)))
            },
        )
        .tool(
            Tool::new("bump")
                .title("Bump the counter")
                .description(
                    "Adds one to the counter resource and tells its subscribers; a retry \
                     with the same _meta io.arbor/idempotencyKey does not add again",
                )
                .annotations(ToolAnnotations {
                    read_only_hint: Some(false),
                    destructive_hint: Some(false),
                    idempotent_hint: Some(false),
                    open_world_hint: Some(false),
                    ..ToolAnnotations::default()
                })
                .idempotency_keyed(),
            move |(), ctx| {
                let counter = bumped.clone();
                async move {
                    let value = counter.fetch_add(1, Ordering::Relaxed) + 1;
                    ctx.server().resource_updated(COUNTER_URI);
                    Ok(CallToolResult::text(value.to_string()))
                }
            },
        )
        .resource(
            Resource::new(COUNTER_URI, "counter")
                .title("Counter")
                .description("How many times `bump` ran; subscribe to hear each bump")
                .mime_type("text/plain"),
            move |uri, _ctx| {
                let value = counter.load(Ordering::Relaxed);
                async move {
                    Ok(vec![ResourceContents::text(
                        uri,
                        Some("text/plain"),
                        value.to_string(),
                    )])
                }
            },
        )
        .resource(
            Resource::new("arbor://demo/readme", "readme")
                .title("README")
                .description("What this server is")
                .mime_type("text/plain")
                .size(README.len() as u64)
                .annotations(Annotations::for_audience([Role::User]).priority(0.5)),
            |uri, _ctx| async move {
                Ok(vec![ResourceContents::text(
                    uri,
                    Some("text/plain"),
                    README,
                )])
            },
        )
        // The readme never changes: 2026-07-28 clients may keep it an hour.
        // The counter changes with every bump, so it keeps the default (no
        // reuse), as do the lists.
        .cache_resource(
            "arbor://demo/readme",
            CacheHint::public(Duration::from_secs(3600)),
        )
        .resource_template(
            ResourceTemplate::new(greetings, "greeting")
                .title("A greeting")
                .description("A greeting for `name`")
                .mime_type("text/plain"),
            |vars, uri, _ctx| async move {
                let name = vars
                    .get("name")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string();
                Ok(vec![ResourceContents::text(
                    uri,
                    Some("text/plain"),
                    format!("Hello, {name}!"),
                )])
            },
        )
        .prompt(
            Prompt::new("greet")
                .title("Greet someone")
                .description("A greeting for someone")
                .argument(PromptArgument::required("name", "Who to greet")),
            |args, _ctx| async move {
                let name = args.get("name").cloned().unwrap_or_default();
                Ok(GetPromptResult {
                    description: Some("A greeting".into()),
                    messages: vec![PromptMessage {
                        role: Role::User,
                        content: Content::text(format!("Please greet {name} warmly.")),
                    }],
                })
            },
        )
        // Both the prompt's `name` and the template's complete from the
        // same names, by prefix, ignoring case.
        .completion(|request: CompletionRequest| async move {
            if request.argument != "name" {
                return Vec::new();
            }
            let typed = request.value.to_lowercase();
            FRIENDS
                .iter()
                .filter(|f| f.to_lowercase().starts_with(&typed))
                .map(ToString::to_string)
                .collect()
        }))
}

/// The readme resource's text.
const README: &str = "arbor serves MCP from supervised actors; kill one and it comes back.";
