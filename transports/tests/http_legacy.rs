//! The legacy HTTP+SSE transport (2024-11-05): `GET /sse` opens a session
//! whose first event names where to POST; every answer comes back on that
//! stream as a `message` event; the session ends with the stream.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod http_support;

use arbor_mcp::Tool;
use std::net::SocketAddr;
use std::time::Duration;

use arbor_supervision::SupervisorRef;
use arbor_transports::http::HttpConfig;
use http_support::*;
use serde_json::{json, Value};

async fn started() -> (SupervisorRef, SocketAddr) {
    start_http(builder().build().unwrap(), HttpConfig::default()).await
}

/// A legacy session through its handshake: its stream and POST path.
async fn ready_session(addr: SocketAddr) -> (Sse, String) {
    let (mut sse, path) = open_legacy(addr).await;
    post_legacy(addr, &path, &initialize()).await;
    assert_eq!(sse.next().await.unwrap().json()["id"], 1);
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    post_legacy(addr, &path, &initialized).await;
    (sse, path)
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "old", "version": "1"}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_event_names_the_message_endpoint() {
    let (tree, addr) = started().await;
    let (sse, path) = open_legacy(addr).await;
    let id = path
        .strip_prefix("/message?sessionId=")
        .unwrap_or_else(|| panic!("{path}"));
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let (other, other_path) = open_legacy(addr).await;
    assert_ne!(path, other_path, "each stream its own session");
    drop(sse);
    drop(other);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_message_is_202_and_answered_as_a_message_event() {
    let (tree, addr) = started().await;
    let (mut sse, path) = open_legacy(addr).await;
    let r = post_legacy(addr, &path, &initialize()).await;
    assert_eq!(r.status(), 202);
    let event = sse.next().await.unwrap();
    assert_eq!(event.event.as_deref(), Some("message"));
    let answer = event.json();
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"]["protocolVersion"], "2024-11-05");

    let r = post_legacy(
        addr,
        &path,
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(r.status(), 202);
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "old times"}}});
    assert_eq!(post_legacy(addr, &path, &call).await.status(), 202);
    let event = sse.next().await.unwrap();
    assert_eq!(event.event.as_deref(), Some("message"));
    assert_eq!(event.json()["result"]["content"][0]["text"], "old times");
    drop(sse);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_session_id_is_404() {
    let (tree, addr) = started().await;
    let r = post_legacy(
        addr,
        "/message?sessionId=00000000000000000000000000000000",
        &initialize(),
    )
    .await;
    assert_eq!(r.status(), 404);
    // And without one at all: 400.
    let r = post_legacy(addr, "/message", &initialize()).await;
    assert_eq!(r.status(), 400);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_stream_ends_the_session() {
    let (tree, addr) = started().await;
    let (sse, path) = open_legacy(addr).await;
    assert_eq!(post_legacy(addr, &path, &initialize()).await.status(), 202);
    drop(sse);
    eventually(Duration::from_secs(2), "the session has ended", || {
        let path = path.clone();
        async move { post_legacy(addr, &path, &initialize()).await.status() == 404 }
    })
    .await;
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn a_session_id_belongs_to_its_transport() {
    let (tree, addr) = started().await;
    // A legacy session's id on the Streamable HTTP endpoint.
    let (sse, path) = open_legacy(addr).await;
    let id = path.strip_prefix("/message?sessionId=").unwrap();
    let (head, conn) = open(
        addr,
        "POST",
        "/mcp",
        &post_headers(&[("Mcp-Session-Id", id)]),
        initialize().to_string().as_bytes(),
    )
    .await;
    if head.status == 200 {
        let mut sse = conn.sse(&head);
        let first = sse.block_within(Duration::from_secs(1)).await;
        panic!("served as a Streamable HTTP session: {head:?}, first event {first:?}");
    }
    assert_eq!(head.status, 404, "{head:?}");
    // A Streamable HTTP session's id on the legacy endpoint.
    let session = Session::ready(addr, "2025-11-25").await;
    let r = post_legacy(
        addr,
        &format!("/message?sessionId={}", session.id),
        &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}),
    )
    .await;
    assert_eq!(r.status(), 404);
    drop(sse);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_too_slow_for_its_stream_loses_its_session_not_silently_its_messages() {
    let server = builder()
        .tool_with_schema(
            Tool::new("big")
                .description("256 KiB of text")
                .input_schema(json!({"type": "object"})),
            |_args, _ctx| async move { Ok(arbor_mcp::CallToolResult::text("x".repeat(256 << 10))) },
        )
        .build()
        .unwrap();
    let config = HttpConfig {
        stream_buffer: 4,
        ..HttpConfig::default()
    };
    let (tree, addr) = start_http(server, config).await;
    // The stream is opened, then never read again.
    let (_sse, path) = open_legacy(addr).await;
    assert_eq!(post_legacy(addr, &path, &initialize()).await.status(), 202);
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(post_legacy(addr, &path, &initialized).await.status(), 202);
    let mut gone = false;
    for id in 2..200 {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "big", "arguments": {}}});
        if post_legacy(addr, &path, &call).await.status() == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        gone,
        "a POST after the overflow is refused: the session has ended"
    );
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_at_shutdown_is_answered_before_the_stream_ends() {
    let (tree, addr) = started().await;
    let (mut sse, path) = ready_session(addr).await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "nap", "arguments": {}}});
    assert_eq!(post_legacy(addr, &path, &call).await.status(), 202);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopping = tokio::spawn(async move { tree.shutdown().await });
    let answer = sse.next().await.expect("the answer, not the end").json();
    assert_eq!(answer["id"], 2, "{answer}");
    assert_eq!(answer["result"]["content"][0]["text"], "rested");
    assert!(sse.next().await.is_none(), "then the stream ends");
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_past_the_sessions_inbound_budget_is_429_until_there_is_room() {
    let (tree, addr) = start_http(small_budget_server(), HttpConfig::default()).await;
    let (mut sse, path) = ready_session(addr).await;
    // Each over the whole budget: the second finds none left while the
    // first runs.
    let call = |id: u64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "nap", "arguments": {}, "_meta": {"pad": "p".repeat(200 << 10)}}})
    };
    assert_eq!(post_legacy(addr, &path, &call(2)).await.status(), 202);
    let refused = post_legacy(addr, &path, &call(3)).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.head.get("retry-after"), Some("1"));
    assert_eq!(
        refused.json()["error"]["data"]["limit"],
        "max_inbound_bytes"
    );
    // Small messages still pass.
    let ping = json!({"jsonrpc": "2.0", "id": 4, "method": "ping"});
    assert_eq!(post_legacy(addr, &path, &ping).await.status(), 202);
    let mut answered = Vec::new();
    while answered.len() < 2 {
        answered.push(sse.next().await.unwrap().json()["id"].clone());
    }
    assert_eq!(answered, [json!(4), json!(2)]);
    // Answered: room again.
    assert_eq!(post_legacy(addr, &path, &call(5)).await.status(), 202);
    assert_eq!(sse.next().await.unwrap().json()["id"], 5);
    tree.shutdown().await;
}
