//! Exit reasons and the signals that carry them.

use std::fmt;
use std::sync::Arc;

use crate::Pid;

/// Why a process ended.
///
/// As in OTP, [`ExitReason::Normal`] and [`ExitReason::Shutdown`] are *normal*
/// exits: a linked process that does not trap exits survives them, and a
/// transient child is not restarted after them. Every other reason is abnormal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// The process finished its work.
    Normal,
    /// The process was asked to stop, usually by its supervisor.
    Shutdown,
    /// The process was killed without a chance to clean up.
    Killed,
    /// A supervisor restarted its children more often than its restart
    /// intensity allows and gave up, escalating to its own parent.
    MaxRestartIntensity,
    /// The process failed: its handler returned an error or panicked.
    Error(Arc<str>),
}

impl ExitReason {
    /// An [`ExitReason::Error`] with the given description.
    pub fn error(description: impl fmt::Display) -> Self {
        ExitReason::Error(description.to_string().into())
    }

    /// `true` for [`ExitReason::Normal`] and [`ExitReason::Shutdown`].
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal | ExitReason::Shutdown)
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::MaxRestartIntensity => f.write_str("max_restart_intensity"),
            ExitReason::Error(e) => write!(f, "error: {e}"),
        }
    }
}

/// Lets a handler use `?` on any error: the process then exits with
/// [`ExitReason::Error`] carrying the error's text.
impl<E: std::error::Error> From<E> for ExitReason {
    fn from(e: E) -> Self {
        ExitReason::error(e)
    }
}

/// The one-shot message a monitor delivers when its target ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Down {
    /// The process that ended.
    pub pid: Pid,
    /// Why it ended.
    pub reason: ExitReason,
}

/// The signal a process receives when a process linked to it ends.
///
/// Only processes that trap exits see it as a message; the others die with the
/// same reason when it is abnormal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitSignal {
    /// The linked process that ended.
    pub from: Pid,
    /// Why it ended.
    pub reason: ExitReason,
}
