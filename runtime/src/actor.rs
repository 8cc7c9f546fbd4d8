//! Lightweight actors: one plain tokio task and one allocation for the
//! mailbox and process state, about 1 KB when idle.
//!
//! These are the actors arbor uses per connection, session and subscription,
//! where a ractor actor (about 8 KB idle, four unbounded channels) would cost
//! too much at 100K+. They take part in the same protocol as every other
//! process: links, monitors, exit reasons, supervision, the registry.
//!
//! The mailbox is bounded and its depth readable at any time; its buffer is
//! released when it drains, so an idle actor holds no queue memory.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tracing::Instrument;

use crate::error::{CallError, Reply, SendError, SpawnError};
use crate::exit::ExitReason;
use crate::process::{as_process, finish, Cell, Core, Pid, ProcessKind, ProcessRef};

/// What a handler returns: `Err(reason)` ends the actor with that reason.
pub type Flow = Result<(), ExitReason>;

/// The default mailbox capacity, in messages.
pub const DEFAULT_MAILBOX_CAPACITY: usize = 1024;

/// Queue buffers above this many bytes are released when the queue drains.
const RELEASE_BYTES: usize = 256;

/// A lightweight actor: state plus a handler for its messages.
///
/// A handler that returns `Err(reason)` or panics ends the actor with that
/// reason (a panic becomes [`ExitReason::Error`]); its supervisor decides what
/// happens next.
pub trait Actor: Send + Sized + 'static {
    /// The messages the actor handles.
    type Msg: Send + 'static;

    /// Runs before [`spawn`] returns, in the spawner's task, as OTP's `init`:
    /// an error here fails the spawn.
    fn init(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = Flow> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Handles one message.
    fn handle(
        &mut self,
        msg: Self::Msg,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Flow> + Send;

    /// Runs when the actor ends by returning, failing or being stopped, but
    /// not when it is killed or panics.
    fn terminate(&mut self, reason: &ExitReason) -> impl Future<Output = ()> + Send {
        let _ = reason;
        async {}
    }
}

/// What a handler can reach of its own actor.
pub struct Context<A: Actor> {
    myself: ActorRef<A::Msg>,
    stop: Option<ExitReason>,
}

impl<A: Actor> Context<A> {
    /// A handle to this actor.
    pub fn myself(&self) -> &ActorRef<A::Msg> {
        &self.myself
    }

    /// This actor's process identifier.
    pub fn pid(&self) -> Pid {
        self.myself.pid()
    }

    /// This actor as an untyped process.
    pub fn process(&self) -> ProcessRef {
        self.myself.process()
    }

    /// Ends the actor with `reason` once the current handler returns.
    pub fn stop(&mut self, reason: ExitReason) {
        self.stop = Some(reason);
    }
}

impl<A: Actor> std::fmt::Debug for Context<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("pid", &self.pid()).finish()
    }
}

struct Queue<M> {
    buf: VecDeque<M>,
    /// Places held by [`Permit`]s: counted against the capacity.
    reserved: usize,
    closed: bool,
}

/// The one allocation behind a lightweight actor: process core and mailbox.
pub(crate) struct Mailbox<M> {
    core: Core,
    queue: Mutex<Queue<M>>,
    capacity: usize,
    has_mail: Notify,
    has_room: Notify,
    stop_requested: AtomicBool,
    /// Set by a kill (`abort`): the actor ends without running `terminate`,
    /// even if its current handler completes before the abort takes effect.
    killed: AtomicBool,
    task: Mutex<Option<AbortHandle>>,
}

enum Next<M> {
    Msg(M),
    Stop,
}

