//! A handshake-era HTTP session killed (a chaos kill, a crash) takes its
//! MCP session with it: nothing is left running that no client can reach.
//! Alone in its binary: it counts the process's processes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod http_support;

use std::time::Duration;

use arbor_runtime::process_counts;
use arbor_supervision::{descendants, ChildKind};
use arbor_transports::{start, TransportConfig};
use http_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_http_session_stops_its_mcp_session() {
    let config = TransportConfig {
        http: Some(arbor_transports::http::HttpConfig::default()),
        ..TransportConfig::none()
    };
    let (tree, endpoints) = start(builder().build().unwrap(), config).await.unwrap();
    let http = endpoints.http.unwrap();
    let baseline = process_counts().total();
    let _session = Session::ready(http, "2025-11-25").await;
    // The HTTP session and its MCP session.
    assert!(process_counts().total() >= baseline + 2);
    let killed: Vec<_> = descendants(&tree)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.kind == ChildKind::Worker && d.path.contains("http-sessions/"))
        .collect();
    assert_eq!(killed.len(), 1, "one HTTP session");
    killed[0].process.kill();
    eventually(Duration::from_secs(10), "back to the baseline", || async {
        process_counts().total() <= baseline
    })
    .await;
    tree.shutdown().await;
}
