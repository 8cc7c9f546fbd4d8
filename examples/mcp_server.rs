//! An MCP server in about 20 lines, served on stdio (under supervision) to
//! clients of both protocol eras. Run it with `cargo run --example mcp_server`.

use arbor::mcp::{CallToolResult, ServerBuilder, Tool};
use arbor::transports::serve_stdio;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Deserialize, JsonSchema)]
struct Greet {
    /// Who to greet.
    name: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = ServerBuilder::new("hello", "1.0.0")
        .tool(
            Tool::new("greet").description("Greets someone by name"),
            |args: Greet, _ctx| async move {
                Ok(CallToolResult::text(format!("Hello, {}!", args.name)))
            },
        )
        .build()?;
    serve_stdio(server).await?;
    Ok(())
}
