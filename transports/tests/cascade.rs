//! Cascade detection end to end: sessions of one transport killed past the
//! threshold isolate that transport (its listener refuses new sessions
//! with a typed error; the other transports serve on) until an operator's
//! reset or the cool-down; under `action = "stop"` the tree stops with the
//! trip as its reason.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod http_support;

use std::time::Duration;

use arbor_mcp::cascade::CascadeConfig;
use arbor_mcp::jsonrpc::code::ISOLATED;
use arbor_mcp::rate::RateLimits;
use arbor_mcp::{McpServer, ServerConfig};
use arbor_runtime::ExitReason;
use arbor_supervision::cascade::CascadeAction;
use arbor_supervision::{descendants, ChildKind, SupervisorRef};
use arbor_transports::{cascades, start, TransportConfig};
use http_support::*;
use serde_json::{json, Value};

fn server(failures: u32, action: CascadeAction, cool_down: Duration) -> McpServer {
    builder()
        .config(ServerConfig {
            rate_limits: RateLimits::off(),
            cascade: Some(CascadeConfig {
                failures,
                window: Duration::from_secs(30),
                action,
                cool_down,
            }),
            ..ServerConfig::default()
        })
        .build()
        .unwrap()
}

/// Kills every session under `subtree` (a path below the tree's root) as
/// a crash would; how many.
async fn crash_sessions(tree: &SupervisorRef, subtree: &str) -> usize {
    let mut killed = 0;
    for d in descendants(tree).await.unwrap() {
        if d.kind == ChildKind::Worker && d.path.starts_with(subtree) {
            d.process.kill();
            d.process.wait().await;
            killed += 1;
        }
    }
    killed
}

fn isolated(error: &Value, subtree: &str) {
    assert_eq!(error["code"], ISOLATED, "{error}");
    assert_eq!(error["data"]["subtree"], subtree, "{error}");
    assert_eq!(error["data"]["windowMs"], 30_000, "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_sessions_isolate_their_transport_until_an_operator_resets_it() {
    let (tree, endpoints) = start(
        server(2, CascadeAction::Isolate, Duration::ZERO),
        TransportConfig::default(),
    )
    .await
    .unwrap();
    let tcp = endpoints.tcp.unwrap();
    let ws = format!("ws://{}/mcp", endpoints.ws.unwrap());
    let mut lines = Vec::new();
    for i in 0..3 {
        let mut line = Line::connect(tcp).await;
        assert!(line.call(i).await["result"].is_object());
        lines.push(line);
    }
    let mut sockets = Vec::new();
    for _ in 0..3 {
        sockets.push(tokio_tungstenite::connect_async(ws.as_str()).await.unwrap());
    }
    // Two crashes are within the threshold; the third trips it.
    assert_eq!(
        crash_sessions(&tree, "connections/tcp-connections/").await,
        3
    );
    assert_eq!(
        crash_sessions(&tree, "connections/ws-connections/").await,
        3
    );
    for line in &mut lines {
        // The transport says why, then closes.
        let said = line.recv().await.expect("the session's end");
        assert_eq!(said["params"]["data"]["reason"], "killed", "{said}");
        assert!(line.recv().await.is_none(), "its session crashed");
    }

    // TCP: the refusal line, then the close.
    let mut refused = Line::connect(tcp).await;
    let line = refused.recv().await.expect("the refusal");
    isolated(&line["error"], "tcp-connections");
    assert_eq!(line["error"]["data"]["failures"], 3);
    assert!(
        line["error"]["data"]["retryAfter"].is_null(),
        "only a reset lifts it"
    );
    assert!(refused.recv().await.is_none(), "then closed");
    // WebSocket: a 503, no Retry-After (no cool-down).
    match tokio_tungstenite::connect_async(ws.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            assert!(response.headers().get("retry-after").is_none());
        }
        other => panic!("expected a 503, got {other:?}"),
    }
    // HTTP's sessions did not fail: it serves on.
    let http = endpoints.http.unwrap();
    let body = modern_request(json!(1), "server/discover", json!({}));
    let reply = modern_call(http, &body, None, &[]).await.json();
    assert!(reply["result"].is_object(), "{reply}");

    // The operator's reset, through the tree.
    let found = cascades(&tree).await.unwrap();
    let names: Vec<&str> = found.iter().map(|c| &**c.subtree()).collect();
    assert_eq!(names, ["tcp-connections", "ws-connections", "http"]);
    assert!(found[0].isolation().is_some() && found[1].isolation().is_some());
    assert!(found[2].isolation().is_none());
    assert!(found[0].reset());
    let mut again = Line::connect(tcp).await;
    assert!(again.call(9).await["result"].is_object(), "admitted again");
    // WebSocket stays isolated until its own reset.
    assert!(tokio_tungstenite::connect_async(ws.as_str()).await.is_err());
    assert!(found[1].reset());
    assert!(tokio_tungstenite::connect_async(ws.as_str()).await.is_ok());
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_http_sessions_isolate_both_eras_until_the_cool_down() {
    let (tree, endpoints) = start(
        server(1, CascadeAction::Isolate, Duration::from_secs(1)),
        TransportConfig::default(),
    )
    .await
    .unwrap();
    let http = endpoints.http.unwrap();
    for _ in 0..2 {
        Session::ready(http, "2025-11-25").await;
    }
    assert_eq!(
        crash_sessions(&tree, "connections/http/http-sessions/").await,
        2
    );
    // Handshake era: initialize is refused with a 503 and Retry-After.
    let body = initialize_request("2025-11-25");
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
    let error = &reply.json()["error"];
    isolated(error, "http");
    assert!(error["data"]["retryAfter"].as_f64().unwrap() > 0.0);
    // 2026-07-28: its requests are the same subtree's.
    let body = modern_request(json!(2), "server/discover", json!({}));
    let reply = modern_call(http, &body, None, &[]).await;
    assert_eq!(reply.status(), 503);
    isolated(&reply.json()["error"], "http");

    // The cool-down lifts it by itself.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    Session::ready(http, "2025-11-25").await;
    let body = modern_request(json!(3), "server/discover", json!({}));
    let reply = modern_call(http, &body, None, &[]).await.json();
    assert!(reply["result"].is_object(), "{reply}");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_stop_a_trip_stops_the_tree_with_the_trip_as_its_reason() {
    let (tree, endpoints) = start(
        server(0, CascadeAction::Stop, Duration::ZERO),
        TransportConfig::default(),
    )
    .await
    .unwrap();
    let mut line = Line::connect(endpoints.tcp.unwrap()).await;
    assert!(line.call(0).await["result"].is_object());
    crash_sessions(&tree, "connections/tcp-connections/").await;
    let reason = tokio::time::timeout(Duration::from_secs(10), tree.process().wait())
        .await
        .expect("the tree stops");
    let ExitReason::Error(why) = &reason else {
        panic!("expected an error exit, got {reason}");
    };
    assert!(
        why.contains("andon: cascade in tcp-connections: 1 abnormal exits"),
        "{why}"
    );
}
