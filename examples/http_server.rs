//! A custom MCP server over Streamable HTTP only: a tool, a resource
//! template whose variable completes, and a prompt, on
//! `http://127.0.0.1:PORT/mcp` for clients of both protocol eras.
//!
//! Run it with `cargo run --example http_server` (`-- --once` prints the
//! address and tree, then stops).

use std::time::Duration;

use arbor::mcp::template::UriTemplate;
use arbor::mcp::{
    CallToolResult, CompletionRequest, Content, GetPromptResult, Prompt, PromptArgument,
    PromptMessage, ResourceContents, ResourceTemplate, Role, ServerBuilder, Tool, ToolAnnotations,
};
use arbor::transports::{start, TransportConfig};
use schemars::JsonSchema;
use serde::Deserialize;

const CITIES: [&str; 4] = ["Lisbon", "London", "Lyon", "Oslo"];

#[derive(Deserialize, JsonSchema)]
struct Forecast {
    /// The city.
    city: String,
    /// How many days ahead (0 to 7).
    #[schemars(range(max = 7))]
    days: u8,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = ServerBuilder::new("weather", "1.0.0")
        .tool(
            Tool::new("forecast")
                .title("Forecast")
                .description("The weather in a city, some days ahead")
                .annotations(ToolAnnotations {
                    read_only_hint: Some(true),
                    ..ToolAnnotations::default()
                }),
            |args: Forecast, _ctx| async move {
                Ok(CallToolResult::text(format!(
                    "{} in {} days: sunny",
                    args.city, args.days
                )))
            },
        )
        .resource_template(
            ResourceTemplate::new(UriTemplate::parse("weather://cities/{city}")?, "city")
                .title("A city's weather")
                .mime_type("text/plain"),
            |vars, uri, _ctx| async move {
                let city = vars
                    .get("city")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                Ok(vec![ResourceContents::text(
                    uri,
                    Some("text/plain"),
                    format!("{city}: 21 °C"),
                )])
            },
        )
        .prompt(
            Prompt::new("packing")
                .title("Packing list")
                .argument(PromptArgument::required("city", "Where to")),
            |args, _ctx| async move {
                let city = args.get("city").cloned().unwrap_or_default();
                Ok(GetPromptResult {
                    description: None,
                    messages: vec![PromptMessage {
                        role: Role::User,
                        content: Content::text(format!("What should I pack for {city}?")),
                    }],
                })
            },
        )
        // The template's `city` and the prompt's complete alike.
        .completion(|request: CompletionRequest| async move {
            CITIES
                .iter()
                .filter(|c| c.starts_with(request.value.as_str()))
                .map(ToString::to_string)
                .collect()
        })
        .build()?;
    // HTTP only: the other transports are left out.
    let config = TransportConfig {
        http: TransportConfig::default().http,
        ..TransportConfig::none()
    };
    let (tree, endpoints) = start(server, config).await?;
    for url in endpoints.urls() {
        println!("{url}");
    }
    println!("{}", arbor::TreeView::of("transports", &tree).await?);
    if std::env::args().all(|a| a != "--once") {
        tokio::signal::ctrl_c().await?;
    }
    tokio::time::timeout(Duration::from_secs(10), tree.shutdown()).await?;
    Ok(())
}
