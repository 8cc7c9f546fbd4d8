//! The supervisor process: its children in start order, its strategy's
//! restarts within the intensity, and its stop.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use arbor_runtime::{spawn_ractor_with, ExitReason, Pid, ProcessRef, RactorRef, SpawnOptions};
use futures_util::FutureExt;
use parking_lot::Mutex;
use ractor::ActorProcessingErr;

use super::handle::{SupervisorMsg, SupervisorRef, SupervisorStatus, Target};
use super::{
    AutoShutdown, ChildCounts, ChildError, ChildInfo, Mode, StartError, StopOrder, Strategy,
    Supervisor, SUPERVISOR_MAILBOX_CAPACITY,
};
use crate::cascade::Cascade;
use crate::restart::RestartWindow;
use crate::spec::{ChildId, ChildKind, ChildSpec, Restart, Shutdown, Started};

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
    /// Restarts since the start.
    restarts: u64,
    /// Children that exited abnormally (crashed or killed) since the start,
    /// restarted or not.
    abnormal_exits: u64,
    parent: Option<Pid>,
    children: Children,
    cascade: Option<Cascade>,
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
        if !reason.is_clean() {
            self.abnormal_exits += 1;
            if let Some(cascade) = &self.cascade {
                cascade.failed();
            }
        }
        if !restart.restarts_after(&reason) {
            if restart == Restart::Temporary || matches!(self.mode, Mode::Dynamic { .. }) {
                self.children.remove(key);
            }
            if significant {
                self.significant_exited(&id);
            }
            return;
        }
        if self.wait_out_isolation(key) {
            return;
        }
        self.restart(key).await;
    }

    /// While the cascade is tripped the child at `key` stays down, and a
    /// task asks for its restart once the isolation lifts; whether it
    /// waits.
    fn wait_out_isolation(&self, key: u64) -> bool {
        let Some(cascade) = &self.cascade else {
            return false;
        };
        let Some(isolation) = cascade.isolation() else {
            return false;
        };
        let id = self.children.order.get(&key).map(|c| c.spec.id.clone());
        tracing::warn!(
            target: "arbor::supervision",
            event = "child_left_down",
            supervisor = %self.name,
            supervisor_pid = %self.me.pid(),
            child = id.as_deref().unwrap_or(""),
            why = %isolation,
        );
        let (cascade, myself) = (cascade.clone(), self.myself.clone());
        tokio::spawn(async move {
            cascade.cleared().await;
            let _ = myself.send_system(SupervisorMsg::Retry(key));
        });
        true
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
        self.restarts += 1;
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
        if let Some(isolation) = self.cascade.as_ref().and_then(Cascade::isolation) {
            return Err(ChildError::Isolated(isolation));
        }
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

/// Spawns the supervisor process for `spec`, which starts its children.
pub(super) async fn spawn(spec: Supervisor) -> Result<SupervisorRef, StartError> {
    let failure = Arc::new(Mutex::new(None));
    let options = SpawnOptions {
        mailbox_capacity: SUPERVISOR_MAILBOX_CAPACITY,
    };
    let slot = failure.clone();
    match spawn_ractor_with(SupervisorActor, options, move |me| (spec, me.clone(), slot)).await {
        Ok(actor) => Ok(SupervisorRef { actor }),
        Err(e) => Err(failure.lock().take().unwrap_or(StartError::Spawn(e))),
    }
}

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
            restarts: 0,
            abnormal_exits: 0,
            parent: None,
            children: Children::default(),
            cascade: spec.cascade,
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
                let isolation = state.cascade.as_ref().and_then(Cascade::isolation);
                let result = match (state.stopped_child(&id), isolation) {
                    (Ok(_), Some(isolation)) => Err(ChildError::Isolated(isolation)),
                    (Ok(key), None) => state
                        .start_one(key)
                        .await
                        .map_err(|reason| ChildError::StartFailed { id, reason }),
                    (Err(e), _) => Err(e),
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
            SupervisorMsg::Status(reply) => {
                reply.send(SupervisorStatus {
                    name: state.name.clone(),
                    strategy: state.strategy,
                    intensity: state.window.intensity(),
                    period: state.window.period(),
                    restarts: state.restarts,
                    abnormal_exits: state.abnormal_exits,
                    recent_restarts: state.window.recent(Instant::now()),
                    children: state.count_children(),
                    cascade: state.cascade.as_ref().map(Cascade::status),
                });
            }
            SupervisorMsg::Cascade(reply) => {
                reply.send(state.cascade.clone());
            }
            SupervisorMsg::Retry(key) => {
                if state
                    .children
                    .order
                    .get(&key)
                    .is_some_and(|c| c.process.is_none())
                    && !state.wait_out_isolation(key)
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
