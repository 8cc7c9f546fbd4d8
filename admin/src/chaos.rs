//! Chaos from the admin API: kill the process at a path, kill N random
//! processes of a subtree, or kill at a rate for a while. Every answer says
//! what was killed (paths from the root) and the seed, so a run can be
//! repeated on the same tree shape.

use std::time::Duration;

use arbor_supervision::{
    find_path, kill_path, Chaos, ChaosError, ChildKind, KillTarget, Killed, SupervisorRef,
};
use serde::{Deserialize, Serialize};

use crate::config::AdminConfig;

/// One killed process, as the API reports it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KilledProcess {
    /// Its path from the root.
    pub path: String,
    /// Its pid.
    pub pid: String,
    /// `supervisor` or `worker`.
    pub kind: String,
}

fn reported(prefix: &str, killed: Killed) -> KilledProcess {
    KilledProcess {
        path: if prefix.is_empty() {
            killed.path
        } else {
            format!("{prefix}/{}", killed.path)
        },
        pid: killed.pid.to_string(),
        kind: match killed.kind {
            ChildKind::Supervisor => "supervisor".into(),
            ChildKind::Worker => "worker".into(),
        },
    }
}

/// `POST /api/kill`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillRequest {
    /// The path of the process to kill.
    pub path: String,
}

/// Which processes a random kill may pick.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Workers and supervisors.
    Any,
    /// Workers only (the default: killing a supervisor takes its subtree).
    #[default]
    Workers,
    /// Supervisors only.
    Supervisors,
}

/// `POST /api/chaos`: `count` kills at once, or `rate` kills a second for
/// `for_ms`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosRequest {
    /// The subtree's path (`""`: the whole tree).
    #[serde(default)]
    pub subtree: String,
    /// Kill this many at once.
    pub count: Option<usize>,
    /// Or kill this many a second…
    pub rate: Option<f64>,
    /// …for this long, in ms.
    pub for_ms: Option<u64>,
    /// The seed; a random one (reported) when left out.
    pub seed: Option<u64>,
    /// Which processes may be picked.
    #[serde(default)]
    pub target: Target,
}

/// What a chaos run killed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChaosReport {
    /// The seed used.
    pub seed: u64,
    /// What was killed, in order.
    pub killed: Vec<KilledProcess>,
}

/// Why a chaos request killed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ChaosRefused {
    /// The request does not make sense.
    #[error("{0}")]
    Invalid(String),
    /// Past a configured limit.
    #[error("{what} {asked} is past the limit of {max}")]
    Limit {
        /// Which limit.
        what: &'static str,
        /// What was asked.
        asked: u64,
        /// The limit.
        max: u64,
    },
    /// Nothing to kill there.
    #[error(transparent)]
    Chaos(#[from] ChaosError),
}

/// Kills the process at `path`.
///
/// # Errors
/// [`ChaosError`] when nothing runs there.
pub async fn kill(
    root: &SupervisorRef,
    request: KillRequest,
) -> Result<KilledProcess, ChaosRefused> {
    let path = request.path.trim_matches('/');
    if path.is_empty() {
        return Err(ChaosRefused::Invalid(
            "the root has no path: kill a child of it".into(),
        ));
    }
    Ok(reported("", kill_path(root, path).await?))
}

/// Runs a chaos request.
///
/// # Errors
/// [`ChaosRefused`] when it is malformed, past a limit, or finds nothing.
pub async fn chaos(
    root: &SupervisorRef,
    request: ChaosRequest,
    config: &AdminConfig,
) -> Result<ChaosReport, ChaosRefused> {
    let subtree_path = request.subtree.trim_matches('/').to_string();
    let subtree = if subtree_path.is_empty() {
        root.clone()
    } else {
        let found = find_path(root, &subtree_path).await?;
        SupervisorRef::from_process(&found.process).ok_or_else(|| {
            ChaosRefused::Invalid(format!("{subtree_path} is a worker, not a subtree"))
        })?
    };
    let target = match request.target {
        Target::Any => KillTarget::Any,
        Target::Workers => KillTarget::Workers,
        Target::Supervisors => KillTarget::Supervisors,
    };
    // 53 bits: a seed a page's JavaScript can show and send back exactly.
    let seed = request.seed.unwrap_or_else(|| rand::random::<u64>() >> 11);
    let mut chaos = Chaos::new(seed);
    let max_kills = config.max_kills as u64;
    let killed = match (request.count, request.rate, request.for_ms) {
        (Some(count), None, None) => {
            if count as u64 > max_kills {
                return Err(ChaosRefused::Limit {
                    what: "count",
                    asked: count as u64,
                    max: max_kills,
                });
            }
            let mut killed = Vec::new();
            for _ in 0..count {
                match chaos.kill_random(&subtree, target).await {
                    Ok(k) => killed.push(k),
                    // What was killed is reported even if the tree then
                    // has nothing left, or is busy restarting.
                    Err(_) if !killed.is_empty() => break,
                    Err(e) => return Err(e.into()),
                }
            }
            killed
        }
        (None, Some(rate), Some(for_ms)) => {
            if !(rate > 0.0 && rate.is_finite()) {
                return Err(ChaosRefused::Invalid(format!(
                    "rate must be a positive number of kills a second, not {rate}"
                )));
            }
            // At least one kill within the run, and a period that can be
            // timed (a rate past 1e6/s is no rate a tree can take).
            if for_ms == 0 || rate * (for_ms as f64) < 1000.0 || rate > 1e6 {
                return Err(ChaosRefused::Invalid(format!(
                    "{rate}/s for {for_ms} ms kills nothing: give at least one kill's time, at most 1e6/s"
                )));
            }
            let max_ms = config.max_chaos.as_millis() as u64;
            if for_ms > max_ms {
                return Err(ChaosRefused::Limit {
                    what: "for_ms",
                    asked: for_ms,
                    max: max_ms,
                });
            }
            let planned = (rate * for_ms as f64 / 1000.0).ceil() as u64;
            if planned > max_kills {
                return Err(ChaosRefused::Limit {
                    what: "kills planned",
                    asked: planned,
                    max: max_kills,
                });
            }
            chaos
                .kill_at_rate(&subtree, target, rate, Duration::from_millis(for_ms))
                .await
        }
        _ => {
            return Err(ChaosRefused::Invalid(
                "give either count, or rate with for_ms".into(),
            ))
        }
    };
    Ok(ChaosReport {
        seed,
        killed: killed
            .into_iter()
            .map(|k| reported(&subtree_path, k))
            .collect(),
    })
}
