//! The handshake era over Streamable HTTP: `initialize` opens a session,
//! POSTs go into it, GET opens its standalone stream, DELETE ends it.

use super::respond::method_not_allowed;
use super::*;

/// A handshake-era POST to `/mcp`.
pub(super) async fn post_handshake(
    http: Http,
    headers: HeaderMap,
    message: Incoming,
    bytes: Vec<u8>,
    client: Option<IpAddr>,
    closing: Option<Closing>,
    grant: Granted,
) -> Response {
    let session_id = headers.get(SESSION_ID).and_then(|v| v.to_str().ok());
    if let Some(id) = session_id {
        if let Some(forbidden) = auth::session_refusal(&http, &grant, id) {
            return forbidden;
        }
        return match http
            .sessions
            .whereis_actor::<HttpSessionMsg>(&id.to_string())
        {
            Some(session) => {
                let from = Requester {
                    address: client,
                    session: Some(session.pid().as_u64()),
                };
                if let Some(refusal) = turned_away(&http, from, &message) {
                    return refusal;
                }
                handshake(
                    &http, &headers, session, message, bytes, None, closing, grant,
                )
                .await
            }
            None => session_not_found(id),
        };
    }
    let initialize = matches!(&message, Incoming::Single(Message::Request(r)) if r.method == Method::Initialize.as_str());
    if !initialize {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Bad Request: Mcp-Session-Id header is required (or send a 2026-07-28 request with its _meta envelope)",
            json!({ "header": "Mcp-Session-Id" }),
        );
    }
    let from = Requester {
        address: client,
        session: None,
    };
    if let Some(refusal) = turned_away(&http, from, &message) {
        return refusal;
    }
    let initialize_id = match &message {
        Incoming::Single(Message::Request(r)) => Some(r.id.clone()),
        _ => None,
    };
    let opened = open_session(&http, Mode::Streamable, client, initialize_id, &grant).await;
    let (session, id) = match opened {
        Ok(opened) => opened,
        Err(refusal) => return refusal,
    };
    handshake(
        &http,
        &headers,
        session,
        message,
        bytes,
        Some(id),
        closing,
        grant,
    )
    .await
}

/// Starts an HTTP session for `client` and registers it under a fresh id;
/// a refusal answers `request` (the `initialize`; none for `GET /sse`).
pub(super) async fn open_session(
    http: &Http,
    mode: Mode,
    client: Option<IpAddr>,
    request: Option<Id>,
    grant: &Granted,
) -> Result<(ActorRef<HttpSessionMsg>, String), Response> {
    if let Err(refused) = http.server.guard().admit_session() {
        return Err(overloaded(&refused, request));
    }
    if let Some(isolation) = http.session_sup.isolation() {
        return Err(isolated(&isolation, request));
    }
    if let Err(limited) = http.server.limiter().new_session(client) {
        return Err(rate_limited(&limited, request));
    }
    let Some(place) = http.session_limit.acquire() else {
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: server at its session limit",
            json!({ "limit": "max_sessions", "max": http.session_limit.max() }),
        ));
    };
    let unavailable = |e: String| {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the session could not start",
            json!({ "reason": e }),
        )
    };
    let started = match http.session_sup.start_child((mode, client)).await {
        Err(arbor_supervision::ChildError::Isolated(isolation)) => {
            return Err(isolated(&isolation, request))
        }
        started => started,
    };
    let (session, _) = started
        .map_err(|e| unavailable(e.to_string()))?
        .running()
        .ok_or_else(|| unavailable("no session".into()))?;
    place.hold_until_exit(&session.process());
    // 128 bits from a CSPRNG (rand's thread generator, seeded by the OS),
    // and the subject's tag when there is one.
    let id = auth::session_id(grant, http.forward.as_ref().map(|f| f.node()));
    let registry = match mode {
        Mode::Streamable => &http.sessions,
        Mode::Legacy => &http.legacy_sessions,
    };
    registry
        .register(id.clone(), &session.process())
        .map_err(|e| unavailable(e.to_string()))?;
    Ok((session, id))
}

/// Whether streams of a request with these headers (or this `initialize`)
/// open with a priming event: only from 2025-11-25, which clients of older
/// versions cannot parse.
pub(super) fn primed(headers: &HeaderMap, message: &Incoming) -> bool {
    let version = match message {
        Incoming::Single(Message::Request(r)) if r.method == Method::Initialize.as_str() => r
            .params
            .as_ref()
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str)
            .and_then(ProtocolVersion::parse),
        _ => headers::text(headers, headers::PROTOCOL_VERSION)
            .ok()
            .flatten()
            .and_then(ProtocolVersion::parse),
    };
    version.is_some_and(|v| v >= ProtocolVersion::V2025_11_25)
}

