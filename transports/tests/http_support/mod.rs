//! A tiny HTTP/1.1 client for the HTTP transport tests: raw requests over a
//! `TcpStream`, the status line and headers, whole bodies (by length or
//! chunked), and server-sent events read one by one with a timeout.
#![allow(dead_code)]

use arbor_mcp::Tool;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any single read may take before the test fails.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// The 2026-07-28 `_meta` envelope.
pub(crate) fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

/// A status line and headers (names lowercased).
#[derive(Clone, Debug)]
pub(crate) struct Head {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
}

impl Head {
    /// The first header of this name.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn content_type(&self) -> &str {
        self.get("content-type").unwrap_or_default()
    }

    pub(crate) fn is_sse(&self) -> bool {
        self.content_type().starts_with("text/event-stream")
    }

    fn chunked(&self) -> bool {
        self.get("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }
}

/// One connection.
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    addr: SocketAddr,
    raw: Vec<u8>,
    eof: bool,
}

impl Conn {
    pub(crate) async fn connect(addr: SocketAddr) -> Conn {
        Conn {
            stream: TcpStream::connect(addr).await.unwrap(),
            addr,
            raw: Vec::new(),
            eof: false,
        }
    }

    /// Sends a request. `Host` (this server) and `Content-Length` are added
    /// unless `headers` has them (or `Transfer-Encoding`).
    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) {
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        let has = |n: &str| headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n));
        if !has("host") {
            head.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !has("content-length")
            && !has("transfer-encoding")
            && (method == "POST" || !body.is_empty())
        {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        self.send_raw(&bytes).await;
    }

    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads more bytes: `Some(false)` at end of stream, `None` after
    /// `timeout` without any.
    async fn try_fill(&mut self, timeout: Duration) -> Option<bool> {
        if self.eof {
            return Some(false);
        }
        let mut buf = [0u8; 16 << 10];
        let n = tokio::time::timeout(timeout, self.stream.read(&mut buf))
            .await
            .ok()?
            .unwrap_or(0);
        if n == 0 {
            self.eof = true;
            return Some(false);
        }
        self.raw.extend_from_slice(&buf[..n]);
        Some(true)
    }

    /// Reads more bytes; false at end of stream.
    async fn fill(&mut self, timeout: Duration) -> bool {
        self.try_fill(timeout)
            .await
            .unwrap_or_else(|| panic!("nothing from the server within {timeout:?}"))
    }

    /// Whether the server closed the connection (without sending more)
    /// within `timeout`.
    pub(crate) async fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.eof {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            let mut buf = [0u8; 4096];
            match tokio::time::timeout(left, self.stream.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0) | Err(_)) => self.eof = true,
                Ok(Ok(n)) => self.raw.extend_from_slice(&buf[..n]),
            }
        }
        true
    }

    /// The status line and headers of the next response.
    pub(crate) async fn head(&mut self) -> Head {
        loop {
            if let Some(end) = find(&self.raw, b"\r\n\r\n") {
                let text = String::from_utf8(self.raw[..end].to_vec()).unwrap();
                self.raw.drain(..end + 4);
                let mut lines = text.split("\r\n");
                let status_line = lines.next().unwrap();
                let status = status_line
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                return Head { status, headers };
            }
            assert!(
                self.fill(READ_TIMEOUT).await,
                "the connection closed before a response head; got {:?}",
                String::from_utf8_lossy(&self.raw)
            );
        }
    }

    /// The whole body of a response with this head.
    pub(crate) async fn body(&mut self, head: &Head) -> Vec<u8> {
        if head.chunked() {
            let mut out = Vec::new();
            loop {
                match self.chunk(READ_TIMEOUT).await {
                    Some(data) => out.extend_from_slice(&data),
                    None => return out,
                }
            }
        }
        let len: usize = head
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while self.raw.len() < len {
            assert!(self.fill(READ_TIMEOUT).await, "body cut short");
        }
        self.raw.drain(..len).collect()
    }

    /// The next chunk's data; `None` after the last chunk (or at EOF).
    async fn chunk(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        self.try_chunk(timeout)
            .await
            .unwrap_or_else(|| panic!("no chunk within {timeout:?}"))
    }

    /// As [`Conn::chunk`], but `None` after `timeout` without a whole chunk.
    async fn try_chunk(&mut self, timeout: Duration) -> Option<Option<Vec<u8>>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(line_end) = find(&self.raw, b"\r\n") {
                let size_text = String::from_utf8_lossy(&self.raw[..line_end]).to_string();
                let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                    .unwrap_or_else(|_| panic!("bad chunk size line {size_text:?}"));
                if size == 0 {
                    // The last chunk, then (no trailers) CRLF.
                    if self.raw.len() >= line_end + 4 {
                        self.raw.drain(..line_end + 4);
                        return Some(None);
                    }
                } else if self.raw.len() >= line_end + 2 + size + 2 {
                    let data = self.raw[line_end + 2..line_end + 2 + size].to_vec();
                    self.raw.drain(..line_end + 2 + size + 2);
                    return Some(Some(data));
                }
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !self.try_fill(left).await? {
                return Some(None);
            }
        }
    }

    /// Reads the rest of a response as server-sent events.
    pub(crate) fn sse(self, head: &Head) -> Sse {
        assert!(head.is_sse(), "expected an event stream, got {head:?}");
        assert!(head.chunked(), "an event stream is sent chunked: {head:?}");
        Sse {
            conn: self,
            text: String::new(),
            ended: false,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A response read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) head: Head,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn status(&self) -> u16 {
        self.head.status
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "a JSON body ({e}): {:?} {:?}",
                self.head,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// One server-sent event.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Event {
    pub(crate) id: Option<String>,
    pub(crate) event: Option<String>,
    /// Data lines, joined with `\n`; `None` without any `data:` line.
    pub(crate) data: Option<String>,
    pub(crate) retry: Option<u64>,
    /// Comment lines (`:` …) in the block.
    pub(crate) comments: usize,
}

impl Event {
    fn parse(block: &str) -> Event {
        let mut e = Event::default();
        for line in block.split('\n') {
            if line.starts_with(':') {
                e.comments += 1;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => e.id = Some(value.to_string()),
                "event" => e.event = Some(value.to_string()),
                "retry" => e.retry = value.parse().ok(),
                "data" => {
                    e.data = Some(match e.data.take() {
                        Some(d) => format!("{d}\n{value}"),
                        None => value.to_string(),
                    })
                }
                _ => {}
            }
        }
        e
    }

    /// Only comments: a keep-alive.
    pub(crate) fn is_comment(&self) -> bool {
        self.id.is_none() && self.event.is_none() && self.data.is_none() && self.retry.is_none()
    }

    /// A priming (or release) event: an id and empty data.
    pub(crate) fn is_priming(&self) -> bool {
        self.id.is_some() && self.data.as_deref() == Some("")
    }

    /// The data as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(self.data.as_deref().unwrap_or_default())
            .unwrap_or_else(|e| panic!("JSON data ({e}) in {self:?}"))
    }
}

