//! Test workers and helpers shared by the supervision tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use arbor_runtime::{spawn, Actor, ActorRef, Context, ExitReason, Flow, Pid, ProcessRef, Reply};
use arbor_supervision::{ChildSpec, SupervisorRef};
use parking_lot::Mutex;

/// An ordered log of `start:NAME` and `stop:NAME` lines.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, line: String) {
        self.0.lock().push(line);
    }
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock())
    }
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().clone()
    }
}

pub enum WorkerMsg {
    /// Fail with this reason.
    Exit(ExitReason),
    /// Never return from the handler.
    Hang,
    Ping(Reply<()>),
}

pub struct Worker {
    pub name: String,
    pub log: Log,
}

impl Actor for Worker {
    type Msg = WorkerMsg;

    async fn init(&mut self, _ctx: &mut Context<Self>) -> Flow {
        self.log.push(format!("start:{}", self.name));
        Ok(())
    }

    async fn handle(&mut self, msg: WorkerMsg, _ctx: &mut Context<Self>) -> Flow {
        match msg {
            WorkerMsg::Exit(reason) => Err(reason),
            WorkerMsg::Hang => std::future::pending().await,
            WorkerMsg::Ping(reply) => {
                reply.send(());
                Ok(())
            }
        }
    }

    async fn terminate(&mut self, _reason: &ExitReason) {
        self.log.push(format!("stop:{}", self.name));
    }
}

pub fn worker(name: &str, log: &Log) -> ChildSpec {
    let (name, log) = (name.to_string(), log.clone());
    ChildSpec::worker(name.clone(), move || {
        let worker = Worker {
            name: name.clone(),
            log: log.clone(),
        };
        async move { spawn(worker).await }
    })
}

/// The running process of child `id`, if any.
pub async fn child(sup: &SupervisorRef, id: &str) -> Option<ProcessRef> {
    sup.which_children()
        .await
        .unwrap()
        .into_iter()
        .find(|c| &*c.id == id)
        .and_then(|c| c.process)
}

pub fn actor(p: &ProcessRef) -> ActorRef<WorkerMsg> {
    arbor_runtime::ActorRef::<WorkerMsg>::from_process(p).expect("a test worker")
}

/// Waits (polling, up to 5 s) until child `id` runs with a pid other than `old`.
pub async fn restarted(sup: &SupervisorRef, id: &str, old: Pid) -> ProcessRef {
    for _ in 0..5000 {
        if let Some(p) = child(sup, id).await {
            if p.pid() != old && p.is_alive() {
                return p;
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("child {id} was not restarted");
}

/// Waits (polling, up to 5 s) until `cond` holds.
pub async fn eventually<F: std::future::Future<Output = bool>>(mut cond: impl FnMut() -> F) {
    for _ in 0..5000 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("condition never held");
}
