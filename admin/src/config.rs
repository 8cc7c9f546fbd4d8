//! The admin listener's settings.

use std::net::SocketAddr;
use std::time::Duration;

use arbor_transports::OriginPolicy;

use crate::token::AdminToken;

/// Where the admin listener listens and what it allows.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Its address. Default: `127.0.0.1:0` (loopback, a free port).
    pub addr: SocketAddr,
    /// The bearer token every route but `/healthz`, `/readyz` and the
    /// dashboard's page asks for. Default: `None`, a fresh one is generated
    /// at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<AdminToken>,
    /// `Host` and `Origin` accepted, as on the MCP listeners (`arbor
    /// serve` gives it theirs).
    #[serde(skip)]
    pub origins: OriginPolicy,
    /// The most children listed for one supervisor per tree request; the
    /// rest are counted, for the page to ask for the next page. Default: 200.
    pub tree_page: usize,
    /// How many of the deepest mailboxes `/metrics` names. Default: 10.
    pub top_mailboxes: usize,
    /// The longest a chaos run at a rate may last. Default: 10 min.
    #[serde(with = "humantime_serde")]
    pub max_chaos: Duration,
    /// The most kills one chaos request may make. Default: 10 000.
    pub max_kills: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
            origins: OriginPolicy::default(),
            tree_page: 200,
            top_mailboxes: 10,
            max_chaos: Duration::from_secs(600),
            max_kills: 10_000,
        }
    }
}
