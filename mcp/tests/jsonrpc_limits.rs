//! Malformed input and every input limit, at its edge.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use arbor_mcp::jsonrpc::{decode, Incoming, Limits, Message};
use arbor_mcp::ServerConfig;
use common::*;
use serde_json::json;

fn code_of(bytes: &[u8], limits: &Limits) -> Option<i64> {
    decode(bytes, limits, false).err().map(|r| r.error.code)
}

#[test]
fn malformed_messages_get_typed_errors() {
    let l = Limits::default();
    assert_eq!(code_of(b"{not json", &l), Some(-32700));
    assert_eq!(
        code_of(br#"{"jsonrpc":"1.0","id":1,"method":"x"}"#, &l),
        Some(-32600)
    );
    assert_eq!(code_of(br#"{"id":1,"method":"x"}"#, &l), Some(-32600));
    assert_eq!(
        code_of(br#"{"jsonrpc":"2.0","id":null,"method":"x"}"#, &l),
        Some(-32600)
    );
    assert_eq!(
        code_of(br#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#, &l),
        Some(-32600)
    );
    assert_eq!(
        code_of(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#, &l),
        Some(-32600)
    );
    assert_eq!(
        code_of(br#"{"jsonrpc":"2.0","id":1,"method":7}"#, &l),
        Some(-32600)
    );
    assert_eq!(
        code_of(
            br#"{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"m"}}"#,
            &l
        ),
        Some(-32600)
    );
    assert_eq!(
        code_of(br#"[{"jsonrpc":"2.0","id":1,"method":"x"}]"#, &l),
        Some(-32600)
    );
    assert_eq!(code_of(b"42", &l), Some(-32600));
    // The id is kept when it could be read, so the error can echo it.
    let r = decode(
        br#"{"jsonrpc":"2.0","id":"a","method":"x","params":"p"}"#,
        &l,
        false,
    )
    .unwrap_err();
    assert_eq!(r.id, Some("a".into()));
    // Well-formed messages of each kind.
    assert!(matches!(
        decode(br#"{"jsonrpc":"2.0","id":"a","method":"x"}"#, &l, false).unwrap(),
        Incoming::Single(Message::Request(_))
    ));
    assert!(matches!(
        decode(br#"{"jsonrpc":"2.0","method":"x"}"#, &l, false).unwrap(),
        Incoming::Single(Message::Notification(_))
    ));
    assert!(matches!(
        decode(br#"{"jsonrpc":"2.0","id":3,"result":{}}"#, &l, false).unwrap(),
        Incoming::Single(Message::Response(_))
    ));
}

#[test]
fn message_size_limit_at_the_edge() {
    let msg = br#"{"jsonrpc":"2.0","method":"x"}"#;
    let at = Limits {
        max_message_bytes: msg.len(),
        ..Limits::default()
    };
    assert!(decode(msg, &at, false).is_ok());
    let under = Limits {
        max_message_bytes: msg.len() - 1,
        ..Limits::default()
    };
    let err = decode(msg, &under, false).unwrap_err();
    assert_eq!(err.error.code, -32600);
    assert_eq!(
        err.error.data.as_ref().unwrap()["limit"],
        "max_message_bytes"
    );
}

#[test]
fn nesting_depth_limit_at_the_edge_and_no_stack_overflow() {
    let nested = |depth: usize| {
        format!(
            r#"{{"jsonrpc":"2.0","method":"x","params":{{"a":{}1{}}}}}"#,
            "[".repeat(depth - 2),
            "]".repeat(depth - 2)
        )
    };
    let limits = Limits {
        max_depth: 10,
        ..Limits::default()
    };
    assert!(decode(nested(10).as_bytes(), &limits, false).is_ok());
    let err = decode(nested(11).as_bytes(), &limits, false).unwrap_err();
    assert_eq!(err.error.data.as_ref().unwrap()["limit"], "max_depth");
    // A million levels: refused quickly, the stack untouched.
    let deep = "[".repeat(1_000_000);
    assert_eq!(code_of(deep.as_bytes(), &Limits::default()), Some(-32600));
    // Brackets inside strings do not count.
    let in_string = format!(r#"{{"jsonrpc":"2.0","method":"{}"}}"#, "[".repeat(500));
    assert!(decode(in_string.as_bytes(), &limits, false).is_ok());
}

#[test]
fn string_length_limit_at_the_edge() {
    let with = |n: usize| {
        format!(
            r#"{{"jsonrpc":"2.0","method":"x","params":{{"s":"{}"}}}}"#,
            "a".repeat(n)
        )
    };
    let limits = Limits {
        max_string_bytes: 100,
        ..Limits::default()
    };
    assert!(decode(with(100).as_bytes(), &limits, false).is_ok());
    let err = decode(with(101).as_bytes(), &limits, false).unwrap_err();
    assert_eq!(
        err.error.data.as_ref().unwrap()["limit"],
        "max_string_bytes"
    );
    // Escapes count as written and do not end the string.
    let escaped = format!(
        r#"{{"jsonrpc":"2.0","method":"x","params":{{"s":"{}"}}}}"#,
        "\\\"".repeat(60)
    );
    assert!(decode(escaped.as_bytes(), &limits, false).is_err());
}

#[test]
fn batch_length_limit_at_the_edge() {
    let batch =
        |n: usize| serde_json::to_vec(&vec![json!({"jsonrpc":"2.0","method":"x"}); n]).unwrap();
    let limits = Limits {
        max_batch_len: 3,
        ..Limits::default()
    };
    assert!(decode(&batch(3), &limits, true).is_ok());
    assert!(decode(&batch(4), &limits, true).is_err());
    assert!(decode(b"[]", &limits, true).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transport_refuses_an_oversized_line_and_keeps_serving() {
    let limits = Limits {
        max_message_bytes: 200,
        ..Limits::default()
    };
    let mut c = Client::connect(server_with(ServerConfig {
        limits,
        ..ServerConfig::default()
    }))
    .await;
    c.send_raw(&format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(300)
    ))
    .await;
    let r = c.recv().await;
    assert_eq!(r["error"]["code"], -32600);
    assert_eq!(r["error"]["data"]["limit"], "max_message_bytes");
    assert_eq!(r["id"], 1, "the id is read from the line's head: {r}");
    assert_eq!(c.call(2, "ping", json!({})).await["result"], json!({}));
    c.send_raw("{broken").await;
    assert_eq!(c.recv().await["error"]["code"], -32700);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_at_the_limit_passes_with_or_without_its_carriage_return() {
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let limits = Limits {
        max_message_bytes: ping.len(),
        ..Limits::default()
    };
    let mut c = Client::connect(server_with(ServerConfig {
        limits,
        ..ServerConfig::default()
    }))
    .await;
    c.send_raw(ping).await;
    let r = c.recv().await;
    assert_eq!(r["result"], json!({}), "{r}");
    c.send_raw(&format!("{ping}\r")).await;
    assert_eq!(c.recv().await["result"], json!({}));
    // One byte more is over, CR or not.
    c.send_raw(&format!("{ping} \r")).await;
    assert_eq!(
        c.recv().await["error"]["data"]["limit"],
        "max_message_bytes"
    );
    c.send_raw(&format!("{ping} ")).await;
    assert_eq!(
        c.recv().await["error"]["data"]["limit"],
        "max_message_bytes"
    );
    c.close().await;
}
