//! The 2026-07-28 era end to end over an in-memory line transport.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_discover_describes_the_server_with_cache_hints() {
    let mut c = Client::connect(server()).await;
    let r = c.call(1, "server/discover", json!({"_meta": meta()})).await;
    let res = &r["result"];
    assert_eq!(res["resultType"], "complete");
    assert_eq!(res["supportedVersions"][0], "2026-07-28");
    assert!(res["supportedVersions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "2025-11-25"));
    assert!(res["capabilities"]["tools"].is_object());
    assert!(res["capabilities"]["logging"].is_object());
    // Nothing may be reused unless the server says so.
    assert_eq!(res["ttlMs"], 0);
    assert_eq!(res["cacheScope"], "private");
    assert_eq!(
        res["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "test-server"
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_served_on_its_own_envelope() {
    let mut c = Client::connect(server()).await;
    let list = c.call(1, "tools/list", modern(json!({}))).await;
    assert_eq!(list["result"]["resultType"], "complete");
    assert!(list["result"]["ttlMs"].is_u64());
    assert_eq!(list["result"]["tools"].as_array().unwrap().len(), 5);
    let call = c
        .call(
            2,
            "tools/call",
            modern(json!({"name": "add", "arguments": {"a": 40, "b": 2}})),
        )
        .await;
    assert_eq!(call["result"]["resultType"], "complete");
    assert_eq!(call["result"]["content"][0]["text"], "42");
    assert!(
        call["result"].get("ttlMs").is_none(),
        "tools/call is not cacheable"
    );
    let read = c
        .call(
            3,
            "resources/read",
            modern(json!({"uri": "test://static/hello"})),
        )
        .await;
    assert_eq!(read["result"]["ttlMs"], 0);
    assert_eq!(read["result"]["cacheScope"], "private");
    c.close().await;
}

/// Caching hints are the server's per list, per resource and per template;
/// a handshake-era result carries none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_hints_are_declared_per_list_and_per_resource() {
    use arbor_mcp::{CacheHint, ListCaching, ServerConfig};
    use std::time::Duration;
    let config = ServerConfig {
        list_caching: ListCaching {
            tools: CacheHint::public(Duration::from_secs(30)),
            ..ListCaching::default()
        },
        ..ServerConfig::default()
    };
    let server = common::builder_with(config)
        .cache_resource(
            "test://static/hello",
            CacheHint::public(Duration::from_secs(60)),
        )
        .cache_resource(
            "test://users/{id}/profile",
            CacheHint::private(Duration::from_millis(1500)),
        )
        .build()
        .unwrap();
    let mut c = Client::connect(server).await;
    let tools = c.call(1, "tools/list", modern(json!({}))).await;
    assert_eq!(tools["result"]["ttlMs"], 30_000);
    assert_eq!(tools["result"]["cacheScope"], "public");
    let prompts = c.call(2, "prompts/list", modern(json!({}))).await;
    assert_eq!(prompts["result"]["ttlMs"], 0, "lists keep the default");
    let hello = c
        .call(
            3,
            "resources/read",
            modern(json!({"uri": "test://static/hello"})),
        )
        .await;
    assert_eq!(hello["result"]["ttlMs"], 60_000);
    assert_eq!(hello["result"]["cacheScope"], "public");
    let profile = c
        .call(
            4,
            "resources/read",
            modern(json!({"uri": "test://users/7/profile"})),
        )
        .await;
    assert_eq!(profile["result"]["ttlMs"], 1500);
    assert_eq!(profile["result"]["cacheScope"], "private");
    c.close().await;

    let server = common::builder_with(ServerConfig::default())
        .cache_resource(
            "test://static/hello",
            CacheHint::public(Duration::from_secs(60)),
        )
        .build()
        .unwrap();
    let mut old = Client::connect(server).await;
    old.initialize("2025-11-25").await;
    let hello = old
        .call(5, "resources/read", json!({"uri": "test://static/hello"}))
        .await;
    assert!(hello["result"]["contents"].is_array(), "{hello}");
    assert!(hello["result"].get("ttlMs").is_none(), "{hello}");
    old.close().await;

    let unknown = common::builder_with(ServerConfig::default())
        .cache_resource("test://nowhere", CacheHint::NONE)
        .build();
    assert!(
        matches!(unknown, Err(arbor_mcp::BuildError::UnknownResource(ref u)) if u == "test://nowhere"),
        "{unknown:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_violations_get_their_own_errors() {
    let mut c = Client::connect(server()).await;
    c.call(1, "server/discover", json!({"_meta": meta()})).await;

    let no_meta = c.call(2, "tools/list", json!({})).await;
    assert_eq!(no_meta["error"]["code"], -32602);
    assert_eq!(no_meta["error"]["data"]["field"], "_meta");

    let mut no_caps = meta();
    no_caps
        .as_object_mut()
        .unwrap()
        .remove("io.modelcontextprotocol/clientCapabilities");
    let r = c.call(3, "tools/list", json!({"_meta": no_caps})).await;
    assert_eq!(r["error"]["code"], -32602);

    let mut old = meta();
    old["io.modelcontextprotocol/protocolVersion"] = json!("2025-11-25");
    let r = c.call(4, "tools/list", json!({"_meta": old})).await;
    assert_eq!(r["error"]["code"], -32022);
    assert_eq!(r["error"]["data"]["requested"], "2025-11-25");
    assert_eq!(r["error"]["data"]["supported"], json!(["2026-07-28"]));

    let mut loud = meta();
    loud["io.modelcontextprotocol/logLevel"] = json!("loud");
    let r = c.call(5, "tools/list", json!({"_meta": loud})).await;
    assert_eq!(r["error"]["code"], -32602);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_methods_are_not_found_in_the_modern_era() {
    let mut c = Client::connect(server()).await;
    for (i, method) in [
        "ping",
        "initialize",
        "logging/setLevel",
        "resources/subscribe",
    ]
    .iter()
    .enumerate()
    {
        let r = c.call(i as i64, method, modern(json!({}))).await;
        assert_eq!(r["error"]["code"], -32601, "{method}");
    }
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_era_is_locked_per_connection() {
    let mut c = Client::connect(server()).await;
    c.call(1, "tools/list", modern(json!({}))).await;
    // A handshake on a modern connection is refused.
    let r = c
        .call(2, "initialize", json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}))
        .await;
    assert_eq!(
        r["error"]["code"], -32602,
        "initialize without the envelope is malformed here"
    );
    c.close().await;

    let mut c = Client::connect(server()).await;
    c.initialize("2025-11-25").await;
    // A modern request on a handshake connection is served as handshake.
    let r = c.call(3, "tools/list", modern(json!({}))).await;
    assert!(r["result"].get("resultType").is_none());
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_handlers_serve_both_eras_with_era_specific_errors() {
    let mut c = Client::connect(server()).await;
    let missing = c
        .call(1, "resources/read", modern(json!({"uri": "test://nope"})))
        .await;
    assert_eq!(
        missing["error"]["code"], -32602,
        "2026-07-28: resource not found is invalid params"
    );
    assert_eq!(missing["error"]["data"]["uri"], "test://nope");
    let prompt = c
        .call(
            2,
            "prompts/get",
            modern(json!({"name": "greet", "arguments": {"name": "Ada"}})),
        )
        .await;
    assert_eq!(
        prompt["result"]["messages"][0]["content"]["text"],
        "Hello, Ada!"
    );
    assert_eq!(prompt["result"]["resultType"], "complete");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_go_only_to_requests_that_ask_for_them_at_their_level() {
    let mut c = Client::connect(server()).await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": modern(json!({"name": "log", "arguments": {"ms": 0}}))}))
        .await;
    let first = c.recv().await;
    assert_eq!(first["id"], 1, "no log without logLevel: {first}");
    let mut params = modern(json!({"name": "log", "arguments": {"ms": 0}}));
    params["_meta"]["io.modelcontextprotocol/logLevel"] = json!("info");
    c.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params}))
        .await;
    let log = c.recv().await;
    assert_eq!(log["method"], "notifications/message");
    assert_eq!(log["params"]["level"], "warning");
    assert_eq!(c.recv().await["id"], 2, "the debug entry is below info");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_may_discover_then_choose_the_handshake() {
    let mut c = Client::connect(server()).await;
    c.call(1, "server/discover", json!({"_meta": meta()})).await;
    let init = c.initialize("2025-11-25").await;
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    let list = c.call(2, "tools/list", json!({})).await;
    assert!(
        list["result"].get("resultType").is_none(),
        "served as handshake"
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_with_a_modern_envelope_is_not_found() {
    let mut c = Client::connect(server()).await;
    let r = c
        .call(1, "initialize", modern(json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}})))
        .await;
    assert_eq!(r["error"]["code"], -32601);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_and_completion_in_the_modern_era() {
    let mut c = Client::connect(server()).await;
    let t = c
        .call(1, "resources/templates/list", modern(json!({})))
        .await;
    assert_eq!(t["result"]["resultType"], "complete");
    assert!(t["result"]["ttlMs"].is_u64());
    assert_eq!(
        t["result"]["resourceTemplates"][0]["uriTemplate"],
        "test://users/{id}/profile"
    );
    let done = c
        .call(2, "completion/complete", modern(json!({"ref": {"type": "ref/prompt", "name": "greet"}, "argument": {"name": "name", "value": "G"}})))
        .await;
    assert_eq!(done["result"]["completion"]["values"], json!(["Grace"]));
    assert_eq!(done["result"]["resultType"], "complete");
    c.close().await;
}
