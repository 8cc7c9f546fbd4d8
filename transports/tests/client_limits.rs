//! The client's bounds on what a server sends, at the limit and one byte
//! past it: a JSON answer and an SSE event over Streamable HTTP (from a
//! scripted server that pads its answers to the byte), and a WebSocket
//! message (from arbor's server).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arbor_mcp::client::{Client, ClientError, Reconnect, VersionChoice};
use arbor_mcp::{CallToolResult, ProtocolVersion, ServerBuilder, Tool};
use arbor_transports::client::{HttpConnector, WsConnector};
use arbor_transports::{start, TransportConfig};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const LIMIT: usize = 4096;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Size {
    n: usize,
}

/// `{"jsonrpc":"2.0","id":ID,"result":{"tools":[],"pad":"xx…"}}`, padded
/// to exactly `size` bytes.
fn answer_of_size(id: &Value, size: usize) -> String {
    let with = |pad: &str| {
        json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [], "pad": pad}}).to_string()
    };
    let base = with("").len();
    let body = with(&"x".repeat(size - base));
    assert_eq!(body.len(), size);
    body
}

/// A Streamable HTTP server that speaks just enough 2025-11-25: each
/// `tools/list` is answered with the next size in `sizes`, as JSON (`false`)
/// or as one SSE event (`true`) of exactly that many bytes.
async fn scripted(sizes: Vec<(bool, usize)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sizes = Arc::new(sizes);
    let next = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let (sizes, next) = (sizes.clone(), next.clone());
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut read = BufReader::new(read);
                loop {
                    let mut head = String::new();
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    let mut body = vec![0; length];
                    read.read_exact(&mut body).await.unwrap();
                    let reply = |status: &str, kind: &str, body: &str| {
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        )
                    };
                    let response = if head.starts_with("GET") {
                        reply("405 Method Not Allowed", "text/plain", "")
                    } else {
                        let message: Value = serde_json::from_slice(&body).unwrap();
                        let id = message.get("id").cloned();
                        match (message["method"].as_str(), id) {
                            (Some("initialize"), Some(id)) => reply(
                                "200 OK",
                                "application/json",
                                &json!({"jsonrpc": "2.0", "id": id, "result": {
                                    "protocolVersion": "2025-11-25",
                                    "capabilities": {"tools": {}},
                                    "serverInfo": {"name": "scripted", "version": "1"}
                                }})
                                .to_string(),
                            ),
                            (Some("tools/list"), Some(id)) => {
                                let (sse, size) = sizes[next.fetch_add(1, Ordering::SeqCst)];
                                if sse {
                                    // `data: ` and the blank line make the event.
                                    let event =
                                        format!("data: {}\n\n", answer_of_size(&id, size - 8));
                                    assert_eq!(event.len(), size);
                                    reply("200 OK", "text/event-stream", &event)
                                } else {
                                    reply("200 OK", "application/json", &answer_of_size(&id, size))
                                }
                            }
                            _ => reply("202 Accepted", "text/plain", ""),
                        }
                    };
                    if write.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}/mcp")
}

fn too_large(outcome: Result<impl std::fmt::Debug, ClientError>) -> bool {
    matches!(&outcome, Err(ClientError::Transport(why)) if why.contains(&format!("larger than {LIMIT} bytes")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_answers_and_sse_events_at_the_limit_are_taken_and_one_byte_past_it_refused() {
    let url = scripted(vec![
        (false, LIMIT),
        (false, LIMIT + 1),
        (true, LIMIT),
        (true, LIMIT + 1),
        (false, 100),
    ])
    .await;
    let c = Client::builder()
        .version(VersionChoice::Pinned(ProtocolVersion::V2025_11_25))
        .request_timeout(Duration::from_secs(10))
        .connect(HttpConnector::new(url).max_message_bytes(LIMIT))
        .await
        .unwrap();
    assert!(
        c.list_tools(None).await.is_ok(),
        "a JSON answer at the limit"
    );
    let over = c.list_tools(None).await;
    assert!(
        too_large(over.as_ref().map(drop).map_err(Clone::clone)),
        "{over:?}"
    );
    assert!(
        c.list_tools(None).await.is_ok(),
        "an SSE event at the limit"
    );
    let over = c.list_tools(None).await;
    assert!(
        too_large(over.as_ref().map(drop).map_err(Clone::clone)),
        "{over:?}"
    );
    // Only those requests failed: the connection goes on.
    assert!(c.list_tools(None).await.is_ok());
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_message_past_the_limit_ends_the_connection_which_is_redialled() {
    let server = ServerBuilder::new("big", "1")
        .tool(
            Tool::new("big").description("Answers n bytes of text"),
            |size: Size, _ctx| async move { Ok(CallToolResult::text("x".repeat(size.n))) },
        )
        .build()
        .unwrap();
    let (tree, endpoints) = start(server, TransportConfig::default()).await.unwrap();
    let url = format!("ws://{}/mcp", endpoints.ws.unwrap());
    let c = Client::builder()
        .request_timeout(Duration::from_secs(10))
        .reconnect(Reconnect {
            initial: Duration::from_millis(20),
            ..Reconnect::default()
        })
        .connect(WsConnector::new(url).max_message_bytes(LIMIT))
        .await
        .unwrap();
    let small = c.call_tool("big", json!({"n": LIMIT / 2})).await.unwrap();
    assert_eq!(small.content[0].as_text().map(str::len), Some(LIMIT / 2));
    let over = c.call_tool("big", json!({"n": LIMIT})).await;
    assert!(
        matches!(&over, Err(ClientError::Disconnected(why)) if why.contains("websocket")),
        "{over:?}"
    );
    // Redialled: the next call is answered.
    let again = c.call_tool("big", json!({"n": 10})).await.unwrap();
    assert_eq!(again.content[0].as_text(), Some("xxxxxxxxxx"));
    c.close().await;
    tree.shutdown().await;
}
