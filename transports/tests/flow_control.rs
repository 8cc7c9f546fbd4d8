//! Flow control end to end: the disconnect policy drops a client that does
//! not read; idle connections are closed after the idle timeout, active ones
//! not. (What a client that never reads costs is measured alone, in
//! `backpressure_memory.rs`: RSS is per process.)
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use arbor_mcp::Tool;
use std::time::{Duration, Instant};

use arbor_mcp::outbox::{OutboxConfig, OverflowPolicy};
use arbor_mcp::server::ServerConfig;
use arbor_mcp::{CallToolResult, McpServer, ServerBuilder};
use arbor_transports::{start, TcpConfig, TransportConfig, WsConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// Bytes of one `big` answer.
const ANSWER: usize = 256 << 10;

fn server(outbox: OutboxConfig) -> McpServer {
    server_with(ServerConfig {
        outbox,
        ..Default::default()
    })
}

/// The test tools (`big`, `nap`) under `config`.
fn server_with(config: ServerConfig) -> McpServer {
    ServerBuilder::new("flow", "1")
        .config(config)
        .tool(
            Tool::new("big").description("A large answer"),
            |(), _ctx| async move { Ok(CallToolResult::text("x".repeat(ANSWER))) },
        )
        .tool(
            Tool::new("nap").description("Says nothing for 800 ms"),
            |(), _ctx| async move {
                tokio::time::sleep(Duration::from_millis(800)).await;
                Ok(CallToolResult::text("rested"))
            },
        )
        .build()
        .unwrap()
}

/// A 2026-07-28 call of `nap`.
fn nap_call() -> String {
    json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "nap", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}})
    .to_string()
}

/// A call for a `big` answer, padded to 8 KiB so that what the kernel
/// buffers between client and server is soon full.
fn big_call(id: usize) -> String {
    format!(
        "{}\n",
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "big", "arguments": {},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
                "pad": "p".repeat(8 << 10)}}})
    )
}

/// Writes requests until the server stops taking them (or `max` are
/// written), never reading; returns how many went.
async fn flood(stream: &mut TcpStream, max: usize) -> usize {
    for id in 0..max {
        let line = big_call(id);
        match tokio::time::timeout(
            Duration::from_millis(500),
            stream.write_all(line.as_bytes()),
        )
        .await
        {
            Ok(Ok(())) => {}
            _ => return id,
        }
    }
    max
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disconnect_policy_drops_a_client_that_does_not_read() {
    let outbox = OutboxConfig {
        max_messages: 4,
        max_bytes: 1 << 20,
        policy: OverflowPolicy::Disconnect,
    };
    let (tree, endpoints) = start(server(outbox), TransportConfig::default())
        .await
        .unwrap();
    let mut stream = TcpStream::connect(endpoints.tcp.unwrap()).await.unwrap();
    flood(&mut stream, 200).await;
    // Not reading until the server lets the connection go: a client that
    // read right away under load could keep up, and would rightly be kept.
    let deadline = Instant::now() + Duration::from_secs(10);
    while tcp_connections(&tree).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the server kept the slow client connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Reading now: what was written before the server gave up, then EOF
    // (or a reset) instead of the 200 answers.
    let mut received = 0usize;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received += n,
            Err(_) => panic!("the connection let go was not closed"),
        }
    }
    assert!(
        received < 200 * ANSWER,
        "the client got every answer ({received} bytes): it was not dropped"
    );
    tree.shutdown().await;
}

/// The TCP connections the server holds now.
async fn tcp_connections(tree: &arbor_supervision::SupervisorRef) -> usize {
    arbor_transports::held(tree)
        .await
        .unwrap()
        .into_iter()
        .find(|h| h.transport == "tcp" && h.what == "connections")
        .map_or(0, |h| h.active)
}

/// A WebSocket client speaking the `mcp` subprotocol.
async fn connect_ws(
    addr: std::net::SocketAddr,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{addr}/mcp"
        ))
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "mcp".parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// The test server with an idle timeout of `ms`.
async fn started_idle(
    ms: u64,
) -> (
    arbor_supervision::SupervisorRef,
    arbor_transports::Endpoints,
) {
    start(
        server(OutboxConfig::default()),
        idle_config(Duration::from_millis(ms)),
    )
    .await
    .unwrap()
}

