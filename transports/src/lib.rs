//! Transports for arbor: stdio, Streamable HTTP, legacy HTTP+SSE, WebSocket and TCP.
//!
//! This crate is filled by the transports work; every connection will be an
//! arbor process under a sharded dynamic supervisor. It is empty until then.
