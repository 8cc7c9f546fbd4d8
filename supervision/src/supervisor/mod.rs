//! The supervisor: starts children in order, restarts them by its strategy,
//! gives up past its restart intensity, and stops them in reverse order.
//!
//! # Start and shutdown
//! - Children start one after the other, in the order they were given. A
//!   child that fails to start fails the supervisor's start with that error,
//!   after the children already started are stopped again.
//! - On shutdown, children stop in reverse start order. Each is asked to stop
//!   and given its [`Shutdown`](crate::Shutdown) time, then killed. A dynamic supervisor stops
//!   all its children at once, as OTP's `simple_one_for_one` does, and so do
//!   the shards of a sharded one.
//!
//! # Restarts
//! - [`Strategy::OneForOne`]: only the child that exited is restarted.
//! - [`Strategy::OneForAll`]: the other children are stopped in reverse
//!   order, then all are started again in order.
//! - [`Strategy::RestForOne`]: the children started after the one that
//!   exited are stopped in reverse order, then it and they start again.
//! - More than `intensity` restarts within `period` make the supervisor stop
//!   its children and exit with [`ExitReason::Shutdown`](arbor_runtime::ExitReason::Shutdown), as `supervisor(3)`
//!   says; why it gave up (the child, the restarts, the window) goes in its
//!   `reached_max_restart_intensity` event. Its own supervisor then applies its
//!   strategy: a permanent supervisor child is restarted, a transient one
//!   stays stopped (escalation).
//! - A start function may answer [`Started::Ignore`](crate::Started::Ignore): the child's
//!   specification is kept, not running, and `restart_child` may start it.
//! - With [`AutoShutdown`] other than `Never`, the exit of significant
//!   children ([`ChildSpec::significant`](crate::ChildSpec::significant)) that are not restarted shuts the
//!   supervisor down with `shutdown` (OTP 24). Only exits a child makes by
//!   itself count: not those of `terminate_child` or of a strategy's restart.
//!
//! # Where arbor differs from OTP, on purpose
//! - The default intensity is 3 restarts in 5 seconds, Elixir's
//!   `Supervisor` default; OTP's is 1 in 5.
//! - Stopping a child asks it to stop ([`ProcessRef::stop`](arbor_runtime::ProcessRef::stop): it finishes the
//!   message at hand and runs its cleanup) whether or not it traps exits;
//!   OTP's `exit(Child, shutdown)` kills a child that does not trap exits at
//!   once. A child that does not stop within its [`Shutdown`](crate::Shutdown) time is killed,
//!   as in OTP.
//!
//! A supervisor is a ractor actor run as an arbor process: it traps exits and
//! is linked to each child, so a child's exit reaches it as a message, and a
//! supervisor that is killed takes its children with it.

use std::sync::Arc;
use std::time::Duration;

mod errors;
mod handle;
mod state;

pub use errors::{ChildError, StartError};
pub use handle::{ChildCounts, ChildInfo, SupervisorRef, SupervisorStatus};

use crate::cascade::Cascade;
use crate::spec::{ChildId, ChildSpec};

/// How long calls to a supervisor wait for an answer. Starting a child runs
/// its initialisation inside the supervisor, so this is generous.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Messages a supervisor holds before calls are refused with
/// [`CallError::Full`](arbor_runtime::CallError::Full); exit signals always get in.
pub const SUPERVISOR_MAILBOX_CAPACITY: usize = 1 << 16;

/// Which children restart when one exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Only the child that exited.
    OneForOne,
    /// All children.
    OneForAll,
    /// The child that exited and every child started after it.
    RestForOne,
}

/// When a supervisor shuts itself down because significant children
/// exited (OTP 24's `auto_shutdown`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AutoShutdown {
    /// Never; no child may be significant. The default.
    #[default]
    Never,
    /// As soon as any significant child exits by itself and is not restarted.
    AnySignificant,
    /// Once every significant child has exited: the last one to exit by
    /// itself, not restarted, shuts the supervisor down.
    AllSignificant,
}

