//! TCP end to end: both eras, supervision of the listener, the connection
//! limit at its edge.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use arbor_mcp::Tool;
use std::time::Duration;

use arbor_mcp::{CallToolResult, McpServer, ServerBuilder};
use arbor_supervision::kill_path;
use arbor_transports::{start, TcpConfig, TransportConfig};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Deserialize, JsonSchema)]
struct Echo {
    text: String,
}

fn server() -> McpServer {
    ServerBuilder::new("tcp-test", "1")
        .tool(
            Tool::new("echo").description("Echoes"),
            |a: Echo, _ctx| async move { Ok(CallToolResult::text(a.text)) },
        )
        .build()
        .unwrap()
}

struct Line {
    write: tokio::net::tcp::OwnedWriteHalf,
    lines: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
}

impl Line {
    async fn connect(addr: std::net::SocketAddr) -> Line {
        let (read, write) = TcpStream::connect(addr).await.unwrap().into_split();
        Line {
            write,
            lines: BufReader::new(read).lines(),
        }
    }

    async fn send(&mut self, v: Value) {
        self.write
            .write_all(format!("{v}\n").as_bytes())
            .await
            .unwrap();
    }

    async fn recv(&mut self) -> Option<Value> {
        let line = tokio::time::timeout(Duration::from_secs(5), self.lines.next_line())
            .await
            .expect("an answer within 5 s")
            .unwrap()?;
        Some(serde_json::from_str(&line).unwrap())
    }
}

fn meta() -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_eras_over_tcp() {
    let (tree, endpoints) = start(server(), TransportConfig::default()).await.unwrap();
    assert!(endpoints
        .urls()
        .contains(&format!("tcp://{}", endpoints.tcp.unwrap())));

    let mut modern = Line::connect(endpoints.tcp.unwrap()).await;
    modern
        .send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}, "_meta": meta()}}))
        .await;
    let r = modern.recv().await.unwrap();
    assert_eq!(r["result"]["content"][0]["text"], "hi");
    assert_eq!(r["result"]["resultType"], "complete");

    let mut old = Line::connect(endpoints.tcp.unwrap()).await;
    old.send(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
        .await;
    assert_eq!(
        old.recv().await.unwrap()["result"]["protocolVersion"],
        "2025-06-18"
    );
    old.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    old.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "yo"}}}))
        .await;
    assert_eq!(
        old.recv().await.unwrap()["result"]["content"][0]["text"],
        "yo"
    );

    // Each connection is a session under the connection supervisor.
    let counts = arbor_supervision::descendants(&tree).await.unwrap();
    assert_eq!(
        counts
            .iter()
            .filter(|d| d.path.contains("/session-"))
            .count(),
        2
    );
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listener_comes_back_on_the_same_port_and_connections_stay() {
    let (tree, endpoints) = start(server(), TransportConfig::default()).await.unwrap();
    let mut c = Line::connect(endpoints.tcp.unwrap()).await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta()}}))
        .await;
    c.recv().await.unwrap();

    let killed = kill_path(&tree, "tcp-listener").await.unwrap();
    killed_wait(&killed.pid, &tree).await;

    // The open connection still answers.
    c.send(json!({"jsonrpc": "2.0", "id": 2, "method": "server/discover", "params": {"_meta": meta()}}))
        .await;
    assert_eq!(c.recv().await.unwrap()["id"], 2);
    // And the restarted listener accepts on the same address.
    let mut again = Line::connect(endpoints.tcp.unwrap()).await;
    again
        .send(json!({"jsonrpc": "2.0", "id": 3, "method": "server/discover", "params": {"_meta": meta()}}))
        .await;
    assert_eq!(again.recv().await.unwrap()["id"], 3);
    tree.shutdown().await;
}