/// An event stream being read.
pub(crate) struct Sse {
    pub(crate) conn: Conn,
    text: String,
    ended: bool,
}

impl Sse {
    /// The next whole block (event or comment) already received.
    fn take_block(&mut self) -> Option<Event> {
        if self.text.contains('\r') {
            self.text = self.text.replace("\r\n", "\n");
        }
        let end = self.text.find("\n\n")?;
        let block: String = self.text.drain(..end + 2).collect();
        Some(Event::parse(block.trim_end_matches('\n')))
    }

    /// The next block, `Ok(None)` once the stream ended, `Err(())` after
    /// `timeout` without one.
    pub(crate) async fn try_block(&mut self, timeout: Duration) -> Result<Option<Event>, ()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(e) = self.take_block() {
                return Ok(Some(e));
            }
            if self.ended {
                return Ok(None);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.conn.try_chunk(left).await {
                None => return Err(()),
                Some(Some(data)) => self.text.push_str(&String::from_utf8(data).unwrap()),
                Some(None) => self.ended = true,
            }
        }
    }

    /// The next block (event or comment), or `None` once the stream ended;
    /// panics after `timeout` without one.
    pub(crate) async fn block_within(&mut self, timeout: Duration) -> Option<Event> {
        self.try_block(timeout)
            .await
            .unwrap_or_else(|()| panic!("no event within {timeout:?}"))
    }

    /// The next event that is not a keep-alive comment, or `None` at the end.
    pub(crate) async fn next(&mut self) -> Option<Event> {
        loop {
            let e = self.block_within(READ_TIMEOUT).await?;
            if !e.is_comment() {
                return Some(e);
            }
        }
    }

    /// The next event carrying a JSON-RPC message (priming events skipped).
    pub(crate) async fn message(&mut self) -> Option<(Event, Value)> {
        loop {
            let e = self.next().await?;
            if e.data.as_deref().is_some_and(|d| !d.is_empty()) {
                let v = e.json();
                return Some((e, v));
            }
        }
    }

    /// Every remaining event, until the stream ends.
    pub(crate) async fn rest(&mut self) -> Vec<Event> {
        let mut all = Vec::new();
        while let Some(e) = self.next().await {
            all.push(e);
        }
        all
    }

    /// Whether the stream stays open with nothing but comments for `wait`.
    pub(crate) async fn quiet_for(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.try_block(left).await {
                Err(()) => return true,
                Ok(Some(e)) if e.is_comment() => continue,
                Ok(_) => return false,
            }
        }
    }
}

