//! 2026-07-28 request metadata in HTTP headers (SEP-2243): the standard
//! `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers and the
//! tool-specific `Mcp-Param-*` headers must agree with the body, so that
//! intermediaries routing on them route what the server serves.

use arbor_mcp::jsonrpc::{code, ErrorObject, Request};
use arbor_mcp::McpServer;
use axum::http::HeaderMap;
use base64::Engine as _;
use serde_json::{json, Value};

/// The protocol version header.
pub(crate) const PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// The method header.
const METHOD: &str = "mcp-method";
/// The target header: a tool or prompt name, a resource URI, a task id.
const NAME: &str = "mcp-name";
/// The prefix of tool parameter headers.
const PARAM_PREFIX: &str = "mcp-param-";

fn mismatch(message: String, header: &str) -> ErrorObject {
    ErrorObject::new(code::HEADER_MISMATCH, message).with_data(json!({ "header": header }))
}

/// A header's value with optional whitespace trimmed (RFC 9110 §5.5), or
/// an error if it is not visible ASCII.
pub(crate) fn text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ErrorObject> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|v| Some(v.trim_matches([' ', '\t'])))
            .map_err(|_| mismatch(format!("{name} header has invalid characters"), name)),
    }
}

/// A header value as sent: `=?base64?…?=` is decoded (and must be valid
/// padded Base64 of UTF-8); anything else is taken literally.
fn decoded(value: &str, name: &str) -> Result<String, ErrorObject> {
    let Some(inner) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Ok(value.to_string());
    };
    base64::engine::general_purpose::STANDARD
        .decode(inner)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| mismatch(format!("{name} header is not valid Base64 UTF-8"), name))
}

/// Whether a header value stands for the body's value: equal text, or, for
/// a numeric parameter, the same integer (`42` and `42.0`).
fn agrees(header: &str, body: &str, numeric: bool) -> bool {
    header == body
        || numeric
            && matches!(
                (header.parse::<f64>(), body.parse::<f64>()),
                (Ok(a), Ok(b)) if a == b && a.is_finite()
            )
}

/// Checks one header against the body's value for it.
fn expect(headers: &HeaderMap, name: &str, body: &str) -> Result<(), ErrorObject> {
    expect_value(headers, name, body, false)
}

fn expect_value(
    headers: &HeaderMap,
    name: &str,
    body: &str,
    numeric: bool,
) -> Result<(), ErrorObject> {
    let Some(raw) = text(headers, name)? else {
        return Err(mismatch(
            format!("missing {name} header (body: {body:?})"),
            name,
        ));
    };
    let value = decoded(raw, name)?;
    if agrees(&value, body, numeric) {
        Ok(())
    } else {
        Err(mismatch(
            format!("{name} header value {value:?} does not match body value {body:?}"),
            name,
        ))
    }
}

/// Checks a 2026-07-28 request's headers against its body, whose envelope
/// names `version`.
///
/// # Errors
/// `-32020` (HeaderMismatch) naming the first header that disagrees.
pub(crate) fn check(
    headers: &HeaderMap,
    request: &Request,
    version: &str,
    server: &McpServer,
) -> Result<(), ErrorObject> {
    expect(headers, PROTOCOL_VERSION, version)?;
    expect(headers, METHOD, &request.method)?;
    let params = request.params.as_ref();
    let target = match request.method.as_str() {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    };
    if let Some(field) = target {
        if let Some(value) = params.and_then(|p| p.get(field)).and_then(Value::as_str) {
            expect(headers, NAME, value)?;
        }
    }
    if request.method == "tools/call" {
        let tool = params.and_then(|p| p.get("name")).and_then(Value::as_str);
        let arguments = params
            .and_then(|p| p.get("arguments"))
            .unwrap_or(&Value::Null);
        for param in tool
            .and_then(|t| server.tool_param_headers(t))
            .iter()
            .flat_map(|h| h.iter())
        {
            if let Some(value) = param.value_in(arguments) {
                let name = format!("{PARAM_PREFIX}{}", param.name.to_ascii_lowercase());
                expect_value(headers, &name, &value, true)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_values_are_decoded_strictly_and_partial_wrappers_are_literal() {
        assert_eq!(
            decoded("=?base64?SGVsbG8=?=", "x").ok(),
            Some("Hello".into())
        );
        assert!(
            decoded("=?base64?SGVsbG8?=", "x").is_err(),
            "missing padding"
        );
        assert!(decoded("=?base64?SGVs!!!bG8=?=", "x").is_err());
        assert_eq!(
            decoded("=?base64?SGVsbG8=", "x").ok(),
            Some("=?base64?SGVsbG8=".into())
        );
        assert_eq!(decoded("SGVsbG8=", "x").ok(), Some("SGVsbG8=".into()));
    }

    #[test]
    fn numbers_agree_numerically() {
        assert!(agrees("42", "42", true));
        assert!(agrees("42.0", "42", true));
        assert!(!agrees("1", "1.0", false), "names compare as text");
        assert!(!agrees("inf", "infinity", true));
        assert!(!agrees("TOOLS/LIST", "tools/list", false));
    }
}
