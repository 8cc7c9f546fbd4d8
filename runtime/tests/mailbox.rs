//! The bounded, counted mailbox of lightweight actors; calls; downcasts.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use arbor_runtime::{CallError, ExitReason, SendError};
use common::{block, err, exited, next_event, ping, start, start_with_capacity, Event, Msg, LIMIT};
use futures_util::FutureExt;

fn pushed(result: Result<(), SendError<Msg>>) -> Option<u32> {
    match result.map_err(SendError::into_inner) {
        Err(Msg::Push(n)) => Some(n),
        _ => None,
    }
}

#[tokio::test]
async fn try_send_at_capacity_is_refused_with_the_message() {
    let (a, mut ea) = start_with_capacity(2).await;
    assert_eq!(a.capacity(), 2);
    let gate = block(&a, &mut ea).await;

    a.try_send(Msg::Push(1)).unwrap();
    a.try_send(Msg::Push(2)).unwrap();
    let refused = a.try_send(Msg::Push(3));
    assert!(matches!(refused, Err(SendError::Full(Msg::Push(3)))));
    assert_eq!(pushed(a.try_send(Msg::Push(4))), Some(4));
    assert_eq!(a.mailbox_len(), 2);

    gate.add_permits(1);
    assert_eq!(next_event(&mut ea).await, Event::Released);
    assert_eq!(next_event(&mut ea).await, Event::Pushed(1));
    assert_eq!(next_event(&mut ea).await, Event::Pushed(2));
    ping(&a).await;
    assert_eq!(a.call(Msg::Log, LIMIT).await.unwrap(), vec![1, 2]);
}

#[tokio::test]
async fn a_capacity_of_zero_means_one() {
    let (a, mut ea) = start_with_capacity(0).await;
    assert_eq!(a.capacity(), 1);
    let _gate = block(&a, &mut ea).await;
    a.try_send(Msg::Push(1)).unwrap();
    assert!(matches!(a.try_send(Msg::Push(2)), Err(SendError::Full(_))));
}

#[tokio::test]
async fn mailbox_len_counts_queued_messages() {
    let (a, mut ea) = start().await;
    assert_eq!(a.mailbox_len(), 0);
    let gate = block(&a, &mut ea).await;
    // The blocked message has been taken out of the mailbox.
    assert_eq!(a.mailbox_len(), 0);

    for n in 0..5 {
        a.try_send(Msg::Push(n)).unwrap();
    }
    assert_eq!(a.mailbox_len(), 5);
    assert_eq!(a.process().mailbox_len(), 5);

    gate.add_permits(1);
    assert_eq!(next_event(&mut ea).await, Event::Released);
    for n in 0..5 {
        assert_eq!(next_event(&mut ea).await, Event::Pushed(n));
    }
    ping(&a).await;
    assert_eq!(a.mailbox_len(), 0);
}