impl<M: Send + 'static> Mailbox<M> {
    fn new(capacity: usize) -> Self {
        Mailbox {
            core: Core::new(crate::process::ProcessKind::Lightweight),
            queue: Mutex::new(Queue {
                buf: VecDeque::new(),
                reserved: 0,
                closed: false,
            }),
            capacity: capacity.max(1),
            has_mail: Notify::new(),
            has_room: Notify::new(),
            stop_requested: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            task: Mutex::new(None),
        }
    }

    fn push(&self, msg: M, bounded: bool) -> Result<(), SendError<M>> {
        if bounded && self.core.is_shedding() {
            return Err(SendError::Overloaded(msg));
        }
        {
            let mut q = self.queue.lock();
            if q.closed {
                return Err(SendError::Closed(msg));
            }
            if bounded && q.buf.len() + q.reserved >= self.capacity {
                return Err(SendError::Full(msg));
            }
            q.buf.push_back(msg);
            self.core.depth().store(q.buf.len(), Ordering::Relaxed);
        }
        self.has_mail.notify_one();
        Ok(())
    }

    /// Holds a place for one message.
    fn reserve(&self) -> Result<(), SendError<()>> {
        if self.core.is_shedding() {
            return Err(SendError::Overloaded(()));
        }
        let mut q = self.queue.lock();
        if q.closed {
            return Err(SendError::Closed(()));
        }
        if q.buf.len() + q.reserved >= self.capacity {
            return Err(SendError::Full(()));
        }
        q.reserved += 1;
        Ok(())
    }

    /// Fills a reserved place with `msg`, or gives it back empty.
    fn release(&self, mut msg: Option<M>) {
        let queued = {
            let mut q = self.queue.lock();
            q.reserved = q.reserved.saturating_sub(1);
            match msg.take() {
                // The actor has exited: the message goes (outside the lock),
                // as a send to a closed mailbox would.
                Some(m) if q.closed => {
                    msg = Some(m);
                    false
                }
                Some(m) => {
                    q.buf.push_back(m);
                    self.core.depth().store(q.buf.len(), Ordering::Relaxed);
                    true
                }
                None => false,
            }
        };
        drop(msg);
        if queued {
            self.has_mail.notify_one();
        } else {
            self.has_room.notify_one();
        }
    }

    fn pop(&self) -> Option<M> {
        let msg = {
            let mut q = self.queue.lock();
            let msg = q.buf.pop_front()?;
            self.core.depth().store(q.buf.len(), Ordering::Relaxed);
            if q.buf.is_empty() && q.buf.capacity() * std::mem::size_of::<M>() > RELEASE_BYTES {
                q.buf = VecDeque::new();
            }
            msg
        };
        self.has_room.notify_one();
        Some(msg)
    }

    async fn next(&self) -> Next<M> {
        loop {
            if self.stop_requested.load(Ordering::Acquire) {
                return Next::Stop;
            }
            if let Some(msg) = self.pop() {
                return Next::Msg(msg);
            }
            self.has_mail.notified().await;
        }
    }
}

impl<M: Send + 'static> Cell for Mailbox<M> {
    fn core(&self) -> &Core {
        &self.core
    }

    fn abort(&self) {
        // Also flags the stop, so a kill during `init` (before the task
        // exists) is seen as soon as the task starts.
        self.killed.store(true, Ordering::Release);
        self.stop_requested.store(true, Ordering::Release);
        if let Some(task) = &*self.task.lock() {
            task.abort();
        }
    }

    fn request_stop(&self) {
        self.stop_requested.store(true, Ordering::Release);
        self.has_mail.notify_one();
    }

    fn closed(&self) {
        let dropped = {
            let mut q = self.queue.lock();
            q.closed = true;
            std::mem::take(&mut q.buf)
        };
        drop(dropped);
        self.task.lock().take();
        // Wake senders waiting for room so they see the mailbox closed.
        self.has_room.notify_waiters();
    }

    fn kind(&self) -> ProcessKind {
        ProcessKind::Lightweight
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}

/// A typed handle to a lightweight actor whose messages are `M`.
pub struct ActorRef<M>(Arc<Mailbox<M>>);

impl<M> Clone for ActorRef<M> {
    fn clone(&self) -> Self {
        ActorRef(self.0.clone())
    }
}

