//! Why a supervisor did not start, and why a child operation failed.

use std::time::Duration;

use arbor_runtime::{CallError, ExitReason, Pid, SpawnError};

use crate::cascade::Isolation;
use crate::spec::{ChildId, InvalidChild};

/// Why a supervisor did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// A child failed to start.
    #[error("child {id:?} failed to start: {reason}")]
    ChildFailed {
        /// The child.
        id: ChildId,
        /// Why it failed.
        reason: ExitReason,
    },
    /// Two children share an id.
    #[error("duplicate child id {0:?}")]
    DuplicateChildId(ChildId),
    /// A child's specification cannot run under this supervisor.
    #[error(transparent)]
    InvalidChild(#[from] InvalidChild),
    /// The restart period must be positive.
    #[error("restart period must be positive, got {0:?}")]
    InvalidPeriod(Duration),
    /// The supervisor process itself failed to start.
    #[error("supervisor failed to start: {0}")]
    Spawn(SpawnError),
}

/// Why a child operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChildError {
    /// No child has this id.
    #[error("no child {0:?}")]
    NotFound(ChildId),
    /// No child has this pid.
    #[error("no child with pid {0}")]
    NoSuchPid(Pid),
    /// A child with this id is running, with this pid (OTP's
    /// `already_started`).
    #[error("a child with this id is already running as {0}")]
    AlreadyStarted(Pid),
    /// A child with this id exists, not running (OTP's `already_present`).
    #[error("child {0:?} already exists")]
    AlreadyPresent(ChildId),
    /// The specification cannot run under this supervisor.
    #[error(transparent)]
    InvalidChild(#[from] InvalidChild),
    /// The child is running; stop it first.
    #[error("child {0:?} is running")]
    Running(ChildId),
    /// The dynamic supervisor holds its maximum number of children.
    #[error("supervisor already has its maximum of {0} children")]
    MaxChildren(usize),
    /// The child failed to start.
    #[error("child {id:?} failed to start: {reason}")]
    StartFailed {
        /// The child.
        id: ChildId,
        /// Why it failed.
        reason: ExitReason,
    },
    /// The supervisor's cascade tripped: it starts nothing until the
    /// isolation lifts ([`crate::cascade`]).
    #[error("{0}")]
    Isolated(Isolation),
    /// The operation is not available on a dynamic supervisor.
    #[error("not supported by a dynamic supervisor")]
    Dynamic,
    /// The supervisor did not answer.
    #[error("supervisor call failed: {0}")]
    Call(#[from] CallError),
}
