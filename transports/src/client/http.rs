//! Streamable HTTP, both eras, from the client's side.
//!
//! Every message is a POST. A request's answer comes back as JSON or as an
//! SSE stream carrying the server's notifications and requests first; a
//! notification or response is acknowledged with 202. In the handshake era
//! the `initialize` answer names the session (`Mcp-Session-Id`), sent on
//! every later message with `MCP-Protocol-Version`; a GET stream then
//! carries what the server sends unprompted, and DELETE ends the session.
//! A stream that ends before its answer is resumed with GET and
//! `Last-Event-ID` after the server's `retry` delay. In 2026-07-28 every
//! POST carries `Mcp-Method`, `Mcp-Name` and the tool's `Mcp-Param-*`
//! headers beside its `_meta` envelope.
//!
//! One [`reqwest::Client`] per connector pools the connections: a client's
//! concurrent requests share keep-alive connections to its server.

use std::sync::Arc;
use std::time::Duration;

use arbor_mcp::client::{
    BoxFuture, ClientError, Connector, Inbox, Outgoing, Wire, DEFAULT_MAX_LINE,
};
use arbor_mcp::jsonrpc::{classify, Id, Message};
use arbor_mcp::version::{Era, ProtocolVersion};
use arbor_mcp::Method;
use base64::Engine as _;
use futures_util::StreamExt;
use parking_lot::Mutex;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use sse_stream::SseStream;
use tokio::task::AbortHandle;

use super::bounded::{self, TooLarge};
use super::oauth::{Challenge, OAuth};

/// How many times a stream that ended before its answer is resumed.
const MAX_RESUMES: u32 = 5;
/// The delay before resuming a stream when the server named none.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
/// How long the GET stream may take to open before the client goes on.
const GET_STREAM_WAIT: Duration = Duration::from_secs(5);
/// How much of an error body is kept for the error.
const ERROR_BODY_BYTES: usize = 2048;

/// Dials a Streamable HTTP endpoint (both eras).
#[derive(Clone, Debug)]
pub struct HttpConnector {
    url: String,
    http: reqwest::Client,
    headers: HeaderMap,
    oauth: Option<Arc<OAuth>>,
    max_message: usize,
}

impl HttpConnector {
    /// The MCP endpoint at `url` (e.g. `http://127.0.0.1:8080/mcp`).
    pub fn new(url: impl Into<String>) -> Self {
        HttpConnector {
            url: url.into(),
            http: reqwest::Client::new(),
            headers: HeaderMap::new(),
            oauth: None,
            max_message: DEFAULT_MAX_LINE,
        }
    }

    /// The largest answer body or SSE event taken from the server
    /// (default [`DEFAULT_MAX_LINE`], 16 MiB); past it the request fails
    /// with [`ClientError::Transport`] (on the standalone GET stream, the
    /// connection is given up and redialled).
    pub fn max_message_bytes(mut self, max: usize) -> Self {
        self.max_message = max;
        self
    }

    /// Answers 401 and 403 challenges with `oauth` (shared by every
    /// connection given the same one).
    pub fn oauth(mut self, oauth: Arc<OAuth>) -> Self {
        self.oauth = Some(oauth);
        self
    }

    /// Sends through `http` instead of a client of its own: its pool,
    /// timeouts and local address (a load generator spreads connections
    /// over several loopback addresses, each with its own ephemeral ports).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// Sends `name: value` on every request (e.g. `Authorization`).
    ///
    /// # Errors
    /// When the name or value is not a valid header.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, ClientError> {
        let bad = |e: String| ClientError::Transport(format!("header {name}: {e}"));
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let value = HeaderValue::from_str(value).map_err(|e| bad(e.to_string()))?;
        self.headers.insert(name, value);
        Ok(self)
    }
}

impl Connector for HttpConnector {
    fn connect(&self, inbox: Inbox) -> BoxFuture<'_, Result<Arc<dyn Wire>, String>> {
        let server = match reqwest::Url::parse(&self.url) {
            Ok(server) => server,
            Err(e) => {
                let why = format!("{}: {e}", self.url);
                return Box::pin(async move { Err(why) });
            }
        };
        let wire = HttpWire(Arc::new(Shared {
            oauth: self.oauth.clone(),
            server,
            url: self.url.clone(),
            http: self.http.clone(),
            headers: self.headers.clone(),
            max_message: self.max_message,
            inbox,
            session: Mutex::new(None),
            get_stream: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
            version: Mutex::new(None),
        }));
        Box::pin(async move { Ok(Arc::new(wire) as Arc<dyn Wire>) })
    }
}

