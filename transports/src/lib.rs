//! Transports for arbor: every connection is a session process under a
//! sharded dynamic supervisor, fed by a listener that is itself supervised.
//!
//! ```text
//! transports            rest_for_one
//! ├── tcp-connections   one_for_one over N dynamic shards of sessions
//! └── tcp-listener      accepts; a restart binds the same address again
//! ```
//!
//! rest_for_one with the connection supervisors first and the listener
//! last: a listener crash restarts only the listener (live connections
//! stay), while a connection-supervisor restart also restarts the listener
//! that feeds it.
//!
//! Done: TCP (newline-delimited JSON, both eras). To come: Streamable HTTP
//! for both eras, the legacy HTTP+SSE transport and WebSocket.

pub mod tcp;

pub use tcp::{start, Endpoints, TransportConfig};
