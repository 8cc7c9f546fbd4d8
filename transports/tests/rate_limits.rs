//! Rate limits end to end, each driven past its limit: the typed refusal
//! (a JSON-RPC `-32029` with `data.limit` and `data.retryAfter`; over HTTP
//! a 429 with `Retry-After`; a WebSocket upgrade refused with 429), then the
//! recovery once the time it names has passed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod http_support;

use std::net::SocketAddr;
use std::time::Duration;

use arbor_mcp::jsonrpc::code::RATE_LIMITED;
use arbor_mcp::rate::{Rate, RateLimits};
use arbor_mcp::{McpServer, ServerConfig};
use arbor_transports::{start, TransportConfig};
use http_support::*;
use serde_json::{json, Value};

/// The test server with only `limits`.
fn server(limits: RateLimits) -> McpServer {
    builder()
        .config(ServerConfig {
            progress_interval: Duration::ZERO,
            rate_limits: limits,
            ..ServerConfig::default()
        })
        .build()
        .unwrap()
}

/// `per_second` with bursts of `burst`. Tests use 1 a second: a refill
/// slower than any round trip on a loaded machine.
fn rate(per_second: u32, burst: u32) -> Option<Rate> {
    Rate::new(per_second, burst)
}

/// Asserts `error` is the rate-limit error for `limit`, and returns how
/// long it says to wait.
fn limited(error: &Value, limit: &str) -> Duration {
    assert_eq!(error["code"], RATE_LIMITED, "{error}");
    assert_eq!(error["data"]["limit"], limit, "{error}");
    let after = error["data"]["retryAfter"].as_f64().expect("retryAfter");
    assert!(after > 0.0 && after <= 1.0, "{error}");
    Duration::from_secs_f64(after)
}

