//! The watchdog's metrics, seen through a recorder (one per test binary, so
//! this file holds one test).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use arbor_runtime::{WatchPolicy, Watchdog, WatchdogConfig};
use common::{block, start, Msg};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;

#[tokio::test]
async fn an_overload_increments_the_counter_and_sets_the_depth_gauge() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let watchdog = Watchdog::spawn(WatchdogConfig {
        interval: Duration::from_secs(3600),
        default_threshold: 3,
    })
    .await
    .unwrap();
    let (a, mut events) = start().await;
    let gate = block(&a, &mut events).await;
    for _ in 0..5 {
        a.try_send(Msg::Gate(gate.clone())).unwrap();
    }
    watchdog.watch(&a.process(), WatchPolicy::LogOnly).unwrap();
    assert_eq!(watchdog.sample().await.unwrap().len(), 1);

    let metrics = snapshotter.snapshot().into_vec();
    let counter = metrics
        .iter()
        .find(|(key, ..)| {
            key.kind() == MetricKind::Counter
                && key.key().name() == "arbor_watchdog_overloads_total"
        })
        .expect("the overload counter");
    assert_eq!(counter.3, DebugValue::Counter(1));
    assert!(counter
        .0
        .key()
        .labels()
        .any(|l| l.key() == "policy" && l.value() == "log"));
    let gauge = metrics
        .iter()
        .find(|(key, ..)| key.key().name() == "arbor_watchdog_max_mailbox_depth")
        .expect("the depth gauge");
    assert_eq!(gauge.3, DebugValue::Gauge(5.0.into()));
}
