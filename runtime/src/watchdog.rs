//! The mailbox watchdog: samples the mailbox depth of the processes it
//! watches and acts on those above their threshold.
//!
//! Each watched process has a [`WatchPolicy`]: only report, shed load
//! (new messages are refused with [`crate::SendError::Overloaded`] until the
//! depth falls to half the threshold), or kill (its supervisor restarts it
//! with an empty mailbox). Every crossing emits a `tracing` warning and
//! increments the `arbor_watchdog_overloads_total` counter; the deepest
//! mailbox seen in a sample is the `arbor_watchdog_max_mailbox_depth` gauge.

use std::collections::HashMap;
use std::time::Duration;

use crate::actor::{spawn, Actor, ActorRef, Context, Flow};
use crate::error::{SendError, SpawnError};
use crate::process::{Pid, ProcessRef};
use crate::timer::{send_interval, TimerRef};

/// What the watchdog does with a process whose mailbox is too deep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchPolicy {
    /// Report it and do nothing else.
    LogOnly,
    /// Refuse new messages until the depth falls to half the threshold.
    Shed,
    /// Kill it, so that its supervisor restarts it.
    Kill,
}

/// Watchdog settings.
#[derive(Clone, Copy, Debug)]
pub struct WatchdogConfig {
    /// How often mailboxes are sampled. Default: 100 ms.
    pub interval: Duration,
    /// The threshold used by [`Watchdog::watch`]. Default: 1000 messages.
    pub default_threshold: usize,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig {
            interval: Duration::from_millis(100),
            default_threshold: 1000,
        }
    }
}

/// One action the watchdog took in a sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alarm {
    /// The process whose mailbox was over its threshold.
    pub pid: Pid,
    /// Its mailbox depth.
    pub depth: usize,
    /// The policy that was applied.
    pub policy: WatchPolicy,
}

struct Watched {
    process: ProcessRef,
    threshold: usize,
    policy: WatchPolicy,
}

/// The watchdog's messages.
#[derive(Debug)]
pub enum WatchdogMsg {
    /// Starts watching a process.
    Watch(ProcessRef, usize, WatchPolicy),
    /// Stops watching a process (and ends its load shedding).
    Unwatch(Pid),
    /// Samples every watched mailbox now and answers with the alarms raised.
    Sample(crate::Reply<Vec<Alarm>>),
    /// The periodic sample.
    Tick,
}

struct WatchdogActor {
    config: WatchdogConfig,
    watched: HashMap<Pid, Watched>,
    timer: Option<TimerRef>,
}

impl WatchdogActor {
    fn sample(&mut self) -> Vec<Alarm> {
        self.watched.retain(|_, w| w.process.is_alive());
        let mut alarms = Vec::new();
        let mut deepest = 0;
        for w in self.watched.values() {
            let depth = w.process.mailbox_len();
            deepest = deepest.max(depth);
            if w.policy == WatchPolicy::Shed && w.process.is_shedding() {
                if depth <= w.threshold / 2 {
                    w.process.set_shedding(false);
                    tracing::info!(pid = %w.process.pid(), depth, "mailbox drained, shedding ends");
                }
                continue;
            }
            if depth <= w.threshold {
                continue;
            }
            tracing::warn!(
                pid = %w.process.pid(),
                depth,
                threshold = w.threshold,
                policy = ?w.policy,
                "mailbox over threshold"
            );
            metrics::counter!("arbor_watchdog_overloads_total", "policy" => policy_name(w.policy))
                .increment(1);
            match w.policy {
                WatchPolicy::LogOnly => {}
                WatchPolicy::Shed => w.process.set_shedding(true),
                WatchPolicy::Kill => w.process.kill(),
            }
            alarms.push(Alarm {
                pid: w.process.pid(),
                depth,
                policy: w.policy,
            });
        }
        metrics::gauge!("arbor_watchdog_max_mailbox_depth").set(deepest as f64);
        alarms
    }
}

