//! How a client connects: who it is, which protocol version it speaks,
//! timeouts, reconnection, and its handlers for server requests.

use std::time::Duration;

use super::handlers::ClientHandlers;
use crate::model::{Implementation, LogLevel};
use crate::version::ProtocolVersion;

/// Which protocol version the client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VersionChoice {
    /// 2026-07-28 when the server speaks it (`server/discover` answers),
    /// else the newest handshake version (`initialize`).
    #[default]
    Auto,
    /// This version only; a server that does not speak it is refused.
    Pinned(ProtocolVersion),
}

/// Redialling a lost connection: exponential backoff with jitter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reconnect {
    /// Whether a lost connection is redialled at all.
    pub enabled: bool,
    /// The first delay. Default: 100 ms.
    pub initial: Duration,
    /// The longest delay. Default: 10 s.
    pub max: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            enabled: true,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl Reconnect {
    /// The delay before dial `attempt` (0 for the first redial), with
    /// `jitter` in `[0, 1)` taking off up to half of it, so that clients
    /// lost together do not all come back together.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let full = self
            .initial
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.max);
        full.mul_f64(1.0 - 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// Everything a client is configured with.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Who the client is (`clientInfo`).
    pub client_info: Implementation,
    /// The protocol version it speaks.
    pub version: VersionChoice,
    /// How long a request waits for its answer. Default: 60 s.
    pub request_timeout: Duration,
    /// How long `server/discover` or `initialize` may take. Default: 10 s.
    pub negotiation_timeout: Duration,
    /// The log level asked of a 2026-07-28 server on every request.
    pub log_level: Option<LogLevel>,
    /// Redialling a lost connection.
    pub reconnect: Reconnect,
    /// The most `input_required` rounds one request may take. Default: 8.
    pub max_input_rounds: usize,
    /// The most requests held while the connection is not ready (dialling,
    /// negotiating, waiting to redial); past it a request fails at once.
    /// Default: 4096.
    pub max_queued: usize,
    /// How long a server request the client runs as a task (2025-11-25)
    /// is kept from its creation. Default: 10 min.
    pub task_ttl: Duration,
    /// The polling interval the client suggests for those tasks.
    /// Default: 200 ms.
    pub task_poll_interval: Duration,
    /// The most of those tasks kept at once; more are refused with
    /// `-32603`. Default: 64.
    pub max_tasks: usize,
    /// Answers to server requests (sampling, elicitation, roots).
    pub handlers: ClientHandlers,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            client_info: Implementation::new("arbor-client", env!("CARGO_PKG_VERSION")),
            version: VersionChoice::Auto,
            request_timeout: Duration::from_secs(60),
            negotiation_timeout: Duration::from_secs(10),
            log_level: None,
            reconnect: Reconnect::default(),
            max_input_rounds: 8,
            max_queued: 4096,
            task_ttl: Duration::from_secs(600),
            task_poll_interval: Duration::from_millis(200),
            max_tasks: 64,
            handlers: ClientHandlers::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_ceiling_and_jitter_takes_at_most_half() {
        let r = Reconnect::default();
        assert_eq!(r.delay(0, 0.0), Duration::from_millis(100));
        assert_eq!(r.delay(3, 0.0), Duration::from_millis(800));
        assert_eq!(r.delay(30, 0.0), Duration::from_secs(10));
        assert_eq!(r.delay(0, 0.999_999).as_millis(), 50);
    }
}
