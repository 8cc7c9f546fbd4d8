//! What reaches a client process: its messages ([`ClientMsg`]), and the
//! [`Inbox`] a transport delivers what arrives from the server through.

use std::sync::Arc;
use std::time::Duration;

use arbor_runtime::ActorRef;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use super::wire::Wire;
use super::ClientError;
use crate::jsonrpc::{classify, Id, Message, Notification};
use crate::model::ProgressParams;

/// What the client process handles.
pub enum ClientMsg {
    /// Send a request and resolve `reply` with its outcome.
    Request {
        /// Its id, from the client's id source.
        id: Id,
        /// The method.
        method: String,
        /// Its params, without the envelope.
        params: Option<Map<String, Value>>,
        /// How long to wait for the answer.
        timeout: Duration,
        /// `Mcp-Param-*` headers for HTTP.
        param_headers: Vec<(String, String)>,
        /// Progress notifications for it, if wanted.
        progress: Option<mpsc::UnboundedSender<ProgressParams>>,
        /// Where the outcome goes.
        reply: oneshot::Sender<Result<Value, ClientError>>,
    },
    /// Send a notification.
    Notify(Notification),
    /// The caller gave up on `id`.
    Cancel(Id),
    /// `id`'s timeout passed.
    Timeout(Id, Duration),
    /// Something arrived on connection `epoch`.
    Inbound {
        /// The connection it came on.
        epoch: u64,
        /// What came.
        message: Message,
    },
    /// The transport gave up on one request of connection `epoch` (an HTTP
    /// error status, a stream that ended before its answer).
    Failed {
        /// The connection.
        epoch: u64,
        /// The request.
        id: Id,
        /// Why.
        error: ClientError,
    },
    /// Connection `epoch` ended.
    Closed {
        /// The connection.
        epoch: u64,
        /// Why.
        why: String,
    },
    /// A dial of connection `epoch` finished.
    Dialled {
        /// The connection.
        epoch: u64,
        /// Its wire, or why it failed.
        wire: Result<Arc<dyn Wire>, String>,
    },
    /// The backoff before redialling passed.
    Redial,
    /// Close the connection and stop.
    Shutdown(oneshot::Sender<()>),
}

impl std::fmt::Debug for ClientMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientMsg::Request { id, method, .. } => write!(f, "Request({id}, {method})"),
            ClientMsg::Notify(n) => write!(f, "Notify({})", n.method),
            ClientMsg::Cancel(id) => write!(f, "Cancel({id})"),
            ClientMsg::Timeout(id, _) => write!(f, "Timeout({id})"),
            ClientMsg::Inbound { epoch, .. } => write!(f, "Inbound({epoch})"),
            ClientMsg::Failed { epoch, id, .. } => write!(f, "Failed({epoch}, {id})"),
            ClientMsg::Closed { epoch, why } => write!(f, "Closed({epoch}, {why})"),
            ClientMsg::Dialled { epoch, .. } => write!(f, "Dialled({epoch})"),
            ClientMsg::Redial => f.write_str("Redial"),
            ClientMsg::Shutdown(_) => f.write_str("Shutdown"),
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
