//! The admin listener of an arbor server, in the spirit of Erlang's
//! `observer`: what a running server is doing, and chaos control over it.
//!
//! - `/metrics`: Prometheus text (requests by method and outcome with
//!   latency histograms as `mcp_server_operation_duration`, restarts,
//!   processes, what each transport holds, mailbox depths, drops, file
//!   descriptors, resident memory).
//! - `/healthz` and `/readyz`, with JSON bodies saying why.
//! - `/api/tree` (a supervisor and a page of its children), `/api/summary`,
//!   `/api/events` (the summary pushed each second), `POST /api/kill` and
//!   `POST /api/chaos`.
//! - `/`: the dashboard, a page that draws the live tree from those.
//!
//! Loopback by default, `Host`/`Origin` checked as on the MCP listeners,
//! and every route but the health checks and the page's HTML behind a
//! bearer token, generated at start unless configured.
//!
//! # Examples
//! ```no_run
//! use arbor_admin::{AdminConfig, AdminListener};
//! use arbor_mcp::ServerBuilder;
//! use arbor_transports::{start, TransportConfig};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = ServerBuilder::new("demo", "1.0").build()?;
//! let (tree, _endpoints) = start(server, TransportConfig::default()).await?;
//! let admin = AdminListener::start(AdminConfig::default(), tree.clone(), "transports").await?;
//! println!("dashboard: {}", admin.dashboard_url());
//! # Ok(())
//! # }
//! ```

pub mod cascade;
pub mod chaos;
mod config;
pub mod health;
mod scrape;
mod server;
pub mod summary;
mod token;
pub mod tree;

pub use config::AdminConfig;
pub use scrape::recorder;
pub use server::{AdminError, AdminListener};
pub use token::{AdminToken, TokenError, MIN_TOKEN_LEN};
