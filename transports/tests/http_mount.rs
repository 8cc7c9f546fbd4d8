//! arbor's HTTP routes mounted in an axum app of the caller's
//! (`http::mount`): served by the app, supervised by arbor.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod http_support;

use std::time::Duration;

use arbor_mcp::{CallToolResult, ServerBuilder, Tool};
use arbor_transports::http::{mount, HttpConfig};
use arbor_transports::OriginPolicy;
use axum::routing::get;
use http_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounted_routes_serve_both_eras_beside_the_apps_own_under_supervision() {
    let server = ServerBuilder::new("mounted", "1")
        .tool(Tool::new("hi"), |(), _ctx| async move {
            Ok(CallToolResult::text("hi"))
        })
        .build()
        .unwrap();
    let mcp = mount(server, HttpConfig::default(), OriginPolicy::default())
        .await
        .unwrap();
    let app = axum::Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(mcp.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(async move { axum::serve(listener, app).await });

    // The app's own route.
    let health = exchange(addr, "GET", "/health", &[], b"").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.body, b"ok");
    // 2026-07-28, stateless.
    let body = modern_request(json!(1), "tools/call", json!({"name": "hi"}));
    let called = modern_call(addr, &body, Some("hi"), &[]).await;
    assert_eq!(
        called.status(),
        200,
        "{:?}",
        String::from_utf8_lossy(&called.body)
    );
    assert_eq!(called.json()["result"]["content"][0]["text"], "hi");
    // A handshake-era session is a process under the mounted tree...
    let session = Session::ready(addr, "2025-11-25").await;
    let tree = arbor_supervision::descendants(mcp.tree()).await.unwrap();
    let sessions: Vec<_> = tree
        .iter()
        .filter(|d| d.path.starts_with("http-sessions/") && d.path.matches('/').count() == 2)
        .collect();
    assert_eq!(
        sessions.len(),
        1,
        "{:?}",
        tree.iter().map(|d| &d.path).collect::<Vec<_>>()
    );
    // ...which the kill hooks reach: the session is gone for the client.
    sessions[0].process.kill();
    eventually(Duration::from_secs(5), "the killed session is gone", || {
        let session = &session;
        async move {
            let r = session
                .post(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
                .await;
            r.status() == 404
        }
    })
    .await;
    // The mounted routes check Host and Origin as arbor's own listener does.
    let foreign = exchange(
        addr,
        "POST",
        "/mcp",
        &[("Origin", "http://evil.example.com")],
        b"{}",
    )
    .await;
    assert_eq!(foreign.status(), 403);

    serving.abort();
    mcp.shutdown().await;
}
