//! The Model Context Protocol for arbor.
//!
//! This crate is filled by the protocol-core work (JSON-RPC 2.0, the 2026-07-28
//! stateless era and the handshake era, handlers as supervised actors). It is an
//! empty crate until then, so that the workspace layout is fixed from the start.
