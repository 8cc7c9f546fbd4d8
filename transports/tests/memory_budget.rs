//! The server-wide memory budget (`ServerConfig::max_buffered_bytes`) at its
//! edge: what all connections together hold in received messages and unread
//! answers.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod http_support;

use arbor_mcp::Tool;
use std::time::Duration;

use arbor_mcp::{CallToolResult, McpServer, ServerBuilder, ServerConfig};
use arbor_transports::{start, TransportConfig};
use http_support::{eventually, modern_call, modern_request, Session};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Deserialize, JsonSchema)]
struct Text {
    text: String,
}

/// A server with `echo` and `hold` (echoes after 2 s: within the test
/// client's 3 s read timeout), within `max` bytes.
fn server(max: usize) -> McpServer {
    ServerBuilder::new("memory", "1")
        .config(ServerConfig {
            max_buffered_bytes: Some(max),
            ..ServerConfig::default()
        })
        .tool(
            Tool::new("echo").description("Echoes"),
            |a: Text, _ctx| async move { Ok(CallToolResult::text(a.text)) },
        )
        .tool(
            Tool::new("hold").description("Echoes after 2 s"),
            |a: Text, _ctx| async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                Ok(CallToolResult::text(a.text))
            },
        )
        .build()
        .unwrap()
}

fn call(id: u64, tool: &str, len: usize) -> String {
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    format!(
        "{}\n",
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": {"text": "x".repeat(len)}, "_meta": meta}})
    )
}

/// A client that sends large requests and never reads holds the budget
/// until it is spent; then it is disconnected (it holds the most unread
/// answers), the budget comes back whole, and a client that reads is served.
/// The hog never reads, not even to see its connection end: a client that
/// reads gives its share back and is not the one to let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_let_go_once_the_budget_is_spent() {
    let max = 2 << 20;
    let server = server(max);
    let (tree, endpoints) = start(server.clone(), TransportConfig::default())
        .await
        .unwrap();
    // The hog writes 60 requests of 256 KiB (15 MiB) from a task and never
    // reads. Its receive buffer is kept small (the kernel would otherwise
    // grow it to several MiB and take in most of the answers), so that the
    // answers pile up in the server, well past its budget, after a few
    // requests even on a slow debug build.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(8 << 10).unwrap();
    let (hog, mut hog_write) = socket
        .connect(endpoints.tcp.unwrap())
        .await
        .unwrap()
        .into_split();
    let mut requests = String::new();
    for id in 0..60 {
        requests.push_str(&call(id, "echo", 256 << 10));
    }
    let flooding = tokio::spawn(async move {
        let _ = hog_write.write_all(requests.as_bytes()).await;
        hog_write
    });
    // Its own reads, waiting for room, may let it go before the reader
    // below comes: either way it is let go, and not before it spent the
    // budget.
    eventually(Duration::from_secs(20), "the budget is spent", || {
        let server = server.clone();
        async move { server.memory().available_bytes() < 300 << 10 }
    })
    .await;

    // A client that reads: its large request waits for room, the hog is
    // let go, and the answer comes.
    let (read, mut write) = TcpStream::connect(endpoints.tcp.unwrap())
        .await
        .unwrap()
        .into_split();
    write
        .write_all(call(1, "echo", 100 << 10).as_bytes())
        .await
        .unwrap();
    let mut lines = BufReader::new(read).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("answered once the hog is gone")
        .unwrap()
        .unwrap();
    let answer: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(answer["id"], 1);
    assert_eq!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .map(str::len),
        Some(100 << 10)
    );
    // Let go, without the hog ever reading (reading would make it a client
    // that reads, which is never let go). Its flood ends, written or cut
    // off: the server read it all only if it took in all 60 requests, and
    // their 15 MiB of answers cannot all sit in the socket buffers (a few
    // MiB), so the rest waited on the budget and the hog was let go. The
    // budget then comes back whole, which it cannot while the hog is
    // connected and holding unread answers.
    let flooded = tokio::time::timeout(Duration::from_secs(30), flooding)
        .await
        .expect("the hog's flood ends, written or cut off")
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the budget comes back whole",
        || {
            let server = server.clone();
            async move { server.memory().available_bytes() == max }
        },
    )
    .await;
    // And its connection is closed: an end of stream once what the socket
    // holds is read, or a reset (the server closed with unread input).
    let mut rest = Vec::new();
    let mut hog = hog;
    let closed = tokio::time::timeout(Duration::from_secs(10), hog.read_to_end(&mut rest))
        .await
        .expect("the hog's connection is closed");
    assert!(
        closed.is_ok() || closed.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the hog is let go"
    );
    drop(flooded);
    tree.shutdown().await;
}

