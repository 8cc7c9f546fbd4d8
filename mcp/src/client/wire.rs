//! What a client needs of a transport: a [`Connector`] that dials, giving a
//! [`Wire`] to send on, and an [`Inbox`] it delivers what arrives to.
//!
//! Line transports (stdio, TCP, an in-memory pipe) are one [`LineConnector`]
//! over any byte stream; HTTP, legacy SSE and WebSocket live in
//! `arbor_transports::client`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use arbor_runtime::ActorRef;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

use super::process::ClientMsg;
use crate::jsonrpc::{classify, Message};
use crate::version::ProtocolVersion;

/// A boxed future, as the transport traits return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One message for the server, with what an HTTP transport puts in headers.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The message.
    pub message: Message,
    /// The protocol version it is sent under; `None` while none is agreed
    /// (the handshake-era `initialize` itself).
    pub version: Option<ProtocolVersion>,
    /// `Mcp-Param-*` headers its tool declares (2026-07-28 `tools/call`
    /// over HTTP): name after `Mcp-Param-`, value as sent.
    pub param_headers: Vec<(String, String)>,
}

impl Outgoing {
    /// A message with no version or headers.
    pub fn new(message: Message) -> Self {
        Outgoing {
            message,
            version: None,
            param_headers: Vec::new(),
        }
    }
}

/// Where a transport delivers what arrives from the server.
#[derive(Clone, Debug)]
pub struct Inbox {
    to: ActorRef<ClientMsg>,
    /// Which connection of the client this is: what arrives on an earlier
    /// one after a reconnection is dropped.
    epoch: u64,
}

impl Inbox {
    pub(super) fn new(to: ActorRef<ClientMsg>, epoch: u64) -> Self {
        Inbox { to, epoch }
    }

    /// Delivers one message; waits while the client's mailbox is full.
    /// `false` once the client is gone (the transport should stop).
    pub async fn deliver(&self, message: Message) -> bool {
        self.to
            .send(ClientMsg::Inbound {
                epoch: self.epoch,
                message,
            })
            .await
            .is_ok()
    }

    /// Delivers raw JSON; what is not a JSON-RPC message is logged and
    /// dropped.
    pub async fn deliver_json(&self, bytes: &[u8]) -> bool {
        match serde_json::from_slice(bytes).map(classify) {
            Ok(Ok(message)) => self.deliver(message).await,
            Ok(Err(rejected)) => {
                tracing::warn!(error = %rejected.error.message, "dropped a malformed message from the server");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "dropped unreadable JSON from the server");
                true
            }
        }
    }

    /// Resolves request `id` with `error`: the transport gave up on it (an
    /// HTTP error status, a stream that ended before the answer).
    pub fn fail(&self, id: crate::jsonrpc::Id, error: super::ClientError) {
        let _ = self.to.send_system(ClientMsg::Failed {
            epoch: self.epoch,
            id,
            error,
        });
    }

    /// Says the connection ended, and why.
    pub fn closed(&self, why: impl Into<String>) {
        let _ = self.to.send_system(ClientMsg::Closed {
            epoch: self.epoch,
            why: why.into(),
        });
    }
}

/// A live connection's sending half.
pub trait Wire: Send + Sync + 'static {
    /// Sends one message. For HTTP this may return before the answer comes:
    /// the answer arrives in the [`Inbox`].
    fn send(&self, out: Outgoing) -> BoxFuture<'_, Result<(), String>>;

    /// Ends the connection (HTTP: DELETE of the session).
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// Dials a server; called again on every reconnection.
pub trait Connector: Send + Sync + 'static {
    /// Opens a connection delivering to `inbox`.
    fn connect(&self, inbox: Inbox) -> BoxFuture<'_, Result<Arc<dyn Wire>, String>>;

    /// Whether a lost connection may be dialled again (a spawned server's
    /// pipes or an in-memory pipe cannot).
    fn reconnects(&self) -> bool {
        true
    }
}

impl<C: Connector + ?Sized> Connector for Box<C> {
    fn connect(&self, inbox: Inbox) -> BoxFuture<'_, Result<Arc<dyn Wire>, String>> {
        (**self).connect(inbox)
    }

    fn reconnects(&self) -> bool {
        (**self).reconnects()
    }
}

/// A byte stream's two halves, as a line connector dials them.
pub type LineStreams = (
    Box<dyn AsyncRead + Send + Unpin>,
    Box<dyn AsyncWrite + Send + Unpin>,
);

/// Newline-delimited JSON over any byte stream: stdio, TCP, in memory.
pub struct LineConnector<F> {
    dial: F,
    reconnects: bool,
    max_line: usize,
}

impl<F> std::fmt::Debug for LineConnector<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineConnector")
            .field("reconnects", &self.reconnects)
            .field("max_line", &self.max_line)
            .finish()
    }
}

impl<F, Fut> LineConnector<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::io::Result<LineStreams>> + Send + 'static,
{
    /// Dials with `dial` on every (re)connection.
    pub fn new(dial: F) -> Self {
        LineConnector {
            dial,
            reconnects: true,
            max_line: DEFAULT_MAX_LINE,
        }
    }

    /// A connector that dials once: a lost connection stays lost.
    pub fn once(dial: F) -> Self {
        LineConnector {
            dial,
            reconnects: false,
            max_line: DEFAULT_MAX_LINE,
        }
    }

    /// The longest line taken from the server, in bytes, its newline not
    /// counted (default 16 MiB): a longer one ends the connection.
    pub fn max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes;
        self
    }
}

/// The longest line taken from a server by default, in bytes.
pub const DEFAULT_MAX_LINE: usize = 16 << 20;

impl<F, Fut> Connector for LineConnector<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::io::Result<LineStreams>> + Send + 'static,
{
    fn connect(&self, inbox: Inbox) -> BoxFuture<'_, Result<Arc<dyn Wire>, String>> {
        Box::pin(async move {
            let (read, write) = (self.dial)().await.map_err(|e| e.to_string())?;
            tokio::spawn(read_lines(read, inbox, self.max_line));
            Ok(Arc::new(LineWire(Mutex::new(write))) as Arc<dyn Wire>)
        })
    }

    fn reconnects(&self) -> bool {
        self.reconnects
    }
}

async fn read_lines(read: Box<dyn AsyncRead + Send + Unpin>, inbox: Inbox, max: usize) {
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    let why = loop {
        line.clear();
        match (&mut reader)
            .take(max as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) => break "the server closed the stream".to_string(),
            Ok(_) if line.len() > max && !line.ends_with(b"\n") => {
                break format!("the server sent a line over {max} bytes")
            }
            Ok(_) => {
                let text = line.trim_ascii();
                if text.is_empty() {
                    continue;
                }
                if !inbox.deliver_json(text).await {
                    return;
                }
            }
            Err(e) => break format!("reading: {e}"),
        }
    };
    inbox.closed(why);
}

struct LineWire(Mutex<Box<dyn AsyncWrite + Send + Unpin>>);

impl Wire for LineWire {
    fn send(&self, out: Outgoing) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let mut line = out.message.to_json().into_bytes();
            line.push(b'\n');
            let mut write = self.0.lock().await;
            write.write_all(&line).await.map_err(|e| e.to_string())?;
            write.flush().await.map_err(|e| e.to_string())
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.0.lock().await.shutdown().await;
        })
    }
}