impl<M> std::fmt::Debug for ActorRef<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ActorRef({})", self.0.core.pid())
    }
}

impl<M> PartialEq for ActorRef<M> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<M> Eq for ActorRef<M> {}

impl<M: Send + 'static> ActorRef<M> {
    /// The typed handle of `process`, if it is a lightweight actor whose
    /// messages are `M`.
    pub fn from_process(process: &ProcessRef) -> Option<Self> {
        process.cell().downcast::<Mailbox<M>>().ok().map(ActorRef)
    }

    /// The actor's process identifier.
    pub fn pid(&self) -> Pid {
        self.0.core.pid()
    }

    /// The actor as an untyped process, for links, monitors and supervisors.
    pub fn process(&self) -> ProcessRef {
        ProcessRef(self.0.clone())
    }

    /// `true` until the actor has exited.
    pub fn is_alive(&self) -> bool {
        self.0.core.is_alive()
    }

    /// Messages waiting in the mailbox.
    pub fn mailbox_len(&self) -> usize {
        self.0.core.depth().load(Ordering::Relaxed)
    }

    /// The mailbox capacity, in messages.
    pub fn capacity(&self) -> usize {
        self.0.capacity
    }

    /// Queues a message without waiting.
    ///
    /// # Errors
    /// [`SendError::Full`] when the mailbox is at capacity,
    /// [`SendError::Overloaded`] while the actor sheds load,
    /// [`SendError::Closed`] once it has exited; each returns the message.
    pub fn try_send(&self, msg: M) -> Result<(), SendError<M>> {
        self.0.push(msg, true)
    }

    /// Queues a message, waiting while the mailbox is full (backpressure).
    ///
    /// `Ok` means the message is queued, not that it has been handled.
    ///
    /// # Errors
    /// [`SendError::Overloaded`] or [`SendError::Closed`], with the message.
    ///
    /// # Cancel safety
    /// Not cancel safe: if the future is dropped while waiting, the message
    /// is dropped with it.
    pub async fn send(&self, mut msg: M) -> Result<(), SendError<M>> {
        loop {
            let room = self.0.has_room.notified();
            match self.0.push(msg, true) {
                Err(SendError::Full(m)) => {
                    msg = m;
                    room.await;
                }
                done => return done,
            }
        }
    }

    /// Waits for room for one message and holds it: the [`Permit`] then
    /// queues a message without waiting (tokio's `Sender::reserve`).
    ///
    /// # Errors
    /// [`SendError::Overloaded`] or [`SendError::Closed`].
    ///
    /// # Cancel safety
    /// Cancel safe: no message is handed over until the permit is used, so a
    /// `select!` loop can wait on this beside other branches and keep its
    /// message when another branch wins.
    pub async fn reserve(&self) -> Result<Permit<'_, M>, SendError<()>> {
        loop {
            let room = self.0.has_room.notified();
            match self.try_reserve() {
                Err(SendError::Full(())) => room.await,
                done => return done,
            }
        }
    }

    /// Holds room for one message if there is some now; see
    /// [`ActorRef::reserve`].
    ///
    /// # Errors
    /// [`SendError::Full`], [`SendError::Overloaded`] or [`SendError::Closed`].
    pub fn try_reserve(&self) -> Result<Permit<'_, M>, SendError<()>> {
        self.0.reserve()?;
        Ok(Permit {
            mailbox: &self.0,
            used: false,
        })
    }

    /// Queues a message past the capacity limit and load shedding.
    ///
    /// For the few messages that must never be lost: exit signals, monitor
    /// notifications and timer ticks the actor asked for.
    ///
    /// # Errors
    /// [`SendError::Closed`] once the actor has exited.
    pub fn send_system(&self, msg: M) -> Result<(), SendError<M>> {
        self.0.push(msg, false)
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

/// Room for one message in an actor's mailbox, held by
/// [`ActorRef::reserve`]; dropping it unused gives the room back.
pub struct Permit<'a, M: Send + 'static> {
    mailbox: &'a Mailbox<M>,
    used: bool,
}

impl<M: Send + 'static> Permit<'_, M> {
    /// Queues `msg` in the held place. It is dropped if the actor has
    /// exited since the place was reserved.
    pub fn send(mut self, msg: M) {
        self.used = true;
        self.mailbox.release(Some(msg));
    }
}

impl<M: Send + 'static> Drop for Permit<'_, M> {
    fn drop(&mut self) {
        if !self.used {
            self.mailbox.release(None);
        }
    }
}

impl<M: Send + 'static> std::fmt::Debug for Permit<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Permit({})", self.mailbox.core.pid())
    }
}