/// Sends one request on a new connection and returns its head with the
/// connection, positioned at the body.
pub(crate) async fn open(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (Head, Conn) {
    let mut conn = Conn::connect(addr).await;
    conn.send(method, path, headers, body).await;
    let head = conn.head().await;
    (head, conn)
}

/// Sends one request on a new connection and reads the whole response.
pub(crate) async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let (head, mut conn) = open(addr, method, path, headers, body).await;
    let body = conn.body(&head).await;
    Reply { head, body }
}

/// The headers every Streamable HTTP POST carries.
pub(crate) const POST_HEADERS: [(&str, &str); 2] = [
    ("Content-Type", "application/json"),
    ("Accept", "application/json, text/event-stream"),
];

/// POST headers plus `extra`.
pub(crate) fn post_headers<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h = POST_HEADERS.to_vec();
    h.extend_from_slice(extra);
    h
}

/// A 2026-07-28 request's body.
pub(crate) fn modern_request(id: Value, method: &str, mut params: Value) -> Value {
    params["_meta"] = meta();
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// POSTs a 2026-07-28 request with the matching standard headers (and
/// `Mcp-Name` for `name`, plus `extra`), reading a JSON answer whole.
pub(crate) async fn modern_call(
    addr: SocketAddr,
    body: &Value,
    name: Option<&str>,
    extra: &[(&str, &str)],
) -> Reply {
    let method = body["method"].as_str().unwrap().to_string();
    let mut headers = post_headers(&[
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", &method),
    ]);
    if let Some(name) = name {
        headers.push(("Mcp-Name", name));
    }
    headers.extend_from_slice(extra);
    exchange(addr, "POST", "/mcp", &headers, body.to_string().as_bytes()).await
}

/// A handshake-era session on Streamable HTTP.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub(crate) addr: SocketAddr,
    pub(crate) id: String,
    pub(crate) version: String,
}

impl Session {
    /// `initialize` at `version`: returns the session, the initialize
    /// response's head and every event of its stream.
    pub(crate) async fn initialize(addr: SocketAddr, version: &str) -> (Session, Head, Vec<Event>) {
        let body = initialize_request(version);
        let (head, conn) = open(
            addr,
            "POST",
            "/mcp",
            &POST_HEADERS,
            body.to_string().as_bytes(),
        )
        .await;
        assert_eq!(head.status, 200, "initialize: {head:?}");
        let id = head
            .get("mcp-session-id")
            .expect("initialize answered with a session id")
            .to_string();
        let events = conn.sse(&head).rest().await;
        let session = Session {
            addr,
            id,
            version: version.to_string(),
        };
        (session, head, events)
    }

