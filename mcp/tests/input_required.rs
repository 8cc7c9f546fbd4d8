//! Handlers that need input from the client, written once: `input_required`
//! with sealed state in 2026-07-28, server-to-client requests in the
//! handshake era.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use arbor_mcp::ServerConfig;
use common::*;
use serde_json::{json, Value};

fn with_elicitation(mut params: Value) -> Value {
    params["_meta"]["io.modelcontextprotocol/clientCapabilities"] = json!({"elicitation": {}});
    params
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_input_required_round_trip_with_sealed_state() {
    let mut c = Client::connect(server()).await;
    let call = with_elicitation(modern(json!({"name": "confirm", "arguments": {"ms": 1}})));
    let first = c.call(1, "tools/call", call.clone()).await;
    let res = &first["result"];
    assert_eq!(res["resultType"], "input_required");
    assert_eq!(res["inputRequests"]["ok"]["method"], "elicitation/create");
    assert_eq!(res["inputRequests"]["ok"]["params"]["message"], "Proceed?");
    let state = res["requestState"].as_str().unwrap().to_string();

    let mut retry = call.clone();
    retry["inputResponses"] = json!({"ok": {"action": "accept", "content": {"go": true}}});
    retry["requestState"] = json!(state);
    let done = c.call(2, "tools/call", retry.clone()).await;
    assert_eq!(done["result"]["resultType"], "complete");
    assert_eq!(done["result"]["content"][0]["text"], "accept at step 1");

    // The same state again is a replay.
    let replay = c.call(3, "tools/call", retry.clone()).await;
    assert_eq!(replay["error"]["code"], -32602, "{replay}");

    // A tampered state, or one moved onto other arguments, is refused.
    let fresh = c.call(4, "tools/call", call.clone()).await["result"]["requestState"]
        .as_str()
        .unwrap()
        .to_string();
    let mut bytes = fresh.clone().into_bytes();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    let mut tampered = retry.clone();
    tampered["requestState"] = json!(String::from_utf8(bytes).unwrap());
    assert_eq!(
        c.call(5, "tools/call", tampered).await["error"]["code"],
        -32602
    );
    let mut moved = retry.clone();
    moved["requestState"] = json!(fresh);
    moved["arguments"] = json!({"ms": 2});
    let r = c.call(6, "tools/call", moved).await;
    assert_eq!(r["error"]["data"]["reason"], "issued for another request");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_input_needs_the_declared_capability() {
    let mut c = Client::connect(server()).await;
    let r = c
        .call(
            1,
            "tools/call",
            modern(json!({"name": "confirm", "arguments": {"ms": 1}})),
        )
        .await;
    assert_eq!(r["error"]["code"], -32021);
    assert_eq!(
        r["error"]["data"]["requiredCapabilities"],
        json!({"elicitation": {}})
    );
    // Answers to nothing asked are ignored: the call is served as usual.
    let orphan = c
        .call(
            2,
            "tools/call",
            modern(
                json!({"name": "add", "arguments": {"a": 1, "b": 1}, "inputResponses": {"x": 1}}),
            ),
        )
        .await;
    assert_eq!(orphan["result"]["content"][0]["text"], "2");
    c.close().await;
}

async fn initialize_with(c: &mut Client, caps: Value) {
    c.call(0, "initialize", json!({"protocolVersion": "2025-11-25", "capabilities": caps, "clientInfo": {"name": "t", "version": "1"}}))
        .await;
    c.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_input_goes_to_the_client_as_a_request() {
    let mut c = Client::connect(server()).await;
    initialize_with(&mut c, json!({"elicitation": {}})).await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "confirm", "arguments": {"ms": 1}}}))
        .await;
    let ask = c.recv().await;
    assert_eq!(ask["method"], "elicitation/create");
    assert_eq!(ask["params"]["message"], "Proceed?");
    c.send(json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "decline"}}))
        .await;
    let done = c.recv().await;
    assert_eq!(done["id"], 1);
    assert_eq!(done["result"]["content"][0]["text"], "decline at step 1");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_input_needs_the_negotiated_capability() {
    let mut c = Client::connect(server()).await;
    initialize_with(&mut c, json!({})).await;
    let r = c
        .call(
            1,
            "tools/call",
            json!({"name": "confirm", "arguments": {"ms": 1}}),
        )
        .await;
    assert_eq!(r["error"]["code"], -32602);
    assert_eq!(
        r["error"]["data"]["requiredCapabilities"],
        json!({"elicitation": {}})
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_requests_wait_for_initialized_and_time_out_with_a_cancel() {
    let mut c = Client::connect(server_with(ServerConfig {
        server_request_timeout: Duration::from_millis(150),
        ..ServerConfig::default()
    }))
    .await;
    c.call(0, "initialize", json!({"protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}}, "clientInfo": {"name": "t", "version": "1"}}))
        .await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "confirm", "arguments": {"ms": 1}}}))
        .await;
    assert!(
        c.silent_for(200).await,
        "nothing is sent to the client before it is initialized"
    );
    c.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    let ask = c.recv().await;
    assert_eq!(ask["method"], "elicitation/create");
    // No answer: the request is cancelled and the call fails.
    let cancel = c.recv().await;
    assert_eq!(cancel["method"], "notifications/cancelled");
    assert_eq!(cancel["params"]["requestId"], ask["id"]);
    let failed = c.recv().await;
    assert_eq!(failed["id"], 1);
    assert_eq!(failed["error"]["code"], -32001);
    // A late answer is ignored.
    c.send(json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept"}}))
        .await;
    assert_eq!(c.call(2, "ping", json!({})).await["result"], json!({}));
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elicitation_params_follow_the_session_version() {
    let mut c = Client::connect(server()).await;
    c.call(0, "initialize", json!({"protocolVersion": "2025-06-18", "capabilities": {"elicitation": {}}, "clientInfo": {"name": "t", "version": "1"}}))
        .await;
    c.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "confirm", "arguments": {"ms": 1}}}))
        .await;
    let ask = c.recv().await;
    assert_eq!(ask["method"], "elicitation/create");
    assert!(
        ask["params"].get("mode").is_none(),
        "2025-06-18 has no elicitation modes: {ask}"
    );
    assert!(ask["params"]["requestedSchema"].is_object());
    c.send(json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "cancel"}}))
        .await;
    assert_eq!(
        c.recv().await["result"]["content"][0]["text"],
        "cancel at step 1"
    );
    // URL mode does not exist before 2025-11-25.
    let url = c
        .call(
            2,
            "tools/call",
            json!({"name": "visit", "arguments": {"ms": 1}}),
        )
        .await;
    assert_eq!(
        url["error"]["data"]["requiredCapabilities"],
        json!({"elicitation": {"url": {}}})
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_mode_elicitation_needs_its_own_capability() {
    let mut c = Client::connect(server()).await;
    initialize_with(&mut c, json!({"elicitation": {"form": {}}})).await;
    let refused = c
        .call(
            1,
            "tools/call",
            json!({"name": "visit", "arguments": {"ms": 1}}),
        )
        .await;
    assert_eq!(
        refused["error"]["data"]["requiredCapabilities"],
        json!({"elicitation": {"url": {}}})
    );
    c.close().await;

    let mut c = Client::connect(server()).await;
    initialize_with(&mut c, json!({"elicitation": {"form": {}, "url": {}}})).await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "visit", "arguments": {"ms": 1}}}))
        .await;
    let ask = c.recv().await;
    assert_eq!(ask["params"]["mode"], "url");
    assert_eq!(ask["params"]["url"], "https://example.com/auth");
    assert_eq!(ask["params"]["elicitationId"], "e-1");
    c.send(json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept"}}))
        .await;
    assert_eq!(c.recv().await["result"]["content"][0]["text"], "accept");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_can_need_input_too_in_both_eras() {
    let mut c = Client::connect(server()).await;
    let mut call = modern(json!({"name": "pick"}));
    call["_meta"]["io.modelcontextprotocol/clientCapabilities"] = json!({"roots": {}});
    let first = c.call(1, "prompts/get", call.clone()).await;
    assert_eq!(first["result"]["resultType"], "input_required");
    assert_eq!(
        first["result"]["inputRequests"]["roots"]["method"],
        "roots/list"
    );
    call["requestState"] = first["result"]["requestState"].clone();
    call["inputResponses"] =
        json!({"roots": {"roots": [{"uri": "file:///a"}, {"uri": "file:///b"}]}});
    let done = c.call(2, "prompts/get", call).await;
    assert_eq!(done["result"]["messages"][0]["content"]["text"], "2 roots");
    c.close().await;

    let mut c = Client::connect(server()).await;
    initialize_with(&mut c, json!({"roots": {"listChanged": true}})).await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "prompts/get", "params": {"name": "pick"}}))
        .await;
    let ask = c.recv().await;
    assert_eq!(ask["method"], "roots/list");
    c.send(json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"roots": [{"uri": "file:///x"}]}}))
        .await;
    assert_eq!(
        c.recv().await["result"]["messages"][0]["content"]["text"],
        "1 roots"
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_in_both_eras() {
    let mut c = Client::connect(server()).await;
    let mut call = modern(json!({"name": "summarize", "arguments": {"ms": 1}}));
    call["_meta"]["io.modelcontextprotocol/clientCapabilities"] = json!({"sampling": {}});
    let first = c.call(1, "tools/call", call.clone()).await;
    let ask = &first["result"]["inputRequests"]["model"];
    assert_eq!(ask["method"], "sampling/createMessage");
    assert_eq!(ask["params"]["maxTokens"], 50);
    call["requestState"] = first["result"]["requestState"].clone();
    call["inputResponses"] = json!({"model": {"role": "assistant", "content": {"type": "text", "text": "short"}, "model": "m"}});
    assert_eq!(
        c.call(2, "tools/call", call).await["result"]["content"][0]["text"],
        "short"
    );
    c.close().await;

    let mut c = Client::connect(server()).await;
    initialize_with(&mut c, json!({"sampling": {}})).await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "summarize", "arguments": {"ms": 1}}}))
        .await;
    let ask = c.recv().await;
    assert_eq!(ask["method"], "sampling/createMessage");
    c.send(json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"role": "assistant", "content": {"type": "text", "text": "brief"}, "model": "m"}}))
        .await;
    assert_eq!(c.recv().await["result"]["content"][0]["text"], "brief");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_answer_gets_in_while_the_request_waiting_for_it_holds_the_inbound_budget() {
    let mut c = Client::connect(server_with(ServerConfig {
        max_inbound_bytes: 100 << 10,
        ..ServerConfig::default()
    }))
    .await;
    initialize_with(&mut c, json!({"elicitation": {}})).await;
    // Over the budget on its own: it takes all of it until answered.
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "confirm", "arguments": {"ms": 1},
        "_meta": {"pad": "p".repeat(200 << 10)}}}))
        .await;
    let ask = c.recv().await;
    assert_eq!(ask["method"], "elicitation/create");
    // A large answer too (an image in a sampling result, say): answers have
    // a budget of their own.
    c.send(json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept", "content": {"go": true},
        "_meta": {"pad": "a".repeat(150 << 10)}}}))
        .await;
    let done = c.recv().await;
    assert_eq!(done["id"], 1, "{done}");
    assert_eq!(done["result"]["content"][0]["text"], "accept at step 1");
    c.close().await;
}

