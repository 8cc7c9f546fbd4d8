//! Links: exit signals between linked processes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use arbor_runtime::{ExitReason, ExitSignal};
use common::{assert_no_event, err, exited, next_event, ping, start, trap, Event, Msg};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abnormal_exit_kills_the_linked_process_with_the_same_reason() {
    let (a, _ea) = start().await;
    let (b, mut eb) = start().await;
    a.process().link(&b.process());

    a.try_send(Msg::Fail(err("boom"))).unwrap();

    assert_eq!(exited(&a.process()).await, err("boom"));
    assert_eq!(exited(&b.process()).await, err("boom"));
    // b was not stopped gracefully: it died of the signal, without cleanup.
    assert_no_event(&mut eb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_propagate_in_both_directions_and_through_chains() {
    let (a, _ea) = start().await;
    let (b, _eb) = start().await;
    let (c, _ec) = start().await;
    // a - b - c, linked from the far end this time.
    c.process().link(&b.process());
    b.process().link(&a.process());

    c.process().exit(err("from c"));

    assert_eq!(exited(&a.process()).await, err("from c"));
    assert_eq!(exited(&b.process()).await, err("from c"));
    assert_eq!(exited(&c.process()).await, err("from c"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_propagates_as_killed() {
    let (a, _ea) = start().await;
    let (b, _eb) = start().await;
    b.process().link(&a.process());

    a.process().kill();

    assert_eq!(exited(&b.process()).await, ExitReason::Killed);
}

// Current-thread runtime: when `wait` on the exited process returns, its
// links have been signalled, so a successful ping proves the survivor was not.
/// OTP: a process that does not trap exits survives a linked exit only when
/// the reason is `normal`.
#[tokio::test]
async fn only_a_normal_exit_leaves_a_linked_process_alive() {
    let (a, _ea) = start().await;
    let (b, _eb) = start().await;
    a.process().link(&b.process());
    a.try_send(Msg::StopSelf(ExitReason::Normal)).unwrap();
    assert_eq!(exited(&a.process()).await, ExitReason::Normal);
    ping(&b).await;
    assert!(b.is_alive());
}

/// OTP: `shutdown` and `{shutdown, Term}` are not `normal`: a linked process
/// that does not trap exits dies of them, with the same reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_kills_a_linked_process_that_does_not_trap_exits() {
    for reason in [
        ExitReason::Shutdown,
        ExitReason::shutdown_with("maintenance"),
    ] {
        let (a, _ea) = start().await;
        let (b, _eb) = start().await;
        a.process().link(&b.process());
        a.try_send(Msg::StopSelf(reason.clone())).unwrap();
        assert_eq!(exited(&a.process()).await, reason);
        assert_eq!(exited(&b.process()).await, reason);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_process_receives_the_signal_instead_of_dying() {
    let (a, _ea) = start().await;
    let (b, mut eb) = start().await;
    trap(&b);
    b.process().link(&a.process());

    a.try_send(Msg::Fail(err("crash"))).unwrap();

    assert_eq!(
        next_event(&mut eb).await,
        Event::Trapped(ExitSignal {
            from: a.pid(),
            reason: err("crash"),
        })
    );
    assert_eq!(a.process().exit_reason(), Some(err("crash")));
    ping(&b).await;
    assert!(b.is_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_process_also_sees_normal_exits() {
    let (a, _ea) = start().await;
    let (b, mut eb) = start().await;
    trap(&b);
    a.process().link(&b.process());

    a.try_send(Msg::StopSelf(ExitReason::Normal)).unwrap();

    assert_eq!(
        next_event(&mut eb).await,
        Event::Trapped(ExitSignal {
            from: a.pid(),
            reason: ExitReason::Normal,
        })
    );
}

/// OTP `link/1`: linking to a process that no longer exists sends the caller
/// an exit signal with reason `noproc`, whatever the dead process died of.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_to_a_dead_process_reports_noproc() {
    for first in [err("gone"), ExitReason::Normal] {
        let (dead, _ed) = start().await;
        dead.try_send(Msg::StopSelf(first.clone())).unwrap();
        assert_eq!(exited(&dead.process()).await, first);

        // Not trapping: dies of noproc (even when the dead one ended normally).
        let (b, _eb) = start().await;
        b.process().link(&dead.process());
        assert_eq!(exited(&b.process()).await, ExitReason::NoProc);

        // Trapping, and linking from the other side: gets it as a message.
        let (c, mut ec) = start().await;
        trap(&c);
        dead.process().link(&c.process());
        assert_eq!(
            next_event(&mut ec).await,
            Event::Trapped(ExitSignal {
                from: dead.pid(),
                reason: ExitReason::NoProc,
            })
        );
        assert!(c.is_alive());
        // The reason it died of stays readable.
        assert_eq!(dead.process().exit_reason(), Some(first.clone()));
        assert_eq!(dead.process().wait().await, first);
    }
}

// Current-thread runtime, as above: the ping would fail if `b` had been
// sent the signal.
#[tokio::test]
async fn unlink_stops_propagation() {
    let (a, _ea) = start().await;
    let (b, _eb) = start().await;
    a.process().link(&b.process());
    b.process().unlink(&a.process());

    a.try_send(Msg::Fail(err("alone"))).unwrap();
    assert_eq!(exited(&a.process()).await, err("alone"));

    ping(&b).await;
    assert!(b.is_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlink_of_one_link_keeps_the_others() {
    let (a, _ea) = start().await;
    let (b, _eb) = start().await;
    let (c, mut ec) = start().await;
    trap(&c);
    a.process().link(&b.process());
    a.process().link(&c.process());
    a.process().unlink(&b.process());

    a.process().exit(err("x"));

    // c is linked after b in a's links: by the time c has the signal, b
    // would have had it too.
    assert_eq!(
        next_event(&mut ec).await,
        Event::Trapped(ExitSignal {
            from: a.pid(),
            reason: err("x"),
        })
    );
    ping(&b).await;
    assert!(b.is_alive());
}

#[tokio::test]
async fn linking_twice_and_linking_to_itself_are_harmless() {
    let (a, _ea) = start().await;
    let (b, mut eb) = start().await;
    trap(&b);
    a.process().link(&a.process());
    a.process().link(&b.process());
    b.process().link(&a.process());

    a.process().exit(err("once"));
    assert_eq!(exited(&a.process()).await, err("once"));

    // Exactly one signal, even though the link was made twice.
    assert_eq!(
        next_event(&mut eb).await,
        Event::Trapped(ExitSignal {
            from: a.pid(),
            reason: err("once"),
        })
    );
    ping(&b).await;
    assert_no_event(&mut eb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_reports_links_watchers_and_trapping_until_the_process_exits() {
    let (a, _ea) = start().await;
    let (b, _eb) = start().await;
    let (c, _ec) = start().await;
    a.process().link(&b.process());
    a.process().link(&c.process());
    let _watching = a.process().monitor();
    let info = a.process().info().unwrap();
    let mut links = info.links.clone();
    links.sort();
    let mut expected = vec![b.process().pid(), c.process().pid()];
    expected.sort();
    assert_eq!(links, expected);
    assert_eq!(info.watchers, 1);
    assert!(!info.traps_exits);
    // A process that traps exits says so; one unlinked is no longer listed.
    a.process().trap_exits(|_| {});
    a.process().unlink(&c.process());
    let info = a.process().info().unwrap();
    assert_eq!(info.links, vec![b.process().pid()]);
    assert!(info.traps_exits);
    a.process().kill();
    exited(&a.process()).await;
    assert_eq!(a.process().info(), None);
}
