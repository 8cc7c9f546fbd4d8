//! The handshake era (2025-11-25 back to 2024-11-05) end to end over an
//! in-memory line transport.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use arbor_mcp::ServerConfig;
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_echoes_a_supported_version_and_declares_capabilities() {
    let mut c = Client::connect(server()).await;
    let r = c.initialize("2025-06-18").await;
    assert_eq!(r["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(r["result"]["serverInfo"]["name"], "test-server");
    assert_eq!(r["result"]["instructions"], "for tests");
    let caps = &r["result"]["capabilities"];
    assert!(
        caps["tools"].is_object() && caps["resources"].is_object() && caps["prompts"].is_object()
    );
    assert!(
        r["result"].get("resultType").is_none(),
        "no resultType in the handshake era"
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_version_is_answered_with_a_supported_one_never_echoed() {
    for asked in ["1999-01-01", "2026-07-28", "banana"] {
        let mut c = Client::connect(server()).await;
        let r = c.initialize(asked).await;
        assert_eq!(
            r["result"]["protocolVersion"], "2025-11-25",
            "asked {asked}"
        );
        c.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_initialize_and_ping_before_initialization_and_initialize_only_once() {
    let mut c = Client::connect(server()).await;
    let r = c.call(1, "tools/list", json!({})).await;
    assert_eq!(r["error"]["code"], -32600);
    assert_eq!(r["error"]["data"]["lifecycle"], "not_initialized");
    assert_eq!(c.call(2, "ping", json!({})).await["result"], json!({}));
    c.initialize("2025-11-25").await;
    let again = c
        .call(3, "initialize", json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}))
        .await;
    assert_eq!(again["error"]["code"], -32600);
    assert_eq!(again["error"]["data"]["lifecycle"], "initialized");
    assert_eq!(c.call(4, "ping", json!({})).await["result"], json!({}));
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_without_a_version_is_invalid_params() {
    let mut c = Client::connect(server()).await;
    let r = c.call(1, "initialize", json!({"capabilities": {}})).await;
    assert_eq!(r["error"]["code"], -32602);
    assert_eq!(r["error"]["data"]["field"], "protocolVersion");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_is_paginated_with_tamper_evident_cursors() {
    let mut c = Client::connect(server()).await;
    c.initialize("2025-11-25").await;
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let params = match &cursor {
            Some(cur) => json!({"cursor": cur}),
            None => json!({}),
        };
        let r = c.call(10 + pages, "tools/list", params).await;
        let tools = r["result"]["tools"].as_array().unwrap();
        assert!(tools.len() <= 5);
        names.extend(
            tools
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string()),
        );
        pages += 1;
        match r["result"]["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 12);
    assert_eq!(&names[..2], ["add", "fail"]);
    let add = c.call(20, "tools/list", json!({})).await;
    assert_eq!(add["result"]["tools"][0]["inputSchema"]["type"], "object");
    assert!(add["result"]["tools"][0]["inputSchema"]["properties"]["a"].is_object());

    // Forged and tampered cursors are refused.
    let real = c.call(21, "tools/list", json!({})).await["result"]["nextCursor"]
        .as_str()
        .unwrap()
        .to_string();
    let mut tampered = real.clone().into_bytes();
    let last = tampered.len() - 3;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    for bad in [
        String::from_utf8(tampered).unwrap(),
        "forged".to_string(),
        String::new(),
    ] {
        let r = c.call(22, "tools/list", json!({"cursor": bad})).await;
        assert_eq!(r["error"]["code"], -32602, "cursor {bad:?}");
    }
    // A cursor for tools is not a cursor for prompts.
    let r = c.call(23, "prompts/list", json!({"cursor": real})).await;
    assert_eq!(r["error"]["code"], -32602);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_call_validates_arguments_and_separates_tool_errors_from_protocol_errors() {
    let mut c = Client::connect(server()).await;
    c.initialize("2025-11-25").await;
    let ok = c
        .call(
            1,
            "tools/call",
            json!({"name": "add", "arguments": {"a": 2, "b": 3}}),
        )
        .await;
    assert_eq!(ok["result"]["content"][0]["text"], "5");
    assert!(ok["result"].get("isError").is_none());

    let bad = c
        .call(
            2,
            "tools/call",
            json!({"name": "add", "arguments": {"a": "two"}}),
        )
        .await;
    // Input validation errors are tool execution errors, per the spec.
    assert_eq!(bad["result"]["isError"], true, "{bad}");
    let text = bad["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("invalid arguments for tool add"), "{text}");
    assert!(
        text.lines().count() >= 3,
        "both the wrong type and the missing b: {text}"
    );

    let unknown = c.call(3, "tools/call", json!({"name": "nope"})).await;
    assert_eq!(unknown["error"]["code"], -32602);
    assert_eq!(unknown["error"]["data"]["tool"], "nope");

    let failed = c
        .call(
            4,
            "tools/call",
            json!({"name": "fail", "arguments": {"ms": 1}}),
        )
        .await;
    assert_eq!(failed["result"]["isError"], true);
    assert_eq!(failed["result"]["content"][0]["text"], "it failed");

    let panicked = c
        .call(
            5,
            "tools/call",
            json!({"name": "panic", "arguments": {"ms": 1}}),
        )
        .await;
    assert_eq!(panicked["error"]["code"], -32603);
    // The session survives a panicking handler.
    assert_eq!(c.call(6, "ping", json!({})).await["result"], json!({}));

    let structured = c
        .call(
            7,
            "tools/call",
            json!({"name": "structured", "arguments": {"ok": true}}),
        )
        .await;
    assert_eq!(structured["result"]["structuredContent"]["n"], 42);
    let violating = c
        .call(
            8,
            "tools/call",
            json!({"name": "structured", "arguments": {"ok": false}}),
        )
        .await;
    assert_eq!(violating["error"]["code"], -32603);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_and_prompts() {
    let mut c = Client::connect(server()).await;
    c.initialize("2025-11-25").await;
    let list = c.call(1, "resources/list", json!({})).await;
    assert_eq!(list["result"]["resources"][0]["uri"], "test://static/hello");
    let read = c
        .call(2, "resources/read", json!({"uri": "test://static/hello"}))
        .await;
    assert_eq!(read["result"]["contents"][0]["text"], "hello world");
    let missing = c
        .call(3, "resources/read", json!({"uri": "test://nope"}))
        .await;
    assert_eq!(
        missing["error"]["code"], -32002,
        "handshake era: resource not found"
    );
    assert_eq!(missing["error"]["data"]["uri"], "test://nope");

    let prompt = c
        .call(
            4,
            "prompts/get",
            json!({"name": "greet", "arguments": {"name": "Ada"}}),
        )
        .await;
    assert_eq!(
        prompt["result"]["messages"][0]["content"]["text"],
        "Hello, Ada!"
    );
    let no_arg = c.call(5, "prompts/get", json!({"name": "greet"})).await;
    assert_eq!(no_arg["error"]["code"], -32602);
    assert_eq!(no_arg["error"]["data"]["missing"], json!(["name"]));
    let extra = c
        .call(
            6,
            "prompts/get",
            json!({"name": "greet", "arguments": {"name": "x", "mood": "y"}}),
        )
        .await;
    assert_eq!(extra["error"]["data"]["unknown"], json!(["mood"]));
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_tool_does_not_block_the_session_and_cancellation_aborts_it_without_a_response() {
    let mut c = Client::connect(server()).await;
    c.initialize("2025-11-25").await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "slow", "arguments": {"ms": 800}}}))
        .await;
    // Answered while the slow tool runs.
    assert_eq!(c.call(2, "ping", json!({})).await["result"], json!({}));
    c.send(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1, "reason": "user"}}))
        .await;
    assert!(
        c.silent_for(1200).await,
        "no response follows a cancellation"
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_timeout_gets_an_error_and_its_handler_is_aborted() {
    let mut c = Client::connect(server_with(ServerConfig {
        request_timeout: Duration::from_millis(100),
        ..ServerConfig::default()
    }))
    .await;
    c.initialize("2025-11-25").await;
    let r = c
        .call(
            1,
            "tools/call",
            json!({"name": "slow", "arguments": {"ms": 2000}}),
        )
        .await;
    assert_eq!(r["error"]["code"], -32001);
    assert_eq!(r["error"]["data"]["timeoutMs"], 100);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_goes_only_with_a_token_and_increases() {
    let mut c = Client::connect(server()).await;
    c.initialize("2025-11-25").await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "slow", "arguments": {"ms": 400}, "_meta": {"progressToken": "tok"}}}))
        .await;
    let mut seen = Vec::new();
    loop {
        let v = c.recv().await;
        if v["method"] == "notifications/progress" {
            assert_eq!(v["params"]["progressToken"], "tok");
            seen.push(v["params"]["progress"].as_f64().unwrap());
        } else {
            assert_eq!(v["result"]["content"][0]["text"], "done");
            break;
        }
    }
    assert!(seen.len() >= 3, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    // Without a token: no progress at all.
    let r = c
        .call(
            2,
            "tools/call",
            json!({"name": "slow", "arguments": {"ms": 200}}),
        )
        .await;
    assert_eq!(r["result"]["content"][0]["text"], "done");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_does_not_initialize_in_time_is_closed() {
    let mut c = Client::connect(server_with(ServerConfig {
        init_timeout: Duration::from_millis(100),
        ..ServerConfig::default()
    }))
    .await;
    assert_eq!(c.call(1, "ping", json!({})).await["result"], json!({}));
    // Not yet initializing: no deadline runs (a quiet client is not cut off).
    assert!(c.silent_for(300).await);
    c.call(2, "initialize", json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}))
        .await;
    // No notifications/initialized: the deadline closes the connection.
    let served = tokio::time::timeout(Duration::from_secs(5), &mut c.served).await;
    assert!(served.is_ok(), "the connection ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_set_level_accepts_only_known_levels() {
    let mut c = Client::connect(server()).await;
    c.initialize("2025-11-25").await;
    assert_eq!(
        c.call(1, "logging/setLevel", json!({"level": "warning"}))
            .await["result"],
        json!({})
    );
    let bad = c
        .call(2, "logging/setLevel", json!({"level": "loud"}))
        .await;
    assert_eq!(bad["error"]["code"], -32602);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_only_in_2025_03_26() {
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 1}}},
        {"jsonrpc": "2.0", "method": "notifications/whatever"}
    ]);
    let mut c = Client::connect(server()).await;
    c.initialize("2025-03-26").await;
    c.send(batch.clone()).await;
    let answers = c.recv().await;
    let answers = answers.as_array().expect("an array of responses");
    assert_eq!(answers.len(), 2);
    assert!(answers
        .iter()
        .any(|a| a["result"]["content"][0]["text"] == "2"));
    c.close().await;

    let mut c = Client::connect(server()).await;
    c.initialize("2025-11-25").await;
    c.send(batch).await;
    assert_eq!(c.recv().await["error"]["code"], -32600);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_are_method_not_found_and_ids_are_not_reused_while_in_flight() {
    let mut c = Client::connect(server()).await;
    c.initialize("2025-11-25").await;
    let r = c.call(1, "tools/explode", json!({})).await;
    assert_eq!(r["error"]["code"], -32601);
    c.send(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "slow", "arguments": {"ms": 400}}}))
        .await;
    let dup = c
        .call(
            7,
            "tools/call",
            json!({"name": "add", "arguments": {"a": 1, "b": 1}}),
        )
        .await;
    assert_eq!(dup["error"]["code"], -32600);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_the_level_set_for_the_session() {
    let mut c = Client::connect(server()).await;
    c.initialize("2025-11-25").await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "log", "arguments": {"ms": 0}}}))
        .await;
    assert_eq!(c.recv().await["id"], 1, "no logs before logging/setLevel");
    c.call(2, "logging/setLevel", json!({"level": "debug"}))
        .await;
    c.send(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "log", "arguments": {"ms": 0}}}))
        .await;
    let levels: Vec<_> = [c.recv().await, c.recv().await]
        .iter()
        .map(|m| m["params"]["level"].clone())
        .collect();
    assert_eq!(levels, [json!("debug"), json!("warning")]);
    assert_eq!(c.recv().await["id"], 3);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_templates_match_validate_and_refuse_traversal() {
    let mut c = Client::connect(server()).await;
    c.initialize("2025-11-25").await;
    let list = c.call(1, "resources/templates/list", json!({})).await;
    assert_eq!(
        list["result"]["resourceTemplates"][0]["uriTemplate"],
        "test://users/{id}/profile"
    );
    let read = c
        .call(
            2,
            "resources/read",
            json!({"uri": "test://users/42/profile"}),
        )
        .await;
    let text = read["result"]["contents"][0]["text"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(text).unwrap()["id"],
        "42"
    );
    let bad_var = c
        .call(
            3,
            "resources/read",
            json!({"uri": "test://users/abc/profile"}),
        )
        .await;
    assert_eq!(bad_var["error"]["code"], -32602);
    assert!(bad_var["error"]["data"]["reason"]
        .as_str()
        .unwrap()
        .contains("id"));
    for sneaky in [
        "test://static/../hello",
        "test://static/%2e%2e/hello",
        "file:///etc/../../passwd",
    ] {
        let r = c.call(4, "resources/read", json!({"uri": sneaky})).await;
        assert_eq!(r["error"]["code"], -32602, "{sneaky}: {r}");
    }
    // Normalised forms of a declared URI find it.
    let r = c
        .call(5, "resources/read", json!({"uri": "TEST://static/hello"}))
        .await;
    assert_eq!(r["result"]["contents"][0]["text"], "hello world");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_checks_its_target_and_caps_the_values() {
    let mut c = Client::connect(server()).await;
    let init = c.initialize("2025-11-25").await;
    assert!(init["result"]["capabilities"]["completions"].is_object());
    let names = c
        .call(1, "completion/complete", json!({"ref": {"type": "ref/prompt", "name": "greet"}, "argument": {"name": "name", "value": "A"}}))
        .await;
    assert_eq!(
        names["result"]["completion"]["values"],
        json!(["Ada", "Alan"])
    );
    assert_eq!(names["result"]["completion"]["hasMore"], false);
    let ids = c
        .call(2, "completion/complete", json!({"ref": {"type": "ref/resource", "uri": "test://users/{id}/profile"}, "argument": {"name": "id", "value": ""}}))
        .await;
    assert_eq!(
        ids["result"]["completion"]["values"]
            .as_array()
            .unwrap()
            .len(),
        100
    );
    assert_eq!(ids["result"]["completion"]["total"], 250);
    assert_eq!(ids["result"]["completion"]["hasMore"], true);
    for (i, bad) in [
        json!({"ref": {"type": "ref/prompt", "name": "nope"}, "argument": {"name": "name", "value": ""}}),
        json!({"ref": {"type": "ref/prompt", "name": "greet"}, "argument": {"name": "mood", "value": ""}}),
        json!({"ref": {"type": "ref/resource", "uri": "test://x/{y}"}, "argument": {"name": "y", "value": ""}}),
        json!({"ref": {"type": "ref/other"}, "argument": {"name": "y", "value": ""}}),
        json!({"ref": {"type": "ref/prompt", "name": "greet"}}),
    ]
    .into_iter()
    .enumerate()
    {
        let r = c.call(10 + i as i64, "completion/complete", bad.clone()).await;
        assert_eq!(r["error"]["code"], -32602, "{bad}");
    }
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_does_not_block_the_session_and_answers_as_one_array() {
    let mut c = Client::connect(server()).await;
    c.initialize("2025-03-26").await;
    c.send(json!([
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "slow", "arguments": {"ms": 400}}},
        {"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe", "params": {"uri": "test://static/hello"}},
        {"jsonrpc": "2.0", "id": 3, "method": "ping"},
        {"jsonrpc": "2.0", "id": 4, "method": 7}
    ]))
    .await;
    // Answered while the batch's slow tool still runs.
    let pong = c.call(5, "ping", json!({})).await;
    assert_eq!(pong["result"], json!({}));
    let answers = c.recv().await;
    let mut ids: Vec<i64> = answers
        .as_array()
        .expect("one array for the batch")
        .iter()
        .map(|a| a["id"].as_i64().unwrap_or(-1))
        .collect();
    ids.sort();
    assert_eq!(ids, [1, 2, 3, 4]);
    let malformed = answers
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == 4)
        .unwrap();
    assert_eq!(
        malformed["error"]["code"], -32600,
        "the malformed entry keeps its id"
    );
    c.close().await;
}

