//! The supervisor: starts children in order, restarts them by its strategy,
//! gives up past its restart intensity, and stops them in reverse order.
//!
//! # Start and shutdown
//! - Children start one after the other, in the order they were given. A
//!   child that fails to start fails the supervisor's start with that error,
//!   after the children already started are stopped again.
//! - On shutdown, children stop in reverse start order. Each is asked to stop
//!   and given its [`Shutdown`] time, then killed. A dynamic supervisor stops
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
//!   its children and exit with [`ExitReason::Shutdown`], as `supervisor(3)`
//!   says; why it gave up (the child, the restarts, the window) goes in its
//!   `reached_max_restart_intensity` event. Its own supervisor then applies its
//!   strategy: a permanent supervisor child is restarted, a transient one
//!   stays stopped (escalation).
//! - A start function may answer [`Started::Ignore`]: the child's
//!   specification is kept, not running, and `restart_child` may start it.
//! - With [`AutoShutdown`] other than `Never`, the exit of significant
//!   children ([`ChildSpec::significant`]) that are not restarted shuts the
//!   supervisor down with `shutdown` (OTP 24). Only exits a child makes by
//!   itself count: not those of `terminate_child` or of a strategy's restart.
//!
//! # Where arbor differs from OTP, on purpose
//! - The default intensity is 3 restarts in 5 seconds, Elixir's
//!   `Supervisor` default; OTP's is 1 in 5.
//! - Stopping a child asks it to stop ([`ProcessRef::stop`]: it finishes the
//!   message at hand and runs its cleanup) whether or not it traps exits;
//!   OTP's `exit(Child, shutdown)` kills a child that does not trap exits at
//!   once. A child that does not stop within its [`Shutdown`] time is killed,
//!   as in OTP.
//!
//! A supervisor is a ractor actor run as an arbor process: it traps exits and
//! is linked to each child, so a child's exit reaches it as a message, and a
//! supervisor that is killed takes its children with it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbor_runtime::{
    spawn_ractor_with, CallError, ExitReason, ExitSignal, Pid, ProcessRef, RactorRef, Reply,
    SpawnError, SpawnOptions,
};
use futures_util::FutureExt;
use parking_lot::Mutex;
use ractor::ActorProcessingErr;

use crate::restart::RestartWindow;
use crate::spec::{
    ChildHandle, ChildId, ChildKind, ChildSpec, InvalidChild, Restart, Shutdown, Started,
};

/// How long calls to a supervisor wait for an answer. Starting a child runs
/// its initialisation inside the supervisor, so this is generous.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Messages a supervisor holds before calls are refused with
/// [`CallError::Full`]; exit signals always get in.
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
        let failure = Arc::new(Mutex::new(None));
        let options = SpawnOptions {
            mailbox_capacity: SUPERVISOR_MAILBOX_CAPACITY,
        };
        let slot = failure.clone();
        match spawn_ractor_with(SupervisorActor, options, move |me| (self, me.clone(), slot)).await
        {
            Ok(actor) => Ok(SupervisorRef { actor }),
            Err(e) => Err(failure.lock().take().unwrap_or(StartError::Spawn(e))),
        }
    }

    /// This supervisor as a child of another one: a permanent child of kind
    /// [`ChildKind::Supervisor`] with an infinite shutdown, named `id`.
    pub fn into_child_spec(self, id: impl Into<ChildId>) -> ChildSpec {
        let id = id.into();
        let sup = self.name(id.clone());
        ChildSpec::supervisor(id, move || {
            let sup = sup.clone();
            async move { sup.start().await }
        })
    }
}

/// Why a supervisor did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// A child failed to start.
    #[error("child {id:?} failed to start: {reason}")]
    ChildFailed {
        /// The child.
        id: ChildId,
        /// Why it failed.
        reason: ExitReason,
    },
    /// Two children share an id.
    #[error("duplicate child id {0:?}")]
    DuplicateChildId(ChildId),
    /// A child's specification cannot run under this supervisor.
    #[error(transparent)]
    InvalidChild(#[from] InvalidChild),
    /// The restart period must be positive.
    #[error("restart period must be positive, got {0:?}")]
    InvalidPeriod(Duration),
    /// The supervisor process itself failed to start.
    #[error("supervisor failed to start: {0}")]
    Spawn(SpawnError),
}

