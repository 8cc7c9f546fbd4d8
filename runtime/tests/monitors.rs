//! Monitors and exit callbacks.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arbor_runtime::{Down, ExitReason};
use common::{err, exited, start, LIMIT};
use futures_util::FutureExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_carries_the_pid_and_exit_reason() {
    let (a, _ea) = start().await;
    let monitor = a.process().monitor();
    let second = a.process().monitor();

    a.try_send(common::Msg::Fail(err("bad input"))).unwrap();

    let down = tokio::time::timeout(LIMIT, monitor).await.unwrap();
    assert_eq!(
        down,
        Down {
            pid: a.pid(),
            reason: err("bad input"),
        }
    );
    // Every monitor fires, not just the first.
    assert_eq!(
        tokio::time::timeout(LIMIT, second).await.unwrap().reason,
        err("bad input")
    );
}

/// OTP `monitor/2`: monitoring a process that no longer exists delivers
/// `'DOWN'` at once with reason `noproc`; `wait` keeps the real reason.
#[tokio::test]
async fn a_monitor_on_a_dead_process_fires_at_once_with_noproc() {
    let (a, _ea) = start().await;
    a.process().kill();
    assert_eq!(exited(&a.process()).await, ExitReason::Killed);

    let down = a
        .process()
        .monitor()
        .now_or_never()
        .expect("the monitor of a dead process is ready at once");
    assert_eq!(
        down,
        Down {
            pid: a.pid(),
            reason: ExitReason::NoProc,
        }
    );
    // `wait` answers at once with the reason it exited with, the first one.
    a.process().exit(err("too late"));
    assert_eq!(a.process().wait().now_or_never(), Some(ExitReason::Killed));
    assert_eq!(a.process().exit_reason(), Some(ExitReason::Killed));
}

#[tokio::test]
async fn a_monitor_is_pending_while_the_process_lives() {
    let (a, _ea) = start().await;
    let mut monitor = a.process().monitor();
    assert!((&mut monitor).now_or_never().is_none());
    common::ping(&a).await;
    assert!((&mut monitor).now_or_never().is_none());
    a.process().stop(ExitReason::Shutdown);
    assert_eq!(
        tokio::time::timeout(LIMIT, monitor).await.unwrap().reason,
        ExitReason::Shutdown
    );
}

#[tokio::test]
async fn demonitor_removes_an_exit_callback() {
    let (a, _ea) = start().await;
    let removed = Arc::new(AtomicUsize::new(0));
    let kept = Arc::new(AtomicUsize::new(0));
    let r = removed.clone();
    let watch = a
        .process()
        .on_exit(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let k = kept.clone();
    let other = a
        .process()
        .on_exit(move |down| {
            assert_eq!(down.reason, err("end"));
            k.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    assert_ne!(watch, other);

    assert!(a.process().demonitor(watch));
    assert!(!a.process().demonitor(watch), "already removed");

    a.process().exit(err("end"));
    exited(&a.process()).await;

    assert_eq!(removed.load(Ordering::SeqCst), 0);
    assert_eq!(kept.load(Ordering::SeqCst), 1);
    assert!(!a.process().demonitor(other), "already ran");
}

#[tokio::test]
async fn exit_callbacks_run_exactly_once_and_before_wait_returns() {
    let (a, _ea) = start().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    a.process()
        .on_exit(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    a.process().kill();
    // A graceful stop does not replace the reason of a pending kill.
    a.process().stop(ExitReason::Normal);
    assert_eq!(exited(&a.process()).await, ExitReason::Killed);
    a.process().exit(err("again"));
    a.process().kill();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn on_exit_returns_down_for_a_dead_process() {
    let (a, _ea) = start().await;
    a.try_send(common::Msg::Fail(err("dead"))).unwrap();
    exited(&a.process()).await;

    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let result = a.process().on_exit(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(
        result,
        Err(Down {
            pid: a.pid(),
            reason: err("dead"),
        })
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the callback is not kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_wait_does_not_fire_later_and_the_process_still_ends() {
    let (a, _ea) = start().await;
    // Dropped unresolved: removes its monitor.
    assert!(a.process().wait().now_or_never().is_none());
    drop(a.process().monitor());
    a.process().exit(err("late"));
    assert_eq!(exited(&a.process()).await, err("late"));
}
