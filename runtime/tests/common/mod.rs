//! Shared test helpers: a probe actor that reports what happens to it.
#![allow(dead_code, missing_docs, unreachable_pub)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arbor_runtime::{
    spawn, spawn_with, Actor, ActorRef, Context, ExitReason, ExitSignal, Flow, Reply, SpawnOptions,
};
use tokio::sync::{mpsc, Semaphore};

/// A bound on every wait, so that a broken runtime fails a test instead of
/// hanging it. Never used to let something "probably happen".
pub const LIMIT: Duration = Duration::from_secs(10);

/// What a [`Probe`] reports, in the order it happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A blocking handler (`Gate`, `Hang`, `Spin`) has started.
    Entered,
    /// A blocking handler has been let through.
    Released,
    /// A `Push` was handled.
    Pushed(u32),
    /// A trapped exit signal arrived as a message.
    Trapped(ExitSignal),
    /// `terminate` ran.
    Terminated(ExitReason),
}

pub enum Msg {
    Ping(Reply<()>),
    Push(u32),
    Log(Reply<Vec<u32>>),
    Fail(ExitReason),
    Panic(&'static str),
    StopSelf(ExitReason),
    /// Waits for one permit of the semaphore.
    Gate(Arc<Semaphore>),
    /// Awaits forever.
    Hang,
    /// Busy-waits, without ever yielding, until the flag is set.
    Spin(Arc<AtomicBool>),
    KillSelf,
    /// Sends `exit(target, reason)` from this process.
    SendExit(arbor_runtime::ProcessRef, ExitReason),
    /// Answers with `current_pid()` as the handler sees it.
    WhoAmI(Reply<Option<arbor_runtime::Pid>>),
    Exit(ExitSignal),
    DropReply(Reply<()>),
}

pub struct Probe {
    log: Vec<u32>,
    events: mpsc::UnboundedSender<Event>,
}

pub type Events = mpsc::UnboundedReceiver<Event>;

pub fn probe() -> (Probe, Events) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        Probe {
            log: Vec::new(),
            events: tx,
        },
        rx,
    )
}

impl Probe {
    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }
}

impl Actor for Probe {
    type Msg = Msg;

    async fn handle(&mut self, msg: Msg, ctx: &mut Context<Self>) -> Flow {
        match msg {
            Msg::Ping(reply) => {
                reply.send(());
            }
            Msg::Push(n) => {
                self.log.push(n);
                self.emit(Event::Pushed(n));
            }
            Msg::Log(reply) => {
                reply.send(self.log.clone());
            }
            Msg::Fail(reason) => return Err(reason),
            Msg::Panic(text) => panic!("{text}"),
            Msg::StopSelf(reason) => ctx.stop(reason),
            Msg::Gate(gate) => {
                self.emit(Event::Entered);
                gate.acquire().await.expect("gate closed").forget();
                self.emit(Event::Released);
            }
            Msg::Hang => {
                self.emit(Event::Entered);
                std::future::pending::<()>().await;
            }
            Msg::Spin(release) => {
                self.emit(Event::Entered);
                while !release.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
                self.emit(Event::Released);
            }
            Msg::KillSelf => ctx.process().kill(),
            Msg::SendExit(target, reason) => target.exit(reason),
            Msg::WhoAmI(reply) => {
                reply.send(arbor_runtime::current_pid());
            }
            Msg::Exit(signal) => self.emit(Event::Trapped(signal)),
            Msg::DropReply(reply) => drop(reply),
        }
        Ok(())
    }

    async fn terminate(&mut self, reason: &ExitReason) {
        self.emit(Event::Terminated(reason.clone()));
    }
}

/// Spawns a probe with the default mailbox.
pub async fn start() -> (ActorRef<Msg>, Events) {
    let (p, rx) = probe();
    (spawn(p).await.expect("probe starts"), rx)
}

/// Spawns a probe with the given mailbox capacity.
pub async fn start_with_capacity(capacity: usize) -> (ActorRef<Msg>, Events) {
    let (p, rx) = probe();
    let options = SpawnOptions {
        mailbox_capacity: capacity,
    };
    (spawn_with(p, options).await.expect("probe starts"), rx)
}

/// Makes the probe trap exits, receiving them as [`Msg::Exit`].
pub fn trap(actor: &ActorRef<Msg>) {
    let me = actor.clone();
    actor.process().trap_exits(move |signal| {
        let _ = me.send_system(Msg::Exit(signal));
    });
}

/// The next event, failing the test if none comes within [`LIMIT`].
pub async fn next_event(events: &mut Events) -> Event {
    tokio::time::timeout(LIMIT, events.recv())
        .await
        .expect("timed out waiting for an event")
        .expect("event channel closed")
}

/// Asserts that no event is pending right now.
pub fn assert_no_event(events: &mut Events) {
    if let Ok(event) = events.try_recv() {
        panic!("unexpected event {event:?}");
    }
}

/// Round-trips a `Ping`, proving every message queued before it was handled.
pub async fn ping(actor: &ActorRef<Msg>) {
    actor
        .call(Msg::Ping, LIMIT)
        .await
        .expect("probe answers a ping");
}

/// Blocks the probe in a handler; returns the gate that releases it.
pub async fn block(actor: &ActorRef<Msg>, events: &mut Events) -> Arc<Semaphore> {
    let gate = Arc::new(Semaphore::new(0));
    actor
        .send_system(Msg::Gate(gate.clone()))
        .expect("probe is alive");
    assert_eq!(next_event(events).await, Event::Entered);
    gate
}

/// Waits for a process to exit, failing the test after [`LIMIT`].
pub async fn exited(process: &arbor_runtime::ProcessRef) -> ExitReason {
    tokio::time::timeout(LIMIT, process.wait())
        .await
        .expect("process did not exit in time")
}

pub fn err(text: &str) -> ExitReason {
    ExitReason::error(text)
}

/// Ends `process` with `reason` (`Killed` for a kill) and waits for it.
///
/// The monitor is set up *before* the exit, so when this returns every exit
/// callback registered earlier (registry, groups, links) has run. A monitor
/// set up after the exit may resolve while those are still running.
pub async fn exit_and_wait(process: &arbor_runtime::ProcessRef, reason: ExitReason) -> ExitReason {
    let down = process.monitor();
    process.exit(reason);
    tokio::time::timeout(LIMIT, down)
        .await
        .expect("process did not exit in time")
        .reason
}
