//! arbor's client against arbor's server on every transport, in both eras:
//! the same calls, input rounds and notifications everywhere; a server
//! that goes away fails what is in flight and is redialled when it is back.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use arbor_mcp::client::{Client, ClientError, ElicitModes, Reconnect, VersionChoice};
use arbor_mcp::input::InputRequired;
use arbor_mcp::model::{ElicitAction, ElicitResult};
use arbor_mcp::{CallToolResult, McpServer, ProtocolVersion, ServerBuilder, Tool, ToolError};
use arbor_transports::client::{
    connector_for, tcp, HttpConnector, LegacySseConnector, WsConnector,
};
use arbor_transports::{start, TransportConfig};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, JsonSchema)]
struct Echo {
    text: String,
}

#[derive(Deserialize, JsonSchema)]
struct Wait {
    ms: u64,
}

fn server() -> McpServer {
    ServerBuilder::new("client-test", "1")
        .tool(Tool::new("echo").description("Echoes"), |a: Echo, _ctx| async move {
            Ok(CallToolResult::text(a.text))
        })
        .tool(Tool::new("wait").description("Waits"), |a: Wait, ctx| async move {
            for i in 0..4u32 {
                tokio::time::sleep(Duration::from_millis(a.ms / 4)).await;
                ctx.progress(f64::from(i + 1), Some(4.0), None);
            }
            Ok(CallToolResult::text("waited"))
        })
        .tool(Tool::new("ask").description("Asks the user"), |(), ctx| async move {
            match ctx.input::<ElicitResult>("name") {
                None => Err(ToolError::input_required(InputRequired::new().elicit(
                    "name",
                    "Your name?",
                    json!({"type": "object", "properties": {"name": {"type": "string", "default": "Ada"}}}),
                ))),
                Some(answer) => {
                    let answer = answer.map_err(|e| ToolError::new(e.to_string()))?;
                    let name = answer.content.and_then(|c| c.get("name").cloned());
                    Ok(CallToolResult::text(format!("hello {}", name.unwrap_or_default())))
                }
            }
        })
        .build()
        .unwrap()
}

async fn connect(connector: impl arbor_mcp::client::Connector, version: VersionChoice) -> Client {
    Client::builder()
        .version(version)
        .request_timeout(Duration::from_secs(10))
        // The handler fills in nothing: the schema's default answers.
        .elicitation(ElicitModes::Form, |_| async {
            Ok(ElicitResult {
                action: ElicitAction::Accept,
                content: None,
            })
        })
        .connect(connector)
        .await
        .unwrap()
}

