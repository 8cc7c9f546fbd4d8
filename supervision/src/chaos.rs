//! Kill hooks for chaos testing: kill a child by its path in the tree, a
//! random child of a subtree, or random children at a rate for a while.
//!
//! Paths are child ids joined by `/`, from the supervisor given (which is not
//! part of the path): `workers/shard-0/worker-17`. Random choices come from a
//! seeded ChaCha8 generator, so the same seed on the same tree shape kills the
//! same children. Every hook returns what it killed.

use std::time::Duration;

use arbor_runtime::{CallError, Pid, ProcessRef};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::spec::ChildKind;
use crate::supervisor::SupervisorRef;

/// One process a hook killed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Killed {
    /// Its path below the supervisor the hook was given.
    pub path: String,
    /// Its pid.
    pub pid: Pid,
    /// Worker or supervisor.
    pub kind: ChildKind,
}

/// Which processes a random kill may pick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillTarget {
    /// Workers and supervisors.
    Any,
    /// Workers only.
    Workers,
    /// Supervisors only.
    Supervisors,
}

impl KillTarget {
    fn admits(self, kind: ChildKind) -> bool {
        match self {
            KillTarget::Any => true,
            KillTarget::Workers => kind == ChildKind::Worker,
            KillTarget::Supervisors => kind == ChildKind::Supervisor,
        }
    }
}

/// Why a hook killed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChaosError {
    /// No child has this path.
    #[error("no child at path {0:?}")]
    NoSuchPath(String),
    /// The child at this path is not running.
    #[error("child at path {0:?} is not running")]
    NotRunning(String),
    /// The subtree has no running process of the requested kind.
    #[error("no running process to kill")]
    NothingToKill,
    /// A supervisor did not answer.
    #[error("supervisor call failed: {0}")]
    Call(#[from] CallError),
}

/// A running process in a subtree, with its path.
#[derive(Clone, Debug)]
pub struct Descendant {
    /// Its path below the subtree's supervisor.
    pub path: String,
    /// The process.
    pub process: ProcessRef,
    /// Worker or supervisor.
    pub kind: ChildKind,
}

/// Every running process below `root`, in pre-order: each supervisor is
/// followed by its own subtree, siblings in start order.
///
/// # Errors
/// A [`CallError`] if a supervisor does not answer.
pub async fn descendants(root: &SupervisorRef) -> Result<Vec<Descendant>, CallError> {
    let mut found = Vec::new();
    let mut stack = children_of(root, "").await?;
    stack.reverse();
    while let Some(d) = stack.pop() {
        if let Some(nested) = SupervisorRef::from_process(&d.process) {
            match children_of(&nested, &d.path).await {
                Ok(mut below) => {
                    below.reverse();
                    stack.extend(below);
                }
                // It died while the tree was read (a kill, a restart): it
                // and its subtree are gone, not a reason to fail the walk.
                // A killed process refuses calls a moment before it is
                // marked exited, so the error itself says so too.
                Err(CallError::Closed | CallError::NoReply) => continue,
                Err(_) if !d.process.is_alive() => continue,
                Err(e) => return Err(e),
            }
        }
        found.push(d);
    }
    Ok(found)
}

async fn children_of(sup: &SupervisorRef, prefix: &str) -> Result<Vec<Descendant>, CallError> {
    Ok(sup
        .which_children()
        .await?
        .into_iter()
        .filter_map(|child| {
            let process = child.process?;
            let path = if prefix.is_empty() {
                child.id.to_string()
            } else {
                format!("{prefix}/{}", child.id)
            };
            Some(Descendant {
                path,
                process,
                kind: child.kind,
            })
        })
        .collect())
}

/// The running child at `path` below `root` (`""` is no child: use the
/// root itself).
///
/// # Errors
/// [`ChaosError::NoSuchPath`] or [`ChaosError::NotRunning`] when nothing
/// runs there.
pub async fn find_path(root: &SupervisorRef, path: &str) -> Result<Descendant, ChaosError> {
    let mut sup = root.clone();
    let mut parts = path.split('/').peekable();
    while let Some(id) = parts.next() {
        let child = sup
            .which_children()
            .await?
            .into_iter()
            .find(|c| &*c.id == id)
            .ok_or_else(|| ChaosError::NoSuchPath(path.to_string()))?;
        let process = child
            .process
            .ok_or_else(|| ChaosError::NotRunning(path.to_string()))?;
        if parts.peek().is_none() {
            return Ok(Descendant {
                path: path.to_string(),
                process,
                kind: child.kind,
            });
        }
        sup = SupervisorRef::from_process(&process)
            .ok_or_else(|| ChaosError::NoSuchPath(path.to_string()))?;
    }
    Err(ChaosError::NoSuchPath(path.to_string()))
}

/// Kills the child at `path` below `root`.
///
/// # Errors
/// [`ChaosError::NoSuchPath`] or [`ChaosError::NotRunning`] when there is
/// nothing to kill there.
pub async fn kill_path(root: &SupervisorRef, path: &str) -> Result<Killed, ChaosError> {
    let found = find_path(root, path).await?;
    Ok(kill(found.path, &found.process, found.kind))
}

fn kill(path: String, process: &ProcessRef, kind: ChildKind) -> Killed {
    tracing::warn!(target: "arbor::chaos", path, pid = %process.pid(), "chaos kill");
    process.kill();
    Killed {
        path,
        pid: process.pid(),
        kind,
    }
}

/// Random kills from a seeded generator.
#[derive(Clone, Debug)]
pub struct Chaos {
    rng: ChaCha8Rng,
}

impl Chaos {
    /// Kills chosen from `seed`: the same seed on the same tree shape kills
    /// the same children.
    pub fn new(seed: u64) -> Self {
        Chaos {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Kills one running process below `subtree`, chosen at random among
    /// those `target` admits.
    ///
    /// # Errors
    /// [`ChaosError::NothingToKill`] when none is running.
    pub async fn kill_random(
        &mut self,
        subtree: &SupervisorRef,
        target: KillTarget,
    ) -> Result<Killed, ChaosError> {
        let candidates: Vec<Descendant> = descendants(subtree)
            .await?
            .into_iter()
            .filter(|d| target.admits(d.kind) && d.process.is_alive())
            .collect();
        if candidates.is_empty() {
            return Err(ChaosError::NothingToKill);
        }
        let pick = &candidates[self.rng.random_range(0..candidates.len())];
        Ok(kill(pick.path.clone(), &pick.process, pick.kind))
    }

    /// Kills random processes below `subtree`, `per_second` of them each
    /// second, for `duration`; returns every kill in order. A moment with
    /// nothing to kill is skipped.
    pub async fn kill_at_rate(
        &mut self,
        subtree: &SupervisorRef,
        target: KillTarget,
        per_second: f64,
        duration: Duration,
    ) -> Vec<Killed> {
        let mut killed = Vec::new();
        // A rate that makes no period (zero, negative, not a number, too
        // small or too large to time) kills nothing.
        let period = match Duration::try_from_secs_f64(1.0 / per_second) {
            Ok(period) if !period.is_zero() => period,
            _ => return killed,
        };
        let end = tokio::time::Instant::now() + duration;
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        ticks.tick().await;
        loop {
            // The next kill may be due after the run's end: stop at the end.
            if tokio::time::timeout_at(end, ticks.tick()).await.is_err() {
                break;
            }
            if let Ok(k) = self.kill_random(subtree, target).await {
                killed.push(k);
            }
        }
        killed
    }
}