/// On a stream the in-flight limit pauses reading instead of refusing: a
/// request past it waits for a place and is answered once one is free; a
/// notification (a cancel of a request that holds a place) read while the
/// session is full still gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_flight_limit_pauses_reading_and_a_cancel_still_gets_through() {
    let mut c = Client::in_memory(server_with(ServerConfig {
        max_in_flight: 2,
        ..ServerConfig::default()
    }))
    .await;
    c.initialize("2025-11-25").await;
    for id in [1, 2] {
        c.send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "slow", "arguments": {"ms": 3000}}}))
            .await;
    }
    // Both places are held: the cancel passes without one and frees one.
    c.send(
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}),
    )
    .await;
    c.send(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 1}}}))
        .await;
    let third = c.recv().await;
    assert_eq!(third["id"], 3, "{third}");
    assert_eq!(third["result"]["content"][0]["text"], "2");
    // Past the limit: the fourth waits for request 2's place, then runs.
    c.send(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "slow", "arguments": {"ms": 10}}}))
        .await;
    c.send(json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "slow", "arguments": {"ms": 10}}}))
        .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let answer = c.recv().await;
        assert!(answer.get("error").is_none(), "{answer}");
        ids.push(answer["id"].as_i64().unwrap());
    }
    ids.sort();
    assert_eq!(ids, [2, 4, 5], "every request answered, none refused");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_rate_limited() {
    let mut c = Client::connect(server()).await;
    c.initialize("2025-11-25").await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "burst", "arguments": {"ms": 0}, "_meta": {"progressToken": 7}}}))
        .await;
    let mut notes = 0;
    let result = loop {
        let v = c.recv().await;
        if v["method"] == "notifications/progress" {
            notes += 1;
        } else {
            break v;
        }
    };
    let sent: usize = result["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(sent, notes);
    assert!(
        (1..=3).contains(&notes),
        "100 reports in a burst, {notes} sent"
    );
    c.close().await;
}