/// Waits until the listener runs again under a new pid.
async fn killed_wait(old: &arbor_runtime::Pid, tree: &arbor_supervision::SupervisorRef) {
    for _ in 0..500 {
        let kids = tree.which_children().await.unwrap();
        if kids.iter().any(|c| {
            &*c.id == "tcp-listener" && c.process.as_ref().is_some_and(|p| p.pid() != *old)
        }) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the listener did not come back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_limit_holds_at_its_edge() {
    let config = TransportConfig {
        max_connections: Some(2),
        ..TransportConfig::default()
    };
    let (tree, endpoints) = start(server(), config).await.unwrap();
    let mut first = Line::connect(endpoints.tcp.unwrap()).await;
    let mut second = Line::connect(endpoints.tcp.unwrap()).await;
    for (i, c) in [&mut first, &mut second].into_iter().enumerate() {
        c.send(json!({"jsonrpc": "2.0", "id": i, "method": "server/discover", "params": {"_meta": meta()}}))
            .await;
        assert_eq!(c.recv().await.unwrap()["id"], i);
    }
    let mut third = Line::connect(endpoints.tcp.unwrap()).await;
    let refusal = third.recv().await.unwrap();
    assert_eq!(refusal["error"]["data"]["limit"], "max_connections");
    assert!(third.recv().await.is_none(), "then closed");
    // When one leaves, there is room again.
    drop(first);
    let mut fourth = None;
    for _ in 0..200 {
        let mut c = Line::connect(endpoints.tcp.unwrap()).await;
        c.send(json!({"jsonrpc": "2.0", "id": 9, "method": "server/discover", "params": {"_meta": meta()}}))
            .await;
        if c.recv().await.is_some_and(|v| v["id"] == 9) {
            fourth = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(fourth.is_some());
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_requests_in_flight_answer() {
    let server = ServerBuilder::new("drain", "1")
        .tool(
            Tool::new("slow").description("Takes a while"),
            |a: Echo, _ctx| async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(CallToolResult::text(a.text))
            },
        )
        .build()
        .unwrap();
    let (tree, endpoints) = start(server, TransportConfig::default()).await.unwrap();
    let mut c = Line::connect(endpoints.tcp.unwrap()).await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "slow", "arguments": {"text": "made it"}, "_meta": meta()}}))
        .await;
    // Let the request reach its handler, then stop the whole tree.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopping = tokio::spawn(async move { tree.shutdown().await });
    let answer = c.recv().await.unwrap();
    assert_eq!(answer["result"]["content"][0]["text"], "made it");
    assert_eq!(stopping.await.unwrap(), arbor_runtime::ExitReason::Shutdown);
    // New connections are no longer accepted.
    assert!(TcpStream::connect(endpoints.tcp.unwrap()).await.is_err() || c.recv().await.is_none());
}