impl<M: Send + 'static> From<ActorRef<M>> for ProcessRef {
    fn from(actor: ActorRef<M>) -> Self {
        actor.process()
    }
}

/// Options for [`spawn_with`].
#[derive(Clone, Copy, Debug)]
pub struct SpawnOptions {
    /// The most messages the mailbox holds; sends beyond it are refused
    /// ([`ActorRef::try_send`]) or wait ([`ActorRef::send`]).
    /// Default: [`DEFAULT_MAILBOX_CAPACITY`].
    pub mailbox_capacity: usize,
}

impl Default for SpawnOptions {
    fn default() -> Self {
        SpawnOptions {
            mailbox_capacity: DEFAULT_MAILBOX_CAPACITY,
        }
    }
}

/// Starts a lightweight actor with the default options.
///
/// `init` runs first, in the calling task; the actor's loop then runs on its
/// own tokio task. Must be called within a tokio runtime.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use arbor_runtime::{spawn, Actor, Context, Flow, Reply};
///
/// struct Counter(u64);
///
/// enum Msg {
///     Add(u64),
///     Get(Reply<u64>),
/// }
///
/// impl Actor for Counter {
///     type Msg = Msg;
///     async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Flow {
///         match msg {
///             Msg::Add(n) => self.0 += n,
///             Msg::Get(reply) => {
///                 reply.send(self.0);
///             }
///         }
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let counter = spawn(Counter(0)).await?;
/// counter.send(Msg::Add(2)).await?;
/// assert_eq!(counter.call(Msg::Get, Duration::from_secs(1)).await?, 2);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`SpawnError::Init`] when `init` fails or panics.
pub async fn spawn<A: Actor>(actor: A) -> Result<ActorRef<A::Msg>, SpawnError> {
    spawn_with(actor, SpawnOptions::default()).await
}

/// Starts a lightweight actor with the given options; see [`spawn`].
///
/// # Errors
/// [`SpawnError::Init`] when `init` fails or panics.
pub async fn spawn_with<A: Actor>(
    mut actor: A,
    options: SpawnOptions,
) -> Result<ActorRef<A::Msg>, SpawnError> {
    let mailbox = Arc::new(Mailbox::new(options.mailbox_capacity));
    let myself = ActorRef(mailbox.clone());
    let mut ctx = Context {
        myself: myself.clone(),
        stop: None,
    };
    let pid = mailbox.core.pid();
    if let Err(reason) = as_process(pid, caught(actor.init(&mut ctx))).await {
        finish(&*mailbox, reason.clone());
        return Err(SpawnError::Init(reason));
    }
    // The guard is moved into the task's future before it is first polled,
    // so the process ends even if the task is aborted before it ever runs.
    let guard = ExitGuard {
        mailbox: mailbox.clone(),
        reason: None,
    };
    let task = tokio::spawn(
        as_process(pid, run(actor, ctx, guard))
            .instrument(tracing::trace_span!("actor", pid = %pid)),
    );
    *mailbox.task.lock() = Some(task.abort_handle());
    if mailbox.killed.load(Ordering::Acquire) {
        // Killed while `init` ran: the abort found no task to end. (A stop
        // requested during `init` is seen by the task's loop instead.)
        task.abort();
    }
    Ok(myself)
}

