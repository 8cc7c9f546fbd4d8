//! JSON-RPC 2.0 messages, strictly validated, with input limits checked
//! before any parsing.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Error codes of JSON-RPC 2.0 and of each MCP version.
pub mod code {
    /// Invalid JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a valid JSON-RPC message.
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist or is not available.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid method parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal error.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Handshake era (≤ 2025-11-25) only: a resource was not found. The
    /// 2026-07-28 era uses [`INVALID_PARAMS`] with `data.uri` instead.
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// 2025-11-25 only: URL-mode elicitation is required first.
    pub const URL_ELICITATION_REQUIRED: i64 = -32042;
    /// 2026-07-28: an HTTP header does not match the body.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// 2026-07-28: the request needs a client capability it did not declare.
    pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
    /// 2026-07-28: the requested protocol version is not supported.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
    /// Implementation-defined (legacy sub-range): a request timed out.
    pub const REQUEST_TIMEOUT: i64 = -32001;
    /// arbor: over a rate limit; `data.limit` names it, `data.retryAfter`
    /// says in how many seconds to retry ([`crate::rate`]).
    pub const RATE_LIMITED: i64 = -32029;
    /// arbor: the handler's circuit is open (it kept failing); `data`
    /// names the handler and says when to retry ([`crate::breaker`]).
    pub const CIRCUIT_OPEN: i64 = -32030;
    /// arbor: the process is near a limit (descriptors, memory,
    /// processes); `data` names the resource and says when to retry
    /// ([`crate::guard`]).
    pub const OVERLOADED: i64 = -32031;
    /// arbor: the transport's sessions failed in cascade and it takes no
    /// new ones for now; `data` names the subtree and says when to retry
    /// ([`crate::cascade`]).
    pub const ISOLATED: i64 = -32032;
    /// arbor: an idempotency key reused with other arguments, or the
    /// idempotency store full; `data.reason` says which
    /// ([`crate::idempotency`]).
    pub const IDEMPOTENCY_CONFLICT: i64 = -32033;
    /// arbor: no valid access token (missing, expired, revoked, for
    /// another resource); `data.reason` says which, `data.resourceMetadata`
    /// where to learn how to get one ([`crate::auth`]). HTTP says 401.
    pub const UNAUTHORIZED: i64 = -32034;
    /// arbor: the token is valid but does not allow this: a scope it lacks
    /// (`data.scope`, for step-up), or a session bound to another subject
    /// ([`crate::auth`]). HTTP says 403.
    pub const FORBIDDEN: i64 = -32035;
}

/// A request id: a string or an integer, never null.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// An integer id.
    Number(i64),
    /// A string id.
    String(Arc<str>),
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Number(n) => write!(f, "{n}"),
            Id::String(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<i64> for Id {
    fn from(n: i64) -> Self {
        Id::Number(n)
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Id::String(s.into())
    }
}

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// One of [`code`].
    pub code: i64,
    /// A short description.
    pub message: String,
    /// Machine-readable detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    /// An error with a code and message.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        ErrorObject {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Adds machine-readable detail.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// `-32602` Invalid params.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMS, message)
    }

    /// `-32601` Method not found, naming the method.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            code::METHOD_NOT_FOUND,
            format!("Method not found: {method}"),
        )
        .with_data(serde_json::json!({ "method": method }))
    }

    /// `-32603` Internal error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(code::INTERNAL_ERROR, message)
    }
}

impl fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ErrorObject {}

/// A request: expects exactly one response with the same id.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The id the response echoes.
    pub id: Id,
    /// The method name.
    pub method: String,
    /// The parameters (always an object in MCP).
    pub params: Option<Map<String, Value>>,
}

/// A notification: no response.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// The method name.
    pub method: String,
    /// The parameters.
    pub params: Option<Map<String, Value>>,
}

/// A response: a result or an error for one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// The request's id; `None` only for errors about unreadable requests.
    pub id: Option<Id>,
    /// The outcome.
    pub outcome: Result<Value, ErrorObject>,
}

