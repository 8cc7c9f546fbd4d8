//! Circuit breakers, one per tool and per resource handler (a template's
//! handler is one, whatever URI it serves): after `failures` in a row the
//! circuit opens and calls are answered [`code::CIRCUIT_OPEN`] at once,
//! without running the handler, for `cool_down`; then it is half open and
//! lets one call through as a probe: its success closes the circuit, its
//! failure opens it again.
//!
//! A failure is what says the handler itself is broken: a tool's
//! `ToolError::Failed`, a resource's internal error (`-32603`), output that
//! breaks the tool's output schema, a panic, a call still running at the
//! request timeout. Bad arguments, an unknown resource, a client that
//! cancels are not: a client could otherwise open a circuit for everyone.
//!
//! ```
//! use std::time::Duration;
//! use arbor_mcp::breaker::{BreakerConfig, Breakers, Handler};
//!
//! let breakers = Breakers::new(BreakerConfig { failures: 2, cool_down: Duration::from_secs(30) });
//! for _ in 0..2 {
//!     breakers.attempt(Handler::Tool, "flaky", Duration::from_secs(60)).unwrap().failed();
//! }
//! let open = breakers.attempt(Handler::Tool, "flaky", Duration::from_secs(60)).unwrap_err();
//! assert_eq!(open.error().data.unwrap()["circuit"], "open");
//! ```

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::json;

use crate::jsonrpc::{code, ErrorObject};

/// When a circuit opens and for how long (`[server.circuit_breaker]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Failures in a row that open the circuit; 0: circuits never open.
    /// Default: 5.
    pub failures: u32,
    /// How long it stays open before one probe is let through. Default: 30 s.
    #[serde(with = "humantime_serde")]
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

/// A circuit's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Calls run; this many have failed in a row.
    Closed(u32),
    /// Calls are refused until then.
    Open(Instant),
    /// One probe may run; `true` while it does.
    HalfOpen(bool),
}

impl State {
    fn label(self) -> &'static str {
        match self {
            State::Closed(_) => "closed",
            State::Open(_) => "open",
            State::HalfOpen(_) => "half_open",
        }
    }
}

/// Which kind of handler a circuit guards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Handler {
    /// A tool, by name.
    Tool,
    /// A resource, by URI, or a template's handler, by its template.
    Resource,
}

impl Handler {
    fn label(self) -> &'static str {
        match self {
            Handler::Tool => "tool",
            Handler::Resource => "resource",
        }
    }
}

/// Every handler's circuit, by kind and name: as many as the catalog has
/// handlers.
#[derive(Debug)]
pub struct Breakers {
    cool_down: Duration,
    /// `None`: circuits never open.
    failures: Option<NonZeroU32>,
    tools: Mutex<HashMap<Arc<str>, State>>,
    resources: Mutex<HashMap<Arc<str>, State>>,
}

/// A call the circuit refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("circuit {state} for {handler}")]
pub struct CircuitOpen {
    /// The handler, its kind and name (`tool echo`).
    pub handler: Arc<str>,
    /// `open`, or `half_open` while its probe runs.
    pub state: &'static str,
    /// When a call may be tried again.
    pub retry_after: Duration,
}

impl CircuitOpen {
    /// [`code::CIRCUIT_OPEN`], with `data.handler`, `data.circuit` and
    /// `data.retryAfter` (seconds).
    pub fn error(&self) -> ErrorObject {
        let after = crate::rate::seconds_up(self.retry_after);
        ErrorObject::new(
            code::CIRCUIT_OPEN,
            format!("{} is failing: its circuit is {}", self.handler, self.state),
        )
        .with_data(json!({ "handler": &*self.handler, "circuit": self.state, "retryAfter": after }))
    }
}

impl Breakers {
    /// Circuits that open as `config` says (never with `failures` 0).
    pub fn new(config: BreakerConfig) -> Self {
        Breakers {
            failures: NonZeroU32::new(config.failures),
            cool_down: config.cool_down,
            tools: Mutex::new(HashMap::new()),
            resources: Mutex::new(HashMap::new()),
        }
    }

    fn circuits(&self, kind: Handler) -> &Mutex<HashMap<Arc<str>, State>> {
        match kind {
            Handler::Tool => &self.tools,
            Handler::Resource => &self.resources,
        }
    }

