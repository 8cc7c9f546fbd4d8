//! The summary the dashboard shows says what the safeguards turned away:
//! an open circuit by handler, calls it refused, requests over a rate.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use arbor_admin::{AdminConfig, AdminListener, AdminToken};
use arbor_mcp::breaker::BreakerConfig;
use arbor_mcp::rate::{Rate, RateLimits};
use arbor_mcp::{CallToolResult, ServerBuilder, ServerConfig, Tool, ToolError};
use arbor_transports::{start, TcpConfig, TransportConfig};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const TOKEN: &str = "test-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_circuit_and_rate_limited_requests_show_in_the_summary() {
    let server = ServerBuilder::new("safeguards", "1")
        .config(ServerConfig {
            circuit_breaker: BreakerConfig {
                failures: 1,
                cool_down: Duration::from_secs(60),
            },
            rate_limits: RateLimits {
                session_requests: Rate::new(1, 4),
                ..RateLimits::off()
            },
            ..ServerConfig::default()
        })
        .tool(
            Tool::new("broken").description("Always fails"),
            |(), _ctx| async { Err::<CallToolResult, _>(ToolError::new("down")) },
        )
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
    let (read, mut write) = tokio::net::TcpStream::connect(endpoints.tcp.unwrap())
        .await
        .unwrap()
        .into_split();
    let mut lines = BufReader::new(read).lines();
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    // The first fails and opens the circuit; the second is refused by it;
    // the rest are over the session's rate.
    let mut codes = Vec::new();
    for id in 0..6 {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "broken", "arguments": {}, "_meta": meta}});
        write
            .write_all(format!("{call}\n").as_bytes())
            .await
            .unwrap();
        let line = lines.next_line().await.unwrap().unwrap();
        let answer: Value = serde_json::from_str(&line).unwrap();
        codes.push(answer["error"]["code"].as_i64());
    }
    assert_eq!(codes[0], None, "the tool's failure is a result");
    assert_eq!(&codes[1..4], &[Some(-32030); 3]);
    assert_eq!(&codes[4..], &[Some(-32029); 2]);
    let summary: Value = reqwest::Client::new()
        .get(format!("{}/api/summary", admin.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        summary["circuits"],
        json!([{"handler": "tool broken", "state": "open"}]),
        "{summary}"
    );
    // Process-wide counters: at least what this test caused.
    assert!(
        summary["circuit_refused"].as_u64().unwrap() >= 3,
        "{summary}"
    );
    assert!(summary["rate_limited"].as_u64().unwrap() >= 2, "{summary}");
    tree.shutdown().await;
}

struct Idle;

impl arbor_runtime::Actor for Idle {
    type Msg = ();
    async fn handle(&mut self, _: (), _: &mut arbor_runtime::Context<Self>) -> arbor_runtime::Flow {
        Ok(())
    }
}

/// `/readyz`'s status and its `resources` check.
async fn readiness(admin: &AdminListener) -> (u16, Value) {
    let reply = reqwest::Client::new()
        .get(format!("{}/readyz", admin.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = reply.status().as_u16();
    let body: Value = reply.json().await.unwrap();
    let check = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "resources")
        .cloned()
        .expect("a resources check");
    (status, check)
}

async fn ready_becomes(admin: &AdminListener, status: u16) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (now, check) = readiness(admin).await;
        if now == status {
            return check;
        }
        assert!(tokio::time::Instant::now() < deadline, "{now}: {check}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_while_the_resource_guard_sheds_load() {
    const MAX: u64 = 3000;
    let server = ServerBuilder::new("guarded", "1")
        .config(ServerConfig {
            resource_guard: Some(arbor_mcp::guard::GuardConfig {
                interval: Duration::from_millis(50),
                max_processes: MAX,
                ..Default::default()
            }),
            ..ServerConfig::default()
        })
        .build()
        .unwrap();
    let config = TransportConfig {
        tcp: Some(TcpConfig::default()),
        ..TransportConfig::none()
    };
    let (tree, _) = start(server, config).await.unwrap();
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
    let check = ready_becomes(&admin, 200).await;
    assert_eq!(check["ok"], true, "{check}");

    // Idle processes past 80% of the limit: soft pressure.
    let mut held = Vec::new();
    while (arbor_runtime::process_counts().total() as u64) < MAX * 85 / 100 {
        held.push(arbor_runtime::spawn(Idle).await.unwrap());
    }
    let check = ready_becomes(&admin, 503).await;
    assert_eq!(check["ok"], false, "{check}");
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("soft pressure") && detail.contains("processes"),
        "{detail}"
    );

    for idle in held.drain(..) {
        idle.process().kill();
        idle.process().wait().await;
    }
    let check = ready_becomes(&admin, 200).await;
    assert_eq!(check["detail"], "below the soft threshold", "{check}");
    tree.shutdown().await;
}

