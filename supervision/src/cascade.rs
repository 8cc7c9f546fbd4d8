//! Cascade detection and stop-the-line.
//!
//! A supervisor's restart intensity catches one child crashing over and
//! over. It does not catch a storm spread over many children: ten thousand
//! sessions each crashing once (a poisoned input every client sends, a
//! handler that fails for everyone) never restart, so no intensity is ever
//! reached, and the tree keeps starting fresh victims. A [`Cascade`] counts
//! the abnormal exits of every child of the supervisors that share it (the
//! shards of a sharded supervisor share one, so the count is the
//! subtree's) in a sliding window. More than `failures` within `window`
//! trips it, and its [`CascadeAction`] says what follows:
//!
//! - [`CascadeAction::Isolate`] (the default): its supervisors stop
//!   restarting children and refuse new ones with
//!   [`ChildError::Isolated`](crate::ChildError::Isolated) (a listener in
//!   front of them refuses connections instead), until the cool-down ends
//!   or an operator calls [`Cascade::reset`]; then children left down start
//!   again.
//! - [`CascadeAction::Stop`] (andon): the same, and [`Cascade::stopped`]
//!   resolves with the [`Trip`], for whoever owns the node to stop it
//!   cleanly with that reason.
//!
//! OTP has no such rule: its answer to a storm is the intensity of each
//! supervisor up the tree, which a dynamic supervisor's temporary children
//! never reach.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;

/// What a tripped cascade does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CascadeAction {
    /// Isolate the subtree: no restarts, no new children, until reset.
    #[default]
    Isolate,
    /// Isolate it and ask the node to stop ([`Cascade::stopped`]).
    Stop,
}

/// When a cascade trips and what it then does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CascadePolicy {
    /// More abnormal exits than this within `window` trip it.
    pub failures: u32,
    /// The sliding window they are counted in.
    pub window: Duration,
    /// What a trip does.
    pub action: CascadeAction,
    /// How long an isolation lasts before it lifts by itself; `None` waits
    /// for [`Cascade::reset`].
    pub cool_down: Option<Duration>,
}

impl Default for CascadePolicy {
    /// 100 failures in 10 s isolate for 60 s.
    fn default() -> Self {
        CascadePolicy {
            failures: 100,
            window: Duration::from_secs(10),
            action: CascadeAction::Isolate,
            cool_down: Some(Duration::from_secs(60)),
        }
    }
}

/// Why a cascade tripped: which subtree, how many failures in what window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trip {
    /// The subtree's name (its supervisor's path or id).
    pub subtree: Arc<str>,
    /// The abnormal exits counted when it tripped.
    pub failures: u32,
    /// The window they fell in.
    pub window: Duration,
}

impl fmt::Display for Trip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cascade in {}: {} abnormal exits within {:?}",
            self.subtree, self.failures, self.window
        )
    }
}

/// A tripped cascade: why, and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Isolation {
    /// Why it tripped.
    pub trip: Trip,
    /// When it lifts by itself; `None` waits for an operator.
    pub until: Option<Instant>,
}

impl Isolation {
    /// How long until it lifts by itself, if it does.
    pub fn retry_after(&self) -> Option<Duration> {
        self.until
            .map(|u| u.saturating_duration_since(Instant::now()))
    }
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "isolated: {}", self.trip)?;
        match self.retry_after() {
            Some(left) => write!(f, " (lifts in {}s)", left.as_secs().max(1)),
            None => write!(f, " (until reset)"),
        }
    }
}

/// A snapshot of a cascade, for metrics and the dashboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CascadeStatus {
    /// The subtree's name.
    pub subtree: Arc<str>,
    /// Abnormal exits within the window now.
    pub recent_failures: usize,
    /// Trips since it was made.
    pub trips: u64,
    /// The isolation in force, if any.
    pub isolation: Option<Isolation>,
}

/// A failure counter shared by the supervisors of one subtree; cloning it
/// shares it. See the [module docs](self).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use arbor_supervision::cascade::{Cascade, CascadeAction, CascadePolicy};
///
/// let cascade = Cascade::new("sessions", CascadePolicy {
///     failures: 2,
///     window: Duration::from_secs(10),
///     action: CascadeAction::Isolate,
///     cool_down: None,
/// });
/// assert!(cascade.failed().is_none());
/// assert!(cascade.failed().is_none());
/// let trip = cascade.failed().expect("the third failure trips it");
/// assert_eq!(trip.failures, 3);
/// assert!(cascade.isolation().is_some());
/// assert!(cascade.reset());
/// assert!(cascade.isolation().is_none());
/// ```
#[derive(Clone)]
pub struct Cascade(Arc<Inner>);