/// Ends the process when the actor's task ends, however it ends: returning,
/// failing, or being aborted by a kill (which drops the future, and this).
struct ExitGuard<M: Send + 'static> {
    mailbox: Arc<Mailbox<M>>,
    reason: Option<ExitReason>,
}

impl<M: Send + 'static> Drop for ExitGuard<M> {
    fn drop(&mut self) {
        let reason = self
            .reason
            .take()
            .or_else(|| self.mailbox.core.pending())
            .unwrap_or(ExitReason::Killed);
        finish(&*self.mailbox, reason);
    }
}

/// An `async move` block rather than an `async fn`: an async fn's future
/// keeps its arguments twice (as passed, and as moved into its body), and
/// the actor is most of an idle process.
#[allow(clippy::manual_async_fn)] // See above: the async fn is larger.
fn run<A: Actor>(
    mut actor: A,
    mut ctx: Context<A>,
    guard: ExitGuard<A::Msg>,
) -> impl Future<Output = ()> + Send {
    async move {
        // A local, so what is set here is seen by its drop.
        let mut guard = guard;
        let reason = loop {
            match guard.mailbox.next().await {
                Next::Stop => break guard.mailbox.core.pending().unwrap_or(ExitReason::Shutdown),
                Next::Msg(msg) => {
                    // Boxed: an actor waiting for mail then holds no room for
                    // its largest handler's state (most of an idle session's
                    // memory otherwise), for one allocation per message.
                    match AssertUnwindSafe(Box::pin(actor.handle(msg, &mut ctx)))
                        .catch_unwind()
                        .await
                    {
                        Ok(Ok(())) => {}
                        Ok(Err(reason)) => break reason,
                        Err(payload) => {
                            // A panic ends the actor without `terminate`: its
                            // state may be half-updated.
                            guard.reason = Some(ExitReason::Error(panic_message(payload).into()));
                            return;
                        }
                    }
                    if let Some(reason) = ctx.stop.take() {
                        break reason;
                    }
                }
            }
        };
        if guard.mailbox.killed.load(Ordering::Acquire) {
            // Killed while the last handler ran without yielding (or by the
            // handler itself): no cleanup, and the guard takes the kill's reason.
            return;
        }
        let _ = caught(Box::pin(async {
            actor.terminate(&reason).await;
            Ok(())
        }))
        .await;
        guard.reason = Some(reason);
    }
}

/// Runs a handler future, turning a panic into an [`ExitReason::Error`].
pub(crate) async fn caught(fut: impl Future<Output = Flow>) -> Flow {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(flow) => flow,
        Err(payload) => Err(ExitReason::Error(panic_message(payload).into())),
    }
}

pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".to_string());
    format!("panicked: {text}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// An actor whose state and whose handler's state are both large.
    struct Big([u8; 4096]);

    impl Actor for Big {
        type Msg = ();

        async fn handle(&mut self, (): (), _ctx: &mut Context<Self>) -> Flow {
            let scratch = [1u8; 8192];
            tokio::task::yield_now().await;
            self.0[0] = scratch[100];
            Ok(())
        }
    }

    /// What an idle process costs is its task's future: the actor once (not
    /// once as passed and again as moved), and no room for a handler's state
    /// (boxed while it runs). Either regression adds kilobytes to every
    /// session.
    #[test]
    fn an_idle_actor_task_holds_its_state_once_and_no_handler() {
        let mailbox = Arc::new(Mailbox::<()>::new(8));
        let ctx = Context {
            myself: ActorRef(mailbox.clone()),
            stop: None,
        };
        let guard = ExitGuard {
            mailbox,
            reason: None,
        };
        let task = run(Big([0; 4096]), ctx, guard);
        let size = std::mem::size_of_val(&task);
        assert!(
            size < 4096 + 512,
            "an idle Big actor's task is {size} bytes"
        );
    }
}
