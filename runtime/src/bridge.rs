//! Ractor actors as arbor processes.
//!
//! [`spawn_ractor`] runs any [`ractor::Actor`] behind a thin adapter that gives
//! it a [`ProcessRef`]: it can then be linked, monitored, registered and
//! supervised exactly like a lightweight actor. Supervisors, registries and
//! other long-lived infrastructure run this way; ractor's own supervision
//! tree is not used.
//!
//! Messages sent through [`RactorRef`] are counted, so the mailbox depth of a
//! ractor actor is readable too, and the same capacity limit and load
//! shedding apply.

use std::any::Any;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::FutureExt;
use ractor::{Actor, ActorProcessingErr, SupervisionEvent};

use crate::actor::{panic_message, SpawnOptions};
use crate::error::{CallError, Reply, SendError, SpawnError};
use crate::exit::ExitReason;
use crate::process::{as_process, finish, Cell, Core, Pid, ProcessKind, ProcessRef};

/// The process state of a ractor actor.
pub(crate) struct RactorCell {
    core: Core,
    actor: OnceLock<ractor::ActorCell>,
    stopped_cleanly: AtomicBool,
    /// Set by `abort`, so that a kill made before the ractor actor exists
    /// (from the `args` closure, say) is applied once it does.
    kill_requested: AtomicBool,
    capacity: usize,
}

impl Cell for RactorCell {
    fn core(&self) -> &Core {
        &self.core
    }

    fn abort(&self) {
        self.kill_requested.store(true, Ordering::SeqCst);
        // Pairs with the fence in `spawn_ractor_with`: either this sees the
        // actor, or the spawner sees the flag.
        fence(Ordering::SeqCst);
        if let Some(actor) = self.actor.get() {
            actor.kill();
        }
    }

    fn request_stop(&self) {
        fence(Ordering::SeqCst);
        if let Some(actor) = self.actor.get() {
            let reason = self.core.pending().map(|r| r.to_string());
            actor.stop(reason);
        }
    }

    fn kind(&self) -> ProcessKind {
        ProcessKind::Ractor
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// A typed handle to a ractor actor run as an arbor process.
pub struct RactorRef<M> {
    actor: ractor::ActorRef<M>,
    cell: Arc<RactorCell>,
}

impl<M> Clone for RactorRef<M> {
    fn clone(&self) -> Self {
        RactorRef {
            actor: self.actor.clone(),
            cell: self.cell.clone(),
        }
    }
}

impl<M> std::fmt::Debug for RactorRef<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RactorRef({})", self.cell.core.pid())
    }
}

impl<M: ractor::Message> RactorRef<M> {
    /// The typed handle of `process`, if it is a ractor actor whose
    /// messages are `M`.
    pub fn from_process(process: &ProcessRef) -> Option<Self> {
        let cell = process.cell().downcast::<RactorCell>().ok()?;
        let actor = cell.actor.get()?;
        if actor.is_message_type_of::<M>() != Some(true) {
            return None;
        }
        Some(RactorRef {
            actor: ractor::ActorRef::from(actor.clone()),
            cell,
        })
    }

    /// The actor's process identifier.
    pub fn pid(&self) -> Pid {
        self.cell.core.pid()
    }

    /// The actor as an untyped process.
    pub fn process(&self) -> ProcessRef {
        ProcessRef(self.cell.clone())
    }

    /// The underlying ractor handle. Messages sent through it directly are
    /// not counted in the mailbox depth.
    pub fn actor(&self) -> &ractor::ActorRef<M> {
        &self.actor
    }

    /// Messages sent through this handle and not yet handled.
    pub fn mailbox_len(&self) -> usize {
        self.cell.core.depth().load(Ordering::Relaxed)
    }

    /// Queues a message without waiting.
    ///
    /// # Errors
    /// [`SendError::Full`] at capacity, [`SendError::Overloaded`] while
    /// shedding, [`SendError::Closed`] once the actor has exited.
    pub fn try_send(&self, msg: M) -> Result<(), SendError<M>> {
        if self.cell.core.is_shedding() {
            return Err(SendError::Overloaded(msg));
        }
        if self.mailbox_len() >= self.cell.capacity {
            return Err(SendError::Full(msg));
        }
        self.send_system(msg)
    }

    /// Queues a message past the capacity limit and load shedding; for exit
    /// signals and other messages that must not be lost.
    ///
    /// # Errors
    /// [`SendError::Closed`] once the actor has exited.
    pub fn send_system(&self, msg: M) -> Result<(), SendError<M>> {
        let depth = self.cell.core.depth();
        depth.fetch_add(1, Ordering::Relaxed);
        self.actor.send_message(msg).map_err(|e| {
            depth.fetch_sub(1, Ordering::Relaxed);
            match e {
                ractor::MessagingErr::SendErr(m) => SendError::Closed(m),
                // The other variants carry no message; they cannot occur for
                // a local actor of the right type.
                _ => unreachable_send(),
            }
        })
    }

    /// Sends a request built around a [`Reply`] and waits for the answer.
    ///
    /// # Errors
    /// A [`CallError`] when the message cannot be queued, the actor drops the
    /// reply, or no answer arrives within `timeout`.
    pub async fn call<R>(
        &self,
        request: impl FnOnce(Reply<R>) -> M,
        timeout: Duration,
    ) -> Result<R, CallError> {
        crate::error::call(|reply| self.try_send(request(reply)), self.pid(), timeout).await
    }
}