/// A 200 ms drain and a `stuck` tool that would take 30 s.
fn stuck_server() -> McpServer {
    ServerBuilder::new("drain", "1")
        .config(arbor_mcp::server::ServerConfig {
            drain_timeout: Duration::from_millis(200),
            ..Default::default()
        })
        .tool(
            Tool::new("stuck").description("Takes far too long"),
            |a: Echo, _ctx| async move {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(CallToolResult::text(a.text))
            },
        )
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_still_running_past_the_drain_is_answered_with_an_error() {
    let (tree, endpoints) = start(stuck_server(), TransportConfig::default())
        .await
        .unwrap();
    let mut c = Line::connect(endpoints.tcp.unwrap()).await;
    c.send(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "stuck", "arguments": {"text": "never"}, "_meta": meta()}}))
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopping = tokio::spawn(async move { tree.shutdown().await });
    let answer = c.recv().await.expect("an answer, not the end");
    assert_eq!(answer["id"], 7, "{answer}");
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    assert_eq!(answer["error"]["data"]["reason"], "shutdown", "{answer}");
    assert!(c.recv().await.is_none());
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_ends_with_its_result_at_shutdown() {
    let (tree, endpoints) = start(server(), TransportConfig::default()).await.unwrap();
    let mut c = Line::connect(endpoints.tcp.unwrap()).await;
    c.send(json!({"jsonrpc": "2.0", "id": "l", "method": "subscriptions/listen", "params": {"notifications": {"toolsListChanged": true}, "_meta": meta()}}))
        .await;
    let ack = c.recv().await.unwrap();
    assert_eq!(
        ack["method"], "notifications/subscriptions/acknowledged",
        "{ack}"
    );
    let stopping = tokio::spawn(async move { tree.shutdown().await });
    let end = c.recv().await.expect("the listen's result, not the end");
    assert_eq!(end["id"], "l", "{end}");
    assert_eq!(
        end["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "l",
        "{end}"
    );
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_cut_short_by_shutdown_answers_in_its_array_only() {
    let (tree, endpoints) = start(stuck_server(), TransportConfig::default())
        .await
        .unwrap();
    let mut c = Line::connect(endpoints.tcp.unwrap()).await;
    c.send(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
        .await;
    assert_eq!(c.recv().await.unwrap()["id"], 0);
    c.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    c.send(json!([
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "stuck", "arguments": {"text": "never"}}},
        {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    ]))
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopping = tokio::spawn(async move { tree.shutdown().await });
    let answer = c.recv().await.expect("the batch's array");
    let answers = answer
        .as_array()
        .unwrap_or_else(|| panic!("an array, not {answer}"));
    assert_eq!(answers.len(), 1, "{answer}");
    assert_eq!(answers[0]["id"], 2, "{answer}");
    assert!(c.recv().await.is_none(), "no lone answer after it");
    stopping.await.unwrap();
}

/// A server whose `nap` tool sleeps 20 ms, with at most `max_in_flight`
/// requests in flight per connection.
fn napping_server(max_in_flight: usize) -> McpServer {
    #[derive(Deserialize, JsonSchema)]
    struct Nap {}
    ServerBuilder::new("tcp-test", "1")
        .config(arbor_mcp::ServerConfig {
            max_in_flight,
            ..Default::default()
        })
        .tool(
            Tool::new("nap").description("Sleeps 20 ms"),
            |_: Nap, _ctx| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(CallToolResult::text("rested"))
            },
        )
        .build()
        .unwrap()
}

/// A client that writes many requests without waiting: the reader stops
/// reading at the in-flight limit and goes on as answers go out, so every
/// request is answered, none refused with `too many requests in flight`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_get_backpressure_not_errors() {
    for (max_in_flight, count, method) in [(4, 40, "nap"), (64, 200, "tools/list")] {
        let (tree, endpoints) = start(napping_server(max_in_flight), TransportConfig::default())
            .await
            .unwrap();
        let mut c = Line::connect(endpoints.tcp.unwrap()).await;
        let mut all = String::new();
        for id in 0..count {
            let request = match method {
                "nap" => json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                    "params": {"name": "nap", "arguments": {}, "_meta": meta()}}),
                _ => json!({"jsonrpc": "2.0", "id": id, "method": "tools/list",
                    "params": {"_meta": meta()}}),
            };
            all.push_str(&format!("{request}\n"));
        }
        c.write.write_all(all.as_bytes()).await.unwrap();
        let mut answered = std::collections::HashSet::new();
        for _ in 0..count {
            let answer = c.recv().await.unwrap();
            assert!(answer.get("error").is_none(), "{method}: {answer}");
            answered.insert(answer["id"].as_u64().unwrap());
        }
        assert_eq!(answered.len(), count as usize, "{method}: every id once");
        tree.shutdown().await;
    }
}

/// 8 MiB with no newline: answered as soon as the limit is passed, not
/// when (if ever) the line ends; the rest of the line is skipped and the
/// connection serves the next line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_past_the_limit_without_a_newline_is_answered_at_once() {
    let server = ServerBuilder::new("tcp-test", "1")
        .config(arbor_mcp::ServerConfig {
            limits: arbor_mcp::jsonrpc::Limits {
                max_message_bytes: 64 << 10,
                ..Default::default()
            },
            ..Default::default()
        })
        .build()
        .unwrap();
    let (tree, endpoints) = start(server, TransportConfig::default()).await.unwrap();
    let (read, mut write) = TcpStream::connect(endpoints.tcp.unwrap())
        .await
        .unwrap()
        .into_split();
    let mut lines = BufReader::new(read).lines();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        write
            .write_all(br#"{"jsonrpc":"2.0","id":"big","method":"ping","params":{"pad":""#)
            .await
            .unwrap();
        let chunk = vec![b'x'; 64 << 10];
        // 8 MiB, and no newline until the answer has come.
        for _ in 0..128 {
            write.write_all(&chunk).await.unwrap();
        }
        let _ = done_rx.await;
        write.write_all(b"\"}}\n").await.unwrap();
        write
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n")
            .await
            .unwrap();
        write
    });
    let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
        .await
        .expect("answered before the line ends")
        .unwrap()
        .unwrap();
    let r: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(r["error"]["code"], -32600, "{r}");
    assert_eq!(r["error"]["data"]["limit"], "max_message_bytes");
    assert_eq!(r["error"]["data"]["skipped"], true);
    assert_eq!(r["id"], "big", "the id from the line's head");
    let _ = done_tx.send(());
    let next = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let r: Value = serde_json::from_str(&next).unwrap();
    assert_eq!(r["id"], 2, "the next line is served: {r}");
    assert_eq!(r["result"], json!({}));
    drop(writer.await.unwrap());
    tree.shutdown().await;
}

