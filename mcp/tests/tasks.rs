//! The tasks extension of 2026-07-28.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const EXT: &str = "io.modelcontextprotocol/tasks";

fn with_tasks(mut params: Value) -> Value {
    params["_meta"]["io.modelcontextprotocol/clientCapabilities"] =
        json!({"extensions": {EXT: {}}, "elicitation": {}});
    params
}

async fn poll_until(c: &mut Client, id: &str, status: &str) -> Value {
    for i in 0..200 {
        let r = c
            .call(
                1000 + i,
                "tasks/get",
                with_tasks(modern(json!({"taskId": id}))),
            )
            .await;
        if r["result"]["status"] == status {
            return r["result"].clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {id} never reached {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_tool_needs_the_extension_and_runs_to_completion() {
    let mut c = Client::connect(server()).await;
    let discover = c.call(1, "server/discover", json!({"_meta": meta()})).await;
    assert!(discover["result"]["capabilities"]["extensions"][EXT].is_object());

    let without = c
        .call(
            2,
            "tools/call",
            modern(json!({"name": "long", "arguments": {"ms": 10}})),
        )
        .await;
    assert_eq!(without["error"]["code"], -32021);
    assert_eq!(
        without["error"]["data"]["requiredCapabilities"],
        json!({"extensions": {EXT: {}}})
    );

    let created = c
        .call(
            3,
            "tools/call",
            with_tasks(modern(json!({"name": "long", "arguments": {"ms": 50}}))),
        )
        .await;
    let res = &created["result"];
    assert_eq!(res["resultType"], "task");
    assert_eq!(res["status"], "working");
    assert!(res["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(res["ttlMs"].is_u64() && res["pollIntervalMs"].is_u64());
    let id = res["taskId"].as_str().unwrap().to_string();
    let done = poll_until(&mut c, &id, "completed").await;
    assert_eq!(done["result"]["content"][0]["text"], "slept 50");
    // tasks/* results are complete results.
    let again = c
        .call(4, "tasks/get", with_tasks(modern(json!({"taskId": id}))))
        .await;
    assert_eq!(again["result"]["resultType"], "complete");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_waits_in_input_required_until_tasks_update_answers() {
    let mut c = Client::connect(server()).await;
    let created = c
        .call(
            1,
            "tools/call",
            with_tasks(modern(json!({"name": "confirm", "arguments": {"ms": 1}}))),
        )
        .await;
    let id = created["result"]["taskId"].as_str().unwrap().to_string();
    let waiting = poll_until(&mut c, &id, "input_required").await;
    assert_eq!(
        waiting["inputRequests"]["ok"]["method"],
        "elicitation/create"
    );
    // Unknown keys are ignored; the right one completes the round.
    let ack = c
        .call(
            2,
            "tasks/update",
            with_tasks(modern(
                json!({"taskId": id, "inputResponses": {"other": 1, "ok": {"action": "accept"}}}),
            )),
        )
        .await;
    assert_eq!(ack["result"]["resultType"], "complete");
    let done = poll_until(&mut c, &id, "completed").await;
    assert_eq!(done["result"]["content"][0]["text"], "accept at step 1");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_task_and_is_idempotent() {
    let mut c = Client::connect(server()).await;
    let created = c
        .call(
            1,
            "tools/call",
            with_tasks(modern(json!({"name": "long", "arguments": {"ms": 5000}}))),
        )
        .await;
    let id = created["result"]["taskId"].as_str().unwrap().to_string();
    for i in 0..2 {
        let r = c
            .call(
                2 + i,
                "tasks/cancel",
                with_tasks(modern(json!({"taskId": id}))),
            )
            .await;
        assert_eq!(r["result"]["resultType"], "complete");
    }
    let state = c
        .call(5, "tasks/get", with_tasks(modern(json!({"taskId": id}))))
        .await;
    assert_eq!(state["result"]["status"], "cancelled");
    assert!(state["result"].get("result").is_none());

    let unknown = c
        .call(
            6,
            "tasks/get",
            with_tasks(modern(json!({"taskId": "nope"}))),
        )
        .await;
    assert_eq!(unknown["error"]["code"], -32602);
    let no_ext = c.call(7, "tasks/get", modern(json!({"taskId": id}))).await;
    assert_eq!(no_ext["error"]["code"], -32021);
    for (i, removed) in ["tasks/list", "tasks/result"].iter().enumerate() {
        let r = c
            .call(
                8 + i as i64,
                removed,
                with_tasks(modern(json!({"taskId": id}))),
            )
            .await;
        assert_eq!(r["error"]["code"], -32601, "{removed}");
    }
    // An optional task tool is answered directly without the extension.
    let direct = c
        .call(
            10,
            "tools/call",
            modern(json!({"name": "add", "arguments": {"a": 1, "b": 2}})),
        )
        .await;
    assert_eq!(direct["result"]["resultType"], "complete");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_answers_leave_only_the_open_requests_and_a_panic_fails_the_task() {
    let mut c = Client::connect(server()).await;
    let created = c
        .call(
            1,
            "tools/call",
            with_tasks(modern(json!({"name": "two", "arguments": {"ms": 1}}))),
        )
        .await;
    let id = created["result"]["taskId"].as_str().unwrap().to_string();
    let waiting = poll_until(&mut c, &id, "input_required").await;
    assert_eq!(waiting["inputRequests"].as_object().unwrap().len(), 2);
    c.call(
        2,
        "tasks/update",
        with_tasks(modern(
            json!({"taskId": id, "inputResponses": {"a": {"action": "accept"}}}),
        )),
    )
    .await;
    let mut open = 2;
    for _ in 0..100 {
        let r = c
            .call(3, "tasks/get", with_tasks(modern(json!({"taskId": id}))))
            .await;
        open = r["result"]["inputRequests"]
            .as_object()
            .map_or(0, |m| m.len());
        if open == 1 {
            assert!(r["result"]["inputRequests"].get("b").is_some());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(open, 1, "only b is still open");
    c.call(
        4,
        "tasks/update",
        with_tasks(modern(
            json!({"taskId": id, "inputResponses": {"b": {"action": "decline"}}}),
        )),
    )
    .await;
    let done = poll_until(&mut c, &id, "completed").await;
    assert_eq!(
        done["result"]["content"][0]["text"],
        "\"accept\" \"decline\""
    );

    let boom = c
        .call(
            5,
            "tools/call",
            with_tasks(modern(json!({"name": "panic", "arguments": {"ms": 1}}))),
        )
        .await;
    let boom_id = boom["result"]["taskId"].as_str().unwrap().to_string();
    let failed = poll_until(&mut c, &boom_id, "failed").await;
    assert_eq!(failed["error"]["code"], -32603);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_limit_holds_at_its_edge() {
    let mut c = Client::connect(server_with(arbor_mcp::ServerConfig {
        max_tasks: 1,
        ..arbor_mcp::ServerConfig::default()
    }))
    .await;
    let first = c
        .call(
            1,
            "tools/call",
            with_tasks(modern(json!({"name": "long", "arguments": {"ms": 5000}}))),
        )
        .await;
    assert_eq!(first["result"]["resultType"], "task");
    let second = c
        .call(
            2,
            "tools/call",
            with_tasks(modern(json!({"name": "long", "arguments": {"ms": 5000}}))),
        )
        .await;
    assert_eq!(second["error"]["code"], -32603);
    assert_eq!(second["error"]["data"]["limit"], "max_tasks");
    c.close().await;
}
