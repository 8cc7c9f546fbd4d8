//! The server's seam to the other nodes of a cluster: what one node tells
//! the rest, and what it hears from them.
//!
//! A node's [`McpServer::list_changed`](crate::McpServer::list_changed) and
//! [`McpServer::resource_updated`](crate::McpServer::resource_updated) tell
//! its own followers and hand the [`Event`] to its [`Peers`]; the backend
//! (NATS in `arbor-cluster`) carries it to every other node, which hands it
//! to [`McpServer::deliver`](crate::McpServer::deliver): its followers
//! only, so nothing echoes.

use serde::{Deserialize, Serialize};

use crate::model::ListKind;

/// What a node tells the others.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Event {
    /// A list changed.
    ListChanged {
        /// Which.
        list: ListKind,
    },
    /// A resource was updated.
    ResourceUpdated {
        /// Its URI, normalised.
        uri: String,
    },
}

/// The other nodes, as a backend reaches them.
pub trait Peers: Send + Sync + std::fmt::Debug + 'static {
    /// Tells every other node of `event`, in the order of the calls, without
    /// waiting for them.
    fn publish(&self, event: &Event);
}
