//! WebSocket end to end: both eras, subprotocol negotiation, frame rules,
//! size limits at their edge, keep-alive, close, and supervision of the
//! listener.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use arbor_mcp::Tool;
use std::net::SocketAddr;
use std::time::Duration;

use arbor_mcp::jsonrpc::Limits;
use arbor_mcp::{CallToolResult, McpServer, ServerBuilder, ServerConfig};
use arbor_supervision::kill_path;
use arbor_transports::{start, OriginPolicy, TransportConfig, WsConfig};
use futures_util::{SinkExt, StreamExt};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

#[derive(Deserialize, JsonSchema)]
struct Echo {
    text: String,
}

fn builder() -> ServerBuilder {
    ServerBuilder::new("ws-test", "1").tool(
        Tool::new("echo").description("Echoes"),
        |a: Echo, _ctx| async move { Ok(CallToolResult::text(a.text)) },
    )
}

fn server() -> McpServer {
    builder().build().unwrap()
}

fn server_with(config: ServerConfig) -> McpServer {
    builder().config(config).build().unwrap()
}

fn meta() -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}})
}

fn discover(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "server/discover", "params": {"_meta": meta()}})
}

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Handshake = tokio_tungstenite::tungstenite::handshake::client::Response;

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/mcp")
}

/// Connects offering `protocols` (none when empty).
async fn connect_offering(
    addr: SocketAddr,
    protocols: &str,
) -> Result<(Client, Handshake), WsError> {
    let mut request = url(addr).into_client_request().unwrap();
    if !protocols.is_empty() {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocols.parse().unwrap());
    }
    connect_async(request).await
}

async fn connect(addr: SocketAddr) -> Client {
    connect_offering(addr, "mcp").await.unwrap().0
}