/// Why a child operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChildError {
    /// No child has this id.
    #[error("no child {0:?}")]
    NotFound(ChildId),
    /// No child has this pid.
    #[error("no child with pid {0}")]
    NoSuchPid(Pid),
    /// A child with this id is running, with this pid (OTP's
    /// `already_started`).
    #[error("a child with this id is already running as {0}")]
    AlreadyStarted(Pid),
    /// A child with this id exists, not running (OTP's `already_present`).
    #[error("child {0:?} already exists")]
    AlreadyPresent(ChildId),
    /// The specification cannot run under this supervisor.
    #[error(transparent)]
    InvalidChild(#[from] InvalidChild),
    /// The child is running; stop it first.
    #[error("child {0:?} is running")]
    Running(ChildId),
    /// The dynamic supervisor holds its maximum number of children.
    #[error("supervisor already has its maximum of {0} children")]
    MaxChildren(usize),
    /// The child failed to start.
    #[error("child {id:?} failed to start: {reason}")]
    StartFailed {
        /// The child.
        id: ChildId,
        /// Why it failed.
        reason: ExitReason,
    },
    /// The operation is not available on a dynamic supervisor.
    #[error("not supported by a dynamic supervisor")]
    Dynamic,
    /// The supervisor did not answer.
    #[error("supervisor call failed: {0}")]
    Call(#[from] CallError),
}

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
    /// A restart failed to start its child; try that restart again.
    Retry(u64),
}

/// A handle to a running supervisor.
#[derive(Clone, Debug)]
pub struct SupervisorRef {
    actor: RactorRef<SupervisorMsg>,
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

    /// Adds a child after the existing ones and starts it. A start that
    /// answers [`Started::Ignore`] keeps the specification, not running.
    ///
    /// # Errors
    /// [`ChildError::AlreadyStarted`] when a child with this id runs,
    /// [`ChildError::AlreadyPresent`] when one exists, not running;
    /// [`ChildError::InvalidChild`], [`ChildError::StartFailed`], or
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

struct Child {
    spec: ChildSpec,
    process: Option<ProcessRef>,
}

/// Children in start order, indexed by id and by the pid of those running.
#[derive(Default)]
struct Children {
    order: BTreeMap<u64, Child>,
    by_pid: HashMap<Pid, u64>,
    by_id: HashMap<ChildId, u64>,
    next_key: u64,
}

impl Children {
    fn push(&mut self, spec: ChildSpec) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        self.by_id.insert(spec.id.clone(), key);
        self.order.insert(
            key,
            Child {
                spec,
                process: None,
            },
        );
        key
    }

    fn remove(&mut self, key: u64) {
        if let Some(child) = self.order.remove(&key) {
            self.by_id.remove(&child.spec.id);
            if let Some(p) = child.process {
                self.by_pid.remove(&p.pid());
            }
        }
    }

    /// Forgets that the child runs, so its exit signal is ignored.
    fn take_process(&mut self, key: u64) -> Option<ProcessRef> {
        let p = self.order.get_mut(&key)?.process.take()?;
        self.by_pid.remove(&p.pid());
        Some(p)
    }

    fn key(&self, target: &Target) -> Option<u64> {
        match target {
            Target::Id(id) => self.by_id.get(id).copied(),
            Target::Pid(pid) => self.by_pid.get(pid).copied(),
        }
    }
}

struct State {
    me: ProcessRef,
    myself: RactorRef<SupervisorMsg>,
    name: Arc<str>,
    strategy: Strategy,
    mode: Mode,
    stop_order: StopOrder,
    auto_shutdown: AutoShutdown,
    window: RestartWindow,
    parent: Option<Pid>,
    children: Children,
}

/// Stops `process` as `how` says and returns the reason it exited with.
pub(crate) async fn stop_child(process: &ProcessRef, how: Shutdown) -> ExitReason {
    let mut exited = process.wait();
    match how {
        Shutdown::BrutalKill => process.kill(),
        Shutdown::Infinity => process.stop(ExitReason::Shutdown),
        Shutdown::Timeout(limit) => {
            process.stop(ExitReason::Shutdown);
            if let Ok(reason) = tokio::time::timeout(limit, &mut exited).await {
                return reason;
            }
            process.kill();
        }
    }
    exited.await
}

impl State {
    fn event(&self, event: &str, id: &str, pid: Option<Pid>, reason: Option<&ExitReason>) {
        tracing::info!(
            target: "arbor::supervision",
            event,
            supervisor = %self.name,
            supervisor_pid = %self.me.pid(),
            child = id,
            pid = pid.map(|p| p.to_string()),
            reason = reason.map(|r| r.to_string()),
        );
    }