impl Response {
    /// A successful response.
    pub fn result(id: Id, result: Value) -> Self {
        Response {
            id: Some(id),
            outcome: Ok(result),
        }
    }

    /// An error response.
    pub fn error(id: Option<Id>, error: ErrorObject) -> Self {
        Response {
            id,
            outcome: Err(error),
        }
    }
}

/// Any JSON-RPC message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A notification.
    Notification(Notification),
    /// A response.
    Response(Response),
}

impl Message {
    /// The message as JSON.
    pub fn to_value(&self) -> Value {
        // `Wire` cannot fail to serialise: its maps have string keys.
        serde_json::to_value(Wire(self)).unwrap_or(Value::Null)
    }

    /// The message as one line of JSON (no embedded newlines): written
    /// from the message itself, not through a [`Value`] copy of it (a
    /// result is not cloned to be sent).
    pub fn to_json(&self) -> String {
        // `Wire` cannot fail to serialise: its maps have string keys.
        serde_json::to_string(&Wire(self)).unwrap_or_default()
    }
}

/// A message as it is sent, the one definition of its shape; keys in
/// sorted order, as a [`Map`] keeps them.
struct Wire<'a>(&'a Message);

impl Serialize for Wire<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = s.serialize_map(None)?;
        match self.0 {
            Message::Request(r) => {
                map.serialize_entry("id", &id_value(&r.id))?;
                map.serialize_entry("jsonrpc", "2.0")?;
                map.serialize_entry("method", &r.method)?;
                if let Some(p) = &r.params {
                    map.serialize_entry("params", p)?;
                }
            }
            Message::Notification(n) => {
                map.serialize_entry("jsonrpc", "2.0")?;
                map.serialize_entry("method", &n.method)?;
                if let Some(p) = &n.params {
                    map.serialize_entry("params", p)?;
                }
            }
            Message::Response(r) => {
                let id = r.id.as_ref().map_or(Value::Null, id_value);
                match &r.outcome {
                    Ok(result) => {
                        map.serialize_entry("id", &id)?;
                        map.serialize_entry("jsonrpc", "2.0")?;
                        map.serialize_entry("result", result)?;
                    }
                    Err(e) => {
                        map.serialize_entry("error", &error_value(e))?;
                        map.serialize_entry("id", &id)?;
                        map.serialize_entry("jsonrpc", "2.0")?;
                    }
                }
            }
        }
        map.end()
    }
}

fn id_value(id: &Id) -> Value {
    match id {
        Id::Number(n) => Value::from(*n),
        Id::String(s) => Value::from(s.as_ref()),
    }
}

fn error_value(e: &ErrorObject) -> Value {
    serde_json::to_value(e)
        .unwrap_or_else(|_| serde_json::json!({"code": e.code, "message": e.message}))
}

/// Limits checked on every incoming message before it is parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// The largest message, in bytes. Default: 4 MiB.
    pub max_message_bytes: usize,
    /// The deepest nesting of arrays and objects. Default: 64; at most 120
    /// (deeper settings are treated as 120, below the parser's own limit).
    pub max_depth: usize,
    /// The longest string, in bytes as written (escapes included).
    /// Default: 1 MiB.
    pub max_string_bytes: usize,
    /// The most messages in one batch, where batches are allowed. Default: 64.
    pub max_batch_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 4 << 20,
            max_depth: 64,
            max_string_bytes: 1 << 20,
            max_batch_len: 64,
        }
    }
}

/// The hard ceiling on nesting depth: serde_json refuses deeper input at 128.
pub const MAX_DEPTH_CEILING: usize = 120;

/// A message that could not be accepted, with the error to answer it with.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    /// The request id, when it could be read.
    pub id: Option<Id>,
    /// The error to send back (only requests get an answer).
    pub error: ErrorObject,
}

impl Rejected {
    /// A batch where the version has none.
    pub(crate) fn no_batches() -> Self {
        Rejected::new(
            None,
            ErrorObject::new(
                code::INVALID_REQUEST,
                "JSON-RPC batches are not supported by this protocol version",
            ),
        )
    }

    fn new(id: Option<Id>, error: ErrorObject) -> Self {
        Rejected { id, error }
    }

