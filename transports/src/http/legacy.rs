//! The legacy HTTP+SSE transport (2024-11-05): `GET /sse` opens a session
//! whose first event names where to POST; every answer comes on the stream.

use super::*;

/// `GET /sse`: opens a legacy session; its first event names where to POST.
pub(super) async fn open_legacy(
    State(http): State<Http>,
    closing: Option<Extension<Closing>>,
    Client(client): Client,
    grant: Granted,
) -> Response {
    uncancelled(open_legacy_stream(http, closing, client, grant)).await
}

/// Opens a legacy session and its stream.
async fn open_legacy_stream(
    http: Http,
    closing: Option<Extension<Closing>>,
    client: Option<IpAddr>,
    grant: Granted,
) -> Response {
    let (session, id) = match open_session(&http, Mode::Legacy, client, None, &grant).await {
        Ok(opened) => opened,
        Err(refusal) => return refusal,
    };
    let (reply, answer) = oneshot::channel();
    let asked = session.send(HttpSessionMsg::Get {
        after: None,
        primed: false,
        reply,
    });
    let attached = match asked.await {
        Ok(()) => answer.await.ok().and_then(Result::ok),
        Err(_) => None,
    };
    let Some(attached) = attached else {
        return session_not_found(&id);
    };
    let endpoint = SseEvent {
        id: None,
        name: Some("endpoint"),
        data: Arc::from(format!("{MESSAGE_PATH}?sessionId={id}")),
        retry: None,
    };
    // The stream is the session's only way out: when the server closes, it
    // stays open while the requests in flight answer (the MCP session
    // drains), and ends with the session.
    let closing = closing.map(|Extension(c)| (c, drains(&attached.session)));
    stream_response(session, attached, vec![endpoint], &http.config, closing)
}

/// `POST /message?sessionId=…`: a legacy client's message.
pub(super) async fn post_legacy(
    State(http): State<Http>,
    RawQuery(query): RawQuery,
    grant: Granted,
    JsonBody(bytes): JsonBody,
) -> Response {
    // Session ids are hex: nothing to percent-decode.
    let session_id = query.as_deref().and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("sessionId="))
            .map(str::to_string)
    });
    let Some(session_id) = session_id else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Bad Request: sessionId query parameter is required",
            json!({ "parameter": "sessionId" }),
        );
    };
    if let Some(forbidden) = auth::session_refusal(&http, &grant, &session_id) {
        return forbidden;
    }
    let Some(session) = http
        .legacy_sessions
        .whereis_actor::<HttpSessionMsg>(&session_id)
    else {
        return session_not_found(&session_id);
    };
    // Malformed input is answered on the stream, as the session answers it.
    // A legacy session learns no version here: a batch it refuses is
    // answered on its one stream.
    match deliver(&session, false, None, bytes, grant.0).await {
        Ok(()) => {}
        Err(Undelivered::Gone) => return session_not_found(&session_id),
        Err(Undelivered::Busy(spent)) => return busy(&http, spent),
        Err(Undelivered::NoBatches(version)) => return no_batches(version),
    }
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
