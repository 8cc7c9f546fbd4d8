//! A process whose body is one future, as OTP's `proc_lib:spawn_link(Fun)`
//! is a process whose body is a function: for work that is a loop over its
//! own I/O rather than over a mailbox (a connection serving its socket).
//! It is linked, monitored and supervised like any process, on one tokio
//! task and no mailbox: an actor that only started such a loop on a second
//! task cost a mailbox and a task more for every connection.
//!
//! A graceful stop ([`ProcessRef::stop`], a supervisor's shutdown) is a
//! future the body selects on ([`Stopping::requested`]); the body then
//! finishes what it must and returns. A kill aborts the task, running no
//! more of the body, as it does an actor.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::FutureExt;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tracing::Instrument;

use crate::actor::panic_message;
use crate::exit::ExitReason;
use crate::process::{as_process, finish, Cell, Core, ProcessKind, ProcessRef};
use crate::Flow;

/// A task process's side of a graceful stop.
pub struct Stopping(Arc<TaskCell>);

impl std::fmt::Debug for Stopping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stopping")
            .field("pid", &self.0.core.pid())
            .field("requested", &self.is_requested())
            .finish()
    }
}

impl Stopping {
    /// Completes once a stop has been requested (at once if one already
    /// was). The body should then wind down and return; the process exits
    /// with the stop's reason.
    pub async fn requested(&self) {
        loop {
            let notified = self.0.stop.notified();
            if self.0.stop_requested.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// Whether a stop has been requested.
    pub fn is_requested(&self) -> bool {
        self.0.stop_requested.load(Ordering::Acquire)
    }
}

struct TaskCell {
    core: Core,
    stop: Notify,
    stop_requested: AtomicBool,
    killed: AtomicBool,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl TaskCell {
    fn new() -> Arc<TaskCell> {
        Arc::new(TaskCell {
            core: Core::new(ProcessKind::Lightweight),
            stop: Notify::new(),
            stop_requested: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            task: Mutex::new(None),
        })
    }
}

impl Cell for TaskCell {
    fn core(&self) -> &Core {
        &self.core
    }

    fn abort(&self) {
        self.killed.store(true, Ordering::Release);
        if let Some(task) = &*self.task.lock() {
            task.abort();
        }
    }

    fn request_stop(&self) {
        self.stop_requested.store(true, Ordering::Release);
        // Every waiter: `requested` makes its `Notified` before it reads
        // the flag, so none waiting is missed, and later ones see the flag.
        self.stop.notify_waiters();
    }

    fn closed(&self) {
        self.task.lock().take();
    }

    fn kind(&self) -> ProcessKind {
        ProcessKind::Lightweight
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}

/// Ends the process when its task ends, however it ends.
struct ExitGuard {
    cell: Arc<TaskCell>,
    reason: Option<ExitReason>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let reason = self
            .reason
            .take()
            .or_else(|| self.cell.core.pending())
            .unwrap_or(ExitReason::Killed);
        finish(&*self.cell, reason);
    }
}

/// Starts `body` as a process: it exits `normal` when the body returns
/// `Ok` (or with the stop's reason, if one was requested), with the
/// reason of an `Err`, [`ExitReason::Error`] on a panic, and `killed` when
/// killed.
///
/// ```
/// use arbor_runtime::{spawn_task, ExitReason};
///
/// # #[tokio::main] async fn main() {
/// let worker = spawn_task(|stopping| async move {
///     // Work until asked to stop, then finish up.
///     stopping.requested().await;
///     Ok(())
/// });
/// worker.stop(ExitReason::Shutdown);
/// assert_eq!(worker.wait().await, ExitReason::Shutdown);
/// # }
/// ```
pub fn spawn_task<F, Fut>(body: F) -> ProcessRef
where
    F: FnOnce(Stopping) -> Fut,
    Fut: Future<Output = Flow> + Send + 'static,
{
    let cell = TaskCell::new();
    let pid = cell.core.pid();
    let body = body(Stopping(cell.clone()));
    let guard = ExitGuard {
        cell: cell.clone(),
        reason: None,
    };
    let run = running(body, guard);
    let task =
        tokio::spawn(as_process(pid, run).instrument(tracing::trace_span!("task", pid = %pid)));
    *cell.task.lock() = Some(task.abort_handle());
    if cell.killed.load(Ordering::Acquire) {
        task.abort();
    }
    if !cell.core.is_alive() {
        // It ended before its handle was stored (`closed` found none):
        // nothing is left to abort, and the handle would keep the task.
        cell.task.lock().take();
    }
    ProcessRef(cell)
}

/// The task's future: the body, then the exit.
// Combinators, not an async block: an async block (or fn) around the body
// keeps room for it twice (as captured and as awaited), or three times
// through `caught`, and the body is most of the process.
fn running<Fut>(body: Fut, guard: ExitGuard) -> impl Future<Output = ()> + Send
where
    Fut: Future<Output = Flow> + Send + 'static,
{
    AssertUnwindSafe(body).catch_unwind().map(move |outcome| {
        let mut guard = guard;
        guard.reason = Some(match outcome {
            Ok(Ok(())) => guard.cell.core.pending().unwrap_or(ExitReason::Normal),
            Ok(Err(reason)) => reason,
            Err(payload) => ExitReason::Error(panic_message(payload).into()),
        });
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_body_that_returns_exits_normal_and_one_that_fails_with_its_reason() {
        let done = spawn_task(|_| async { Ok(()) });
        assert_eq!(done.wait().await, ExitReason::Normal);
        let failed = spawn_task(|_| async { Err(ExitReason::error("broke")) });
        assert_eq!(failed.wait().await, ExitReason::error("broke"));
        let panicked = spawn_task(|_| async { panic!("boom") });
        assert!(matches!(panicked.wait().await, ExitReason::Error(m) if m.contains("boom")));
    }

    #[tokio::test]
    async fn the_task_holds_its_body_once() {
        let body = async {
            let big = [1u8; 4096];
            tokio::task::yield_now().await;
            std::hint::black_box(&big);
            Ok(())
        };
        let size = std::mem::size_of_val(&body);
        assert!(size >= 4096);
        let cell = TaskCell::new();
        let process = ProcessRef(cell.clone());
        let guard = ExitGuard { cell, reason: None };
        let run = running(body, guard);
        let held = std::mem::size_of_val(&run);
        assert!(held < size + 64, "{held} bytes for a {size}-byte body");
        // Dropped unpolled, as an abort drops it: the process ends.
        drop(run);
        assert_eq!(process.wait().await, ExitReason::Killed);
    }

    #[tokio::test]
    async fn a_stop_is_seen_by_the_body_which_finishes_before_the_exit() {
        let (finished, finished_rx) = tokio::sync::oneshot::channel();
        let worker = spawn_task(|stopping| async move {
            stopping.requested().await;
            assert!(stopping.is_requested());
            // Winding down takes a while, and is waited for.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = finished.send(());
            Ok(())
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(worker.is_alive());
        worker.stop(ExitReason::Shutdown);
        assert_eq!(worker.wait().await, ExitReason::Shutdown);
        assert!(finished_rx.await.is_ok(), "the body ran to its end");
    }

    #[tokio::test]
    async fn every_waiter_sees_the_stop() {
        let worker = spawn_task(|stopping| async move {
            tokio::join!(stopping.requested(), stopping.requested());
            Ok(())
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        worker.stop(ExitReason::Shutdown);
        let reason = tokio::time::timeout(Duration::from_secs(2), worker.wait()).await;
        assert_eq!(reason.ok(), Some(ExitReason::Shutdown));
    }

    #[tokio::test]
    async fn a_stop_requested_before_the_body_waits_is_not_lost() {
        let worker = spawn_task(|stopping| async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            stopping.requested().await;
            Ok(())
        });
        worker.stop(ExitReason::Shutdown);
        let reason = tokio::time::timeout(Duration::from_secs(2), worker.wait()).await;
        assert_eq!(reason.ok(), Some(ExitReason::Shutdown));
    }

    #[tokio::test]
    async fn a_kill_aborts_the_body_and_a_linked_failure_ends_it() {
        let (dropped, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        let worker = spawn_task(|_| async move {
            let _dropped = dropped;
            std::future::pending::<()>().await;
            Ok(())
        });
        worker.kill();
        assert_eq!(worker.wait().await, ExitReason::Killed);
        // The body's future was dropped, not left running.
        assert!(dropped_rx.await.is_err());

        let worker = spawn_task(|_| async {
            std::future::pending::<()>().await;
            Ok(())
        });
        let (fail, failing) = tokio::sync::oneshot::channel::<()>();
        let partner = spawn_task(|_| async move {
            let _ = failing.await;
            Err(ExitReason::error("partner"))
        });
        worker.link(&partner);
        let _ = fail.send(());
        let reason = tokio::time::timeout(Duration::from_secs(2), worker.wait()).await;
        assert_eq!(reason.ok(), Some(ExitReason::error("partner")));
    }
}
