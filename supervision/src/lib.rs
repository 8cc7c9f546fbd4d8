//! OTP supervision for arbor.
//!
//! A [`Supervisor`] starts [`ChildSpec`]s in order, restarts them by its
//! [`Strategy`] within a restart intensity, escalates past it, and stops them
//! in reverse order. A [`DynamicSupervisor`] (OTP's `simple_one_for_one`)
//! starts many children of one template at run time, and a
//! [`ShardedDynamicSupervisor`] spreads them over N of those. The [`chaos`]
//! hooks kill parts of a tree on purpose, and a [`TreeView`] shows a live
//! tree as text.

pub mod cascade;
pub mod chaos;
pub mod dynamic;
pub mod restart;
pub mod sharded;
pub mod spec;
pub mod supervisor;
pub mod tree;

pub use chaos::{
    descendants, find_path, kill_path, Chaos, ChaosError, Descendant, KillTarget, Killed,
};
pub use dynamic::{DynamicSupervisor, DynamicSupervisorRef};
pub use restart::RestartWindow;
pub use sharded::{ShardedDynamicRef, ShardedDynamicSupervisor};
pub use spec::{
    ChildHandle, ChildId, ChildKind, ChildSpec, IntoStarted, InvalidChild, Restart, Shutdown,
    StartFn, Started,
};
pub use supervisor::{
    AutoShutdown, ChildCounts, ChildError, ChildInfo, StartError, Strategy, Supervisor,
    SupervisorRef, SupervisorStatus,
};
pub use tree::TreeView;
