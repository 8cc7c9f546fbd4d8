//! A client that never reads holds no more of the server's memory than its
//! queue bounds allow. Alone in their test binary, and one at a time: RSS is
//! per process, and another test's traffic would count against this one.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use arbor_mcp::Tool;
use std::time::Duration;

use arbor_mcp::outbox::{OutboxConfig, OverflowPolicy};
use arbor_mcp::server::ServerConfig;
use arbor_mcp::{CallToolResult, McpServer, ServerBuilder};
use arbor_transports::{start, TransportConfig};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Bytes of one `big` answer.
const ANSWER: usize = 256 << 10;

#[derive(Deserialize, JsonSchema)]
struct Echo {
    text: String,
}

fn server(outbox: OutboxConfig) -> McpServer {
    ServerBuilder::new("flow", "1")
        .config(ServerConfig {
            outbox,
            ..Default::default()
        })
        .tool(
            Tool::new("big").description("A large answer"),
            |(), _ctx| async move { Ok(CallToolResult::text("x".repeat(ANSWER))) },
        )
        .tool(
            Tool::new("echo").description("Its text back"),
            |a: Echo, _ctx| async move { Ok(CallToolResult::text(a.text)) },
        )
        .build()
        .unwrap()
}

/// A call for a `big` answer, padded to 8 KiB so that what the kernel
/// buffers between client and server is soon full.
fn big_call(id: usize) -> String {
    if id % 2 == 1 {
        // Every other call: 64 KiB in, 64 KiB out (the other shape of
        // answer that waits for a client that does not read).
        return format!(
            "{}\n",
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "echo",
                "arguments": {"text": "e".repeat(64 << 10)},
                "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}})
        );
    }
    format!(
        "{}\n",
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "big", "arguments": {},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
                "pad": "p".repeat(8 << 10)}}})
    )
}

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Runs the tests of this binary one at a time.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_holds_only_what_the_bounds_allow() {
    let _alone = ALONE.lock().await;
    let outbox = OutboxConfig {
        max_messages: 8,
        max_bytes: 1 << 20,
        policy: OverflowPolicy::Wait,
    };
    // 4000 answers of 256 KiB would be 1 GiB. What may be held: the outbox
    // (1 MiB), the answers of the requests in flight (64 of 256 KiB, as
    // JSON values and text), the kernel's socket buffers (not in our RSS)
    // and allocator slack.
    let sent = grows_less_than(96 << 20, server(outbox), 4000, big_call).await;
    assert!(
        sent < 4000,
        "the server stopped reading: backpressure reached the client"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_requests_from_a_client_that_never_reads_hold_only_the_inbound_budget() {
    let _alone = ALONE.lock().await;
    // The default bounds: 4 MiB outbox, 16 MiB inbound budget, 64 in
    // flight, a mailbox of 64. ~1 MB in and ~1 MB out each: without a byte
    // budget the mailbox and the requests in flight alone would hold over
    // 128 of them. What may be held: the budget's requests (16 MiB) as
    // bytes, then as decoded arguments and answers, the outbox (4 MiB) and
    // the line being read (1 MB).
    grows_less_than(96 << 20, server(OutboxConfig::default()), 1000, echo_call).await;
}

/// Floods a fresh server over TCP with up to `max` requests made by `call`,
/// never reading, and checks that its memory grew by less than `bound`;
/// returns how many requests it took.
async fn grows_less_than(
    bound: usize,
    server: McpServer,
    max: usize,
    call: fn(usize) -> String,
) -> usize {
    let (tree, endpoints) = start(server, TransportConfig::default()).await.unwrap();
    let before = rss_bytes();
    let mut stream = TcpStream::connect(endpoints.tcp.unwrap()).await.unwrap();
    let sent = flood(&mut stream, max, call).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let grown = rss_bytes().saturating_sub(before);
    eprintln!("server grew {} KiB; {sent} requests taken", grown >> 10);
    assert!(
        grown < bound,
        "the server grew by {} MiB for a client that never reads ({sent} requests sent)",
        grown >> 20
    );
    drop(stream);
    tree.shutdown().await;
    sent
}

/// An `echo` of about 1 MB (under the 1 MiB string limit).
fn echo_call(id: usize) -> String {
    format!(
        "{}\n",
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "echo",
            "arguments": {"text": "e".repeat(1000 << 10)},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}})
    )
}

/// Writes requests made by `call` until the server stops taking them (or
/// `max` are written), never reading; returns how many went.
async fn flood(stream: &mut TcpStream, max: usize, call: fn(usize) -> String) -> usize {
    for id in 0..max {
        let line = call(id);
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