    /// Starts the child at `key` and links it; an ignored start leaves it
    /// not running.
    async fn start_one(&mut self, key: u64) -> Result<Started<ProcessRef>, ExitReason> {
        let Some(child) = self.children.order.get(&key) else {
            return Err(ExitReason::error("child removed"));
        };
        let (id, kind) = (child.spec.id.clone(), child.spec.kind);
        let started = std::panic::AssertUnwindSafe(child.spec.start.start())
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(ExitReason::error("child start function panicked")));
        let process = match started {
            Ok(Started::Running(p)) => p,
            Ok(Started::Ignore) => {
                self.event("child_ignored", &id, None, None);
                return Ok(Started::Ignore);
            }
            Err(reason) => {
                self.event("child_start_failed", &id, None, Some(&reason));
                return Err(reason);
            }
        };
        if kind == ChildKind::Supervisor {
            if let Some(sup) = SupervisorRef::from_process(&process) {
                let _ = sup
                    .actor
                    .send_system(SupervisorMsg::SetParent(self.me.pid()));
            }
        }
        if let Some(child) = self.children.order.get_mut(&key) {
            child.process = Some(process.clone());
        }
        self.children.by_pid.insert(process.pid(), key);
        // Linked last: if the child has already died, its exit signal is now
        // queued behind this handler and finds it in `by_pid`.
        self.me.link(&process);
        self.event("child_started", &id, Some(process.pid()), None);
        Ok(Started::Running(process))
    }

    /// Stops the running children among `keys`, last first.
    async fn stop_children(&mut self, keys: &[u64]) {
        for &key in keys.iter().rev() {
            let Some(process) = self.children.take_process(key) else {
                continue;
            };
            let Some(child) = self.children.order.get(&key) else {
                continue;
            };
            let (id, how, restart) = (
                child.spec.id.clone(),
                child.spec.shutdown,
                child.spec.restart,
            );
            let reason = stop_child(&process, how).await;
            self.event("child_terminated", &id, Some(process.pid()), Some(&reason));
            if restart == Restart::Temporary {
                self.children.remove(key);
            }
        }
    }

    /// Stops every running child, in the supervisor's [`StopOrder`].
    async fn stop_all(&mut self) {
        let keys: Vec<u64> = self.children.order.keys().copied().collect();
        if self.stop_order == StopOrder::Together {
            let stopping: Vec<_> = keys
                .iter()
                .filter_map(|&k| {
                    let spec = &self.children.order.get(&k)?.spec;
                    let (id, how) = (spec.id.clone(), spec.shutdown);
                    Some((id, self.children.take_process(k)?, how))
                })
                .collect();
            let reasons = futures_util::future::join_all(
                stopping.iter().map(|(_, p, how)| stop_child(p, *how)),
            )
            .await;
            for ((id, process, _), reason) in stopping.iter().zip(&reasons) {
                self.event("child_terminated", id, Some(process.pid()), Some(reason));
            }
        } else {
            self.stop_children(&keys).await;
        }
    }

    async fn child_exited(&mut self, key: u64, reason: ExitReason) {
        let Some(child) = self.children.order.get_mut(&key) else {
            return;
        };
        // A child that died before the supervisor linked to it reports
        // `noproc` through the link; it exited with a reason of its own.
        let reason = match (reason, child.process.take()) {
            (ExitReason::NoProc, Some(p)) => p.exit_reason().unwrap_or(ExitReason::NoProc),
            (reason, _) => reason,
        };
        let (id, restart, significant) = (
            child.spec.id.clone(),
            child.spec.restart,
            child.spec.significant,
        );
        self.event("child_exited", &id, None, Some(&reason));
        if !restart.restarts_after(&reason) {
            if restart == Restart::Temporary || matches!(self.mode, Mode::Dynamic { .. }) {
                self.children.remove(key);
            }
            if significant {
                self.significant_exited(&id);
            }
            return;
        }
        self.restart(key).await;
    }

    /// A significant child exited by itself and stays stopped: shut down,
    /// if the supervisor's [`AutoShutdown`] says so.
    fn significant_exited(&mut self, id: &str) {
        let shut_down = match self.auto_shutdown {
            AutoShutdown::Never => false,
            AutoShutdown::AnySignificant => true,
            AutoShutdown::AllSignificant => !self
                .children
                .order
                .values()
                .any(|c| c.spec.significant && c.process.is_some()),
        };
        if shut_down {
            tracing::info!(
                target: "arbor::supervision",
                event = "auto_shutdown",
                supervisor = %self.name,
                supervisor_pid = %self.me.pid(),
                child = id,
                auto_shutdown = ?self.auto_shutdown,
            );
            self.me.stop(ExitReason::Shutdown);
        }
    }

    /// Restarts after the child at `key` exited, by strategy.
    async fn restart(&mut self, key: u64) {
        if !self.window.add(Instant::now()) {
            let id = self.children.order.get(&key).map(|c| c.spec.id.clone());
            // OTP's supervisor report: the supervisor exits `shutdown`, and
            // the report says it reached its maximum restart intensity.
            tracing::error!(
                target: "arbor::supervision",
                event = "reached_max_restart_intensity",
                supervisor = %self.name,
                supervisor_pid = %self.me.pid(),
                child = id.as_deref().unwrap_or(""),
                restarts = self.window.len(),
                intensity = self.window.intensity(),
                period_ms = self.window.period().as_millis() as u64,
            );
            self.me.stop(ExitReason::Shutdown);
            return;
        }
        let keys: Vec<u64> = match self.strategy {
            Strategy::OneForOne => vec![key],
            Strategy::OneForAll => {
                let others: Vec<u64> = self
                    .children
                    .order
                    .keys()
                    .copied()
                    .filter(|&k| k != key)
                    .collect();
                self.stop_children(&others).await;
                self.children.order.keys().copied().collect()
            }
            Strategy::RestForOne => {
                let after: Vec<u64> = self
                    .children
                    .order
                    .range(key + 1..)
                    .map(|(&k, _)| k)
                    .collect();
                self.stop_children(&after).await;
                self.children.order.range(key..).map(|(&k, _)| k).collect()
            }
        };
        for k in keys {
            if self
                .children
                .order
                .get(&k)
                .is_some_and(|c| c.process.is_none())
            {
                if let Some(id) = self.children.order.get(&k).map(|c| c.spec.id.clone()) {
                    self.event("child_restarting", &id, None, None);
                }
                if self.start_one(k).await.is_err() {
                    // OTP tries again, counting another restart.
                    let _ = self.myself.send_system(SupervisorMsg::Retry(k));
                    return;
                }
            }
        }
    }

    async fn start_child(
        &mut self,
        mut spec: ChildSpec,
    ) -> Result<Started<ProcessRef>, ChildError> {
        spec.check(self.auto_shutdown)?;
        match self.mode {
            Mode::Dynamic { max_children } => {
                if let Some(max) = max_children {
                    if self.children.order.len() >= max {
                        return Err(ChildError::MaxChildren(max));
                    }
                }
                spec.id = format!("{}-{}", spec.id, self.children.next_key).into();
            }
            Mode::Static => {
                if let Some(key) = self.children.by_id.get(&spec.id) {
                    let running = self
                        .children
                        .order
                        .get(key)
                        .and_then(|c| c.process.as_ref());
                    return Err(match running {
                        Some(p) => ChildError::AlreadyStarted(p.pid()),
                        None => ChildError::AlreadyPresent(spec.id),
                    });
                }
            }
        }
        let id = spec.id.clone();
        let key = self.children.push(spec);
        match self.start_one(key).await {
            Ok(Started::Ignore) if matches!(self.mode, Mode::Dynamic { .. }) => {
                // OTP: a dynamic supervisor adds nothing for an ignored start.
                self.children.remove(key);
                Ok(Started::Ignore)
            }
            Ok(started) => Ok(started),
            Err(reason) => {
                self.children.remove(key);
                Err(ChildError::StartFailed { id, reason })
            }
        }
    }

    async fn terminate_child(&mut self, target: Target) -> Result<(), ChildError> {
        let Some(key) = self.children.key(&target) else {
            return Err(match target {
                Target::Id(id) => ChildError::NotFound(id),
                Target::Pid(pid) => ChildError::NoSuchPid(pid),
            });
        };
        self.stop_children(&[key]).await;
        if let Mode::Dynamic { .. } = self.mode {
            self.children.remove(key);
        }
        Ok(())
    }

    fn stopped_child(&self, id: &ChildId) -> Result<u64, ChildError> {
        if let Mode::Dynamic { .. } = self.mode {
            return Err(ChildError::Dynamic);
        }
        let key = *self
            .children
            .by_id
            .get(id)
            .ok_or_else(|| ChildError::NotFound(id.clone()))?;
        match self.children.order.get(&key) {
            Some(c) if c.process.is_some() => Err(ChildError::Running(id.clone())),
            _ => Ok(key),
        }
    }

    fn which_children(&self) -> Vec<ChildInfo> {
        self.children
            .order
            .values()
            .map(|c| ChildInfo {
                id: c.spec.id.clone(),
                process: c.process.clone(),
                kind: c.spec.kind,
                restart: c.spec.restart,
            })
            .collect()
    }

    fn count_children(&self) -> ChildCounts {
        self.children
            .order
            .values()
            .fold(ChildCounts::default(), |mut n, c| {
                n.specs += 1;
                n.active += usize::from(c.process.is_some());
                match c.spec.kind {
                    ChildKind::Supervisor => n.supervisors += 1,
                    ChildKind::Worker => n.workers += 1,
                }
                n
            })
    }
}