    /// The error response to send.
    pub fn response(&self) -> Response {
        Response::error(self.id.clone(), self.error.clone())
    }
}

/// What one read from the wire holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    /// One message.
    Single(Message),
    /// A batch; each entry is a message or the reason it was rejected.
    Batch(Vec<Result<Message, Rejected>>),
}

fn limit_error(limit: &str, max: usize, actual: usize) -> ErrorObject {
    ErrorObject::new(
        code::INVALID_REQUEST,
        format!("message exceeds {limit} ({actual} > {max})"),
    )
    .with_data(serde_json::json!({ "limit": limit, "max": max, "actual": actual }))
}

/// Checks size, nesting depth and string lengths in one pass over the raw
/// bytes, so that nothing oversized or too deep reaches the parser.
fn check_limits(bytes: &[u8], limits: &Limits) -> Result<(), ErrorObject> {
    if bytes.len() > limits.max_message_bytes {
        return Err(limit_error(
            "max_message_bytes",
            limits.max_message_bytes,
            bytes.len(),
        ));
    }
    let max_depth = limits.max_depth.min(MAX_DEPTH_CEILING);
    let (mut depth, mut in_string, mut escaped, mut string_start) = (0usize, false, false, 0usize);
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                let len = i - string_start;
                if len > limits.max_string_bytes {
                    return Err(limit_error(
                        "max_string_bytes",
                        limits.max_string_bytes,
                        len,
                    ));
                }
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                string_start = i + 1;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(limit_error("max_depth", max_depth, depth));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if in_string && bytes.len() - string_start > limits.max_string_bytes {
        return Err(limit_error(
            "max_string_bytes",
            limits.max_string_bytes,
            bytes.len() - string_start,
        ));
    }
    Ok(())
}

/// The top-level `"id"` of a JSON object that cannot be decoded (too deep,
/// too long, malformed after the id), found by one scan that builds nothing:
/// a request refused for its shape is still answered under its own id, so
/// the client's request resolves. `None` when no integer or string id comes
/// before the scan finds something it cannot read past.
pub fn peek_id(bytes: &[u8]) -> Option<Id> {
    let mut scan = Scan { bytes, at: 0 };
    // The last `id` wins, as in `serde_json`: a message that names it twice
    // is answered under the id it would have been served under.
    let mut found = None;
    scan.ws();
    scan.eat(b'{')?;
    loop {
        scan.ws();
        let Some(key) = scan.string() else {
            return found;
        };
        scan.ws();
        if scan.eat(b':').is_none() {
            return found;
        }
        scan.ws();
        if key == b"\"id\"" {
            match scan.id() {
                Some(id) => found = Some(id),
                None => return found,
            }
        } else if scan.skip_value().is_none() {
            return found;
        }
        scan.ws();
        if scan.eat(b',').is_none() {
            return found;
        }
    }
}

/// A cursor over raw JSON for [`peek_id`].
struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// A string token, quotes included.
    fn string(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        self.eat(b'"')?;
        let mut escaped = false;
        loop {
            let b = self.peek()?;
            self.at += 1;
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => return Some(&self.bytes[start..self.at]),
                _ => {}
            }
        }
    }

    /// Skips one value of any depth, counting brackets, not recursing.
    fn skip_value(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.at += 1;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    self.at += 1;
                }
                b',' if depth == 0 => return Some(()),
                _ => self.at += 1,
            }
            if depth == 0 && matches!(self.peek(), Some(b',' | b'}') | None) {
                return Some(());
            }
        }
    }

    /// An integer or string id, followed by the end of its member.
    fn id(&mut self) -> Option<Id> {
        let token = match self.peek()? {
            b'"' => self.string()?,
            b'-' | b'0'..=b'9' => {
                let start = self.at;
                while self.peek().is_some_and(|b| b == b'-' || b.is_ascii_digit()) {
                    self.at += 1;
                }
                &self.bytes[start..self.at]
            }
            _ => return None,
        };
        self.ws();
        if !matches!(self.peek(), Some(b',' | b'}')) {
            return None;
        }
        parse_id(&serde_json::from_slice(token).ok()?)
    }
}

