//! Tool, resource, template and prompt definitions as `*/list` shows them
//! in both eras, a tool without arguments, and definitions refused at build.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use arbor_mcp::template::UriTemplate;
use arbor_mcp::{
    Annotations, BuildError, CallToolResult, GetPromptResult, Icon, Prompt, PromptArgument,
    Resource, ResourceContents, ResourceTemplate, Role, ServerBuilder, Tool, ToolAnnotations,
};
use common::*;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Serialize, JsonSchema)]
struct Weather {
    celsius: f64,
}

fn server() -> arbor_mcp::McpServer {
    ServerBuilder::new("defs", "1")
        .tool(
            Tool::new("weather")
                .title("Current weather")
                .description("Says how warm it is")
                .annotations(ToolAnnotations {
                    read_only_hint: Some(true),
                    open_world_hint: Some(true),
                    ..ToolAnnotations::default()
                })
                .icon(
                    Icon::new("https://example.com/sun.png")
                        .mime_type("image/png")
                        .size("48x48"),
                )
                .output::<Weather>(),
            |(), _ctx| async move {
                let weather = serde_json::to_value(Weather { celsius: 21.5 }).unwrap();
                Ok(CallToolResult::structured(weather))
            },
        )
        .resource(
            Resource::new("test://readme", "readme")
                .title("The README")
                .description("What this is")
                .mime_type("text/markdown")
                .size(5)
                .annotations(Annotations::for_audience([Role::User]).priority(0.8)),
            |uri, _ctx| async move { Ok(vec![ResourceContents::text(uri, None, "hello")]) },
        )
        .resource_template(
            ResourceTemplate::new(UriTemplate::parse("test://notes/{id}").unwrap(), "note")
                .title("A note")
                .mime_type("text/plain"),
            |_vars, uri, _ctx| async move { Ok(vec![ResourceContents::text(uri, None, "n")]) },
        )
        .prompt(
            Prompt::new("review")
                .title("Code review")
                .description("Reviews a change")
                .argument(PromptArgument::required("diff", "The change")),
            |_args, _ctx| async move {
                Ok(GetPromptResult {
                    description: None,
                    messages: vec![],
                })
            },
        )
        .build()
        .unwrap()
}

