//! arbor nodes as one cluster on NATS with JetStream (Debian's
//! `nats-server`, started here, alone or as a cluster of three): every node
//! seals with the cluster's key, so a cursor or `requestState` made on one
//! is taken by another; a resource update or list change published on one
//! reaches subscribers and listen streams on every node, once each and in
//! order, also after a NATS server is killed; a handshake-era session is
//! served through any node; `arbor serve --cluster` does it between
//! processes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arbor_cluster::{Cluster, ClusterConfig, Node};
use arbor_mcp::client::{Client, VersionChoice};
use arbor_mcp::model::{ListenFilter, Resource, ResourceContents};
use arbor_mcp::server::ServerConfig;
use arbor_mcp::{CallToolResult, ListKind, McpServer, ProtocolVersion, ServerBuilder, Tool};
use arbor_supervision::SupervisorRef;
use arbor_transports::client::tcp;
use arbor_transports::{start, Endpoints, TransportConfig};

/// NATS servers with JetStream on free loopback ports, one store
/// directory each, routed to each other when there are several (a NATS
/// cluster); killed when dropped.
struct Nats {
    servers: Vec<Option<Child>>,
    urls: Vec<String>,
    dir: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nats {
    fn start() -> Nats {
        Nats::cluster(1)
    }

    fn cluster(n: usize) -> Nats {
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let dir =
            std::env::temp_dir().join(format!("arbor-nats-{}-{}", std::process::id(), ports[0].0));
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, route)| format!("nats://127.0.0.1:{route}"))
            .collect();
        let mut servers = Vec::new();
        for (i, (port, route)) in ports.iter().enumerate() {
            let store = dir.join(format!("s{i}"));
            std::fs::create_dir_all(&store).unwrap();
            let mut command = Command::new("nats-server");
            command
                .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
                .arg(&store)
                .args(["-n", &format!("s{i}")]);
            if n > 1 {
                command.args([
                    "--cluster_name",
                    "arbor-test",
                    "--cluster",
                    &format!("nats://127.0.0.1:{route}"),
                    "--routes",
                    &routes.join(","),
                ]);
            }
            let child = command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nats-server (Debian's package `nats-server`) on the PATH");
            servers.push(Some(child));
        }
        for (port, _) in &ports {
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(addr).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "nats-server did not listen on {addr}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let urls = ports
            .iter()
            .map(|(port, _)| format!("nats://127.0.0.1:{port}"))
            .collect();
        Nats { servers, urls, dir }
    }

    /// Kills server `i` (SIGKILL).
    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const RESOURCES: usize = 10;

fn uri(i: usize) -> String {
    format!("file:///shared/{i}")
}

/// One node: two tools (a page each), the shared resources, the cluster's
/// key; joined and serving on loopback.
async fn node(
    nats: &str,
    name: &str,
    replicas: usize,
) -> (McpServer, Node, SupervisorRef, Endpoints) {
    let mut config = ClusterConfig::new([nats]);
    config.node = Some(name.to_string());
    config.replicas = replicas;
    let cluster = Cluster::connect(config).await.unwrap();
    let mut builder = ServerBuilder::new(name, "1")
        .config(ServerConfig {
            page_size: 1,
            ..Default::default()
        })
        .seal_key(cluster.seal_key().clone());
    for tool in ["first", "second"] {
        builder = builder.tool(Tool::new(tool), |(), _ctx| async move {
            Ok(CallToolResult::text("ok"))
        });
    }
    builder = builder.tool(Tool::new("confirm"), |(), ctx| async move {
        match ctx.input::<arbor_mcp::model::ElicitResult>("ok") {
            None => Err(arbor_mcp::ToolError::input_required(
                arbor_mcp::input::InputRequired::new()
                    .elicit("ok", "Proceed?", serde_json::json!({"type": "object"}))
                    .with_state(serde_json::json!({"asked on": ctx.server().info().name})),
            )),
            Some(_) => Ok(CallToolResult::text(format!(
                "asked on {}, answered on {}",
                ctx.request_state()
                    .and_then(|s| s["asked on"].as_str().map(str::to_string))
                    .unwrap_or_default(),
                ctx.server().info().name
            ))),
        }
    });
    for i in 0..RESOURCES {
        builder = builder.resource(
            Resource::new(uri(i), format!("r{i}")),
            |uri, _ctx| async move { Ok(vec![ResourceContents::text(uri, None, "x")]) },
        );
    }
    let server = builder.build().unwrap();
    let node = cluster.join(&server).await.unwrap();
    assert_eq!(node.id(), name);
    let transports = TransportConfig {
        forward: Some(node.forward()),
        ..TransportConfig::default()
    };
    let (tree, endpoints) = start(server.clone(), transports).await.unwrap();
    (server, node, tree, endpoints)
}

async fn client(endpoints: &Endpoints, version: ProtocolVersion) -> Client {
    Client::builder()
        .version(VersionChoice::Pinned(version))
        .request_timeout(Duration::from_secs(10))
        .connect(tcp(endpoints.tcp.unwrap().to_string()))
        .await
        .unwrap()
}

/// The resource URIs (or list changes, as `list:tools`) `client` is told
/// of, until `count` have come (10 s at most).
async fn told(
    notifications: &mut tokio::sync::broadcast::Receiver<arbor_mcp::jsonrpc::Notification>,
    count: usize,
) -> Vec<String> {
    told_within(notifications, count, Duration::from_secs(10)).await
}

/// As [`told`], waiting at most `wait`.
async fn told_within(
    notifications: &mut tokio::sync::broadcast::Receiver<arbor_mcp::jsonrpc::Notification>,
    count: usize,
    wait: Duration,
) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while seen.len() < count {
        let Ok(Ok(n)) = tokio::time::timeout_at(deadline, notifications.recv()).await else {
            break;
        };
        match n.method.as_str() {
            "notifications/resources/updated" => {
                let params = n.params.unwrap_or_default();
                seen.push(params["uri"].as_str().unwrap_or_default().to_string());
            }
            "notifications/tools/list_changed" => seen.push("list:tools".into()),
            _ => {}
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_their_key_and_every_node_hears_what_one_publishes_in_order() {
    let nats = Nats::start();
    let (one, _n1, tree1, e1) = node(&nats.urls[0], "one", 1).await;
    let (_two, _n2, tree2, e2) = node(&nats.urls[0], "two", 1).await;
    let (_three, _n3, tree3, e3) = node(&nats.urls[0], "three", 1).await;

    // The key ring: a cursor sealed on node one opens on node three.
    let c1 = client(&e1, ProtocolVersion::V2025_11_25).await;
    let page = c1.list_tools(None).await.unwrap();
    assert_eq!(page.tools[0].name, "first");
    let cursor = page.next_cursor.expect("a second page");
    let c3 = client(&e3, ProtocolVersion::V2025_11_25).await;
    let next = c3.list_tools(Some(cursor)).await.unwrap();
    assert_eq!(next.tools[0].name, "second");
    // And a 2026-07-28 `requestState` sealed on node one, on node three.
    let call = serde_json::json!({"name": "confirm", "arguments": {}, "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}}});
    let asked = modern_call(e1.http.unwrap(), &call).await;
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    let mut retry = call.clone();
    retry["inputResponses"] = serde_json::json!({"ok": {"action": "accept", "content": {}}});
    retry["requestState"] = asked["result"]["requestState"].clone();
    let done = modern_call(e3.http.unwrap(), &retry).await;
    assert_eq!(
        done["result"]["content"][0]["text"], "asked on one, answered on three",
        "{done}"
    );

    // Subscribers on every node: handshake-era subscriptions on one and
    // two, a 2026-07-28 listen stream on three.
    let mut local = c1.notifications();
    let c2 = client(&e2, ProtocolVersion::V2025_11_25).await;
    let mut remote = c2.notifications();
    for i in 0..RESOURCES {
        c1.subscribe(&uri(i)).await.unwrap();
        c2.subscribe(&uri(i)).await.unwrap();
    }
    let modern = client(&e3, ProtocolVersion::V2026_07_28).await;
    let mut listening = modern.notifications();
    let _listen = modern
        .listen(ListenFilter {
            tools_list_changed: true,
            resource_subscriptions: Some((0..RESOURCES).map(uri).collect()),
            ..Default::default()
        })
        .await
        .unwrap();

    for i in 0..RESOURCES {
        assert_eq!(one.resource_updated(&uri(i)), 1, "told here: c1 alone");
    }
    one.list_changed(ListKind::Tools);
    let expected: Vec<String> = (0..RESOURCES).map(uri).collect();
    assert_eq!(told(&mut local, RESOURCES).await, expected, "node one");
    assert_eq!(told(&mut remote, RESOURCES).await, expected, "node two");
    let mut with_list = expected.clone();
    with_list.push("list:tools".into());
    assert_eq!(
        told(&mut listening, RESOURCES + 1).await,
        with_list,
        "node three's listen stream"
    );
    // Once each: nothing echoes back to node one, nothing comes twice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(told_now(&mut local).is_empty(), "node one told once");
    assert!(told_now(&mut remote).is_empty(), "node two told once");

    for tree in [tree1, tree2, tree3] {
        tree.shutdown().await;
    }
}

/// What has come already, without waiting.
fn told_now(
    notifications: &mut tokio::sync::broadcast::Receiver<arbor_mcp::jsonrpc::Notification>,
) -> Vec<String> {
    let mut seen = Vec::new();
    while let Ok(n) = notifications.try_recv() {
        if n.method == "notifications/resources/updated" {
            seen.push(n.method);
        }
    }
    seen
}

/// `arbor serve --cluster` on free ports: the process and its TCP address.
fn arbor_node(nats: &Nats, id: &str) -> (support::Server, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_arbor"));
    command
        .args(["serve", "--cluster", &nats.urls[0], "--node", id])
        .envs(support::FREE_PORTS);
    let node = support::Server::start(command, &format!("node {id}"), |urls| {
        urls.iter().any(|u| u.starts_with("tcp://"))
    });
    let tcp = node.url("tcp://", "");
    let addr = tcp.trim_start_matches("tcp://").to_string();
    (node, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbor_serve_nodes_tell_each_others_subscribers() {
    let nats = Nats::start();
    let (_a, a) = arbor_node(&nats, "a");
    let (_b, b) = arbor_node(&nats, "b");
    let connect = |addr: String| async move {
        Client::builder()
            .version(VersionChoice::Pinned(ProtocolVersion::V2025_11_25))
            .request_timeout(Duration::from_secs(10))
            .connect(tcp(addr))
            .await
            .unwrap()
    };
    let (on_a, on_b) = (connect(a).await, connect(b).await);
    let mut updates = on_b.notifications();
    on_b.subscribe("arbor://demo/counter").await.unwrap();
    on_a.call_tool("bump", serde_json::json!({})).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = tokio::time::timeout_at(deadline, updates.recv())
            .await
            .expect("node b told of node a's bump within 10 s")
            .unwrap();
        if n.method == "notifications/resources/updated" {
            assert_eq!(n.params.unwrap()["uri"], "arbor://demo/counter");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_nats_cluster_the_nodes_carry_on_when_a_nats_server_dies() {
    let mut nats = Nats::cluster(3);
    // Each node dials its own NATS server and learns the others from it.
    let (one, _n1, tree1, e1) = node(&nats.urls[0], "one", 3).await;
    let (two, _n2, tree2, e2) = node(&nats.urls[1], "two", 3).await;
    let (_three, _n3, tree3, e3) = node(&nats.urls[2], "three", 3).await;
    let (c1, c2, c3) = (
        client(&e1, ProtocolVersion::V2025_11_25).await,
        client(&e2, ProtocolVersion::V2025_11_25).await,
        client(&e3, ProtocolVersion::V2025_11_25).await,
    );
    let (mut on1, mut on2, mut on3) = (c1.notifications(), c2.notifications(), c3.notifications());
    for c in [&c1, &c2, &c3] {
        for i in 0..RESOURCES {
            c.subscribe(&uri(i)).await.unwrap();
        }
    }
    let expected: Vec<String> = (0..RESOURCES).map(uri).collect();
    for i in 0..RESOURCES {
        one.resource_updated(&uri(i));
    }
    for (told_to, seen) in [("one", &mut on1), ("two", &mut on2), ("three", &mut on3)] {
        assert_eq!(
            told(seen, RESOURCES).await,
            expected,
            "before: node {told_to}"
        );
    }

    // Node one's NATS server dies: node one publishes through another, and
    // node two's updates reach it, every one, in order. JetStream elects
    // new leaders for what the dead server led first (a Raft election in
    // nats-server waits 4 to 9 s): hence the longer wait.
    const RECOVERY: Duration = Duration::from_secs(30);
    nats.kill(0);
    let started = Instant::now();
    for i in 0..RESOURCES {
        one.resource_updated(&uri(i));
    }
    for (told_to, seen) in [("two", &mut on2), ("three", &mut on3)] {
        assert_eq!(
            told_within(seen, RESOURCES, RECOVERY).await,
            expected,
            "after, from one: node {told_to}"
        );
    }
    for i in 0..RESOURCES {
        two.resource_updated(&uri(i));
    }
    assert_eq!(
        told_within(&mut on1, RESOURCES, RECOVERY).await,
        expected,
        "after, from two: node one"
    );
    eprintln!("carried on after the kill in {:?}", started.elapsed());
    // The key ring is still read from the bucket (two of three copies).
    let mut config = ClusterConfig::new([nats.urls[1].clone()]);
    config.replicas = 3;
    let late = Cluster::connect(config).await.unwrap();
    let page = c1.list_tools(None).await.unwrap();
    let cursor = page.next_cursor.unwrap();
    let server = ServerBuilder::new("late", "1")
        .config(ServerConfig {
            page_size: 1,
            ..Default::default()
        })
        .seal_key(late.seal_key().clone())
        .tool(Tool::new("first"), |(), _ctx| async move {
            Ok(CallToolResult::text("ok"))
        })
        .tool(Tool::new("second"), |(), _ctx| async move {
            Ok(CallToolResult::text("ok"))
        })
        .build()
        .unwrap();
    let (tree4, e4) = start(server, TransportConfig::default()).await.unwrap();
    let c4 = client(&e4, ProtocolVersion::V2025_11_25).await;
    assert_eq!(
        c4.list_tools(Some(cursor)).await.unwrap().tools[0].name,
        "second"
    );
    for tree in [tree1, tree2, tree3, tree4] {
        tree.shutdown().await;
    }
}

/// A POST to `/mcp` of `http`: status, session id, and the JSON-RPC answer
/// (from JSON or the SSE stream).
async fn post(
    http: SocketAddr,
    session: Option<&str>,
    body: serde_json::Value,
) -> (u16, Option<String>, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{http}/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(id) = session {
        request = request
            .header("Mcp-Session-Id", id)
            .header("MCP-Protocol-Version", "2025-11-25");
    }
    let reply = request.send().await.unwrap();
    let status = reply.status().as_u16();
    let id = reply
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    let answer = answer_of(&reply.text().await.unwrap());
    (status, id, answer)
}

/// The JSON-RPC answer in a reply's body: JSON, or the SSE stream's.
fn answer_of(text: &str) -> serde_json::Value {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .find(|d| d.contains("\"jsonrpc\""))
        .or(Some(text))
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// A handshake-era `initialize` (2025-11-25).
fn initialize() -> serde_json::Value {
    serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "cluster-test", "version": "1"}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_opened_on_one_node_is_served_through_any_other() {
    use serde_json::json;
    let nats = Nats::start();
    let (one, _n1, tree1, e1) = node(&nats.urls[0], "one", 1).await;
    let (_two, _n2, tree2, e2) = node(&nats.urls[0], "two", 1).await;
    let (h1, h2) = (e1.http.unwrap(), e2.http.unwrap());
    let (status, id, _) = post(h1, None, initialize()).await;
    assert_eq!(status, 200);
    let id = id.expect("a session id");
    assert!(id.starts_with("one."), "the id names its node: {id}");
    let (status, _, _) = post(
        h2,
        Some(&id),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(status, 202, "through node two");
    // A call, a subscription and the session's stream, all through node two.
    let (status, _, answer) = post(
        h2,
        Some(&id),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "first", "arguments": {}}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["result"]["content"][0]["text"], "ok", "{answer}");
    let (_, _, answer) = post(
        h2,
        Some(&id),
        json!({"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe", "params": {"uri": uri(3)}}),
    )
    .await;
    assert_eq!(answer["result"], json!({}), "{answer}");
    let mut stream = reqwest::Client::new()
        .get(format!("http://{h2}/mcp"))
        .header("Accept", "text/event-stream")
        .header("Mcp-Session-Id", &id)
        .header("MCP-Protocol-Version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    // Told on node one, where the session lives; seen on node two's stream.
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("notifications/resources/updated") {
        one.resource_updated(&uri(3));
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("the update on node two's stream within 10 s")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains(&uri(3)), "{seen}");
    drop(stream);
    // Ended through node two: gone on node one too.
    let deleted = reqwest::Client::new()
        .delete(format!("http://{h2}/mcp"))
        .header("Mcp-Session-Id", &id)
        .header("MCP-Protocol-Version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let (status, _, answer) = post(
        h1,
        Some(&id),
        json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    // A session of a node that is not there: a 404, at once.
    let started = Instant::now();
    let (status, _, answer) = post(
        h2,
        Some("ghost.0123456789abcdef0123456789abcdef"),
        json!({"jsonrpc": "2.0", "id": 4, "method": "ping"}),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["error"]["code"], -32001);
    assert!(started.elapsed() < Duration::from_secs(5));
    for tree in [tree1, tree2] {
        tree.shutdown().await;
    }
}

/// A 2026-07-28 `tools/call` POSTed to `http`: its JSON-RPC answer.
async fn modern_call(http: SocketAddr, params: &serde_json::Value) -> serde_json::Value {
    let body =
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
    let reply = reqwest::Client::new()
        .post(format!("http://{http}/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", params["name"].as_str().unwrap_or_default())
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    answer_of(&reply.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbor_serve_nodes_shares_its_ports_and_serves_a_session_on_every_connection() {
    use serde_json::json;
    let mut command = Command::new(env!("CARGO_BIN_EXE_arbor"));
    command
        .args(["serve", "--nodes", "3"])
        .envs(support::FREE_PORTS);
    let nodes = support::Server::start(command, "arbor serve --nodes 3", |urls| {
        urls.iter().any(|u| u.starts_with("tcp://"))
    });
    let http: SocketAddr = nodes
        .url("http://", "/mcp")
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .parse()
        .unwrap();
    // Each request on a fresh connection: the kernel hands them to the
    // three nodes, and each serves the session wherever it lives.
    let (status, id, _) = post(http, None, initialize()).await;
    assert_eq!(status, 200, "{}", nodes.log());
    let id = id.unwrap();
    let owner = id.split('.').next().unwrap().to_string();
    assert!(["n1", "n2", "n3"].contains(&owner.as_str()), "{id}");
    let (status, _, _) = post(
        http,
        Some(&id),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(status, 202);
    for i in 1..=30 {
        let (status, _, answer) = post(
            http,
            Some(&id),
            json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "hi"}}}),
        )
        .await;
        assert_eq!(status, 200, "request {i}: {answer}");
        assert_eq!(answer["result"]["content"][0]["text"], "hi", "{answer}");
    }
    // Sessions opened on fresh connections land on more than one node.
    let mut owners = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let (_, id, _) = post(http, None, initialize()).await;
        owners.insert(id.unwrap().split('.').next().unwrap().to_string());
    }
    assert!(owners.len() > 1, "every session on one node: {owners:?}");
    // SIGTERM: the nodes stop, then their NATS server.
    let stopped = Command::new("kill")
        .arg(nodes.pid().to_string())
        .status()
        .unwrap();
    assert!(stopped.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !nodes.printed("stopped: shutdown") {
        assert!(Instant::now() < deadline, "{}", nodes.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}
