//! WebSocket from the client's side: one JSON-RPC message per text frame,
//! the `mcp` subprotocol offered.

use std::sync::Arc;

use arbor_mcp::client::{BoxFuture, Connector, Inbox, Outgoing, Wire, DEFAULT_MAX_LINE};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Dials a WebSocket endpoint (e.g. `ws://127.0.0.1:8081/`).
#[derive(Clone, Debug)]
pub struct WsConnector {
    url: String,
    max_message: usize,
    local: Option<std::net::IpAddr>,
    /// Sent as `Authorization: Bearer …` on the upgrade.
    token: Option<String>,
    /// Whom `wss://` trusts; `None`: the system's roots.
    tls: Option<super::ClientTls>,
}

impl WsConnector {
    /// The endpoint at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        WsConnector {
            url: url.into(),
            max_message: DEFAULT_MAX_LINE,
            local: None,
            token: None,
            tls: None,
        }
    }

    /// Trusts (and shows) what `tls` says on `wss://`.
    pub fn tls(mut self, tls: super::ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sends `Authorization: Bearer token` on the upgrade request.
    pub fn bearer(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Dials from `addr` (a load generator spreads its connections over
    /// several loopback addresses, each with its own ephemeral ports).
    pub fn local_address(mut self, addr: std::net::IpAddr) -> Self {
        self.local = Some(addr);
        self
    }

    /// The largest message (and frame) taken from the server (default
    /// [`DEFAULT_MAX_LINE`], 16 MiB); past it the connection is given up
    /// and redialled.
    pub fn max_message_bytes(mut self, max: usize) -> Self {
        self.max_message = max;
        self
    }
}

impl Connector for WsConnector {
    fn connect(&self, inbox: Inbox) -> BoxFuture<'_, Result<Arc<dyn Wire>, String>> {
        Box::pin(async move {
            let mut request = self
                .url
                .as_str()
                .into_client_request()
                .map_err(|e| format!("{}: {e}", self.url))?;
            request
                .headers_mut()
                .insert("sec-websocket-protocol", HeaderValue::from_static("mcp"));
            if let Some(token) = &self.token {
                let value = HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|e| format!("token: {e}"))?;
                request.headers_mut().insert("authorization", value);
            }
            // Small buffers, as the server's: a client process may hold
            // thousands of connections (a gateway, a load generator), and
            // tungstenite's default zeroes 128 KiB for each.
            let limits = WebSocketConfig::default()
                .read_buffer_size(crate::ws::BUFFER)
                .write_buffer_size(crate::ws::BUFFER)
                .max_message_size(Some(self.max_message))
                .max_frame_size(Some(self.max_message));
            let (socket, _) = match self.local {
                None => tokio_tungstenite::connect_async_tls_with_config(
                    request,
                    Some(limits),
                    false,
                    self.tls.as_ref().map(super::ClientTls::websocket),
                )
                .await
                .map_err(|e| format!("{}: {e}", self.url))?,
                Some(local) => {
                    let stream = dial_from(local, request.uri())
                        .await
                        .map_err(|e| format!("{} from {local}: {e}", self.url))?;
                    tokio_tungstenite::client_async_with_config(
                        request,
                        MaybeTlsStream::Plain(stream),
                        Some(limits),
                    )
                    .await
                    .map_err(|e| format!("{}: {e}", self.url))?
                }
            };
            let (sink, mut stream) = socket.split();
            tokio::spawn(async move {
                let why = loop {
                    match stream.next().await {
                        Some(Ok(Frame::Text(text))) => {
                            if !inbox.deliver_json(text.as_bytes()).await {
                                return;
                            }
                        }
                        Some(Ok(Frame::Close(frame))) => {
                            break match frame {
                                Some(f) => format!("closed by the server: {} {}", f.code, f.reason),
                                None => "closed by the server".into(),
                            }
                        }
                        Some(Ok(_)) => {} // ping, pong, binary: not MCP
                        Some(Err(e)) => break format!("websocket: {e}"),
                        None => break "the server closed the connection".into(),
                    }
                };
                inbox.closed(why);
            });
            Ok(Arc::new(WsWire(Mutex::new(sink))) as Arc<dyn Wire>)
        })
    }
}

/// A TCP connection to `uri`'s host from `local`.
async fn dial_from(
    local: std::net::IpAddr,
    uri: &tokio_tungstenite::tungstenite::http::Uri,
) -> std::io::Result<TcpStream> {
    let host = uri.host().unwrap_or("localhost");
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("wss") {
            443
        } else {
            80
        });
    let stream = super::dial_from(local, &format!("{host}:{port}")).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

struct WsWire(Mutex<SplitSink<Socket, Frame>>);

impl Wire for WsWire {
    fn send(&self, out: Outgoing) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.0
                .lock()
                .await
                .send(Frame::text(out.message.to_json()))
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.0.lock().await.close().await;
        })
    }
}