/// Reads one message or batch from raw bytes.
///
/// # Errors
/// A [`Rejected`] with `-32700` for invalid JSON, `-32600` for a limit
/// exceeded, a batch where `allow_batch` is false, or anything that is not a
/// JSON-RPC 2.0 message.
pub fn decode(bytes: &[u8], limits: &Limits, allow_batch: bool) -> Result<Incoming, Rejected> {
    check_limits(bytes, limits).map_err(|e| Rejected::new(peek_id(bytes), e))?;
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        Rejected::new(
            peek_id(bytes),
            ErrorObject::new(code::PARSE_ERROR, "Parse error")
                .with_data(serde_json::json!({ "detail": e.to_string() })),
        )
    })?;
    match value {
        Value::Array(items) => {
            if !allow_batch {
                return Err(Rejected::no_batches());
            }
            if items.is_empty() {
                return Err(Rejected::new(
                    None,
                    ErrorObject::new(code::INVALID_REQUEST, "empty batch"),
                ));
            }
            if items.len() > limits.max_batch_len {
                return Err(Rejected::new(
                    None,
                    limit_error("max_batch_len", limits.max_batch_len, items.len()),
                ));
            }
            Ok(Incoming::Batch(items.into_iter().map(classify).collect()))
        }
        other => classify(other).map(Incoming::Single),
    }
}

fn invalid(id: Option<Id>, message: &str) -> Rejected {
    Rejected::new(id, ErrorObject::new(code::INVALID_REQUEST, message))
}

fn parse_id(value: &Value) -> Option<Id> {
    match value {
        Value::Number(n) => n.as_i64().map(Id::Number),
        Value::String(s) => Some(Id::String(s.as_str().into())),
        _ => None,
    }
}

