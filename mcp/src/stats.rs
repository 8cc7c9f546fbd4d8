//! Process-wide request figures, for a dashboard's live rates: two
//! counters moved once per answered feature request, whichever server,
//! session or transport answered it. The full picture (by method, with
//! latencies) goes to the `metrics` facade as
//! `mcp.server.operation.duration`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::jsonrpc::ErrorObject;
use crate::model::Method;

static ANSWERED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);

/// Feature requests answered since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Every answer, errors included.
    pub answered: u64,
    /// Answers that were JSON-RPC errors.
    pub failed: u64,
}

/// The requests answered so far, in this process.
pub fn request_counts() -> RequestCounts {
    RequestCounts {
        answered: ANSWERED.load(Ordering::Relaxed),
        failed: FAILED.load(Ordering::Relaxed),
    }
}

/// Records one answered request: the counters, and its duration under the
/// OpenTelemetry MCP semantic conventions' name and attributes
/// (`mcp.method.name`, `error.type` as the JSON-RPC code).
pub(crate) fn answered(
    method: Method,
    took: Duration,
    outcome: &Result<serde_json::Value, ErrorObject>,
) {
    ANSWERED.fetch_add(1, Ordering::Relaxed);
    let error = match outcome {
        Ok(_) => None,
        Err(e) => {
            FAILED.fetch_add(1, Ordering::Relaxed);
            Some(e.code.to_string())
        }
    };
    let histogram = match error {
        None => {
            metrics::histogram!("mcp.server.operation.duration", "mcp.method.name" => method.as_str())
        }
        Some(code) => metrics::histogram!(
            "mcp.server.operation.duration",
            "mcp.method.name" => method.as_str(),
            "error.type" => code
        ),
    };
    histogram.record(took.as_secs_f64());
}