impl<M: ractor::Message> From<RactorRef<M>> for ProcessRef {
    fn from(actor: RactorRef<M>) -> Self {
        actor.process()
    }
}

fn unreachable_send<M>() -> SendError<M> {
    // `send_message` on a local, correctly typed `ActorRef` fails only with
    // `SendErr`; reaching this is a bug in ractor, not an input condition.
    unreachable!("ractor send to a local actor failed without returning the message")
}

/// Spawns a ractor actor as an arbor process with the default options.
///
/// `args` is built from the actor's own [`ProcessRef`], so the actor can
/// trap exits, link or register itself in `pre_start`.
///
/// # Errors
/// [`SpawnError::Init`] when `pre_start` fails or panics.
pub async fn spawn_ractor<A: Actor>(
    actor: A,
    args: impl FnOnce(&ProcessRef) -> A::Arguments,
) -> Result<RactorRef<A::Msg>, SpawnError> {
    spawn_ractor_with(actor, SpawnOptions::default(), args).await
}

/// Spawns a ractor actor as an arbor process; see [`spawn_ractor`].
/// `options.mailbox_capacity` bounds the messages sent through [`RactorRef`].
///
/// # Errors
/// [`SpawnError::Init`] when `pre_start` fails or panics.
pub async fn spawn_ractor_with<A: Actor>(
    actor: A,
    options: SpawnOptions,
    args: impl FnOnce(&ProcessRef) -> A::Arguments,
) -> Result<RactorRef<A::Msg>, SpawnError> {
    let cell = Arc::new(RactorCell {
        core: Core::new(crate::process::ProcessKind::Ractor),
        actor: OnceLock::new(),
        stopped_cleanly: AtomicBool::new(false),
        kill_requested: AtomicBool::new(false),
        capacity: options.mailbox_capacity.max(1),
    });
    let process = ProcessRef(cell.clone());
    let args = args(&process);
    match Actor::spawn(None, Bridged(actor), (args, cell.clone())).await {
        Ok((actor, join)) => {
            let watched = cell.clone();
            tokio::spawn(async move {
                let _ = join.await;
                let reason = watched.core.pending().unwrap_or(
                    if watched.stopped_cleanly.load(Ordering::Acquire) {
                        ExitReason::Normal
                    } else {
                        ExitReason::Killed
                    },
                );
                finish(&*watched, reason);
            });
            // A kill or stop requested before the ractor actor existed (in
            // `args`, or by a link to a dead process made there) found
            // nothing to act on; act on it now.
            fence(Ordering::SeqCst);
            if cell.kill_requested.load(Ordering::SeqCst) {
                actor.kill();
            } else if let Some(reason) = cell.core.pending() {
                actor.stop(Some(reason.to_string()));
            }
            Ok(RactorRef { actor, cell })
        }
        Err(e) => {
            // A kill during `pre_start` fails the start; keep its reason.
            let reason = cell.core.pending().unwrap_or_else(|| match e {
                ractor::SpawnErr::StartupFailed(inner) => ExitReason::error(inner),
                other => ExitReason::error(other),
            });
            finish(&*cell, reason.clone());
            Err(SpawnError::Init(reason))
        }
    }
}

/// The adapter: records why the actor ends and counts handled messages.
struct Bridged<A>(A);

/// The adapter's state: the actor's own state and its process cell.
struct BridgedState<S> {
    inner: S,
    cell: Arc<RactorCell>,
}

impl<A: Actor> Actor for Bridged<A> {
    type Msg = A::Msg;
    type State = BridgedState<A::State>;
    type Arguments = (A::Arguments, Arc<RactorCell>);

    async fn pre_start(
        &self,
        myself: ractor::ActorRef<Self::Msg>,
        (args, cell): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let _ = cell.actor.set(myself.get_cell());
        let inner = recorded(&cell, self.0.pre_start(myself, args)).await?;
        Ok(BridgedState { inner, cell })
    }

    async fn post_start(
        &self,
        myself: ractor::ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        recorded(&state.cell, self.0.post_start(myself, &mut state.inner)).await
    }

    async fn handle(
        &self,
        myself: ractor::ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Saturating: a message sent through the raw ractor handle was never
        // counted, and must not wrap the depth around.
        let _ = state
            .cell
            .core
            .depth()
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| d.checked_sub(1));
        recorded(
            &state.cell,
            self.0.handle(myself, message, &mut state.inner),
        )
        .await
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ractor::ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let fut = self
            .0
            .handle_supervisor_evt(myself, event, &mut state.inner);
        recorded(&state.cell, fut).await
    }

    async fn post_stop(
        &self,
        myself: ractor::ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let result = recorded(&state.cell, self.0.post_stop(myself, &mut state.inner)).await;
        state.cell.stopped_cleanly.store(true, Ordering::Release);
        result
    }
}

/// Runs a callback, recording an error or panic as the exit reason.
async fn recorded<T>(
    cell: &RactorCell,
    fut: impl std::future::Future<Output = Result<T, ActorProcessingErr>>,
) -> Result<T, ActorProcessingErr> {
    let caught = std::panic::AssertUnwindSafe(fut).catch_unwind();
    let result = match as_process(cell.core.pid(), caught).await {
        Ok(result) => result,
        Err(payload) => Err(panic_message(payload).into()),
    };
    if let Err(e) = &result {
        cell.core.set_pending(ExitReason::error(e), true);
    }
    result
}