async fn exercise(client: &Client, what: &str) {
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 3, "{what}");
    let echoed = client
        .call_tool("echo", json!({"text": "hi"}))
        .await
        .unwrap();
    assert_eq!(echoed.content[0].as_text(), Some("hi"), "{what}");
    let asked = client.call_tool("ask", json!({})).await;
    if client.protocol_version() >= Some(ProtocolVersion::V2025_06_18) {
        assert_eq!(
            asked.unwrap().content[0].as_text(),
            Some("hello \"Ada\""),
            "{what}"
        );
    } else {
        // Elicitation came with 2025-06-18: an older session cannot have it.
        let refused = asked.unwrap_err();
        let data = refused
            .server_error()
            .and_then(|e| e.data.clone())
            .unwrap_or_default();
        assert_eq!(
            data["requiredCapabilities"],
            json!({"elicitation": {}}),
            "{what}"
        );
    }
    // Concurrent calls on one connection each get their own answer.
    let calls = (0..20).map(|i| {
        let client = client.clone();
        async move {
            client
                .call_tool("echo", json!({"text": format!("n{i}")}))
                .await
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    for (i, answer) in answers.into_iter().enumerate() {
        assert_eq!(
            answer.unwrap().content[0].as_text(),
            Some(format!("n{i}").as_str()),
            "{what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_in_both_eras() {
    let (tree, endpoints) = start(server(), TransportConfig::default()).await.unwrap();
    let http = format!("http://{}/mcp", endpoints.http.unwrap());
    let ws = format!("ws://{}/mcp", endpoints.ws.unwrap());
    let tcp_addr = endpoints.tcp.unwrap().to_string();
    let handshake = VersionChoice::Pinned(ProtocolVersion::V2025_11_25);
    for (version, expected) in [
        (VersionChoice::Auto, ProtocolVersion::V2026_07_28),
        (handshake, ProtocolVersion::V2025_11_25),
    ] {
        let c = connect(HttpConnector::new(&http), version).await;
        assert_eq!(c.protocol_version(), Some(expected), "http");
        exercise(&c, &format!("http {expected}")).await;
        c.close().await;
        let c = connect(WsConnector::new(&ws), version).await;
        assert_eq!(c.protocol_version(), Some(expected), "ws");
        exercise(&c, &format!("ws {expected}")).await;
        c.close().await;
        let c = connect(tcp(tcp_addr.clone()), version).await;
        assert_eq!(c.protocol_version(), Some(expected), "tcp");
        exercise(&c, &format!("tcp {expected}")).await;
        c.close().await;
    }
    // The legacy transport speaks the handshake era only.
    let sse = format!("http://{}/sse", endpoints.http.unwrap());
    let legacy = VersionChoice::Pinned(ProtocolVersion::V2024_11_05);
    let c = connect(LegacySseConnector::new(&sse), legacy).await;
    exercise(&c, "legacy sse").await;
    c.close().await;
    // A target as a person types it.
    let c = connect(connector_for(&http).unwrap(), VersionChoice::Auto).await;
    assert_eq!(
        c.call_tool("echo", json!({"text": "x"}))
            .await
            .unwrap()
            .content[0]
            .as_text(),
        Some("x")
    );
    c.close().await;
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_server_fails_what_was_in_flight_and_is_redialled() {
    for transport in ["tcp", "ws", "http", "legacy sse"] {
        let (tree, endpoints) = start(server(), TransportConfig::default()).await.unwrap();
        let version = match transport {
            "legacy sse" => ProtocolVersion::V2024_11_05,
            _ => ProtocolVersion::V2025_11_25,
        };
        let connector: Box<dyn arbor_mcp::client::Connector> = match transport {
            "tcp" => Box::new(tcp(endpoints.tcp.unwrap().to_string())),
            "ws" => Box::new(WsConnector::new(format!(
                "ws://{}/mcp",
                endpoints.ws.unwrap()
            ))),
            "http" => Box::new(HttpConnector::new(format!(
                "http://{}/mcp",
                endpoints.http.unwrap()
            ))),
            _ => Box::new(LegacySseConnector::new(format!(
                "http://{}/sse",
                endpoints.http.unwrap()
            ))),
        };
        let client = Client::builder()
            .version(VersionChoice::Pinned(version))
            .reconnect(Reconnect {
                enabled: true,
                initial: Duration::from_millis(20),
                max: Duration::from_millis(200),
            })
            .connect(connector)
            .await
            .unwrap();
        let in_flight = {
            let client = client.clone();
            tokio::spawn(async move { client.call_tool("wait", json!({"ms": 10_000})).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A crash, not a drain: the whole tree is killed.
        tree.process().kill();
        let outcome = tokio::time::timeout(Duration::from_secs(5), in_flight).await;
        let outcome = outcome.expect("the in-flight call hung").unwrap();
        assert!(outcome.is_err(), "{transport}: {outcome:?}");
        // Back on the same ports: the client finds it again.
        let mut config = TransportConfig::default();
        config.tcp.as_mut().unwrap().addr = endpoints.tcp.unwrap();
        config.ws.as_mut().unwrap().addr = endpoints.ws.unwrap();
        config.http.as_mut().unwrap().addr = endpoints.http.unwrap();
        let mut restarted = None;
        for _ in 0..100 {
            // The killed listeners' sockets close as their tasks end.
            match start(server(), config.clone()).await {
                Ok((tree, _)) => {
                    restarted = Some(tree);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        let tree = restarted.expect("the ports never came free");
        let mut answered = None;
        for _ in 0..100 {
            match client.call_tool("echo", json!({"text": "back"})).await {
                Ok(answer) => {
                    answered = Some(answer);
                    break;
                }
                Err(
                    ClientError::Disconnected(_)
                    | ClientError::Transport(_)
                    | ClientError::Http { .. },
                ) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(other) => panic!("{transport}: {other:?}"),
            }
        }
        let answered = answered.unwrap_or_else(|| panic!("{transport}: never reconnected"));
        assert_eq!(answered.content[0].as_text(), Some("back"));
        client.close().await;
        tree.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervised_client_killed_is_started_again() {
    use arbor_supervision::{Strategy, Supervisor};
    let (tree, endpoints) = start(server(), TransportConfig::default()).await.unwrap();
    let url = format!("http://{}/mcp", endpoints.http.unwrap());
    let (spec, slot) = arbor_transports::client::supervised_client(
        "client",
        arbor_mcp::client::ClientConfig::default(),
        move || HttpConnector::new(url.clone()),
    );
    let root = Supervisor::new(Strategy::OneForOne)
        .child(spec)
        .start()
        .await
        .unwrap();
    let first = slot
        .wait(Duration::from_secs(5))
        .await
        .expect("the client starts");
    let echoed = first
        .call_tool("echo", json!({"text": "one"}))
        .await
        .unwrap();
    assert_eq!(echoed.content[0].as_text(), Some("one"));
    // Chaos: the client process is killed; its supervisor starts another.
    let in_flight = {
        let first = first.clone();
        tokio::spawn(async move { first.call_tool("wait", json!({"ms": 1_500})).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    first.process().kill();
    let failed = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.unwrap_err(), ClientError::Stopped);
    let mut second = None;
    for _ in 0..200 {
        match slot.current() {
            Some(c) if c.process().pid() != first.process().pid() => {
                second = Some(c);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let second = second.expect("a new client was started");
    let echoed = second
        .call_tool("echo", json!({"text": "two"}))
        .await
        .unwrap();
    assert_eq!(echoed.content[0].as_text(), Some("two"));
    root.shutdown().await;
    tree.shutdown().await;
}

/// What the server's HTTP transport holds of `what` now.
async fn http_holds(tree: &arbor_supervision::SupervisorRef, what: &str) -> usize {
    arbor_transports::held(tree)
        .await
        .unwrap()
        .into_iter()
        .find(|h| h.transport == "http" && h.what == what)
        .map_or(0, |h| h.active)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_client_ends_the_requests_it_still_streams() {
    let config = TransportConfig {
        http: Some(arbor_transports::http::HttpConfig::default()),
        ..TransportConfig::none()
    };
    let (tree, endpoints) = start(server(), config).await.unwrap();
    let url = format!("http://{}/mcp", endpoints.http.unwrap());
    let client = connect(
        HttpConnector::new(url),
        VersionChoice::Pinned(ProtocolVersion::V2026_07_28),
    )
    .await;
    // A listen stream the caller still holds when it closes the client.
    let listen = client
        .listen(arbor_mcp::model::ListenFilter::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while http_holds(&tree, "requests").await != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listen never ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while http_holds(&tree, "requests").await != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listen outlived its client"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(listen);
    tree.shutdown().await;
}