/// A request within a handshake-era session: its `MCP-Protocol-Version`,
/// when sent, must be a handshake-era version (400 otherwise, also when
/// repeated or unreadable).
pub(super) fn check_session_version(headers: &HeaderMap) -> Result<(), Box<Response>> {
    let version = match headers::text(headers, headers::PROTOCOL_VERSION) {
        Ok(version) => version,
        Err(error) => return Err(Box::new(rpc_error(StatusCode::BAD_REQUEST, None, error))),
    };
    match version {
        Some(v) if ProtocolVersion::parse(v).is_none_or(|v| v.era() != Era::Handshake) => {
            Err(Box::new(refuse(
                StatusCode::BAD_REQUEST,
                "Bad Request: unsupported MCP-Protocol-Version",
                json!({ "requested": v, "supported": ProtocolVersion::supported(Era::Handshake) }),
            )))
        }
        _ => Ok(()),
    }
}

/// A POST to a handshake-era session.
#[allow(clippy::too_many_arguments)]
pub(super) async fn handshake(
    http: &Http,
    headers: &HeaderMap,
    session: ActorRef<HttpSessionMsg>,
    message: Incoming,
    bytes: Vec<u8>,
    new_id: Option<String>,
    closing: Option<Closing>,
    Granted(grant): Granted,
) -> Response {
    if new_id.is_none() {
        if let Err(refusal) = check_session_version(headers) {
            return *refusal;
        }
    }
    // `None`: nothing in the message is answered.
    let (requests, answer) = match &message {
        Incoming::Single(Message::Request(r)) => (vec![r.id.clone()], Some(Answer::Each)),
        Incoming::Single(_) => (Vec::new(), None),
        Incoming::Batch(items) => {
            let ids: Vec<Id> = items
                .iter()
                .filter_map(|m| match m {
                    Ok(Message::Request(r)) => Some(r.id.clone()),
                    _ => None,
                })
                .collect();
            // Rejected entries are answered in the batch's array too.
            let certain = items.iter().any(|m| m.is_err());
            let answer = (certain || !ids.is_empty()).then_some(Answer::Array { certain });
            (ids, answer)
        }
    };
    let gone = || session_not_found(new_id.as_deref().unwrap_or("?"));
    let batch = matches!(message, Incoming::Batch(_));
    // Read before the message goes to the session.
    let cancels = cancelled_requests(&message);
    let Some(answer) = answer else {
        return match deliver(&session, batch, Some(message), bytes, grant).await {
            Ok(()) => {
                cancelled(&session, cancels);
                StatusCode::ACCEPTED.into_response()
            }
            Err(Undelivered::Gone) => gone(),
            Err(Undelivered::Busy(spent)) => busy(http, spent),
            Err(Undelivered::NoBatches(version)) => no_batches(version),
        };
    };
    // The session learns its version from the `initialize` that opens it.
    let negotiated = match &message {
        Incoming::Single(Message::Request(r)) if new_id.is_some() => r
            .params
            .as_ref()
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str)
            .map(ProtocolVersion::negotiate_handshake),
        _ => None,
    };
    let (reply, attached) = oneshot::channel();
    let opened = session
        .send(HttpSessionMsg::Open {
            requests,
            answer,
            primed: primed(headers, &message),
            batch,
            negotiated,
            bytes,
            reply,
        })
        .await;
    let attached = match opened {
        Ok(()) => attached.await,
        Err(_) => return gone(),
    };
    let (attached, received) = match attached {
        Ok(Ok(opened)) => opened,
        Ok(Err(Refusal::Busy(spent))) => return busy(http, spent),
        Ok(Err(Refusal::NoBatches(version))) => return no_batches(version),
        Ok(Err(Refusal::DuplicateId(id))) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                Some(id.clone()),
                ErrorObject::new(
                    code::INVALID_REQUEST,
                    "a request with this id is already in flight in this session",
                )
                .with_data(json!({ "id": id })),
            )
        }
        Ok(Err(_)) | Err(_) => return gone(),
    };
    // Decoded once, here: the MCP session does not parse it again.
    if attached
        .session
        .send(SessionMsg::Incoming(
            received.decoded(message).authorized(grant),
        ))
        .await
        .is_err()
    {
        return gone();
    }
    // A batch may cancel other requests beside its own.
    cancelled(&session, cancels);
    // Answers in flight are drained, not cut: at the connection's shutdown
    // the MCP session drains (up to its drain timeout, then answers what is
    // left with an error), and the stream ends once its requests have
    // their answers.
    let closing = closing.map(|c| (c, drains(&attached.session)));
    let mut response = stream_response(session, attached, Vec::new(), &http.config, closing);
    if let Some(id) = new_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert(SESSION_ID, id);
    }
    response
}

