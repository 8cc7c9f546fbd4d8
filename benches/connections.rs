//! Memory per idle connection: starts `arbor serve` as its own process,
//! opens N connections to it (TCP and WebSocket sessions with one request
//! served; HTTP keep-alive connections with one 2026-07-28 request served;
//! 2026-07-28 `subscriptions/listen` streams; 2025-11-25 HTTP sessions with
//! their GET SSE stream open), and reads the server's RSS from /proc before
//! and after.
//!
//! `cargo bench --bench connections` (10 000 connections);
//! `cargo bench --bench connections -- --quick` (500, for CI: within even a
//! 1024-descriptor limit);
//! `cargo bench --bench connections -- ws tcp` (only those kinds).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

mod support;
use support::Served;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const DISCOVER: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}
"#;

async fn open(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(DISCOVER).await.unwrap();
    let (read, _) = stream.split();
    let mut line = String::new();
    tokio::io::BufReader::new(read)
        .read_line(&mut line)
        .await
        .unwrap();
    assert!(line.contains("\"result\""), "{line}");
    stream
}

/// Reads from `stream` until `end` has been seen.
async fn read_until(stream: &mut TcpStream, end: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(end.len()).any(|w| w == end) {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    got
}

fn post(authority: &str, session: Option<&str>, headers: &str, body: &str) -> String {
    let session = session
        .map(|s| format!("Mcp-Session-Id: {s}\r\n"))
        .unwrap_or_default();
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{session}{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A keep-alive HTTP connection that has served one 2026-07-28 request.
async fn open_http(authority: &str) -> TcpStream {
    let mut stream = TcpStream::connect(authority).await.unwrap();
    let body = std::str::from_utf8(DISCOVER).unwrap().trim();
    let request = post(
        authority,
        None,
        "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: server/discover\r\n",
        body,
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    read_until(&mut stream, b"\"result\"").await;
    stream
}

/// A 2025-11-25 session whose standalone GET stream is open and idle.
async fn open_http_session(authority: &str) -> TcpStream {
    let mut stream = TcpStream::connect(authority).await.unwrap();
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;
    stream
        .write_all(post(authority, None, "", init).as_bytes())
        .await
        .unwrap();
    let head = read_until(&mut stream, b"\r\n0\r\n\r\n").await;
    let head = String::from_utf8_lossy(&head);
    let session = head
        .lines()
        .find_map(|l| l.strip_prefix("mcp-session-id: "))
        .unwrap()
        .trim()
        .to_string();
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let request = post(
        authority,
        Some(&session),
        "MCP-Protocol-Version: 2025-11-25\r\n",
        initialized,
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    read_until(&mut stream, b"202 Accepted").await;
    let get = format!(
        "GET /mcp HTTP/1.1\r\nHost: {authority}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {session}\r\nMCP-Protocol-Version: 2025-11-25\r\n\r\n"
    );
    stream.write_all(get.as_bytes()).await.unwrap();
    // The priming event.
    read_until(&mut stream, b"retry: ").await;
    stream
}

/// A 2026-07-28 `subscriptions/listen` stream, open after its
/// acknowledgement.
async fn open_listen(authority: &str) -> TcpStream {
    let mut stream = TcpStream::connect(authority).await.unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let request = post(
        authority,
        None,
        "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: subscriptions/listen\r\n",
        body,
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    read_until(&mut stream, b"acknowledged").await;
    stream
}

/// A WebSocket session (subprotocol `mcp`) with one request served.
async fn open_ws(authority: &str) -> WebSocketStream<TcpStream> {
    let stream = TcpStream::connect(authority).await.unwrap();
    let mut request = format!("ws://{authority}/mcp")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "mcp".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    let discover = std::str::from_utf8(DISCOVER).unwrap().trim();
    ws.send(Message::text(discover)).await.unwrap();
    let answer = ws.next().await.unwrap().unwrap();
    assert!(answer.to_text().unwrap().contains("\"result\""), "{answer}");
    ws
}

/// What keeps a connection open while the server is measured.
#[allow(dead_code)]
enum Held {
    Tcp(TcpStream),
    Ws(Box<WebSocketStream<TcpStream>>),
}

#[derive(Clone, Copy)]
enum Kind {
    Tcp,
    WebSocket,
    Http,
    Listen,
    HttpSession,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Tcp => "tcp",
            Kind::WebSocket => "ws",
            Kind::Http => "http",
            Kind::Listen => "http-listen",
            Kind::HttpSession => "http-session-sse",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Tcp => "idle TCP sessions (one request served)",
            Kind::WebSocket => "idle WebSocket sessions (one request served)",
            Kind::Http => "idle HTTP keep-alive connections (one 2026-07-28 request served)",
            Kind::Listen => "idle 2026-07-28 subscriptions/listen SSE streams",
            Kind::HttpSession => "idle 2025-11-25 HTTP sessions, each with its GET SSE stream open",
        }
    }

    /// The endpoint of this kind among the lines `arbor serve` printed.
    fn endpoint(self, served: &Served) -> String {
        match self {
            Kind::Tcp => served.endpoint("tcp://", ""),
            Kind::WebSocket => served.endpoint("ws://", "/mcp"),
            Kind::Http | Kind::Listen | Kind::HttpSession => served.endpoint("http://", "/mcp"),
        }
    }
}

async fn open_kind(kind: Kind, addr: String) -> Held {
    match kind {
        Kind::Tcp => Held::Tcp(open(&addr).await),
        Kind::WebSocket => Held::Ws(Box::new(open_ws(&addr).await)),
        Kind::Http => Held::Tcp(open_http(&addr).await),
        Kind::Listen => Held::Tcp(open_listen(&addr).await),
        Kind::HttpSession => Held::Tcp(open_http_session(&addr).await),
    }
}

/// Opens `n` connections of `kind` to a fresh `arbor serve` and prints what
/// each costs the server.
fn measure(kind: Kind, n: usize, quick: bool) {
    let served = Served::start(&[]);
    let addr = kind.endpoint(&served);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let before = served.rss_kib();
    let started = Instant::now();
    let streams = runtime.block_on(async {
        let mut streams = Vec::with_capacity(n);
        let mut batch = Vec::new();
        for _ in 0..n {
            batch.push(tokio::spawn(open_kind(kind, addr.clone())));
            if batch.len() == 32 {
                for s in batch.drain(..) {
                    streams.push(s.await.unwrap());
                }
            }
        }
        for s in batch {
            streams.push(s.await.unwrap());
        }
        streams
    });
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let after = served.rss_kib();
    let per = (after.saturating_sub(before) * 1024) as f64 / n as f64;
    println!(
        "arbor connections bench: {} ({})",
        kind.name(),
        if quick { "quick" } else { "full" }
    );
    println!("{:<27}{n}", kind.what());
    println!(
        "established in             {:.1} ms ({:.0}/s)",
        took.as_secs_f64() * 1e3,
        n as f64 / took.as_secs_f64()
    );
    println!("server RSS before / after  {before} KiB / {after} KiB");
    println!("RSS per idle connection    {per:.0} B (transport buffers included)");
    println!(
        "JSON {{\"bench\":\"connections\",\"transport\":\"{}\",\"connections\":{n},\"establish_secs\":{:.4},\"rss_before_kib\":{before},\"rss_after_kib\":{after},\"rss_bytes_per_connection\":{per:.1}}}",
        kind.name(),
        took.as_secs_f64()
    );
    drop(streams);
    drop(runtime);
}

fn main() {
    let quick =
        std::env::args().any(|a| a == "--quick") || !std::env::args().any(|a| a == "--bench");
    let n: usize = if quick { 500 } else { 10_000 };
    // Every client connection is a descriptor here too.
    #[cfg(unix)]
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    for kind in [
        Kind::Tcp,
        Kind::WebSocket,
        Kind::Http,
        Kind::Listen,
        Kind::HttpSession,
    ] {
        // Like criterion: other arguments pick kinds by name.
        let filters: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with("--"))
            .collect();
        let picked = filters.is_empty() || filters.iter().any(|f| kind.name() == f);
        if picked {
            measure(kind, n, quick);
        }
    }
}
