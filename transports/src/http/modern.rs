//! 2026-07-28 over HTTP: sessionless POSTs, each checked against its
//! headers and served by a request process of its own.

use super::*;

/// A 2026-07-28 POST: checked, then served by a request process of its own.
pub(super) async fn post_modern(
    http: Http,
    headers: HeaderMap,
    message: Incoming,
    bytes: Vec<u8>,
    client: Option<IpAddr>,
    closing: Option<Closing>,
    Granted(grant): Granted,
) -> Response {
    let request = match message {
        Incoming::Single(Message::Request(request)) => request,
        Incoming::Single(Message::Notification(_)) => return StatusCode::ACCEPTED.into_response(),
        Incoming::Single(Message::Response(_)) | Incoming::Batch(_) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                ErrorObject::new(
                    code::INVALID_REQUEST,
                    "2026-07-28 accepts one request or notification per POST",
                ),
            )
        }
    };
    let version = match envelope_version(request.params.as_ref()) {
        Ok(version) => version,
        Err(error) => return rpc_error(StatusCode::BAD_REQUEST, Some(request.id), error),
    };
    if let Err(error) = headers::check(&headers, &request, version, &http.server) {
        return rpc_error(StatusCode::BAD_REQUEST, Some(request.id), error);
    }
    if let Some(isolation) = http.request_sup.isolation() {
        return isolated(&isolation, Some(request.id));
    }
    let listen = request.method == Method::SubscriptionsListen.as_str();
    let id = request.id.clone();
    let max_inbound_bytes = http.server.config().max_inbound_bytes;
    // Started in a task the client's going cannot cut short: a request
    // process started and never handed over would live for ever.
    let (handover, handed) = oneshot::channel();
    let request_sup = http.request_sup.clone();
    tokio::spawn(async move {
        let started = request_sup.start_child(client).await;
        let Some((session, received)) = started.ok().and_then(Started::running) else {
            return;
        };
        // The body is held until the request is done with it: it counts
        // against the server's memory budget through the request's own
        // account, and finding no room is 429 (never a wait: the POST would
        // hold its body meanwhile).
        let admitted = InboundBudget::new(max_inbound_bytes)
            .with_memory(received.memory())
            .try_admit(bytes);
        let message = match admitted {
            // Decoded once, here: the request process does not parse it again.
            Ok(admitted) => admitted
                .decoded(Incoming::Single(Message::Request(request)))
                .authorized(grant),
            Err((_, spent)) => {
                session.process().stop(ExitReason::Normal);
                let _ = handover.send(Err(spent));
                return;
            }
        };
        if session.send(SessionMsg::Incoming(message)).await.is_err() {
            return;
        }
        if !listen {
            // One request: the process ends once it has answered.
            let _ = session.send_system(SessionMsg::Drain);
        }
        if let Err(Ok((session, _))) = handover.send(Ok((session, received))) {
            // The client has gone: its request is cancelled.
            session.process().stop(ExitReason::Normal);
        }
    });
    let (session, mut received) = match handed.await {
        Ok(Ok(started)) => started,
        Ok(Err(spent)) => return busy(&http, spent),
        Err(_) => {
            return rpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(id.clone()),
                ErrorObject::internal("the request could not start"),
            )
        }
    };
    let process = session.process();
    // The client closing its stream cancels the request.
    let cancel = OnDrop::new(move || process.stop(ExitReason::Normal));
    // At the connection's shutdown a listen ends with its result; a request
    // drains (answered, or cut short with an error at the drain timeout).
    let at_close = {
        let session = session.clone();
        move || {
            if listen {
                let _ = session.send_system(SessionMsg::Drain);
            } else {
                let _ = session.send_system(SessionMsg::Shutdown);
            }
        }
    };
    let keep_alive = http.config.sse_keep_alive;
    let (first, closing) = {
        let waiting = async {
            if keep_alive.is_zero() {
                Ok(received.recv_frame().await)
            } else {
                tokio::time::timeout(keep_alive, received.recv_frame()).await
            }
        };
        tokio::pin!(waiting);
        let closed = async {
            match closing.clone() {
                Some(closing) => closing.closed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            first = &mut waiting => (first, closing),
            () = closed => {
                at_close.clone()();
                (waiting.await, None)
            }
        }
    };
    match first {
        Ok(Some(frame)) if frame.kind == FrameKind::Response => {
            let status = frame.error.map_or(StatusCode::OK, status_for);
            drop(cancel);
            json_response(status, frame.json)
        }
        Ok(None) => rpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(id.clone()),
            ErrorObject::internal("the request ended without an answer"),
        ),
        // Notifications first, or a slow answer: stream.
        first => {
            let first: Vec<SseEvent> = match first {
                Ok(Some(frame)) => vec![SseEvent::data(Arc::from(frame.json))],
                _ => Vec::new(),
            };
            let (tx, events) = arbor_runtime::channel::bounded(http.config.stream_buffer.max(1));
            tokio::spawn(async move {
                while let Some(frame) = received.recv_frame().await {
                    let event = Box::new(SseEvent::data(Arc::from(frame.json)));
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
            });
            let closing = closing.map(|c| (c, AtClose::Drain(Box::new(at_close))));
            sse_response(first, events, keep_alive, cancel, closing)
        }
    }
}
