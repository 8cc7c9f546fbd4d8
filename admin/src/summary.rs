//! What the dashboard's header shows and `/api/events` pushes each second:
//! processes by kind, what each transport holds, requests answered and
//! failed, resident memory, the root supervisor's restarts, and what the
//! safeguards turned away (rate limits, open circuits, resource pressure,
//! isolated transports).

use std::time::Instant;

use arbor_supervision::SupervisorRef;
use serde::Serialize;

use crate::cascade::CascadeView;
use crate::tree::Supervision;

/// One transport's count.
#[derive(Clone, Debug, Serialize)]
pub struct HeldCount {
    /// `tcp`, `ws` or `http`.
    pub transport: &'static str,
    /// `connections`, `sessions` or `requests`.
    pub what: &'static str,
    /// How many run now.
    pub active: usize,
}

/// A snapshot of the server.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Seconds since the admin listener started.
    pub uptime_s: u64,
    /// Lightweight processes.
    pub lightweight: usize,
    /// Ractor processes (supervisors among them).
    pub ractor: usize,
    /// Process starts and ends so far: the page reloads the tree when it
    /// moves.
    pub churn: u64,
    /// What each transport holds.
    pub held: Vec<HeldCount>,
    /// Requests answered since the start.
    pub answered: u64,
    /// Of them, errors.
    pub failed: u64,
    /// Resident memory, in bytes.
    pub rss_bytes: Option<u64>,
    /// The root supervisor, if it runs.
    pub root: Option<Supervision>,
    /// Requests, sessions and server requests refused by a rate limit
    /// since the start.
    pub rate_limited: u64,
    /// Calls refused by an open circuit since the start.
    pub circuit_refused: u64,
    /// Each circuit not closed now.
    pub circuits: Vec<CircuitState>,
    /// Sessions, connections and requests refused by the resource guard
    /// since the start.
    pub overloaded: u64,
    /// The resource guard's pressure: `normal`, `soft` or `hard`.
    pub pressure: &'static str,
    /// Each transport's cascade detection.
    pub cascades: Vec<CascadeView>,
}

/// A handler's circuit that is not closed.
#[derive(Clone, Debug, Serialize)]
pub struct CircuitState {
    /// The handler, its kind and name (`tool echo`).
    pub handler: String,
    /// `open`, or `half_open` while a probe may run.
    pub state: &'static str,
}

/// The server as it is now.
pub async fn summary(root: &SupervisorRef, started: Instant) -> Summary {
    let processes = arbor_runtime::process_counts();
    let requests = arbor_mcp::stats::request_counts();
    let refusals = arbor_mcp::stats::refusals();
    let held = arbor_transports::held(root)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|h| HeldCount {
            transport: h.transport,
            what: h.what,
            active: h.active,
        })
        .collect();
    Summary {
        uptime_s: started.elapsed().as_secs(),
        lightweight: processes.lightweight,
        ractor: processes.ractor,
        churn: processes.churn,
        held,
        answered: requests.answered,
        failed: requests.failed,
        rss_bytes: arbor_mcp::guard::resident_bytes(),
        root: root.status().await.ok().map(Supervision::from),
        cascades: crate::cascade::views(root).await,
        rate_limited: refusals.rate_limited,
        circuit_refused: refusals.circuit_refused,
        overloaded: refusals.overloaded,
        pressure: refusals.pressure.as_str(),
        circuits: refusals
            .circuits
            .into_iter()
            .map(|(handler, state)| CircuitState { handler, state })
            .collect(),
    }
}