struct Shared {
    oauth: Option<Arc<OAuth>>,
    /// The endpoint, parsed once (DPoP proofs and OAuth discovery use it).
    server: reqwest::Url,
    url: String,
    http: reqwest::Client,
    headers: HeaderMap,
    /// The largest body or SSE event taken.
    max_message: usize,
    inbox: Inbox,
    /// The handshake-era session, once `initialize` named one.
    session: Mutex<Option<HeaderValue>>,
    /// The standalone GET stream, once opened.
    get_stream: Mutex<Option<AbortHandle>>,
    /// The POSTs of requests still reading their answers: aborted with the
    /// wire, so that a closed client leaves no stream open (a listen
    /// stream's would keep its request running on the server).
    requests: Mutex<Vec<AbortHandle>>,
    /// The version agreed, for the GET requests.
    version: Mutex<Option<ProtocolVersion>>,
}

struct HttpWire(Arc<Shared>);

impl Drop for HttpWire {
    fn drop(&mut self) {
        self.0.abort_streams();
    }
}

/// A header value as SEP-2243 asks: as is when it is printable ASCII
/// without surrounding whitespace, else `=?base64?…?=`.
fn header_value(value: &str) -> Option<HeaderValue> {
    let plain = value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !value.starts_with(' ')
        && !value.ends_with(' ')
        && !value.starts_with("=?base64?");
    let text = if plain {
        value.to_string()
    } else {
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value)
        )
    };
    HeaderValue::from_str(&text).ok()
}

impl Shared {
    /// The configured headers, with the current access token presented for
    /// a `method` request.
    fn base_headers(&self, method: &str) -> HeaderMap {
        let mut headers = self.headers.clone();
        if let Some(oauth) = &self.oauth {
            for (name, value) in oauth.authorization(method, &self.server) {
                headers.insert(name, value);
            }
        }
        headers
    }

