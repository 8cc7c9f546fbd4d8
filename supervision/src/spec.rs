//! Child specifications: plain data describing how to start, restart and
//! stop one child.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arbor_runtime::{ExitReason, ProcessRef};
use futures_util::future::BoxFuture;

/// A child's identifier, unique among its siblings.
pub type ChildId = Arc<str>;

/// When a child is restarted after it exits.
///
/// | restart   | normal exit | abnormal exit |
/// |-----------|-------------|---------------|
/// | Permanent | restarted   | restarted     |
/// | Transient | not         | restarted     |
/// | Temporary | not         | not           |
///
/// A normal exit is [`ExitReason::Normal`] or [`ExitReason::Shutdown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Restart {
    /// Always restarted. The default.
    #[default]
    Permanent,
    /// Restarted only after an abnormal exit.
    Transient,
    /// Never restarted; removed from its supervisor when it exits.
    Temporary,
}

impl Restart {
    /// Whether a child with this policy is restarted after exiting with `reason`.
    pub fn restarts_after(self, reason: &ExitReason) -> bool {
        match self {
            Restart::Permanent => true,
            Restart::Transient => !reason.is_normal(),
            Restart::Temporary => false,
        }
    }
}

/// How a supervisor stops a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// Kill it at once; it runs no cleanup.
    BrutalKill,
    /// Ask it to stop, wait up to this long, then kill it.
    Timeout(Duration),
    /// Ask it to stop and wait as long as it takes. The default for
    /// supervisors, which need the time to stop their own children.
    Infinity,
}

/// The default shutdown timeout of a worker: 5 seconds, as in OTP.
pub const DEFAULT_WORKER_SHUTDOWN: Shutdown = Shutdown::Timeout(Duration::from_secs(5));

/// Whether a child is a worker or a supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildKind {
    /// Does the work.
    Worker,
    /// Supervises children of its own.
    Supervisor,
}

/// The future a start function returns.
pub type StartFuture = BoxFuture<'static, Result<ProcessRef, ExitReason>>;

/// Starts a child, and starts it again on every restart.
#[derive(Clone)]
pub struct StartFn(pub(crate) Arc<dyn Fn() -> StartFuture + Send + Sync>);

impl StartFn {
    /// Wraps a function that starts a process: anything that turns into a
    /// [`ProcessRef`] (an `ActorRef`, a `RactorRef`, a `SupervisorRef`), with
    /// any error that turns into an [`ExitReason`].
    pub fn new<F, Fut, P, E>(start: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<P, E>> + Send + 'static,
        P: Into<ProcessRef>,
        E: Into<ExitReason>,
    {
        StartFn(Arc::new(move || {
            let fut = start();
            Box::pin(async move { fut.await.map(Into::into).map_err(Into::into) })
        }))
    }

    /// Starts the child once.
    pub fn start(&self) -> StartFuture {
        (self.0)()
    }
}

impl fmt::Debug for StartFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StartFn")
    }
}

/// How to start, restart and stop one child.
///
/// - `id`: unique among the supervisor's children; kill hooks address
///   children by paths of ids.
/// - `start`: called to start the child, and again on every restart.
/// - `restart`: [`Restart`]; default [`Restart::Permanent`].
/// - `shutdown`: [`Shutdown`]; default [`DEFAULT_WORKER_SHUTDOWN`] for a
///   worker and [`Shutdown::Infinity`] for a supervisor.
/// - `kind`: [`ChildKind`].
#[derive(Clone, Debug)]
pub struct ChildSpec {
    /// Unique among siblings.
    pub id: ChildId,
    /// Starts the child.
    pub start: StartFn,
    /// When it is restarted.
    pub restart: Restart,
    /// How it is stopped.
    pub shutdown: Shutdown,
    /// Worker or supervisor.
    pub kind: ChildKind,
}

impl ChildSpec {
    /// A permanent worker with the default 5 s shutdown timeout.
    pub fn worker<F, Fut, P, E>(id: impl Into<ChildId>, start: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<P, E>> + Send + 'static,
        P: Into<ProcessRef>,
        E: Into<ExitReason>,
    {
        ChildSpec {
            id: id.into(),
            start: StartFn::new(start),
            restart: Restart::Permanent,
            shutdown: DEFAULT_WORKER_SHUTDOWN,
            kind: ChildKind::Worker,
        }
    }

    /// A permanent supervisor child with an infinite shutdown timeout.
    pub fn supervisor<F, Fut, P, E>(id: impl Into<ChildId>, start: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<P, E>> + Send + 'static,
        P: Into<ProcessRef>,
        E: Into<ExitReason>,
    {
        ChildSpec {
            shutdown: Shutdown::Infinity,
            kind: ChildKind::Supervisor,
            ..ChildSpec::worker(id, start)
        }
    }

    /// Sets the restart policy.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets how the child is stopped.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }
}
