//! Processes: the identity, liveness, links and monitors that every arbor
//! actor shares, whichever kind it is.
//!
//! A [`ProcessRef`] is the untyped handle OTP calls a pid: supervisors, the
//! registry, process groups and the watchdog only ever hold these, so a
//! lightweight actor and a ractor actor take part in one supervision protocol.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::exit::{Down, ExitReason, ExitSignal};

/// A process identifier, unique for the life of the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid(u64);

impl Pid {
    /// The sender of an exit signal sent from outside any process (a test's
    /// main task, a plain tokio task): OTP has no such caller, Rust does.
    /// No process ever has this pid.
    pub const EXTERNAL: Pid = Pid(0);

    fn next() -> Pid {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Pid(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The identifier as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// A pid no process has been given, for tests of pid bookkeeping.
    #[cfg(test)]
    pub(crate) fn from_raw(n: u64) -> Pid {
        Pid(n)
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<0.{}.0>", self.0)
    }
}

tokio::task_local! {
    /// The process whose code the current task is running.
    static CURRENT: Pid;
}

/// The pid of the process whose code is running: OTP's `self()`.
///
/// `Some` inside an actor's `init`, handlers and `terminate` (lightweight
/// and ractor alike); `None` elsewhere, including in tasks an actor spawns.
pub fn current_pid() -> Option<Pid> {
    CURRENT.try_with(|pid| *pid).ok()
}

/// Runs `fut` as the code of process `pid`, for [`current_pid`].
///
/// A plain function, not an `async fn`: an `async fn` would keep room for
/// `fut` twice (its argument and the scope holding it), and an actor's loop
/// is the largest part of an idle connection.
pub(crate) fn as_process<F: Future>(pid: Pid, fut: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(pid, fut)
}

/// Which machinery runs a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessKind {
    /// An arbor actor on a plain tokio task with a counted, bounded mailbox
    /// (see [`crate::actor`]), about 1 KB when idle; or a task process, one
    /// future and no mailbox (see [`crate::task`]).
    Lightweight,
    /// A ractor actor run through [`crate::bridge`]; about 8 KB when idle.
    Ractor,
}

/// Identifies one exit callback or monitor on a process, to remove it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WatchRef(u64);

/// What each kind of process provides to the shared machinery.
pub(crate) trait Cell: Send + Sync + 'static {
    fn core(&self) -> &Core;
    /// Ends the process now. The reason is already recorded in the core.
    fn abort(&self);
    /// Asks the process to stop once its current message is handled.
    fn request_stop(&self);
    /// Called once, right after the process has exited.
    fn closed(&self) {}
    fn kind(&self) -> ProcessKind;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

type ExitCallback = Box<dyn FnOnce(&Down) + Send>;
type TrapFn = Arc<dyn Fn(ExitSignal) + Send + Sync>;

struct Watcher {
    id: u64,
    notify: ExitCallback,
}

/// A process's links: a short list, or a map once there are many (a
/// supervisor links to every child, and must not scan 100K of them per start
/// or exit).
enum Links {
    Few(Vec<(Pid, ProcessRef)>),
    Many(HashMap<Pid, ProcessRef>),
}

/// Up to this many links are kept in a list.
const FEW_LINKS: usize = 16;

impl Default for Links {
    fn default() -> Self {
        Links::Few(Vec::new())
    }
}

impl Links {
    /// Adds a link; `false` if it was already there.
    fn insert(&mut self, process: &ProcessRef) -> bool {
        let pid = process.pid();
        match self {
            Links::Few(list) => {
                if list.iter().any(|(p, _)| *p == pid) {
                    return false;
                }
                if list.len() < FEW_LINKS {
                    list.push((pid, process.clone()));
                    return true;
                }
                let mut map: HashMap<Pid, ProcessRef> = list.drain(..).collect();
                map.insert(pid, process.clone());
                *self = Links::Many(map);
                true
            }
            Links::Many(map) => map.insert(pid, process.clone()).is_none(),
        }
    }

    fn remove(&mut self, pid: Pid) {
        match self {
            Links::Few(list) => {
                if let Some(i) = list.iter().position(|(p, _)| *p == pid) {
                    list.swap_remove(i);
                }
            }
            Links::Many(map) => {
                map.remove(&pid);
            }
        }
    }

