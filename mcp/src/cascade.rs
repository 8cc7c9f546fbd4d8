//! Cascade detection's settings (`[server.cascade]`) and the refusal a
//! client reads while a subtree is isolated.
//!
//! The detection itself is the supervisors' ([`arbor_supervision::cascade`]):
//! the transports give each session subtree a [`Cascade`] built from this
//! [`CascadeConfig`]. Only abnormal exits count; a session that ends
//! because its client left, idled out or read too slowly exits cleanly, so
//! no behaviour of a client's own connection can trip it.
//!
//! [`Cascade`]: arbor_supervision::cascade::Cascade

use std::time::Duration;

use arbor_supervision::cascade::{CascadeAction, CascadePolicy, Isolation};
use serde_json::json;

use crate::jsonrpc::{code, ErrorObject};

/// When a session subtree counts as failing in cascade, and what follows.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CascadeConfig {
    /// More abnormal session exits than this within `window`, across all
    /// the sessions of one transport, trip it. Default: 100.
    pub failures: u32,
    /// The sliding window they are counted in. Default: 10 s.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// `"isolate"` (the default): the transport takes no new sessions and
    /// restarts nothing until the cool-down ends or an operator resets it
    /// (`arbor reset`); `"stop"`: the node stops, with the trip as its exit
    /// reason (andon).
    #[serde(with = "Action")]
    pub action: CascadeAction,
    /// How long an isolation lasts; zero: until an operator resets it.
    /// Default: 60 s.
    #[serde(with = "humantime_serde")]
    pub cool_down: Duration,
}

/// [`CascadeAction`] as a config file writes it.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(remote = "CascadeAction", rename_all = "lowercase")]
enum Action {
    Isolate,
    Stop,
}

impl Default for CascadeConfig {
    fn default() -> Self {
        let policy = CascadePolicy::default();
        CascadeConfig {
            failures: policy.failures,
            window: policy.window,
            action: policy.action,
            cool_down: policy.cool_down.unwrap_or_default(),
        }
    }
}

impl CascadeConfig {
    /// The supervisors' policy.
    pub fn policy(&self) -> CascadePolicy {
        CascadePolicy {
            failures: self.failures,
            window: self.window,
            action: self.action,
            cool_down: Some(self.cool_down).filter(|d| !d.is_zero()),
        }
    }
}

impl crate::server::or_off::Expected for CascadeConfig {
    const EXPECTED: &'static str = "expected a table of cascade detection's settings \
        (failures, window, action, cool_down), or false for none";
}

/// The JSON-RPC error for work refused while `isolation` holds:
/// [`code::ISOLATED`] with `data` {`subtree`, `failures`, `windowMs`,
/// `retryAfter`} (`retryAfter` null when only an operator lifts it).
///
/// ```
/// use std::time::Duration;
/// use arbor_mcp::cascade::isolated;
/// use arbor_supervision::cascade::{Cascade, CascadeAction, CascadePolicy};
///
/// let cascade = Cascade::new("tcp-connections", CascadePolicy {
///     failures: 0,
///     window: Duration::from_secs(10),
///     action: CascadeAction::Isolate,
///     cool_down: None,
/// });
/// cascade.failed();
/// let error = isolated(&cascade.isolation().unwrap());
/// assert_eq!(error.code, -32032);
/// assert_eq!(error.data.unwrap()["subtree"], "tcp-connections");
/// ```
pub fn isolated(isolation: &Isolation) -> ErrorObject {
    let trip = &isolation.trip;
    ErrorObject::new(code::ISOLATED, isolation.to_string()).with_data(json!({
        "subtree": &*trip.subtree,
        "failures": trip.failures,
        "windowMs": u64::try_from(trip.window.as_millis()).unwrap_or(u64::MAX),
        "retryAfter": isolation.retry_after().map(crate::rate::seconds_up),
    }))
}

/// When to retry, in whole seconds (at least 1), for `Retry-After`; `None`
/// when only an operator lifts it.
pub fn retry_after_secs(isolation: &Isolation) -> Option<u64> {
    isolation.retry_after().map(crate::rate::whole_seconds_up)
}
