//! Supervisor reports: why a supervisor gave up is in its report, as in
//! OTP's `supervisor_report` (`reached_max_restart_intensity`), since its
//! exit reason is plain `shutdown`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arbor_runtime::ExitReason;
use arbor_supervision::{Strategy, Supervisor};
use common::*;
use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

type Fields = HashMap<String, String>;

/// Keeps the fields of every `arbor::supervision` event.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Fields>>>);

struct Record<'a>(&'a mut Fields);

impl Visit for Record<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            format!("{value:?}").trim_matches('"').to_string(),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "arbor::supervision" {
            let mut fields = Fields::new();
            event.record(&mut Record(&mut fields));
            self.0.lock().push(fields);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giving_up_exits_shutdown_and_reports_the_child_count_and_window() {
    let capture = Capture::default();
    // Global: the supervisor runs on the runtime's worker threads.
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(capture.clone()))
        .unwrap();

    let log = Log::default();
    let sup = Supervisor::new(Strategy::OneForOne)
        .name("giving-up")
        .intensity(1, Duration::from_secs(30))
        .child(worker("flaky", &log))
        .start()
        .await
        .unwrap();
    let w = child(&sup, "flaky").await.unwrap();
    w.kill();
    let w = restarted(&sup, "flaky", w.pid()).await;
    w.kill();
    assert_eq!(sup.process().wait().await, ExitReason::Shutdown);

    let events = capture.0.lock().clone();
    let report = events
        .iter()
        .find(|e| e.get("event").map(String::as_str) == Some("reached_max_restart_intensity"))
        .expect("a report of why the supervisor gave up");
    assert_eq!(report["supervisor"], "giving-up");
    assert_eq!(report["child"], "flaky");
    assert_eq!(report["restarts"], "2");
    assert_eq!(report["intensity"], "1");
    assert_eq!(report["period_ms"], "30000");
}
