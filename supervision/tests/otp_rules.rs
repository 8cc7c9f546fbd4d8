//! One test per OTP supervision rule; each fails if its rule breaks.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbor_runtime::{
    spawn, Actor, ActorRef, Context, ExitReason, Flow, Reply, ShardedRegistry, WatchPolicy,
    Watchdog, WatchdogConfig,
};
use arbor_supervision::{
    AutoShutdown, ChildError, ChildSpec, DynamicSupervisor, InvalidChild, Restart,
    ShardedDynamicSupervisor, Shutdown, StartError, Started, Strategy, Supervisor,
};
use common::*;

async fn three(strategy: Strategy, log: &Log) -> arbor_supervision::SupervisorRef {
    Supervisor::new(strategy)
        .child(worker("a", log))
        .child(worker("b", log))
        .child(worker("c", log))
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_start_in_order() {
    let log = Log::default();
    let _sup = three(Strategy::OneForOne, &log).await;
    assert_eq!(log.lines(), ["start:a", "start:b", "start:c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_for_one_restarts_only_the_failed_child() {
    let log = Log::default();
    let sup = three(Strategy::OneForOne, &log).await;
    let (a, b, c) = (
        child(&sup, "a").await.unwrap(),
        child(&sup, "b").await.unwrap(),
        child(&sup, "c").await.unwrap(),
    );
    log.take();
    actor(&b)
        .try_send(WorkerMsg::Exit(ExitReason::error("boom")))
        .unwrap();
    let b2 = restarted(&sup, "b", b.pid()).await;
    assert_ne!(b2.pid(), b.pid());
    assert_eq!(child(&sup, "a").await.unwrap().pid(), a.pid());
    assert_eq!(child(&sup, "c").await.unwrap().pid(), c.pid());
    assert!(a.is_alive() && c.is_alive());
    // b failed (no terminate on a crash is fine either way); only b started again.
    assert!(log.lines().contains(&"start:b".to_string()));
    assert!(!log
        .lines()
        .iter()
        .any(|l| l.ends_with(":a") || l.ends_with(":c")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_for_all_stops_the_others_in_reverse_then_restarts_all_in_order() {
    let log = Log::default();
    let sup = Supervisor::new(Strategy::OneForAll)
        .child(worker("a", &log))
        .child(worker("b", &log))
        .child(worker("c", &log))
        .child(worker("d", &log))
        .start()
        .await
        .unwrap();
    let (a, b) = (
        child(&sup, "a").await.unwrap(),
        child(&sup, "b").await.unwrap(),
    );
    let d = child(&sup, "d").await.unwrap();
    log.take();
    b.kill();
    restarted(&sup, "d", d.pid()).await;
    assert!(!a.is_alive());
    assert_eq!(
        log.lines(),
        ["stop:d", "stop:c", "stop:a", "start:a", "start:b", "start:c", "start:d"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_for_one_restarts_the_failed_child_and_those_after_it() {
    let log = Log::default();
    let sup = Supervisor::new(Strategy::RestForOne)
        .child(worker("a", &log))
        .child(worker("b", &log))
        .child(worker("c", &log))
        .child(worker("d", &log))
        .start()
        .await
        .unwrap();
    let a = child(&sup, "a").await.unwrap();
    let b = child(&sup, "b").await.unwrap();
    let d = child(&sup, "d").await.unwrap();
    log.take();
    b.kill();
    restarted(&sup, "d", d.pid()).await;
    assert_eq!(child(&sup, "a").await.unwrap().pid(), a.pid());
    assert_eq!(
        log.lines(),
        ["stop:d", "stop:c", "start:b", "start:c", "start:d"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_is_restarted_only_after_an_abnormal_exit() {
    let log = Log::default();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(worker("t", &log).restart(Restart::Transient))
        .start()
        .await
        .unwrap();
    let t = child(&sup, "t").await.unwrap();
    actor(&t)
        .try_send(WorkerMsg::Exit(ExitReason::error("bad")))
        .unwrap();
    let t2 = restarted(&sup, "t", t.pid()).await;

    actor(&t2)
        .try_send(WorkerMsg::Exit(ExitReason::Normal))
        .unwrap();
    assert_eq!(t2.wait().await, ExitReason::Normal);
    // The exit is handled in order with this call, so the answer is final.
    let infos = sup.which_children().await.unwrap();
    assert_eq!(infos.len(), 1, "a transient child keeps its spec");
    assert!(
        infos[0].process.is_none(),
        "not restarted after a normal exit"
    );
    let counts = sup.count_children().await.unwrap();
    assert_eq!((counts.specs, counts.active), (1, 0));
    // It can be restarted by hand.
    let t3 = sup.restart_child("t").await.unwrap().running().unwrap();
    assert!(t3.is_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_is_never_restarted_and_is_removed() {
    let log = Log::default();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(worker("keep", &log))
        .child(worker("tmp", &log).restart(Restart::Temporary))
        .start()
        .await
        .unwrap();
    let tmp = child(&sup, "tmp").await.unwrap();
    tmp.kill();
    tmp.wait().await;
    let ids: Vec<String> = sup
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(ids, ["keep"]);
    assert_eq!(log.lines().iter().filter(|l| *l == "start:tmp").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceeding_intensity_escalates_to_the_parent_which_restarts_the_subtree() {
    let log = Log::default();
    let inner = Supervisor::new(Strategy::OneForOne)
        .intensity(2, Duration::from_secs(60))
        .child(worker("w", &log));
    let root = Supervisor::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(60))
        .child(worker("sibling", &log))
        .child(inner.into_child_spec("inner"))
        .start()
        .await
        .unwrap();
    let sibling = child(&root, "sibling").await.unwrap();
    let inner_p = child(&root, "inner").await.unwrap();
    let inner_ref = arbor_supervision::SupervisorRef::from_process(&inner_p).unwrap();

    // Two restarts are within the intensity.
    for _ in 0..2 {
        let w = child(&inner_ref, "w").await.unwrap();
        w.kill();
        restarted(&inner_ref, "w", w.pid()).await;
    }
    assert!(inner_p.is_alive());
    // The third is one too many: the inner supervisor gives up.
    child(&inner_ref, "w").await.unwrap().kill();
    // supervisor(3): past its intensity a supervisor exits with `shutdown`.
    assert_eq!(inner_p.wait().await, ExitReason::Shutdown);
    let inner2 = restarted(&root, "inner", inner_p.pid()).await;
    let inner2_ref = arbor_supervision::SupervisorRef::from_process(&inner2).unwrap();
    assert!(child(&inner2_ref, "w").await.unwrap().is_alive());
    // one_for_one at the root: the sibling was not touched.
    assert_eq!(child(&root, "sibling").await.unwrap().pid(), sibling.pid());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_escalation_ends_the_root_with_shutdown() {
    let log = Log::default();
    let root = Supervisor::new(Strategy::OneForOne)
        .intensity(0, Duration::from_secs(1))
        .child(worker("w", &log))
        .start()
        .await
        .unwrap();
    let w = child(&root, "w").await.unwrap();
    w.kill();
    assert_eq!(root.process().wait().await, ExitReason::Shutdown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_timeout_ends_in_a_kill() {
    let log = Log::default();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(worker("hung", &log).shutdown(Shutdown::Timeout(Duration::from_millis(100))))
        .child(worker("polite", &log).shutdown(Shutdown::Timeout(Duration::from_secs(10))))
        .start()
        .await
        .unwrap();
    let hung = child(&sup, "hung").await.unwrap();
    let polite = child(&sup, "polite").await.unwrap();
    actor(&hung).try_send(WorkerMsg::Hang).unwrap();
    // A stop request overtakes queued messages: wait until Hang is taken.
    eventually(|| {
        let n = hung.mailbox_len();
        async move { n == 0 }
    })
    .await;

    let started = Instant::now();
    sup.terminate_child("hung").await.unwrap();
    let took = started.elapsed();
    assert_eq!(hung.exit_reason(), Some(ExitReason::Killed));
    assert!(
        took >= Duration::from_millis(100),
        "killed only after the timeout: {took:?}"
    );
    assert!(
        !log.lines().contains(&"stop:hung".to_string()),
        "a killed child runs no cleanup"
    );

    sup.terminate_child("polite").await.unwrap();
    assert_eq!(polite.exit_reason(), Some(ExitReason::Shutdown));
    assert!(log.lines().contains(&"stop:polite".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brutal_kill_does_not_wait() {
    let log = Log::default();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(worker("b", &log).shutdown(Shutdown::BrutalKill))
        .start()
        .await
        .unwrap();
    let b = child(&sup, "b").await.unwrap();
    sup.terminate_child("b").await.unwrap();
    assert_eq!(b.exit_reason(), Some(ExitReason::Killed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_children_in_reverse_order() {
    let log = Log::default();
    let sup = three(Strategy::OneForOne, &log).await;
    log.take();
    assert_eq!(sup.shutdown().await, ExitReason::Shutdown);
    assert_eq!(log.lines(), ["stop:c", "stop:b", "stop:a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_fails_to_start_fails_the_supervisor_start() {
    let log = Log::default();
    let failing = ChildSpec::worker("b", || async {
        Err::<arbor_runtime::ProcessRef, _>(ExitReason::error("no db"))
    });
    let err = Supervisor::new(Strategy::OneForOne)
        .child(worker("a", &log))
        .child(failing)
        .child(worker("c", &log))
        .start()
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StartError::ChildFailed {
            id: "b".into(),
            reason: ExitReason::error("no db")
        }
    );
    assert_eq!(
        log.lines(),
        ["start:a", "stop:a"],
        "a is stopped again, c never starts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_specs_are_refused_with_the_field_named() {
    let log = Log::default();
    let dup = Supervisor::new(Strategy::OneForOne)
        .child(worker("a", &log))
        .child(worker("a", &log))
        .start()
        .await
        .unwrap_err();
    assert_eq!(dup, StartError::DuplicateChildId("a".into()));
    let zero = Supervisor::new(Strategy::OneForOne)
        .intensity(1, Duration::ZERO)
        .start()
        .await
        .unwrap_err();
    assert_eq!(zero, StartError::InvalidPeriod(Duration::ZERO));
    assert!(log.lines().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_supervisor_takes_its_children_with_it() {
    let log = Log::default();
    let sup = three(Strategy::OneForOne, &log).await;
    let kids: Vec<_> = sup
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|c| c.process)
        .collect();
    sup.process().kill();
    for k in kids {
        assert_eq!(k.wait().await, ExitReason::Killed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_supervisor_stops_its_children_when_its_parent_is_killed() {
    let log = Log::default();
    let inner = Supervisor::new(Strategy::OneForOne).child(worker("w", &log));
    let root = Supervisor::new(Strategy::OneForOne)
        .child(inner.into_child_spec("inner"))
        .start()
        .await
        .unwrap();
    let inner_p = child(&root, "inner").await.unwrap();
    let inner_ref = arbor_supervision::SupervisorRef::from_process(&inner_p).unwrap();
    let w = child(&inner_ref, "w").await.unwrap();
    log.take();
    root.process().kill();
    // The inner supervisor traps exits: it shuts its child down in order.
    assert_eq!(inner_p.wait().await, ExitReason::Killed);
    assert_eq!(w.wait().await, ExitReason::Shutdown);
    assert_eq!(log.lines(), ["stop:w"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_never_hands_out_a_dead_actor_across_restarts() {
    let registry: ShardedRegistry = ShardedRegistry::new();
    let reg = registry.clone();
    let spec = ChildSpec::worker("named", move || {
        let reg = reg.clone();
        async move {
            let w = spawn(Worker {
                name: "named".into(),
                log: Log::default(),
            })
            .await?;
            reg.register("named".to_string(), &w.process())
                .map_err(ExitReason::error)?;
            Ok::<_, ExitReason>(w)
        }
    });
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(1000, Duration::from_secs(60))
        .child(spec)
        .start()
        .await
        .unwrap();
    let name = "named".to_string();
    let mut last = registry.whereis(&name).unwrap();
    for _ in 0..50 {
        last.kill();
        last.wait().await;
        // Once it has died, a lookup gives either nothing or a live actor
        // that is not the killed one.
        loop {
            match registry.whereis(&name) {
                Some(p) if p.pid() == last.pid() => {
                    panic!("registry returned the killed actor {}", p.pid())
                }
                Some(p) => {
                    last = p;
                    break;
                }
                None => tokio::task::yield_now().await,
            }
        }
    }
    assert_eq!(child(&sup, "named").await.unwrap().pid(), last.pid());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_kill_policy_leads_to_a_restart() {
    let log = Log::default();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(worker("slow", &log))
        .start()
        .await
        .unwrap();
    let slow = child(&sup, "slow").await.unwrap();
    let watchdog = Watchdog::spawn(WatchdogConfig {
        interval: Duration::from_secs(3600),
        default_threshold: 10,
    })
    .await
    .unwrap();
    watchdog.watch(&slow, WatchPolicy::Kill).unwrap();
    let a = actor(&slow);
    a.try_send(WorkerMsg::Hang).unwrap();
    for _ in 0..20 {
        let (tx, _rx) = tokio::sync::oneshot::channel::<()>();
        drop(tx);
        let _ = a.try_send(WorkerMsg::Exit(ExitReason::Normal));
    }
    eventually(|| {
        let n = slow.mailbox_len();
        async move { n >= 11 }
    })
    .await;
    let alarms = watchdog.sample().await.unwrap();
    assert_eq!(alarms.len(), 1);
    assert_eq!(alarms[0].pid, slow.pid());
    assert_eq!(slow.wait().await, ExitReason::Killed);
    let fresh = restarted(&sup, "slow", slow.pid()).await;
    assert_eq!(fresh.mailbox_len(), 0);
}

// ---- OTP rules of `supervisor(3)` that arbor follows since issue 11 ----

/// supervisor(3): a transient child "is restarted only if it terminates
/// abnormally, that is, with an exit reason other than normal, shutdown, or
/// {shutdown,Term}".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_is_not_restarted_after_shutdown_or_shutdown_with_a_term() {
    for reason in [ExitReason::Shutdown, ExitReason::shutdown_with("done")] {
        let log = Log::default();
        let sup = Supervisor::new(Strategy::OneForOne)
            .child(worker("t", &log).restart(Restart::Transient))
            .start()
            .await
            .unwrap();
        let t = child(&sup, "t").await.unwrap();
        actor(&t).try_send(WorkerMsg::Exit(reason.clone())).unwrap();
        assert_eq!(t.wait().await, reason);
        assert!(
            child(&sup, "t").await.is_none(),
            "{reason} is not restarted"
        );
        assert_eq!(log.lines(), ["start:t", "stop:t"], "started once");
    }
}

/// supervisor(3): a supervisor past its intensity terminates with `shutdown`,
/// so a *transient* supervisor child that gives up stays stopped (a permanent
/// one is restarted: `exceeding_intensity_escalates_to_the_parent...`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_supervisor_that_gives_up_stays_stopped() {
    let log = Log::default();
    let inner = Supervisor::new(Strategy::OneForOne)
        .intensity(0, Duration::from_secs(60))
        .child(worker("w", &log));
    let root = Supervisor::new(Strategy::OneForOne)
        .child(worker("sibling", &log))
        .child(inner.into_child_spec("inner").restart(Restart::Transient))
        .start()
        .await
        .unwrap();
    let inner_p = child(&root, "inner").await.unwrap();
    let inner_ref = arbor_supervision::SupervisorRef::from_process(&inner_p).unwrap();
    child(&inner_ref, "w").await.unwrap().kill();
    assert_eq!(inner_p.wait().await, ExitReason::Shutdown);
    let infos = root.which_children().await.unwrap();
    let inner_info = infos.iter().find(|c| &*c.id == "inner").unwrap();
    assert!(inner_info.process.is_none(), "not restarted after shutdown");
    assert!(root.process().is_alive());
}

/// supervisor(3) `start_child/2`: `{error, {already_started, Child}}` for a
/// running child with that id, `{error, already_present}` for a stopped one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_child_with_a_taken_id_is_already_started_or_already_present() {
    let log = Log::default();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(worker("a", &log))
        .start()
        .await
        .unwrap();
    let a = child(&sup, "a").await.unwrap();
    assert_eq!(
        sup.start_child(worker("a", &log)).await.unwrap_err(),
        ChildError::AlreadyStarted(a.pid())
    );
    sup.terminate_child("a").await.unwrap();
    assert_eq!(
        sup.start_child(worker("a", &log)).await.unwrap_err(),
        ChildError::AlreadyPresent("a".into())
    );
}

/// A start function that answers `ignore` on its first call, then starts.
fn ignored_once(id: &str, log: &Log) -> ChildSpec {
    let (name, log) = (id.to_string(), log.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    ChildSpec::worker(name.clone(), move || {
        let worker = Worker {
            name: name.clone(),
            log: log.clone(),
        };
        let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if first {
                return Ok(Started::Ignore);
            }
            spawn(worker).await.map(Started::Running)
        }
    })
}

/// supervisor(3): a start function may return `ignore`; a static supervisor
/// keeps the child specification (not running) and `restart_child` may start
/// it later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ignored_start_keeps_the_spec_not_running_until_restart_child() {
    let log = Log::default();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(ignored_once("lazy", &log))
        .child(worker("b", &log))
        .start()
        .await
        .unwrap();
    let infos = sup.which_children().await.unwrap();
    assert_eq!(infos.len(), 2);
    assert!(infos[0].process.is_none(), "ignored: kept, not running");
    assert_eq!(log.lines(), ["start:b"]);
    let counts = sup.count_children().await.unwrap();
    assert_eq!((counts.specs, counts.active), (2, 1));

    let lazy = sup.restart_child("lazy").await.unwrap().running().unwrap();
    assert!(lazy.is_alive());
    assert_eq!(child(&sup, "lazy").await.unwrap().pid(), lazy.pid());

    // start_child of an ignoring spec also keeps it.
    assert_eq!(
        sup.start_child(ignored_once("later", &log)).await.unwrap(),
        Started::Ignore
    );
    assert_eq!(sup.count_children().await.unwrap().specs, 3);
}

/// supervisor(3): for a simple_one_for_one supervisor an ignored start adds
/// no child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamic_supervisor_adds_nothing_for_an_ignored_start() {
    let sup = DynamicSupervisor::new("maybe", |start: bool| async move {
        if !start {
            return Ok::<_, arbor_runtime::SpawnError>(Started::Ignore);
        }
        spawn(Worker {
            name: "x".into(),
            log: Log::default(),
        })
        .await
        .map(Started::Running)
    })
    .start()
    .await
    .unwrap();
    assert_eq!(sup.start_child(false).await.unwrap(), Started::Ignore);
    assert_eq!(sup.count_children().await.unwrap().specs, 0);
    assert!(sup.start_child(true).await.unwrap().running().is_some());
    assert_eq!(sup.count_children().await.unwrap().specs, 1);
}

/// A significant transient child named `id`, controlled through its actor.
fn significant(id: &str, log: &Log) -> ChildSpec {
    worker(id, log).restart(Restart::Transient).significant()
}

/// OTP 24 `auto_shutdown => any_significant`: the supervisor shuts down
/// (reason `shutdown`) as soon as a significant child exits by itself and is
/// not restarted; an abnormal exit of a transient one is a restart instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_significant_shuts_down_when_a_significant_child_ends() {
    let log = Log::default();
    let sup = Supervisor::new(Strategy::OneForOne)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(worker("plain", &log))
        .child(significant("s1", &log))
        .child(significant("s2", &log))
        .start()
        .await
        .unwrap();
    let s1 = child(&sup, "s1").await.unwrap();
    actor(&s1)
        .try_send(WorkerMsg::Exit(ExitReason::error("crash")))
        .unwrap();
    restarted(&sup, "s1", s1.pid()).await;
    assert!(sup.process().is_alive(), "a restart, not an auto shutdown");

    let plain = child(&sup, "plain").await.unwrap();
    let s2 = child(&sup, "s2").await.unwrap();
    actor(&s2)
        .try_send(WorkerMsg::Exit(ExitReason::Normal))
        .unwrap();
    assert_eq!(sup.process().wait().await, ExitReason::Shutdown);
    assert_eq!(plain.exit_reason(), Some(ExitReason::Shutdown));
}

/// OTP 24 `auto_shutdown => all_significant`: only once every significant
/// child has ended; and, as OTP says, a child stopped by `terminate_child`
/// does not trigger it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_significant_waits_for_the_last_and_terminate_child_does_not_count() {
    let log = Log::default();
    let sup = Supervisor::new(Strategy::OneForOne)
        .auto_shutdown(AutoShutdown::AllSignificant)
        .child(significant("s1", &log))
        .child(significant("s2", &log))
        .child(significant("s3", &log))
        .start()
        .await
        .unwrap();
    // Stopped by the supervisor on request: no shutdown, even though the
    // other two end next.
    sup.terminate_child("s3").await.unwrap();
    let s1 = child(&sup, "s1").await.unwrap();
    actor(&s1)
        .try_send(WorkerMsg::Exit(ExitReason::Normal))
        .unwrap();
    assert_eq!(s1.wait().await, ExitReason::Normal);
    sup.which_children().await.unwrap();
    assert!(sup.process().is_alive(), "s2 still runs");

    let s2 = child(&sup, "s2").await.unwrap();
    actor(&s2)
        .try_send(WorkerMsg::Exit(ExitReason::shutdown_with("finished")))
        .unwrap();
    assert_eq!(sup.process().wait().await, ExitReason::Shutdown);
}

/// OTP 24: with `auto_shutdown => never`, and for a permanent child, the
/// `significant` flag is invalid and the child spec is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_significant_child_must_be_transient_or_temporary_under_auto_shutdown() {
    let log = Log::default();
    let err = Supervisor::new(Strategy::OneForOne)
        .child(significant("s", &log))
        .start()
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StartError::InvalidChild(InvalidChild::SignificantWithoutAutoShutdown("s".into()))
    );
    let err = Supervisor::new(Strategy::OneForOne)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(worker("p", &log).significant())
        .start()
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StartError::InvalidChild(InvalidChild::SignificantPermanent("p".into()))
    );
    let sup = Supervisor::new(Strategy::OneForOne).start().await.unwrap();
    assert_eq!(
        sup.start_child(significant("late", &log))
            .await
            .unwrap_err(),
        ChildError::InvalidChild(InvalidChild::SignificantWithoutAutoShutdown("late".into()))
    );
}

/// OTP's `start_link` links inside the new process, so a child that ends at
/// once is seen ending with its own reason. arbor links after the start
/// function returns and gets `noproc` from the link: the supervisor must
/// still act on the child's real reason (a transient child that ended
/// normally is not restarted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_ends_before_it_is_linked_is_judged_by_its_own_reason() {
    let log = Log::default();
    let starts = Arc::new(AtomicUsize::new(0));
    let counted = starts.clone();
    let spec = ChildSpec::worker("brief", move || {
        counted.fetch_add(1, Ordering::SeqCst);
        let log = log.clone();
        async move {
            let w = spawn(Worker {
                name: "brief".into(),
                log,
            })
            .await?;
            w.try_send(WorkerMsg::Exit(ExitReason::Normal))
                .map_err(|_| arbor_runtime::ExitReason::error("send"))?;
            w.process().wait().await;
            Ok::<_, ExitReason>(w)
        }
    })
    .restart(Restart::Transient);
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(spec)
        .start()
        .await
        .unwrap();
    // The link's noproc has been handled once this call answers.
    let infos = sup.which_children().await.unwrap();
    assert!(infos[0].process.is_none());
    assert_eq!(starts.load(Ordering::SeqCst), 1, "not restarted");
    assert!(sup.process().is_alive());
}

/// Dynamic children get their typed handle back, and temporary children
/// take arguments that cannot be cloned (a socket, a channel's receiver),
/// also through a sharded supervisor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_dynamic_children_take_their_arguments_by_value() {
    struct Owner(tokio::sync::oneshot::Receiver<u32>);
    impl Actor for Owner {
        type Msg = Reply<u32>;
        async fn handle(&mut self, reply: Reply<u32>, _: &mut Context<Self>) -> Flow {
            let n = (&mut self.0).await.unwrap_or(0);
            reply.send(n);
            Ok(())
        }
    }
    let template =
        DynamicSupervisor::temporary("owner", |rx: tokio::sync::oneshot::Receiver<u32>| {
            spawn(Owner(rx))
        });
    let sharded = ShardedDynamicSupervisor::new(2, template)
        .start()
        .await
        .unwrap();
    for n in 0..4 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let owner: ActorRef<Reply<u32>> = sharded.start_child(rx).await.unwrap().running().unwrap();
        tx.send(n).unwrap();
        assert_eq!(owner.call(|r| r, Duration::from_secs(5)).await.unwrap(), n);
    }
    assert_eq!(sharded.count_children().await.unwrap().active, 4);
}