/// With the budget held (a large request still at work), a POST into a
/// handshake-era HTTP session that finds no room is answered 429, naming
/// the server's limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_that_finds_the_server_budget_spent_is_429() {
    let max = 256 << 10;
    let server = server(max);
    let (tree, endpoints) = start(server.clone(), TransportConfig::default())
        .await
        .unwrap();
    let mut holder = TcpStream::connect(endpoints.tcp.unwrap()).await.unwrap();
    holder
        .write_all(call(1, "hold", 200 << 10).as_bytes())
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "the budget is held", || {
        let server = server.clone();
        async move { server.memory().available_bytes() < 100 << 10 }
    })
    .await;
    let session = Session::ready(endpoints.http.unwrap(), "2025-11-25").await;
    let big = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "y".repeat(100 << 10)}}});
    let r = session.post(&big).await;
    assert_eq!(r.status(), 429, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["data"]["limit"], "max_buffered_bytes");
    assert_eq!(r.json()["error"]["data"]["max"], max);
    drop(holder);
    tree.shutdown().await;
}

/// A 2026-07-28 POST's body counts against the server's budget while its
/// request is at work (its own request process holds it), and a POST that
/// finds no room is 429 naming the server's limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2026_post_holds_its_body_against_the_server_budget() {
    let max = 256 << 10;
    let server = server(max);
    let (tree, endpoints) = start(server.clone(), TransportConfig::default())
        .await
        .unwrap();
    let addr = endpoints.http.unwrap();
    let holding = tokio::spawn(async move {
        let body = modern_request(
            json!(1),
            "tools/call",
            json!({"name": "hold", "arguments": {"text": "x".repeat(200 << 10)}}),
        );
        modern_call(addr, &body, Some("hold"), &[]).await
    });
    // Well before `hold` answers (its answer would hold as much).
    eventually(Duration::from_secs(1), "the body is held", || {
        let server = server.clone();
        async move { server.memory().available_bytes() < 100 << 10 }
    })
    .await;
    eprintln!("AVAILABLE {}", server.memory().available_bytes());
    let big = modern_request(
        json!(2),
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "y".repeat(100 << 10)}}),
    );
    let refused = modern_call(addr, &big, Some("echo"), &[]).await;
    assert_eq!(
        refused.status(),
        429,
        "{:?}",
        String::from_utf8_lossy(&refused.body)
    );
    assert_eq!(
        refused.json()["error"]["data"]["limit"],
        "max_buffered_bytes"
    );
    let held = holding.await.unwrap();
    assert_eq!(held.status(), 200);
    assert_eq!(
        held.json()["result"]["content"][0]["text"]
            .as_str()
            .map(str::len),
        Some(200 << 10)
    );
    // Answered, the request gave its share back: the same POST passes.
    eventually(Duration::from_secs(5), "the budget is whole again", || {
        let server = server.clone();
        async move { server.memory().available_bytes() == max }
    })
    .await;
    let echoed = modern_call(addr, &big, Some("echo"), &[]).await;
    assert_eq!(echoed.status(), 200);
    tree.shutdown().await;
}

/// A client that reads but sends large messages answered on the spot (here
/// malformed ones) gets every answer with the budget spent by its own
/// messages: an answer never waits for memory its own message holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_given_on_the_spot_never_wait_on_the_budget_their_message_holds() {
    let server = server(512 << 10);
    let (tree, endpoints) = start(server, TransportConfig::default()).await.unwrap();
    let (read, mut write) = TcpStream::connect(endpoints.tcp.unwrap())
        .await
        .unwrap()
        .into_split();
    let count = 10;
    let writing = tokio::spawn(async move {
        for id in 0..count {
            let broken = format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"x\",\"params\":{{\"pad\":\"{}\"}}\n",
                "p".repeat(200 << 10)
            );
            write.write_all(broken.as_bytes()).await.unwrap();
        }
        write
    });
    let mut lines = BufReader::new(read).lines();
    for id in 0..count {
        let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
            .await
            .expect("every malformed message is answered")
            .unwrap()
            .unwrap();
        let answer: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(answer["id"], id, "{answer}");
        assert_eq!(answer["error"]["code"], -32700, "{answer}");
    }
    drop(writing.await.unwrap());
    tree.shutdown().await;
}
