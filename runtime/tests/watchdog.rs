//! The mailbox watchdog, driven by explicit samples.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use arbor_runtime::watchdog::Alarm;
use arbor_runtime::{
    ActorRef, CallError, ExitReason, SendError, WatchPolicy, Watchdog, WatchdogConfig,
};
use common::{assert_no_event, block, exited, next_event, start, Event, Events, Msg, LIMIT};
use tokio::sync::Semaphore;

/// A watchdog whose own ticks never come during a test: only `sample` acts.
async fn watchdog(default_threshold: usize) -> Watchdog {
    Watchdog::spawn(WatchdogConfig {
        interval: Duration::from_secs(3600),
        default_threshold,
    })
    .await
    .unwrap()
}

/// A probe blocked in a handler with `n` more gated messages queued behind
/// it: releasing one permit lowers the depth by exactly one.
async fn backlog(n: usize) -> (ActorRef<Msg>, Events, Arc<Semaphore>) {
    let (a, mut ea) = start().await;
    let gate = block(&a, &mut ea).await;
    for _ in 0..n {
        a.try_send(Msg::Gate(gate.clone())).unwrap();
    }
    assert_eq!(a.mailbox_len(), n);
    (a, ea, gate)
}

/// Lets one message through and waits until the next one is being handled.
async fn drain_one(gate: &Semaphore, events: &mut Events) {
    gate.add_permits(1);
    assert_eq!(next_event(events).await, Event::Released);
    assert_eq!(next_event(events).await, Event::Entered);
}

#[tokio::test]
async fn log_only_raises_an_alarm_and_does_nothing_else() {
    let dog = watchdog(1000).await;
    let (a, _ea, _gate) = backlog(3).await;
    dog.watch_with(&a.process(), 2, WatchPolicy::LogOnly)
        .unwrap();

    let alarms = dog.sample().await.unwrap();
    assert_eq!(
        alarms,
        vec![Alarm {
            pid: a.pid(),
            depth: 3,
            policy: WatchPolicy::LogOnly,
        }]
    );
    assert!(a.is_alive());
    assert!(!a.process().is_shedding());
    a.try_send(Msg::Push(1)).unwrap();
    // Still over: alarms again on the next sample.
    assert_eq!(dog.sample().await.unwrap()[0].depth, 4);
}

#[tokio::test]
async fn no_alarm_at_or_under_the_threshold() {
    let dog = watchdog(1000).await;
    let (a, _ea, _gate) = backlog(3).await;
    dog.watch_with(&a.process(), 3, WatchPolicy::Kill).unwrap();
    assert!(dog.sample().await.unwrap().is_empty());
    assert!(a.is_alive());
}