struct Inner {
    subtree: Arc<str>,
    policy: CascadePolicy,
    state: Mutex<State>,
    /// Whether `state` holds an isolation, written under its lock: the
    /// listeners ask on every connection and HTTP on every 2026-07-28
    /// request, and almost always the answer is no, without the lock.
    isolated: AtomicBool,
    /// Bumped at every trip and every lift, for those waiting on either.
    changes: watch::Sender<u64>,
    /// The trip that stops the node, under [`CascadeAction::Stop`].
    stop: watch::Sender<Option<Trip>>,
}

#[derive(Default)]
struct State {
    failures: VecDeque<Instant>,
    trips: u64,
    isolation: Option<Isolation>,
}

impl fmt::Debug for Cascade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cascade")
            .field("subtree", &self.0.subtree)
            .field("policy", &self.0.policy)
            .finish()
    }
}

impl Cascade {
    /// A cascade for the subtree named `subtree`.
    pub fn new(subtree: impl Into<Arc<str>>, policy: CascadePolicy) -> Self {
        Cascade(Arc::new(Inner {
            subtree: subtree.into(),
            policy,
            state: Mutex::new(State::default()),
            isolated: AtomicBool::new(false),
            changes: watch::Sender::new(0),
            stop: watch::Sender::new(None),
        }))
    }

    /// The subtree's name.
    pub fn subtree(&self) -> &Arc<str> {
        &self.0.subtree
    }

    /// Its policy.
    pub fn policy(&self) -> &CascadePolicy {
        &self.0.policy
    }

    /// Counts one abnormal exit; the [`Trip`] if this one tripped it.
    /// Exits while isolated are not counted: the isolation already holds.
    pub fn failed(&self) -> Option<Trip> {
        let now = Instant::now();
        let policy = &self.0.policy;
        let trip = {
            let mut state = self.0.state.lock();
            if self.0.lift_if_due(&mut state, now) {
                drop(state);
                self.lifted("cool_down");
                return self.failed();
            }
            if state.isolation.is_some() {
                return None;
            }
            while state
                .failures
                .front()
                .is_some_and(|&t| now.saturating_duration_since(t) >= policy.window)
            {
                state.failures.pop_front();
            }
            state.failures.push_back(now);
            if state.failures.len() <= policy.failures as usize {
                return None;
            }
            let trip = Trip {
                subtree: self.0.subtree.clone(),
                failures: u32::try_from(state.failures.len()).unwrap_or(u32::MAX),
                window: policy.window,
            };
            state.failures.clear();
            state.trips += 1;
            state.isolation = Some(Isolation {
                trip: trip.clone(),
                until: policy.cool_down.map(|d| now + d),
            });
            self.0.isolated.store(true, Ordering::Release);
            trip
        };
        tracing::error!(
            target: "arbor::supervision",
            event = "cascade_tripped",
            subtree = %trip.subtree,
            failures = trip.failures,
            window_ms = trip.window.as_millis() as u64,
            action = ?policy.action,
        );
        self.0.changes.send_modify(|n| *n += 1);
        if policy.action == CascadeAction::Stop {
            self.0.stop.send_replace(Some(trip.clone()));
        }
        Some(trip)
    }

    /// The isolation in force, if any (one whose cool-down has passed is
    /// lifted here).
    pub fn isolation(&self) -> Option<Isolation> {
        if !self.0.isolated.load(Ordering::Acquire) {
            return None;
        }
        let mut state = self.0.state.lock();
        if self.0.lift_if_due(&mut state, Instant::now()) {
            drop(state);
            self.lifted("cool_down");
            return None;
        }
        state.isolation.clone()
    }

    /// Lifts the isolation now (an operator's reset); `false` if there was
    /// none.
    pub fn reset(&self) -> bool {
        let was = {
            let mut state = self.0.state.lock();
            state.failures.clear();
            self.0.isolated.store(false, Ordering::Release);
            state.isolation.take().is_some()
        };
        if was {
            self.lifted("reset");
        }
        was
    }

    fn lifted(&self, by: &'static str) {
        tracing::warn!(
            target: "arbor::supervision",
            event = "cascade_lifted",
            subtree = %self.0.subtree,
            by,
        );
        self.0.changes.send_modify(|n| *n += 1);
    }