/// A supervisor's specification: strategy, restart intensity and children.
///
/// Defaults: at most 3 restarts in 5 seconds (Elixir's default; OTP's is 1
/// in 5), no children, [`AutoShutdown::Never`], named `"supervisor"`.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use arbor_runtime::{spawn, Actor, Context, Flow};
/// use arbor_supervision::{ChildSpec, Strategy, Supervisor};
///
/// struct Worker;
/// impl Actor for Worker {
///     type Msg = ();
///     async fn handle(&mut self, _: (), _: &mut Context<Self>) -> Flow {
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let sup = Supervisor::new(Strategy::OneForOne)
///     .intensity(5, Duration::from_secs(10))
///     .child(ChildSpec::worker("worker", || spawn(Worker)))
///     .start()
///     .await?;
/// let children = sup.which_children().await?;
/// assert_eq!(&*children[0].id, "worker");
/// assert!(children[0].process.is_some());
/// sup.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a supervisor does nothing until started"]
pub struct Supervisor {
    name: Arc<str>,
    strategy: Strategy,
    intensity: u32,
    period: Duration,
    children: Vec<ChildSpec>,
    mode: Mode,
    stop_order: StopOrder,
    auto_shutdown: AutoShutdown,
    cascade: Option<Cascade>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Static,
    Dynamic { max_children: Option<usize> },
}

/// How a supervisor stops its children when it stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopOrder {
    /// Last started first, one after another: a child may depend on those
    /// started before it (OTP's order for static children).
    Reverse,
    /// All at once: the children are independent peers (dynamic children,
    /// the shards of a sharded supervisor), so each draining in turn would
    /// only add their drain times up.
    Together,
}

impl Supervisor {
    /// A supervisor with this strategy and the defaults.
    pub fn new(strategy: Strategy) -> Self {
        Supervisor {
            name: "supervisor".into(),
            strategy,
            intensity: 3,
            period: Duration::from_secs(5),
            children: Vec::new(),
            mode: Mode::Static,
            stop_order: StopOrder::Reverse,
            auto_shutdown: AutoShutdown::Never,
            cascade: None,
        }
    }

    /// A one_for_one supervisor whose children are all added at run time
    /// (OTP's `simple_one_for_one`); see [`crate::DynamicSupervisor`].
    pub(crate) fn dynamic(max_children: Option<usize>) -> Self {
        Supervisor {
            mode: Mode::Dynamic { max_children },
            stop_order: StopOrder::Together,
            ..Supervisor::new(Strategy::OneForOne)
        }
    }

    /// Stops all children at once instead of in reverse order: for children
    /// that are independent peers (shards, transports that each drain their
    /// connections), whose drain times would otherwise add up. OTP always
    /// stops a static supervisor's children in reverse order; this is
    /// arbor's own.
    pub fn stop_together(mut self) -> Self {
        self.stop_order = StopOrder::Together;
        self
    }

    pub(crate) fn max_children(mut self, max: usize) -> Self {
        self.mode = Mode::Dynamic {
            max_children: Some(max),
        };
        self
    }

    /// Names the supervisor in its events and in kill-hook paths.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Allows at most `max_restarts` restarts within `period`.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.intensity = max_restarts;
        self.period = period;
        self
    }

    /// Shuts the supervisor down when its significant children exit; see
    /// [`AutoShutdown`].
    pub fn auto_shutdown(mut self, auto_shutdown: AutoShutdown) -> Self {
        self.auto_shutdown = auto_shutdown;
        self
    }

    /// Counts its children's abnormal exits in `cascade`, which isolates it
    /// (no restarts, no new children) once they come too fast; see
    /// [`crate::cascade`]. Supervisors given clones of one cascade count
    /// together.
    pub fn cascade(mut self, cascade: Cascade) -> Self {
        self.cascade = Some(cascade);
        self
    }

    /// Adds a child, started after those added before it.
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.children.push(spec);
        self
    }

    /// Starts the supervisor and its children, in order.
    ///
    /// # Errors
    /// [`StartError::ChildFailed`] when a child fails to start (the children
    /// started before it are stopped again); [`StartError::DuplicateChildId`],
    /// [`StartError::InvalidChild`] and [`StartError::InvalidPeriod`] for a
    /// bad specification.
    pub async fn start(self) -> Result<SupervisorRef, StartError> {
        if self.period.is_zero() {
            return Err(StartError::InvalidPeriod(self.period));
        }
        let mut seen = std::collections::HashSet::new();
        for spec in &self.children {
            if !seen.insert(spec.id.clone()) {
                return Err(StartError::DuplicateChildId(spec.id.clone()));
            }
            spec.check(self.auto_shutdown)?;
        }
        state::spawn(self).await
    }

    /// This supervisor as a child of another one: a permanent child of kind
    /// [`ChildKind::Supervisor`](crate::ChildKind::Supervisor) with an infinite shutdown, named `id`.
    pub fn into_child_spec(self, id: impl Into<ChildId>) -> ChildSpec {
        let id = id.into();
        let sup = self.name(id.clone());
        ChildSpec::supervisor(id, move || {
            let sup = sup.clone();
            async move { sup.start().await }
        })
    }
}
