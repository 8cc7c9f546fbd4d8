//! Resource subscriptions in both eras, their limit, and their cleanup.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use arbor_mcp::session::{start_session, RateChecks, SessionMsg};
use arbor_mcp::ServerConfig;
use arbor_runtime::ExitReason;
use arbor_supervision::{kill_path, DynamicSupervisor};
use common::*;
use serde_json::json;

const HELLO: &str = "test://static/hello";

/// Waits (polling, up to 1 s) until nobody subscribes to `HELLO`; the
/// assertions after it say whether that happened.
async fn until_unsubscribed(server: &arbor_mcp::McpServer) {
    for _ in 0..200 {
        if server.subscriber_count(HELLO) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_subscribers_get_updates_until_they_unsubscribe() {
    let server = server();
    let mut c = Client::connect(server.clone()).await;
    c.initialize("2025-11-25").await;
    assert_eq!(
        c.call(1, "resources/subscribe", json!({"uri": HELLO}))
            .await["result"],
        json!({})
    );
    // Subscribing twice is one subscription.
    c.call(2, "resources/subscribe", json!({"uri": HELLO}))
        .await;
    assert_eq!(server.subscriber_count(HELLO), 1);
    assert_eq!(server.resource_updated(HELLO), 1);
    let n = c.recv().await;
    assert_eq!(n["method"], "notifications/resources/updated");
    assert_eq!(n["params"]["uri"], HELLO);

    let missing = c
        .call(3, "resources/subscribe", json!({"uri": "test://nope"}))
        .await;
    assert_eq!(missing["error"]["code"], -32002);

    c.call(4, "resources/unsubscribe", json!({"uri": HELLO}))
        .await;
    until_unsubscribed(&server).await;
    assert_eq!(server.resource_updated(HELLO), 0);
    assert!(c.silent_for(100).await);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_limit_holds_at_its_edge() {
    let server = server_with(ServerConfig {
        max_subscriptions: 2,
        ..ServerConfig::default()
    });
    let mut c = Client::connect(server).await;
    c.initialize("2025-11-25").await;
    assert!(c
        .call(1, "resources/subscribe", json!({"uri": HELLO}))
        .await["result"]
        .is_object());
    assert!(c
        .call(
            2,
            "resources/subscribe",
            json!({"uri": "test://users/1/profile"})
        )
        .await["result"]
        .is_object());
    let third = c
        .call(
            3,
            "resources/subscribe",
            json!({"uri": "test://users/2/profile"}),
        )
        .await;
    assert_eq!(third["error"]["code"], -32602);
    assert_eq!(third["error"]["data"]["limit"], "max_subscriptions");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_listen_acknowledges_first_tags_updates_and_ends_with_a_result() {
    let server = server();
    let mut c = Client::connect(server.clone()).await;
    c.send(json!({"jsonrpc": "2.0", "id": 9, "method": "subscriptions/listen", "params": modern(json!({
        "notifications": {"resourceSubscriptions": [HELLO, "test://nope"], "toolsListChanged": true}
    }))}))
    .await;
    let ack = c.recv().await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        9
    );
    assert_eq!(
        ack["params"]["notifications"]["resourceSubscriptions"],
        json!([HELLO]),
        "only what is honoured"
    );
    assert_eq!(ack["params"]["notifications"]["toolsListChanged"], true);
    assert!(
        ack["params"]["notifications"]
            .get("promptsListChanged")
            .is_none(),
        "not asked for"
    );

    assert_eq!(server.resource_updated(HELLO), 1);
    let n = c.recv().await;
    assert_eq!(n["method"], "notifications/resources/updated");
    assert_eq!(
        n["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        9
    );

    // The end of input ends the listen with its result.
    c.write_shutdown().await;
    let end = c.recv().await;
    assert_eq!(end["id"], 9);
    assert_eq!(end["result"]["resultType"], "complete");
    assert_eq!(
        end["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        9
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_listen_stops_its_updates() {
    let server = server();
    let mut c = Client::connect(server.clone()).await;
    c.send(json!({"jsonrpc": "2.0", "id": "l", "method": "subscriptions/listen", "params": modern(json!({
        "notifications": {"resourceSubscriptions": [HELLO]}
    }))}))
    .await;
    c.recv().await;
    c.send(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "l"}})).await;
    until_unsubscribed(&server).await;
    assert_eq!(server.resource_updated(HELLO), 0);
    assert!(c.silent_for(100).await);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_cleaned_up_when_a_supervised_session_is_killed_by_a_kill_hook() {
    let server = server();
    let (out_tx, mut out_rx) = arbor_mcp::outbox::outbox(&Default::default());
    let template = {
        let server = server.clone();
        DynamicSupervisor::temporary("session", move |out: arbor_mcp::outbox::Outbox| {
            start_session(server.clone(), out, RateChecks::BySession(None))
        })
    };
    let sessions = template.start().await.unwrap();
    // The typed handle of the session comes back from start_child.
    let actor = sessions
        .start_child(out_tx)
        .await
        .unwrap()
        .running()
        .unwrap();
    let session = actor.process();
    let send = |v: serde_json::Value| SessionMsg::Incoming(v.to_string().into_bytes().into());
    actor.try_send(send(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})))
        .unwrap();
    actor
        .try_send(send(
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        ))
        .unwrap();
    actor.try_send(send(json!({"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe", "params": {"uri": HELLO}})))
        .unwrap();
    while out_rx.recv_frame().await.unwrap().related != Some(arbor_mcp::jsonrpc::Id::Number(2)) {}
    assert_eq!(server.subscriber_count(HELLO), 1);

    let killed = kill_path(sessions.supervisor(), "session-0").await.unwrap();
    assert_eq!(killed.pid, session.pid());
    assert_eq!(session.wait().await, ExitReason::Killed);
    until_unsubscribed(&server).await;
    assert_eq!(
        server.subscriber_count(HELLO),
        0,
        "the subscription ended with its session"
    );
    assert_eq!(server.resource_updated(HELLO), 0);
    sessions.supervisor().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acknowledgement_comes_first_even_while_updates_stream() {
    let server = server();
    let pump = {
        let server = server.clone();
        tokio::spawn(async move {
            loop {
                server.resource_updated(HELLO);
                tokio::task::yield_now().await;
            }
        })
    };
    for i in 0..40 {
        let mut c = Client::connect(server.clone()).await;
        c.send(json!({"jsonrpc": "2.0", "id": i, "method": "subscriptions/listen", "params": modern(json!({
            "notifications": {"resourceSubscriptions": [HELLO]}
        }))}))
        .await;
        let first = c.recv().await;
        assert_eq!(
            first["method"], "notifications/subscriptions/acknowledged",
            "listen {i}: {first}"
        );
        c.close().await;
    }
    pump.abort();
}