struct SupervisorActor;

type StartFailure = Arc<Mutex<Option<StartError>>>;

impl ractor::Actor for SupervisorActor {
    type Msg = SupervisorMsg;
    type State = State;
    type Arguments = (Supervisor, ProcessRef, StartFailure);

    async fn pre_start(
        &self,
        _myself: ractor::ActorRef<SupervisorMsg>,
        (spec, me, failure): Self::Arguments,
    ) -> Result<State, ActorProcessingErr> {
        let myself = RactorRef::<SupervisorMsg>::from_process(&me)
            .ok_or("supervisor started outside the arbor bridge")?;
        let trap = myself.clone();
        me.trap_exits(move |signal| {
            let _ = trap.send_system(SupervisorMsg::Exit(signal));
        });
        let mut state = State {
            me,
            myself,
            name: spec.name,
            strategy: spec.strategy,
            mode: spec.mode,
            stop_order: spec.stop_order,
            auto_shutdown: spec.auto_shutdown,
            window: RestartWindow::new(spec.intensity, spec.period),
            parent: None,
            children: Children::default(),
        };
        let keys: Vec<u64> = spec
            .children
            .into_iter()
            .map(|c| state.children.push(c))
            .collect();
        for (i, &key) in keys.iter().enumerate() {
            if let Err(reason) = state.start_one(key).await {
                state.stop_children(&keys[..i]).await;
                let id = state
                    .children
                    .order
                    .get(&key)
                    .map(|c| c.spec.id.clone())
                    .unwrap_or_else(|| "?".into());
                let error = StartError::ChildFailed { id, reason };
                let text = error.to_string();
                *failure.lock() = Some(error);
                return Err(text.into());
            }
        }
        state.event("supervisor_started", "", Some(state.me.pid()), None);
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ractor::ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Exit(signal) => {
                if let Some(key) = state.children.by_pid.remove(&signal.from) {
                    state.child_exited(key, signal.reason).await;
                } else if state.parent == Some(signal.from) {
                    state.me.stop(signal.reason);
                }
            }
            SupervisorMsg::SetParent(pid) => state.parent = Some(pid),
            SupervisorMsg::Start(spec, reply) => {
                reply.send(state.start_child(spec).await);
            }
            SupervisorMsg::Terminate(target, reply) => {
                reply.send(state.terminate_child(target).await);
            }
            SupervisorMsg::Restart(id, reply) => {
                let result = match state.stopped_child(&id) {
                    Ok(key) => state
                        .start_one(key)
                        .await
                        .map_err(|reason| ChildError::StartFailed { id, reason }),
                    Err(e) => Err(e),
                };
                reply.send(result);
            }
            SupervisorMsg::Delete(id, reply) => {
                let result = state
                    .stopped_child(&id)
                    .map(|key| state.children.remove(key));
                reply.send(result);
            }
            SupervisorMsg::Which(reply) => {
                reply.send(state.which_children());
            }
            SupervisorMsg::Count(reply) => {
                reply.send(state.count_children());
            }
            SupervisorMsg::Retry(key) => {
                if state
                    .children
                    .order
                    .get(&key)
                    .is_some_and(|c| c.process.is_none())
                {
                    state.restart(key).await;
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ractor::ActorRef<SupervisorMsg>,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        state.stop_all().await;
        let reason = state.me.exit_reason();
        state.event(
            "supervisor_stopped",
            "",
            Some(state.me.pid()),
            reason.as_ref(),
        );
        Ok(())
    }
}
