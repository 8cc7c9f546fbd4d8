//! `/metrics`: the Prometheus text exposition of everything recorded
//! through the `metrics` facade (requests and their latencies, restarts,
//! drops, watchdog alarms), plus what is read at scrape time: processes by
//! kind, what each transport holds, each supervisor's restart headroom,
//! each transport's cascade detection, the deepest mailboxes, file
//! descriptors and resident memory.

use std::sync::OnceLock;

use arbor_supervision::{descendants, ChildKind, SupervisorRef, SupervisorStatus};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The latency buckets of `mcp.server.operation.duration`, in seconds: the
/// OpenTelemetry MCP conventions' buckets, with sub-millisecond ones in
/// front (an echo call takes well under one).
const DURATION_BUCKETS: [f64; 18] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0,
    5.0, 10.0, 30.0, 60.0,
];

/// The buckets of `arbor_processes_by_mailbox_depth`.
const MAILBOX_BUCKETS: [(&str, usize); 6] = [
    ("0", 0),
    ("1", 1),
    ("10", 10),
    ("100", 100),
    ("1000", 1000),
    ("+Inf", usize::MAX),
];

/// The process's one recorder (the `metrics` facade takes one for good).
static RECORDER: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's `metrics` recorder,
/// the first time; later calls get the same handle.
///
/// # Errors
/// When another recorder was installed first.
pub fn recorder() -> Result<&'static PrometheusHandle, String> {
    RECORDER
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("mcp.server.operation.duration".into()),
                    &DURATION_BUCKETS,
                )
                .map_err(|e| e.to_string())?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).map_err(|e| e.to_string())?;
            Ok(handle)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// One scrape: the figures read now, then the whole exposition.
pub(crate) async fn scrape(
    handle: &PrometheusHandle,
    root: &SupervisorRef,
    root_name: &str,
    top: usize,
) -> String {
    let counts = arbor_runtime::process_counts();
    metrics::gauge!("arbor_processes", "kind" => "lightweight").set(counts.lightweight as f64);
    metrics::gauge!("arbor_processes", "kind" => "ractor").set(counts.ractor as f64);
    if let Ok(held) = arbor_transports::held(root).await {
        for h in held {
            metrics::gauge!("arbor_transport_held", "transport" => h.transport, "what" => h.what)
                .set(h.active as f64);
        }
    }
    if let Ok(s) = root.status().await {
        supervisor_figures(root_name.to_string(), &s);
    }
    if let Ok(all) = descendants(root).await {
        let mut depths: Vec<(usize, u64)> = Vec::new();
        for d in &all {
            if d.kind == ChildKind::Supervisor {
                if let Some(sup) = SupervisorRef::from_process(&d.process) {
                    if let Ok(s) = sup.status().await {
                        supervisor_figures(format!("{root_name}/{}", d.path), &s);
                    }
                }
            }
            depths.push((d.process.mailbox_len(), d.process.pid().as_u64()));
        }
        let total: usize = depths.iter().map(|d| d.0).sum();
        metrics::gauge!("arbor_mailbox_depth_total").set(total as f64);
        // A histogram of now, not of every scrape so far: cumulative counts
        // of processes by mailbox depth, as Prometheus buckets are.
        for (le, bound) in MAILBOX_BUCKETS {
            let within = depths.iter().filter(|d| d.0 <= bound).count();
            metrics::gauge!("arbor_processes_by_mailbox_depth", "le" => le).set(within as f64);
        }
        depths.sort_unstable_by_key(|d| std::cmp::Reverse(d.0));
        // Ranks, not paths, as labels: a label per process ever deepest
        // would pile up series. The dashboard names them.
        for rank in 0..top {
            let (depth, pid) = depths.get(rank).copied().unwrap_or((0, 0));
            let rank = (rank + 1).to_string();
            metrics::gauge!("arbor_mailbox_depth_top", "rank" => rank.clone()).set(depth as f64);
            metrics::gauge!("arbor_mailbox_depth_top_pid", "rank" => rank).set(pid as f64);
        }
    }
    for c in crate::cascade::views(root).await {
        let subtree = c.subtree;
        metrics::gauge!("arbor_cascade_recent_failures", "subtree" => subtree.clone())
            .set(c.recent_failures as f64);
        metrics::gauge!("arbor_cascade_isolated", "subtree" => subtree.clone())
            .set(f64::from(u8::from(c.isolated.is_some())));
        metrics::gauge!("arbor_cascade_trips", "subtree" => subtree).set(c.trips as f64);
    }
    if let Some(fds) = arbor_mcp::guard::open_descriptors() {
        metrics::gauge!("arbor_open_fds").set(fds as f64);
    }
    if let Some(rss) = arbor_mcp::guard::resident_bytes() {
        metrics::gauge!("arbor_resident_memory_bytes").set(rss as f64);
    }
    handle.run_upkeep();
    handle.render()
}

/// One supervisor's figures, labelled by its path from the root's name.
/// Gauges, not counters: they are what the supervisor says now, and one
/// started again says zero (its restarts are its own, since its start).
fn supervisor_figures(path: String, s: &SupervisorStatus) {
    let headroom = i64::from(s.intensity) - s.recent_restarts as i64;
    metrics::gauge!("arbor_supervisor_restart_headroom", "supervisor" => path.clone())
        .set(headroom as f64);
    metrics::gauge!("arbor_supervisor_restarts", "supervisor" => path.clone())
        .set(s.restarts as f64);
    metrics::gauge!("arbor_supervisor_abnormal_exits", "supervisor" => path)
        .set(s.abnormal_exits as f64);
}