fn check_lists(tools: &Value, resources: &Value, templates: &Value, prompts: &Value) {
    let tool = &tools["result"]["tools"][0];
    assert_eq!(tool["name"], "weather");
    assert_eq!(tool["title"], "Current weather");
    assert_eq!(tool["annotations"]["readOnlyHint"], true);
    assert_eq!(tool["annotations"]["openWorldHint"], true);
    assert!(tool["annotations"].get("destructiveHint").is_none());
    assert_eq!(tool["icons"][0]["src"], "https://example.com/sun.png");
    assert_eq!(tool["icons"][0]["sizes"], json!(["48x48"]));
    assert_eq!(
        tool["inputSchema"],
        json!({"type": "object", "properties": {}})
    );
    assert_eq!(
        tool["outputSchema"]["properties"]["celsius"]["type"],
        "number"
    );
    let resource = &resources["result"]["resources"][0];
    assert_eq!(resource["title"], "The README");
    assert_eq!(resource["mimeType"], "text/markdown");
    assert_eq!(resource["size"], 5);
    assert_eq!(
        resource["annotations"],
        json!({"audience": ["user"], "priority": 0.8})
    );
    let template = &templates["result"]["resourceTemplates"][0];
    assert_eq!(template["uriTemplate"], "test://notes/{id}");
    assert_eq!(template["title"], "A note");
    let prompt = &prompts["result"]["prompts"][0];
    assert_eq!(prompt["title"], "Code review");
    assert_eq!(prompt["arguments"][0]["name"], "diff");
    assert_eq!(prompt["arguments"][0]["required"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_are_listed_whole_in_2026_07_28() {
    let mut c = Client::connect(server()).await;
    let tools = c.call(1, "tools/list", modern(json!({}))).await;
    let resources = c.call(2, "resources/list", modern(json!({}))).await;
    let templates = c
        .call(3, "resources/templates/list", modern(json!({})))
        .await;
    let prompts = c.call(4, "prompts/list", modern(json!({}))).await;
    check_lists(&tools, &resources, &templates, &prompts);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_are_listed_whole_in_the_handshake_era() {
    let mut c = Client::connect(server()).await;
    c.initialize("2025-11-25").await;
    let tools = c.call(1, "tools/list", json!({})).await;
    let resources = c.call(2, "resources/list", json!({})).await;
    let templates = c.call(3, "resources/templates/list", json!({})).await;
    let prompts = c.call(4, "prompts/list", json!({})).await;
    check_lists(&tools, &resources, &templates, &prompts);
    c.close().await;
}

/// A tool whose handler takes `()` is called with no arguments or with an
/// empty object, and its structured result is checked against the output
/// schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_without_arguments_takes_none_or_an_empty_object() {
    let mut c = Client::connect(server()).await;
    c.initialize("2025-11-25").await;
    for (id, params) in [
        (1, json!({"name": "weather"})),
        (2, json!({"name": "weather", "arguments": {}})),
    ] {
        let r = c.call(id, "tools/call", params).await;
        assert_eq!(r["result"]["structuredContent"]["celsius"], 21.5, "{r}");
        assert!(r["result"].get("isError").is_none(), "{r}");
    }
    c.close().await;
}

#[test]
fn icons_a_client_should_not_load_and_bad_annotations_are_refused_at_build() {
    let refused = |builder: ServerBuilder| match builder.build() {
        Err(BuildError::InvalidDefinition { owner, reason }) => (owner, reason),
        other => panic!("expected InvalidDefinition, got {other:?}"),
    };
    let (owner, reason) = refused(ServerBuilder::new("s", "1").tool(
        Tool::new("t").icon(Icon::new("http://tracker.example/pixel.gif")),
        |(), _ctx| async move { Ok(CallToolResult::text("x")) },
    ));
    assert_eq!(owner, "t");
    assert!(reason.contains("https: or data:"), "{reason}");
    let (owner, reason) = refused(ServerBuilder::new("s", "1").resource(
        Resource::new("test://r", "r").annotations(Annotations::default().priority(2.0)),
        |uri, _ctx| async move { Ok(vec![ResourceContents::text(uri, None, "x")]) },
    ));
    assert_eq!(owner, "test://r");
    assert!(reason.contains("priority"), "{reason}");
    refused(ServerBuilder::new("s", "1").prompt(
        Prompt::new("p").icon(Icon::new("data:image/png;base64,AAAA").mime_type("png")),
        |_a, _ctx| async move {
            Ok(GetPromptResult {
                description: None,
                messages: vec![],
            })
        },
    ));
}

/// Content blocks carry annotations on the wire, and read back the same.
#[test]
fn content_blocks_carry_their_annotations() {
    let block = arbor_mcp::Content::text("for the model")
        .with_annotations(Annotations::for_audience([Role::Assistant]).priority(0.2));
    let wire = serde_json::to_value(&block).unwrap();
    assert_eq!(
        wire,
        json!({"type": "text", "text": "for the model",
            "annotations": {"audience": ["assistant"], "priority": 0.2}})
    );
    assert_eq!(
        serde_json::from_value::<arbor_mcp::Content>(wire).unwrap(),
        block
    );
    let link = serde_json::to_value(arbor_mcp::Content::resource_link("test://r", "r")).unwrap();
    assert_eq!(
        link,
        json!({"type": "resource_link", "uri": "test://r", "name": "r"})
    );
    let plain = serde_json::to_value(arbor_mcp::Content::text("x")).unwrap();
    assert!(plain.get("annotations").is_none(), "{plain}");
}