    /// A call of the `kind` handler `handler` about to run, or why it may
    /// not. `timeout` is the request timeout: a call dropped after that
    /// long timed out.
    ///
    /// # Errors
    /// [`CircuitOpen`] while the circuit is open, or half open with its
    /// probe running.
    pub fn attempt(
        &self,
        kind: Handler,
        handler: &str,
        timeout: Duration,
    ) -> Result<Attempt<'_>, CircuitOpen> {
        if self.failures.is_none() {
            return Ok(Attempt::untracked());
        }
        let mut circuits = self.circuits(kind).lock();
        let (key, state) = match circuits.get_key_value(handler) {
            Some((key, state)) => (key.clone(), *state),
            None => {
                let key: Arc<str> = Arc::from(handler);
                circuits.insert(key.clone(), State::Closed(0));
                (key, State::Closed(0))
            }
        };
        let now = Instant::now();
        let refused = |state: &'static str, retry_after: Duration| {
            let handler = format!("{} {key}", kind.label());
            metrics::counter!("arbor_mcp_circuit_refused_total", "handler" => handler.clone())
                .increment(1);
            crate::stats::circuit_refused();
            CircuitOpen {
                handler: handler.into(),
                state,
                retry_after,
            }
        };
        match state {
            State::Closed(_) => {}
            State::Open(until) if now < until => return Err(refused("open", until - now)),
            State::Open(_) | State::HalfOpen(false) => {
                circuits.insert(key.clone(), State::HalfOpen(true));
                set_gauge(kind, &key, State::HalfOpen(true));
            }
            State::HalfOpen(true) => return Err(refused("half_open", self.cool_down)),
        }
        Ok(Attempt {
            breakers: Some(self),
            key: Some((kind, key)),
            started: now,
            timeout,
        })
    }

    /// Each circuit that is not closed, with its state (`open`,
    /// `half_open`), for reports.
    pub fn not_closed(&self) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        for kind in [Handler::Tool, Handler::Resource] {
            let circuits = self.circuits(kind).lock();
            out.extend(
                circuits
                    .iter()
                    .filter(|(_, s)| !matches!(s, State::Closed(_)))
                    .map(|(k, s)| (format!("{} {k}", kind.label()), s.label())),
            );
        }
        out.sort();
        out
    }

    fn settle(&self, kind: Handler, key: &Arc<str>, outcome: Settled) {
        let Some(failures) = self.failures else {
            return;
        };
        let mut circuits = self.circuits(kind).lock();
        let Some(state) = circuits.get_mut(key) else {
            return;
        };
        let next = match (outcome, *state) {
            (Settled::Succeeded, _) => State::Closed(0),
            // A probe that ended neither way (cancelled): the next call probes.
            (Settled::Neither, State::HalfOpen(true)) => State::HalfOpen(false),
            (Settled::Neither, other) => other,
            (Settled::Failed, State::Closed(n)) if n + 1 < failures.get() => State::Closed(n + 1),
            (Settled::Failed, _) => {
                let handler = format!("{} {key}", kind.label());
                metrics::counter!("arbor_mcp_circuit_opened_total", "handler" => handler.clone())
                    .increment(1);
                tracing::warn!(target: "arbor::mcp", %handler, cool_down = ?self.cool_down, "circuit opened");
                State::Open(Instant::now() + self.cool_down)
            }
        };
        let changed = std::mem::discriminant(state) != std::mem::discriminant(&next);
        *state = next;
        if changed {
            set_gauge(kind, key, next);
        }
    }
}

/// `arbor_mcp_circuit_state`: 0 closed, 1 half open, 2 open; set as a
/// circuit changes state, so the hot path pays for no label.
fn set_gauge(kind: Handler, key: &Arc<str>, state: State) {
    let value = match state {
        State::Closed(_) => 0.0,
        State::HalfOpen(_) => 1.0,
        State::Open(_) => 2.0,
    };
    let handler = format!("{} {key}", kind.label());
    metrics::gauge!("arbor_mcp_circuit_state", "handler" => handler.clone()).set(value);
    crate::stats::circuit(handler, (value > 0.0).then(|| state.label()));
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Settled {
    Succeeded,
    Failed,
    Neither,
}

/// One call through a circuit: tell it [`Attempt::succeeded`] or
/// [`Attempt::failed`]. Dropped untold, it counts as failed during a panic
/// or once the request timeout has passed, and as neither otherwise (a
/// cancel).
#[derive(Debug)]
#[must_use = "tell the circuit how the call went"]
pub struct Attempt<'a> {
    breakers: Option<&'a Breakers>,
    key: Option<(Handler, Arc<str>)>,
    started: Instant,
    timeout: Duration,
}