/// Turns one JSON value into a message, or says why it is not one.
///
/// # Errors
/// A [`Rejected`] with `-32600` and the request id when it could be read.
pub fn classify(value: Value) -> Result<Message, Rejected> {
    let Value::Object(mut obj) = value else {
        return Err(invalid(None, "a JSON-RPC message must be an object"));
    };
    let raw_id = obj.remove("id");
    let id = match &raw_id {
        None => None,
        Some(v) => match parse_id(v) {
            Some(id) => Some(id),
            None if v.is_null() && (obj.contains_key("error")) => None,
            None => {
                return Err(invalid(None, "id must be a string or an integer"));
            }
        },
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(id, "jsonrpc must be \"2.0\""));
    }
    if let Some(method) = obj.remove("method") {
        let Value::String(method) = method else {
            return Err(invalid(id, "method must be a string"));
        };
        let params = match obj.remove("params") {
            None => None,
            Some(Value::Object(p)) => Some(p),
            Some(_) => return Err(invalid(id, "params must be an object")),
        };
        return Ok(match (raw_id, id) {
            (None, _) => Message::Notification(Notification { method, params }),
            (Some(_), Some(id)) => Message::Request(Request { id, method, params }),
            (Some(_), None) => return Err(invalid(None, "id must be a string or an integer")),
        });
    }
    if raw_id.is_none() {
        return Err(invalid(
            None,
            "a message needs a method, or an id with a result or error",
        ));
    }
    match (obj.remove("result"), obj.remove("error")) {
        (Some(result), None) => match id {
            Some(id) => Ok(Message::Response(Response::result(id, result))),
            None => Err(invalid(None, "a result needs an id")),
        },
        (None, Some(error)) => match serde_json::from_value::<ErrorObject>(error) {
            Ok(error) => Ok(Message::Response(Response::error(id, error))),
            Err(_) => Err(invalid(
                id,
                "error must have an integer code and a string message",
            )),
        },
        (Some(_), Some(_)) => Err(invalid(id, "a response has a result or an error, not both")),
        (None, None) => Err(invalid(id, "a response needs a result or an error")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn messages_are_written_with_sorted_keys_as_their_value_is() {
        let params = serde_json::json!({ "b": [1, "two"], "a": { "z": null, "y": 1.5 } });
        let Value::Object(params) = params else {
            unreachable!()
        };
        let written = r#"{"a":{"y":1.5,"z":null},"b":[1,"two"]}"#;
        let cases = [
            (
                Message::Request(Request {
                    id: Id::Number(7),
                    method: "tools/call".into(),
                    params: Some(params.clone()),
                }),
                format!(r#"{{"id":7,"jsonrpc":"2.0","method":"tools/call","params":{written}}}"#),
            ),
            (
                Message::Request(Request {
                    id: Id::String("a\"b".into()),
                    method: "ping".into(),
                    params: None,
                }),
                r#"{"id":"a\"b","jsonrpc":"2.0","method":"ping"}"#.to_string(),
            ),
            (
                Message::Notification(Notification {
                    method: "notifications/x".into(),
                    params: Some(params.clone()),
                }),
                format!(r#"{{"jsonrpc":"2.0","method":"notifications/x","params":{written}}}"#),
            ),
            (
                Message::Response(Response {
                    id: Some(Id::Number(1)),
                    outcome: Ok(Value::Object(params)),
                }),
                format!(r#"{{"id":1,"jsonrpc":"2.0","result":{written}}}"#),
            ),
            (
                Message::Response(Response {
                    id: None,
                    outcome: Err(ErrorObject::new(code::INVALID_REQUEST, "no")
                        .with_data(serde_json::json!({ "k": 1 }))),
                }),
                r#"{"error":{"code":-32600,"data":{"k":1},"message":"no"},"id":null,"jsonrpc":"2.0"}"#
                    .to_string(),
            ),
        ];
        for (message, json) in cases {
            assert_eq!(message.to_json(), json);
            assert_eq!(message.to_value().to_string(), json);
        }
    }

    #[test]
    fn peek_id_finds_a_top_level_id_before_the_part_that_cannot_be_read() {
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":7,"method":"x","params":{}{}}}"#,
            "[".repeat(500),
            "]".repeat(500)
        );
        assert_eq!(peek_id(deep.as_bytes()), Some(Id::Number(7)));
        assert_eq!(
            peek_id(br#" { "method" : "x", "params": {"id": 1, "a": [1, {"b": "}"}]}, "id" : "r-1" , "x": ["#),
            Some(Id::String("r-1".into())),
            "nested ids are not the request's; the top-level one after them is"
        );
        assert_eq!(
            peek_id(br#"{"id":"a\"b","method":"x", broken"#),
            Some(Id::String("a\"b".into()))
        );
        assert_eq!(peek_id(br#"{"id":-3}"#), Some(Id::Number(-3)));
        // Named twice: the last, as serde_json reads it (found by fuzzing).
        assert_eq!(
            peek_id(br#"{"jsonrpc":"2.0","id":1,"id":2,"method":"x"}"#),
            Some(Id::Number(2))
        );
    }

    #[test]
    fn peek_id_gives_none_when_the_id_cannot_be_read() {
        for bytes in [
            &br#"{"method":"x","params":[[[[ "#[..],
            br#"{"id":null}"#,
            br#"{"id":1.5}"#,
            br#"{"id":{"a":1}}"#,
            br#"[{"id":1}]"#,
            br#"{"id":12"#,
            b"not json",
            b"",
        ] {
            assert_eq!(peek_id(bytes), None, "{}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn a_message_refused_for_its_depth_is_answered_under_its_id() {
        let limits = Limits {
            max_depth: 8,
            ..Limits::default()
        };
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":42,"method":"x","params":{{"a":{}1{}}}}}"#,
            "[".repeat(20),
            "]".repeat(20)
        );
        let Err(rejected) = decode(deep.as_bytes(), &limits, false) else {
            panic!("too deep");
        };
        assert_eq!(rejected.id, Some(Id::Number(42)));
        assert_eq!(rejected.error.code, code::INVALID_REQUEST);
        let Err(rejected) = decode(br#"{"jsonrpc":"2.0","id":"p","method":}"#, &limits, false)
        else {
            panic!("malformed");
        };
        assert_eq!(rejected.id, Some(Id::String("p".into())));
    }
}
