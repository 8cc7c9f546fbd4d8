//! The idempotency extension end to end: a keyed tool called again with
//! the same key and arguments answers the first result without running
//! again (sequential and concurrent repeats, TCP and both HTTP eras); the
//! same key with other arguments is -32033; a first call that fails
//! without a result leaves the key free; keys are per client address.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod http_support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arbor_mcp::idempotency::{EXTENSION, KEY, REPLAYED, TOOL_MARK};
use arbor_mcp::jsonrpc::code::IDEMPOTENCY_CONFLICT;
use arbor_mcp::rate::RateLimits;
use arbor_mcp::{CallToolResult, McpServer, ServerConfig, Tool};
use arbor_transports::{start, TransportConfig};
use http_support::*;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A server whose keyed `charge` tool counts its runs (100 ms each), and
/// whose keyed `flaky` tool panics on its first run.
fn server(runs: Arc<AtomicU64>) -> McpServer {
    let flaky_runs = Arc::new(AtomicU64::new(0));
    builder()
        .config(ServerConfig {
            rate_limits: RateLimits::off(),
            ..ServerConfig::default()
        })
        .tool_with_schema(
            Tool::new("charge")
                .description("Charges an amount, once per key")
                .input_schema(
                    json!({"type": "object", "properties": {"amount": {"type": "integer"}}}),
                )
                .idempotency_keyed(),
            move |args, _ctx| {
                let runs = runs.clone();
                async move {
                    let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok(CallToolResult::text(format!(
                        "charge #{n} of {}",
                        args["amount"]
                    )))
                }
            },
        )
        .tool_with_schema(
            Tool::new("flaky")
                .description("Panics the first time")
                .input_schema(json!({"type": "object"}))
                .idempotency_keyed(),
            move |_args, _ctx| {
                let runs = flaky_runs.clone();
                async move {
                    if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                        panic!("first run fails");
                    }
                    Ok(CallToolResult::text("flaky worked"))
                }
            },
        )
        .build()
        .unwrap()
}

fn call(id: u64, tool: &str, amount: i64, key: &str) -> Value {
    let mut meta = meta();
    meta[KEY] = json!(key);
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": {"amount": amount}, "_meta": meta}})
}

fn text(answer: &Value) -> &str {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {answer}"))
}

fn is_replay(answer: &Value) -> bool {
    answer["result"]["_meta"][REPLAYED] == true
}