    fn pids(&self) -> Vec<Pid> {
        match self {
            Links::Few(list) => list.iter().map(|(p, _)| *p).collect(),
            Links::Many(map) => map.keys().copied().collect(),
        }
    }

    fn into_processes(self) -> Vec<ProcessRef> {
        match self {
            Links::Few(list) => list.into_iter().map(|(_, p)| p).collect(),
            Links::Many(map) => map.into_values().collect(),
        }
    }
}

#[derive(Default)]
struct Alive {
    watchers: Vec<Watcher>,
    links: Links,
    trap: Option<TrapFn>,
    /// The reason recorded by `stop`, `kill` or a failure, used when the
    /// process's task ends without giving one itself.
    pending: Option<ExitReason>,
    next_watch: u64,
}

enum Life {
    Alive(Alive),
    /// Exit signals are being delivered to linked processes; monitors added
    /// now fire once that is done.
    Exiting(ExitReason, Vec<Watcher>),
    Exited(ExitReason),
}

/// State common to every process kind.
pub(crate) struct Core {
    pid: Pid,
    kind: ProcessKind,
    depth: AtomicUsize,
    shedding: AtomicBool,
    /// Mirrors `life` being `Alive`, for lock-free liveness checks (every
    /// registry lookup makes one).
    alive: AtomicBool,
    life: Mutex<Life>,
}

impl Core {
    pub(crate) fn new(kind: ProcessKind) -> Core {
        census(kind).born();
        Core {
            pid: Pid::next(),
            kind,
            depth: AtomicUsize::new(0),
            shedding: AtomicBool::new(false),
            alive: AtomicBool::new(true),
            life: Mutex::new(Life::Alive(Alive::default())),
        }
    }

    pub(crate) fn pid(&self) -> Pid {
        self.pid
    }

    pub(crate) fn depth(&self) -> &AtomicUsize {
        &self.depth
    }

    pub(crate) fn is_shedding(&self) -> bool {
        self.shedding.load(Ordering::Relaxed)
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Records why the process is about to end. A later reason replaces an
    /// earlier one only when `overwrite` is set (kills and failures do; a
    /// graceful stop does not).
    pub(crate) fn set_pending(&self, reason: ExitReason, overwrite: bool) -> bool {
        match &mut *self.life.lock() {
            Life::Alive(a) => {
                if overwrite || a.pending.is_none() {
                    a.pending = Some(reason);
                }
                true
            }
            Life::Exiting(..) | Life::Exited(_) => false,
        }
    }

    pub(crate) fn pending(&self) -> Option<ExitReason> {
        match &*self.life.lock() {
            Life::Alive(a) => a.pending.clone(),
            Life::Exiting(..) | Life::Exited(_) => None,
        }
    }
}

/// The count of live processes of `kind`.
fn census(kind: ProcessKind) -> &'static crate::census::Live {
    match kind {
        ProcessKind::Lightweight => &crate::census::LIGHTWEIGHT,
        ProcessKind::Ractor => &crate::census::RACTOR,
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // A process made but never run (its spawn failed) never finished.
        if self.alive.load(Ordering::Acquire) {
            census(self.kind).ended();
        }
    }
}

/// Ends a process: records the reason, then tells its monitors and links.
/// Only the first call has an effect.
pub(crate) fn finish(cell: &dyn Cell, reason: ExitReason) {
    let core = cell.core();
    let alive = {
        let mut life = core.life.lock();
        match &*life {
            Life::Alive(_) => {}
            Life::Exiting(..) | Life::Exited(_) => return,
        }
        core.alive.store(false, Ordering::Release);
        census(core.kind).ended();
        match std::mem::replace(&mut *life, Life::Exiting(reason.clone(), Vec::new())) {
            Life::Alive(a) => a,
            Life::Exiting(..) | Life::Exited(_) => return,
        }
    };
    cell.closed();
    core.depth.store(0, Ordering::Relaxed);
    tracing::trace!(pid = %core.pid, %reason, "process exited");
    let down = Down {
        pid: core.pid,
        reason,
    };
    // Links first, and only then monitors, including those added meanwhile:
    // a supervisor's exit message is queued before any monitor fires, so a
    // call to it made after `wait()` returns sees the exit handled.
    for linked in alive.links.into_processes() {
        linked.remove_link(core.pid);
        linked.exit_signal(ExitSignal {
            from: core.pid,
            reason: down.reason.clone(),
        });
    }
    // Monitors added while this runs are served in later rounds; the state
    // turns `Exited` only once none is left, so no monitor ever resolves
    // before the registry and group cleanups (exit callbacks too) have run.
    let mut batch = alive.watchers;
    loop {
        for w in batch {
            (w.notify)(&down);
        }
        let mut life = core.life.lock();
        match &mut *life {
            Life::Exiting(_, late) if !late.is_empty() => batch = std::mem::take(late),
            _ => {
                *life = Life::Exited(down.reason.clone());
                return;
            }
        }
    }
}

/// What [`ProcessRef::info`] reports of a live process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The processes it is linked to.
    pub links: Vec<Pid>,
    /// Monitors and exit callbacks set on it (OTP's `monitored_by`, and
    /// the registry and group cleanups that watch it).
    pub watchers: usize,
    /// Whether it traps exits (every supervisor does).
    pub traps_exits: bool,
}

