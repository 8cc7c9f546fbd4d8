//! Process-wide request figures, for a dashboard's live rates: two
//! counters moved once per answered feature request, whichever server,
//! session or transport answered it. The full picture (by method, with
//! latencies) goes to the `metrics` facade as
//! `mcp.server.operation.duration`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::guard::Pressure;
use crate::jsonrpc::ErrorObject;
use crate::model::Method;

static ANSWERED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);

/// Feature requests answered since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Every answer, errors included.
    pub answered: u64,
    /// Answers that were JSON-RPC errors.
    pub failed: u64,
}

/// The requests answered so far, in this process.
pub fn request_counts() -> RequestCounts {
    RequestCounts {
        answered: ANSWERED.load(Ordering::Relaxed),
        failed: FAILED.load(Ordering::Relaxed),
    }
}

/// Records one answered request: the counters, and its duration under the
/// OpenTelemetry MCP semantic conventions' name and attributes
/// (`mcp.method.name`, `error.type` as the JSON-RPC code).
pub(crate) fn answered(
    method: Method,
    took: Duration,
    outcome: &Result<serde_json::Value, ErrorObject>,
) {
    ANSWERED.fetch_add(1, Ordering::Relaxed);
    let error = match outcome {
        Ok(_) => None,
        Err(e) => {
            FAILED.fetch_add(1, Ordering::Relaxed);
            Some(e.code.to_string())
        }
    };
    let histogram = match error {
        None => {
            metrics::histogram!("mcp.server.operation.duration", "mcp.method.name" => method.as_str())
        }
        Some(code) => metrics::histogram!(
            "mcp.server.operation.duration",
            "mcp.method.name" => method.as_str(),
            "error.type" => code
        ),
    };
    histogram.record(took.as_secs_f64());
}

static RATE_LIMITED: AtomicU64 = AtomicU64::new(0);
static OVERLOADED: AtomicU64 = AtomicU64::new(0);
/// The last pressure a resource guard read.
static PRESSURE: parking_lot::Mutex<Pressure> = parking_lot::Mutex::new(Pressure::Normal);
static CIRCUIT_REFUSED: AtomicU64 = AtomicU64::new(0);
/// Circuits not closed, by handler (`tool echo`): few, and changed only
/// as a circuit opens or closes.
static NOT_CLOSED: parking_lot::Mutex<std::collections::BTreeMap<String, &'static str>> =
    parking_lot::Mutex::new(std::collections::BTreeMap::new());

/// What the production safeguards turned away, process-wide, for a
/// dashboard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refusals {
    /// Requests, sessions and server requests over a rate limit.
    pub rate_limited: u64,
    /// Calls refused by an open circuit.
    pub circuit_refused: u64,
    /// Each circuit not closed, and its state (`open`, `half_open`).
    pub circuits: Vec<(String, &'static str)>,
    /// Sessions, connections and requests refused by the resource guard.
    pub overloaded: u64,
    /// The resource guard's pressure at its last reading.
    pub pressure: Pressure,
}

/// The refusals so far, in this process.
pub fn refusals() -> Refusals {
    Refusals {
        rate_limited: RATE_LIMITED.load(Ordering::Relaxed),
        circuit_refused: CIRCUIT_REFUSED.load(Ordering::Relaxed),
        circuits: NOT_CLOSED
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        overloaded: OVERLOADED.load(Ordering::Relaxed),
        pressure: *PRESSURE.lock(),
    }
}

pub(crate) fn overloaded() {
    OVERLOADED.fetch_add(1, Ordering::Relaxed);
    metrics::counter!("arbor_resource_refused_total").increment(1);
}

pub(crate) fn pressure(now: Pressure) {
    *PRESSURE.lock() = now;
}

pub(crate) fn rate_limited() {
    RATE_LIMITED.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn circuit_refused() {
    CIRCUIT_REFUSED.fetch_add(1, Ordering::Relaxed);
}

/// `handler`'s circuit is now `state` (`None`: closed).
pub(crate) fn circuit(handler: String, state: Option<&'static str>) {
    let mut not_closed = NOT_CLOSED.lock();
    match state {
        Some(state) => not_closed.insert(handler, state),
        None => not_closed.remove(&handler),
    };
}