/// The one session under `prefix` in the tree.
async fn only_session(
    tree: &arbor_supervision::SupervisorRef,
    prefix: &str,
) -> arbor_runtime::ProcessRef {
    let found: Vec<_> = arbor_supervision::descendants(tree)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.path.contains(prefix) && d.kind == arbor_supervision::ChildKind::Worker)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{:?}",
        found.iter().map(|d| &d.path).collect::<Vec<_>>()
    );
    found[0].process.clone()
}

/// A session killed by its supervisor (or a chaos hook) says why before
/// the connection closes, instead of a bare end of stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_session_says_why_before_the_connection_closes() {
    let (tree, endpoints) = start(server(), TransportConfig::default()).await.unwrap();
    let mut c = Line::connect(endpoints.tcp.unwrap()).await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta()}}))
        .await;
    assert_eq!(c.recv().await.unwrap()["id"], 1);
    only_session(&tree, "tcp-connections/").await.kill();
    let last = c.recv().await.expect("a last line");
    assert_eq!(last["method"], "notifications/message", "{last}");
    assert_eq!(last["params"]["level"], "error");
    assert_eq!(last["params"]["data"]["reason"], "killed");
    assert!(c.recv().await.is_none(), "then the end of the stream");
    tree.shutdown().await;
}

/// At shutdown the transports drain together: a request cut short on TCP
/// and one on WebSocket both get their error about `drain_timeout` after the
/// stop began, not one drain after the other (TCP used to wait for
/// WebSocket's, and both for HTTP's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transports_drain_together_at_shutdown() {
    use futures_util::{SinkExt, StreamExt};
    let drain = Duration::from_secs(1);
    let server = ServerBuilder::new("drain", "1")
        .config(arbor_mcp::server::ServerConfig {
            drain_timeout: drain,
            ..Default::default()
        })
        .tool(
            Tool::new("stuck").description("Takes far too long"),
            |a: Echo, _ctx| async move {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(CallToolResult::text(a.text))
            },
        )
        .build()
        .unwrap();
    let (tree, endpoints) = start(server, TransportConfig::default()).await.unwrap();
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "stuck", "arguments": {"text": "never"}, "_meta": meta()}});
    let mut tcp = Line::connect(endpoints.tcp.unwrap()).await;
    tcp.send(call.clone()).await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/mcp", endpoints.ws.unwrap()))
            .await
            .unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        call.to_string().into(),
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let began = std::time::Instant::now();
    let stopping = tokio::spawn(async move { tree.shutdown().await });
    let tcp_answer = tokio::spawn(async move {
        let answer = tcp.recv().await.unwrap();
        (answer, began.elapsed())
    });
    let ws_answer = tokio::spawn(async move {
        loop {
            match ws.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                    let answer: Value = serde_json::from_str(&t).unwrap();
                    return (answer, began.elapsed());
                }
                Some(Ok(_)) => continue,
                other => panic!("no answer over WebSocket: {other:?}"),
            }
        }
    });
    for (transport, handle) in [("tcp", tcp_answer), ("ws", ws_answer)] {
        let (answer, at) = handle.await.unwrap();
        assert_eq!(answer["error"]["code"], -32603, "{transport}: {answer}");
        // One drain, with room for a busy machine; one after the other
        // would put the second past two.
        assert!(at < drain * 17 / 10, "{transport}: answered after {at:?}");
    }
    stopping.await.unwrap();
}

/// Only the transports asked for are served: a TCP-only tree binds no
/// WebSocket or HTTP listener, and its one endpoint answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_transports_asked_for_are_served() {
    let config = TransportConfig {
        tcp: Some(TcpConfig::default()),
        ..TransportConfig::none()
    };
    let (tree, endpoints) = start(server(), config).await.unwrap();
    assert!(endpoints.ws.is_none() && endpoints.http.is_none());
    let tcp = endpoints.tcp.unwrap();
    assert_eq!(endpoints.urls(), vec![format!("tcp://{tcp}")]);
    // The tree: the connection supervisors, one listener and the resource
    // guard's sampler, nothing else.
    let ids: Vec<String> = tree
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(ids, ["connections", "tcp-listener", "resource-guard"]);
    let mut c = Line::connect(tcp).await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta()}}))
        .await;
    assert_eq!(c.recv().await.unwrap()["id"], 1);
    tree.shutdown().await;
}
