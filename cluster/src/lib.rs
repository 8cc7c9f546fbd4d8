//! arbor nodes as one cluster, on NATS with JetStream.
//!
//! Each node is an ordinary arbor server that [`Cluster::join`]s the
//! others through a NATS server (or a NATS cluster):
//!
//! - **fan-out**: what [`McpServer::resource_updated`] and
//!   [`McpServer::list_changed`] tell this node's subscribers and
//!   `subscriptions/listen` streams reaches every node's, once each and in
//!   the order one node published them, through the cluster's replicated
//!   JetStream event stream (a node whose NATS server dies carries on
//!   through another, without a gap);
//! - **a shared key ring**: every node seals cursors and `requestState`
//!   with the same key, kept in the cluster's JetStream key-value bucket
//!   (the first node to start makes it, with compare-and-swap), so any node
//!   accepts another's.
//!
//! The backend sits behind [`arbor_mcp::cluster::Peers`]: the server knows
//! nothing of NATS.
//!
//! # Examples
//! ```no_run
//! # async fn run() -> Result<(), arbor_cluster::ClusterError> {
//! use arbor_cluster::{Cluster, ClusterConfig};
//! use arbor_mcp::ServerBuilder;
//!
//! let cluster = Cluster::connect(ClusterConfig::new(["nats://127.0.0.1:4222"])).await?;
//! let server = ServerBuilder::new("node", "1")
//!     .seal_key(cluster.seal_key().clone())
//!     .build()
//!     .expect("a valid server");
//! let node = cluster.join(&server).await?;
//! server.resource_updated("file:///shared"); // told on every node
//! # drop(node);
//! # Ok(())
//! # }
//! ```
//!
//! [`McpServer::resource_updated`]: arbor_mcp::McpServer::resource_updated
//! [`McpServer::list_changed`]: arbor_mcp::McpServer::list_changed

mod bucket;
mod config;
mod fanout;
mod forward;
mod node;
mod order;

pub use config::ClusterConfig;
pub use node::{Cluster, ClusterError, Node};
