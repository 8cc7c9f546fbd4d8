//! Per-request FIFO on every transport: everything a request produces (its
//! log and progress notifications, in the order the handler sent them)
//! reaches the client before its result. The handler interleaves 40 of
//! each, so a reordering anywhere (queue, stream routing, writer) shows.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod http_support;

use std::net::SocketAddr;
use std::time::Duration;

use arbor_mcp::model::LogLevel;
use arbor_mcp::{CallToolResult, McpServer, ServerConfig, Tool};
use arbor_transports::{start, TransportConfig};
use futures_util::{SinkExt, StreamExt};
use http_support::*;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const STEPS: u64 = 40;

fn server() -> McpServer {
    builder()
        .config(ServerConfig {
            progress_interval: Duration::ZERO,
            ..ServerConfig::default()
        })
        .tool_with_schema(
            Tool::new("chatty").description("Logs and reports progress, in turn, then answers"),
            |_args, ctx| async move {
                for step in 1..=STEPS {
                    ctx.log(LogLevel::Info, Some("chatty"), json!({ "step": step }));
                    ctx.progress(step as f64, Some(STEPS as f64), None);
                    if step % 10 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                Ok(CallToolResult::text("done"))
            },
        )
        .build()
        .unwrap()
}

/// Checks what arrived for request `id`: log, progress, log, progress, …
/// in step order, then the result, and nothing of it after.
fn in_order(messages: &[Value], id: &Value) {
    let mine: Vec<&Value> = messages
        .iter()
        .filter(|m| {
            m["id"] == *id
                || m["params"]["progressToken"] == "t"
                || m["params"]["logger"] == "chatty"
        })
        .collect();
    assert_eq!(mine.len() as u64, 2 * STEPS + 1, "{mine:?}");
    for (i, pair) in mine[..mine.len() - 1].chunks(2).enumerate() {
        let step = i as u64 + 1;
        assert_eq!(pair[0]["method"], "notifications/message", "{pair:?}");
        assert_eq!(pair[0]["params"]["data"]["step"], step, "{pair:?}");
        assert_eq!(pair[1]["method"], "notifications/progress", "{pair:?}");
        assert_eq!(pair[1]["params"]["progress"], step as f64, "{pair:?}");
    }
    let last = mine[mine.len() - 1];
    assert_eq!(last["id"], *id, "the result comes last: {last}");
    assert_eq!(last["result"]["content"][0]["text"], "done");
}

/// A 2026-07-28 call of `chatty` asking for logs and progress.
fn modern_chatty(id: u64) -> Value {
    let mut body = modern_request(
        json!(id),
        "tools/call",
        json!({"name": "chatty", "arguments": {}}),
    );
    body["params"]["_meta"]["progressToken"] = json!("t");
    body["params"]["_meta"]["io.modelcontextprotocol/logLevel"] = json!("info");
    body
}

/// A handshake-era call of `chatty` with a progress token.
fn handshake_chatty(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "chatty", "arguments": {}, "_meta": {"progressToken": "t"}}})
}

fn set_level(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "logging/setLevel", "params": {"level": "info"}})
}

/// Reads lines until the answer to `id`.
async fn lines_until(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    id: u64,
) -> Vec<Value> {
    let mut got = Vec::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
            .await
            .expect("a line within 5 s")
            .unwrap()
            .expect("open");
        let v: Value = serde_json::from_str(&line).unwrap();
        let done = v["id"] == id && v.get("method").is_none();
        got.push(v);
        if done {
            return got;
        }
    }
}

async fn started(
    config: TransportConfig,
) -> (
    arbor_supervision::SupervisorRef,
    arbor_transports::Endpoints,
) {
    start(server(), config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_in_both_eras() {
    let (tree, endpoints) = started(TransportConfig::default()).await;
    let addr: SocketAddr = endpoints.tcp.unwrap();
    // 2026-07-28.
    let (read, mut write) = TcpStream::connect(addr).await.unwrap().into_split();
    let mut lines = BufReader::new(read).lines();
    write
        .write_all(format!("{}\n", modern_chatty(1)).as_bytes())
        .await
        .unwrap();
    in_order(&lines_until(&mut lines, 1).await, &json!(1));
    // The handshake era, on another connection.
    let (read, mut write) = TcpStream::connect(addr).await.unwrap().into_split();
    let mut lines = BufReader::new(read).lines();
    for m in [
        initialize_request("2025-06-18"),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        set_level(1),
    ] {
        write.write_all(format!("{m}\n").as_bytes()).await.unwrap();
    }
    lines_until(&mut lines, 1).await;
    write
        .write_all(format!("{}\n", handshake_chatty(2)).as_bytes())
        .await
        .unwrap();
    in_order(&lines_until(&mut lines, 2).await, &json!(2));
    tree.shutdown().await;
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Reads frames until the answer to `id`.
async fn frames_until(ws: &mut Ws, id: u64) -> Vec<Value> {
    let mut got = Vec::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
        let done = v["id"] == id && v.get("method").is_none();
        got.push(v);
        if done {
            return got;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_in_both_eras() {
    let (tree, endpoints) = started(TransportConfig::default()).await;
    let url = format!("ws://{}/mcp", endpoints.ws.unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    ws.send(modern_chatty(1).to_string().into()).await.unwrap();
    in_order(&frames_until(&mut ws, 1).await, &json!(1));
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    for m in [
        initialize_request("2025-06-18"),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        set_level(1),
    ] {
        ws.send(m.to_string().into()).await.unwrap();
    }
    frames_until(&mut ws, 1).await;
    ws.send(handshake_chatty(2).to_string().into())
        .await
        .unwrap();
    in_order(&frames_until(&mut ws, 2).await, &json!(2));
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_2026_an_event_stream_ending_with_the_result() {
    let (tree, addr) = start_http(server(), Default::default()).await;
    let (head, conn) = open(
        addr,
        "POST",
        "/mcp",
        &post_headers(&[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "chatty"),
        ]),
        modern_chatty(1).to_string().as_bytes(),
    )
    .await;
    assert!(head.is_sse(), "{head:?}");
    let messages: Vec<Value> = conn
        .sse(&head)
        .rest()
        .await
        .iter()
        .map(Event::json)
        .collect();
    in_order(&messages, &json!(1));
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_handshake_the_posts_stream_ending_with_the_result() {
    let (tree, addr) = start_http(server(), Default::default()).await;
    let session = Session::ready(addr, "2025-06-18").await;
    assert_eq!(session.post(&set_level(1)).await.status(), 200);
    let messages: Vec<Value> = session
        .open_post(&handshake_chatty(2))
        .await
        .rest()
        .await
        .iter()
        .filter(|e| !e.is_priming())
        .map(Event::json)
        .collect();
    in_order(&messages, &json!(2));
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_sse_on_the_sessions_one_stream() {
    let (tree, addr) = start_http(server(), Default::default()).await;
    let (mut sse, path) = open_legacy(addr).await;
    let post = |body: Value| {
        let path = path.clone();
        async move { assert_eq!(post_legacy(addr, &path, &body).await.status(), 202) }
    };
    post(initialize_request("2024-11-05")).await;
    post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    post(set_level(1)).await;
    post(handshake_chatty(2)).await;
    let mut messages = Vec::new();
    while let Some((_, m)) = sse.message().await {
        let done = m["id"] == 2;
        messages.push(m);
        if done {
            break;
        }
    }
    in_order(&messages, &json!(2));
    tree.shutdown().await;
}
