//! `/healthz` (the process answers) and `/readyz` (the transport tree runs,
//! every listener in it is up, the resource guard sheds no load, and no
//! transport is isolated by its cascade detection), each with a JSON body
//! saying why.

use arbor_supervision::SupervisorRef;
use serde::Serialize;

/// One readiness check.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it holds.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

/// Whether the server is ready, and each check.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Readiness {
    /// Every check holds.
    pub ready: bool,
    /// The checks, in order.
    pub checks: Vec<Check>,
}

/// Checks the tree at `root` (`name` in the answer): running, and each of
/// its listener children (ids ending in `-listener`) running; then the
/// resource guard's pressure and the transports' isolations.
pub async fn readiness(root: &SupervisorRef, name: &str) -> Readiness {
    let process = root.process();
    let mut checks = vec![Check {
        name: format!("{name} tree"),
        ok: process.is_alive(),
        detail: match process.exit_reason() {
            None => format!("running as {}", process.pid()),
            Some(reason) => format!("stopped: {reason}"),
        },
    }];
    if process.is_alive() {
        match root.which_children().await {
            Ok(children) => {
                for child in children.iter().filter(|c| c.id.ends_with("-listener")) {
                    let running = child.process.as_ref().filter(|p| p.is_alive());
                    checks.push(Check {
                        name: child.id.to_string(),
                        ok: running.is_some(),
                        detail: match running {
                            Some(p) => format!("listening as {}", p.pid()),
                            None => "not running (restarting?)".into(),
                        },
                    });
                }
            }
            Err(e) => checks.push(Check {
                name: format!("{name} supervisor"),
                ok: false,
                detail: format!("does not answer: {e}"),
            }),
        }
    }
    checks.push(resources());
    checks.push(cascades(root).await);
    Readiness {
        ready: checks.iter().all(|c| c.ok),
        checks,
    }
}

/// Each transport's cascade detection: not ready while one is isolated
/// (it refuses new sessions), so a balancer sends them elsewhere.
async fn cascades(root: &SupervisorRef) -> Check {
    let isolated: Vec<String> = crate::cascade::views(root)
        .await
        .into_iter()
        .filter_map(|c| c.isolated)
        .collect();
    Check {
        name: "cascades".into(),
        ok: isolated.is_empty(),
        detail: if isolated.is_empty() {
            "no transport isolated".into()
        } else {
            isolated.join("; ")
        },
    }
}

/// The resource guard's last reading: not ready while it sheds load, so a
/// balancer sends new clients elsewhere.
fn resources() -> Check {
    use arbor_mcp::guard::Pressure;
    let pressure = arbor_mcp::stats::refusals().pressure;
    Check {
        name: "resources".into(),
        ok: pressure == Pressure::Normal,
        detail: match pressure {
            Pressure::Normal => "below the soft threshold".into(),
            Pressure::Soft(usage) => format!("soft pressure, shedding load: {usage}"),
            Pressure::Hard(usage) => format!("hard pressure, refusing new work: {usage}"),
        },
    }
}
