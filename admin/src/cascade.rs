//! Cascade detection from the admin API ([`arbor_mcp::cascade`]): each
//! transport's state, for the summary, the dashboard and `/metrics`, and
//! `POST /api/reset`, an operator's lift of an isolation.

use arbor_supervision::cascade::{Cascade, CascadeAction};
use arbor_supervision::SupervisorRef;
use serde::{Deserialize, Serialize};

/// One transport's cascade detection, as the API reports it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CascadeView {
    /// The subtree it watches: `tcp-connections`, `ws-connections`, `http`.
    pub subtree: String,
    /// Abnormal exits within the window now.
    pub recent_failures: usize,
    /// More than this many within the window trip it.
    pub threshold: u32,
    /// The window, in ms.
    pub window_ms: u64,
    /// `isolate` or `stop`.
    pub action: String,
    /// Trips since the server started.
    pub trips: u64,
    /// Why it is isolated now, if it is.
    pub isolated: Option<String>,
    /// Seconds until the isolation lifts by itself; `None` while not
    /// isolated or until an operator resets it.
    pub retry_after_s: Option<u64>,
}

impl From<&Cascade> for CascadeView {
    fn from(cascade: &Cascade) -> Self {
        let status = cascade.status();
        let policy = cascade.policy();
        CascadeView {
            subtree: status.subtree.to_string(),
            recent_failures: status.recent_failures,
            threshold: policy.failures,
            window_ms: u64::try_from(policy.window.as_millis()).unwrap_or(u64::MAX),
            action: match policy.action {
                CascadeAction::Isolate => "isolate".into(),
                CascadeAction::Stop => "stop".into(),
            },
            trips: status.trips,
            retry_after_s: status
                .isolation
                .as_ref()
                .and_then(arbor_mcp::cascade::retry_after_secs),
            isolated: status.isolation.map(|i| i.to_string()),
        }
    }
}

/// Every transport's cascade detection now; empty when the tree does not
/// answer or detects none.
pub async fn views(root: &SupervisorRef) -> Vec<CascadeView> {
    arbor_transports::cascades(root)
        .await
        .unwrap_or_default()
        .iter()
        .map(CascadeView::from)
        .collect()
}

/// `POST /api/reset`: lift the isolation of one subtree, or of all.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The cascade's subtree (`tcp-connections`, `ws-connections`,
    /// `http`); left out: every one.
    #[serde(default)]
    pub subtree: Option<String>,
}

/// What a reset did.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResetReport {
    /// The subtrees that were isolated and are no longer.
    pub lifted: Vec<String>,
    /// Every cascade after the reset.
    pub cascades: Vec<CascadeView>,
}

/// Why a reset was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResetRefused {
    /// No cascade watches a subtree of that name.
    #[error("no cascade detection for subtree {0:?} (known: {1})")]
    NoSuchSubtree(String, String),
    /// The tree did not answer.
    #[error("the tree did not answer: {0}")]
    Call(#[from] arbor_runtime::CallError),
}

/// Resets the cascades `request` names.
///
/// # Errors
/// [`ResetRefused::NoSuchSubtree`] for a subtree no cascade watches,
/// [`ResetRefused::Call`] when the tree does not answer.
pub async fn reset(
    root: &SupervisorRef,
    request: ResetRequest,
) -> Result<ResetReport, ResetRefused> {
    let all = arbor_transports::cascades(root).await?;
    let chosen: Vec<&Cascade> = all
        .iter()
        .filter(|c| {
            request
                .subtree
                .as_deref()
                .is_none_or(|s| **c.subtree() == *s)
        })
        .collect();
    if let (Some(subtree), true) = (&request.subtree, chosen.is_empty()) {
        let known: Vec<&str> = all.iter().map(|c| &**c.subtree()).collect();
        let known = if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        };
        return Err(ResetRefused::NoSuchSubtree(subtree.clone(), known));
    }
    let lifted = chosen
        .into_iter()
        .filter(|c| c.reset())
        .map(|c| c.subtree().to_string())
        .collect();
    Ok(ResetReport {
        lifted,
        cascades: all.iter().map(CascadeView::from).collect(),
    })
}
