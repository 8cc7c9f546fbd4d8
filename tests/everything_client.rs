//! arbor's client against the reference server,
//! `@modelcontextprotocol/server-everything` (pinned in tests/ts), over
//! stdio, Streamable HTTP and legacy SSE: every tool it offers (those shown
//! only to clients that declare sampling, elicitation, roots and tasks
//! among them, the task tools both ways), its resources, templates,
//! subscriptions, prompts, completion, logging and progress notifications.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use arbor::mcp::client::{Client, ElicitModes, RequestOptions};
use arbor::mcp::model::params::{
    CompleteArgument, CompleteContext, CompleteParams, CompleteReference,
};
use arbor::mcp::model::{CreateMessageResult, ElicitAction, ElicitResult, LogLevel, Role, Root};
use arbor::mcp::{Content, Era};
use arbor::transports::client::{HttpConnector, LegacySseConnector, StdioConnector};
use serde_json::{json, Map, Value};
use support::node_prefix;

fn script() -> String {
    node_prefix()
        .package_dir("@modelcontextprotocol/server-everything")
        .join("dist/index.js")
        .display()
        .to_string()
}

/// `server-everything <mode>` on a free port, killed when dropped.
struct Reference(std::process::Child);

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn reference(mode: &str) -> (Reference, u16) {
    let port = support::free_port();
    let child = node_prefix()
        .node()
        .arg(script())
        .arg(mode)
        .env("PORT", port.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting server-everything");
    let server = Reference(child);
    assert!(
        support::wait_for_port(port, Duration::from_secs(30)),
        "{mode} never listened"
    );
    (server, port)
}

async fn connect(connector: impl arbor::mcp::client::Connector) -> Client {
    Client::builder()
        .request_timeout(Duration::from_secs(30))
        .sampling(|params| async move {
            Ok(CreateMessageResult {
                role: Role::Assistant,
                content: Content::text(format!("sampled {} message(s)", params.messages.len())),
                model: "arbor-test-model".into(),
                stop_reason: Some("endTurn".into()),
            })
        })
        .elicitation(ElicitModes::FormAndUrl, |_| async {
            let mut content = Map::new();
            content.insert("name".into(), json!("Ada Lovelace"));
            content.insert("check".into(), json!(true));
            Ok(ElicitResult {
                action: ElicitAction::Accept,
                content: Some(content),
            })
        })
        .roots(vec![Root {
            uri: "file:///tmp/everything-root".into(),
            name: Some("everything".into()),
        }])
        .connect(connector)
        .await
        .unwrap()
}

fn text_of(content: &[Content]) -> String {
    content
        .iter()
        .filter_map(Content::as_text)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits for a notification named `method`, up to `within`.
async fn notified(
    rx: &mut tokio::sync::broadcast::Receiver<arbor::mcp::jsonrpc::Notification>,
    method: &str,
    within: Duration,
) -> Option<arbor::mcp::jsonrpc::Notification> {
    tokio::time::timeout(within, async {
        loop {
            match rx.recv().await {
                Ok(n) if n.method == method => return Some(n),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

async fn exercise(c: &Client, what: &str) {
    // The reference server speaks the handshake era: Auto fell back to it.
    assert_eq!(
        c.protocol_version().map(|v| v.era()),
        Some(Era::Handshake),
        "{what}"
    );
    let tools = c.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    for expected in [
        "echo",
        "get-sum",
        "trigger-sampling-request",
        "trigger-elicitation-request",
        "get-roots-list",
    ] {
        assert!(
            names.contains(&expected),
            "{what}: {expected} missing from {names:?}"
        );
    }
    let call = |name: &'static str, args: Value| async move {
        let result = c
            .call_tool(name, args)
            .await
            .unwrap_or_else(|e| panic!("{what}: {name}: {e}"));
        assert!(!result.is_error, "{what}: {name}: {result:?}");
        result
    };
    assert_eq!(
        text_of(&call("echo", json!({"message": "hi"})).await.content),
        "Echo: hi"
    );
    assert!(text_of(&call("get-sum", json!({"a": 2, "b": 3.5})).await.content).contains("5.5"));
    let annotated = call("get-annotated-message", json!({"messageType": "error"})).await;
    assert!(
        serde_json::to_value(&annotated.content[0]).unwrap()["annotations"].is_object(),
        "{what}"
    );
    let image = call("get-tiny-image", json!({})).await;
    assert!(
        image
            .content
            .iter()
            .any(|c| matches!(c, Content::Image { .. })),
        "{what}"
    );
    let reference = call("get-resource-reference", json!({})).await;
    assert!(
        reference
            .content
            .iter()
            .any(|c| matches!(c, Content::Resource { .. })),
        "{what}"
    );
    let links = call("get-resource-links", json!({"count": 2})).await;
    let wire = serde_json::to_value(&links.content).unwrap();
    let link_count = wire
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "resource_link")
        .count();
    assert_eq!(link_count, 2, "{what}: {wire}");
    let structured = call("get-structured-content", json!({"location": "Chicago"})).await;
    assert!(structured.structured_content.is_some(), "{what}");
    // The handlers answer the server's own requests.
    let sampled = call("trigger-sampling-request", json!({"prompt": "hello"})).await;
    assert!(
        text_of(&sampled.content).contains("sampled 1 message(s)"),
        "{what}: {sampled:?}"
    );
    let elicited = call("trigger-elicitation-request", json!({})).await;
    assert!(
        text_of(&elicited.content).contains("Ada Lovelace"),
        "{what}: {elicited:?}"
    );
    let visited = call(
        "trigger-url-elicitation",
        json!({"url": "https://example.com/auth"}),
    )
    .await;
    assert!(
        text_of(&visited.content).contains("completed the URL elicitation"),
        "{what}: {visited:?}"
    );
    call("get-env", json!({})).await;
    let gzipped = call(
        "gzip-file-as-resource",
        json!({"data": "data:text/plain;base64,aGVsbG8gd29ybGQ=", "name": "hello.gz", "outputType": "resource"}),
    )
    .await;
    assert!(
        gzipped
            .content
            .iter()
            .any(|c| matches!(c, Content::Resource { .. })),
        "{what}: {gzipped:?}"
    );
    let roots = call("get-roots-list", json!({})).await;
    assert!(
        text_of(&roots.content).contains("file:///tmp/everything-root"),
        "{what}: {roots:?}"
    );

    // Tasks both ways. A tool that runs only as a task: `call_tool`
    // follows it, and the elicitation it sends on the way (through
    // `tasks/result`) reaches the handler.
    let research = call(
        "simulate-research-query",
        json!({"topic": "actors", "ambiguous": true}),
    )
    .await;
    let report = text_of(&research.content);
    assert!(
        report.contains("Research Report") && report.contains("Clarification"),
        "{what}: {report}"
    );
    // The server asks the client to run sampling and elicitation as tasks,
    // then polls them with tasks/get and fetches them with tasks/result.
    let sampled = call("trigger-sampling-request-async", json!({"prompt": "hi"})).await;
    let sampled = text_of(&sampled.content);
    assert!(
        sampled.contains("Task created") && sampled.contains("sampled 1 message(s)"),
        "{what}: {sampled}"
    );
    let elicited = call("trigger-elicitation-request-async", json!({})).await;
    let elicited = text_of(&elicited.content);
    assert!(
        elicited.contains("Task created") && elicited.contains("Ada Lovelace"),
        "{what}: {elicited}"
    );

    // Progress reaches the caller.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let options = RequestOptions {
        timeout: None,
        progress: Some(tx),
        ..RequestOptions::default()
    };
    c.call_tool_with(
        "trigger-long-running-operation",
        json!({"duration": 1, "steps": 2}),
        options,
    )
    .await
    .unwrap();
    let mut steps = 0;
    while rx.try_recv().is_ok() {
        steps += 1;
    }
    assert!(steps >= 2, "{what}: {steps} progress notifications");

    // Logging: asked for, then heard.
    let mut notifications = c.notifications();
    c.set_log_level(LogLevel::Debug).await.unwrap();
    call("toggle-simulated-logging", json!({})).await;
    let log = notified(
        &mut notifications,
        "notifications/message",
        Duration::from_secs(30),
    )
    .await;
    assert!(log.is_some(), "{what}: no log message");

    // Resources, paginated; a template; a subscription heard.
    let resources = c.list_all_resources().await.unwrap();
    assert!(
        resources.len() >= 5,
        "{what}: {} resources",
        resources.len()
    );
    let first = &resources[0];
    let read = c.read_resource(&first.uri).await.unwrap();
    assert!(!read.contents.is_empty(), "{what}");
    let templates = c.list_all_resource_templates().await.unwrap();
    assert!(!templates.is_empty(), "{what}");
    let instance = templates[0]
        .uri_template
        .as_str()
        .replace("{resourceId}", "1");
    let from_template = c.read_resource(&instance).await.unwrap();
    assert!(!from_template.contents.is_empty(), "{what}: {instance}");
    c.subscribe(&first.uri).await.unwrap();
    call("toggle-subscriber-updates", json!({})).await;
    let updated = notified(
        &mut notifications,
        "notifications/resources/updated",
        Duration::from_secs(30),
    )
    .await;
    assert!(updated.is_some(), "{what}: no resource update");
    c.unsubscribe(&first.uri).await.unwrap();

    // Prompts and completion.
    let prompts = c.list_all_prompts().await.unwrap();
    let prompt_names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert!(
        prompt_names.contains(&"simple-prompt"),
        "{what}: {prompt_names:?}"
    );
    let simple = c.get_prompt("simple-prompt", HashMap::new()).await.unwrap();
    assert!(!simple.messages.is_empty());
    let args = HashMap::from([("city".to_string(), "Paris".to_string())]);
    let with_args = c.get_prompt("args-prompt", args).await.unwrap();
    assert!(text_of(
        &with_args
            .messages
            .iter()
            .map(|m| m.content.clone())
            .collect::<Vec<_>>()
    )
    .contains("Paris"));
    let completed = c
        .complete(CompleteParams {
            reference: CompleteReference::Prompt {
                name: "completable-prompt".into(),
            },
            argument: CompleteArgument {
                name: "name".into(),
                value: "A".into(),
            },
            context: Some(CompleteContext {
                arguments: HashMap::from([("department".to_string(), "Engineering".to_string())]),
            }),
        })
        .await
        .unwrap();
    assert_eq!(completed.completion.values, vec!["Alice"], "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_server_over_stdio() {
    let node = node_prefix().node.display().to_string();
    let connector = StdioConnector::new(node, [script(), "stdio".to_string()]);
    let stderr = connector.stderr();
    let c = connect(connector).await;
    exercise(&c, "stdio").await;
    c.close().await;
    // Its stderr was kept (it says how it started).
    assert!(!stderr.lines().is_empty(), "no stderr captured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_server_over_streamable_http() {
    let (_server, port) = reference("streamableHttp");
    let c = connect(HttpConnector::new(format!("http://127.0.0.1:{port}/mcp"))).await;
    exercise(&c, "streamable http").await;
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_server_over_legacy_sse() {
    let (_server, port) = reference("sse");
    let c = connect(LegacySseConnector::new(format!(
        "http://127.0.0.1:{port}/sse"
    )))
    .await;
    exercise(&c, "legacy sse").await;
    c.close().await;
}