#[tokio::test]
async fn send_waits_for_room_and_completes_once_the_actor_drains() {
    let (a, mut ea) = start_with_capacity(1).await;
    let gate = block(&a, &mut ea).await;
    a.try_send(Msg::Push(1)).unwrap();

    let mut sending = Box::pin(a.send(Msg::Push(2)));
    assert!((&mut sending).now_or_never().is_none(), "mailbox is full");
    assert!((&mut sending).now_or_never().is_none(), "still full");

    gate.add_permits(1);
    tokio::time::timeout(LIMIT, sending)
        .await
        .expect("send completes once there is room")
        .unwrap();
    assert_eq!(next_event(&mut ea).await, Event::Released);
    assert_eq!(next_event(&mut ea).await, Event::Pushed(1));
    assert_eq!(next_event(&mut ea).await, Event::Pushed(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_blocked_senders_all_get_through_in_the_end() {
    let (a, mut ea) = start_with_capacity(1).await;
    let gate = block(&a, &mut ea).await;
    let senders: Vec<_> = (0..20)
        .map(|n| {
            let a = a.clone();
            tokio::spawn(async move { a.send(Msg::Push(n)).await.is_ok() })
        })
        .collect();
    gate.add_permits(1);
    for s in senders {
        assert!(tokio::time::timeout(LIMIT, s).await.unwrap().unwrap());
    }
    // The mailbox may still hold the last one, so a call could be refused:
    // count the handled messages instead.
    assert_eq!(next_event(&mut ea).await, Event::Released);
    let mut handled = Vec::new();
    for _ in 0..20 {
        match next_event(&mut ea).await {
            Event::Pushed(n) => handled.push(n),
            other => panic!("unexpected {other:?}"),
        }
    }
    handled.sort_unstable();
    assert_eq!(handled, (0..20).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_sender_waiting_for_room_sees_the_actor_exit() {
    let (a, mut ea) = start_with_capacity(1).await;
    let _gate = block(&a, &mut ea).await;
    a.try_send(Msg::Push(1)).unwrap();

    let mut sending = Box::pin(a.send(Msg::Push(2)));
    assert!((&mut sending).now_or_never().is_none());
    a.process().kill();

    let result = tokio::time::timeout(LIMIT, sending).await.unwrap();
    assert!(matches!(result, Err(SendError::Closed(Msg::Push(2)))));
}

#[tokio::test]
async fn send_system_goes_past_capacity() {
    let (a, mut ea) = start_with_capacity(1).await;
    let gate = block(&a, &mut ea).await;
    a.try_send(Msg::Push(1)).unwrap();
    assert!(a.try_send(Msg::Push(9)).is_err());

    a.send_system(Msg::Push(2)).unwrap();
    a.send_system(Msg::Push(3)).unwrap();
    assert_eq!(a.mailbox_len(), 3);

    gate.add_permits(1);
    assert_eq!(next_event(&mut ea).await, Event::Released);
    assert_eq!(next_event(&mut ea).await, Event::Pushed(1));
    assert_eq!(next_event(&mut ea).await, Event::Pushed(2));
    assert_eq!(next_event(&mut ea).await, Event::Pushed(3));
}

#[tokio::test]
async fn sending_to_a_dead_actor_is_closed() {
    let (a, _ea) = start().await;
    a.try_send(Msg::Fail(err("gone"))).unwrap();
    exited(&a.process()).await;

    assert!(matches!(
        a.try_send(Msg::Push(1)),
        Err(SendError::Closed(Msg::Push(1)))
    ));
    assert!(matches!(
        a.send(Msg::Push(2)).await,
        Err(SendError::Closed(Msg::Push(2)))
    ));
    assert!(matches!(
        a.send_system(Msg::Push(3)),
        Err(SendError::Closed(Msg::Push(3)))
    ));
    assert_eq!(a.call(Msg::Ping, LIMIT).await, Err(CallError::Closed));
    assert_eq!(a.mailbox_len(), 0);
}

#[tokio::test]
async fn queued_messages_are_dropped_when_the_actor_dies() {
    let (a, mut ea) = start().await;
    let _gate = block(&a, &mut ea).await;
    for n in 0..3 {
        a.try_send(Msg::Push(n)).unwrap();
    }
    // A caller whose request is still queued learns that no reply will come.
    let pending_call = {
        let a = a.clone();
        tokio::spawn(async move { a.call(Msg::Ping, LIMIT).await })
    };
    // Let the caller's task queue its request.
    for _ in 0..100 {
        if a.mailbox_len() == 4 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(a.mailbox_len(), 4);
    a.process().kill();
    exited(&a.process()).await;
    assert_eq!(a.mailbox_len(), 0);
    assert_eq!(pending_call.await.unwrap(), Err(CallError::NoReply));
}

#[tokio::test]
async fn call_returns_the_reply() {
    let (a, _ea) = start().await;
    a.try_send(Msg::Push(5)).unwrap();
    a.try_send(Msg::Push(6)).unwrap();
    assert_eq!(a.call(Msg::Log, LIMIT).await, Ok(vec![5, 6]));
}

#[tokio::test(start_paused = true)]
async fn call_times_out_when_no_reply_comes() {
    let (a, mut ea) = start().await;
    let _gate = block(&a, &mut ea).await;
    let started = tokio::time::Instant::now();
    let timeout = Duration::from_millis(250);

    assert_eq!(
        a.call(Msg::Ping, timeout).await,
        Err(CallError::Timeout(timeout))
    );
    assert!(started.elapsed() >= timeout);
}

#[tokio::test]
async fn call_reports_a_dropped_reply_and_a_full_mailbox() {
    let (a, mut ea) = start_with_capacity(1).await;
    assert_eq!(a.call(Msg::DropReply, LIMIT).await, Err(CallError::NoReply));

    let _gate = block(&a, &mut ea).await;
    a.try_send(Msg::Push(1)).unwrap();
    assert_eq!(a.call(Msg::Ping, LIMIT).await, Err(CallError::Full));
}

#[tokio::test]
async fn downcast_to_the_right_message_type_only() {
    let (a, _ea) = start().await;
    let process = a.process();

    let typed = arbor_runtime::ActorRef::<Msg>::from_process(&process).expect("right message type");
    assert_eq!(typed, a);
    assert_eq!(typed.pid(), a.pid());
    typed.try_send(Msg::Push(42)).unwrap();
    assert_eq!(a.call(Msg::Log, LIMIT).await.unwrap(), vec![42]);

    assert!(arbor_runtime::ActorRef::<u32>::from_process(&process).is_none());
    assert!(arbor_runtime::ActorRef::<String>::from_process(&process).is_none());
    assert!(arbor_runtime::RactorRef::<Msg>::from_process(&process).is_none());
    assert!(arbor_runtime::RactorRef::<u32>::from_process(&process).is_none());
}

#[tokio::test]
async fn the_mailbox_still_works_after_draining_a_burst() {
    // The queue buffer is released when it drains; the mailbox must keep
    // working afterwards.
    let (a, mut ea) = start().await;
    for round in 0..3u32 {
        let gate = block(&a, &mut ea).await;
        for n in 0..500 {
            a.try_send(Msg::Push(round * 1000 + n)).unwrap();
        }
        assert_eq!(a.mailbox_len(), 500);
        gate.add_permits(1);
        assert_eq!(next_event(&mut ea).await, Event::Released);
        for n in 0..500 {
            assert_eq!(next_event(&mut ea).await, Event::Pushed(round * 1000 + n));
        }
        ping(&a).await;
        assert_eq!(a.mailbox_len(), 0);
    }
    a.process().stop(ExitReason::Normal);
    assert_eq!(exited(&a.process()).await, ExitReason::Normal);
}

#[tokio::test]
async fn a_permit_holds_room_and_queues_without_waiting() {
    let (a, mut ea) = start_with_capacity(2).await;
    let gate = block(&a, &mut ea).await;

    let permit = a.reserve().await.unwrap();
    a.try_send(Msg::Push(1)).unwrap();
    // One queued plus one held: the mailbox is full.
    assert!(matches!(a.try_send(Msg::Push(2)), Err(SendError::Full(_))));
    assert!(matches!(a.try_reserve(), Err(SendError::Full(()))));
    // Waiting for another permit does not finish while both places are taken.
    assert!(a.reserve().now_or_never().is_none());

    permit.send(Msg::Push(3));
    assert_eq!(a.mailbox_len(), 2);
    gate.add_permits(1);
    assert_eq!(next_event(&mut ea).await, Event::Released);
    assert_eq!(next_event(&mut ea).await, Event::Pushed(1));
    assert_eq!(next_event(&mut ea).await, Event::Pushed(3));
}

#[tokio::test]
async fn a_dropped_permit_gives_its_room_back_and_wakes_a_waiter() {
    let (a, mut ea) = start_with_capacity(1).await;
    let gate = block(&a, &mut ea).await;
    let permit = a.reserve().await.unwrap();

    let waiter = {
        let a = a.clone();
        tokio::spawn(async move {
            let permit = a.reserve().await.unwrap();
            permit.send(Msg::Push(7));
        })
    };
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    drop(permit);
    tokio::time::timeout(LIMIT, waiter).await.unwrap().unwrap();
    gate.add_permits(1);
    assert_eq!(next_event(&mut ea).await, Event::Released);
    assert_eq!(next_event(&mut ea).await, Event::Pushed(7));
}

#[tokio::test]
async fn reserve_reports_an_exited_or_shedding_actor() {
    let (a, _ea) = start().await;
    a.process().set_shedding(true);
    assert!(matches!(a.reserve().await, Err(SendError::Overloaded(()))));
    a.process().set_shedding(false);
    // A permit taken before the exit drops its message quietly.
    let permit = a.reserve().await.unwrap();
    a.try_send(Msg::Fail(err("gone"))).unwrap();
    exited(&a.process()).await;
    permit.send(Msg::Push(1));
    assert!(matches!(a.reserve().await, Err(SendError::Closed(()))));
}
