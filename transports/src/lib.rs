//! Transports for arbor: every connection is a session process under a
//! sharded dynamic supervisor, fed by a listener that is itself supervised.
//!
//! ```text
//! transports              rest_for_one
//! ├── connections         one_for_one, its children stopped together
//! │   ├── tcp-connections one_for_one over N dynamic shards of sessions
//! │   ├── ws-connections  the same, for WebSocket sessions
//! │   └── http            HTTP sessions, 2026-07-28 requests, connections
//! ├── tcp-listener        accepts; a restart binds the same address again
//! ├── ws-listener         accepts and handshakes; the same on restart
//! └── http-listener       the same, for HTTP
//! ```
//!
//! rest_for_one with the connection supervisors first and the listeners
//! last: a listener crash restarts only listeners (live connections stay),
//! while a restart of `connections` also restarts the listeners that feed
//! it. At shutdown the transports drain together. One connection limit
//! (`max_connections`) counts TCP, WebSocket and HTTP connections together.
//! Each transport's sessions share one cascade detector
//! ([`arbor_mcp::cascade`]): past its threshold of crashes the listener
//! refuses new sessions until a cool-down or `arbor reset`, or, under
//! `action = "stop"`, the tree stops with the trip as its reason.
//!
//! stdio is served by a tree of its own ([`stdio`]): one session, whose end
//! ends the tree.
//!
//! TCP (newline-delimited JSON, both eras), WebSocket (one message per text
//! frame, both eras; see [`ws`]), Streamable HTTP for both eras and the
//! legacy HTTP+SSE transport (see [`http`]). Every listener that speaks HTTP
//! checks `Host` and `Origin` by one [`OriginPolicy`].

mod cascade;
pub mod census;
pub mod client;
mod config;
mod head;
pub mod http;
mod listen;
pub mod origin;
mod shedding;
pub mod stdio;
pub mod tcp;
pub mod tls;
mod tree;
pub mod ws;

pub use census::{cascades, held, Held};
pub use config::{TcpConfig, TransportConfig, WsConfig};
pub use origin::{Forbidden, OriginPolicy};
pub use stdio::{serve_stdio, ServingStdio, StdioTree};
pub use tree::{start, tree, Bound, Endpoints, DEFAULT_MAX_CONNECTIONS};