async fn send(c: &mut Client, v: Value) {
    c.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next frame within 5 s.
async fn next(c: &mut Client) -> Option<Message> {
    tokio::time::timeout(Duration::from_secs(5), c.next())
        .await
        .expect("a frame within 5 s")
        .map(|r| r.unwrap())
}

/// The next JSON message, skipping control frames.
async fn recv(c: &mut Client) -> Value {
    loop {
        match next(c).await {
            Some(Message::Text(t)) => return serde_json::from_str(&t).unwrap(),
            Some(Message::Ping(_) | Message::Pong(_)) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// The close frame's code, skipping anything before it.
async fn close_code(c: &mut Client) -> CloseCode {
    loop {
        match next(c).await {
            Some(Message::Close(Some(frame))) => return frame.code,
            Some(Message::Close(None)) => panic!("a close without a code"),
            None => panic!("the connection ended without a close frame"),
            Some(_) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_eras_over_websocket() {
    let (tree, endpoints) = start(server(), TransportConfig::default()).await.unwrap();
    let urls = endpoints.urls();
    assert!(urls.contains(&format!("ws://{}/mcp", endpoints.ws.unwrap())));
    assert!(endpoints.ws.unwrap().ip().is_loopback());

    let mut modern = connect(endpoints.ws.unwrap()).await;
    send(&mut modern, json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}, "_meta": meta()}}))
        .await;
    let r = recv(&mut modern).await;
    assert_eq!(r["result"]["content"][0]["text"], "hi");
    assert_eq!(r["result"]["resultType"], "complete");

    let mut old = connect(endpoints.ws.unwrap()).await;
    send(&mut old, json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
        .await;
    assert_eq!(
        recv(&mut old).await["result"]["protocolVersion"],
        "2025-06-18"
    );
    send(
        &mut old,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    send(&mut old, json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "yo"}}}))
        .await;
    assert_eq!(recv(&mut old).await["result"]["content"][0]["text"], "yo");

    // Each connection is a session under the WebSocket connection supervisor.
    let counts = arbor_supervision::descendants(&tree).await.unwrap();
    let sessions: Vec<_> = counts
        .iter()
        .filter(|d| d.path.contains("/ws-session-"))
        .collect();
    assert_eq!(sessions.len(), 2);
    assert!(sessions.iter().all(|d| d.path.contains("ws-connections")));
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tree_orders_connection_supervisors_before_listeners() {
    let (tree, _) = start(server(), TransportConfig::default()).await.unwrap();
    let ids: Vec<String> = tree
        .which_children()
        .await
        .unwrap()
        .iter()
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(
        ids,
        [
            "connections",
            "tcp-listener",
            "ws-listener",
            "http-listener",
            // Last under rest_for_one: its restart restarts nothing else.
            "resource-guard",
        ]
    );
    let paths: Vec<String> = arbor_supervision::descendants(&tree)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.kind == arbor_supervision::ChildKind::Supervisor)
        .map(|d| d.path)
        .filter(|p| !p.contains("shard-"))
        .collect();
    assert_eq!(
        paths,
        [
            "connections",
            "connections/tcp-connections",
            "connections/ws-connections",
            "connections/http",
            "connections/http/http-sessions",
            "connections/http/http-requests",
            "connections/http/http-connections",
        ]
    );
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_subprotocol_is_negotiated() {
    let (tree, endpoints) = start(server(), TransportConfig::default()).await.unwrap();

    // Offered: answered with `mcp`, also from a list.
    for offer in ["mcp", "other, mcp"] {
        let (mut c, response) = connect_offering(endpoints.ws.unwrap(), offer)
            .await
            .unwrap();
        assert_eq!(response.headers()["sec-websocket-protocol"], "mcp");
        send(&mut c, discover(1)).await;
        assert_eq!(recv(&mut c).await["id"], 1);
    }

    // Not offered at all: served, without a subprotocol.
    let (mut c, response) = connect_offering(endpoints.ws.unwrap(), "").await.unwrap();
    assert!(response.headers().get("sec-websocket-protocol").is_none());
    send(&mut c, discover(2)).await;
    assert_eq!(recv(&mut c).await["id"], 2);

    // Only others offered: refused.
    match connect_offering(endpoints.ws.unwrap(), "other").await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 400),
        other => panic!("expected HTTP 400, got {other:?}"),
    }
    // With a body saying why (read raw, to have all of it).
    let refusal = raw_handshake(endpoints.ws.unwrap(), "/mcp", Some("other")).await;
    assert!(refusal.starts_with("HTTP/1.1 400"), "{refusal}");
    assert!(refusal.contains("this server speaks `mcp`"), "{refusal}");

    // Another path: 404.
    let elsewhere = raw_handshake(endpoints.ws.unwrap(), "/", Some("mcp")).await;
    assert!(elsewhere.starts_with("HTTP/1.1 404"), "{elsewhere}");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_frame_is_closed_with_1003() {
    let (tree, endpoints) = start(server(), TransportConfig::default()).await.unwrap();
    let mut c = connect(endpoints.ws.unwrap()).await;
    c.send(Message::Binary(discover(1).to_string().into_bytes().into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut c).await, CloseCode::Unsupported);
    tree.shutdown().await;
}

/// A `tools/call` of `echo` exactly `len` bytes long.
fn echo_of_len(len: usize) -> String {
    let base = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": ""}, "_meta": meta()}}).to_string();
    let text = "a".repeat(len - base.len());
    let msg = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": text}, "_meta": meta()}}).to_string();
    assert_eq!(msg.len(), len);
    msg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_limit_holds_at_its_edge() {
    const MAX: usize = 1024;
    let config = ServerConfig {
        limits: Limits {
            max_message_bytes: MAX,
            ..Limits::default()
        },
        ..ServerConfig::default()
    };
    let (tree, endpoints) = start(server_with(config), TransportConfig::default())
        .await
        .unwrap();

    let mut c = connect(endpoints.ws.unwrap()).await;
    c.send(Message::Text(echo_of_len(MAX).into()))
        .await
        .unwrap();
    let r = recv(&mut c).await;
    assert_eq!(r["id"], 7);
    assert!(r["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("aaaa"));

    c.send(Message::Text(echo_of_len(MAX + 1).into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut c).await, CloseCode::Size);

    // The same in fragments: the whole message counts, not each frame.
    let mut f = connect(endpoints.ws.unwrap()).await;
    let big = echo_of_len(MAX + 1);
    let (head, tail) = big.split_at(MAX / 2);
    use tokio_tungstenite::tungstenite::protocol::frame::{coding::Data, coding::OpCode, Frame};
    let first = Frame::message(head.as_bytes().to_vec(), OpCode::Data(Data::Text), false);
    let rest = Frame::message(tail.as_bytes().to_vec(), OpCode::Data(Data::Continue), true);
    f.send(Message::Frame(first)).await.unwrap();
    f.send(Message::Frame(rest)).await.unwrap();
    assert_eq!(close_code(&mut f).await, CloseCode::Size);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_ping_gets_a_pong() {
    let (tree, endpoints) = start(server(), TransportConfig::default()).await.unwrap();
    let mut c = connect(endpoints.ws.unwrap()).await;
    c.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    match next(&mut c).await {
        Some(Message::Pong(data)) => assert_eq!(&data[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
    tree.shutdown().await;
}

fn keepalive_config() -> TransportConfig {
    TransportConfig {
        ws: Some(WsConfig {
            ping_interval: Duration::from_millis(100),
            pong_timeout: Duration::from_millis(200),
            ..WsConfig::default()
        }),
        ..TransportConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_with_1011() {
    let (tree, endpoints) = start(server(), keepalive_config()).await.unwrap();

    // A client that keeps reading answers the pings and stays.
    let mut reading = connect(endpoints.ws.unwrap()).await;
    let quiet = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(800);
        let mut pings = 0;
        while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, reading.next()).await {
            if matches!(m, Message::Ping(_)) {
                pings += 1;
            }
        }
        (reading, pings)
    });

    // One that stops reading cannot answer them.
    let mut deaf = connect(endpoints.ws.unwrap()).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut pings = 0;
    let code = loop {
        match next(&mut deaf).await {
            Some(Message::Ping(_)) => pings += 1,
            Some(Message::Close(Some(frame))) => break frame.code,
            other => panic!("expected pings then a close, got {other:?}"),
        }
    };
    assert_eq!(code, CloseCode::Error);
    assert!(pings >= 1);

    let (mut reading, heard) = quiet.await.unwrap();
    assert!(heard >= 3, "pinged every 100 ms of silence, got {heard}");
    send(&mut reading, discover(1)).await;
    assert_eq!(recv(&mut reading).await["id"], 1);
    tree.shutdown().await;
}

/// Sends an opening handshake by hand and returns the answer's head (and
/// its body, if the server closes after it).
async fn raw_handshake(addr: SocketAddr, path: &str, protocol: Option<&str>) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    raw_upgrade(&mut s, path, protocol).await;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

async fn raw_upgrade(s: &mut TcpStream, path: &str, protocol: Option<&str>) {
    let protocol = protocol
        .map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{protocol}\r\n"
    );
    s.write_all(request.as_bytes()).await.unwrap();
}

/// Reads a 101 answer's head and returns what came after it.
async fn read_head(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed during the handshake");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            assert!(buf.starts_with(b"HTTP/1.1 101"));
            return buf.split_off(end + 4);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_answers_pings_is_closed() {
    let (tree, endpoints) = start(server(), keepalive_config()).await.unwrap();
    let mut s = TcpStream::connect(endpoints.ws.unwrap()).await.unwrap();
    raw_upgrade(&mut s, "/mcp", Some("mcp")).await;
    let mut frames = read_head(&mut s).await;
    // Everything until the server hangs up, which it must do by itself.
    tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut frames))
        .await
        .expect("closed within 3 s")
        .unwrap();
    // An unmasked ping with no payload, then a close with 1011 (0x03f3).
    assert_eq!(&frames[..2], &[0x89, 0x00]);
    let close = frames
        .windows(2)
        .position(|w| w[0] == 0x88)
        .expect("a close frame");
    assert_eq!(&frames[close + 2..close + 4], &[0x03, 0xf3]);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_close_is_answered_and_the_session_ends() {
    let (tree, endpoints) = start(server(), TransportConfig::default()).await.unwrap();
    let mut c = connect(endpoints.ws.unwrap()).await;
    send(&mut c, discover(1)).await;
    assert_eq!(recv(&mut c).await["id"], 1);
    assert_eq!(ws_sessions(&tree).await, 1);

    c.close(None).await.unwrap();
    // The answer to our close, then the end of the connection.
    loop {
        match next(&mut c).await {
            Some(Message::Close(_)) => continue,
            None => break,
            other => panic!("expected the close handshake, got {other:?}"),
        }
    }
    wait_for_sessions(&tree, 0).await;
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_ends_closes_with_1000() {
    // A handshake-era session that never sends `initialized` ends at its
    // initialization deadline.
    let config = ServerConfig {
        init_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let (tree, endpoints) = start(server_with(config), TransportConfig::default())
        .await
        .unwrap();
    let mut c = connect(endpoints.ws.unwrap()).await;
    send(&mut c, json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
        .await;
    assert_eq!(recv(&mut c).await["id"], 1);
    assert_eq!(close_code(&mut c).await, CloseCode::Normal);
    wait_for_sessions(&tree, 0).await;
    tree.shutdown().await;
}

async fn ws_sessions(tree: &arbor_supervision::SupervisorRef) -> usize {
    arbor_supervision::descendants(tree)
        .await
        .unwrap()
        .iter()
        .filter(|d| d.path.contains("/ws-session-"))
        .count()
}

async fn wait_for_sessions(tree: &arbor_supervision::SupervisorRef, n: usize) {
    for _ in 0..500 {
        if ws_sessions(tree).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {n} websocket sessions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listener_comes_back_on_the_same_port_and_connections_stay() {
    let (tree, endpoints) = start(server(), TransportConfig::default()).await.unwrap();
    let mut c = connect(endpoints.ws.unwrap()).await;
    send(&mut c, discover(1)).await;
    recv(&mut c).await;

    let killed = kill_path(&tree, "ws-listener").await.unwrap();
    back_under_new_pid(&killed.pid, &tree).await;

    // The open connection still answers.
    send(&mut c, discover(2)).await;
    assert_eq!(recv(&mut c).await["id"], 2);
    // And the restarted listener accepts on the same address.
    let mut again = connect(endpoints.ws.unwrap()).await;
    send(&mut again, discover(3)).await;
    assert_eq!(recv(&mut again).await["id"], 3);
    tree.shutdown().await;
}

/// Waits until the WebSocket listener runs again under a new pid.
async fn back_under_new_pid(old: &arbor_runtime::Pid, tree: &arbor_supervision::SupervisorRef) {
    for _ in 0..500 {
        let kids = tree.which_children().await.unwrap();
        if kids
            .iter()
            .any(|c| &*c.id == "ws-listener" && c.process.as_ref().is_some_and(|p| p.pid() != *old))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the listener did not come back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_websocket_share_the_connection_limit() {
    let config = TransportConfig {
        max_connections: Some(2),
        ..TransportConfig::default()
    };
    let (tree, endpoints) = start(server(), config).await.unwrap();
    let mut ws = connect(endpoints.ws.unwrap()).await;
    send(&mut ws, discover(1)).await;
    assert_eq!(recv(&mut ws).await["id"], 1);
    let mut tcp = TcpStream::connect(endpoints.tcp.unwrap()).await.unwrap();
    tcp.write_all(format!("{}\n", discover(2)).as_bytes())
        .await
        .unwrap();
    let mut line = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut line))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&line[..n]).contains("\"id\":2"));

    // Both places taken: a third WebSocket client gets a 503.
    match connect_offering(endpoints.ws.unwrap(), "mcp").await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected HTTP 503, got {other:?}"),
    }
    let refusal = raw_handshake(endpoints.ws.unwrap(), "/mcp", Some("mcp")).await;
    assert!(refusal.contains("max_connections = 2"), "{refusal}");

    // One leaves: there is room again.
    drop(tcp);
    let mut served = false;
    for _ in 0..200 {
        if let Ok((mut c, _)) = connect_offering(endpoints.ws.unwrap(), "mcp").await {
            send(&mut c, discover(3)).await;
            served = recv(&mut c).await["id"] == 3;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(served);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_not_finished_within_its_timeout_is_dropped_and_frees_its_place() {
    let config = TransportConfig {
        max_connections: Some(1),
        ws: Some(WsConfig {
            handshake_timeout: Duration::from_millis(300),
            ..WsConfig::default()
        }),
        ..TransportConfig::default()
    };
    let (tree, endpoints) = start(server(), config).await.unwrap();
    // Connected, but no upgrade request: it holds the only place.
    let mut silent = TcpStream::connect(endpoints.ws.unwrap()).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(3), silent.read(&mut buf))
        .await
        .expect("dropped, not kept")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    // Its place is free again.
    let mut served = false;
    for _ in 0..100 {
        if let Ok((mut c, _)) = connect_offering(endpoints.ws.unwrap(), "mcp").await {
            send(&mut c, discover(1)).await;
            served = recv(&mut c).await["id"] == 1;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(served);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_answered_in_full_under_backpressure() {
    const N: u64 = 5000;
    let (tree, endpoints) = start(server(), TransportConfig::default()).await.unwrap();
    let (mut write, mut read) = connect(endpoints.ws.unwrap()).await.split();
    // More than the session's mailbox holds, sent without waiting: reading
    // stops while it is full, and nothing is lost.
    let sending = tokio::spawn(async move {
        for id in 0..N {
            write
                .feed(Message::Text(discover(id).to_string().into()))
                .await
                .unwrap();
        }
        write.flush().await.unwrap();
        write
    });
    let mut ids = Vec::new();
    while ids.len() < N as usize {
        let frame = tokio::time::timeout(Duration::from_secs(30), read.next())
            .await
            .expect("answers keep coming")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = frame {
            let v: Value = serde_json::from_str(&t).unwrap();
            ids.push(v["id"].as_u64().unwrap());
        }
    }
    ids.sort_unstable();
    assert_eq!(ids, (0..N).collect::<Vec<_>>());
    let _write = sending.await.unwrap();
    tree.shutdown().await;
}

/// The first line of the answer to an upgrade request with these `Host`
/// and extra headers.
async fn upgrade_status(addr: SocketAddr, host: &str, extra: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /mcp HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: mcp\r\n{extra}\r\n"
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.lines().next().unwrap_or_default().to_string()
}

/// A web page's script can open a WebSocket to loopback (CORS does not
/// apply): Host and Origin are checked as over HTTP, before the upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_from_a_foreign_origin_or_host_is_refused_with_403() {
    let (tree, endpoints) = start(server(), TransportConfig::default()).await.unwrap();
    assert_upgrades(
        endpoints.ws.unwrap(),
        &[
            ("localhost", "", "101"),
            ("127.0.0.1:9", "Origin: http://localhost:5173\r\n", "101"),
            ("localhost", "Origin: http://evil.example\r\n", "403"),
            ("localhost", "Origin: null\r\n", "403"),
            ("evil.example", "", "403"),
            ("evil.example:80", "Origin: http://evil.example\r\n", "403"),
        ],
    )
    .await;
    tree.shutdown().await;
}

/// Asserts the status each upgrade request (`Host`, extra headers) gets.
async fn assert_upgrades(addr: SocketAddr, cases: &[(&str, &str, &str)]) {
    for (host, extra, status) in cases {
        let line = upgrade_status(addr, host, extra).await;
        assert!(
            line.starts_with(&format!("HTTP/1.1 {status}")),
            "Host {host}, {extra:?}: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_listener_follows_the_configured_origin_policy() {
    let origins = OriginPolicy {
        allowed_hosts: vec!["mcp.example".into()],
        allowed_origins: vec!["https://app.example".into()],
    };
    let config = TransportConfig {
        origins,
        ..TransportConfig::default()
    };
    let (tree, endpoints) = start(server(), config).await.unwrap();
    assert_upgrades(
        endpoints.ws.unwrap(),
        &[
            ("mcp.example:443", "", "101"),
            ("mcp.example", "Origin: https://app.example\r\n", "101"),
            ("localhost", "", "403"),
            ("mcp.example", "Origin: http://localhost:3000\r\n", "403"),
        ],
    )
    .await;
    tree.shutdown().await;
}

/// As over TCP: frames sent without waiting are read as the session has
/// room for them, so every request is answered, none refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_get_backpressure_not_errors() {
    let config = ServerConfig {
        max_in_flight: 2,
        ..Default::default()
    };
    let (tree, endpoints) = start(server_with(config), TransportConfig::default())
        .await
        .unwrap();
    let mut c = connect(endpoints.ws.unwrap()).await;
    let count = 100;
    for id in 0..count {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "x"}, "_meta": meta()}});
        c.feed(Message::Text(call.to_string().into()))
            .await
            .unwrap();
    }
    c.flush().await.unwrap();
    let mut answered = std::collections::HashSet::new();
    for _ in 0..count {
        let answer = recv(&mut c).await;
        assert!(answer.get("error").is_none(), "{answer}");
        answered.insert(answer["id"].as_u64().unwrap());
    }
    assert_eq!(answered.len(), count as usize);
    tree.shutdown().await;
}

/// The whole answer to `request`, sent as is, read until the server closes.
async fn answer_to(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("an answer, then the close")
        .unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

/// A request that is no valid upgrade gets an HTTP answer saying why, not
/// a socket closed without a word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_handshake_is_answered_with_its_http_status() {
    let (tree, endpoints) = start(server(), TransportConfig::default()).await.unwrap();
    let addr = endpoints.ws.unwrap();
    let upgrade = "Connection: Upgrade\r\nUpgrade: websocket\r\n";
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let v13 = "Sec-WebSocket-Version: 13\r\n";
    let huge = format!("X-Pad: {}\r\n", "a".repeat(9000));
    for (request, status, header) in [
        (
            format!("GET /mcp HTTP/1.1\r\nHost: localhost\r\n{upgrade}{v13}\r\n"),
            "400",
            None,
        ),
        (
            format!("GET /mcp HTTP/1.1\r\nHost: localhost\r\n{upgrade}{key}Sec-WebSocket-Version: 8\r\n\r\n"),
            "426",
            Some("sec-websocket-version: 13"),
        ),
        (
            format!("POST /mcp HTTP/1.1\r\nHost: localhost\r\n{upgrade}{key}{v13}Content-Length: 0\r\n\r\n"),
            "405",
            Some("allow: GET"),
        ),
        (
            "GET /mcp HTTP/1.1\r\nHost: localhost\r\n\r\n".to_string(),
            "426",
            Some("upgrade: websocket"),
        ),
        (
            format!("GET /mcp HTTP/1.1\r\nHost: localhost\r\n{huge}{upgrade}{key}{v13}\r\n"),
            "431",
            None,
        ),
        ("BREW /mcp HTCPCP/1.0\r\n\r\n".to_string(), "400", None),
        (
            format!("GET /mcp HTTP/1.1\r\n{upgrade}{key}{v13}\r\n"),
            "400",
            None,
        ),
        (
            format!("GET /mcp HTTP/1.1\r\nHost: localhost\r\n{upgrade}Sec-WebSocket-Key: c2hvcnQ=\r\n{v13}\r\n"),
            "400",
            None,
        ),
    ] {
        let answer = answer_to(addr, &request).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{request:.60?}: {answer}"
        );
        if let Some(header) = header {
            assert!(answer.to_ascii_lowercase().contains(&header.to_ascii_lowercase()), "{answer}");
        }
    }
    // Upgrades written as RFC 6455 allows (token lists, the header twice).
    for request in [
        format!("GET /mcp HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n{key}{v13}\r\n"),
        format!("GET /mcp HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket, h2c\r\n{key}{v13}\r\n"),
    ] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 101"), "{request:?}: {head}");
        assert!(
            head.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "{head}"
        );
    }
    // And a good one still upgrades.
    let mut c = connect(addr).await;
    send(&mut c, discover(1)).await;
    assert_eq!(recv(&mut c).await["id"], 1);
    tree.shutdown().await;
}

/// A session killed by its supervisor (or a chaos hook) closes its
/// connection with 1011 and the reason, not 1000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_session_closes_with_1011_and_the_reason() {
    let (tree, endpoints) = start(server(), TransportConfig::default()).await.unwrap();
    let mut c = connect(endpoints.ws.unwrap()).await;
    send(&mut c, discover(1)).await;
    assert_eq!(recv(&mut c).await["id"], 1);
    let sessions: Vec<_> = arbor_supervision::descendants(&tree)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| {
            d.path.contains("/ws-connections/") && d.kind == arbor_supervision::ChildKind::Worker
        })
        .collect();
    assert_eq!(sessions.len(), 1);
    sessions[0].process.kill();
    loop {
        match next(&mut c).await {
            Some(Message::Close(Some(frame))) => {
                assert_eq!(frame.code, CloseCode::Error);
                assert!(frame.reason.contains("killed"), "{}", frame.reason);
                break;
            }
            Some(Message::Close(None)) | None => panic!("closed without a reason"),
            Some(_) => continue,
        }
    }
    tree.shutdown().await;
}