    /// After a 401 or 403: a token that may satisfy the server, or why
    /// there is none. `None` when the client has no OAuth.
    async fn authorize(&self, response: &Response, sent: &HeaderMap) -> Option<Result<(), String>> {
        let oauth = self.oauth.as_ref()?;
        let challenge = response
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(Challenge::parse)
            .unwrap_or_default();
        let used = sent
            .get(reqwest::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("DPoP "))
            });
        let nonce = response
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Some(oauth.challenged(&self.server, used, challenge, nonce).await)
    }

    fn post_headers(&self, out: &Outgoing) -> HeaderMap {
        let mut headers = self.base_headers("POST");
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        if let Some(version) = out.version {
            headers.insert(
                "mcp-protocol-version",
                HeaderValue::from_static(version.as_str()),
            );
        }
        if let Some(session) = self.session.lock().clone() {
            headers.insert("mcp-session-id", session);
        }
        let modern = out.version.map(ProtocolVersion::era) == Some(Era::Modern);
        if let (true, Message::Notification(notification)) = (modern, &out.message) {
            if let Some(method) = header_value(&notification.method) {
                headers.insert("mcp-method", method);
            }
        }
        if let (true, Message::Request(request)) = (modern, &out.message) {
            if let Some(method) = header_value(&request.method) {
                headers.insert("mcp-method", method);
            }
            let named_by = request
                .method
                .parse::<Method>()
                .ok()
                .and_then(Method::named_by);
            let name = named_by
                .and_then(|field| request.params.as_ref()?.get(field)?.as_str())
                .and_then(header_value);
            if let Some(name) = name {
                headers.insert("mcp-name", name);
            }
            for (param, value) in &out.param_headers {
                let name = HeaderName::from_bytes(format!("mcp-param-{param}").as_bytes());
                if let (Ok(name), Some(value)) = (name, header_value(value)) {
                    headers.insert(name, value);
                }
            }
        }
        headers
    }

    /// POSTs one message; for a request, reads its answer.
    /// Ends the GET stream and every request still reading its answer.
    fn abort_streams(&self) {
        if let Some(stream) = self.get_stream.lock().take() {
            stream.abort();
        }
        for request in self.requests.lock().drain(..) {
            request.abort();
        }
    }

    async fn exchange(self: Arc<Self>, out: Outgoing) {
        let awaiting = match &out.message {
            Message::Request(r) => Some(r.id.clone()),
            _ => None,
        };
        let is_initialize = matches!(&out.message, Message::Request(r) if r.method == "initialize");
        let (response, had_session) = loop {
            let headers = self.post_headers(&out);
            let had_session = headers.contains_key("mcp-session-id");
            let sent = self
                .http
                .post(&self.url)
                .headers(headers.clone())
                .body(out.message.to_json())
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(e) => {
                    // The server is not there: the connection is lost, and
                    // the client redials.
                    self.inbox.closed(format!("POST {}: {e}", self.url));
                    return;
                }
            };
            let status = response.status();
            if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
                if status.is_success() {
                    if let Some(oauth) = &self.oauth {
                        oauth.accepted();
                    }
                }
                break (response, had_session);
            }
            match self.authorize(&response, &headers).await {
                Some(Ok(())) => continue,
                Some(Err(why)) => {
                    match awaiting {
                        Some(id) => self.inbox.fail(id, ClientError::Unauthorized(why)),
                        None => tracing::warn!(%why, "a notification was refused: not authorized"),
                    }
                    return;
                }
                None => break (response, had_session),
            }
        };
        if is_initialize && response.status().is_success() {
            if let Some(session) = response.headers().get("mcp-session-id") {
                *self.session.lock() = Some(session.clone());
            }
        }
        let status = response.status();
        if status == StatusCode::NOT_FOUND && had_session {
            self.inbox
                .closed("the server no longer knows the session (404)");
            return;
        }
        if !status.is_success() {
            return self.refused(response, awaiting).await;
        }
        let Some(id) = awaiting else {
            return; // 202 for a notification or a response
        };
        if is_event_stream(&response) {
            self.clone().read_stream(response, Some(id)).await;
        } else {
            match bounded::body(response, self.max_message).await {
                Ok(body) => {
                    self.inbox.deliver_json(&body).await;
                }
                Err(e) => self.inbox.fail(id, ClientError::Transport(e.to_string())),
            }
        }
    }

    /// An error status: the JSON-RPC error in its body if there is one,
    /// else the status and the start of the body.
    async fn refused(&self, response: Response, awaiting: Option<Id>) {
        let status = response.status().as_u16();
        let body = bounded::body(response, self.max_message)
            .await
            .unwrap_or_default();
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| classify(v).ok());
        match (message, awaiting) {
            (Some(Message::Response(mut answer)), Some(id)) => {
                // An error about an unreadable request names no id: it is
                // this request's.
                answer.id = Some(id);
                self.inbox.deliver(Message::Response(answer)).await;
            }
            (_, Some(id)) => {
                let mut text = String::from_utf8_lossy(&body).into_owned();
                text.truncate(ERROR_BODY_BYTES);
                self.inbox
                    .fail(id, ClientError::Http { status, body: text });
            }
            (_, None) => {
                tracing::warn!(status, "the server refused a notification or response");
            }
        }
    }

    /// Reads an SSE stream: every event's data is a message. A stream that
    /// ends before `awaiting`'s answer is resumed with `Last-Event-ID`.
    async fn read_stream(self: Arc<Self>, mut response: Response, awaiting: Option<Id>) {
        let mut last_event: Option<String> = None;
        let mut retry = DEFAULT_RETRY;
        let mut resumes = 0;
        loop {
            let mut events =
                SseStream::from_bytes_stream(bounded::events(response, self.max_message));
            while let Some(event) = events.next().await {
                let event = match event {
                    Ok(event) => event,
                    Err(e) => match bounded::is_too_large(&e) {
                        // Resuming would only replay it: give up instead.
                        Some(too_large) => return self.gave_up(awaiting, too_large),
                        None => break,
                    },
                };
                if let Some(id) = event.id {
                    last_event = Some(id);
                }
                if let Some(ms) = event.retry {
                    retry = Duration::from_millis(ms);
                }
                let Some(data) = event.data.filter(|d| !d.trim().is_empty()) else {
                    continue;
                };
                let message = serde_json::from_str::<Value>(&data)
                    .ok()
                    .and_then(|v| classify(v).ok());
                let Some(message) = message else {
                    tracing::warn!("dropped an unreadable SSE event from the server");
                    continue;
                };
                let answers = matches!((&message, &awaiting),
                    (Message::Response(r), Some(id)) if r.id.as_ref() == Some(id));
                if !self.inbox.deliver(message).await {
                    return;
                }
                if answers {
                    return;
                }
            }
            // The stream ended. A POST's stream is resumed only when the
            // server gave it event ids; the GET stream always is, while the
            // session lives.
            let resumable = last_event.is_some() || awaiting.is_none();
            if !resumable || resumes >= MAX_RESUMES {
                if let Some(id) = awaiting {
                    self.inbox.fail(
                        id,
                        ClientError::Disconnected("the stream ended before the answer".into()),
                    );
                }
                return;
            }
            resumes += 1;
            tokio::time::sleep(retry).await;
            match self.resume(last_event.as_deref()).await {
                Ok(next) => {
                    response = next;
                    if awaiting.is_none() {
                        resumes = 0;
                    }
                }
                Err(error) => {
                    match awaiting {
                        Some(id) => self.inbox.fail(id, error),
                        None => tracing::debug!(%error, "the GET stream is closed"),
                    }
                    return;
                }
            }
        }
    }

    /// A stream sent an event past the bound: the request it answers fails;
    /// on the standalone stream, whatever it carried is lost, so the
    /// connection is given up (and redialled).
    fn gave_up(&self, awaiting: Option<Id>, too_large: TooLarge) {
        match awaiting {
            Some(id) => self
                .inbox
                .fail(id, ClientError::Transport(too_large.to_string())),
            None => self.inbox.closed(too_large.to_string()),
        }
    }

    /// GET with `Last-Event-ID`: the rest of a stream, or the standalone one.
    async fn resume(&self, last_event: Option<&str>) -> Result<Response, ClientError> {
        let mut headers = self.base_headers("GET");
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        if let Some(version) = *self.version.lock() {
            headers.insert(
                "mcp-protocol-version",
                HeaderValue::from_static(version.as_str()),
            );
        }
        if let Some(session) = self.session.lock().clone() {
            headers.insert("mcp-session-id", session);
        }
        if let Some(id) = last_event.and_then(|id| HeaderValue::from_str(id).ok()) {
            headers.insert("last-event-id", id);
        }
        let response = self
            .http
            .get(&self.url)
            .headers(headers)
            .send()
            .await
            .map_err(|e| ClientError::Transport(format!("GET {}: {e}", self.url)))?;
        if response.status().is_success() && is_event_stream(&response) {
            Ok(response)
        } else {
            Err(ClientError::Http {
                status: response.status().as_u16(),
                body: String::new(),
            })
        }
    }

    /// Opens the handshake era's GET stream once the session is known, and
    /// waits until the server has answered it (or [`GET_STREAM_WAIT`]
    /// passed): what the client sends next finds the stream there, so that
    /// a server request sent on it is not missed.
    async fn open_get_stream(self: &Arc<Self>, version: Option<ProtocolVersion>) {
        let handshake = version.map(ProtocolVersion::era) == Some(Era::Handshake);
        if !handshake || self.session.lock().is_none() || self.get_stream.lock().is_some() {
            return;
        }
        // 405: the server offers no GET stream, which is allowed.
        let Ok(Ok(response)) = tokio::time::timeout(GET_STREAM_WAIT, self.resume(None)).await
        else {
            return;
        };
        let task = tokio::spawn(self.clone().read_stream(response, None));
        *self.get_stream.lock() = Some(task.abort_handle());
    }
}

