//! `/metrics` before and after known work: the counters move by exactly
//! what was done. Alone in its binary: the `metrics` recorder is the
//! process's, and another test's requests would move the same counters.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use arbor_admin::{AdminConfig, AdminListener, AdminToken};
use arbor_mcp::client::Client;
use arbor_mcp::{CallToolResult, ServerBuilder, Tool};
use arbor_transports::client::tcp;
use arbor_transports::{start, TcpConfig, TransportConfig};
use serde_json::json;

const TOKEN: &str = "metrics-token-0123456789";

/// The value of the series `name` whose labels include every one of
/// `labels` (and, with `without`, not that label), or 0 when absent.
fn value(text: &str, name: &str, labels: &[(&str, &str)], without: Option<&str>) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let has = |(k, v): &(&str, &str)| rest.split(',').any(|p| p == format!("{k}=\"{v}\""));
            let excluded =
                without.is_some_and(|w| rest.split(',').any(|p| p.starts_with(&format!("{w}="))));
            (labels.iter().all(has) && !excluded).then(|| v.parse::<f64>().ok())?
        })
        .next()
        .unwrap_or(0.0)
}

async fn scrape(admin: &AdminListener) -> String {
    let r = reqwest::Client::new()
        .get(format!("{}/metrics", admin.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_by_exactly_the_work_done() {
    arbor_admin::recorder().unwrap();
    let server = ServerBuilder::new("metrics-test", "1")
        .tool(Tool::new("echo").description("Echoes"), |(), _ctx| async {
            Ok(CallToolResult::text("ok"))
        })
        .build()
        .unwrap();
    let config = TransportConfig {
        tcp: Some(TcpConfig::default()),
        ..TransportConfig::none()
    };
    let (tree, endpoints) = start(server, config).await.unwrap();
    let admin = AdminListener::start(
        AdminConfig {
            token: Some(AdminToken::new(TOKEN).unwrap()),
            ..AdminConfig::default()
        },
        tree.clone(),
        "transports",
    )
    .await
    .unwrap();
    let calls = [("mcp_method_name", "tools/call")];
    let failed = [("mcp_method_name", "tools/call"), ("error_type", "-32602")];
    let tcp_held = [("transport", "tcp"), ("what", "connections")];
    let modern = [("era", "2026-07-28")];
    let count = "mcp_server_operation_duration_count";

    let before = scrape(&admin).await;
    assert_eq!(value(&before, "arbor_transport_held", &tcp_held, None), 0.0);
    let client = Client::builder()
        .connect(tcp(endpoints.tcp.unwrap().to_string()))
        .await
        .unwrap();
    for _ in 0..3 {
        client.call_tool("echo", json!({})).await.unwrap();
    }
    for _ in 0..2 {
        client
            .call_tool("no-such-tool", json!({}))
            .await
            .unwrap_err();
    }
    let during = scrape(&admin).await;
    let moved = |name: &str, labels: &[(&str, &str)], without: Option<&str>| {
        value(&during, name, labels, without) - value(&before, name, labels, without)
    };
    assert_eq!(moved(count, &calls, Some("error_type")), 3.0, "{during}");
    assert_eq!(moved(count, &failed, None), 2.0, "{during}");
    // Latencies land in buckets: all three under a second.
    let under_a_second = [("mcp_method_name", "tools/call"), ("le", "1")];
    assert_eq!(
        moved(
            "mcp_server_operation_duration_bucket",
            &under_a_second,
            Some("error_type")
        ),
        3.0
    );
    assert_eq!(value(&during, "arbor_transport_held", &tcp_held, None), 1.0);
    assert_eq!(moved("arbor_mcp_sessions", &modern, None), 1.0, "{during}");
    assert!(value(&during, "arbor_processes", &[("kind", "lightweight")], None) >= 1.0);
    assert!(value(&during, "arbor_resident_memory_bytes", &[], None) > 1e6);
    assert!(value(&during, "arbor_open_fds", &[], None) >= 3.0);

    // A restart, counted where it happened.
    let restarts = [("supervisor", "transports/connections/tcp-connections")];
    let shard = arbor_supervision::find_path(&tree, "connections/tcp-connections/shard-3")
        .await
        .unwrap();
    shard.process.kill();
    let mut counted = 0.0;
    for _ in 0..100 {
        let now = scrape(&admin).await;
        counted = value(&now, "arbor_supervisor_restarts", &restarts, None)
            - value(&before, "arbor_supervisor_restarts", &restarts, None);
        if counted >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counted, 1.0);

    // The connection gone: held and sessions back where they were.
    client.close().await;
    let mut after = String::new();
    for _ in 0..100 {
        after = scrape(&admin).await;
        if value(&after, "arbor_transport_held", &tcp_held, None) == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(value(&after, "arbor_transport_held", &tcp_held, None), 0.0);
    assert_eq!(
        value(&after, "arbor_mcp_sessions", &modern, None),
        value(&before, "arbor_mcp_sessions", &modern, None)
    );
    tree.shutdown().await;
}
