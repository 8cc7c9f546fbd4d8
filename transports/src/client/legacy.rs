//! The legacy HTTP+SSE transport (2024-11-05) from the client's side: a GET
//! opens the event stream, whose first `endpoint` event names where to POST;
//! every answer comes back on the stream.

use std::sync::Arc;

use arbor_mcp::client::{BoxFuture, Connector, Inbox, Outgoing, Wire, DEFAULT_MAX_LINE};
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use sse_stream::SseStream;

use super::bounded;

/// Dials a legacy SSE endpoint (e.g. `http://127.0.0.1:8080/sse`).
#[derive(Clone, Debug)]
pub struct LegacySseConnector {
    url: String,
    http: reqwest::Client,
    /// Sent on the GET and every POST (a bearer token).
    headers: reqwest::header::HeaderMap,
    max_message: usize,
}

impl LegacySseConnector {
    /// The event stream at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        LegacySseConnector {
            url: url.into(),
            http: reqwest::Client::new(),
            headers: reqwest::header::HeaderMap::new(),
            max_message: DEFAULT_MAX_LINE,
        }
    }

    /// Sends through `http` (its TLS trust, pool and timeouts).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// Sends `Authorization: Bearer token` on the stream's GET and every
    /// POST.
    ///
    /// # Errors
    /// A token that cannot be a header value.
    pub fn bearer(mut self, token: &str) -> Result<Self, String> {
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|e| format!("token: {e}"))?;
        self.headers.insert(reqwest::header::AUTHORIZATION, value);
        Ok(self)
    }

    /// The largest event taken from the server (default
    /// [`DEFAULT_MAX_LINE`], 16 MiB); past it the connection is given up
    /// (a legacy stream cannot resume) and redialled.
    pub fn max_message_bytes(mut self, max: usize) -> Self {
        self.max_message = max;
        self
    }
}

impl Connector for LegacySseConnector {
    fn connect(&self, inbox: Inbox) -> BoxFuture<'_, Result<Arc<dyn Wire>, String>> {
        Box::pin(async move {
            let base = reqwest::Url::parse(&self.url).map_err(|e| format!("{}: {e}", self.url))?;
            let response = self
                .http
                .get(base.clone())
                .headers(self.headers.clone())
                .header(ACCEPT, "text/event-stream")
                .send()
                .await
                .map_err(|e| format!("GET {}: {e}", self.url))?;
            if !response.status().is_success() {
                return Err(format!("GET {}: {}", self.url, response.status()));
            }
            let mut events =
                SseStream::from_bytes_stream(bounded::events(response, self.max_message));
            // The first event names the endpoint to POST to.
            let endpoint = loop {
                match events.next().await {
                    Some(Ok(event)) if event.event.as_deref() == Some("endpoint") => {
                        let path = event.data.unwrap_or_default();
                        break base
                            .join(path.trim())
                            .map_err(|e| format!("endpoint {path:?}: {e}"))?;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(format!("reading {}: {e}", self.url)),
                    None => return Err(format!("{} ended before naming its endpoint", self.url)),
                }
            };
            tokio::spawn(async move {
                while let Some(event) = events.next().await {
                    let event = match event {
                        Ok(event) => event,
                        Err(e) => match bounded::is_too_large(&e) {
                            Some(too_large) => return inbox.closed(too_large.to_string()),
                            None => break,
                        },
                    };
                    let Some(data) = event.data.filter(|d| !d.trim().is_empty()) else {
                        continue;
                    };
                    if !inbox.deliver_json(data.as_bytes()).await {
                        return;
                    }
                }
                inbox.closed("the event stream ended");
            });
            Ok(Arc::new(LegacyWire {
                endpoint,
                http: self.http.clone(),
                headers: self.headers.clone(),
            }) as Arc<dyn Wire>)
        })
    }
}

struct LegacyWire {
    endpoint: reqwest::Url,
    http: reqwest::Client,
    headers: reqwest::header::HeaderMap,
}

impl Wire for LegacyWire {
    fn send(&self, out: Outgoing) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let response = self
                .http
                .post(self.endpoint.clone())
                .headers(self.headers.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(out.message.to_json())
                .send()
                .await
                .map_err(|e| format!("POST {}: {e}", self.endpoint))?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(format!("POST {}: {}", self.endpoint, response.status()))
            }
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