/// `path` on the admin listener, with the token.
async fn get_json(admin: &AdminListener, path: &str) -> (u16, Value) {
    let reply = reqwest::Client::new()
        .get(format!("{}{path}", admin.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    (
        reply.status().as_u16(),
        reply.json().await.unwrap_or(Value::Null),
    )
}

fn cascades_check(readiness: &Value) -> &Value {
    readiness["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "cascades")
        .expect("a cascades check")
}

async fn post_json(admin: &AdminListener, path: &str, body: Value) -> (u16, Value) {
    let reply = reqwest::Client::new()
        .post(format!("{}{path}", admin.url()))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_killed_by_chaos_isolate_tcp_until_api_reset_lifts_it() {
    let server = ServerBuilder::new("cascading", "1")
        .config(ServerConfig {
            rate_limits: RateLimits::off(),
            cascade: Some(arbor_mcp::cascade::CascadeConfig {
                failures: 3,
                cool_down: Duration::ZERO,
                ..Default::default()
            }),
            ..ServerConfig::default()
        })
        .build()
        .unwrap();
    let config = TransportConfig {
        tcp: Some(TcpConfig::default()),
        ..TransportConfig::none()
    };
    let (tree, endpoints) = start(server, config).await.unwrap();
    let tcp = endpoints.tcp.unwrap();
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
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tokio::net::TcpStream::connect(tcp).await.unwrap());
    }
    let sessions = "connections/tcp-connections";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while arbor_transports::held(&tree).await.unwrap()[0].active < 4 {
        assert!(tokio::time::Instant::now() < deadline, "sessions never up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The chaos API kills the four sessions: one more than the threshold.
    let (status, report) = post_json(
        &admin,
        "/api/chaos",
        json!({"subtree": sessions, "count": 4, "seed": 7}),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["killed"].as_array().unwrap().len(), 4, "{report}");

    let (_, summary) = get_json(&admin, "/api/summary").await;
    let tcp_cascade = &summary["cascades"][0];
    assert_eq!(tcp_cascade["subtree"], "tcp-connections", "{summary}");
    assert_eq!(tcp_cascade["trips"], 1, "{summary}");
    assert!(
        tcp_cascade["isolated"]
            .as_str()
            .unwrap()
            .contains("4 abnormal exits"),
        "{summary}"
    );
    // (Only the cascades check: the other tests here move the process-wide
    // resource pressure.)
    let (status, ready) = get_json(&admin, "/readyz").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(cascades_check(&ready)["ok"], false, "{ready}");
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", admin.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("arbor_cascade_isolated{subtree=\"tcp-connections\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("arbor_cascade_trips{subtree=\"tcp-connections\"} 1"));
    // A new client reads the refusal.
    let (read, _write) = tokio::net::TcpStream::connect(tcp)
        .await
        .unwrap()
        .into_split();
    let line = BufReader::new(read)
        .lines()
        .next_line()
        .await
        .unwrap()
        .unwrap();
    let refusal: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(refusal["error"]["code"], -32032, "{refusal}");

    let (status, answer) = post_json(&admin, "/api/reset", json!({"subtree": "nope"})).await;
    assert_eq!(status, 404, "{answer}");
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("tcp-connections"));
    let (status, answer) = post_json(&admin, "/api/reset", json!({})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["lifted"], json!(["tcp-connections"]), "{answer}");
    assert!(answer["cascades"][0]["isolated"].is_null(), "{answer}");
    let (_, ready) = get_json(&admin, "/readyz").await;
    assert_eq!(cascades_check(&ready)["ok"], true, "{ready}");
    // Serving again.
    let (read, mut write) = tokio::net::TcpStream::connect(tcp)
        .await
        .unwrap()
        .into_split();
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    let call =
        json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}});
    write
        .write_all(format!("{call}\n").as_bytes())
        .await
        .unwrap();
    let line = BufReader::new(read)
        .lines()
        .next_line()
        .await
        .unwrap()
        .unwrap();
    let answer: Value = serde_json::from_str(&line).unwrap();
    assert!(answer["result"].is_object(), "{answer}");
    drop(held);
    tree.shutdown().await;
}
