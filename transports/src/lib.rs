//! Transports for arbor: every connection is a session process under a
//! sharded dynamic supervisor, fed by a listener that is itself supervised.
//!
//! ```text
//! transports            rest_for_one
//! ├── tcp-connections   one_for_one over N dynamic shards of sessions
//! ├── ws-connections    the same, for WebSocket sessions
//! ├── tcp-listener      accepts; a restart binds the same address again
//! └── ws-listener       accepts and handshakes; the same on restart
//! ```
//!
//! rest_for_one with the connection supervisors first and the listeners
//! last: a listener crash restarts only listeners (live connections stay),
//! while a connection-supervisor restart also restarts the listeners that
//! feed it. One connection limit (`max_connections`) counts TCP and
//! WebSocket connections together.
//!
//! TCP (newline-delimited JSON, both eras), WebSocket (one message per text
//! frame, both eras; see [`ws`]), Streamable HTTP for both eras and the
//! legacy HTTP+SSE transport (see [`http`]). Every listener that speaks HTTP
//! checks `Host` and `Origin` by one [`OriginPolicy`].

pub mod http;
mod listen;
pub mod origin;
pub mod tcp;
pub mod ws;

pub use origin::OriginPolicy;
pub use tcp::{start, tree, Bound, Endpoints, TransportConfig};