fn policy_name(policy: WatchPolicy) -> &'static str {
    match policy {
        WatchPolicy::LogOnly => "log",
        WatchPolicy::Shed => "shed",
        WatchPolicy::Kill => "kill",
    }
}

impl Actor for WatchdogActor {
    type Msg = WatchdogMsg;

    async fn init(&mut self, ctx: &mut Context<Self>) -> Flow {
        self.timer = Some(send_interval(
            self.config.interval,
            ctx.myself().clone(),
            || WatchdogMsg::Tick,
        ));
        Ok(())
    }

    async fn handle(&mut self, msg: WatchdogMsg, _ctx: &mut Context<Self>) -> Flow {
        match msg {
            WatchdogMsg::Watch(process, threshold, policy) => {
                self.watched.insert(
                    process.pid(),
                    Watched {
                        process,
                        threshold,
                        policy,
                    },
                );
            }
            WatchdogMsg::Unwatch(pid) => {
                if let Some(w) = self.watched.remove(&pid) {
                    w.process.set_shedding(false);
                }
            }
            WatchdogMsg::Sample(reply) => {
                reply.send(self.sample());
            }
            WatchdogMsg::Tick => {
                self.sample();
            }
        }
        Ok(())
    }

    async fn terminate(&mut self, _reason: &crate::ExitReason) {
        if let Some(timer) = self.timer.take() {
            timer.cancel();
        }
        for w in self.watched.values() {
            w.process.set_shedding(false);
        }
    }
}

/// A handle to a running watchdog, itself a lightweight actor that can be
/// supervised through [`Watchdog::process`].
#[derive(Clone, Debug)]
pub struct Watchdog {
    actor: ActorRef<WatchdogMsg>,
    config: WatchdogConfig,
}

impl Watchdog {
    /// Starts a watchdog. Must be called within a tokio runtime.
    ///
    /// # Errors
    /// Only if the watchdog's own start fails, which it does not by design.
    pub async fn spawn(config: WatchdogConfig) -> Result<Watchdog, SpawnError> {
        let actor = spawn(WatchdogActor {
            config,
            watched: HashMap::new(),
            timer: None,
        })
        .await?;
        Ok(Watchdog { actor, config })
    }

    /// The watchdog as a process.
    pub fn process(&self) -> ProcessRef {
        self.actor.process()
    }

    /// Watches `process` with the default threshold.
    ///
    /// # Errors
    /// [`SendError::Closed`] once the watchdog has exited.
    pub fn watch(
        &self,
        process: &ProcessRef,
        policy: WatchPolicy,
    ) -> Result<(), SendError<WatchdogMsg>> {
        self.watch_with(process, self.config.default_threshold, policy)
    }

    /// Watches `process` with its own threshold.
    ///
    /// # Errors
    /// [`SendError::Closed`] once the watchdog has exited.
    pub fn watch_with(
        &self,
        process: &ProcessRef,
        threshold: usize,
        policy: WatchPolicy,
    ) -> Result<(), SendError<WatchdogMsg>> {
        self.actor
            .send_system(WatchdogMsg::Watch(process.clone(), threshold, policy))
    }

    /// Stops watching `pid`.
    ///
    /// # Errors
    /// [`SendError::Closed`] once the watchdog has exited.
    pub fn unwatch(&self, pid: Pid) -> Result<(), SendError<WatchdogMsg>> {
        self.actor.send_system(WatchdogMsg::Unwatch(pid))
    }

    /// Samples every watched mailbox now, applies the policies and returns
    /// the alarms raised.
    ///
    /// # Errors
    /// A [`crate::CallError`] if the watchdog does not answer within a second.
    pub async fn sample(&self) -> Result<Vec<Alarm>, crate::CallError> {
        self.actor
            .call(WatchdogMsg::Sample, Duration::from_secs(1))
            .await
    }
}