#[tokio::test]
async fn watch_uses_the_default_threshold() {
    let dog = watchdog(3).await;
    let (a, _ea, _gate) = backlog(4).await;
    dog.watch(&a.process(), WatchPolicy::LogOnly).unwrap();
    let alarms = dog.sample().await.unwrap();
    assert_eq!(alarms.len(), 1);
    assert_eq!(alarms[0].depth, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shed_refuses_messages_until_the_depth_falls_to_half_the_threshold() {
    let dog = watchdog(1000).await;
    let (a, mut ea, gate) = backlog(10).await;
    dog.watch_with(&a.process(), 5, WatchPolicy::Shed).unwrap();

    let alarms = dog.sample().await.unwrap();
    assert_eq!(
        alarms,
        vec![Alarm {
            pid: a.pid(),
            depth: 10,
            policy: WatchPolicy::Shed,
        }]
    );
    assert!(a.process().is_shedding());
    assert!(matches!(
        a.try_send(Msg::Push(1)),
        Err(SendError::Overloaded(Msg::Push(1)))
    ));
    assert!(matches!(
        a.send(Msg::Push(2)).await,
        Err(SendError::Overloaded(Msg::Push(2)))
    ));
    assert_eq!(a.call(Msg::Ping, LIMIT).await, Err(CallError::Overloaded));
    // System messages still get through.
    a.send_system(Msg::Push(3)).unwrap();
    assert_eq!(a.mailbox_len(), 11);

    // Down to 3, under the threshold but above half of it: still shedding,
    // and no new alarm while it does.
    for _ in 0..8 {
        drain_one(&gate, &mut ea).await;
    }
    assert_eq!(a.mailbox_len(), 3);
    assert!(dog.sample().await.unwrap().is_empty());
    assert!(a.process().is_shedding());
    assert!(matches!(
        a.try_send(Msg::Push(4)),
        Err(SendError::Overloaded(_))
    ));

    // Down to 2 = 5 / 2: shedding ends.
    drain_one(&gate, &mut ea).await;
    assert_eq!(a.mailbox_len(), 2);
    assert!(dog.sample().await.unwrap().is_empty());
    assert!(!a.process().is_shedding());
    a.try_send(Msg::Push(5)).unwrap();
}

#[tokio::test]
async fn unwatch_ends_shedding() {
    let dog = watchdog(1000).await;
    let (a, _ea, _gate) = backlog(4).await;
    dog.watch_with(&a.process(), 2, WatchPolicy::Shed).unwrap();
    assert_eq!(dog.sample().await.unwrap().len(), 1);
    assert!(a.process().is_shedding());

    dog.unwatch(a.pid()).unwrap();
    // The sample is queued behind the unwatch.
    assert!(dog.sample().await.unwrap().is_empty());
    assert!(!a.process().is_shedding());
}

#[tokio::test]
async fn a_stopped_watchdog_ends_shedding() {
    let dog = watchdog(1000).await;
    let (a, _ea, _gate) = backlog(4).await;
    dog.watch_with(&a.process(), 2, WatchPolicy::Shed).unwrap();
    dog.sample().await.unwrap();
    assert!(a.process().is_shedding());

    dog.process().stop(ExitReason::Shutdown);
    assert_eq!(exited(&dog.process()).await, ExitReason::Shutdown);
    assert!(!a.process().is_shedding());
    assert!(matches!(
        dog.watch(&a.process(), WatchPolicy::Kill),
        Err(SendError::Closed(_))
    ));
    assert!(dog.sample().await.is_err());
}

#[tokio::test]
async fn kill_kills_the_process() {
    let dog = watchdog(1000).await;
    let (a, mut ea, _gate) = backlog(3).await;
    dog.watch_with(&a.process(), 2, WatchPolicy::Kill).unwrap();

    let alarms = dog.sample().await.unwrap();
    assert_eq!(
        alarms,
        vec![Alarm {
            pid: a.pid(),
            depth: 3,
            policy: WatchPolicy::Kill,
        }]
    );
    assert_eq!(exited(&a.process()).await, ExitReason::Killed);
    assert_no_event(&mut ea);
    // A dead process is no longer watched.
    assert!(dog.sample().await.unwrap().is_empty());
}

#[tokio::test]
async fn each_process_gets_its_own_policy_and_threshold() {
    let dog = watchdog(1000).await;
    let (quiet, _eq, _gq) = backlog(1).await;
    let (loud, _el, _gl) = backlog(5).await;
    let (doomed, _ed, _gd) = backlog(5).await;
    dog.watch_with(&quiet.process(), 2, WatchPolicy::Kill)
        .unwrap();
    dog.watch_with(&loud.process(), 4, WatchPolicy::Shed)
        .unwrap();
    dog.watch_with(&doomed.process(), 4, WatchPolicy::Kill)
        .unwrap();

    let mut alarms = dog.sample().await.unwrap();
    alarms.sort_by_key(|a| a.pid);
    let mut expected = vec![
        Alarm {
            pid: loud.pid(),
            depth: 5,
            policy: WatchPolicy::Shed,
        },
        Alarm {
            pid: doomed.pid(),
            depth: 5,
            policy: WatchPolicy::Kill,
        },
    ];
    expected.sort_by_key(|a| a.pid);
    assert_eq!(alarms, expected);
    assert_eq!(exited(&doomed.process()).await, ExitReason::Killed);
    assert!(loud.process().is_shedding());
    assert!(quiet.is_alive());
    assert!(!quiet.process().is_shedding());
}

#[tokio::test(start_paused = true)]
async fn periodic_samples_apply_the_policy_without_being_asked() {
    let dog = Watchdog::spawn(WatchdogConfig {
        interval: Duration::from_millis(100),
        default_threshold: 2,
    })
    .await
    .unwrap();
    let (a, _ea, _gate) = backlog(3).await;
    let started = tokio::time::Instant::now();
    dog.watch(&a.process(), WatchPolicy::Kill).unwrap();

    assert_eq!(exited(&a.process()).await, ExitReason::Killed);
    assert!(started.elapsed() >= Duration::from_millis(100));
}
