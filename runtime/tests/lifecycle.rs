//! Lightweight actors: how they start and end, and what `terminate` sees.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use arbor_runtime::{
    spawn, Actor, Context, ExitReason, Flow, ProcessKind, ProcessRef, Reply, SpawnError,
};
use common::{
    assert_no_event, block, err, exited, next_event, ping, start, Event, Events, Msg, LIMIT,
};
use parking_lot::Mutex;
use tokio::sync::{mpsc, Semaphore};

#[tokio::test]
async fn a_handler_error_becomes_the_exit_reason_and_terminate_sees_it() {
    let (a, mut ea) = start().await;
    assert_eq!(a.process().kind(), ProcessKind::Lightweight);
    assert_eq!(a.process().exit_reason(), None);

    a.try_send(Msg::Fail(err("handler failed"))).unwrap();

    assert_eq!(exited(&a.process()).await, err("handler failed"));
    assert!(!a.is_alive());
    assert_eq!(a.process().exit_reason(), Some(err("handler failed")));
    assert_eq!(
        next_event(&mut ea).await,
        Event::Terminated(err("handler failed"))
    );
}

#[tokio::test]
async fn a_panic_becomes_an_error_and_skips_terminate() {
    let (a, mut ea) = start().await;
    a.try_send(Msg::Panic("kaboom")).unwrap();

    let reason = exited(&a.process()).await;
    match &reason {
        ExitReason::Error(text) => {
            assert!(text.contains("panicked"), "{text}");
            assert!(text.contains("kaboom"), "{text}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(!reason.is_normal());
    // As documented on `Actor::terminate`: not run after a panic.
    assert_no_event(&mut ea);
}

#[tokio::test]
async fn ctx_stop_ends_the_actor_after_the_handler_with_that_reason() {
    let (a, mut ea) = start().await;
    a.try_send(Msg::StopSelf(err("done here"))).unwrap();
    // Queued behind the stop: never handled.
    a.try_send(Msg::Push(1)).unwrap();

    assert_eq!(exited(&a.process()).await, err("done here"));
    assert_eq!(
        next_event(&mut ea).await,
        Event::Terminated(err("done here"))
    );
    assert_no_event(&mut ea);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_finishes_the_current_message_then_runs_terminate() {
    let (a, mut ea) = start().await;
    let gate = block(&a, &mut ea).await;
    a.try_send(Msg::Push(7)).unwrap();

    a.process().stop(ExitReason::Shutdown);
    // Still alive: it is in the middle of a message.
    assert!(a.is_alive());
    gate.add_permits(1);

    assert_eq!(exited(&a.process()).await, ExitReason::Shutdown);
    assert_eq!(next_event(&mut ea).await, Event::Released);
    assert_eq!(
        next_event(&mut ea).await,
        Event::Terminated(ExitReason::Shutdown)
    );
    // The message queued behind the stop was not handled.
    assert_no_event(&mut ea);
}

#[tokio::test]
async fn stop_of_an_idle_actor_uses_the_given_reason() {
    for reason in [ExitReason::Normal, ExitReason::Shutdown, err("custom")] {
        let (a, mut ea) = start().await;
        ping(&a).await;
        a.process().stop(reason.clone());
        assert_eq!(exited(&a.process()).await, reason);
        assert_eq!(next_event(&mut ea).await, Event::Terminated(reason));
    }
}

#[tokio::test]
async fn a_later_stop_does_not_replace_the_first_reason() {
    let (a, mut ea) = start().await;
    let gate = block(&a, &mut ea).await;
    a.process().stop(err("first"));
    a.process().stop(ExitReason::Normal);
    gate.add_permits(1);
    assert_eq!(exited(&a.process()).await, err("first"));
}

#[tokio::test]
async fn kill_ends_a_handler_stuck_forever_without_terminate() {
    let (a, mut ea) = start().await;
    a.try_send(Msg::Hang).unwrap();
    assert_eq!(next_event(&mut ea).await, Event::Entered);

    a.process().kill();

    assert_eq!(exited(&a.process()).await, ExitReason::Killed);
    assert_no_event(&mut ea);
}

#[tokio::test]
async fn stop_cannot_end_a_stuck_handler_but_kill_after_it_can() {
    let (a, mut ea) = start().await;
    a.try_send(Msg::Hang).unwrap();
    assert_eq!(next_event(&mut ea).await, Event::Entered);

    a.process().stop(ExitReason::Shutdown);
    let mut wait = a.process().monitor();
    // Give the actor every chance to act on the stop; it cannot.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(futures_util::FutureExt::now_or_never(&mut wait).is_none());

    // The supervisor's brutal kill after a shutdown timeout.
    a.process().kill();
    assert_eq!(
        tokio::time::timeout(LIMIT, wait).await.unwrap().reason,
        ExitReason::Killed
    );
    assert_no_event(&mut ea);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_a_handler_that_never_yields_still_skips_terminate() {
    let (a, mut ea) = start().await;
    let release = Arc::new(AtomicBool::new(false));
    a.try_send(Msg::Spin(release.clone())).unwrap();
    assert_eq!(next_event(&mut ea).await, Event::Entered);

    // The handler is running on a worker: the abort cannot interrupt it, and
    // it completes without yielding once released.
    a.process().kill();
    release.store(true, std::sync::atomic::Ordering::Release);

    assert_eq!(exited(&a.process()).await, ExitReason::Killed);
    assert_eq!(next_event(&mut ea).await, Event::Released);
    assert_no_event(&mut ea);
}

#[tokio::test]
async fn an_actor_that_kills_itself_exits_killed_without_terminate() {
    let (a, mut ea) = start().await;
    a.try_send(Msg::KillSelf).unwrap();
    assert_eq!(exited(&a.process()).await, ExitReason::Killed);
    assert_no_event(&mut ea);
}

#[tokio::test]
async fn kill_right_after_spawn_ends_the_process() {
    // The actor's task has not run yet when it is killed.
    let (a, mut ea) = start().await;
    a.process().kill();
    assert_eq!(exited(&a.process()).await, ExitReason::Killed);
    assert_no_event(&mut ea);

    let (b, mut eb) = start().await;
    b.process().exit(err("early"));
    assert_eq!(exited(&b.process()).await, err("early"));
    assert_no_event(&mut eb);
}

#[tokio::test]
async fn stop_right_after_spawn_runs_terminate() {
    let (a, mut ea) = start().await;
    a.process().stop(ExitReason::Normal);
    assert_eq!(exited(&a.process()).await, ExitReason::Normal);
    assert_eq!(
        next_event(&mut ea).await,
        Event::Terminated(ExitReason::Normal)
    );
}

#[tokio::test]
async fn messages_are_handled_in_order() {
    let (a, _ea) = start().await;
    for n in 0..100 {
        a.try_send(Msg::Push(n)).unwrap();
    }
    let log = a.call(Msg::Log, LIMIT).await.unwrap();
    assert_eq!(log, (0..100).collect::<Vec<_>>());
}

// --- init ---------------------------------------------------------------

enum InitMode {
    Ok,
    Fail(ExitReason),
    Panic,
    /// Waits on the gate, after reporting `Entered`.
    Gate(Arc<Semaphore>),
    LinkTo(ProcessRef),
}

struct Starter {
    mode: InitMode,
    me: Arc<Mutex<Option<ProcessRef>>>,
    events: mpsc::UnboundedSender<Event>,
}

enum StarterMsg {
    Ping(Reply<()>),
}

impl Actor for Starter {
    type Msg = StarterMsg;

    async fn init(&mut self, ctx: &mut Context<Self>) -> Flow {
        *self.me.lock() = Some(ctx.process());
        match &self.mode {
            InitMode::Ok => Ok(()),
            InitMode::Fail(reason) => Err(reason.clone()),
            InitMode::Panic => panic!("init exploded"),
            InitMode::Gate(gate) => {
                let _ = self.events.send(Event::Entered);
                gate.acquire().await.unwrap().forget();
                Ok(())
            }
            InitMode::LinkTo(other) => {
                ctx.process().link(other);
                Ok(())
            }
        }
    }

    async fn handle(&mut self, msg: StarterMsg, _ctx: &mut Context<Self>) -> Flow {
        match msg {
            StarterMsg::Ping(reply) => {
                reply.send(());
            }
        }
        Ok(())
    }

    async fn terminate(&mut self, reason: &ExitReason) {
        let _ = self.events.send(Event::Terminated(reason.clone()));
    }
}

fn starter(mode: InitMode) -> (Starter, Arc<Mutex<Option<ProcessRef>>>, Events) {
    let me = Arc::new(Mutex::new(None));
    let (tx, rx) = mpsc::unbounded_channel();
    (
        Starter {
            mode,
            me: me.clone(),
            events: tx,
        },
        me,
        rx,
    )
}

#[tokio::test]
async fn init_runs_before_spawn_returns() {
    let (s, me, _events) = starter(InitMode::Ok);
    let a = spawn(s).await.unwrap();
    assert_eq!(me.lock().as_ref().map(ProcessRef::pid), Some(a.pid()));
    a.call(StarterMsg::Ping, LIMIT).await.unwrap();
}

#[tokio::test]
async fn an_init_error_fails_the_spawn_and_the_process_is_dead() {
    let (s, me, mut events) = starter(InitMode::Fail(err("no config")));
    let result = spawn(s).await;
    assert_eq!(result.err(), Some(SpawnError::Init(err("no config"))));

    let process = me.lock().clone().expect("init saw its process");
    assert!(!process.is_alive());
    assert_eq!(process.exit_reason(), Some(err("no config")));
    assert_eq!(process.wait().await, err("no config"));
    // terminate is for actors that started.
    assert_no_event(&mut events);
}

#[tokio::test]
async fn an_init_panic_fails_the_spawn() {
    let (s, me, _events) = starter(InitMode::Panic);
    let error = spawn(s).await.expect_err("spawn fails");
    match error.reason() {
        ExitReason::Error(text) => {
            assert!(text.contains("panicked"), "{text}");
            assert!(text.contains("init exploded"), "{text}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    let process = me.lock().clone().unwrap();
    assert_eq!(process.exit_reason(), Some(error.reason().clone()));
}

#[tokio::test]
async fn a_kill_during_init_ends_the_actor_once_started_without_terminate() {
    let gate = Arc::new(Semaphore::new(0));
    let (s, me, mut events) = starter(InitMode::Gate(gate.clone()));
    let spawning = tokio::spawn(spawn(s));
    assert_eq!(next_event(&mut events).await, Event::Entered);

    let process = me.lock().clone().unwrap();
    process.kill();
    gate.add_permits(1);

    let a = spawning.await.unwrap().expect("init itself succeeded");
    assert_eq!(exited(&a.process()).await, ExitReason::Killed);
    assert_no_event(&mut events);
}

#[tokio::test]
async fn a_stop_during_init_is_graceful_once_started() {
    for reason in [ExitReason::Normal, ExitReason::Shutdown] {
        let gate = Arc::new(Semaphore::new(0));
        let (s, me, mut events) = starter(InitMode::Gate(gate.clone()));
        let spawning = tokio::spawn(spawn(s));
        assert_eq!(next_event(&mut events).await, Event::Entered);

        me.lock().clone().unwrap().stop(reason.clone());
        gate.add_permits(1);

        let a = spawning.await.unwrap().unwrap();
        assert_eq!(exited(&a.process()).await, reason);
        assert_eq!(next_event(&mut events).await, Event::Terminated(reason));
    }
}

#[tokio::test]
async fn linking_to_a_dead_process_in_init_kills_the_new_actor() {
    let (dead, _ed) = start().await;
    dead.try_send(Msg::Fail(err("already gone"))).unwrap();
    exited(&dead.process()).await;

    let (s, _me, mut events) = starter(InitMode::LinkTo(dead.process()));
    let a = spawn(s).await.unwrap();
    assert_eq!(exited(&a.process()).await, ExitReason::NoProc);
    assert_no_event(&mut events);
}
