//! HTTP answers: JSON-RPC errors with their status, refusals, 405s, and
//! the SSE response of an attached stream.

use super::*;

/// A JSON-RPC error as an HTTP response.
pub(super) fn rpc_error(status: StatusCode, id: Option<Id>, error: ErrorObject) -> Response {
    let body = Message::Response(RpcResponse::error(id, error)).to_value();
    json_response(status, body.to_string())
}

pub(super) fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A transport-level refusal (`-32000`, as SDKs send), with `data`.
pub(super) fn refuse(status: StatusCode, message: &str, data: Value) -> Response {
    rpc_error(
        status,
        None,
        ErrorObject::new(-32000, message).with_data(data),
    )
}

/// The HTTP status for a JSON-RPC error, as Streamable HTTP maps them.
pub(super) fn status_for(error_code: i64) -> StatusCode {
    match error_code {
        code::PARSE_ERROR
        | code::INVALID_REQUEST
        | code::HEADER_MISMATCH
        | code::MISSING_REQUIRED_CLIENT_CAPABILITY
        | code::UNSUPPORTED_PROTOCOL_VERSION => StatusCode::BAD_REQUEST,
        code::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

pub(super) fn session_not_found(id: &str) -> Response {
    rpc_error(
        StatusCode::NOT_FOUND,
        None,
        ErrorObject::new(-32001, "Session not found").with_data(json!({ "sessionId": id })),
    )
}

/// 400 for a batch where the negotiated version has none, on the POST that
/// sent it.
pub(super) fn no_batches(version: ProtocolVersion) -> Response {
    rpc_error(
        StatusCode::BAD_REQUEST,
        None,
        ErrorObject::new(
            code::INVALID_REQUEST,
            "JSON-RPC batches are not supported by this protocol version",
        )
        .with_data(json!({ "protocolVersion": version.as_str() })),
    )
}

/// 429: the session's inbound budget is spent for now.
pub(super) fn busy(http: &Http, spent: Spent) -> Response {
    let limit = match spent {
        Spent::Connection => "max_inbound_bytes",
        Spent::Server => "max_buffered_bytes",
    };
    metrics::counter!("arbor_http_too_many_requests_total", "limit" => limit).increment(1);
    let (message, data) = match spent {
        Spent::Connection => (
            "Too Many Requests: the session holds its inbound budget's worth of messages",
            json!({ "limit": "max_inbound_bytes", "max": http.server.config().max_inbound_bytes }),
        ),
        Spent::Server => (
            "Too Many Requests: the server holds its memory budget's worth of messages",
            json!({ "limit": "max_buffered_bytes", "max": http.server.memory().max_bytes() }),
        ),
    };
    let mut response = refuse(StatusCode::TOO_MANY_REQUESTS, message, data);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// 405, with the methods the path serves.
pub(super) async fn not_allowed(allow: &'static str) -> Response {
    let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

pub(super) fn method_not_allowed() -> Response {
    let mut response = refuse(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method Not Allowed: without a session, only POST is served",
        json!({ "allow": ["POST"] }),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
    response
}

/// The SSE response for a stream the session attached: `before`, then what
/// the session routes to it; the session hears when the client goes.
pub(super) fn stream_response(
    session: ActorRef<HttpSessionMsg>,
    attached: Attached,
    mut before: Vec<SseEvent>,
    config: &HttpConfig,
    closing: Option<(Closing, AtClose)>,
) -> Response {
    let (stream, attach) = (attached.stream, attached.attach);
    let detach = OnDrop::new(move || {
        let _ = session.send_system(HttpSessionMsg::Detached { stream, attach });
    });
    before.extend(attached.first);
    sse_response(
        before,
        attached.events,
        config.sse_keep_alive,
        detach,
        closing,
    )
}
