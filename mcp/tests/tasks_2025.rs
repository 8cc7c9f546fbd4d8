//! The 2025-11-25 task surface (core and experimental in that version).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use serde_json::json;

async fn session() -> Client {
    let mut c = Client::connect(server_with(arbor_mcp::ServerConfig {
        page_size: 100,
        ..arbor_mcp::ServerConfig::default()
    }))
    .await;
    let init = c
        .call(0, "initialize", json!({"protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}}, "clientInfo": {"name": "t", "version": "1"}}))
        .await;
    assert_eq!(
        init["result"]["capabilities"]["tasks"]["requests"]["tools"]["call"],
        json!({})
    );
    c.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_support_is_declared_and_enforced() {
    let mut c = session().await;
    let list = c.call(1, "tools/list", json!({"cursor": null})).await;
    let tools = list["result"]["tools"].as_array().unwrap();
    let long = tools
        .iter()
        .find(|t| t["name"] == "long")
        .expect("long is listed");
    assert_eq!(long["execution"]["taskSupport"], "required");
    let needs_task = c
        .call(
            2,
            "tools/call",
            json!({"name": "long", "arguments": {"ms": 1}}),
        )
        .await;
    assert_eq!(needs_task["error"]["code"], -32601);
    let forbidden = c
        .call(
            3,
            "tools/call",
            json!({"name": "add", "arguments": {"a": 1, "b": 2}, "task": {"ttl": 1000}}),
        )
        .await;
    assert_eq!(forbidden["error"]["code"], -32601);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_is_created_listed_and_its_result_awaited() {
    let mut c = session().await;
    let created = c
        .call(
            1,
            "tools/call",
            json!({"name": "long", "arguments": {"ms": 100}, "task": {"ttl": 60000}}),
        )
        .await;
    let task = &created["result"]["task"];
    assert_eq!(task["status"], "working");
    assert!(task["ttl"].is_u64() && task["pollInterval"].is_u64());
    assert!(task.get("ttlMs").is_none(), "2025-11-25 names");
    let id = task["taskId"].as_str().unwrap().to_string();
    let got = c.call(2, "tasks/get", json!({"taskId": id})).await;
    assert_eq!(got["result"]["taskId"], id.as_str());
    let listed = c.call(3, "tasks/list", json!({})).await;
    assert_eq!(listed["result"]["tasks"][0]["taskId"], id.as_str());
    let result = c.call(4, "tasks/result", json!({"taskId": id})).await;
    assert_eq!(result["result"]["content"][0]["text"], "slept 100");
    assert_eq!(
        result["result"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        id.as_str()
    );
    let late_cancel = c.call(5, "tasks/cancel", json!({"taskId": id})).await;
    assert_eq!(
        late_cancel["error"]["code"], -32602,
        "a finished task cannot be cancelled"
    );
    let unknown = c.call(6, "tasks/get", json!({"taskId": "nope"})).await;
    assert_eq!(unknown["error"]["code"], -32602);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_a_running_task_and_its_result_says_so() {
    let mut c = session().await;
    let created = c
        .call(
            1,
            "tools/call",
            json!({"name": "long", "arguments": {"ms": 5000}, "task": {}}),
        )
        .await;
    let id = created["result"]["task"]["taskId"]
        .as_str()
        .unwrap()
        .to_string();
    let cancelled = c.call(2, "tasks/cancel", json!({"taskId": id})).await;
    assert_eq!(cancelled["result"]["status"], "cancelled");
    let result = c.call(3, "tasks/result", json!({"taskId": id})).await;
    assert_eq!(result["error"]["data"]["status"], "cancelled");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_asks_the_client_through_the_session() {
    let mut c = session().await;
    let created = c
        .call(
            1,
            "tools/call",
            json!({"name": "confirm", "arguments": {"ms": 1}, "task": {}}),
        )
        .await;
    let id = created["result"]["task"]["taskId"]
        .as_str()
        .unwrap()
        .to_string();
    let ask = c.recv().await;
    assert_eq!(ask["method"], "elicitation/create");
    c.send(json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept"}}))
        .await;
    let result = c.call(2, "tasks/result", json!({"taskId": id})).await;
    assert_eq!(result["result"]["content"][0]["text"], "accept at step 1");
    c.close().await;
}