    /// `initialize` then `notifications/initialized`.
    pub(crate) async fn ready(addr: SocketAddr, version: &str) -> Session {
        let (session, _, _) = Session::initialize(addr, version).await;
        let r = session
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(r.status(), 202);
        session
    }

    /// The session's headers, with `extra`.
    pub(crate) fn headers<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut h = post_headers(&[
            ("Mcp-Session-Id", self.id.as_str()),
            ("MCP-Protocol-Version", self.version.as_str()),
        ]);
        h.extend_from_slice(extra);
        h
    }

    /// POSTs `body` in the session, reading the answer whole.
    pub(crate) async fn post(&self, body: &Value) -> Reply {
        exchange(
            self.addr,
            "POST",
            "/mcp",
            &self.headers(&[]),
            body.to_string().as_bytes(),
        )
        .await
    }

    /// POSTs a request in the session and returns its event stream.
    pub(crate) async fn open_post(&self, body: &Value) -> Sse {
        let (head, conn) = open(
            self.addr,
            "POST",
            "/mcp",
            &self.headers(&[]),
            body.to_string().as_bytes(),
        )
        .await;
        assert_eq!(head.status, 200, "{head:?}");
        conn.sse(&head)
    }

    /// GETs the standalone stream, or resumes after `last_event_id`.
    pub(crate) async fn get(&self, last_event_id: Option<&str>) -> (Head, Conn) {
        let mut headers = vec![
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", self.id.as_str()),
            ("MCP-Protocol-Version", self.version.as_str()),
        ];
        if let Some(id) = last_event_id {
            headers.push(("Last-Event-ID", id));
        }
        open(self.addr, "GET", "/mcp", &headers, b"").await
    }

    /// A GET that must be an event stream.
    pub(crate) async fn get_stream(&self, last_event_id: Option<&str>) -> Sse {
        let (head, conn) = self.get(last_event_id).await;
        assert_eq!(head.status, 200, "{head:?}");
        conn.sse(&head)
    }
}

/// A TCP connection to arbor's line transport: one JSON value a line.
pub(crate) struct Line {
    write: tokio::net::tcp::OwnedWriteHalf,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>>,
}

impl Line {
    pub(crate) async fn connect(addr: SocketAddr) -> Line {
        Line::from_stream(TcpStream::connect(addr).await.unwrap())
    }

    /// Over a stream already connected.
    pub(crate) fn from_stream(stream: TcpStream) -> Line {
        use tokio::io::AsyncBufReadExt;
        let (read, write) = stream.into_split();
        Line {
            write,
            lines: tokio::io::BufReader::new(read).lines(),
        }
    }

    /// Sends a 2026-07-28 `server/discover` numbered `id`; its answer.
    pub(crate) async fn call(&mut self, id: u64) -> Value {
        let request = modern_request(json!(id), "server/discover", json!({}));
        self.send(&request).await;
        self.recv().await.expect("an answer")
    }

    /// Writes `message` as one line.
    pub(crate) async fn send(&mut self, message: &Value) {
        self.write
            .write_all(format!("{message}\n").as_bytes())
            .await
            .unwrap();
    }

    /// The next line read, `None` once the server has closed.
    pub(crate) async fn recv(&mut self) -> Option<Value> {
        let line = tokio::time::timeout(Duration::from_secs(5), self.lines.next_line())
            .await
            .expect("a line within 5 s")
            .ok()??;
        Some(serde_json::from_str(&line).unwrap())
    }
}

