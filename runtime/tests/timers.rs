//! Timers, on paused tokio time.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arbor_runtime::timer::{send_after, send_interval};
use arbor_runtime::ExitReason;
use common::{block, exit_and_wait, next_event, start, start_with_capacity, Event, Msg, LIMIT};
use tokio::time::{sleep, Instant};

const MS: Duration = Duration::from_millis(1);

async fn log(actor: &arbor_runtime::ActorRef<Msg>) -> Vec<u32> {
    actor.call(Msg::Log, LIMIT).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn send_after_delivers_after_the_delay_and_not_before() {
    let (a, _ea) = start().await;
    let start = Instant::now();
    let timer = send_after(100 * MS, a.clone(), Msg::Push(1));
    assert!(!timer.is_finished());

    sleep(99 * MS).await;
    assert!(log(&a).await.is_empty(), "delivered early");
    assert!(!timer.is_finished());

    // At exactly 100 ms the timer and this task wake together, in either
    // order; one tick later the message must be there.
    sleep(2 * MS).await;
    assert_eq!(log(&a).await, vec![1]);
    assert!(start.elapsed() >= 100 * MS);
    // A one-shot timer is done once it has fired.
    assert!(timer.is_finished());
}

#[tokio::test(start_paused = true)]
async fn timers_fire_in_deadline_order() {
    let (a, _ea) = start().await;
    send_after(30 * MS, a.clone(), Msg::Push(3));
    send_after(10 * MS, a.clone(), Msg::Push(1));
    send_after(20 * MS, a.clone(), Msg::Push(2));
    sleep(50 * MS).await;
    assert_eq!(log(&a).await, vec![1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn cancel_prevents_delivery() {
    let (a, _ea) = start().await;
    let cancelled = send_after(50 * MS, a.clone(), Msg::Push(1));
    let kept = send_after(50 * MS, a.clone(), Msg::Push(2));
    sleep(10 * MS).await;
    cancelled.cancel();

    sleep(100 * MS).await;
    assert_eq!(log(&a).await, vec![2]);
    assert!(cancelled.is_finished());
    assert!(kept.is_finished());
}

#[tokio::test(start_paused = true)]
async fn timer_messages_go_past_a_full_mailbox() {
    let (a, mut ea) = start_with_capacity(1).await;
    let gate = block(&a, &mut ea).await;
    a.try_send(Msg::Push(1)).unwrap();
    send_after(10 * MS, a.clone(), Msg::Push(2));

    sleep(20 * MS).await;
    assert_eq!(a.mailbox_len(), 2);
    gate.add_permits(1);
    assert_eq!(next_event(&mut ea).await, Event::Released);
    assert_eq!(next_event(&mut ea).await, Event::Pushed(1));
    assert_eq!(next_event(&mut ea).await, Event::Pushed(2));
}

#[tokio::test(start_paused = true)]
async fn send_after_to_a_dead_actor_is_dropped_quietly() {
    let (a, _ea) = start().await;
    let timer = send_after(10 * MS, a.clone(), Msg::Push(1));
    exit_and_wait(&a.process(), ExitReason::Killed).await;
    sleep(20 * MS).await;
    assert!(timer.is_finished());
}

#[tokio::test(start_paused = true)]
async fn send_interval_delivers_every_period_starting_after_one() {
    let (a, _ea) = start().await;
    let ticks = Arc::new(AtomicU32::new(0));
    let counter = ticks.clone();
    let timer = send_interval(10 * MS, a.clone(), move || {
        Msg::Push(counter.fetch_add(1, Ordering::SeqCst))
    });

    sleep(9 * MS).await;
    assert!(log(&a).await.is_empty(), "first tick after one period");
    sleep(26 * MS).await; // t = 35 ms: ticks at 10, 20, 30
    assert_eq!(log(&a).await, vec![0, 1, 2]);
    sleep(10 * MS).await; // t = 45 ms: and 40
    assert_eq!(log(&a).await, vec![0, 1, 2, 3]);
    assert!(!timer.is_finished());

    timer.cancel();
    sleep(100 * MS).await;
    assert_eq!(log(&a).await.len(), 4, "no ticks after cancel");
    assert_eq!(ticks.load(Ordering::SeqCst), 4);
    assert!(timer.is_finished());
}

#[tokio::test(start_paused = true)]
async fn send_interval_stops_by_itself_when_the_target_dies() {
    let (a, _ea) = start().await;
    let timer = send_interval(10 * MS, a.clone(), || Msg::Push(0));
    sleep(25 * MS).await;
    assert_eq!(log(&a).await.len(), 2);

    exit_and_wait(&a.process(), ExitReason::Shutdown).await;
    // The next tick finds the target gone and ends the timer. Bounded, so a
    // timer that never ends fails the test.
    for _ in 0..5 {
        if timer.is_finished() {
            break;
        }
        sleep(10 * MS).await;
    }
    assert!(
        timer.is_finished(),
        "interval kept running after its target died"
    );
}

#[tokio::test(start_paused = true)]
async fn send_interval_keeps_going_while_the_mailbox_is_full() {
    // Ticks go past capacity, and a full mailbox is not a reason to stop.
    let (a, mut ea) = start_with_capacity(1).await;
    let gate = block(&a, &mut ea).await;
    a.try_send(Msg::Push(100)).unwrap();
    let timer = send_interval(10 * MS, a.clone(), || Msg::Push(0));
    sleep(35 * MS).await;
    assert_eq!(a.mailbox_len(), 4);
    assert!(!timer.is_finished());
    timer.cancel();
    gate.add_permits(1);
    assert_eq!(next_event(&mut ea).await, Event::Released);
}

#[tokio::test(start_paused = true)]
async fn timers_can_target_ractor_actors() {
    use arbor_runtime::{spawn_ractor, Reply};
    use ractor::{Actor, ActorProcessingErr, ActorRef};

    struct Counter;
    enum CounterMsg {
        Add(u32),
        Get(Reply<u32>),
    }
    impl Actor for Counter {
        type Msg = CounterMsg;
        type State = u32;
        type Arguments = ();
        async fn pre_start(
            &self,
            _myself: ActorRef<CounterMsg>,
            _args: (),
        ) -> Result<u32, ActorProcessingErr> {
            Ok(0)
        }
        async fn handle(
            &self,
            _myself: ActorRef<CounterMsg>,
            msg: CounterMsg,
            state: &mut u32,
        ) -> Result<(), ActorProcessingErr> {
            match msg {
                CounterMsg::Add(n) => *state += n,
                CounterMsg::Get(reply) => {
                    reply.send(*state);
                }
            }
            Ok(())
        }
    }

    let r = spawn_ractor(Counter, |_| ()).await.unwrap();
    send_after(10 * MS, r.clone(), CounterMsg::Add(5));
    let interval = send_interval(10 * MS, r.clone(), || CounterMsg::Add(1));
    sleep(35 * MS).await;
    assert_eq!(r.call(CounterMsg::Get, LIMIT).await.unwrap(), 5 + 3);

    exit_and_wait(&r.process(), ExitReason::Shutdown).await;
    for _ in 0..5 {
        if interval.is_finished() {
            break;
        }
        sleep(10 * MS).await;
    }
    assert!(interval.is_finished());
}