/// An untyped handle to a live or dead process: OTP's pid.
///
/// Cloning is cheap. A `ProcessRef` does not keep a process alive, and a
/// process does not end when its last handle is dropped: it ends when it
/// returns, fails, is stopped or is killed.
#[derive(Clone)]
pub struct ProcessRef(pub(crate) Arc<dyn Cell>);

impl ProcessRef {
    /// The process identifier.
    pub fn pid(&self) -> Pid {
        self.0.core().pid
    }

    /// Which machinery runs the process.
    pub fn kind(&self) -> ProcessKind {
        self.0.kind()
    }

    /// `true` until the process has exited.
    pub fn is_alive(&self) -> bool {
        self.0.core().is_alive()
    }

    /// Why the process exited, or `None` while it runs.
    pub fn exit_reason(&self) -> Option<ExitReason> {
        match &*self.0.core().life.lock() {
            Life::Alive(_) => None,
            Life::Exiting(r, _) | Life::Exited(r) => Some(r.clone()),
        }
    }

    /// What a live process is linked to and watched by, for a look from
    /// outside (OTP's `process_info/2` for `links`, `monitored_by`,
    /// `trap_exit`); `None` once it has exited.
    pub fn info(&self) -> Option<ProcessInfo> {
        match &*self.0.core().life.lock() {
            Life::Alive(a) => Some(ProcessInfo {
                links: a.links.pids(),
                watchers: a.watchers.len(),
                traps_exits: a.trap.is_some(),
            }),
            Life::Exiting(..) | Life::Exited(_) => None,
        }
    }

    /// Messages waiting in the process's mailbox right now.
    pub fn mailbox_len(&self) -> usize {
        self.0.core().depth.load(Ordering::Relaxed)
    }

    /// `true` while new messages are refused with an overload error
    /// (see [`crate::watchdog`]).
    pub fn is_shedding(&self) -> bool {
        self.0.core().is_shedding()
    }

    /// Starts or stops refusing new messages with an overload error.
    pub fn set_shedding(&self, shed: bool) {
        self.0.core().shedding.store(shed, Ordering::Relaxed);
    }

    /// Kills the process at once, whether it traps exits or not: OTP's
    /// `exit(Pid, kill)`. It exits with [`ExitReason::Killed`] and runs no
    /// cleanup. Does nothing if it has already exited.
    pub fn kill(&self) {
        self.end_now(ExitReason::Killed);
    }

    /// Sends an exit signal, as OTP's `exit(Pid, Reason)`; the sender is the
    /// calling process ([`current_pid`], or [`Pid::EXTERNAL`]).
    ///
    /// - A process that traps exits receives it as an [`ExitSignal`]
    ///   `{from, reason}` and lives on, whatever the reason.
    /// - Otherwise `normal` does nothing (unless a process sends it to
    ///   itself: then it exits `normal`), and every other reason, `killed`
    ///   included, ends the process at once with that reason, without cleanup.
    ///
    /// The untrappable signal is [`ProcessRef::kill`]; a graceful stop that
    /// runs cleanup is [`ProcessRef::stop`].
    pub fn exit(&self, reason: ExitReason) {
        let from = current_pid().unwrap_or(Pid::EXTERNAL);
        self.exit_signal(ExitSignal { from, reason });
    }

