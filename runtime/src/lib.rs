//! The arbor actor layer, on [`ractor`] and [`tokio`].
//!
//! Every actor, whatever runs it, is a *process*: it has a [`Pid`], an
//! [`ExitReason`] when it ends, links and monitors, and a mailbox whose depth
//! is readable. Two kinds exist:
//!
//! - [`actor`]: lightweight actors, one tokio task and one allocation each,
//!   for the per-connection and per-subscription work that scales to 100K+;
//! - [`bridge`]: ractor actors, for supervisors and other infrastructure.
//!
//! Around them: the [`registry`] (names, sharded), [`groups`] (process
//! groups), [`timer`] (send_after, send_interval) and the [`watchdog`]
//! (mailbox depth policies).

pub mod actor;
pub mod bridge;
mod census;
pub mod channel;
mod deadlock;
pub mod error;
pub mod exit;
pub mod groups;
pub mod process;
pub mod registry;
mod shards;
pub mod task;
pub mod timer;
pub mod watchdog;

pub use actor::{spawn, spawn_with, Actor, ActorRef, Context, Flow, Permit, SpawnOptions};
pub use bridge::{spawn_ractor, spawn_ractor_with, RactorRef};
pub use census::{process_counts, ProcessCounts};
pub use error::{CallError, Reply, SendError, SpawnError};
pub use exit::{Down, ExitReason, ExitSignal};
pub use groups::ProcessGroups;
pub use process::{current_pid, Monitor, Pid, ProcessInfo, ProcessKind, ProcessRef, WatchRef};
pub use registry::{RegistryError, ShardedRegistry};
pub use task::{spawn_task, Stopping};
pub use timer::TimerRef;
pub use watchdog::{WatchPolicy, Watchdog, WatchdogConfig};