/// At the connection's shutdown, `session` drains: its requests in flight
/// answer, up to its drain timeout, and the rest get an error.
pub(super) fn drains(session: &ActorRef<SessionMsg>) -> AtClose {
    let session = session.clone();
    AtClose::Drain(Box::new(move || {
        let _ = session.send_system(SessionMsg::Shutdown);
    }))
}

/// A cancelled request gets no answer: its stream ends now (a batch's waits
/// for the others' array).
pub(super) fn cancelled(session: &ActorRef<HttpSessionMsg>, cancels: Vec<Id>) {
    for id in cancels {
        let _ = session.send_system(HttpSessionMsg::Cancelled(id));
    }
}

/// The requests a message's `notifications/cancelled` name.
pub(super) fn cancelled_requests(message: &Incoming) -> Vec<Id> {
    let items: Vec<&Message> = match message {
        Incoming::Single(m) => vec![m],
        Incoming::Batch(items) => items.iter().filter_map(|m| m.as_ref().ok()).collect(),
    };
    items
        .into_iter()
        .filter_map(|m| match m {
            Message::Notification(n) if n.method == NotificationMethod::Cancelled.as_str() => {
                n.params.as_ref()
            }
            _ => None,
        })
        .filter_map(|p| p.get("requestId"))
        .filter_map(|id| serde_json::from_value::<Id>(id.clone()).ok())
        .collect()
}

/// How often, and how many times, a GET that finds the standalone stream
/// attached asks again before it is refused (250 ms in all).
pub(super) const CONFLICT_RECHECKS: u32 = 10;

pub(super) const CONFLICT_RECHECK_EVERY: Duration = Duration::from_millis(25);

/// What a GET or DELETE into a session passes first (after the origin
/// guard): a session id (without one only POST is served: 405) and the
/// version header.
fn into_session(headers: &HeaderMap) -> Result<&str, Box<Response>> {
    let id = headers
        .get(SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Box::new(method_not_allowed()))?;
    check_session_version(headers)?;
    Ok(id)
}

/// `GET /mcp`: a session's standalone stream, or a resumed one.
pub(super) async fn get_mcp(
    State(http): State<Http>,
    closing: Option<Extension<Closing>>,
    grant: Granted,
    headers: HeaderMap,
) -> Response {
    uncancelled(get_stream(http, closing, headers, grant)).await
}

