//! HTTP requests for another node's sessions, carried over NATS
//! ([`arbor_transports::http::forward`]).
//!
//! Each node answers on `arbor.<cluster>.http.<node>`. A request goes there
//! whole, with a fresh inbox to reply to; the owner serves it through its
//! own routes and streams the response back on the inbox: a head (status,
//! headers), body chunks as they come (an SSE stream stays open as long as
//! the client keeps it), and an end. A client that goes away stops the
//! owner's stream (`<inbox>.cancel`). No node answering (NATS's "no
//! responders") means the owner is gone.

use std::time::Duration;

use arbor_transports::http::forward::{Forward, LocalHttp, Unforwarded};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

/// The most request body carried (NATS's default message limit is 1 MiB,
/// and base64 makes it a third bigger).
const MAX_BODY: usize = 700 * 1024;
/// Response body chunks, at most.
const CHUNK: usize = 256 * 1024;
/// How long the owner may take to start answering.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// While a response streams, each side says it is still there this often
/// (the owner with an empty `ping` part, the forwarder on
/// `<inbox>.alive`)...
const ALIVE_EVERY: Duration = Duration::from_secs(10);
/// ...and takes the other for gone after this long without a word: a
/// forwarded stream whose other end died ends.
const GONE_AFTER: Duration = Duration::from_secs(35);
/// The NATS header that says which part of a response a message is.
const PART: &str = "Arbor-Part";

/// A request on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct WireRequest {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// A response's head on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct WireHead {
    status: u16,
    headers: Vec<(String, String)>,
}

/// The cluster's HTTP forwarding, over NATS.
#[derive(Debug)]
pub(crate) struct NatsForward {
    client: async_nats::Client,
    cluster: String,
    node: String,
    serving: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl NatsForward {
    pub(crate) fn new(client: async_nats::Client, cluster: String, node: String) -> Self {
        NatsForward {
            client,
            cluster,
            node,
            serving: parking_lot::Mutex::new(None),
        }
    }

    fn subject(&self, node: &str) -> String {
        format!("arbor.{}.http.{node}", self.cluster)
    }
}

impl Drop for NatsForward {
    fn drop(&mut self) {
        if let Some(task) = self.serving.lock().take() {
            task.abort();
        }
    }
}

fn headers_of(headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

fn part(message: &async_nats::Message) -> Option<&str> {
    message.headers.as_ref()?.get(PART).map(|v| v.as_str())
}

fn marked(part: &str) -> async_nats::HeaderMap {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(PART, part);
    headers
}

impl Forward for NatsForward {
    fn node(&self) -> &str {
        &self.node
    }

    fn serve_here(&self, local: LocalHttp) {
        let (client, subject) = (self.client.clone(), self.subject(&self.node));
        let task = tokio::spawn(async move {
            let mut requests = match client.subscribe(subject).await {
                Ok(requests) => requests,
                Err(e) => {
                    tracing::error!(target: "arbor::cluster", error = %e, "cannot take forwarded requests");
                    return;
                }
            };
            while let Some(message) = requests.next().await {
                tokio::spawn(answer(client.clone(), local.clone(), message));
            }
        });
        if let Some(old) = self.serving.lock().replace(task) {
            old.abort();
        }
    }

    fn forward(
        &self,
        node: &str,
        request: Request,
    ) -> BoxFuture<'static, Result<Response, Unforwarded>> {
        let (client, subject) = (self.client.clone(), self.subject(node));
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, MAX_BODY)
                .await
                .map_err(|_| Unforwarded::TooLarge(MAX_BODY))?;
            let wire = WireRequest {
                method: parts.method.to_string(),
                uri: parts.uri.to_string(),
                headers: headers_of(&parts.headers),
                body: STANDARD.encode(&body),
            };
            let payload =
                serde_json::to_vec(&wire).map_err(|e| Unforwarded::Failed(e.to_string()))?;
            let failed = |e: String| Unforwarded::Failed(e);
            let inbox = client.new_inbox();
            let mut replies = client
                .subscribe(inbox.clone())
                .await
                .map_err(|e| failed(e.to_string()))?;
            client
                .publish_with_reply(subject, inbox.clone(), payload.into())
                .await
                .map_err(|e| failed(e.to_string()))?;
            let first = tokio::time::timeout(HEAD_TIMEOUT, replies.next())
                .await
                .map_err(|_| Unforwarded::Timeout)?
                .ok_or_else(|| failed("the cluster connection closed".into()))?;
            if first.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                return Err(Unforwarded::OwnerGone);
            }
            let head: WireHead = serde_json::from_slice(&first.payload)
                .map_err(|e| failed(format!("the owner's answer: {e}")))?;
            let mut response = Response::builder()
                .status(StatusCode::from_u16(head.status).unwrap_or(StatusCode::BAD_GATEWAY));
            for (k, v) in head.headers {
                if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                    response = response.header(k, v);
                }
            }
            // Dropped with the body (the client went away): the owner
            // stops its stream.
            let alive = {
                let (client, subject) = (client.clone(), format!("{inbox}.alive"));
                tokio::spawn(async move {
                    let mut every = tokio::time::interval(ALIVE_EVERY);
                    loop {
                        every.tick().await;
                        let _ = client.publish(subject.clone(), bytes::Bytes::new()).await;
                    }
                })
            };
            let cancel = Cancel {
                client: client.clone(),
                subject: format!("{inbox}.cancel"),
                armed: true,
                alive,
            };
            let body = futures_util::stream::unfold(
                (replies, cancel),
                |(mut replies, cancel)| async move {
                    let message = loop {
                        // Nothing from the owner for this long: it is gone.
                        let message = tokio::time::timeout(GONE_AFTER, replies.next())
                            .await
                            .ok()??;
                        if part(&message) != Some("ping") {
                            break message;
                        }
                    };
                    match part(&message) {
                        Some("body") => {
                            Some((Ok::<_, std::io::Error>(message.payload), (replies, cancel)))
                        }
                        _ => {
                            cancel.done();
                            None
                        }
                    }
                },
            );
            response
                .body(Body::from_stream(body))
                .map_err(|e| failed(e.to_string()))
        })
    }
}

