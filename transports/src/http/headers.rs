//! 2026-07-28 request metadata in HTTP headers (SEP-2243): the standard
//! `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers and the
//! tool-specific `Mcp-Param-*` headers must agree with the body, so that
//! intermediaries routing on them route what the server serves.

use arbor_mcp::jsonrpc::{code, ErrorObject, Request};
use arbor_mcp::{McpServer, Method};
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
/// an error if it is not visible ASCII or comes more than once (an
/// intermediary might read another copy than the one checked).
pub(crate) fn text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ErrorObject> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(mismatch(format!("{name} header repeated"), name));
    }
    value
        .to_str()
        .map(|v| Some(v.trim_matches([' ', '\t'])))
        .map_err(|_| mismatch(format!("{name} header has invalid characters"), name))
}

/// How a header's value is compared with the body's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// As sent: `MCP-Protocol-Version`, `Mcp-Method`.
    Plain,
    /// As sent or `=?base64?…?=`-wrapped: `Mcp-Name`, `Mcp-Param-*`.
    Text,
    /// A number parameter: as [`Form::Text`], then compared as a number.
    Number,
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

/// Whether a header value stands for the body's value: the same text, or,
/// for a number, the same number (`42` and `42.0`; integers compared
/// exactly, past the 2^53 that floats hold).
fn agrees(header: &str, body: &str, form: Form) -> bool {
    if header == body {
        return true;
    }
    if form != Form::Number {
        return false;
    }
    match (header.parse::<i128>(), body.parse::<i128>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => matches!(
            (header.parse::<f64>(), body.parse::<f64>()),
            (Ok(a), Ok(b)) if a == b && a.is_finite() && (a.fract() != 0.0 || a.abs() < 9.007_199_254_740_992e15)
        ),
    }
}

/// Checks one header against the body's value for it.
fn expect(headers: &HeaderMap, name: &str, body: &str, form: Form) -> Result<(), ErrorObject> {
    let Some(raw) = text(headers, name)? else {
        return Err(mismatch(
            format!("missing {name} header (body: {body:?})"),
            name,
        ));
    };
    let value = match form {
        Form::Plain => raw.to_string(),
        Form::Text | Form::Number => decoded(raw, name)?,
    };
    if agrees(&value, body, form) {
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
    expect(headers, PROTOCOL_VERSION, version, Form::Plain)?;
    expect(headers, METHOD, &request.method, Form::Plain)?;
    let params = request.params.as_ref();
    let method = request.method.parse::<Method>().ok();
    let target = method.and_then(Method::named_by);
    if let Some(field) = target {
        if let Some(value) = params.and_then(|p| p.get(field)).and_then(Value::as_str) {
            expect(headers, NAME, value, Form::Text)?;
        }
    }
    if method == Some(Method::ToolsCall) {
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
                let number = param.lookup(arguments).is_some_and(Value::is_number);
                let form = if number { Form::Number } else { Form::Text };
                expect(headers, &name, &value, form)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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
    fn numbers_agree_numerically_and_text_exactly() {
        assert!(agrees("42", "42", Form::Number));
        assert!(agrees("42.0", "42", Form::Number));
        assert!(agrees("1.50", "1.5", Form::Number));
        assert!(!agrees("inf", "infinity", Form::Number));
        // Past 2^53 floats would call these equal.
        assert!(!agrees(
            "9007199254740992",
            "9007199254740993",
            Form::Number
        ));
        assert!(!agrees(
            "9007199254740992.0",
            "9007199254740993",
            Form::Number
        ));
        // A string parameter that looks like a number is still text.
        for (header, body) in [("1e3", "1000"), ("05", "5"), ("+7", "7"), ("-0", "0")] {
            assert!(!agrees(header, body, Form::Text), "{header} vs {body}");
        }
        assert!(!agrees("TOOLS/LIST", "tools/list", Form::Plain));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, axum::http::HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_repeated_header_is_a_mismatch() {
        let map = headers(&[("mcp-name", "echo"), ("mcp-name", "bump")]);
        let error = expect(&map, NAME, "echo", Form::Text).unwrap_err();
        assert_eq!(error.code, code::HEADER_MISMATCH);
        assert!(error.message.contains("repeated"), "{}", error.message);
    }

    #[test]
    fn base64_is_taken_only_where_the_spec_allows_it() {
        let map = headers(&[
            ("mcp-method", "=?base64?dG9vbHMvbGlzdA==?="),
            ("mcp-name", "=?base64?ZWNobw==?="),
        ]);
        assert!(expect(&map, METHOD, "tools/list", Form::Plain).is_err());
        assert!(expect(&map, NAME, "echo", Form::Text).is_ok());
    }
}