/// Polls `cond` every 10 ms until it holds; panics after `within`.
pub(crate) async fn eventually<F, Fut>(within: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The test server's tools: `echo`, `regional` (an `x-mcp-header`
/// parameter), `progress` (three progress reports, then a result) and `nap`
/// (300 ms, then "rested"), with progress reports unthrottled.
pub(crate) fn builder() -> arbor_mcp::ServerBuilder {
    use arbor_mcp::server::ServerConfig;
    use arbor_mcp::{CallToolResult, ServerBuilder};
    ServerBuilder::new("http-test", "1")
        .config(ServerConfig {
            progress_interval: Duration::ZERO,
            ..ServerConfig::default()
        })
        .tool_with_schema(Tool::new("echo").description("Echoes").input_schema(json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]})), |args, _ctx| async move {
                Ok(CallToolResult::text(
                    args["text"].as_str().unwrap_or_default().to_string(),
                ))
            })
        .tool_with_schema(Tool::new("regional").description("Runs a query in a region").input_schema(json!({"type": "object", "properties": {
                "region": {"type": "string", "x-mcp-header": "Region"},
                "query": {"type": "string"}}, "required": ["query"]})), |args, _ctx| async move {
                Ok(CallToolResult::text(format!(
                    "{} in {}",
                    args["query"].as_str().unwrap_or_default(),
                    args["region"].as_str().unwrap_or("nowhere")
                )))
            })
        .tool_with_schema(Tool::new("nap").description("Takes 300 ms").input_schema(json!({"type": "object"})), |_args, _ctx| async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(CallToolResult::text("rested"))
            })
        .tool_with_schema(Tool::new("progress").description("Reports progress three times").input_schema(json!({"type": "object"})), |_args, ctx| async move {
                for i in 1..=3 {
                    ctx.progress(f64::from(i), Some(3.0), None);
                }
                Ok(CallToolResult::text("done"))
            })
}

/// The test server with a 200 ms drain and a `stuck` tool that would take
/// 30 s: what a shutdown cuts short.
pub(crate) fn stuck_server() -> arbor_mcp::McpServer {
    use arbor_mcp::server::ServerConfig;
    builder()
        .config(ServerConfig {
            drain_timeout: Duration::from_millis(200),
            ..ServerConfig::default()
        })
        .tool_with_schema(
            Tool::new("stuck")
                .description("Takes 30 s")
                .input_schema(json!({"type": "object"})),
            |_args, _ctx| async move {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(arbor_mcp::CallToolResult::text("too late"))
            },
        )
        .build()
        .unwrap()
}

/// The test server with a 100 KiB inbound budget.
pub(crate) fn small_budget_server() -> arbor_mcp::McpServer {
    builder()
        .config(arbor_mcp::server::ServerConfig {
            max_inbound_bytes: 100 << 10,
            ..arbor_mcp::server::ServerConfig::default()
        })
        .build()
        .unwrap()
}

/// Starts the transports for `server` with `http` settings.
pub(crate) async fn start_http(
    server: arbor_mcp::McpServer,
    http: arbor_transports::http::HttpConfig,
) -> (arbor_supervision::SupervisorRef, SocketAddr) {
    let (tree, endpoints) = arbor_transports::start(
        server,
        arbor_transports::TransportConfig {
            http: Some(http),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    (tree, endpoints.http.unwrap())
}

/// Starts the transports with these Host and Origin rules; returns the
/// tree and the HTTP and WebSocket addresses.
pub(crate) async fn start_with_origins(
    server: arbor_mcp::McpServer,
    origins: arbor_transports::OriginPolicy,
) -> (
    arbor_supervision::SupervisorRef,
    arbor_transports::Endpoints,
) {
    arbor_transports::start(
        server,
        arbor_transports::TransportConfig {
            origins,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// Opens a legacy (2024-11-05) session's stream with `GET /sse`; returns it
/// with the POST path its first event names.
pub(crate) async fn open_legacy(addr: SocketAddr) -> (Sse, String) {
    let (head, conn) = open(addr, "GET", "/sse", &[("Accept", "text/event-stream")], b"").await;
    assert_eq!(head.status, 200);
    let mut sse = conn.sse(&head);
    let endpoint = sse.next().await.unwrap();
    assert_eq!(endpoint.event.as_deref(), Some("endpoint"), "{endpoint:?}");
    (sse, endpoint.data.unwrap())
}

/// POSTs `body` to a legacy session's `path`.
pub(crate) async fn post_legacy(addr: SocketAddr, path: &str, body: &Value) -> Reply {
    exchange(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await
}

/// An `initialize` request (id 0) at `version`.
pub(crate) fn initialize_request(version: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "http-test", "version": "1"}}})
}