fn idle_config(idle: Duration) -> TransportConfig {
    TransportConfig {
        tcp: Some(TcpConfig {
            idle_timeout: idle,
            ..TcpConfig::default()
        }),
        ws: Some(WsConfig {
            idle_timeout: idle,
            ..WsConfig::default()
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_tcp_connection_is_closed_and_an_active_one_is_not() {
    let (tree, endpoints) = started_idle(400).await;
    let mut active = TcpStream::connect(endpoints.tcp.unwrap()).await.unwrap();
    let mut idle = TcpStream::connect(endpoints.tcp.unwrap()).await.unwrap();
    let ping = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}
"#;
    let mut buf = vec![0u8; 4096];
    // Active: a message every 150 ms for 1.2 s, each answered.
    for _ in 0..8 {
        active.write_all(ping).await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(2), active.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the active connection was closed");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // Idle since connect: closed by now.
    let n = tokio::time::timeout(Duration::from_secs(2), idle.read(&mut buf))
        .await
        .expect("closed, not still open")
        .unwrap_or(0);
    assert_eq!(n, 0, "the idle connection was closed");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_request_longer_than_the_idle_timeout_is_answered_over_tcp() {
    let (tree, endpoints) = started_idle(300).await;
    let mut stream = TcpStream::connect(endpoints.tcp.unwrap()).await.unwrap();
    stream
        .write_all(format!("{}\n", nap_call()).as_bytes())
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    while !got.ends_with(b"\n") {
        let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed while its request was running");
        got.extend_from_slice(&buf[..n]);
    }
    let answer: serde_json::Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(answer["result"]["content"][0]["text"], "rested", "{answer}");
    // Idle again once answered: closed.
    let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf))
        .await
        .expect("closed once idle")
        .unwrap_or(0);
    assert_eq!(n, 0);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_request_longer_than_the_idle_timeout_is_answered_over_websocket() {
    let (tree, endpoints) = started_idle(300).await;
    let mut ws = connect_ws(endpoints.ws.unwrap()).await;
    ws.send(Message::Text(nap_call().into())).await.unwrap();
    let answer = match tokio::time::timeout(Duration::from_secs(3), ws.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => {
            serde_json::from_str::<serde_json::Value>(&text).unwrap()
        }
        other => panic!("expected the answer, got {other:?}"),
    };
    assert_eq!(answer["result"]["content"][0]["text"], "rested", "{answer}");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_websocket_is_closed_with_1001() {
    let (tree, endpoints) = started_idle(300).await;
    let mut ws = connect_ws(endpoints.ws.unwrap()).await;
    let started = Instant::now();
    ws.send(Message::Text(
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.into(),
    ))
    .await
    .unwrap();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(3), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert!(started.elapsed() >= Duration::from_millis(300));
    let close = close.expect("a close frame with a code");
    assert_eq!(u16::from(close.code), 1001);
    assert_eq!(close.reason.as_str(), "idle timeout");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stalled_past_the_idle_timeout_is_let_go() {
    let server = ServerBuilder::new("flow", "1")
        .config(ServerConfig {
            outbox: OutboxConfig {
                max_messages: 4,
                max_bytes: 1 << 20,
                policy: OverflowPolicy::Wait,
            },
            // The drain after the idle close is bounded by it.
            request_timeout: Duration::from_secs(1),
            ..Default::default()
        })
        .tool(
            Tool::new("big").description("A large answer"),
            |(), _ctx| async move { Ok(CallToolResult::text("x".repeat(ANSWER))) },
        )
        .build()
        .unwrap();
    let (tree, endpoints) = start(server, idle_config(Duration::from_millis(300)))
        .await
        .unwrap();
    let mut stream = TcpStream::connect(endpoints.tcp.unwrap()).await.unwrap();
    let sent = flood(&mut stream, 2000).await;
    assert!(sent < 2000, "backpressure reached the client");
    // Stalled both ways now, and never read: after the idle timeout and
    // the drain, the connection's session process is gone.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let sessions = arbor_supervision::descendants(&tree)
            .await
            .unwrap()
            .iter()
            .filter(|d| {
                d.path.contains("tcp-connections/")
                    && d.path
                        .rsplit('/')
                        .next()
                        .is_some_and(|l| l.starts_with("session-"))
            })
            .count();
        if sessions == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stalled connection is still served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(stream);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_budget_held_by_working_handlers_is_not_idle() {
    let server = server_with(ServerConfig {
        max_inbound_bytes: 70 << 10,
        ..Default::default()
    });
    let (tree, endpoints) = start(server, idle_config(Duration::from_millis(300)))
        .await
        .unwrap();
    let mut stream = TcpStream::connect(endpoints.tcp.unwrap()).await.unwrap();
    // Each holds the budget alone: the second waits for the first's answer.
    for id in 1..=2 {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "nap", "arguments": {},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
                "pad": "p".repeat(66 << 10)}}});
        stream
            .write_all(format!("{call}\n").as_bytes())
            .await
            .unwrap();
    }
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    while got.iter().filter(|&&b| b == b'\n').count() < 2 {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed as idle while its handlers were at work");
        got.extend_from_slice(&buf[..n]);
    }
    tree.shutdown().await;
}
