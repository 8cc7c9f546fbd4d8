//! The 2026-07-28 HTTP header checks (`transports/src/http/headers.rs`) on
//! arbitrary headers and bodies.
//!
//! Input: header lines, a NUL byte, then the JSON body. Each line (split at
//! `\n`) is `name:value`; lines that are not a valid header (which hyper
//! would have refused before the checks) are dropped, repeats are kept.
//! Without a NUL the whole input is headers and the body is a `tools/call`
//! of `regional` that names every parameter header.
#![no_main]

use std::sync::LazyLock;

use arbor_mcp::jsonrpc::{code, decode, Incoming, Limits, Message, Request};
use arbor_mcp::session::envelope_version;
use arbor_mcp::{CallToolResult, McpServer, ServerBuilder, Tool};
use arbor_transports::http::fuzz_header_checks;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

/// A server whose tools declare `x-mcp-header` parameters of every kind
/// allowed: string, integer, boolean, nested.
static SERVER: LazyLock<McpServer> = LazyLock::new(|| {
    let tool = |builder: ServerBuilder, name: &str, schema: Value| {
        builder.tool_with_schema(
            Tool::new(name).description("fuzz").input_schema(schema),
            |_args, _ctx| async move { Ok(CallToolResult::text("")) },
        )
    };
    let builder = ServerBuilder::new("fuzz", "0");
    let builder = tool(
        builder,
        "regional",
        json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "count": {"type": "integer", "x-mcp-header": "Count"},
            "dry": {"type": "boolean", "x-mcp-header": "Dry-Run"},
            "opts": {"type": "object", "properties": {
                "zone": {"type": "string", "x-mcp-header": "Zone"}}}}}),
    );
    let builder = tool(builder, "plain", json!({"type": "object"}));
    match builder.build() {
        Ok(server) => server,
        Err(e) => panic!("the fuzz server does not build: {e}"),
    }
});

const DEFAULT_BODY: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"regional","arguments":{"region":"eu","count":42,"dry":true,"opts":{"zone":"a"}},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, DEFAULT_BODY),
    };
    let headers = header_map(head);
    let Ok(Incoming::Single(Message::Request(request))) = decode(body, &Limits::default(), false)
    else {
        return;
    };
    // The version comes from the envelope, as the transport takes it; a
    // request without one is refused before the checks, but the checks do
    // not care where the version comes from, so they get a fixed one.
    let version = envelope_version(request.params.as_ref())
        .unwrap_or("2026-07-28")
        .to_string();
    let first = fuzz_header_checks(&headers, &request, &version, &SERVER);
    // Deterministic.
    assert_eq!(
        first,
        fuzz_header_checks(&headers, &request, &version, &SERVER)
    );
    match first {
        Ok(()) => accepted(&headers, &request, &version),
        Err(error) => {
            assert_eq!(error.code, code::HEADER_MISMATCH, "{error:?}");
            let named = error.data.as_ref().and_then(|d| d["header"].as_str());
            assert!(named.is_some(), "a mismatch names no header: {error:?}");
        }
    }
});

/// Accepted headers carry the protocol version and the method exactly once,
/// equal to the body's (up to optional whitespace).
fn accepted(headers: &HeaderMap, request: &Request, version: &str) {
    for (name, body) in [
        ("mcp-protocol-version", version),
        ("mcp-method", request.method.as_str()),
    ] {
        let values: Vec<_> = headers.get_all(name).iter().collect();
        assert_eq!(values.len(), 1, "{name} accepted {} times", values.len());
        let value = values[0].to_str().ok().map(|v| v.trim_matches([' ', '\t']));
        assert_eq!(value, Some(body), "{name} accepted though it differs");
    }
}

fn header_map(head: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(&line[colon + 1..]),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    headers
}
