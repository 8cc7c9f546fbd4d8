//! `exit/2` as OTP defines it (`erlang(3)`): what an exit signal does to a
//! process that traps exits and to one that does not, and who sent it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use arbor_runtime::{current_pid, ExitReason, ExitSignal, Pid};
use common::{err, exited, next_event, ping, start, trap, Event, Msg, LIMIT};

/// OTP: "If Reason is the atom normal, Pid does not exit" (when it does not
/// trap exits).
#[tokio::test]
async fn exit_normal_leaves_a_process_that_does_not_trap_exits_alive() {
    let (a, _ea) = start().await;
    a.process().exit(ExitReason::Normal);
    ping(&a).await;
    assert!(a.is_alive());
}

/// OTP: any other reason ends a process that does not trap exits with that
/// reason, `shutdown` and `killed` included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_with_another_reason_ends_a_process_that_does_not_trap_exits() {
    for reason in [
        ExitReason::Shutdown,
        ExitReason::shutdown_with("drain"),
        ExitReason::Killed,
        err("bad"),
    ] {
        let (a, _ea) = start().await;
        a.process().exit(reason.clone());
        assert_eq!(exited(&a.process()).await, reason);
    }
}

/// OTP: a process that traps exits receives `{'EXIT', From, Reason}` for
/// every reason, `normal` and `killed` included, and lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_process_receives_every_exit_as_a_message() {
    let (a, mut ea) = start().await;
    trap(&a);
    for reason in [
        ExitReason::Normal,
        ExitReason::Shutdown,
        ExitReason::Killed,
        err("bad"),
    ] {
        a.process().exit(reason.clone());
        assert_eq!(
            next_event(&mut ea).await,
            Event::Trapped(ExitSignal {
                from: Pid::EXTERNAL,
                reason,
            })
        );
    }
    ping(&a).await;
    assert!(a.is_alive());
}

/// OTP: `exit(Pid, kill)` is untrappable and ends the process with `killed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_ends_a_trapping_process_with_killed() {
    let (a, _ea) = start().await;
    trap(&a);
    a.process().kill();
    assert_eq!(exited(&a.process()).await, ExitReason::Killed);
}

/// OTP: the exit signal carries the sender's pid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_senders_pid_travels_with_the_signal() {
    let (sender, _es) = start().await;
    let (target, mut et) = start().await;
    trap(&target);
    sender
        .try_send(Msg::SendExit(target.process(), err("from a peer")))
        .unwrap();
    assert_eq!(
        next_event(&mut et).await,
        Event::Trapped(ExitSignal {
            from: sender.pid(),
            reason: err("from a peer"),
        })
    );
}

/// OTP: `exit(self(), normal)` ends the caller with `normal`, though a
/// `normal` signal from elsewhere would not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_normal_sent_to_itself_ends_the_caller() {
    let (a, _ea) = start().await;
    a.try_send(Msg::SendExit(a.process(), ExitReason::Normal))
        .unwrap();
    assert_eq!(exited(&a.process()).await, ExitReason::Normal);
}

/// OTP's `self()`: known inside a process's code, absent outside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_pid_is_the_running_process() {
    let (a, _ea) = start().await;
    assert_eq!(a.call(Msg::WhoAmI, LIMIT).await.unwrap(), Some(a.pid()));
    assert_eq!(current_pid(), None);
    let outside = tokio::spawn(async { current_pid() }).await.unwrap();
    assert_eq!(outside, None);
}
