//! Streamable HTTP, 2026-07-28: every POST stands alone; its headers must
//! agree with its body; answers are JSON, or an event stream when
//! notifications come first; closing the stream cancels the request.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod http_support;

use arbor_mcp::Tool;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arbor_mcp::{CallToolResult, ListKind};
use arbor_transports::http::HttpConfig;
use http_support::*;
use serde_json::{json, Value};

async fn started() -> (arbor_supervision::SupervisorRef, std::net::SocketAddr) {
    start_http(builder().build().unwrap(), HttpConfig::default()).await
}

/// Asserts a JSON-RPC error answer: HTTP status, code, and the echoed id.
fn assert_error(reply: &Reply, status: u16, code: i64, id: &Value) -> Value {
    assert_eq!(
        reply.status(),
        status,
        "{:?} {}",
        reply.head,
        String::from_utf8_lossy(&reply.body)
    );
    assert!(reply.head.content_type().starts_with("application/json"));
    let body = reply.json();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(&body["id"], id, "the error echoes the request id: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_answered_200_json_without_a_session_id() {
    let (tree, addr) = started().await;
    // A session id sent by a confused client is neither used nor echoed.
    let discover = modern_call(
        addr,
        &modern_request(json!("d-1"), "server/discover", json!({})),
        None,
        &[("Mcp-Session-Id", "0123456789abcdef0123456789abcdef")],
    )
    .await;
    assert_eq!(discover.status(), 200);
    assert_eq!(discover.head.content_type(), "application/json");
    assert!(discover.head.get("mcp-session-id").is_none());
    let body = discover.json();
    assert_eq!(body["id"], "d-1");
    assert_eq!(body["result"]["resultType"], "complete");
    assert!(body["result"]["supportedVersions"]
        .as_array()
        .unwrap()
        .contains(&json!("2026-07-28")));

    let list = modern_call(
        addr,
        &modern_request(json!(2), "tools/list", json!({})),
        None,
        &[],
    )
    .await;
    assert_eq!(list.status(), 200);
    assert_eq!(list.head.content_type(), "application/json");
    assert!(list.head.get("mcp-session-id").is_none());
    let tools = list.json();
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo", "regional", "nap", "progress"]);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_meta_field_is_400_invalid_params_even_with_the_version_header() {
    let (tree, addr) = started().await;
    // No `_meta` at all.
    let body = json!({"jsonrpc": "2.0", "id": "m-1", "method": "tools/list", "params": {}});
    let r = modern_call(addr, &body, None, &[]).await;
    assert_error(&r, 400, -32602, &json!("m-1"));
    // A version but no client capabilities.
    let body = json!({"jsonrpc": "2.0", "id": "m-2", "method": "tools/list", "params": {
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}});
    let r = modern_call(addr, &body, None, &[]).await;
    assert_error(&r, 400, -32602, &json!("m-2"));
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_header_that_disagrees_with_meta_is_400_header_mismatch() {
    let (tree, addr) = started().await;
    let mut body = modern_request(json!("v-1"), "tools/list", json!({}));
    body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2025-11-25");
    let r = modern_call(addr, &body, None, &[]).await;
    assert_error(&r, 400, -32020, &json!("v-1"));
    // And a missing version header, with a modern body.
    let body = modern_request(json!("v-2"), "tools/list", json!({}));
    let r = exchange(
        addr,
        "POST",
        "/mcp",
        &post_headers(&[("Mcp-Method", "tools/list")]),
        body.to_string().as_bytes(),
    )
    .await;
    assert_error(&r, 400, -32020, &json!("v-2"));
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_version_is_400_with_supported_and_requested() {
    let (tree, addr) = started().await;
    let mut body = modern_request(json!("u-1"), "tools/list", json!({}));
    body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("v999.0.0");
    let r = exchange(
        addr,
        "POST",
        "/mcp",
        &post_headers(&[
            ("MCP-Protocol-Version", "v999.0.0"),
            ("Mcp-Method", "tools/list"),
        ]),
        body.to_string().as_bytes(),
    )
    .await;
    let error = assert_error(&r, 400, -32022, &json!("u-1"));
    assert_eq!(error["error"]["data"]["requested"], "v999.0.0");
    let supported = error["error"]["data"]["supported"].as_array().unwrap();
    assert!(supported.contains(&json!("2026-07-28")), "{error}");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_method_missing_mismatched_or_in_another_case_is_400_header_mismatch() {
    let (tree, addr) = started().await;
    let body = modern_request(json!("h-1"), "tools/list", json!({}));
    for method in [None, Some("tools/call"), Some("TOOLS/LIST")] {
        let mut headers = post_headers(&[("MCP-Protocol-Version", "2026-07-28")]);
        if let Some(m) = method {
            headers.push(("Mcp-Method", m));
        }
        let r = exchange(addr, "POST", "/mcp", &headers, body.to_string().as_bytes()).await;
        let error = assert_error(&r, 400, -32020, &json!("h-1"));
        assert_eq!(error["error"]["data"]["header"], "mcp-method", "{method:?}");
    }
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_names_are_case_insensitive() {
    let (tree, addr) = started().await;
    let body = modern_request(
        json!(1),
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hi"}}),
    );
    let r = exchange(
        addr,
        "POST",
        "/mcp",
        &[
            ("content-TYPE", "application/json"),
            ("ACCEPT", "application/json, text/event-stream"),
            ("mcp-protocol-version", "2026-07-28"),
            ("MCP-METHOD", "tools/call"),
            ("mCp-NaMe", "echo"),
        ],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status(), 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["result"]["content"][0]["text"], "hi");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_name_missing_or_mismatched_is_400_header_mismatch() {
    let (tree, addr) = started().await;
    let body = modern_request(
        json!("n-1"),
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hi"}}),
    );
    let r = modern_call(addr, &body, None, &[]).await;
    assert_error(&r, 400, -32020, &json!("n-1"));
    let r = modern_call(addr, &body, Some("regional"), &[]).await;
    assert_error(&r, 400, -32020, &json!("n-1"));
    // Values are case-sensitive.
    let r = modern_call(addr, &body, Some("ECHO"), &[]).await;
    assert_error(&r, 400, -32020, &json!("n-1"));
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whitespace_around_header_values_is_trimmed() {
    // End to end: hyper's parser already strips optional whitespace, so
    // this holds whatever `headers::text` does.
    let (tree, addr) = started().await;
    let body = modern_request(
        json!(1),
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hi"}}),
    );
    let r = exchange(
        addr,
        "POST",
        "/mcp",
        &post_headers(&[
            ("MCP-Protocol-Version", " \t2026-07-28 "),
            ("Mcp-Method", "  tools/call\t"),
            ("Mcp-Name", "  echo  "),
        ]),
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status(), 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["result"]["content"][0]["text"], "hi");
    tree.shutdown().await;
}

fn regional(id: Value, region: Option<&str>) -> Value {
    let mut args = json!({"query": "SELECT 1"});
    if let Some(region) = region {
        args["region"] = json!(region);
    }
    modern_request(
        id,
        "tools/call",
        json!({"name": "regional", "arguments": args}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_param_header_with_the_plain_value_is_accepted() {
    let (tree, addr) = started().await;
    let r = modern_call(
        addr,
        &regional(json!(1), Some("us-west1")),
        Some("regional"),
        &[("Mcp-Param-Region", "us-west1")],
    )
    .await;
    assert_eq!(r.status(), 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["result"]["content"][0]["text"],
        "SELECT 1 in us-west1"
    );
    // Absent from the body: no header is needed.
    let r = modern_call(addr, &regional(json!(2), None), Some("regional"), &[]).await;
    assert_eq!(r.status(), 200, "{:?}", String::from_utf8_lossy(&r.body));
    // A different value is refused.
    let r = modern_call(
        addr,
        &regional(json!(3), Some("us-west1")),
        Some("regional"),
        &[("Mcp-Param-Region", "eu-west1")],
    )
    .await;
    assert_error(&r, 400, -32020, &json!(3));
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_string_param_that_looks_like_a_number_is_compared_as_text() {
    let (tree, addr) = started().await;
    for (id, header) in [(1, "1e3"), (2, "1000.0"), (3, "01000")] {
        let r = modern_call(
            addr,
            &regional(json!(id), Some("1000")),
            Some("regional"),
            &[("Mcp-Param-Region", header)],
        )
        .await;
        assert_error(&r, 400, -32020, &json!(id));
    }
    let r = modern_call(
        addr,
        &regional(json!(4), Some("1000")),
        Some("regional"),
        &[("Mcp-Param-Region", "1000")],
    )
    .await;
    assert_eq!(r.status(), 200, "{:?}", String::from_utf8_lossy(&r.body));
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_standard_header_is_refused() {
    let (tree, addr) = started().await;
    let echo = modern_request(
        json!(1),
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hi"}}),
    );
    let r = modern_call(addr, &echo, Some("echo"), &[("Mcp-Name", "bump")]).await;
    let error = assert_error(&r, 400, -32020, &json!(1));
    assert_eq!(error["error"]["data"]["header"], "mcp-name", "{error}");
    let r = modern_call(addr, &echo, Some("echo"), &[("Mcp-Method", "tools/list")]).await;
    assert_error(&r, 400, -32020, &json!(1));
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base64_is_refused_on_the_method_and_version_headers() {
    let (tree, addr) = started().await;
    let list = modern_request(json!(1), "tools/list", json!({}));
    let body = list.to_string();
    let headers = post_headers(&[
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "=?base64?dG9vbHMvbGlzdA==?="),
    ]);
    let r = exchange(addr, "POST", "/mcp", &headers, body.as_bytes()).await;
    assert_error(&r, 400, -32020, &json!(1));
    let headers = post_headers(&[
        ("MCP-Protocol-Version", "=?base64?MjAyNi0wNy0yOA==?="),
        ("Mcp-Method", "tools/list"),
    ]);
    let r = exchange(addr, "POST", "/mcp", &headers, body.as_bytes()).await;
    assert_eq!(r.status(), 400);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_param_header_in_base64_is_decoded_before_comparing() {
    let (tree, addr) = started().await;
    // "héllo wörld": non-ASCII, so sent encoded.
    let r = modern_call(
        addr,
        &regional(json!(1), Some("héllo wörld")),
        Some("regional"),
        &[("Mcp-Param-Region", "=?base64?aMOpbGxvIHfDtnJsZA==?=")],
    )
    .await;
    assert_eq!(r.status(), 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["result"]["content"][0]["text"],
        "SELECT 1 in héllo wörld"
    );
    // An incomplete wrapper is literal.
    let r = modern_call(
        addr,
        &regional(json!(2), Some("=?base64?SGVsbG8=")),
        Some("regional"),
        &[("Mcp-Param-Region", "=?base64?SGVsbG8=")],
    )
    .await;
    assert_eq!(r.status(), 200, "{:?}", String::from_utf8_lossy(&r.body));
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_param_header_with_invalid_base64_is_400_header_mismatch() {
    let (tree, addr) = started().await;
    for bad in ["=?base64?SGVsbG8?=", "=?base64?SGVs!!!bG8=?="] {
        let r = modern_call(
            addr,
            &regional(json!("b-1"), Some("Hello")),
            Some("regional"),
            &[("Mcp-Param-Region", bad)],
        )
        .await;
        assert_error(&r, 400, -32020, &json!("b-1"));
    }
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_param_header_missing_while_the_body_has_the_value_is_400_header_mismatch() {
    let (tree, addr) = started().await;
    let r = modern_call(
        addr,
        &regional(json!("p-1"), Some("us-west1")),
        Some("regional"),
        &[],
    )
    .await;
    let error = assert_error(&r, 400, -32020, &json!("p-1"));
    assert_eq!(error["error"]["data"]["header"], "mcp-param-region");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_removed_methods_are_404_method_not_found() {
    let (tree, addr) = started().await;
    for (id, method) in [("x-1", "no/such"), ("x-2", "ping"), ("x-3", "initialize")] {
        let mut params = json!({});
        if method == "initialize" {
            params = json!({"protocolVersion": "2026-07-28", "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}});
        }
        let r = modern_call(addr, &modern_request(json!(id), method, params), None, &[]).await;
        assert_error(&r, 404, -32601, &json!(id));
        assert!(r.head.get("mcp-session-id").is_none(), "{method}");
    }
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_makes_the_answer_an_event_stream_ending_with_the_response() {
    let (tree, addr) = started().await;
    let mut body = modern_request(
        json!("prog"),
        "tools/call",
        json!({"name": "progress", "arguments": {}}),
    );
    body["params"]["_meta"]["progressToken"] = json!("tok");
    let (head, conn) = open(
        addr,
        "POST",
        "/mcp",
        &post_headers(&[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "progress"),
        ]),
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(head.status, 200);
    assert!(head.is_sse(), "{head:?}");
    assert!(head.get("mcp-session-id").is_none());
    let events = conn.sse(&head).rest().await;
    let messages: Vec<Value> = events.iter().map(Event::json).collect();
    assert_eq!(messages.len(), 4, "{messages:?}");
    for (i, m) in messages[..3].iter().enumerate() {
        assert_eq!(m["method"], "notifications/progress");
        assert_eq!(m["params"]["progressToken"], "tok");
        assert_eq!(m["params"]["progress"], json!(i as f64 + 1.0));
    }
    assert_eq!(messages[3]["id"], "prog");
    assert_eq!(messages[3]["result"]["content"][0]["text"], "done");
    // 2026-07-28 streams are not resumable: no event ids.
    assert!(events.iter().all(|e| e.id.is_none()), "{events:?}");
    tree.shutdown().await;
}

/// Sets its flag when dropped (the handler holding it was aborted).
struct Dropped(Arc<AtomicBool>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_stream_cancels_the_request() {
    let dropped = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let (d, f) = (dropped.clone(), finished.clone());
    let server = builder()
        .tool_with_schema(
            Tool::new("hang")
                .description("Reports progress, then waits a long time")
                .input_schema(json!({"type": "object"})),
            move |_args, ctx| {
                let guard = Dropped(d.clone());
                let finished = f.clone();
                async move {
                    let _guard = guard;
                    ctx.progress(1.0, None, Some("started"));
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    finished.store(true, Ordering::SeqCst);
                    Ok(CallToolResult::text("too late"))
                }
            },
        )
        .build()
        .unwrap();
    let (tree, addr) = start_http(server, HttpConfig::default()).await;
    let mut body = modern_request(
        json!(1),
        "tools/call",
        json!({"name": "hang", "arguments": {}}),
    );
    body["params"]["_meta"]["progressToken"] = json!(7);
    let (head, conn) = open(
        addr,
        "POST",
        "/mcp",
        &post_headers(&[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "hang"),
        ]),
        body.to_string().as_bytes(),
    )
    .await;
    let mut sse = conn.sse(&head);
    let (_, first) = sse.message().await.unwrap();
    assert_eq!(first["method"], "notifications/progress");
    assert!(
        !dropped.load(Ordering::SeqCst),
        "running while the stream is open"
    );
    drop(sse);
    eventually(Duration::from_secs(2), "the handler is aborted", || {
        let dropped = dropped.clone();
        async move { dropped.load(Ordering::SeqCst) }
    })
    .await;
    assert!(!finished.load(Ordering::SeqCst));
    tree.shutdown().await;
}

async fn open_listen(addr: std::net::SocketAddr, id: Value) -> Sse {
    let body = modern_request(
        id,
        "subscriptions/listen",
        json!({"notifications": {"toolsListChanged": true}}),
    );
    let (head, conn) = open(
        addr,
        "POST",
        "/mcp",
        &post_headers(&[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "subscriptions/listen"),
        ]),
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(head.status, 200);
    assert!(head.get("mcp-session-id").is_none());
    conn.sse(&head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_stream_opens_with_its_acknowledgement() {
    let (tree, addr) = started().await;
    let mut sse = open_listen(addr, json!("sub-1")).await;
    let (_, ack) = sse.message().await.unwrap();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(ack["params"]["notifications"]["toolsListChanged"], true);
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "sub-1"
    );
    drop(sse);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_change_reaches_the_listen_stream_tagged_with_its_subscription() {
    let server = builder().build().unwrap();
    let (tree, addr) = start_http(server.clone(), HttpConfig::default()).await;
    let mut sse = open_listen(addr, json!(42)).await;
    let (_, ack) = sse.message().await.unwrap();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    // The subscription joins its group just after queueing the ack.
    let s = server.clone();
    eventually(
        Duration::from_secs(2),
        "the listen stream is told",
        move || {
            let s = s.clone();
            async move { s.list_changed(ListKind::Tools) > 0 }
        },
    )
    .await;
    let (_, changed) = sse.message().await.unwrap();
    assert_eq!(changed["method"], "notifications/tools/list_changed");
    assert_eq!(
        changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        42
    );
    // A tool added at run time tells it too.
    server
        .add_tool(
            Tool::new("late").description("Added later"),
            |(), _ctx| async move { Ok(CallToolResult::text("late")) },
        )
        .unwrap();
    let (_, changed) = sse.message().await.unwrap();
    assert_eq!(changed["method"], "notifications/tools/list_changed");
    drop(sse);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_is_accepted_202_without_a_body() {
    let (tree, addr) = started().await;
    let body = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 1, "_meta": meta()}});
    let r = exchange(
        addr,
        "POST",
        "/mcp",
        &post_headers(&[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "notifications/cancelled"),
        ]),
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status(), 202);
    assert!(r.body.is_empty());
    assert!(r.head.get("mcp-session-id").is_none());
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_delete_without_a_session_are_405() {
    let (tree, addr) = started().await;
    let get = exchange(
        addr,
        "GET",
        "/mcp",
        &[
            ("Accept", "text/event-stream"),
            ("MCP-Protocol-Version", "2026-07-28"),
        ],
        b"",
    )
    .await;
    assert_eq!(get.status(), 405);
    assert!(get.head.get("allow").is_some_and(|a| a.contains("POST")));
    let delete = exchange(
        addr,
        "DELETE",
        "/mcp",
        &[("MCP-Protocol-Version", "2026-07-28")],
        b"",
    )
    .await;
    assert_eq!(delete.status(), 405);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_connection_before_any_answer_cancels_the_request() {
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    let server = builder()
        .tool_with_schema(
            Tool::new("silent")
                .description("Waits a long time without a word")
                .input_schema(json!({"type": "object"})),
            move |_args, _ctx| {
                let guard = Dropped(d.clone());
                async move {
                    let _guard = guard;
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok(CallToolResult::text("too late"))
                }
            },
        )
        .build()
        .unwrap();
    let (tree, addr) = start_http(server, HttpConfig::default()).await;
    let body = modern_request(
        json!(1),
        "tools/call",
        json!({"name": "silent", "arguments": {}}),
    );
    let mut conn = Conn::connect(addr).await;
    conn.send(
        "POST",
        "/mcp",
        &post_headers(&[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "silent"),
        ]),
        body.to_string().as_bytes(),
    )
    .await;
    // Nothing is answered before the handler has started; give it a moment.
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(conn);
    eventually(Duration::from_secs(2), "the handler is aborted", || {
        let dropped = dropped.clone();
        async move { dropped.load(Ordering::SeqCst) }
    })
    .await;
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_a_listen_stream_with_its_final_result() {
    let drain = Duration::from_secs(1);
    let server = builder()
        .config(arbor_mcp::server::ServerConfig {
            drain_timeout: drain,
            ..arbor_mcp::server::ServerConfig::default()
        })
        .build()
        .unwrap();
    let (tree, addr) = start_http(server, HttpConfig::default()).await;
    let mut sse = open_listen(addr, json!("bye")).await;
    let (_, ack) = sse.message().await.unwrap();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(async move { tree.shutdown().await });
    let rest = sse.rest().await;
    let took = started.elapsed();
    stopping.await.unwrap();
    let last = rest.last().map(Event::json);
    assert!(
        last.as_ref()
            .is_some_and(|m| m["id"] == "bye" && m["result"].is_object()),
        "the final listen result: {rest:?}"
    );
    assert!(took < drain / 2, "the stream ended at once: {took:?}");
}

/// A server whose `slow` tool answers "made it" after `takes`, draining
/// for up to `drain` at shutdown.
fn slow_server(takes: Duration, drain: Duration) -> arbor_mcp::McpServer {
    builder()
        .config(arbor_mcp::server::ServerConfig {
            drain_timeout: drain,
            ..arbor_mcp::server::ServerConfig::default()
        })
        .tool_with_schema(
            Tool::new("slow")
                .description("Takes a while")
                .input_schema(json!({"type": "object"})),
            move |_args, _ctx| async move {
                tokio::time::sleep(takes).await;
                Ok(CallToolResult::text("made it"))
            },
        )
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_request_in_flight_answer() {
    let server = slow_server(
        Duration::from_millis(300),
        arbor_mcp::server::ServerConfig::default().drain_timeout,
    );
    let (tree, addr) = start_http(server, HttpConfig::default()).await;
    let body = modern_request(
        json!(1),
        "tools/call",
        json!({"name": "slow", "arguments": {}}),
    );
    let mut conn = Conn::connect(addr).await;
    conn.send(
        "POST",
        "/mcp",
        &post_headers(&[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "slow"),
        ]),
        body.to_string().as_bytes(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopping = tokio::spawn(async move { tree.shutdown().await });
    let head = conn.head().await;
    assert_eq!(head.status, 200);
    let answer: Value = serde_json::from_slice(&conn.body(&head).await).unwrap();
    assert_eq!(answer["result"]["content"][0]["text"], "made it");
    stopping.await.unwrap();
    // New connections are no longer served.
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(
        refused.is_err()
            || Conn::connect(addr)
                .await
                .closed_within(Duration::from_secs(1))
                .await
    );
}

/// A drain longer than the 5 s a supervisor gives a worker by default is
/// waited for: the request process and its connection are given the
/// server's `drain_timeout`, so a 6.5 s call still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_past_five_seconds_is_waited_for() {
    let server = slow_server(Duration::from_millis(6500), Duration::from_secs(8));
    let (tree, addr) = start_http(server, HttpConfig::default()).await;
    let call = modern_request(
        json!(5),
        "tools/call",
        json!({"name": "slow", "arguments": {}}),
    );
    let body = call.to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: slow\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(async move { tree.shutdown().await });
    // The answer, then the close that ends a connection at shutdown.
    let mut answer = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(15),
        tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer),
    )
    .await
    .unwrap()
    .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("made it"), "{answer}");
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cut_short_by_shutdown_is_answered_with_an_error() {
    let (tree, addr) = start_http(stuck_server(), HttpConfig::default()).await;
    let call = modern_request(
        json!(9),
        "tools/call",
        json!({"name": "stuck", "arguments": {}}),
    );
    let stopping = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        tree.shutdown().await
    });
    let reply = modern_call(addr, &call, Some("stuck"), &[]).await;
    assert_eq!(reply.status(), 200);
    let answer = reply.json();
    assert_eq!(answer["id"], 9, "{answer}");
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    assert_eq!(answer["error"]["data"]["reason"], "shutdown", "{answer}");
    stopping.await.unwrap();
}