/// A line connection to `to` from the loopback address `from`.
async fn line_from(from: [u8; 4], to: SocketAddr) -> Line {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let stream = socket.connect(to).await.unwrap();
    Line::from_stream(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_over_tcp_replays_the_first_result_and_another_argument_set_is_refused() {
    let runs = Arc::new(AtomicU64::new(0));
    let (tree, endpoints) = start(server(runs.clone()), TransportConfig::default())
        .await
        .unwrap();
    let tcp = endpoints.tcp.unwrap();
    let mut line = Line::connect(tcp).await;
    // Declared, and the tool marked.
    let discover = line.call(0).await;
    assert_eq!(
        discover["result"]["capabilities"]["extensions"][EXTENSION]["ttlMs"], 600_000,
        "{discover}"
    );
    line.send(&modern_request(json!(1), "tools/list", json!({})))
        .await;
    let listed = line.recv().await.unwrap();
    let charge = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "charge")
        .unwrap()
        .clone();
    assert_eq!(charge["_meta"][TOOL_MARK], "keyed", "{charge}");

    line.send(&call(2, "charge", 5, "order-17")).await;
    let first = line.recv().await.unwrap();
    assert_eq!(text(&first), "charge #1 of 5");
    assert!(!is_replay(&first));
    // The client lost the answer and retries, on a new connection.
    let mut retry = Line::connect(tcp).await;
    retry.send(&call(3, "charge", 5, "order-17")).await;
    let again = retry.recv().await.unwrap();
    assert_eq!(text(&again), "charge #1 of 5", "{again}");
    assert!(is_replay(&again), "{again}");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler ran once");

    // The same key with another amount: a client bug, refused.
    retry.send(&call(4, "charge", 6, "order-17")).await;
    let reused = retry.recv().await.unwrap();
    assert_eq!(reused["error"]["code"], IDEMPOTENCY_CONFLICT, "{reused}");
    assert_eq!(reused["error"]["data"]["reason"], "mismatch");
    // A malformed key is invalid params.
    retry.send(&call(5, "charge", 5, "has a space")).await;
    let bad = retry.recv().await.unwrap();
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    // Another key runs.
    retry.send(&call(6, "charge", 5, "order-18")).await;
    assert_eq!(text(&retry.recv().await.unwrap()), "charge #2 of 5");

    // Another client address has keys of its own.
    let mut elsewhere = line_from([127, 0, 0, 2], tcp).await;
    elsewhere.send(&call(7, "charge", 5, "order-17")).await;
    let theirs = elsewhere.recv().await.unwrap();
    assert_eq!(text(&theirs), "charge #3 of 5", "{theirs}");
    assert!(!is_replay(&theirs));
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_repeat_waits_for_the_first_and_a_failed_first_leaves_the_key_free() {
    let runs = Arc::new(AtomicU64::new(0));
    let (tree, endpoints) = start(server(runs.clone()), TransportConfig::default())
        .await
        .unwrap();
    let tcp = endpoints.tcp.unwrap();
    let (read, mut write) = tokio::net::TcpStream::connect(tcp)
        .await
        .unwrap()
        .into_split();
    let mut lines = BufReader::new(read).lines();
    // Both sent before the first (100 ms) has answered.
    for id in [1, 2] {
        write
            .write_all(format!("{}\n", call(id, "charge", 9, "k")).as_bytes())
            .await
            .unwrap();
    }
    let mut answers = Vec::new();
    for _ in 0..2 {
        let line = lines.next_line().await.unwrap().unwrap();
        answers.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    assert_eq!(text(&answers[0]), "charge #1 of 9");
    assert_eq!(text(&answers[1]), "charge #1 of 9");
    assert_eq!(
        answers.iter().filter(|a| is_replay(a)).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // The first run panics: an error, not a result; the retry runs.
    let mut line = Line::connect(tcp).await;
    line.send(&call(3, "flaky", 0, "f")).await;
    let failed = line.recv().await.unwrap();
    assert_eq!(failed["error"]["code"], -32603, "{failed}");
    line.send(&call(4, "flaky", 0, "f")).await;
    let worked = line.recv().await.unwrap();
    assert_eq!(text(&worked), "flaky worked");
    assert!(!is_replay(&worked));
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_over_http_replay_in_both_eras() {
    let runs = Arc::new(AtomicU64::new(0));
    let (tree, endpoints) = start(server(runs.clone()), TransportConfig::default())
        .await
        .unwrap();
    let http = endpoints.http.unwrap();
    // 2026-07-28: each POST is its own request process.
    for _ in 0..2 {
        let reply = modern_call(http, &call(1, "charge", 3, "http-k"), Some("charge"), &[]).await;
        assert_eq!(text(&reply.json()), "charge #1 of 3", "{:?}", reply.json());
    }
    // Handshake era: declared under experimental, replayed the same way.
    let (session, _, events) = Session::initialize(http, "2025-11-25").await;
    let initialized = events
        .iter()
        .filter(|e| !e.is_comment() && !e.is_priming())
        .map(|e| e.json())
        .find(|v| v["id"] == 0)
        .expect("the initialize result");
    assert_eq!(
        initialized["result"]["capabilities"]["experimental"][EXTENSION]["ttlMs"], 600_000,
        "{initialized}"
    );
    let r = session
        .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    assert_eq!(r.status(), 202);
    let mut outcomes = Vec::new();
    for id in [2, 3] {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "charge", "arguments": {"amount": 4}, "_meta": {KEY: "legacy-k"}}});
        let mut sse = session.open_post(&body).await;
        let (_, answer) = sse.message().await.unwrap();
        outcomes.push(answer);
    }
    assert_eq!(text(&outcomes[0]), "charge #2 of 4");
    assert_eq!(text(&outcomes[1]), "charge #2 of 4");
    assert!(is_replay(&outcomes[1]));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    tree.shutdown().await;
}
