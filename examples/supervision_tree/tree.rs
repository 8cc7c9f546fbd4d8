//! The demo supervision tree: three levels, one of each kind of supervisor.
//!
//! ```text
//! root (rest_for_one)
//! ├── registry   worker: owns the name registry; a fresh start empties it
//! ├── workers    sharded dynamic supervisor: N × dynamic (one_for_one)
//! │   └── shard-I
//! │       └── worker-K   workers, each registered as `worker-<name>`
//! └── services   one_for_one
//!     ├── clock  worker: ticks once a second (send_interval)
//!     └── echo   worker: answers calls
//! ```
//!
//! rest_for_one at the root says what depends on what: the workers register
//! in the registry, so when the registry restarts (and forgets every name),
//! everything started after it restarts too and registers again; a crash in
//! `services` touches nothing before it.

use std::time::Duration;

use arbor_runtime::timer::{send_interval, TimerRef};
use arbor_runtime::{spawn, Actor, ActorRef, Context, ExitReason, Flow, Reply, ShardedRegistry};
use arbor_supervision::{
    ChildSpec, DynamicSupervisor, ShardedDynamicRef, ShardedDynamicSupervisor, StartError,
    Strategy, Supervisor, SupervisorRef,
};

/// Owns the registry: its start empties it, as a restarted OTP registry
/// process starts with an empty table.
#[derive(Debug)]
struct RegistryOwner {
    registry: ShardedRegistry,
}

impl Actor for RegistryOwner {
    type Msg = ();

    async fn init(&mut self, _ctx: &mut Context<Self>) -> Flow {
        self.registry.clear();
        Ok(())
    }

    async fn handle(&mut self, _msg: (), _ctx: &mut Context<Self>) -> Flow {
        Ok(())
    }
}

/// Messages of the demo workers.
#[derive(Debug)]
pub(crate) enum WorkerMsg {
    /// Answers with the worker's name.
    Echo(Reply<String>),
    /// A clock tick.
    Tick,
}

/// A demo worker: registers itself by name and answers [`WorkerMsg::Echo`].
#[derive(Debug)]
struct Worker {
    name: String,
    registry: Option<ShardedRegistry>,
    ticks: u64,
    timer: Option<TimerRef>,
    tick_every: Option<Duration>,
}

impl Actor for Worker {
    type Msg = WorkerMsg;

    async fn init(&mut self, ctx: &mut Context<Self>) -> Flow {
        if let Some(registry) = &self.registry {
            registry
                .register(self.name.clone(), &ctx.process())
                .map_err(ExitReason::error)?;
        }
        if let Some(every) = self.tick_every {
            self.timer = Some(send_interval(every, ctx.myself().clone(), || {
                WorkerMsg::Tick
            }));
        }
        Ok(())
    }

    async fn handle(&mut self, msg: WorkerMsg, _ctx: &mut Context<Self>) -> Flow {
        match msg {
            WorkerMsg::Echo(reply) => {
                reply.send(self.name.clone());
            }
            WorkerMsg::Tick => self.ticks += 1,
        }
        Ok(())
    }

    async fn terminate(&mut self, _reason: &ExitReason) {
        if let Some(timer) = self.timer.take() {
            timer.cancel();
        }
    }
}

fn service(name: &'static str, tick_every: Option<Duration>) -> ChildSpec {
    ChildSpec::worker(name, move || {
        spawn(Worker {
            name: name.to_string(),
            registry: None,
            ticks: 0,
            timer: None,
            tick_every,
        })
    })
}

/// The running demo tree.
#[derive(Debug, Clone)]
pub(crate) struct DemoTree {
    /// The root supervisor.
    pub(crate) root: SupervisorRef,
    /// The names the workers register under.
    pub(crate) registry: ShardedRegistry,
    /// Starts workers on the sharded supervisor.
    pub(crate) workers: ShardedDynamicRef<String, ActorRef<WorkerMsg>>,
}

impl DemoTree {
    /// Starts the tree with `shards` worker shards and no workers yet.
    ///
    /// # Errors
    /// A [`StartError`] if a child fails to start.
    pub(crate) async fn start(shards: usize) -> Result<DemoTree, StartError> {
        let registry = ShardedRegistry::new();
        let owner_registry = registry.clone();
        let worker_registry = registry.clone();
        let template = DynamicSupervisor::new("worker", move |name: String| {
            spawn(Worker {
                name: format!("worker-{name}"),
                registry: Some(worker_registry.clone()),
                ticks: 0,
                timer: None,
                tick_every: None,
            })
        })
        .intensity(100, Duration::from_secs(1));
        let workers = ShardedDynamicSupervisor::new(shards, template);
        let handle = workers.handle();
        let services = Supervisor::new(Strategy::OneForOne)
            .intensity(100, Duration::from_secs(1))
            .child(service("clock", Some(Duration::from_secs(1))))
            .child(service("echo", None));
        let root = Supervisor::new(Strategy::RestForOne)
            .name("root")
            .intensity(10, Duration::from_secs(1))
            .child(ChildSpec::worker("registry", move || {
                spawn(RegistryOwner {
                    registry: owner_registry.clone(),
                })
            }))
            .child(workers.into_child_spec("workers"))
            .child(services.into_child_spec("services"))
            .start()
            .await?;
        Ok(DemoTree {
            root,
            registry,
            workers: handle,
        })
    }

    /// Starts `count` workers named `worker-0` … `worker-<count-1>`.
    ///
    /// # Errors
    /// A [`arbor_supervision::ChildError`] if a worker fails to start.
    pub(crate) async fn start_workers(
        &self,
        count: usize,
    ) -> Result<(), arbor_supervision::ChildError> {
        for i in 0..count {
            self.workers.start_child(i.to_string()).await?;
        }
        Ok(())
    }
}
