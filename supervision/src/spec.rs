//! Child specifications: plain data describing how to start, restart and
//! stop one child.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arbor_runtime::{ActorRef, ExitReason, ProcessRef, RactorRef};
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
/// A normal exit is `normal`, `shutdown` or `{shutdown, Term}`
/// ([`ExitReason::is_clean`]), as in OTP.
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
            Restart::Transient => !reason.is_clean(),
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

/// What a start function gives back: the child it started, or OTP's
/// `ignore`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Started<H> {
    /// The child runs; `H` is its handle.
    Running(H),
    /// The start function chose not to start a child (OTP's `ignore`). A
    /// static supervisor keeps the specification, not running, for
    /// [`SupervisorRef::restart_child`](crate::SupervisorRef::restart_child);
    /// a dynamic one adds nothing.
    Ignore,
}

impl<H> Started<H> {
    /// The handle, unless the start was ignored.
    pub fn running(self) -> Option<H> {
        match self {
            Started::Running(h) => Some(h),
            Started::Ignore => None,
        }
    }
}

/// A handle to a process a start function started: what the supervisor
/// links to and watches. A pair `(handle, extra)` hands back whatever the
/// start function made beside the process (a channel's receiving end, say).
pub trait ChildHandle: Send + 'static {
    /// The process to supervise.
    fn child_process(&self) -> ProcessRef;
}

impl ChildHandle for ProcessRef {
    fn child_process(&self) -> ProcessRef {
        self.clone()
    }
}

impl<M: Send + 'static> ChildHandle for ActorRef<M> {
    fn child_process(&self) -> ProcessRef {
        self.process()
    }
}

impl<M: ractor::Message> ChildHandle for RactorRef<M> {
    fn child_process(&self) -> ProcessRef {
        self.process()
    }
}

impl<H: ChildHandle, T: Send + 'static> ChildHandle for (H, T) {
    fn child_process(&self) -> ProcessRef {
        self.0.child_process()
    }
}

/// What a start function may return on success: a [`ChildHandle`], or a
/// [`Started`] when it may also answer [`Started::Ignore`].
pub trait IntoStarted {
    /// The handle of the started child.
    type Handle: ChildHandle;
    /// As a [`Started`].
    fn into_started(self) -> Started<Self::Handle>;
}

impl<H: ChildHandle> IntoStarted for H {
    type Handle = H;
    fn into_started(self) -> Started<H> {
        Started::Running(self)
    }
}

impl<H: ChildHandle> IntoStarted for Started<H> {
    type Handle = H;
    fn into_started(self) -> Started<H> {
        self
    }
}

/// The future a start function returns, as the supervisor sees it.
pub type StartFuture = BoxFuture<'static, Result<Started<ProcessRef>, ExitReason>>;

/// Starts a child, and starts it again on every restart.
#[derive(Clone)]
pub struct StartFn(pub(crate) Arc<dyn Fn() -> StartFuture + Send + Sync>);

impl StartFn {
    /// Wraps a function that starts a process: it returns a
    /// [`ChildHandle`] (an `ActorRef`, a `RactorRef`, a `SupervisorRef`, a
    /// `ProcessRef`) or a [`Started`], with any error that turns into an
    /// [`ExitReason`].
    pub fn new<F, Fut, P, E>(start: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<P, E>> + Send + 'static,
        P: IntoStarted,
        E: Into<ExitReason>,
    {
        StartFn(Arc::new(move || {
            let fut = start();
            Box::pin(async move {
                match fut.await.map_err(Into::into)?.into_started() {
                    Started::Running(h) => Ok(Started::Running(h.child_process())),
                    Started::Ignore => Ok(Started::Ignore),
                }
            })
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
/// - `significant`: whether its own exit may shut its supervisor down
///   (see [`AutoShutdown`](crate::AutoShutdown)); default `false`. Only a
///   transient or temporary child may be significant, as in OTP.
#[derive(Clone, Debug)]
#[must_use = "a child spec does nothing until given to a supervisor"]
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
    /// Its exit (when not restarted) counts for its supervisor's
    /// [`AutoShutdown`](crate::AutoShutdown).
    pub significant: bool,
}

impl ChildSpec {
    /// A permanent worker with the default 5 s shutdown timeout.
    pub fn worker<F, Fut, P, E>(id: impl Into<ChildId>, start: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<P, E>> + Send + 'static,
        P: IntoStarted,
        E: Into<ExitReason>,
    {
        ChildSpec {
            id: id.into(),
            start: StartFn::new(start),
            restart: Restart::Permanent,
            shutdown: DEFAULT_WORKER_SHUTDOWN,
            kind: ChildKind::Worker,
            significant: false,
        }
    }

    /// A permanent supervisor child with an infinite shutdown timeout.
    pub fn supervisor<F, Fut, P, E>(id: impl Into<ChildId>, start: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<P, E>> + Send + 'static,
        P: IntoStarted,
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

    /// Makes the child significant (OTP 24's `significant => true`): when it
    /// exits by itself and is not restarted, its supervisor's
    /// [`AutoShutdown`](crate::AutoShutdown) may shut the supervisor down.
    /// A supervisor refuses a significant child that is permanent, or that
    /// it would never act on ([`AutoShutdown::Never`](crate::AutoShutdown)).
    pub fn significant(mut self) -> Self {
        self.significant = true;
        self
    }

    /// Why this child cannot run under a supervisor with `auto_shutdown`.
    pub(crate) fn check(&self, auto_shutdown: crate::AutoShutdown) -> Result<(), InvalidChild> {
        if !self.significant {
            return Ok(());
        }
        if self.restart == Restart::Permanent {
            return Err(InvalidChild::SignificantPermanent(self.id.clone()));
        }
        if auto_shutdown == crate::AutoShutdown::Never {
            return Err(InvalidChild::SignificantWithoutAutoShutdown(
                self.id.clone(),
            ));
        }
        Ok(())
    }
}

/// A child specification its supervisor refuses, as OTP's
/// `supervisor:check_childspecs/2` does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidChild {
    /// A permanent child is always restarted, so it cannot be significant.
    #[error("child {0:?} is permanent and significant: only transient and temporary children can be significant")]
    SignificantPermanent(ChildId),
    /// The supervisor's auto_shutdown is never: a significant child would
    /// mean nothing.
    #[error("child {0:?} is significant, but the supervisor's auto_shutdown is never")]
    SignificantWithoutAutoShutdown(ChildId),
}
