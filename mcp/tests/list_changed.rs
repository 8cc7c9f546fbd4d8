//! Lists that change at run time, and the clients that follow them.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use arbor_mcp::Tool;
use arbor_mcp::{BuildError, CallToolResult};
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_clients_hear_of_tools_added_and_removed() {
    let server = server();
    let mut c = Client::connect(server.clone()).await;
    let init = c.initialize("2025-11-25").await;
    assert_eq!(init["result"]["capabilities"]["tools"]["listChanged"], true);
    // The session follows the lists once it is initialized.
    assert_eq!(c.call(1, "ping", json!({})).await["result"], json!({}));

    server
        .add_tool(Tool::new("late").description("Added at run time"), |args: SlowArgs, _ctx| async move {
            Ok(CallToolResult::text(format!("late {}", args.ms)))
        })
        .unwrap();
    assert_eq!(c.recv().await["method"], "notifications/tools/list_changed");
    let r = c
        .call(
            2,
            "tools/call",
            json!({"name": "late", "arguments": {"ms": 3}}),
        )
        .await;
    assert_eq!(r["result"]["content"][0]["text"], "late 3");

    let dup = server.add_tool(
        Tool::new("late").description("again"),
        |_a: SlowArgs, _c| async move { Ok(CallToolResult::text("x")) },
    );
    assert_eq!(
        dup,
        Err(BuildError::Duplicate {
            kind: "tool",
            name: "late".into()
        })
    );

    assert!(server.remove_tool("late"));
    assert!(!server.remove_tool("late"));
    assert_eq!(c.recv().await["method"], "notifications/tools/list_changed");
    let gone = c
        .call(
            3,
            "tools/call",
            json!({"name": "late", "arguments": {"ms": 3}}),
        )
        .await;
    assert_eq!(gone["error"]["code"], -32602);

    assert!(server.remove_resource("test://static/hello"));
    assert_eq!(
        c.recv().await["method"],
        "notifications/resources/list_changed"
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_listeners_hear_only_the_lists_they_asked_for() {
    let server = server();
    let mut c = Client::connect(server.clone()).await;
    c.send(
        json!({"jsonrpc": "2.0", "id": 5, "method": "subscriptions/listen", "params": modern(json!({
            "notifications": {"toolsListChanged": true}
        }))}),
    )
    .await;
    let ack = c.recv().await;
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true})
    );

    assert!(server.remove_prompt("greet"));
    assert!(c.silent_for(100).await, "prompt changes were not asked for");
    assert!(server.remove_tool("add"));
    let n = c.recv().await;
    assert_eq!(n["method"], "notifications/tools/list_changed");
    assert_eq!(
        n["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        5
    );
    c.close().await;
}
