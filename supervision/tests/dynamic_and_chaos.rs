//! Dynamic and sharded supervisors, and the chaos kill hooks.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use arbor_runtime::{spawn, ActorRef, ExitReason, ProcessRef};
use arbor_supervision::{
    descendants, kill_path, Chaos, ChaosError, ChildError, ChildKind, DynamicSupervisor,
    KillTarget, Restart, ShardedDynamicSupervisor, Strategy, Supervisor, SupervisorRef,
};
use common::*;

fn template(log: &Log) -> DynamicSupervisor<String, ActorRef<WorkerMsg>> {
    let log = log.clone();
    DynamicSupervisor::new("worker", move |name: String| {
        let worker = Worker {
            name,
            log: log.clone(),
        };
        async move { spawn(worker).await }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_children_start_at_run_time_and_restart_with_their_arguments() {
    let log = Log::default();
    let sup = template(&log).start().await.unwrap();
    let a = sup
        .start_child("a".into())
        .await
        .unwrap()
        .running()
        .unwrap();
    let _b = sup.start_child("b".into()).await.unwrap();
    assert_eq!(sup.count_children().await.unwrap().active, 2);
    log.take();
    a.process().kill();
    eventually(|| {
        let log = log.clone();
        async move { log.lines() == ["start:a"] }
    })
    .await;
    assert_eq!(sup.count_children().await.unwrap().active, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_max_children_is_enforced_at_the_limit() {
    let log = Log::default();
    let sup = template(&log).max_children(2).start().await.unwrap();
    sup.start_child("a".into()).await.unwrap();
    let b = sup
        .start_child("b".into())
        .await
        .unwrap()
        .running()
        .unwrap();
    assert_eq!(
        sup.start_child("c".into()).await.unwrap_err(),
        ChildError::MaxChildren(2)
    );
    sup.terminate_child(b.pid()).await.unwrap();
    assert_eq!(b.process().exit_reason(), Some(ExitReason::Shutdown));
    sup.start_child("c".into()).await.unwrap();
    assert_eq!(
        sup.terminate_child(b.pid()).await.unwrap_err(),
        ChildError::NoSuchPid(b.pid())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_dynamic_children_are_removed_when_they_exit() {
    let log = Log::default();
    let sup = template(&log)
        .restart(Restart::Temporary)
        .start()
        .await
        .unwrap();
    let a = sup
        .start_child("a".into())
        .await
        .unwrap()
        .running()
        .unwrap();
    a.process().kill();
    a.process().wait().await;
    assert_eq!(sup.count_children().await.unwrap().specs, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_supervisor_stops_all_children_on_shutdown() {
    let log = Log::default();
    let sup = template(&log).start().await.unwrap();
    let kids: Vec<ProcessRef> = futures_util_join(&sup, 50).await;
    sup.supervisor().shutdown().await;
    for k in kids {
        assert_eq!(k.exit_reason(), Some(ExitReason::Shutdown));
    }
}

async fn futures_util_join(
    sup: &arbor_supervision::DynamicSupervisorRef<String, ActorRef<WorkerMsg>>,
    n: usize,
) -> Vec<ProcessRef> {
    let mut kids = Vec::new();
    for i in 0..n {
        let kid = sup.start_child(format!("w{i}")).await.unwrap();
        kids.push(kid.running().unwrap().process());
    }
    kids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_supervisor_spreads_children_and_survives_a_shard_crash() {
    let log = Log::default();
    let sharded = ShardedDynamicSupervisor::new(4, template(&log).restart(Restart::Temporary));
    let handle = sharded.handle();
    let _root = Supervisor::new(Strategy::OneForOne)
        .child(sharded.into_child_spec("workers"))
        .start()
        .await
        .unwrap();
    for i in 0..40 {
        handle.start_child(format!("w{i}")).await.unwrap();
    }
    assert_eq!(handle.count_children().await.unwrap().active, 40);
    for shard in handle.shards() {
        assert_eq!(shard.count_children().await.unwrap().active, 10);
    }
    // Kill one shard: its children go with it, the handle keeps working.
    let victim = handle.shards()[1].process();
    victim.kill();
    victim.wait().await;
    eventually(|| {
        let h = handle.clone();
        let old = victim.pid();
        async move {
            let shard = h.shards()[1].process();
            shard.pid() != old && shard.is_alive()
        }
    })
    .await;
    assert_eq!(handle.count_children().await.unwrap().active, 30);
    let p = handle
        .start_child_keyed("session-1", "x".into())
        .await
        .unwrap()
        .running()
        .unwrap();
    assert!(p.is_alive());
    handle.terminate_child(p.pid()).await.unwrap();
    assert_eq!(p.process().exit_reason(), Some(ExitReason::Shutdown));
}

/// A worker that takes 300 ms to stop (a session draining its requests).
struct SlowToStop;

impl arbor_runtime::Actor for SlowToStop {
    type Msg = ();

    async fn handle(
        &mut self,
        _: (),
        _ctx: &mut arbor_runtime::Context<Self>,
    ) -> arbor_runtime::Flow {
        Ok(())
    }

    async fn terminate(&mut self, _reason: &ExitReason) {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shards_of_a_sharded_supervisor_stop_together() {
    let slow = DynamicSupervisor::new("slow", |_: ()| async move { spawn(SlowToStop).await });
    let sharded = ShardedDynamicSupervisor::new(4, slow);
    let handle = sharded.handle();
    let root = Supervisor::new(Strategy::OneForOne)
        .child(sharded.into_child_spec("workers"))
        .start()
        .await
        .unwrap();
    let mut kids = Vec::new();
    for _ in 0..4 {
        kids.push(handle.start_child(()).await.unwrap().running().unwrap());
    }
    for shard in handle.shards() {
        assert_eq!(shard.count_children().await.unwrap().active, 1);
    }
    let started = std::time::Instant::now();
    root.shutdown().await;
    let took = started.elapsed();
    for kid in kids {
        assert_eq!(kid.process().exit_reason(), Some(ExitReason::Shutdown));
    }
    // One after another would be 4 × 300 ms.
    assert!(took < Duration::from_millis(900), "stopping took {took:?}");
}

async fn tree(log: &Log) -> SupervisorRef {
    let inner = Supervisor::new(Strategy::OneForOne)
        .intensity(100, Duration::from_secs(10))
        .child(worker("x", log))
        .child(worker("y", log));
    Supervisor::new(Strategy::OneForOne)
        .intensity(100, Duration::from_secs(10))
        .child(worker("a", log))
        .child(inner.into_child_spec("inner"))
        .child(worker("b", log))
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_path_kills_the_child_at_that_path_and_it_restarts() {
    let log = Log::default();
    let root = tree(&log).await;
    let inner = SupervisorRef::from_process(&child(&root, "inner").await.unwrap()).unwrap();
    let y = child(&inner, "y").await.unwrap();
    let killed = kill_path(&root, "inner/y").await.unwrap();
    assert_eq!(killed.pid, y.pid());
    assert_eq!(killed.path, "inner/y");
    assert_eq!(killed.kind, ChildKind::Worker);
    assert_eq!(y.wait().await, ExitReason::Killed);
    restarted(&inner, "y", y.pid()).await;
    assert_eq!(
        kill_path(&root, "inner/nope").await.unwrap_err(),
        ChaosError::NoSuchPath("inner/nope".into())
    );
    assert_eq!(
        kill_path(&root, "a/deeper").await.unwrap_err(),
        ChaosError::NoSuchPath("a/deeper".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descendants_lists_the_tree_in_pre_order() {
    let log = Log::default();
    let root = tree(&log).await;
    let paths: Vec<String> = descendants(&root)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.path)
        .collect();
    assert_eq!(paths, ["a", "inner", "inner/x", "inner/y", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_are_reproducible_from_the_seed() {
    async fn run(seed: u64) -> Vec<String> {
        let log = Log::default();
        let root = tree(&log).await;
        let mut chaos = Chaos::new(seed);
        let mut paths = Vec::new();
        for _ in 0..6 {
            let k = chaos.kill_random(&root, KillTarget::Workers).await.unwrap();
            // Let the restart land so the next pick sees the same tree shape.
            let sup = if k.path.starts_with("inner/") {
                SupervisorRef::from_process(&child(&root, "inner").await.unwrap()).unwrap()
            } else {
                root.clone()
            };
            let id = k.path.rsplit('/').next().unwrap().to_string();
            restarted(&sup, &id, k.pid).await;
            assert_eq!(k.kind, ChildKind::Worker);
            paths.push(k.path);
        }
        root.shutdown().await;
        paths
    }
    let first = run(42).await;
    assert_eq!(first, run(42).await);
    let others: Vec<Vec<String>> = futures_collect(&[1, 2, 3]).await;
    assert!(
        others.iter().any(|o| *o != first),
        "different seeds pick differently"
    );

    async fn futures_collect(seeds: &[u64]) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for &s in seeds {
            out.push(run(s).await);
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_at_rate_kills_repeatedly_for_the_duration() {
    let log = Log::default();
    let root = tree(&log).await;
    let mut chaos = Chaos::new(7);
    let killed = chaos
        .kill_at_rate(&root, KillTarget::Workers, 50.0, Duration::from_millis(200))
        .await;
    assert!(
        (3..=12).contains(&killed.len()),
        "about 10 kills, got {}",
        killed.len()
    );
    assert!(root.process().is_alive());
    assert_eq!(
        Chaos::new(1)
            .kill_random(&root, KillTarget::Supervisors)
            .await
            .unwrap()
            .path,
        "inner"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_restarts_abnormal_exits_and_the_intensity_used() {
    let log = Log::default();
    let sup = Supervisor::new(Strategy::OneForOne)
        .name("counted")
        .intensity(5, Duration::from_secs(60))
        .child(worker("a", &log))
        .start()
        .await
        .unwrap();
    let before = sup.status().await.unwrap();
    assert_eq!(&*before.name, "counted");
    assert_eq!(before.strategy, Strategy::OneForOne);
    assert_eq!(
        (before.intensity, before.period),
        (5, Duration::from_secs(60))
    );
    assert_eq!(
        (
            before.restarts,
            before.abnormal_exits,
            before.recent_restarts
        ),
        (0, 0, 0)
    );
    assert_eq!(before.children.active, 1);
    // Two kills: two restarts, both within the window.
    for _ in 0..2 {
        let old = child(&sup, "a").await.unwrap();
        old.kill();
        restarted(&sup, "a", old.pid()).await;
    }
    let after = sup.status().await.unwrap();
    assert_eq!(
        (after.restarts, after.abnormal_exits, after.recent_restarts),
        (2, 2, 2)
    );
    // A temporary child killed is an abnormal exit, not a restart.
    let dynamic = template(&log)
        .restart(Restart::Temporary)
        .start()
        .await
        .unwrap();
    let one = dynamic
        .start_child("t".into())
        .await
        .unwrap()
        .running()
        .unwrap();
    one.process().kill();
    let sup_ref = dynamic.supervisor().clone();
    eventually(|| {
        let sup_ref = sup_ref.clone();
        async move { sup_ref.status().await.unwrap().abnormal_exits == 1 }
    })
    .await;
    assert_eq!(sup_ref.status().await.unwrap().restarts, 0);
    sup.shutdown().await;
}
