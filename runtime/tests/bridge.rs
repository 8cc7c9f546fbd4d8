//! Ractor actors run as arbor processes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use arbor_runtime::{
    spawn_ractor, CallError, ExitReason, ExitSignal, ProcessKind, ProcessRef, RactorRef, Reply,
    SendError, ShardedRegistry, SpawnError,
};
use common::{
    assert_no_event, err, exit_and_wait, exited, next_event, start, trap, Event, Events, Msg, LIMIT,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{mpsc, Semaphore};

struct Worker;

enum WMsg {
    Ping(Reply<()>),
    Push(u32),
    Log(Reply<Vec<u32>>),
    Fail(String),
    Panic(&'static str),
    StopSelf,
    Gate(Arc<Semaphore>),
    Hang,
    Exit(ExitSignal),
}

struct WState {
    log: Vec<u32>,
    events: mpsc::UnboundedSender<Event>,
}

enum StartMode {
    Ok,
    Fail,
    Panic,
    /// Reports `Entered`, then waits on the gate.
    Gate(Arc<Semaphore>),
}

impl Actor for Worker {
    type Msg = WMsg;
    type State = WState;
    type Arguments = (mpsc::UnboundedSender<Event>, StartMode);

    async fn pre_start(
        &self,
        _myself: ActorRef<WMsg>,
        (events, mode): Self::Arguments,
    ) -> Result<WState, ActorProcessingErr> {
        match mode {
            StartMode::Ok => Ok(WState {
                log: Vec::new(),
                events,
            }),
            StartMode::Fail => Err("cannot start".into()),
            StartMode::Panic => panic!("pre_start exploded"),
            StartMode::Gate(gate) => {
                let _ = events.send(Event::Entered);
                gate.acquire().await.unwrap().forget();
                Ok(WState {
                    log: Vec::new(),
                    events,
                })
            }
        }
    }

    async fn handle(
        &self,
        myself: ActorRef<WMsg>,
        msg: WMsg,
        state: &mut WState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WMsg::Ping(reply) => {
                reply.send(());
            }
            WMsg::Push(n) => {
                state.log.push(n);
                let _ = state.events.send(Event::Pushed(n));
            }
            WMsg::Log(reply) => {
                reply.send(state.log.clone());
            }
            WMsg::Fail(text) => return Err(text.into()),
            WMsg::Panic(text) => panic!("{text}"),
            WMsg::StopSelf => myself.stop(None),
            WMsg::Gate(gate) => {
                let _ = state.events.send(Event::Entered);
                gate.acquire().await.unwrap().forget();
                let _ = state.events.send(Event::Released);
            }
            WMsg::Hang => {
                let _ = state.events.send(Event::Entered);
                std::future::pending::<()>().await;
            }
            WMsg::Exit(signal) => {
                let _ = state.events.send(Event::Trapped(signal));
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<WMsg>,
        state: &mut WState,
    ) -> Result<(), ActorProcessingErr> {
        // ractor's post_stop does not know the reason; Normal marks "ran".
        let _ = state.events.send(Event::Terminated(ExitReason::Normal));
        Ok(())
    }
}

async fn worker() -> (RactorRef<WMsg>, Events) {
    worker_with(|_| {}).await
}

/// Spawns a worker, running `setup` on its process before it starts.
async fn worker_with(setup: impl FnOnce(&ProcessRef)) -> (RactorRef<WMsg>, Events) {
    let (tx, rx) = mpsc::unbounded_channel();
    let r = spawn_ractor(Worker, |p| {
        setup(p);
        (tx, StartMode::Ok)
    })
    .await
    .unwrap();
    (r, rx)
}

async fn ping(r: &RactorRef<WMsg>) {
    r.call(WMsg::Ping, LIMIT).await.unwrap();
}

async fn block(r: &RactorRef<WMsg>, events: &mut Events) -> Arc<Semaphore> {
    let gate = Arc::new(Semaphore::new(0));
    r.try_send(WMsg::Gate(gate.clone())).unwrap();
    assert_eq!(next_event(events).await, Event::Entered);
    gate
}

#[tokio::test]
async fn a_ractor_process_is_a_process() {
    let (r, _er) = worker().await;
    let p = r.process();
    assert_eq!(p.kind(), ProcessKind::Ractor);
    assert_eq!(p.pid(), r.pid());
    assert!(p.is_alive());
    assert_eq!(p.exit_reason(), None);
    ping(&r).await;
}

#[tokio::test]
async fn stop_ends_with_the_given_reason_after_post_stop() {
    for reason in [ExitReason::Shutdown, ExitReason::Normal, err("retired")] {
        let (r, mut er) = worker().await;
        let p = r.process();
        p.stop(reason.clone());
        assert_eq!(exited(&p).await, reason);
        assert_eq!(p.exit_reason(), Some(reason));
        assert_eq!(
            next_event(&mut er).await,
            Event::Terminated(ExitReason::Normal),
            "post_stop ran"
        );
    }
}

#[tokio::test]
async fn stop_lets_the_current_message_finish() {
    let (r, mut er) = worker().await;
    let gate = block(&r, &mut er).await;
    r.process().stop(ExitReason::Shutdown);
    assert!(r.process().is_alive());
    gate.add_permits(1);
    assert_eq!(exited(&r.process()).await, ExitReason::Shutdown);
    assert_eq!(next_event(&mut er).await, Event::Released);
}

#[tokio::test]
async fn kill_ends_with_killed_without_post_stop() {
    let (r, mut er) = worker().await;
    r.try_send(WMsg::Hang).unwrap();
    assert_eq!(next_event(&mut er).await, Event::Entered);

    r.process().kill();
    assert_eq!(exited(&r.process()).await, ExitReason::Killed);
    assert_no_event(&mut er);
}

#[tokio::test]
async fn exit_with_a_reason_ends_with_that_reason() {
    let (r, _er) = worker().await;
    assert_eq!(
        exit_and_wait(&r.process(), err("linked crash")).await,
        err("linked crash")
    );
}

#[tokio::test]
async fn a_handler_error_becomes_the_exit_reason() {
    let (r, mut er) = worker().await;
    r.try_send(WMsg::Fail("bad request".to_string())).unwrap();
    assert_eq!(exited(&r.process()).await, err("bad request"));
    assert_no_event(&mut er);
}

#[tokio::test]
async fn a_handler_panic_becomes_an_error() {
    let (r, _er) = worker().await;
    r.try_send(WMsg::Panic("ractor boom")).unwrap();
    match exited(&r.process()).await {
        ExitReason::Error(text) => {
            assert!(text.contains("panicked"), "{text}");
            assert!(text.contains("ractor boom"), "{text}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn stopping_itself_is_a_normal_exit() {
    let (r, mut er) = worker().await;
    r.try_send(WMsg::StopSelf).unwrap();
    assert_eq!(exited(&r.process()).await, ExitReason::Normal);
    assert_eq!(
        next_event(&mut er).await,
        Event::Terminated(ExitReason::Normal)
    );
}

#[tokio::test]
async fn a_failed_pre_start_fails_the_spawn() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let seen = Arc::new(parking_lot::Mutex::new(None));
    let s = seen.clone();
    let result = spawn_ractor(Worker, move |p| {
        *s.lock() = Some(p.clone());
        (tx, StartMode::Fail)
    })
    .await;
    match result {
        Err(SpawnError::Init(ExitReason::Error(text))) => {
            assert!(text.contains("cannot start"), "{text}");
        }
        other => panic!("expected an init error, got {other:?}"),
    }
    let p = seen.lock().clone().unwrap();
    assert!(!p.is_alive());
    assert!(matches!(p.exit_reason(), Some(ExitReason::Error(_))));

    let (tx, _rx) = mpsc::unbounded_channel();
    let error = spawn_ractor(Worker, |_| (tx, StartMode::Panic))
        .await
        .expect_err("spawn fails");
    match error.reason() {
        ExitReason::Error(text) => {
            assert!(text.contains("panicked"), "{text}");
            assert!(text.contains("pre_start exploded"), "{text}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn mailbox_len_counts_messages_sent_through_the_ractor_ref() {
    let (r, mut er) = worker().await;
    let gate = block(&r, &mut er).await;
    assert_eq!(r.mailbox_len(), 0);
    for n in 0..3 {
        r.try_send(WMsg::Push(n)).unwrap();
    }
    r.send_system(WMsg::Push(3)).unwrap();
    assert_eq!(r.mailbox_len(), 4);
    assert_eq!(r.process().mailbox_len(), 4);

    gate.add_permits(1);
    assert_eq!(next_event(&mut er).await, Event::Released);
    for n in 0..4 {
        assert_eq!(next_event(&mut er).await, Event::Pushed(n));
    }
    ping(&r).await;
    assert_eq!(r.mailbox_len(), 0);
}

#[tokio::test]
async fn messages_sent_around_the_count_do_not_corrupt_it() {
    let (r, _er) = worker().await;
    // Sent through ractor directly: not counted, and must not make the
    // count wrap below zero when handled.
    r.actor().send_message(WMsg::Push(1)).unwrap();
    r.actor().send_message(WMsg::Push(2)).unwrap();
    ping(&r).await;
    assert_eq!(r.mailbox_len(), 0);
    r.try_send(WMsg::Push(3)).unwrap();
    assert_eq!(r.call(WMsg::Log, LIMIT).await.unwrap(), vec![1, 2, 3]);
}

#[tokio::test]
async fn try_send_is_bounded_and_send_system_is_not() {
    let (r, mut er) = worker().await;
    let gate = block(&r, &mut er).await;
    let capacity = arbor_runtime::actor::DEFAULT_MAILBOX_CAPACITY;
    for n in 0..capacity {
        r.try_send(WMsg::Push(n as u32)).unwrap();
    }
    assert!(matches!(
        r.try_send(WMsg::Push(9999)),
        Err(SendError::Full(WMsg::Push(9999)))
    ));
    assert_eq!(
        r.call(WMsg::Ping, Duration::from_millis(10)).await,
        Err(CallError::Full)
    );
    r.send_system(WMsg::Push(10_000)).unwrap();
    assert_eq!(r.mailbox_len(), capacity + 1);
    gate.add_permits(1);
}

#[tokio::test]
async fn a_shedding_ractor_refuses_messages() {
    let (r, _er) = worker().await;
    r.process().set_shedding(true);
    assert!(matches!(
        r.try_send(WMsg::Push(1)),
        Err(SendError::Overloaded(WMsg::Push(1)))
    ));
    r.send_system(WMsg::Push(2)).unwrap();
    r.process().set_shedding(false);
    assert_eq!(r.call(WMsg::Log, LIMIT).await.unwrap(), vec![2]);
}

#[tokio::test]
async fn sending_to_a_dead_ractor_is_closed() {
    let (r, _er) = worker().await;
    exit_and_wait(&r.process(), ExitReason::Killed).await;
    assert!(matches!(
        r.try_send(WMsg::Push(1)),
        Err(SendError::Closed(WMsg::Push(1)))
    ));
    assert!(matches!(
        r.send_system(WMsg::Push(2)),
        Err(SendError::Closed(WMsg::Push(2)))
    ));
    assert_eq!(r.call(WMsg::Ping, LIMIT).await, Err(CallError::Closed));
    assert_eq!(r.mailbox_len(), 0);
}

#[tokio::test(start_paused = true)]
async fn call_with_reply_and_timeout() {
    let (r, mut er) = worker().await;
    r.try_send(WMsg::Push(4)).unwrap();
    assert_eq!(r.call(WMsg::Log, LIMIT).await, Ok(vec![4]));
    assert_eq!(next_event(&mut er).await, Event::Pushed(4));

    let _gate = block(&r, &mut er).await;
    let timeout = Duration::from_millis(300);
    assert_eq!(
        r.call(WMsg::Ping, timeout).await,
        Err(CallError::Timeout(timeout))
    );
}

#[tokio::test]
async fn downcast_ractor_to_the_right_message_type_only() {
    let (r, _er) = worker().await;
    let p = r.process();
    let typed = arbor_runtime::RactorRef::<WMsg>::from_process(&p).expect("right message type");
    assert_eq!(typed.pid(), r.pid());
    typed.try_send(WMsg::Push(8)).unwrap();
    assert_eq!(r.call(WMsg::Log, LIMIT).await.unwrap(), vec![8]);

    assert!(arbor_runtime::RactorRef::<u32>::from_process(&p).is_none());
    assert!(arbor_runtime::RactorRef::<Msg>::from_process(&p).is_none());
    assert!(
        arbor_runtime::ActorRef::<WMsg>::from_process(&p).is_none(),
        "not a lightweight actor"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lightweight_crash_kills_a_linked_ractor() {
    let (r, mut er) = worker().await;
    let (a, _ea) = start().await;
    r.process().link(&a.process());

    a.try_send(Msg::Fail(err("lightweight failed"))).unwrap();

    assert_eq!(exited(&r.process()).await, err("lightweight failed"));
    assert_no_event(&mut er);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ractor_crash_kills_a_linked_lightweight_actor() {
    let (r, _er) = worker().await;
    let (a, _ea) = start().await;
    a.process().link(&r.process());

    r.try_send(WMsg::Fail("ractor failed".to_string())).unwrap();

    assert_eq!(exited(&a.process()).await, err("ractor failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ractor_normal_exit_spares_a_linked_trapping_actor_and_signals_it() {
    let (r, _er) = worker().await;
    let (a, mut ea) = start().await;
    trap(&a);
    a.process().link(&r.process());

    r.try_send(WMsg::StopSelf).unwrap();
    assert_eq!(
        next_event(&mut ea).await,
        Event::Trapped(ExitSignal {
            from: r.pid(),
            reason: ExitReason::Normal,
        })
    );
    assert!(a.is_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ractor_can_trap_exits_set_up_before_it_starts() {
    let (r, mut er) = worker_with(|p| {
        let me = p.clone();
        p.trap_exits(move |signal| {
            if let Some(r) = arbor_runtime::RactorRef::<WMsg>::from_process(&me) {
                let _ = r.send_system(WMsg::Exit(signal));
            }
        });
    })
    .await;
    let (a, _ea) = start().await;
    r.process().link(&a.process());

    a.process().exit(err("child died"));

    assert_eq!(
        next_event(&mut er).await,
        Event::Trapped(ExitSignal {
            from: a.pid(),
            reason: err("child died"),
        })
    );
    assert!(r.process().is_alive());
    ping(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ractor_linked_to_a_dead_process_before_it_starts_dies() {
    let (dead, _ed) = start().await;
    exit_and_wait(&dead.process(), err("gone before")).await;

    let (r, _er) = worker_with(|p| p.link(&dead.process())).await;
    assert_eq!(exited(&r.process()).await, ExitReason::NoProc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ractor_stopped_or_killed_before_it_starts_ends() {
    let (r, _er) = worker_with(|p| p.stop(ExitReason::Shutdown)).await;
    assert_eq!(exited(&r.process()).await, ExitReason::Shutdown);

    let (r, _er) = worker_with(|p| p.kill()).await;
    assert_eq!(exited(&r.process()).await, ExitReason::Killed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_pre_start_fails_the_spawn_with_killed() {
    let gate = Arc::new(Semaphore::new(0));
    let (tx, mut events) = mpsc::unbounded_channel();
    let seen = Arc::new(parking_lot::Mutex::new(None));
    let s = seen.clone();
    let g = gate.clone();
    let spawning = tokio::spawn(spawn_ractor(Worker, move |p| {
        *s.lock() = Some(p.clone());
        (tx, StartMode::Gate(g))
    }));
    assert_eq!(next_event(&mut events).await, Event::Entered);
    let p = seen.lock().clone().unwrap();
    p.kill();

    let result = tokio::time::timeout(LIMIT, spawning)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.err(), Some(SpawnError::Init(ExitReason::Killed)));
    assert_eq!(exited(&p).await, ExitReason::Killed);
    gate.add_permits(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ractor_can_be_registered_and_is_unregistered_on_exit() {
    let reg = ShardedRegistry::new();
    let (r, _er) = worker().await;
    reg.register("sup".to_string(), &r.process()).unwrap();
    assert_eq!(reg.whereis(&"sup".to_string()), Some(r.process()));
    let found = reg
        .whereis(&"sup".to_string())
        .and_then(|p| arbor_runtime::RactorRef::<WMsg>::from_process(&p))
        .unwrap();
    found.try_send(WMsg::Push(1)).unwrap();

    exit_and_wait(&r.process(), ExitReason::Shutdown).await;
    assert!(reg.is_empty());
}