    fn end_now(&self, reason: ExitReason) {
        if self.0.core().set_pending(reason, true) {
            self.0.abort();
        }
    }

    /// Asks the process to stop after the message it is handling; it then
    /// runs its cleanup and exits with `reason`. Use [`ProcessRef::wait`] to
    /// wait for it, and [`ProcessRef::kill`] if it takes too long.
    pub fn stop(&self, reason: ExitReason) {
        if self.0.core().set_pending(reason, false) {
            self.0.request_stop();
        }
    }

    /// Calls `notify` once when the process exits.
    ///
    /// # Errors
    /// When the process has already exited, `notify` is not kept and the
    /// [`Down`] it would have received is returned instead.
    pub fn on_exit(&self, notify: impl FnOnce(&Down) + Send + 'static) -> Result<WatchRef, Down> {
        let core = self.0.core();
        match &mut *core.life.lock() {
            Life::Alive(a) => {
                a.next_watch += 1;
                let id = a.next_watch;
                a.watchers.push(Watcher {
                    id,
                    notify: Box::new(notify),
                });
                Ok(WatchRef(id))
            }
            Life::Exiting(_, late) => {
                // Ids of late watchers count down from the top, clear of
                // those handed out while the process was alive.
                let id = u64::MAX - late.len() as u64;
                late.push(Watcher {
                    id,
                    notify: Box::new(notify),
                });
                Ok(WatchRef(id))
            }
            Life::Exited(reason) => Err(Down {
                pid: core.pid,
                reason: reason.clone(),
            }),
        }
    }

    /// Removes an exit callback; `false` if it has already run or is unknown.
    pub fn demonitor(&self, watch: WatchRef) -> bool {
        match &mut *self.0.core().life.lock() {
            Life::Alive(a) => {
                let before = a.watchers.len();
                a.watchers.retain(|w| w.id != watch.0);
                a.watchers.len() != before
            }
            Life::Exiting(_, late) => {
                let before = late.len();
                late.retain(|w| w.id != watch.0);
                late.len() != before
            }
            Life::Exited(_) => false,
        }
    }

    /// A one-shot monitor: resolves to a [`Down`] when the process exits, or
    /// at once with [`ExitReason::NoProc`] if it already has (OTP's
    /// `monitor(process, Pid)`). Dropping the monitor removes it.
    pub fn monitor(&self) -> Monitor {
        self.watch(Report::NoProc)
    }

