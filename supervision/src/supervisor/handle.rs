//! [`SupervisorRef`]: a running supervisor's handle, the calls it answers
//! and what they report.

use std::sync::Arc;
use std::time::Duration;

use arbor_runtime::{CallError, ExitReason, ExitSignal, Pid, ProcessRef, RactorRef, Reply};

use super::{ChildError, Strategy, CALL_TIMEOUT};
use crate::cascade::{Cascade, CascadeStatus};
use crate::spec::{ChildHandle, ChildId, ChildKind, ChildSpec, Restart, Started};

/// One child, as [`SupervisorRef::which_children`] reports it.
#[derive(Clone, Debug)]
pub struct ChildInfo {
    /// The child's id.
    pub id: ChildId,
    /// Its process while it runs.
    pub process: Option<ProcessRef>,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Its restart policy.
    pub restart: Restart,
}

/// Child counts, as [`SupervisorRef::count_children`] reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildCounts {
    /// All children, running or not.
    pub specs: usize,
    /// Running children.
    pub active: usize,
    /// Children that are supervisors.
    pub supervisors: usize,
    /// Children that are workers.
    pub workers: usize,
}

/// Names a child by id or by pid.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    Id(ChildId),
    Pid(Pid),
}

/// What a supervisor says of itself: its strategy, its restart intensity
/// and how much of it is used, its children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupervisorStatus {
    /// Its name ([`Supervisor::name`](super::Supervisor::name)).
    pub name: Arc<str>,
    /// Which children restart when one exits.
    pub strategy: Strategy,
    /// The most restarts allowed within `period`.
    pub intensity: u32,
    /// The window the intensity counts over.
    pub period: Duration,
    /// Restarts since it started (each exit that restarted children counts
    /// once, whatever the strategy restarted).
    pub restarts: u64,
    /// Children that exited abnormally (crashed or were killed) since it
    /// started, restarted or not: a temporary child killed shows here, not
    /// in `restarts`.
    pub abnormal_exits: u64,
    /// Restarts within the last `period`: past `intensity`, it gives up.
    pub recent_restarts: usize,
    /// Its children.
    pub children: ChildCounts,
    /// The cascade it counts its children's failures in, if any.
    pub cascade: Option<CascadeStatus>,
}

/// The supervisor's messages.
pub(crate) enum SupervisorMsg {
    Exit(ExitSignal),
    SetParent(Pid),
    Start(ChildSpec, Reply<Result<Started<ProcessRef>, ChildError>>),
    Terminate(Target, Reply<Result<(), ChildError>>),
    Restart(ChildId, Reply<Result<Started<ProcessRef>, ChildError>>),
    Delete(ChildId, Reply<Result<(), ChildError>>),
    Which(Reply<Vec<ChildInfo>>),
    Count(Reply<ChildCounts>),
    Status(Reply<SupervisorStatus>),
    Cascade(Reply<Option<Cascade>>),
    /// A restart failed to start its child; try that restart again.
    Retry(u64),
}

/// A handle to a running supervisor.
#[derive(Clone, Debug)]
pub struct SupervisorRef {
    pub(super) actor: RactorRef<SupervisorMsg>,
}

impl From<SupervisorRef> for ProcessRef {
    fn from(sup: SupervisorRef) -> Self {
        sup.process()
    }
}

impl ChildHandle for SupervisorRef {
    fn child_process(&self) -> ProcessRef {
        self.process()
    }
}

impl SupervisorRef {
    /// The supervisor of this process, if it is one.
    pub fn from_process(process: &ProcessRef) -> Option<SupervisorRef> {
        RactorRef::<SupervisorMsg>::from_process(process).map(|actor| SupervisorRef { actor })
    }

    /// The supervisor as a process.
    pub fn process(&self) -> ProcessRef {
        self.actor.process()
    }

    /// The supervisor's pid.
    pub fn pid(&self) -> Pid {
        self.actor.pid()
    }

    async fn call<R>(
        &self,
        request: impl FnOnce(Reply<R>) -> SupervisorMsg,
    ) -> Result<R, CallError> {
        self.actor.call(request, CALL_TIMEOUT).await
    }

    /// Every child, in start order.
    ///
    /// # Errors
    /// A [`CallError`] if the supervisor does not answer.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, CallError> {
        self.call(SupervisorMsg::Which).await
    }

    /// How many children there are, and of which kind.
    ///
    /// # Errors
    /// A [`CallError`] if the supervisor does not answer.
    pub async fn count_children(&self) -> Result<ChildCounts, CallError> {
        self.call(SupervisorMsg::Count).await
    }

    /// Its strategy, restart intensity, restarts so far and children.
    ///
    /// # Errors
    /// A [`CallError`] if the supervisor does not answer.
    pub async fn status(&self) -> Result<SupervisorStatus, CallError> {
        self.call(SupervisorMsg::Status).await
    }

    /// The [`Cascade`] it counts its children's failures in, if any: an
    /// operator resets an isolation through it.
    ///
    /// # Errors
    /// A [`CallError`] if the supervisor does not answer.
    pub async fn cascade(&self) -> Result<Option<Cascade>, CallError> {
        self.call(SupervisorMsg::Cascade).await
    }

    /// Adds a child after the existing ones and starts it. A start that
    /// answers [`Started::Ignore`] keeps the specification, not running.
    ///
    /// # Errors
    /// [`ChildError::AlreadyStarted`] when a child with this id runs,
    /// [`ChildError::AlreadyPresent`] when one exists, not running;
    /// [`ChildError::InvalidChild`], [`ChildError::StartFailed`],
    /// [`ChildError::Isolated`] while its cascade is tripped, or
    /// [`ChildError::Call`].
    pub async fn start_child(&self, spec: ChildSpec) -> Result<Started<ProcessRef>, ChildError> {
        self.call(|reply| SupervisorMsg::Start(spec, reply)).await?
    }

    /// Stops a child; its specification stays, unless it is temporary.
    ///
    /// # Errors
    /// [`ChildError::NotFound`] or [`ChildError::Call`].
    pub async fn terminate_child(&self, id: &str) -> Result<(), ChildError> {
        self.call(|reply| SupervisorMsg::Terminate(Target::Id(id.into()), reply))
            .await?
    }

    pub(crate) async fn terminate_pid(&self, pid: Pid) -> Result<(), ChildError> {
        self.call(|reply| SupervisorMsg::Terminate(Target::Pid(pid), reply))
            .await?
    }

    /// Starts a stopped child again.
    ///
    /// # Errors
    /// [`ChildError::NotFound`], [`ChildError::Running`],
    /// [`ChildError::StartFailed`], [`ChildError::Dynamic`] or [`ChildError::Call`].
    pub async fn restart_child(&self, id: &str) -> Result<Started<ProcessRef>, ChildError> {
        self.call(|reply| SupervisorMsg::Restart(id.into(), reply))
            .await?
    }

    /// Removes a stopped child's specification.
    ///
    /// # Errors
    /// [`ChildError::NotFound`], [`ChildError::Running`],
    /// [`ChildError::Dynamic`] or [`ChildError::Call`].
    pub async fn delete_child(&self, id: &str) -> Result<(), ChildError> {
        self.call(|reply| SupervisorMsg::Delete(id.into(), reply))
            .await?
    }

    /// Stops the supervisor and its children, in reverse order, and waits.
    pub async fn shutdown(&self) -> ExitReason {
        let process = self.process();
        process.stop(ExitReason::Shutdown);
        process.wait().await
    }
}
