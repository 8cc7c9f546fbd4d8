//! What a client transport is given to send, and how it sends: the
//! [`Wire`] of one live connection. Dialling is [`super::connector`]; what
//! arrives goes to the [`super::inbox::Inbox`].

use std::future::Future;
use std::pin::Pin;

use crate::jsonrpc::Message;
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

/// A live connection's sending half.
pub trait Wire: Send + Sync + 'static {
    /// Sends one message. For HTTP this may return before the answer comes:
    /// the answer arrives in the [`Inbox`](super::Inbox).
    fn send(&self, out: Outgoing) -> BoxFuture<'_, Result<(), String>>;

    /// Ends the connection (HTTP: DELETE of the session).
    fn close(&self) -> BoxFuture<'_, ()>;
}