async fn tcp(limits: RateLimits) -> (arbor_supervision::SupervisorRef, SocketAddr) {
    let config = TransportConfig {
        http: None,
        ws: None,
        ..TransportConfig::default()
    };
    let (tree, endpoints) = start(server(limits), config).await.unwrap();
    (tree, endpoints.tcp.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_session_past_its_rate_is_told_when_to_retry_and_then_served() {
    let (tree, addr) = tcp(RateLimits {
        session_requests: rate(1, 2),
        ..RateLimits::off()
    })
    .await;
    let mut c = Line::connect(addr).await;
    for id in 0..2 {
        assert!(c.call(id).await["result"].is_object());
    }
    let refused = c.call(2).await;
    assert_eq!(refused["id"], 2, "the request itself is answered");
    let wait = limited(&refused["error"], "session_requests");
    // Another connection is another session, with a bucket of its own.
    let mut other = Line::connect(addr).await;
    assert!(other.call(0).await["result"].is_object());
    tokio::time::sleep(wait).await;
    assert!(c.call(3).await["result"].is_object(), "served again");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_past_its_rate_is_limited_across_its_connections() {
    let (tree, addr) = tcp(RateLimits {
        address_requests: rate(1, 3),
        ..RateLimits::off()
    })
    .await;
    let mut a = Line::connect(addr).await;
    let mut b = Line::connect(addr).await;
    assert!(a.call(0).await["result"].is_object());
    assert!(b.call(0).await["result"].is_object());
    assert!(a.call(1).await["result"].is_object());
    let wait = limited(&b.call(1).await["error"], "address_requests");
    tokio::time::sleep(wait).await;
    assert!(b.call(2).await["result"].is_object(), "served again");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_past_the_address_rate_are_refused_with_a_line() {
    let (tree, addr) = tcp(RateLimits {
        address_sessions: rate(1, 2),
        ..RateLimits::off()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = Line::connect(addr).await;
        assert!(c.call(0).await["result"].is_object());
        held.push(c);
    }
    let mut third = Line::connect(addr).await;
    let refusal = third.recv().await.expect("a refusal line");
    assert_eq!(refusal["id"], Value::Null);
    let wait = limited(&refusal["error"], "address_sessions");
    assert!(third.recv().await.is_none(), "then closed");
    tokio::time::sleep(wait).await;
    let mut fourth = Line::connect(addr).await;
    assert!(fourth.call(0).await["result"].is_object(), "room again");
    tree.shutdown().await;
}

async fn http(limits: RateLimits) -> (arbor_supervision::SupervisorRef, SocketAddr) {
    start_http(server(limits), Default::default()).await
}

/// A 429 with `Retry-After` and the JSON-RPC error for `limit`; how long
/// it says to wait.
fn too_many(reply: &Reply, limit: &str) -> Duration {
    assert_eq!(reply.status(), 429, "{reply:?}");
    let header: u64 = reply.head.get("retry-after").unwrap().parse().unwrap();
    assert_eq!(header, 1, "whole seconds, rounded up");
    limited(&reply.json()["error"], limit)
}

fn discover(id: u64) -> Value {
    modern_request(json!(id), "server/discover", json!({}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_2026_requests_past_the_address_rate_are_429() {
    let (tree, addr) = http(RateLimits {
        address_requests: rate(1, 2),
        ..RateLimits::off()
    })
    .await;
    for id in 0..2 {
        assert_eq!(
            modern_call(addr, &discover(id), None, &[]).await.status(),
            200
        );
    }
    let refused = modern_call(addr, &discover(2), None, &[]).await;
    let wait = too_many(&refused, "address_requests");
    assert_eq!(refused.json()["id"], 2);
    tokio::time::sleep(wait).await;
    assert_eq!(
        modern_call(addr, &discover(3), None, &[]).await.status(),
        200
    );
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_session_past_its_rate_is_429_and_others_are_not() {
    let (tree, addr) = http(RateLimits {
        session_requests: rate(1, 2),
        ..RateLimits::off()
    })
    .await;
    let ping = |id: u64| json!({"jsonrpc": "2.0", "id": id, "method": "ping"});
    let session = Session::ready(addr, "2025-06-18").await;
    // The notification counted for nothing: two requests pass.
    for id in 1..3 {
        assert_eq!(session.post(&ping(id)).await.status(), 200);
    }
    let refused = session.post(&ping(3)).await;
    let wait = too_many(&refused, "session_requests");
    let other = Session::ready(addr, "2025-06-18").await;
    assert_eq!(other.post(&ping(1)).await.status(), 200);
    tokio::time::sleep(wait).await;
    assert_eq!(session.post(&ping(4)).await.status(), 200);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_initialize_past_the_address_session_rate_is_429() {
    let (tree, addr) = http(RateLimits {
        address_sessions: rate(1, 1),
        ..RateLimits::off()
    })
    .await;
    Session::ready(addr, "2025-06-18").await;
    let body = initialize_request("2025-06-18");
    let refused = exchange(
        addr,
        "POST",
        "/mcp",
        &POST_HEADERS,
        body.to_string().as_bytes(),
    )
    .await;
    let wait = too_many(&refused, "address_sessions");
    assert_eq!(refused.json()["id"], 0, "the initialize is answered");
    assert!(
        refused.head.get("mcp-session-id").is_none(),
        "no session made"
    );
    tokio::time::sleep(wait).await;
    Session::ready(addr, "2025-06-18").await;
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_upgrade_past_the_address_session_rate_is_429() {
    let config = TransportConfig {
        http: None,
        tcp: None,
        ..TransportConfig::default()
    };
    let limits = RateLimits {
        address_sessions: rate(1, 1),
        ..RateLimits::off()
    };
    let (tree, endpoints) = start(server(limits), config).await.unwrap();
    let url = format!("ws://{}/mcp", endpoints.ws.unwrap());
    let (_first, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert_eq!(response.headers()["retry-after"], "1");
        }
        other => panic!("expected a 429, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert!(tokio_tungstenite::connect_async(url.as_str()).await.is_ok());
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_batch_passes_whole_or_is_refused_whole() {
    let (tree, addr) = http(RateLimits {
        session_requests: rate(1, 3),
        ..RateLimits::off()
    })
    .await;
    let session = Session::ready(addr, "2025-03-26").await;
    let ping = |id: u64| json!({"jsonrpc": "2.0", "id": id, "method": "ping"});
    // Four at once never fit a burst of three: a 400, not a retry.
    let four = json!([ping(1), ping(2), ping(3), ping(4)]);
    let never = session.post(&four).await;
    assert_eq!(never.status(), 400, "{never:?}");
    assert_eq!(never.json()["error"]["data"]["burst"], 3);
    // Two fit; two more do not, and none of them runs.
    assert_eq!(session.post(&json!([ping(5), ping(6)])).await.status(), 200);
    let refused = session.post(&json!([ping(7), ping(8)])).await;
    too_many(&refused, "session_requests");
    // The one left is still there.
    assert_eq!(session.post(&ping(9)).await.status(), 200);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_tcp_runs_what_fits_and_answers_the_rest_limited() {
    let (tree, addr) = tcp(RateLimits {
        session_requests: rate(1, 2),
        ..RateLimits::off()
    })
    .await;
    let mut c = Line::connect(addr).await;
    let init = initialize_request("2025-03-26");
    c.send(&init).await;
    assert_eq!(c.recv().await.unwrap()["id"], 0);
    let batch: Vec<Value> = (1..=3)
        .map(|id| json!({"jsonrpc": "2.0", "id": id, "method": "ping"}))
        .collect();
    c.send(&Value::Array(batch)).await;
    let answers = c.recv().await.unwrap();
    let answers = answers.as_array().expect("one array");
    // The initialize took one of two: one ping runs, two are limited.
    let limited_count = answers
        .iter()
        .filter(|a| a["error"]["code"] == RATE_LIMITED)
        .count();
    assert_eq!((answers.len(), limited_count), (3, 2), "{answers:?}");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_session_limits_each_request_on_its_stream() {
    let (tree, addr) = http(RateLimits {
        session_requests: rate(1, 2),
        ..RateLimits::off()
    })
    .await;
    let (mut sse, path) = open_legacy(addr).await;
    let post = |body: Value| {
        let path = path.clone();
        async move { post_legacy(addr, &path, &body).await.status() }
    };
    assert_eq!(post(initialize_request("2024-11-05")).await, 202);
    assert_eq!(sse.message().await.unwrap().1["id"], 0);
    // Notifications take nothing.
    for _ in 0..3 {
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(post(initialized).await, 202);
    }
    assert_eq!(
        post(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).await,
        202
    );
    assert_eq!(sse.message().await.unwrap().1["id"], 1);
    assert_eq!(
        post(json!({"jsonrpc": "2.0", "id": 2, "method": "ping"})).await,
        202
    );
    let (_, refused) = sse.message().await.unwrap();
    assert_eq!(refused["id"], 2, "{refused}");
    limited(&refused["error"], "session_requests");
    tree.shutdown().await;
}
