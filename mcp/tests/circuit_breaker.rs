//! Circuit breakers end to end: a tool that keeps failing (or panicking)
//! opens its circuit, is then refused at once with `-32030`, and after the
//! cool-down one probe decides; other tools, and bad arguments, are not
//! counted against it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use arbor_mcp::breaker::BreakerConfig;
use arbor_mcp::jsonrpc::code::CIRCUIT_OPEN;
use arbor_mcp::ServerConfig;
use common::*;
use serde_json::{json, Value};

fn breaking_after(failures: u32, cool_down: Duration) -> arbor_mcp::McpServer {
    server_with(ServerConfig {
        circuit_breaker: BreakerConfig {
            failures,
            cool_down,
        },
        ..ServerConfig::default()
    })
}

fn call(tool: &str, arguments: Value) -> Value {
    modern(json!({"name": tool, "arguments": arguments}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_tool_opens_its_circuit_and_a_probe_after_the_cool_down_decides() {
    let mut c = Client::connect(breaking_after(3, Duration::from_millis(300))).await;
    for id in 0..3 {
        let failed = c
            .call(id, "tools/call", call("fail", json!({"ms": 0})))
            .await;
        assert_eq!(failed["result"]["isError"], true, "{failed}");
    }
    let refused = c
        .call(3, "tools/call", call("fail", json!({"ms": 0})))
        .await;
    assert_eq!(refused["error"]["code"], CIRCUIT_OPEN, "{refused}");
    assert_eq!(refused["error"]["data"]["handler"], "tool fail");
    assert_eq!(refused["error"]["data"]["circuit"], "open");
    let after = refused["error"]["data"]["retryAfter"].as_f64().unwrap();
    assert!(after > 0.0 && after <= 0.3, "{refused}");
    // Other tools are served meanwhile.
    let added = c
        .call(4, "tools/call", call("add", json!({"a": 1, "b": 2})))
        .await;
    assert_eq!(added["result"]["content"][0]["text"], "3");
    tokio::time::sleep(Duration::from_secs_f64(after) + Duration::from_millis(20)).await;
    // The probe runs (and fails): open again at once.
    let probe = c
        .call(5, "tools/call", call("fail", json!({"ms": 0})))
        .await;
    assert_eq!(probe["result"]["isError"], true, "the probe ran: {probe}");
    let again = c
        .call(6, "tools/call", call("fail", json!({"ms": 0})))
        .await;
    assert_eq!(again["error"]["code"], CIRCUIT_OPEN);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_tool_opens_its_circuit_and_bad_arguments_do_not_count() {
    let mut c = Client::connect(breaking_after(2, Duration::from_secs(60))).await;
    // Arguments that break the schema never reach the handler.
    for id in 0..5 {
        let bad = c
            .call(id, "tools/call", call("panic", json!({"ms": "x"})))
            .await;
        assert_eq!(bad["result"]["isError"], true, "{bad}");
    }
    for id in 5..7 {
        let panicked = c
            .call(id, "tools/call", call("panic", json!({"ms": 0})))
            .await;
        assert_eq!(panicked["error"]["code"], -32603, "{panicked}");
    }
    let refused = c
        .call(7, "tools/call", call("panic", json!({"ms": 0})))
        .await;
    assert_eq!(refused["error"]["code"], CIRCUIT_OPEN, "{refused}");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_must_be_in_a_row_and_output_breaking_its_schema_is_one() {
    let mut c = Client::connect(breaking_after(2, Duration::from_secs(60))).await;
    // Broken output, good output, broken output: never two in a row.
    for (id, ok) in [(0, false), (1, true), (2, false), (3, true), (4, false)] {
        let r = c
            .call(id, "tools/call", call("structured", json!({"ok": ok})))
            .await;
        let code = r["error"]["code"].as_i64();
        assert_eq!(code, (!ok).then_some(-32603), "{r}");
    }
    // The second in a row opens it.
    let r = c
        .call(5, "tools/call", call("structured", json!({"ok": false})))
        .await;
    assert_eq!(r["error"]["code"], -32603, "{r}");
    let refused = c
        .call(6, "tools/call", call("structured", json!({"ok": true})))
        .await;
    assert_eq!(refused["error"]["code"], CIRCUIT_OPEN, "{refused}");
    c.close().await;
}
