//! `RequestContext::cancelled`: work a handler started elsewhere hears that
//! its request is over (cancelled, timed out, answered), in both eras.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use arbor_mcp::Tool;
use std::time::Duration;

use arbor_mcp::{CallToolResult, McpServer, ServerConfig};
use common::*;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

#[derive(Deserialize, JsonSchema)]
struct Watch {
    /// How long the handler itself works, in ms.
    ms: u64,
}

/// A server whose `watch` tool starts a helper task that reports on `heard`
/// once the request's context says it is over.
fn watching(config: ServerConfig) -> (McpServer, mpsc::UnboundedReceiver<bool>) {
    let (tx, heard) = mpsc::unbounded_channel();
    let server = builder_with(config)
        .tool(
            Tool::new("watch").description("Works, with a helper watching"),
            move |a: Watch, ctx| {
                let tx = tx.clone();
                async move {
                    let helper = ctx.clone();
                    assert!(!helper.is_cancelled());
                    tokio::spawn(async move {
                        helper.cancelled().await;
                        let _ = tx.send(helper.is_cancelled());
                    });
                    tokio::time::sleep(Duration::from_millis(a.ms)).await;
                    Ok(CallToolResult::text("done"))
                }
            },
        )
        .build()
        .unwrap();
    (server, heard)
}

async fn heard_within(heard: &mut mpsc::UnboundedReceiver<bool>, ms: u64) -> bool {
    tokio::time::timeout(Duration::from_millis(ms), heard.recv())
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_request_cancels_its_context() {
    let (server, mut heard) = watching(ServerConfig::default());
    let mut c = Client::connect(server).await;
    c.initialize("2025-11-25").await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "watch", "arguments": {"ms": 10_000}}}))
        .await;
    // Not yet: the request is at work.
    assert!(!heard_within(&mut heard, 200).await);
    c.send(
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}),
    )
    .await;
    assert!(
        heard_within(&mut heard, 2000).await,
        "the helper heard the cancel"
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_timeout_cancels_its_context() {
    let (server, mut heard) = watching(ServerConfig {
        request_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    });
    let mut c = Client::connect(server).await;
    let answer = c
        .call(
            1,
            "tools/call",
            modern(json!({"name": "watch", "arguments": {"ms": 10_000}})),
        )
        .await;
    assert_eq!(answer["error"]["code"], -32001, "{answer}");
    assert!(
        heard_within(&mut heard, 2000).await,
        "the helper heard the timeout"
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_request_is_over_for_its_helpers_too() {
    let (server, mut heard) = watching(ServerConfig::default());
    let mut c = Client::connect(server).await;
    let answer = c
        .call(
            1,
            "tools/call",
            modern(json!({"name": "watch", "arguments": {"ms": 10}})),
        )
        .await;
    assert_eq!(answer["result"]["content"][0]["text"], "done", "{answer}");
    assert!(heard_within(&mut heard, 2000).await);
    c.close().await;
}
