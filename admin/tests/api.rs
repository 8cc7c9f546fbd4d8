//! The admin listener end to end: its guards, the tree one level at a
//! time, kills and chaos runs that say what they killed, and `/readyz`
//! turning unready when the transport tree gives up.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use arbor_admin::{AdminConfig, AdminListener, AdminToken};
use arbor_mcp::{CallToolResult, ServerBuilder, Tool};
use arbor_supervision::SupervisorRef;
use arbor_transports::{start, TcpConfig, TransportConfig};
use serde_json::{json, Value};

const TOKEN: &str = "test-token-0123456789";

async fn served() -> (SupervisorRef, AdminListener, std::net::SocketAddr) {
    served_with(AdminConfig::default()).await
}

async fn served_with(limits: AdminConfig) -> (SupervisorRef, AdminListener, std::net::SocketAddr) {
    let server = ServerBuilder::new("admin-test", "1")
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
            tree_page: 2,
            ..limits
        },
        tree.clone(),
        "transports",
    )
    .await
    .unwrap();
    (tree, admin, endpoints.tcp.unwrap())
}

async fn get(admin: &AdminListener, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}{path}", admin.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn post(admin: &AdminListener, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", admin.url()))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_but_health_needs_the_token_and_a_loopback_host() {
    let (tree, admin, _) = served().await;
    let http = reqwest::Client::new();
    for route in ["/metrics", "/api/tree", "/api/summary"] {
        let bare = http
            .get(format!("{}{route}", admin.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(bare.status(), 401, "{route}");
        assert!(bare.headers().contains_key("www-authenticate"), "{route}");
        let wrong = http
            .get(format!("{}{route}", admin.url()))
            .bearer_auth("test-token-0123456788")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{route}");
    }
    let health = http
        .get(format!("{}/healthz", admin.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // A rebound name is refused before the token is looked at.
    let rebound = http
        .get(format!("{}/healthz", admin.url()))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    let body: Value = rebound.json().await.unwrap();
    assert_eq!(body["data"]["host"], "evil.example");
    let (status, body) = get(&admin, "/api/nothing").await;
    assert_eq!((status, body["error"].is_string()), (404, true));
    // Malformed queries and wrong methods answer in JSON too.
    let (status, body) = get(&admin, "/api/tree?offset=-1").await;
    assert_eq!((status, body["error"].is_string()), (400, true), "{body}");
    let (status, body) = get(&admin, "/api/tree?pth=x").await;
    assert_eq!((status, body["error"].is_string()), (400, true), "{body}");
    let (status, body) = post(&admin, "/api/tree", json!({})).await;
    assert_eq!((status, body["error"].is_string()), (405, true), "{body}");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tree_comes_a_page_at_a_time_and_kills_say_what_they_killed() {
    let (tree, admin, _) = served().await;
    let (status, root) = get(&admin, "/api/tree").await;
    assert_eq!(status, 200, "{root}");
    assert_eq!(root["node"]["id"], "transports");
    assert_eq!(root["node"]["supervisor"]["strategy"], "rest_for_one");
    // The root has two children (connections, tcp-listener), a page of 2.
    let ids: Vec<&str> = root["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["connections", "tcp-listener"]);
    // Four shards, two to a page: the rest is counted.
    let (_, shards) = get(&admin, "/api/tree?path=connections/tcp-connections").await;
    assert_eq!(shards["children"].as_array().unwrap().len(), 2);
    assert_eq!(shards["more"], 2);
    let (_, rest) = get(
        &admin,
        "/api/tree?path=connections/tcp-connections&offset=2",
    )
    .await;
    assert_eq!(rest["children"][0]["id"], "shard-2");
    assert_eq!(rest["more"], 0);
    let (status, missing) = get(&admin, "/api/tree?path=connections/nothing").await;
    assert_eq!(status, 404, "{missing}");
    // One process in detail: a listener is linked to the root, which traps
    // exits.
    let (status, listener) = get(&admin, "/api/process?path=tcp-listener").await;
    assert_eq!(status, 200, "{listener}");
    let root_pid = root["node"]["pid"].clone();
    assert!(
        listener["links"].as_array().unwrap().contains(&root_pid),
        "{listener}"
    );
    assert_eq!(listener["traps_exits"], false);
    let (_, top) = get(&admin, "/api/process?path=").await;
    assert_eq!(top["traps_exits"], true, "{top}");

    // A kill by path: answered with what died, and the restart seen.
    let (status, killed) = post(
        &admin,
        "/api/kill",
        json!({"path": "connections/tcp-connections/shard-1"}),
    )
    .await;
    assert_eq!(status, 200, "{killed}");
    assert_eq!(killed["killed"]["kind"], "supervisor");
    let mut restarted = false;
    for _ in 0..100 {
        let (_, level) = get(&admin, "/api/tree?path=connections/tcp-connections").await;
        if level["node"]["supervisor"]["restarts"] == 1 {
            assert_ne!(level["children"][1]["pid"], killed["killed"]["pid"]);
            restarted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(restarted, "the shard was never restarted");
    let (status, body) = post(&admin, "/api/kill", json!({"path": "connections/nothing"})).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = post(&admin, "/api/kill", json!({"paht": "typo"})).await;
    assert_eq!(status, 400, "{body}");

    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_from_a_seed_repeats_and_its_limits_hold_at_the_limit() {
    let limits = AdminConfig {
        max_kills: 3,
        max_chaos: Duration::from_millis(200),
        ..AdminConfig::default()
    };
    let paths = |r: &Value| -> Vec<String> {
        r["killed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["path"].as_str().unwrap().to_string())
            .collect()
    };
    // The same seed on two trees of one shape: the same victims.
    let run = json!({"subtree": "connections/tcp-connections", "count": 2, "seed": 42, "target": "supervisors"});
    let mut runs = Vec::new();
    let mut trees = Vec::new();
    for _ in 0..2 {
        let (tree, admin, _) = served_with(limits.clone()).await;
        let (status, report) = post(&admin, "/api/chaos", run.clone()).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["seed"], 42);
        runs.push(paths(&report));
        trees.push((tree, admin));
    }
    assert_eq!(runs[0].len(), 2);
    assert!(
        runs[0][0].starts_with("connections/tcp-connections/shard-"),
        "{runs:?}"
    );
    assert_eq!(runs[0], runs[1]);
    let admin = &trees[0].1;
    // Malformed or past the limits: 400, saying why.
    let (status, body) = post(admin, "/api/chaos", json!({"count": 1, "rate": 2.0})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(admin, "/api/chaos", json!({"count": 4})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("limit of 3"),
        "{body}"
    );
    let (status, body) = post(admin, "/api/chaos", json!({"rate": 1.0, "for_ms": 201})).await;
    assert_eq!(status, 400, "{body}");
    // Rates that would kill nothing, or could not be timed: refused, not a
    // panic or a run that outlasts its duration.
    for rate in [
        json!({"rate": 1e-30, "for_ms": 100}),
        json!({"rate": 1e10, "for_ms": 0}),
        json!({"rate": 0.001, "for_ms": 100}),
        json!({"rate": 1e7, "for_ms": 1}),
    ] {
        let (status, body) = post(admin, "/api/chaos", rate.clone()).await;
        assert_eq!(status, 400, "{rate}: {body}");
    }
    let (status, body) = post(admin, "/api/chaos", json!({"rate": 100.0, "for_ms": 200})).await;
    assert_eq!(status, 400, "{body}");
    // At the limits: past the checks (the subtree below has nothing to
    // kill, so the count says 409 and the rate kills none).
    let empty = "connections/tcp-connections/shard-0";
    let (status, body) = post(admin, "/api/chaos", json!({"subtree": empty, "count": 3})).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = post(
        admin,
        "/api/chaos",
        json!({"subtree": empty, "rate": 15.0, "for_ms": 200}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["killed"], json!([]));
    for (tree, _) in trees {
        tree.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_unready_when_the_tree_gives_up() {
    let (tree, admin, _) = served().await;
    let (status, ready) = get(&admin, "/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["ready"], true);
    assert!(ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "tcp-listener" && c["ok"] == true));
    // The listener killed past the root's intensity (10 in 5 s): it gives up.
    let mut gave_up = false;
    for _ in 0..50 {
        let _ = post(&admin, "/api/kill", json!({"path": "tcp-listener"})).await;
        if !tree.process().is_alive() {
            gave_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gave_up, "the tree never gave up");
    let (status, unready) = get(&admin, "/readyz").await;
    assert_eq!(status, 503, "{unready}");
    assert_eq!(unready["ready"], false);
    assert_eq!(unready["checks"][0]["ok"], false);
    assert!(
        unready["checks"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("stopped"),
        "{unready}"
    );
    // Alive all the same: the admin listener outlives the tree.
    let (status, _) = get(&admin, "/healthz").await;
    assert_eq!(status, 200);
}
