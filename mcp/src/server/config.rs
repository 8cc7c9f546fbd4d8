//! The server's settings: limits, timeouts and caching, with their
//! defaults.

use std::time::Duration;

use crate::jsonrpc::Limits;

/// Server settings. Every limit has a default and can be changed.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Limits on incoming messages.
    pub limits: Limits,
    /// Items per page of a list result. Default: 50.
    pub page_size: usize,
    /// How long a cursor stays valid. Default: 10 minutes.
    #[serde(with = "humantime_serde")]
    pub cursor_ttl: Duration,
    /// How long a request may run before it is answered with a timeout
    /// error and its handler aborted. Default: 60 s.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long a handshake-era connection may take to initialize before it
    /// is closed. Default: 30 s.
    #[serde(with = "humantime_serde")]
    pub init_timeout: Duration,
    /// How long a session that is shut down waits for its requests in
    /// flight to answer before it aborts them. The transports' supervisors
    /// give each session this long, and a second more, to stop. Default: 4 s.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// The most requests one connection may have in flight. Default: 64.
    pub max_in_flight: usize,
    /// The most bytes of received messages one connection's session may
    /// hold, queued or kept by requests still running, before its transport
    /// stops reading (see [`crate::inbound`]). Default: 16 MiB.
    pub max_inbound_bytes: usize,
    /// The most bytes all connections together may hold in received
    /// messages and in answers not yet taken by their clients (see
    /// [`crate::memory`]). `None` (the default): half the machine's memory
    /// ([`MemoryBudget::default_bytes`](crate::memory::MemoryBudget::default_bytes)).
    pub max_buffered_bytes: Option<usize>,
    /// The most resource subscriptions one connection may hold (both eras
    /// together). Default: 100.
    pub max_subscriptions: usize,
    /// Progress notifications per request, at most one per this interval
    /// (the final one always goes). Default: 50 ms.
    #[serde(with = "humantime_serde")]
    pub progress_interval: Duration,
    /// Caching hints of `server/discover` and the lists (2026-07-28).
    /// Default: none may be reused ([`crate::cache`]).
    pub list_caching: crate::cache::ListCaching,
    /// How long a sealed 2026-07-28 `requestState` stays valid. Default: 10 min.
    #[serde(with = "humantime_serde")]
    pub request_state_ttl: Duration,
    /// How long a task is kept from its creation. Default: 10 min.
    #[serde(with = "humantime_serde")]
    pub task_ttl: Duration,
    /// The polling interval suggested to clients for tasks. Default: 500 ms.
    #[serde(with = "humantime_serde")]
    pub task_poll_interval: Duration,
    /// The most tasks kept at once; more are refused with `-32603`.
    /// Default: 10 000.
    pub max_tasks: usize,
    /// How long the server waits for the client to answer a request it sent
    /// (elicitation, sampling, roots) in the handshake era. Default: 60 s.
    #[serde(with = "humantime_serde")]
    pub server_request_timeout: Duration,
    /// Each connection's outbound queue: its bounds and what happens when
    /// a client does not read.
    pub outbox: crate::outbox::OutboxConfig,
    /// Messages read from a connection and waiting for its session; when
    /// full, the transport stops reading. Default: 64.
    pub session_mailbox: usize,
    /// Requests per session and per client address, new sessions per
    /// address, requests to the client per session ([`crate::rate`]).
    pub rate_limits: crate::rate::RateLimits,
    /// When a tool's or resource's circuit opens, and for how long
    /// ([`crate::breaker`]).
    pub circuit_breaker: crate::breaker::BreakerConfig,
    /// When the server sheds load as the process nears its limits of file
    /// descriptors, memory and processes ([`crate::guard`]); `None`
    /// (`false` in a config file) for no guard.
    #[serde(with = "crate::server::or_off")]
    pub resource_guard: Option<crate::guard::GuardConfig>,
    /// When a transport's sessions count as failing in cascade, and whether
    /// that isolates the transport or stops the node ([`crate::cascade`]);
    /// `None` (`false` in a config file) for no detection.
    #[serde(with = "crate::server::or_off")]
    pub cascade: Option<crate::cascade::CascadeConfig>,
    /// How long and how many idempotency keys are kept for the tools
    /// marked keyed ([`crate::idempotency`]); `None` (`false` in a config
    /// file) ignores the keys.
    #[serde(with = "crate::server::or_off")]
    pub idempotency: Option<crate::idempotency::IdempotencyConfig>,
    /// OAuth 2.1 authorization: the tokens accepted and the scopes that
    /// guard tools, resources and prompts ([`crate::auth`]); `None` (the
    /// default) serves everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<crate::auth::AuthConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            page_size: 50,
            cursor_ttl: Duration::from_secs(600),
            request_timeout: Duration::from_secs(60),
            init_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(4),
            max_in_flight: 64,
            max_inbound_bytes: 16 << 20,
            max_buffered_bytes: None,
            max_subscriptions: 100,
            progress_interval: Duration::from_millis(50),
            list_caching: crate::cache::ListCaching::default(),
            request_state_ttl: Duration::from_secs(600),
            server_request_timeout: Duration::from_secs(60),
            outbox: crate::outbox::OutboxConfig::default(),
            session_mailbox: 64,
            task_ttl: Duration::from_secs(600),
            task_poll_interval: Duration::from_millis(500),
            max_tasks: 10_000,
            rate_limits: crate::rate::RateLimits::default(),
            circuit_breaker: crate::breaker::BreakerConfig::default(),
            resource_guard: Some(crate::guard::GuardConfig::default()),
            cascade: Some(crate::cascade::CascadeConfig::default()),
            idempotency: Some(crate::idempotency::IdempotencyConfig::default()),
            auth: None,
        }
    }
}
