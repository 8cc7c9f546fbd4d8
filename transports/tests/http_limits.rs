//! HTTP requests the transport refuses before any MCP session sees them:
//! media types, malformed JSON, size limits at their edge, DNS rebinding
//! (Host and Origin), and the connection limit.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod http_support;

use std::time::Duration;

use arbor_transports::http::HttpConfig;
use arbor_transports::{start, OriginPolicy, TransportConfig};
use http_support::*;
use serde_json::{json, Value};

async fn started(config: HttpConfig) -> (arbor_supervision::SupervisorRef, std::net::SocketAddr) {
    start_http(builder().build().unwrap(), config).await
}

async fn with_origins(
    origins: OriginPolicy,
) -> (arbor_supervision::SupervisorRef, std::net::SocketAddr) {
    let (tree, endpoints) = start_with_origins(builder().build().unwrap(), origins).await;
    (tree, endpoints.http.unwrap())
}

fn discover(id: u64) -> String {
    modern_request(json!(id), "server/discover", json!({})).to_string()
}

const DISCOVER_HEADERS: [(&str, &str); 2] = [
    ("MCP-Protocol-Version", "2026-07-28"),
    ("Mcp-Method", "server/discover"),
];

/// POSTs `server/discover` with these headers (and `Content-Type` JSON).
async fn post_discover(addr: std::net::SocketAddr, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(&DISCOVER_HEADERS);
    all.extend_from_slice(headers);
    exchange(addr, "POST", "/mcp", &all, discover(1).as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_whose_accept_lacks_json_or_event_stream_is_406() {
    let (tree, addr) = started(HttpConfig::default()).await;
    for accept in [
        "application/json",
        "text/event-stream",
        "text/html",
        "application/*",
        // q=0 refuses a type.
        "application/json, text/event-stream;q=0",
        "application/json;q=0.0, text/event-stream",
        "*/*;q=0",
    ] {
        let r = post_discover(addr, &[("Accept", accept)]).await;
        assert_eq!(r.status(), 406, "Accept: {accept}");
    }
    // No Accept at all.
    assert_eq!(post_discover(addr, &[]).await.status(), 406);
    // Both, in any form.
    for accept in [
        "application/json, text/event-stream",
        "text/event-stream;q=0.9,application/json",
        "application/*, text/*",
        "APPLICATION/JSON, text/event-stream; Q=0.5",
        "*/*",
    ] {
        let r = post_discover(addr, &[("Accept", accept)]).await;
        assert_eq!(r.status(), 200, "Accept: {accept}");
    }
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_whose_accept_lacks_event_stream_is_406() {
    let (tree, addr) = started(HttpConfig::default()).await;
    let session = Session::ready(addr, "2025-11-25").await;
    let r = exchange(
        addr,
        "GET",
        "/mcp",
        &[
            ("Accept", "application/json"),
            ("Mcp-Session-Id", &session.id),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        b"",
    )
    .await;
    assert_eq!(r.status(), 406);
    // With it, the stream opens.
    let (head, _) = session.get(None).await;
    assert_eq!(head.status, 200);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_json_by_content_type_is_415() {
    let (tree, addr) = started(HttpConfig::default()).await;
    let accept = ("Accept", "application/json, text/event-stream");
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut headers = vec![accept];
        headers.extend_from_slice(&DISCOVER_HEADERS);
        if let Some(c) = content_type {
            headers.push(("Content-Type", c));
        }
        let r = exchange(addr, "POST", "/mcp", &headers, discover(1).as_bytes()).await;
        assert_eq!(r.status(), 415, "Content-Type: {content_type:?}");
    }
    let mut headers = vec![accept, ("Content-Type", "Application/JSON; charset=utf-8")];
    headers.extend_from_slice(&DISCOVER_HEADERS);
    let r = exchange(addr, "POST", "/mcp", &headers, discover(1).as_bytes()).await;
    assert_eq!(r.status(), 200);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_is_400_parse_error() {
    let (tree, addr) = started(HttpConfig::default()).await;
    let mut headers = post_headers(&DISCOVER_HEADERS);
    headers.push(("Mcp-Session-Id", "ignored"));
    for body in [&b"{\"jsonrpc\": \"2.0\", \"id\": 1,"[..], b"not json"] {
        let r = exchange(addr, "POST", "/mcp", &headers, body).await;
        assert_eq!(r.status(), 400);
        assert_eq!(r.json()["error"]["code"], -32700);
    }
    tree.shutdown().await;
}

/// A `server/discover` request padded with whitespace to exactly `len`
/// bytes.
fn padded_discover(len: usize) -> Vec<u8> {
    let mut body = discover(1).into_bytes();
    assert!(body.len() <= len);
    body.resize(len, b' ');
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_max_body_bytes_is_413_and_one_at_it_is_served() {
    let max = 512;
    let (tree, addr) = started(HttpConfig {
        max_body_bytes: max,
        ..HttpConfig::default()
    })
    .await;
    let headers = post_headers(&DISCOVER_HEADERS);
    let r = exchange(addr, "POST", "/mcp", &headers, &padded_discover(max)).await;
    assert_eq!(r.status(), 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["id"], 1);
    let r = exchange(addr, "POST", "/mcp", &headers, &padded_discover(max + 1)).await;
    assert_eq!(r.status(), 413);
    assert_eq!(r.json()["error"]["data"]["max"], max);

    // The same without a length up front: a chunked body.
    let chunked = |body: Vec<u8>| {
        let mut out = Vec::new();
        for piece in body.chunks(100) {
            out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            out.extend_from_slice(piece);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    };
    let mut headers = headers.clone();
    headers.push(("Transfer-Encoding", "chunked"));
    let r = exchange(
        addr,
        "POST",
        "/mcp",
        &headers,
        &chunked(padded_discover(max)),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = exchange(
        addr,
        "POST",
        "/mcp",
        &headers,
        &chunked(padded_discover(max + 1)),
    )
    .await;
    assert_eq!(r.status(), 413);

    // A broken chunked encoding is a bad request, not a large one.
    let mut broken = b"zz\r\n".to_vec();
    broken.extend_from_slice(&padded_discover(256));
    let r = exchange(addr, "POST", "/mcp", &headers, &broken).await;
    assert_eq!(r.status(), 400, "{:?}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["error"]["data"]["detail"].is_string());
    tree.shutdown().await;
}

/// A request head of exactly `len` bytes (request line, headers, blank
/// line), padded with one `X-Pad` header.
fn head_of(addr: std::net::SocketAddr, len: usize, body: &[u8]) -> Vec<u8> {
    let build = |pad: usize| {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n\
             Mcp-Method: server/discover\r\nContent-Length: {}\r\nX-Pad: {}\r\n\r\n",
            body.len(),
            "p".repeat(pad)
        )
    };
    let bare = build(0).len();
    let head = build(len - bare);
    assert_eq!(head.len(), len);
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_over_max_header_bytes_is_431_and_one_just_under_is_served() {
    // 8 KiB is the least hyper allows, and the default.
    let (tree, addr) = started(HttpConfig::default()).await;
    let body = discover(1);
    let mut under = Conn::connect(addr).await;
    under
        .send_raw(&head_of(addr, 8192 - 64, body.as_bytes()))
        .await;
    let head = under.head().await;
    assert_eq!(head.status, 200, "{head:?}");

    let mut over = Conn::connect(addr).await;
    over.send_raw(&head_of(addr, 8192 + 64, body.as_bytes()))
        .await;
    let head = over.head().await;
    assert_eq!(head.status, 431, "{head:?}");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_host_is_403() {
    let (tree, addr) = started(HttpConfig::default()).await;
    for host in [
        "evil.example.com",
        "evil.example.com:80",
        "localhost.evil.example.com",
        "localhost:80@evil.example.com",
        "[::1]evil.example.com",
        "localhost:",
        "localhost:80x",
    ] {
        let r = post_discover(
            addr,
            &[
                ("Accept", "application/json, text/event-stream"),
                ("Host", host),
            ],
        )
        .await;
        assert_eq!(r.status(), 403, "Host: {host}");
    }
    // Also on the legacy endpoints and for GET.
    let r = exchange(addr, "GET", "/sse", &[("Host", "evil.example.com")], b"").await;
    assert_eq!(r.status(), 403);
    let r = exchange(
        addr,
        "GET",
        "/mcp",
        &[
            ("Host", "evil.example.com"),
            ("Accept", "text/event-stream"),
        ],
        b"",
    )
    .await;
    assert_eq!(r.status(), 403);
    tree.shutdown().await;
}

/// The Host and Origin check comes before anything else on every route and
/// method: a foreign origin learns nothing, not even which methods exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_method_checks_the_origin_first() {
    let (tree, addr) = started(HttpConfig::default()).await;
    for (method, path) in [
        ("POST", "/mcp"),
        ("GET", "/mcp"),
        ("DELETE", "/mcp"),
        ("PUT", "/mcp"),
        ("GET", "/sse"),
        ("POST", "/sse"),
        ("POST", "/message"),
        ("GET", "/message"),
    ] {
        let r = exchange(
            addr,
            method,
            path,
            &[("Origin", "http://evil.example.com")],
            b"",
        )
        .await;
        assert_eq!(r.status(), 403, "{method} {path}");
        assert_eq!(r.json()["error"]["code"], -32000, "{method} {path}");
    }
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_is_403() {
    let (tree, addr) = started(HttpConfig::default()).await;
    for origin in [
        "http://evil.example.com",
        "http://localhost.evil.example.com",
        "null",
        "http://localhost:80@evil.example.com",
        "http://[::1]evil.example.com",
        "javascript://localhost",
    ] {
        let r = post_discover(
            addr,
            &[
                ("Accept", "application/json, text/event-stream"),
                ("Origin", origin),
            ],
        )
        .await;
        assert_eq!(r.status(), 403, "Origin: {origin}");
    }
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_hosts_and_origins_with_any_port_are_accepted() {
    let (tree, addr) = started(HttpConfig::default()).await;
    let accept = ("Accept", "application/json, text/event-stream");
    for host in [
        "localhost",
        "localhost:3000",
        "127.0.0.1",
        "127.0.0.1:9",
        "[::1]",
        "[::1]:8080",
        "LOCALHOST:1",
    ] {
        let r = post_discover(addr, &[accept, ("Host", host)]).await;
        assert_eq!(r.status(), 200, "Host: {host}");
    }
    for origin in [
        "http://localhost:3000",
        "https://127.0.0.1",
        "http://[::1]:8080",
    ] {
        let r = post_discover(addr, &[accept, ("Origin", origin)]).await;
        assert_eq!(r.status(), 200, "Origin: {origin}");
    }
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_origin_is_accepted() {
    let (tree, addr) = with_origins(OriginPolicy {
        allowed_origins: vec!["https://app.example".into()],
        ..OriginPolicy::default()
    })
    .await;
    let accept = ("Accept", "application/json, text/event-stream");
    let r = post_discover(addr, &[accept, ("Origin", "https://app.example")]).await;
    assert_eq!(r.status(), 200);
    // Only that origin: not another scheme, port or host.
    for origin in [
        "http://app.example",
        "https://app.example:8443",
        "https://app.example.evil",
    ] {
        let r = post_discover(addr, &[accept, ("Origin", origin)]).await;
        assert_eq!(r.status(), 403, "Origin: {origin}");
    }
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_host_list_replaces_the_loopback_names() {
    let (tree, addr) = with_origins(OriginPolicy {
        allowed_hosts: vec!["mcp.example".into()],
        ..OriginPolicy::default()
    })
    .await;
    let accept = ("Accept", "application/json, text/event-stream");
    for (host, status) in [
        ("mcp.example", 200),
        ("MCP.example:8443", 200),
        ("localhost", 403),
        ("127.0.0.1", 403),
        ("evil.mcp.example", 403),
    ] {
        let r = post_discover(addr, &[accept, ("Host", host)]).await;
        assert_eq!(r.status(), status, "Host: {host}");
    }
    // Origins on the listed host pass; loopback ones no longer do.
    let host = ("Host", "mcp.example");
    let r = post_discover(addr, &[accept, host, ("Origin", "https://mcp.example")]).await;
    assert_eq!(r.status(), 200);
    let r = post_discover(addr, &[accept, host, ("Origin", "http://localhost:3000")]).await;
    assert_eq!(r.status(), 403);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_origin_gets_cors_answers_and_others_none() {
    let (tree, addr) = with_origins(OriginPolicy {
        allowed_origins: vec!["https://app.example".into()],
        ..OriginPolicy::default()
    })
    .await;
    let preflight = |origin: &'static str| async move {
        let headers = [
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "content-type, mcp-protocol-version, mcp-param-region",
            ),
        ];
        exchange(addr, "OPTIONS", "/mcp", &headers, b"").await
    };
    for origin in ["https://app.example", "http://localhost:5173"] {
        let r = preflight(origin).await;
        assert!(r.status() < 300, "{origin}: {}", r.status());
        assert_eq!(r.head.get("access-control-allow-origin"), Some(origin));
        let methods = r.head.get("access-control-allow-methods").unwrap();
        assert!(
            methods.contains("POST") && methods.contains("DELETE"),
            "{methods}"
        );
        let asked = r.head.get("access-control-allow-headers").unwrap();
        assert!(asked.contains("mcp-param-region"), "{asked}");
    }
    let r = preflight("https://evil.example").await;
    assert_eq!(r.head.get("access-control-allow-origin"), None);

    // A real request from the page: its script may read the session id.
    let accept = ("Accept", "application/json, text/event-stream");
    let r = post_discover(addr, &[accept, ("Origin", "https://app.example")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.head.get("access-control-allow-origin"),
        Some("https://app.example")
    );
    let exposed = r.head.get("access-control-expose-headers").unwrap();
    assert!(exposed.contains("mcp-session-id"), "{exposed}");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_over_max_connections_is_503() {
    let (tree, endpoints) = start(
        builder().build().unwrap(),
        TransportConfig {
            max_connections: Some(1),
            ..TransportConfig::default()
        },
    )
    .await
    .unwrap();
    let addr = endpoints.http.unwrap();
    // One connection, kept open (HTTP/1.1 keep-alive).
    let mut first = Conn::connect(addr).await;
    first
        .send(
            "POST",
            "/mcp",
            &post_headers(&DISCOVER_HEADERS),
            discover(1).as_bytes(),
        )
        .await;
    let head = first.head().await;
    assert_eq!(head.status, 200);
    first.body(&head).await;

    let mut second = Conn::connect(addr).await;
    let head = second.head().await;
    assert_eq!(head.status, 503);
    let refusal: Value = serde_json::from_slice(&second.body(&head).await).unwrap();
    assert_eq!(refusal["error"]["data"]["limit"], "max_connections");
    assert!(second.closed_within(Duration::from_secs(2)).await);

    // The open connection is still served.
    first
        .send(
            "POST",
            "/mcp",
            &post_headers(&DISCOVER_HEADERS),
            discover(2).as_bytes(),
        )
        .await;
    let head = first.head().await;
    assert_eq!(head.status, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&first.body(&head).await).unwrap()["id"],
        2
    );
    // Once it closes, there is room again.
    drop(first);
    eventually(
        Duration::from_secs(2),
        "a new connection is served",
        || async move {
            let mut c = Conn::connect(addr).await;
            c.send(
                "POST",
                "/mcp",
                &post_headers(&DISCOVER_HEADERS),
                discover(3).as_bytes(),
            )
            .await;
            c.head().await.status == 200
        },
    )
    .await;
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_that_already_sent_its_request_still_reads_the_503() {
    let (tree, endpoints) = start(
        builder().build().unwrap(),
        TransportConfig {
            max_connections: Some(1),
            ..TransportConfig::default()
        },
    )
    .await
    .unwrap();
    let addr = endpoints.http.unwrap();
    let mut first = Conn::connect(addr).await;
    first
        .send(
            "POST",
            "/mcp",
            &post_headers(&DISCOVER_HEADERS),
            discover(1).as_bytes(),
        )
        .await;
    assert_eq!(first.head().await.status, 200);
    // Clients write their request as soon as they are connected.
    for _ in 0..20 {
        let mut c = Conn::connect(addr).await;
        c.send(
            "POST",
            "/mcp",
            &post_headers(&DISCOVER_HEADERS),
            discover(2).as_bytes(),
        )
        .await;
        assert_eq!(c.head().await.status, 503);
    }
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_headers_than_max_headers_is_431() {
    let (tree, addr) = started(HttpConfig {
        max_headers: 10,
        ..HttpConfig::default()
    })
    .await;
    let body = discover(1);
    // Host, Content-Length and these: 4 + 2 + 4 = 10.
    let mut headers = post_headers(&DISCOVER_HEADERS);
    let pads = ["X-1", "X-2", "X-3", "X-4", "X-5"];
    for pad in &pads[..4] {
        headers.push((pad, "v"));
    }
    let r = exchange(addr, "POST", "/mcp", &headers, body.as_bytes()).await;
    assert_eq!(r.status(), 200);
    headers.push((pads[4], "v"));
    let (head, _) = open(addr, "POST", "/mcp", &headers, body.as_bytes()).await;
    assert_eq!(head.status, 431);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_slow_to_send_its_head_is_disconnected() {
    let timeout = Duration::from_millis(200);
    let (tree, addr) = started(HttpConfig {
        header_read_timeout: timeout,
        ..HttpConfig::default()
    })
    .await;
    let mut conn = Conn::connect(addr).await;
    conn.send_raw(b"POST /mcp HTTP/1.1\r\nHost: localhost\r\n")
        .await;
    let started = std::time::Instant::now();
    assert!(conn.closed_within(Duration::from_secs(2)).await);
    assert!(started.elapsed() >= timeout / 2, "{:?}", started.elapsed());
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_over_max_sessions_are_503_until_one_ends() {
    let server = builder().build().unwrap();
    let config = HttpConfig {
        max_sessions: 2,
        ..HttpConfig::default()
    };
    let (tree, addr) = start_http(server, config).await;
    let first = Session::ready(addr, "2025-11-25").await;
    let _second = Session::ready(addr, "2025-03-26").await;
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let refused = exchange(
        addr,
        "POST",
        "/mcp",
        &POST_HEADERS,
        init.to_string().as_bytes(),
    )
    .await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.json()["error"]["data"]["limit"], "max_sessions");
    assert_eq!(refused.json()["error"]["data"]["max"], 2);
    // The legacy transport counts against the same limit.
    let legacy = exchange(addr, "GET", "/sse", &[("Accept", "text/event-stream")], b"").await;
    assert_eq!(legacy.status(), 503);

    let headers = [("Mcp-Session-Id", first.id.as_str())];
    assert_eq!(
        exchange(addr, "DELETE", "/mcp", &headers, b"")
            .await
            .status(),
        200
    );
    eventually(Duration::from_secs(2), "a place frees up", || async {
        exchange(
            addr,
            "POST",
            "/mcp",
            &POST_HEADERS,
            init.to_string().as_bytes(),
        )
        .await
        .status()
            == 200
    })
    .await;
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_is_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = HttpConfig {
        body_read_timeout: Duration::from_millis(300),
        ..HttpConfig::default()
    };
    let (tree, addr) = start_http(builder().build().unwrap(), config).await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{{\"jsonrpc\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut reply = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut reply))
        .await
        .expect("an answer, not a hang")
        .unwrap();
    let reply = String::from_utf8_lossy(&reply[..n]);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("body_read_timeout"), "{reply}");
    assert!(started.elapsed() >= Duration::from_millis(250));
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_and_other_methods_are_405_naming_what_is_served() {
    let (tree, addr) = start_http(builder().build().unwrap(), HttpConfig::default()).await;
    for (method, path, allow) in [
        ("HEAD", "/mcp", "GET, POST, DELETE"),
        ("PUT", "/mcp", "GET, POST, DELETE"),
        ("PATCH", "/mcp", "GET, POST, DELETE"),
        ("HEAD", "/sse", "GET"),
        ("POST", "/sse", "GET"),
        ("GET", "/message", "POST"),
    ] {
        let r = exchange(addr, method, path, &[("Accept", "text/event-stream")], b"").await;
        assert_eq!(r.status(), 405, "{method} {path}");
        assert_eq!(r.head.get("allow"), Some(allow), "{method} {path}");
    }
    tree.shutdown().await;
}

/// Reads from `stream` until `until` is in what came, or it ends.
async fn read_until(stream: &mut tokio::net::TcpStream, until: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(until) {
        let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
            .await
            .expect("an answer, not a hang")
            .unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn discover_head(host: &str, len: usize, extra: &str) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: server/discover\r\nContent-Length: {len}\r\n{extra}\r\n"
    )
}

/// A foreign Host is refused on its head: nothing of a large declared body
/// is waited for (the old order read the body, up to `body_read_timeout`,
/// before the guard), and since the body is left unread the connection
/// ends after the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_host_is_refused_before_its_body_arrives() {
    use tokio::io::AsyncWriteExt;
    let (tree, addr) = started(HttpConfig::default()).await;
    for extra in ["", "Expect: 100-continue\r\n"] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = discover_head("evil.example.com", 4 << 20, extra);
        stream.write_all(head.as_bytes()).await.unwrap();
        let started = std::time::Instant::now();
        let reply = read_until(&mut stream, "\r\n\r\n").await;
        assert!(reply.starts_with("HTTP/1.1 403"), "{extra}: {reply}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(reply.contains("connection: close"), "{reply}");
        // Then the connection ends, with nothing more to say (read_until
        // fails on a connection left open).
        let rest = read_until(&mut stream, "never").await;
        assert!(!rest.contains("HTTP/1.1"), "{rest}");
    }
    tree.shutdown().await;
}

/// `Expect: 100-continue` is answered when the handler asks for the body,
/// after the guard; the body then sent is served, and the connection
/// stays open for the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_is_answered_when_the_body_is_wanted() {
    use tokio::io::AsyncWriteExt;
    let (tree, addr) = started(HttpConfig::default()).await;
    let body = discover(7);
    let host = addr.to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = discover_head(&host, body.len(), "Expect: 100-continue\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let interim = read_until(&mut stream, "\r\n\r\n").await;
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(body.as_bytes()).await.unwrap();
    let reply = read_until(&mut stream, "\"id\":7").await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(!reply.contains("connection: close"), "{reply}");
    // The same connection serves the next request.
    let body = discover(8);
    stream
        .write_all(format!("{}{body}", discover_head(&host, body.len(), "")).as_bytes())
        .await
        .unwrap();
    let reply = read_until(&mut stream, "\"id\":8").await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    tree.shutdown().await;
}

/// A body that comes in pieces after its head is fed to the handler as it
/// comes, and a request pipelined right behind it is served next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_in_pieces_is_served_and_the_request_behind_it_too() {
    use tokio::io::AsyncWriteExt;
    let (tree, addr) = started(HttpConfig::default()).await;
    let host = addr.to_string();
    let first = discover(1);
    let second = discover(2);
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(discover_head(&host, first.len(), "").as_bytes())
        .await
        .unwrap();
    let (a, b) = first.split_at(first.len() / 2);
    for piece in [a, b] {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stream.write_all(piece.as_bytes()).await.unwrap();
    }
    stream
        .write_all(format!("{}{second}", discover_head(&host, second.len(), "")).as_bytes())
        .await
        .unwrap();
    let reply = read_until(&mut stream, "\"id\":2").await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"id\":1"), "{reply}");
    assert_eq!(reply.matches("HTTP/1.1 200").count(), 2, "{reply}");
    tree.shutdown().await;
}

/// A client that keeps sending the body of a refused request still reads
/// the refusal, and is not reset meanwhile: the connection reads the body
/// (and drops it) before it closes, since closing with it unread resets
/// the connection, which loses the answer on many stacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_whose_body_keeps_coming_still_reads_the_answer() {
    use tokio::io::AsyncWriteExt;
    let (tree, addr) = started(HttpConfig::default()).await;
    let len = 2 << 20;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(discover_head("evil.example.com", len, "").as_bytes())
        .await
        .unwrap();
    let body = vec![b' '; len];
    let (mut read, mut write) = stream.into_split();
    let sender = tokio::spawn(async move {
        for piece in body.chunks(64 << 10) {
            write.write_all(piece).await?;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok::<_, std::io::Error>(())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut got = Vec::new();
    let n = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut read, &mut got),
    )
    .await
    .expect("the connection ends");
    let reply = String::from_utf8_lossy(&got);
    assert!(n.is_ok(), "read failed ({n:?}) after {reply:?}");
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    sender
        .await
        .unwrap()
        .expect("the whole body is taken, not reset");
    tree.shutdown().await;
}