    /// Resolves once no isolation is in force: at once if none is, else at
    /// its cool-down's end or its reset, whichever comes first.
    pub async fn cleared(&self) {
        let mut changes = self.0.changes.subscribe();
        loop {
            let Some(isolation) = self.isolation() else {
                return;
            };
            match isolation.until {
                Some(until) => {
                    let until = tokio::time::Instant::from_std(until);
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => {}
                        _ = changes.changed() => {}
                    }
                }
                None => {
                    if changes.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Resolves with the trip that asks the node to stop, under
    /// [`CascadeAction::Stop`]; never under [`CascadeAction::Isolate`].
    pub async fn stopped(&self) -> Trip {
        let mut stop = self.0.stop.subscribe();
        loop {
            if let Some(trip) = stop.borrow_and_update().clone() {
                return trip;
            }
            if stop.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// A snapshot: failures in the window now, trips, the isolation.
    pub fn status(&self) -> CascadeStatus {
        let isolation = self.isolation();
        let now = Instant::now();
        let state = self.0.state.lock();
        let window = self.0.policy.window;
        CascadeStatus {
            subtree: self.0.subtree.clone(),
            recent_failures: state
                .failures
                .iter()
                .filter(|&&t| now.saturating_duration_since(t) < window)
                .count(),
            trips: state.trips,
            isolation,
        }
    }
}

impl Inner {
    /// Lifts an isolation whose cool-down has passed; whether it did.
    fn lift_if_due(&self, state: &mut State, now: Instant) -> bool {
        let due = state
            .isolation
            .as_ref()
            .and_then(|i| i.until)
            .is_some_and(|until| until <= now);
        if due {
            state.isolation = None;
            self.isolated.store(false, Ordering::Release);
        }
        due
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy(failures: u32, cool_down: Option<Duration>) -> CascadePolicy {
        CascadePolicy {
            failures,
            window: Duration::from_secs(60),
            action: CascadeAction::Isolate,
            cool_down,
        }
    }

    #[test]
    fn failures_past_the_threshold_trip_it_and_later_ones_are_not_counted() {
        let c = Cascade::new("s", policy(3, None));
        for _ in 0..3 {
            assert!(c.failed().is_none());
        }
        assert_eq!(c.status().recent_failures, 3);
        let trip = c.failed().unwrap();
        assert_eq!((trip.failures, &*trip.subtree), (4, "s"));
        assert!(c.failed().is_none(), "isolated: no second trip");
        let status = c.status();
        assert_eq!((status.trips, status.recent_failures), (1, 0));
        assert!(status.isolation.unwrap().until.is_none());
    }

    #[test]
    fn failures_older_than_the_window_fall_out() {
        let c = Cascade::new(
            "s",
            CascadePolicy {
                window: Duration::from_millis(30),
                ..policy(1, None)
            },
        );
        assert!(c.failed().is_none());
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.failed().is_none(), "the first fell out of the window");
        assert!(c.failed().is_some());
    }

    #[tokio::test]
    async fn an_isolation_lifts_after_its_cool_down_and_cleared_wakes() {
        let c = Cascade::new("s", policy(0, Some(Duration::from_millis(50))));
        assert!(c.failed().is_some());
        assert!(c.isolation().is_some());
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(2), c.cleared())
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(40));
        assert!(c.isolation().is_none());
    }

    #[tokio::test]
    async fn a_reset_wakes_cleared_and_stop_resolves_only_under_stop() {
        let c = Cascade::new("s", policy(0, None));
        let waiting = tokio::spawn({
            let c = c.clone();
            async move { c.cleared().await }
        });
        assert!(c.failed().is_some());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        assert!(c.reset());
        tokio::time::timeout(Duration::from_secs(2), waiting)
            .await
            .unwrap()
            .unwrap();
        let never = tokio::time::timeout(Duration::from_millis(30), c.stopped()).await;
        assert!(never.is_err(), "isolate does not stop the node");

        let andon = Cascade::new(
            "t",
            CascadePolicy {
                action: CascadeAction::Stop,
                ..policy(0, None)
            },
        );
        let stop = tokio::spawn({
            let c = andon.clone();
            async move { c.stopped().await }
        });
        andon.failed();
        let trip = tokio::time::timeout(Duration::from_secs(2), stop)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&*trip.subtree, "t");
    }
}