    /// Waits until the process exits and returns why; at once, with the
    /// reason it exited with, if it already has.
    ///
    /// The monitor is set when this is called, not when the future is first
    /// polled: an exit in between is not missed.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future only removes its monitor.
    pub fn wait(&self) -> impl Future<Output = ExitReason> + Send + Unpin + 'static {
        use futures_util::FutureExt;
        self.watch(Report::Reason).map(|down| down.reason)
    }

    fn watch(&self, report: Report) -> Monitor {
        let (tx, rx) = oneshot::channel();
        let watch = match self.on_exit(move |down| {
            let _ = tx.send(down.clone());
        }) {
            Ok(w) => Some((self.clone(), w)),
            Err(mut down) => {
                if report == Report::NoProc {
                    down.reason = ExitReason::NoProc;
                }
                return Monitor {
                    pid: self.pid(),
                    state: MonitorState::Ready(Some(down)),
                    watch: None,
                };
            }
        };
        Monitor {
            pid: self.pid(),
            state: MonitorState::Waiting(rx),
            watch,
        }
    }

    /// Links two processes: when either exits, the other receives an
    /// [`ExitSignal`]. A process that does not trap exits dies with the same
    /// reason unless it is [`ExitReason::Normal`]. Linking to a process that
    /// has already exited sends the survivor an exit signal with
    /// [`ExitReason::NoProc`] at once, as OTP's `link/1` does.
    pub fn link(&self, other: &ProcessRef) {
        if self.pid() == other.pid() {
            return;
        }
        let (first, second) = if self.pid() < other.pid() {
            (self, other)
        } else {
            (other, self)
        };
        let dead = {
            let mut l1 = first.0.core().life.lock();
            let mut l2 = second.0.core().life.lock();
            match (&mut *l1, &mut *l2) {
                (Life::Alive(a), Life::Alive(b)) => {
                    if a.links.insert(second) {
                        b.links.insert(first);
                    }
                    None
                }
                (Life::Exiting(..) | Life::Exited(_), Life::Alive(_)) => Some((first, second)),
                (Life::Alive(_), Life::Exiting(..) | Life::Exited(_)) => Some((second, first)),
                _ => None,
            }
        };
        if let Some((exited, survivor)) = dead {
            survivor.exit_signal(ExitSignal {
                from: exited.pid(),
                reason: ExitReason::NoProc,
            });
        }
    }

    /// Removes a link in both directions.
    pub fn unlink(&self, other: &ProcessRef) {
        self.remove_link(other.pid());
        other.remove_link(self.pid());
    }

    /// Makes the process trap exits: exit signals from linked processes are
    /// passed to `deliver` (usually as a message to its own mailbox) instead of
    /// killing it. Supervisors trap exits.
    pub fn trap_exits(&self, deliver: impl Fn(ExitSignal) + Send + Sync + 'static) {
        if let Life::Alive(a) = &mut *self.0.core().life.lock() {
            a.trap = Some(Arc::new(deliver));
        }
    }

    /// The process's machinery, for the typed handles' `from_process`.
    pub(crate) fn cell(&self) -> Arc<dyn Any + Send + Sync> {
        self.0.clone().into_any()
    }

    fn remove_link(&self, pid: Pid) {
        if let Life::Alive(a) = &mut *self.0.core().life.lock() {
            a.links.remove(pid);
        }
    }

    fn exit_signal(&self, signal: ExitSignal) {
        let trap = match &*self.0.core().life.lock() {
            Life::Alive(a) => a.trap.clone(),
            Life::Exiting(..) | Life::Exited(_) => return,
        };
        match trap {
            Some(deliver) => deliver(signal),
            // `exit(self(), normal)` ends the caller; a link never carries
            // a process's own pid.
            None if signal.reason.is_normal() && signal.from != self.pid() => {}
            None => self.end_now(signal.reason),
        }
    }
}

impl fmt::Debug for ProcessRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProcessRef({})", self.pid())
    }
}

impl PartialEq for ProcessRef {
    fn eq(&self, other: &Self) -> bool {
        self.pid() == other.pid()
    }
}

impl Eq for ProcessRef {}

impl std::hash::Hash for ProcessRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.pid().hash(state);
    }
}

/// What a monitor set on an exited process resolves to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Report {
    /// OTP's `noproc` ([`ProcessRef::monitor`]).
    NoProc,
    /// The reason it exited with ([`ProcessRef::wait`]).
    Reason,
}

enum MonitorState {
    Waiting(oneshot::Receiver<Down>),
    Ready(Option<Down>),
}

/// A one-shot monitor on a process; a future that resolves to its [`Down`].
///
/// Created by [`ProcessRef::monitor`]. Dropping it before it resolves removes
/// the monitor from the process.
pub struct Monitor {
    pid: Pid,
    state: MonitorState,
    watch: Option<(ProcessRef, WatchRef)>,
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor").field("pid", &self.pid).finish()
    }
}

impl Future for Monitor {
    type Output = Down;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Down> {
        let pid = self.pid;
        let down = match &mut self.state {
            MonitorState::Ready(down) => down.take().unwrap_or(Down {
                pid,
                reason: ExitReason::Killed,
            }),
            MonitorState::Waiting(rx) => match Pin::new(rx).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(down)) => down,
                // The process was dropped without exiting: only when the
                // runtime itself is torn down.
                Poll::Ready(Err(_)) => Down {
                    pid,
                    reason: ExitReason::Killed,
                },
            },
        };
        self.watch = None;
        Poll::Ready(down)
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Some((process, watch)) = self.watch.take() {
            process.demonitor(watch);
        }
    }
}