fn is_event_stream(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

impl Wire for HttpWire {
    fn send(&self, out: Outgoing) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let shared = self.0.clone();
            if out.version.is_some() {
                *shared.version.lock() = out.version;
            }
            let initialized = matches!(&out.message,
                Message::Notification(n) if n.method == "notifications/initialized");
            let version = out.version;
            match &out.message {
                // A request's answer may take long: it is read off the
                // client process, which goes on.
                Message::Request(_) => {
                    let task = tokio::spawn(shared.clone().exchange(out));
                    let mut requests = shared.requests.lock();
                    requests.retain(|r| !r.is_finished());
                    requests.push(task.abort_handle());
                }
                // A notification or response is acknowledged at once; waiting
                // keeps them in order with what follows.
                _ => shared.clone().exchange(out).await,
            }
            if initialized {
                shared.open_get_stream(version).await;
            }
            Ok(())
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.0.abort_streams();
            let Some(session) = self.0.session.lock().take() else {
                return;
            };
            let mut headers = self.0.base_headers("DELETE");
            headers.insert("mcp-session-id", session);
            let _ = self
                .0
                .http
                .delete(&self.0.url)
                .headers(headers)
                .timeout(Duration::from_secs(5))
                .send()
                .await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_plain_or_base64() {
        let sent = |v: &str| header_value(v).map(|h| h.to_str().unwrap_or("?").to_string());
        assert_eq!(sent("tools/call").as_deref(), Some("tools/call"));
        assert_eq!(sent("héllo").as_deref(), Some("=?base64?aMOpbGxv?="));
        assert_eq!(sent(" padded").as_deref(), Some("=?base64?IHBhZGRlZA==?="));
        assert_eq!(
            sent("tab\there").as_deref(),
            Some("=?base64?dGFiCWhlcmU=?=")
        );
        // An empty value is a header with no value, not an absent one.
        assert_eq!(sent("").as_deref(), Some(""));
    }
}