/// Tells the owner to stop when the forwarded response is dropped early.
struct Cancel {
    client: async_nats::Client,
    subject: String,
    armed: bool,
    /// Tells the owner this side is still there; stopped with this.
    alive: JoinHandle<()>,
}

impl Cancel {
    /// The response ended on its own: nothing to stop.
    fn done(mut self) {
        self.armed = false;
    }
}

impl Drop for Cancel {
    fn drop(&mut self) {
        self.alive.abort();
        if !self.armed {
            return;
        }
        let (client, subject) = (self.client.clone(), std::mem::take(&mut self.subject));
        // Outside a runtime (a body dropped at exit) nothing is told: the
        // owner stops on its own once this side stays silent.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = client.publish(subject, bytes::Bytes::new()).await;
            });
        }
    }
}

/// Serves one forwarded request here and streams its response back.
async fn answer(client: async_nats::Client, local: LocalHttp, message: async_nats::Message) {
    let Some(reply) = message.reply.clone() else {
        return;
    };
    let reply = reply.to_string();
    let Some(request) = serde_json::from_slice::<WireRequest>(&message.payload)
        .ok()
        .and_then(into_request)
    else {
        let head = WireHead {
            status: 400,
            headers: Vec::new(),
        };
        let _ = client
            .publish_with_headers(
                reply.clone(),
                marked("head"),
                serde_json::to_vec(&head).unwrap_or_default().into(),
            )
            .await;
        let _ = client
            .publish_with_headers(reply, marked("end"), bytes::Bytes::new())
            .await;
        return;
    };
    // `<reply>.cancel` (the client went away) and `<reply>.alive`.
    let Ok(mut forwarder) = client.subscribe(format!("{reply}.*")).await else {
        return;
    };
    // A client gone before the answer starts stops the work, as a dropped
    // request does here.
    let cancelled = async {
        while let Some(message) = forwarder.next().await {
            if message.subject.ends_with(".cancel") {
                return;
            }
        }
    };
    let response = tokio::select! {
        response = local.serve(request) => response,
        () = cancelled => return,
    };
    let (parts, body) = response.into_parts();
    let head = WireHead {
        status: parts.status.as_u16(),
        headers: headers_of(&parts.headers),
    };
    let Ok(head) = serde_json::to_vec(&head) else {
        return;
    };
    if client
        .publish_with_headers(reply.clone(), marked("head"), head.into())
        .await
        .is_err()
    {
        return;
    }
    let mut body = body.into_data_stream();
    let mut heard = tokio::time::Instant::now();
    let mut ping = tokio::time::interval(ALIVE_EVERY);
    loop {
        tokio::select! {
            chunk = body.next() => match chunk {
                Some(Ok(chunk)) => {
                    for piece in chunk.chunks(CHUNK) {
                        let piece = bytes::Bytes::copy_from_slice(piece);
                        if client.publish_with_headers(reply.clone(), marked("body"), piece).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Err(_)) | None => break,
            },
            message = forwarder.next() => match message {
                Some(message) if message.subject.ends_with(".cancel") => return,
                Some(_) => heard = tokio::time::Instant::now(),
                None => return,
            },
            _ = ping.tick() => {
                // The forwarder has been silent too long: it is gone.
                if heard.elapsed() > GONE_AFTER {
                    return;
                }
                if client.publish_with_headers(reply.clone(), marked("ping"), bytes::Bytes::new()).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = client
        .publish_with_headers(reply, marked("end"), bytes::Bytes::new())
        .await;
}

fn into_request(wire: WireRequest) -> Option<Request> {
    let body = STANDARD.decode(wire.body).ok()?;
    let mut request = Request::builder()
        .method(Method::from_bytes(wire.method.as_bytes()).ok()?)
        .uri(wire.uri);
    for (k, v) in wire.headers {
        request = request.header(k, v);
    }
    request.body(Body::from(body)).ok()
}
