//! Malformed params, read by the typed params of each method: `-32602`
//! naming the field at fault, in both eras.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use serde_json::{json, Value};

async fn refused(c: &mut Client, id: i64, method: &str, params: Value) -> Value {
    let r = c.call(id, method, params).await;
    assert_eq!(r["error"]["code"], -32602, "{method}: {r}");
    r["error"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_malformed_field_is_named() {
    let mut c = Client::connect(server()).await;
    c.initialize("2025-11-25").await;
    let e = refused(&mut c, 1, "tools/call", json!({"arguments": {}})).await;
    assert_eq!(e["data"]["field"], "name");
    assert_eq!(e["message"], "missing name");
    let e = refused(&mut c, 2, "tools/call", json!({"name": 5})).await;
    assert_eq!(e["data"]["field"], "name");
    let e = refused(
        &mut c,
        3,
        "tools/call",
        json!({"name": "add", "arguments": [1]}),
    )
    .await;
    assert_eq!(e["data"]["field"], "arguments");
    let e = refused(&mut c, 4, "resources/read", json!({})).await;
    assert_eq!(e["data"]["field"], "uri");
    let e = refused(
        &mut c,
        5,
        "prompts/get",
        json!({"name": "p", "arguments": {"x": 1}}),
    )
    .await;
    assert_eq!(e["data"]["field"], "arguments.x");
    let e = refused(&mut c, 6, "tools/list", json!({"cursor": 7})).await;
    assert_eq!(e["data"]["field"], "cursor");
    let e = refused(
        &mut c,
        7,
        "completion/complete",
        json!({"ref": {"type": "ref/prompt", "name": "p"}, "argument": {"name": "a"}}),
    )
    .await;
    assert_eq!(e["data"]["field"], "argument.value");
    let e = refused(&mut c, 8, "resources/subscribe", json!({"uri": false})).await;
    assert_eq!(e["data"]["field"], "uri");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_fields_are_named_in_2026_07_28() {
    let mut c = Client::connect(server()).await;
    let e = refused(&mut c, 1, "tools/call", modern(json!({"name": ["add"]}))).await;
    assert_eq!(e["data"]["field"], "name");
    let e = refused(
        &mut c,
        2,
        "completion/complete",
        modern(json!({"ref": {"type": "ref/other"}, "argument": {"name": "a", "value": ""}})),
    )
    .await;
    assert_eq!(e["data"]["field"], "ref.type");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_names_a_missing_version() {
    let mut c = Client::connect(server()).await;
    let r = c
        .call(
            1,
            "initialize",
            json!({"capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        )
        .await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert_eq!(r["error"]["data"]["field"], "protocolVersion");
    c.close().await;
}

/// The 2026-07-28 envelope is read whole: a malformed client identity or
/// progress token is named, as a malformed log level is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_envelope_field_is_named() {
    let mut c = Client::connect(server()).await;
    let mut params = modern(json!({}));
    params["_meta"]["io.modelcontextprotocol/clientInfo"] = json!({"name": "no version"});
    let e = refused(&mut c, 1, "tools/list", params).await;
    assert_eq!(
        e["data"]["field"],
        "io.modelcontextprotocol/clientInfo.version"
    );
    let mut params = modern(json!({}));
    params["_meta"]["progressToken"] = json!(true);
    let e = refused(&mut c, 2, "tools/list", params).await;
    assert_eq!(e["data"]["field"], "progressToken");
    let mut params = modern(json!({}));
    params["_meta"]["io.modelcontextprotocol/logLevel"] = json!("loud");
    let e = refused(&mut c, 3, "tools/list", params).await;
    assert!(e["data"]["allowed"].is_array(), "{e}");
    c.close().await;
}

/// A cursor opens only the list that issued it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_of_one_list_opens_no_other() {
    let mut c = Client::connect(server_with(arbor_mcp::ServerConfig {
        page_size: 1,
        ..arbor_mcp::ServerConfig::default()
    }))
    .await;
    c.initialize("2025-11-25").await;
    let first = c.call(1, "tools/list", json!({})).await;
    let cursor = first["result"]["nextCursor"].as_str().unwrap().to_string();
    let next = c.call(2, "tools/list", json!({"cursor": cursor})).await;
    assert_eq!(
        next["result"]["tools"].as_array().unwrap().len(),
        1,
        "{next}"
    );
    let e = refused(&mut c, 3, "prompts/list", json!({"cursor": cursor})).await;
    assert_eq!(e["message"], "invalid cursor: issued for another list");
    c.close().await;
}