impl Attempt<'_> {
    fn untracked() -> Self {
        Attempt {
            breakers: None,
            key: None,
            started: Instant::now(),
            timeout: Duration::MAX,
        }
    }

    /// The call worked.
    pub fn succeeded(mut self) {
        self.settle(Settled::Succeeded);
    }

    /// The call failed.
    pub fn failed(mut self) {
        self.settle(Settled::Failed);
    }

    /// `failed` when `failed` is true, else `succeeded`.
    pub fn settle_by(self, failed: bool) {
        if failed {
            self.failed();
        } else {
            self.succeeded();
        }
    }

    fn settle(&mut self, outcome: Settled) {
        if let (Some(breakers), Some((kind, key))) = (self.breakers.take(), self.key.take()) {
            breakers.settle(kind, &key, outcome);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let outcome = if std::thread::panicking() || self.started.elapsed() >= self.timeout {
            Settled::Failed
        } else {
            Settled::Neither
        };
        self.settle(outcome);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(60);

    fn breakers(failures: u32, cool_down: Duration) -> Breakers {
        Breakers::new(BreakerConfig {
            failures,
            cool_down,
        })
    }

    #[test]
    fn failures_in_a_row_open_it_and_a_success_between_resets_the_count() {
        let b = breakers(3, LONG);
        for _ in 0..2 {
            b.attempt(Handler::Tool, "t", LONG).unwrap().failed();
        }
        b.attempt(Handler::Tool, "t", LONG).unwrap().succeeded();
        for _ in 0..2 {
            b.attempt(Handler::Tool, "t", LONG).unwrap().failed();
        }
        assert!(
            b.attempt(Handler::Tool, "t", LONG).is_ok(),
            "two in a row: still closed"
        );
        b.attempt(Handler::Tool, "t", LONG).unwrap().failed();
        let open = b.attempt(Handler::Tool, "t", LONG).unwrap_err();
        assert_eq!(open.state, "open");
        assert!(open.retry_after <= LONG && open.retry_after > LONG / 2);
        assert_eq!(open.error().code, code::CIRCUIT_OPEN);
        // Another handler is not affected.
        assert!(b.attempt(Handler::Tool, "other", LONG).is_ok());
        assert!(b.attempt(Handler::Resource, "t", LONG).is_ok());
        assert_eq!(b.not_closed(), vec![("tool t".to_string(), "open")]);
    }

    #[test]
    fn after_the_cool_down_one_probe_runs_and_decides() {
        let b = breakers(1, Duration::from_millis(20));
        b.attempt(Handler::Tool, "r", LONG).unwrap().failed();
        assert!(b.attempt(Handler::Tool, "r", LONG).is_err());
        std::thread::sleep(Duration::from_millis(30));
        let probe = b.attempt(Handler::Tool, "r", LONG).unwrap();
        // While it runs, others are refused.
        assert_eq!(
            b.attempt(Handler::Tool, "r", LONG).unwrap_err().state,
            "half_open"
        );
        probe.failed();
        assert_eq!(
            b.attempt(Handler::Tool, "r", LONG).unwrap_err().state,
            "open"
        );
        std::thread::sleep(Duration::from_millis(30));
        b.attempt(Handler::Tool, "r", LONG).unwrap().succeeded();
        for _ in 0..3 {
            b.attempt(Handler::Tool, "r", LONG).unwrap().succeeded();
        }
        assert!(b.not_closed().is_empty());
    }

    #[test]
    fn a_cancelled_call_counts_for_nothing_and_a_timed_out_one_fails() {
        let b = breakers(1, LONG);
        drop(b.attempt(Handler::Tool, "t", LONG).unwrap());
        assert!(
            b.attempt(Handler::Tool, "t", LONG).is_ok(),
            "a cancel is no failure"
        );
        drop(b.attempt(Handler::Tool, "t", Duration::ZERO).unwrap());
        assert!(
            b.attempt(Handler::Tool, "t", LONG).is_err(),
            "past the timeout: a failure"
        );
    }

    #[test]
    fn a_cancelled_probe_lets_the_next_call_probe() {
        let b = breakers(1, Duration::from_millis(10));
        b.attempt(Handler::Tool, "t", LONG).unwrap().failed();
        std::thread::sleep(Duration::from_millis(20));
        drop(b.attempt(Handler::Tool, "t", LONG).unwrap());
        b.attempt(Handler::Tool, "t", LONG).unwrap().succeeded();
        assert!(b.not_closed().is_empty());
    }

    #[test]
    fn a_panic_in_the_call_is_a_failure() {
        let b = breakers(1, LONG);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _attempt = b.attempt(Handler::Tool, "t", LONG).unwrap();
            panic!("the handler failed");
        }));
        assert!(caught.is_err());
        assert!(b.attempt(Handler::Tool, "t", LONG).is_err());
    }

    #[test]
    fn off_never_opens() {
        {
            let b = breakers(0, LONG);
            for _ in 0..10 {
                b.attempt(Handler::Tool, "t", LONG).unwrap().failed();
            }
            assert!(b.attempt(Handler::Tool, "t", LONG).is_ok());
        }
    }
}