/// A session's standalone stream, or a resumed one.
pub(super) async fn get_stream(
    http: Http,
    closing: Option<Extension<Closing>>,
    headers: HeaderMap,
    grant: Granted,
) -> Response {
    // 2026-07-28 has no GET stream: `subscriptions/listen` replaces it.
    let id = match into_session(&headers) {
        Ok(id) => id,
        Err(refusal) => return *refusal,
    };
    if let Some(forbidden) = auth::session_refusal(&http, &grant, id) {
        return forbidden;
    }
    if !accepts(&headers, "text/event-stream") {
        return refuse(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: Accept must list text/event-stream",
            json!({ "accept": headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) }),
        );
    }
    let Some(session) = http
        .sessions
        .whereis_actor::<HttpSessionMsg>(&id.to_string())
    else {
        return session_not_found(id);
    };
    let after = match headers.get("last-event-id").map(|v| v.to_str()) {
        None => None,
        Some(text) => match text.ok().and_then(EventId::parse) {
            Some(after) => Some(after),
            None => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: Last-Event-ID is not an event of this server",
                    json!({ "header": "Last-Event-ID" }),
                )
            }
        },
    };
    let primed = headers::text(&headers, headers::PROTOCOL_VERSION)
        .ok()
        .flatten()
        .and_then(ProtocolVersion::parse)
        .is_some_and(|v| v >= ProtocolVersion::V2025_11_25);
    // A client that closes its stream and opens another at once may be
    // faster than its old connection's end is noticed (a moment later, on
    // another task): a stream still attached is asked about again briefly
    // before the 409.
    let mut conflicts = 0;
    let answer = loop {
        let (reply, answer) = oneshot::channel();
        if session
            .send(HttpSessionMsg::Get {
                after,
                primed,
                reply,
            })
            .await
            .is_err()
        {
            return session_not_found(id);
        }
        match answer.await {
            Ok(Err(Refusal::Conflict)) if conflicts < CONFLICT_RECHECKS => {
                conflicts += 1;
                tokio::time::sleep(CONFLICT_RECHECK_EVERY).await;
            }
            answer => break answer,
        }
    };
    match answer {
        Err(_) => session_not_found(id),
        Ok(Err(Refusal::Conflict)) => refuse(
            StatusCode::CONFLICT,
            "Conflict: only one standalone SSE stream is allowed per session",
            json!({ "sessionId": id }),
        ),
        Ok(Err(Refusal::UnknownEvent)) => refuse(
            StatusCode::BAD_REQUEST,
            "Bad Request: Last-Event-ID names no stream of this session",
            json!({ "header": "Last-Event-ID" }),
        ),
        Ok(Err(Refusal::Evicted)) => refuse(
            StatusCode::BAD_REQUEST,
            "Bad Request: events after Last-Event-ID are no longer kept; resuming would lose them",
            json!({ "header": "Last-Event-ID", "limit": ["replay_events", "replay_bytes", "replay_age"] }),
        ),
        // Only POSTs open streams for requests (and take budget).
        Ok(Err(Refusal::DuplicateId(_) | Refusal::Busy(_) | Refusal::NoBatches(_))) => {
            session_not_found(id)
        }
        Ok(Ok(attached)) => {
            // The standalone stream waits for nothing; a resumed request
            // stream carries its request's answer, so its session drains.
            let at_close = if attached.stream == STANDALONE {
                AtClose::End
            } else {
                drains(&attached.session)
            };
            let closing = closing.map(|Extension(c)| (c, at_close));
            stream_response(session, attached, Vec::new(), &http.config, closing)
        }
    }
}

/// Why a message could not be handed to a session.
pub(super) enum Undelivered {
    /// The session has ended.
    Gone,
    /// The session (or the server) holds its inbound budget's worth already.
    Busy(Spent),
    /// A batch, in a session whose version has none.
    NoBatches(ProtocolVersion),
}

/// Hands a message that opens no stream to the session's MCP session, with
/// its share of the session's inbound budget. An HTTP client is not made to
/// wait for room (its POST would hold its body meanwhile, however many it
/// sends): it is told to retry.
pub(super) async fn deliver(
    session: &ActorRef<HttpSessionMsg>,
    batch: bool,
    // What the bytes decode to, when the caller decoded them (legacy
    // messages are decoded by the session, which answers malformed ones
    // on the stream).
    message: Option<Incoming>,
    bytes: Vec<u8>,
    grant: Option<Arc<arbor_mcp::auth::Grant>>,
) -> Result<(), Undelivered> {
    let (reply, answer) = oneshot::channel();
    session
        .send(HttpSessionMsg::Touch { batch, reply })
        .await
        .map_err(|_| Undelivered::Gone)?;
    let (mcp, inbound) = match answer.await {
        Ok(Ok(touched)) => touched,
        Ok(Err(Refusal::NoBatches(version))) => return Err(Undelivered::NoBatches(version)),
        Ok(Err(_)) | Err(_) => return Err(Undelivered::Gone),
    };
    let received = inbound
        .try_admit(bytes)
        .map_err(|(_, spent)| Undelivered::Busy(spent))?;
    let received = match message {
        Some(message) => received.decoded(message),
        None => received,
    };
    mcp.send(SessionMsg::Incoming(received.authorized(grant)))
        .await
        .map_err(|_| Undelivered::Gone)
}

/// `DELETE /mcp`: ends a session.
pub(super) async fn delete_mcp(
    State(http): State<Http>,
    grant: Granted,
    headers: HeaderMap,
) -> Response {
    let id = match into_session(&headers) {
        Ok(id) => id,
        Err(refusal) => return *refusal,
    };
    if let Some(forbidden) = auth::session_refusal(&http, &grant, id) {
        return forbidden;
    }
    // Unregistered first: a request that comes now finds no session.
    let deleted = http
        .sessions
        .unregister(&id.to_string())
        .and_then(|p| ActorRef::<HttpSessionMsg>::from_process(&p));
    match deleted {
        Some(session) => {
            let _ = session.send_system(HttpSessionMsg::Delete);
            StatusCode::OK.into_response()
        }
        None => session_not_found(id),
    }
}
