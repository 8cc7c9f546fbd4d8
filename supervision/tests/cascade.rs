//! Cascade detection: a storm of failures spread over many children
//! isolates the subtree; an operator's reset or the cool-down lifts it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use arbor_runtime::{spawn, ExitReason};
use arbor_supervision::cascade::{Cascade, CascadeAction, CascadePolicy};
use arbor_supervision::{
    ChildError, DynamicSupervisor, Restart, ShardedDynamicSupervisor, Strategy, Supervisor,
};
use common::*;

fn policy(failures: u32, cool_down: Option<Duration>, action: CascadeAction) -> CascadePolicy {
    CascadePolicy {
        failures,
        window: Duration::from_secs(30),
        action,
        cool_down,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_spread_over_shards_isolate_the_whole_subtree_until_reset() {
    let log = Log::default();
    let cascade = Cascade::new("workers", policy(5, None, CascadeAction::Isolate));
    let template = {
        let log = log.clone();
        DynamicSupervisor::new("w", move |name: String| {
            let worker = Worker {
                name,
                log: log.clone(),
            };
            async move { spawn(worker).await }
        })
        .restart(Restart::Temporary)
    };
    let sharded = ShardedDynamicSupervisor::new(3, template).cascade(cascade.clone());
    let handle = sharded.handle();
    let _root = Supervisor::new(Strategy::OneForOne)
        .child(sharded.into_child_spec("workers"))
        .start()
        .await
        .unwrap();
    // Six children, each crashing once, spread over the three shards: no
    // supervisor sees a restart, yet the subtree has failed six times.
    for i in 0..6 {
        let child = handle
            .start_child(format!("w{i}"))
            .await
            .unwrap()
            .running()
            .unwrap();
        child
            .try_send(WorkerMsg::Exit(ExitReason::error("poisoned")))
            .unwrap();
        child.process().wait().await;
    }
    eventually(|| {
        let h = handle.clone();
        async move { h.isolation().is_some() }
    })
    .await;
    let err = handle.start_child("late".into()).await.unwrap_err();
    let ChildError::Isolated(isolation) = err else {
        panic!("expected an isolation, got {err:?}");
    };
    assert_eq!(&*isolation.trip.subtree, "workers");
    assert_eq!(isolation.trip.failures, 6);
    assert!(isolation.until.is_none(), "no cool-down: waits for reset");
    let shard = handle.shards()[0].supervisor().clone();
    let status = shard.status().await.unwrap().cascade.unwrap();
    assert_eq!(status.trips, 1);
    assert!(status.isolation.is_some());

    // The operator's reset, through the supervisor's handle.
    assert!(shard.cascade().await.unwrap().unwrap().reset());
    assert!(handle.isolation().is_none());
    let child = handle.start_child("after".into()).await.unwrap();
    assert!(child.running().unwrap().process().is_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_supervisor_leaves_crashed_children_down_until_the_cool_down() {
    let log = Log::default();
    let cascade = Cascade::new(
        "static",
        policy(1, Some(Duration::from_millis(400)), CascadeAction::Isolate),
    );
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(100, Duration::from_secs(5))
        .child(worker("a", &log))
        .child(worker("b", &log))
        .cascade(cascade.clone())
        .start()
        .await
        .unwrap();
    let a = child(&sup, "a").await.unwrap();
    actor(&a)
        .try_send(WorkerMsg::Exit(ExitReason::error("boom")))
        .unwrap();
    restarted(&sup, "a", a.pid()).await;

    // The second failure trips the cascade: b stays down.
    let b = child(&sup, "b").await.unwrap();
    actor(&b)
        .try_send(WorkerMsg::Exit(ExitReason::error("boom")))
        .unwrap();
    b.wait().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(child(&sup, "b").await.is_none(), "restarted while isolated");
    let isolation = cascade.isolation().unwrap();
    assert!(isolation.retry_after().unwrap() <= Duration::from_millis(400));
    assert!(matches!(
        sup.restart_child("b").await,
        Err(ChildError::Isolated(_))
    ));

    // The cool-down lifts it by itself and b comes back.
    restarted(&sup, "b", b.pid()).await;
    assert!(cascade.isolation().is_none());
    assert_eq!(sup.status().await.unwrap().cascade.unwrap().trips, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_stop_a_trip_asks_the_node_to_stop_with_its_reason() {
    let log = Log::default();
    let cascade = Cascade::new("andon", policy(0, None, CascadeAction::Stop));
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(worker("a", &log))
        .cascade(cascade.clone())
        .start()
        .await
        .unwrap();
    let stopped = tokio::spawn({
        let cascade = cascade.clone();
        async move { cascade.stopped().await }
    });
    let a = child(&sup, "a").await.unwrap();
    actor(&a)
        .try_send(WorkerMsg::Exit(ExitReason::error("boom")))
        .unwrap();
    let trip = tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("stopped() resolves")
        .unwrap();
    assert_eq!(
        trip.to_string(),
        "cascade in andon: 1 abnormal exits within 30s"
    );
}
