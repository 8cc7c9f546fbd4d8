//! Per-request FIFO on the line transport that stdio (and TCP) serve on:
//! a request's log and progress notifications, in the order its handler
//! sent them, then its result. Every other transport: the transports
//! crate's `ordering` tests.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use arbor_mcp::model::LogLevel;
use arbor_mcp::{CallToolResult, ServerBuilder, ServerConfig, Tool};
use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requests_notifications_come_in_order_and_before_its_result() {
    let server = ServerBuilder::new("ordering", "1")
        .config(ServerConfig {
            progress_interval: Duration::ZERO,
            ..ServerConfig::default()
        })
        .tool_with_schema(
            Tool::new("chatty").description("Logs and reports progress, then answers"),
            |_args, ctx| async move {
                for step in 1..=40u64 {
                    ctx.log(LogLevel::Info, None, json!({ "step": step }));
                    ctx.progress(step as f64, None, None);
                }
                Ok(CallToolResult::text("done"))
            },
        )
        .build()
        .unwrap();
    let mut c = Client::connect(server).await;
    let mut params = modern(json!({"name": "chatty", "arguments": {}}));
    params["_meta"]["progressToken"] = json!("t");
    params["_meta"]["io.modelcontextprotocol/logLevel"] = json!("info");
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}))
        .await;
    let mut got: Vec<Value> = Vec::new();
    loop {
        let m = c.recv().await;
        let done = m["id"] == 1;
        got.push(m);
        if done {
            break;
        }
    }
    assert_eq!(got.len(), 81, "{got:?}");
    for (i, pair) in got[..80].chunks(2).enumerate() {
        assert_eq!(pair[0]["params"]["data"]["step"], i as u64 + 1, "{pair:?}");
        assert_eq!(pair[1]["params"]["progress"], (i + 1) as f64, "{pair:?}");
    }
    assert_eq!(got[80]["result"]["content"][0]["text"], "done");
    c.close().await;
}
