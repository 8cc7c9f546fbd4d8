//! The resource guard end to end, driven past each threshold by the
//! process count (the test spawns idle processes to fill it): at soft
//! pressure new connections are refused on every transport and the idlest
//! sessions are closed first; at hard pressure requests are refused too;
//! both recover once the processes go.
//!
//! The tests share one resource (the process's process count), so they
//! take turns.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod http_support;

use std::time::Duration;

use arbor_mcp::guard::GuardConfig;
use arbor_mcp::jsonrpc::code::OVERLOADED;
use arbor_mcp::rate::RateLimits;
use arbor_mcp::{McpServer, ServerConfig};
use arbor_runtime::{process_counts, spawn, Actor, ActorRef, Context, Flow};
use arbor_transports::{start, TransportConfig};
use http_support::*;
use serde_json::{json, Value};

static TURNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The most processes the guard allows in these tests.
const MAX: u64 = 2000;

fn server(interval: Duration, idle_close_percent: u8) -> McpServer {
    builder()
        .config(ServerConfig {
            rate_limits: RateLimits::off(),
            resource_guard: Some(GuardConfig {
                interval,
                max_processes: MAX,
                idle_close_percent,
                ..GuardConfig::default()
            }),
            ..ServerConfig::default()
        })
        .build()
        .unwrap()
}

struct Idle;

impl Actor for Idle {
    type Msg = ();
    async fn handle(&mut self, _: (), _: &mut Context<Self>) -> Flow {
        Ok(())
    }
}

/// Spawns idle processes until the process count reaches `percent` of
/// [`MAX`] (and a few more, for the sessions that may end meanwhile).
async fn fill_to(percent: u64, held: &mut Vec<ActorRef<()>>) {
    let target = MAX * percent / 100 + 5;
    while (process_counts().total() as u64) < target {
        held.push(spawn(Idle).await.unwrap());
    }
}

async fn empty(held: &mut Vec<ActorRef<()>>) {
    for idle in held.drain(..) {
        idle.process().kill();
        idle.process().wait().await;
    }
}

/// Asserts `error` is the guard's refusal at `pressure`.
fn overloaded(error: &Value, pressure: &str) {
    assert_eq!(error["code"], OVERLOADED, "{error}");
    assert_eq!(error["data"]["resource"], "processes", "{error}");
    assert_eq!(error["data"]["pressure"], pressure, "{error}");
    assert_eq!(error["data"]["limit"], MAX, "{error}");
    assert!(
        error["data"]["retryAfter"].as_f64().unwrap() > 0.0,
        "{error}"
    );
}

fn pressure() -> &'static str {
    arbor_mcp::stats::refusals().pressure.as_str()
}

async fn pressure_is(level: &str) {
    eventually(Duration::from_secs(5), level, || async {
        pressure() == level
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_pressure_refuses_new_connections_and_closes_the_idlest_first() {
    let _turn = TURNS.lock().await;
    let interval = Duration::from_millis(200);
    let (tree, endpoints) = start(server(interval, 1), TransportConfig::default())
        .await
        .unwrap();
    let tcp = endpoints.tcp.unwrap();
    let mut idlest = Line::connect(tcp).await;
    assert!(idlest.call(0).await["result"].is_object());
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut busier = Line::connect(tcp).await;
    assert!(busier.call(0).await["result"].is_object());

    let mut held = Vec::new();
    fill_to(80, &mut held).await;
    pressure_is("soft").await;

    // TCP: a line saying why, then the close.
    let mut refused = Line::connect(tcp).await;
    let line = refused.recv().await.expect("the refusal");
    overloaded(&line["error"], "soft");
    assert!(refused.recv().await.is_none(), "then closed");
    // WebSocket: a 503 with Retry-After.
    let url = format!("ws://{}/mcp", endpoints.ws.unwrap());
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            assert_eq!(response.headers()["retry-after"], "1");
        }
        other => panic!("expected a 503, got {other:?}"),
    }
    // HTTP: a new connection reads a 503 with the error.
    let http = endpoints.http.unwrap();
    let body = modern_request(json!(1), "server/discover", json!({}));
    let reply = exchange(
        http,
        "POST",
        "/mcp",
        &POST_HEADERS,
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(reply.status(), 503);
    assert_eq!(reply.head.get("retry-after"), Some("1"));
    overloaded(&reply.json()["error"], "soft");

    // The sessions already open are closed a few at a time, the idlest
    // first: the one whose client spoke last goes last.
    let first = tokio::spawn(async move {
        while idlest.recv().await.is_some() {}
        tokio::time::Instant::now()
    });
    let second = tokio::spawn(async move {
        while busier.recv().await.is_some() {}
        tokio::time::Instant::now()
    });
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert!(first < second, "the idlest was closed first");

    empty(&mut held).await;
    pressure_is("normal").await;
    let mut again = Line::connect(tcp).await;
    assert!(again.call(1).await["result"].is_object(), "admitted again");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_pressure_refuses_requests_until_usage_falls() {
    let _turn = TURNS.lock().await;
    // No session closed, so the ones open see the refusals.
    let (tree, endpoints) = start(
        server(Duration::from_millis(50), 0),
        TransportConfig::default(),
    )
    .await
    .unwrap();
    let tcp = endpoints.tcp.unwrap();
    let mut line = Line::connect(tcp).await;
    assert!(line.call(0).await["result"].is_object());
    let mut handshake = Line::connect(tcp).await;
    handshake.send(&initialize_request("2025-11-25")).await;
    assert!(handshake.recv().await.unwrap()["result"].is_object());
    handshake
        .send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    let http = endpoints.http.unwrap();
    let headers = post_headers(&[
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "server/discover"),
    ]);
    let (head, mut keep_alive) = open(
        http,
        "POST",
        "/mcp",
        &headers,
        modern_request(json!(0), "server/discover", json!({}))
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(head.status, 200);
    let _ = keep_alive.body(&head).await;

    let mut held = Vec::new();
    fill_to(95, &mut held).await;
    pressure_is("hard").await;

    let refused = line.call(1).await;
    assert_eq!(refused["id"], 1, "the request itself is answered");
    overloaded(&refused["error"], "hard");
    // A handshake-era session's ping is still answered; its requests are
    // not.
    handshake
        .send(&json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}))
        .await;
    assert_eq!(handshake.recv().await.unwrap()["result"], json!({}));
    handshake
        .send(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
        .await;
    overloaded(&handshake.recv().await.unwrap()["error"], "hard");
    // HTTP, on a connection already open: a 503 with Retry-After.
    let body = modern_request(json!(4), "server/discover", json!({}));
    keep_alive
        .send("POST", "/mcp", &headers, body.to_string().as_bytes())
        .await;
    let head = keep_alive.head().await;
    assert_eq!(head.status, 503);
    assert_eq!(head.get("retry-after"), Some("1"));
    let body: Value = serde_json::from_slice(&keep_alive.body(&head).await[..]).unwrap();
    overloaded(&body["error"], "hard");
    assert_eq!(body["id"], 4);

    empty(&mut held).await;
    pressure_is("normal").await;
    assert!(line.call(5).await["result"].is_object(), "served again");
    tree.shutdown().await;
}