/// A handler reads the client's answer typed (`ctx.input::<ElicitResult>`):
/// an answer that is not one reaches it as an error, not a guess.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_of_the_wrong_shape_reaches_the_handler_as_an_error() {
    let mut c = Client::connect(server()).await;
    let call = with_elicitation(modern(json!({"name": "confirm", "arguments": {"ms": 1}})));
    let first = c.call(1, "tools/call", call.clone()).await;
    let state = first["result"]["requestState"]
        .as_str()
        .unwrap()
        .to_string();
    let mut retry = call;
    retry["inputResponses"] = json!({"ok": {"action": "maybe"}});
    retry["requestState"] = json!(state);
    let done = c.call(2, "tools/call", retry).await;
    assert_eq!(done["result"]["isError"], true, "{done}");
    let text = done["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("not an elicitation result"), "{text}");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_the_client_past_their_rate_are_refused_before_it_sees_them() {
    let config = ServerConfig {
        rate_limits: arbor_mcp::rate::RateLimits {
            server_requests: arbor_mcp::rate::Rate::new(2, 1),
            ..arbor_mcp::rate::RateLimits::off()
        },
        ..ServerConfig::default()
    };
    let mut c = Client::connect(server_with(config)).await;
    c.call(0, "initialize", json!({"protocolVersion": "2025-06-18", "capabilities": {"elicitation": {}}, "clientInfo": {"name": "t", "version": "1"}}))
        .await;
    c.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    let confirm = |id: u64| json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "confirm", "arguments": {"ms": 1}}});
    c.send(confirm(1)).await;
    let ask = c.recv().await;
    assert_eq!(ask["method"], "elicitation/create");
    c.send(json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept", "content": {"go": true}}}))
        .await;
    assert_eq!(
        c.recv().await["result"]["content"][0]["text"],
        "accept at step 1"
    );
    // At once again: the client is not asked; the call says why.
    c.send(confirm(2)).await;
    let refused = c.recv().await;
    assert_eq!(
        refused["id"], 2,
        "no elicitation reached the client: {refused}"
    );
    assert_eq!(
        refused["error"]["code"],
        arbor_mcp::jsonrpc::code::RATE_LIMITED,
        "{refused}"
    );
    assert_eq!(refused["error"]["data"]["limit"], "server_requests");
    // Half a second later the bucket has room.
    tokio::time::sleep(Duration::from_millis(550)).await;
    c.send(confirm(3)).await;
    let ask = c.recv().await;
    assert_eq!(ask["method"], "elicitation/create");
    c.send(json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "cancel"}}))
        .await;
    assert_eq!(c.recv().await["id"], 3);
    c.close().await;
}
