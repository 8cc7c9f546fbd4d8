//! A three-level supervision tree driven by the chaos kill hooks.
//!
//! Starts the demo tree of `tree.rs` (root rest_for_one over a registry, a sharded dynamic
//! supervisor of workers, and a one_for_one subtree of services), then kills
//! parts of it on purpose and prints every event as one JSON line on stdout:
//! the supervisors' own events (`"event":"child_started"`, `"child_exited"`,
//! …) and the example's (`"event":"kill"`, `"restarted"`, …).
//!
//! Run it with `cargo run --example supervision_tree`.

use std::time::Duration;

use anyhow::{bail, Context as _};
mod tree;

use arbor::runtime::{ActorRef, Pid};
use arbor::supervision::{kill_path, Chaos, KillTarget, SupervisorRef};
use serde_json::json;
use tree::{DemoTree, WorkerMsg};

fn emit(value: serde_json::Value) {
    println!("{value}");
}

/// The running child `id` of `sup`, if any.
async fn child(sup: &SupervisorRef, id: &str) -> anyhow::Result<Option<arbor::ProcessRef>> {
    Ok(sup
        .which_children()
        .await?
        .into_iter()
        .find(|c| &*c.id == id)
        .and_then(|c| c.process))
}

/// Waits until child `id` of `sup` runs with a pid other than `old`.
async fn restarted(sup: &SupervisorRef, id: &str, old: Pid) -> anyhow::Result<arbor::ProcessRef> {
    for _ in 0..2000 {
        if let Some(p) = child(sup, id).await? {
            if p.pid() != old && p.is_alive() {
                return Ok(p);
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    bail!("{id} was not restarted")
}

async fn subtree(root: &SupervisorRef, id: &str) -> anyhow::Result<SupervisorRef> {
    let p = child(root, id).await?.context("subtree not running")?;
    SupervisorRef::from_process(&p).context("not a supervisor")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter("arbor::supervision=info,arbor::chaos=warn")
        .with_writer(std::io::stdout)
        .init();

    let tree = DemoTree::start(2).await?;
    tree.start_workers(6).await?;
    let root = tree.root.clone();
    let paths: Vec<String> = arbor::supervision::descendants(&root)
        .await?
        .into_iter()
        .map(|d| d.path)
        .collect();
    emit(json!({"event": "tree", "paths": paths, "registered": tree.registry.len()}));

    // 1. A worker of the one_for_one subtree: only it restarts.
    let services = subtree(&root, "services").await?;
    let clock = child(&services, "clock").await?.context("clock")?;
    let killed = kill_path(&root, "services/echo").await?;
    emit(json!({"event": "kill", "path": killed.path, "pid": killed.pid.to_string()}));
    let echo = restarted(&services, "echo", killed.pid).await?;
    let answer = ActorRef::<WorkerMsg>::from_process(&echo)
        .context("echo is a worker")?
        .call(WorkerMsg::Echo, Duration::from_secs(1))
        .await?;
    emit(json!({
        "event": "restarted", "path": "services/echo",
        "old": killed.pid.to_string(), "new": echo.pid().to_string(),
        "answers": answer, "clock_untouched": clock.is_alive(),
    }));

    // 2. A random worker of the sharded supervisor: it restarts with its
    //    arguments and registers its name again.
    let workers = subtree(&root, "workers").await?;
    let killed = Chaos::new(2026)
        .kill_random(&workers, KillTarget::Workers)
        .await?;
    emit(json!({"event": "kill", "path": killed.path, "pid": killed.pid.to_string()}));
    let (shard_id, worker_id) = killed.path.split_once('/').context("shard/worker path")?;
    let shard = subtree(&workers, shard_id).await?;
    let fresh = restarted(&shard, worker_id, killed.pid).await?;
    let names: Vec<String> = (0..6).map(|i| format!("worker-{i}")).collect();
    let holder = names
        .iter()
        .find(|n| {
            tree.registry
                .whereis(n)
                .is_some_and(|p| p.pid() == fresh.pid())
        })
        .cloned();
    emit(json!({
        "event": "reregistered", "path": killed.path, "old": killed.pid.to_string(),
        "new": fresh.pid().to_string(), "name": holder, "registered": tree.registry.len(),
    }));

    // 3. The registry: rest_for_one restarts everything started after it.
    let registry = child(&root, "registry").await?.context("registry")?;
    let killed = kill_path(&root, "registry").await?;
    emit(json!({"event": "kill", "path": killed.path, "pid": killed.pid.to_string()}));
    restarted(&root, "registry", registry.pid()).await?;
    let workers2 = restarted(&root, "workers", workers.pid()).await?;
    let services2 = restarted(&root, "services", services.pid()).await?;
    emit(json!({
        "event": "rest_for_one", "restarted": ["registry", "workers", "services"],
        "workers": workers2.pid().to_string(), "services": services2.pid().to_string(),
        "registered": tree.registry.len(),
    }));
    tree.start_workers(6).await?;
    emit(json!({"event": "workers_started_again", "registered": tree.registry.len()}));

    // 4. Kills at a rate for a while, then the tree is still whole.
    let services = subtree(&root, "services").await?;
    let kills = Chaos::new(7)
        .kill_at_rate(
            &services,
            KillTarget::Workers,
            20.0,
            Duration::from_millis(250),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let counts = services.count_children().await?;
    emit(json!({
        "event": "kill_at_rate", "kills": kills.len(),
        "services_active": counts.active, "root_alive": root.process().is_alive(),
    }));

    // 5. Ordered shutdown.
    let reason = root.shutdown().await;
    emit(json!({"event": "shutdown", "reason": reason.to_string()}));
    Ok(())
}
