//! Exit reasons and the signals that carry them.
//!
//! The rules are OTP's (`erlang(3)`, `exit/2`, `link/1`, `monitor/2`):
//!
//! | signal | reason | process not trapping exits | process trapping exits |
//! |---|---|---|---|
//! | link | `normal` | survives | gets [`ExitSignal`] |
//! | link | any other | exits with that reason | gets [`ExitSignal`] |
//! | [`ProcessRef::exit`] | `normal` | survives (exits `normal` if it sent the signal to itself) | gets [`ExitSignal`] |
//! | [`ProcessRef::exit`] | any other, [`ExitReason::Killed`] too | exits with that reason | gets [`ExitSignal`] |
//! | [`ProcessRef::kill`] (OTP's `kill`) | — | exits `killed` | exits `killed` |
//! | monitor | any | gets [`Down`] | gets [`Down`] |
//!
//! Linking to or monitoring a process that has already exited reports
//! [`ExitReason::NoProc`]; the reason it exited with stays readable through
//! [`ProcessRef::exit_reason`] and [`ProcessRef::wait`].
//!
//! [`ProcessRef::exit`]: crate::ProcessRef::exit
//! [`ProcessRef::kill`]: crate::ProcessRef::kill
//! [`ProcessRef::exit_reason`]: crate::ProcessRef::exit_reason
//! [`ProcessRef::wait`]: crate::ProcessRef::wait

use std::fmt;
use std::sync::Arc;

use crate::Pid;

/// Why a process ended.
///
/// Two predicates sort the reasons, as OTP does:
/// [`is_normal`](ExitReason::is_normal) (only [`ExitReason::Normal`]: the one
/// reason a linked process that does not trap exits survives) and
/// [`is_clean`](ExitReason::is_clean) (`normal`, `shutdown` and
/// `{shutdown, Term}`: a transient child is not restarted after them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// The process finished its work.
    Normal,
    /// The process was asked to stop, usually by its supervisor; also the
    /// reason of a supervisor that gave up past its restart intensity.
    Shutdown,
    /// OTP's `{shutdown, Term}`: an orderly stop that says why. A transient
    /// child is not restarted after it.
    ShutdownWith(Arc<str>),
    /// The process was killed without a chance to clean up.
    Killed,
    /// The process a link or monitor was set on had already exited.
    NoProc,
    /// The process failed: its handler returned an error or panicked.
    Error(Arc<str>),
}

impl ExitReason {
    /// An [`ExitReason::Error`] with the given description.
    pub fn error(description: impl fmt::Display) -> Self {
        ExitReason::Error(description.to_string().into())
    }

    /// OTP's `{shutdown, Term}`: an [`ExitReason::ShutdownWith`] saying why.
    pub fn shutdown_with(term: impl fmt::Display) -> Self {
        ExitReason::ShutdownWith(term.to_string().into())
    }

    /// `true` only for [`ExitReason::Normal`]: a linked process that does not
    /// trap exits survives this reason and dies of every other one.
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal)
    }

    /// `true` for `normal`, `shutdown` and `{shutdown, Term}`: the exits a
    /// transient child is not restarted after, and that are not crashes.
    pub fn is_clean(&self) -> bool {
        matches!(
            self,
            ExitReason::Normal | ExitReason::Shutdown | ExitReason::ShutdownWith(_)
        )
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::ShutdownWith(term) => write!(f, "{{shutdown, {term}}}"),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::NoProc => f.write_str("noproc"),
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
    /// Why it ended, or [`ExitReason::NoProc`] when it had already ended as
    /// the monitor was set.
    pub reason: ExitReason,
}

/// An exit signal, as a process that traps exits receives it: OTP's
/// `{'EXIT', From, Reason}`.
///
/// It comes from a linked process that ended, or from
/// [`ProcessRef::exit`](crate::ProcessRef::exit). A process that does not
/// trap exits never sees it: it dies of every reason but `normal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitSignal {
    /// The process that sent it: the linked process that ended, or the
    /// process that called `exit` ([`Pid::EXTERNAL`] from outside any
    /// process).
    pub from: Pid,
    /// Why.
    pub reason: ExitReason,
}
