//! arbor: fault-tolerant Model Context Protocol services on OTP-style
//! supervision trees.
//!
//! This crate is the facade: it re-exports the actor layer
//! ([`runtime`]), the supervisors ([`supervision`]), the protocol ([`mcp`]),
//! the transports ([`transports`]) and the admin listener ([`admin`]). The `arbor` command line and its
//! demo server are the binary's own, not part of this API.

pub use arbor_admin as admin;
pub use arbor_cluster as cluster;
pub use arbor_mcp as mcp;
pub use arbor_runtime as runtime;
pub use arbor_supervision as supervision;
pub use arbor_transports as transports;

pub use arbor_runtime::{
    spawn, Actor, ActorRef, Context, ExitReason, Flow, Pid, ProcessRef, ShardedRegistry,
};
pub use arbor_supervision::{
    ChildSpec, DynamicSupervisor, Restart, ShardedDynamicSupervisor, Shutdown, Strategy,
    Supervisor, SupervisorRef, TreeView,
};

/// Compiles and runs the README's examples as doctests, so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
