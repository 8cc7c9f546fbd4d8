//! Errors of sending, calling and spawning.

use std::fmt;

use crate::exit::ExitReason;

/// A message could not be delivered; the message is handed back.
pub enum SendError<M> {
    /// The process has exited.
    Closed(M),
    /// The mailbox holds as many messages as its capacity allows.
    Full(M),
    /// The process is shedding load (see [`crate::watchdog`]).
    Overloaded(M),
}

impl<M> SendError<M> {
    /// The message that was not delivered.
    pub fn into_inner(self) -> M {
        match self {
            SendError::Closed(m) | SendError::Full(m) | SendError::Overloaded(m) => m,
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            SendError::Closed(_) => "process has exited",
            SendError::Full(_) => "mailbox is full",
            SendError::Overloaded(_) => "process is overloaded",
        }
    }
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            SendError::Closed(_) => "Closed",
            SendError::Full(_) => "Full",
            SendError::Overloaded(_) => "Overloaded",
        };
        write!(f, "SendError::{name}(..)")
    }
}

impl<M> fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

impl<M> std::error::Error for SendError<M> {}

/// A request-response call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The process has exited.
    #[error("process has exited")]
    Closed,
    /// The mailbox was full.
    #[error("mailbox is full")]
    Full,
    /// The process is shedding load.
    #[error("process is overloaded")]
    Overloaded,
    /// No reply arrived in time.
    #[error("no reply within {0:?}")]
    Timeout(std::time::Duration),
    /// The process dropped the reply without answering.
    #[error("process dropped the request without replying")]
    NoReply,
    /// The call would wait on a process that waits, through these calls,
    /// on the caller: refused at once, instead of both waiting out their
    /// timeouts (a wait-for graph of the calls in flight). The cycle
    /// starts and ends with the caller.
    #[error("deadlock: {}", crate::deadlock::describe(.0))]
    Deadlock(Vec<crate::Pid>),
}

impl<M> From<SendError<M>> for CallError {
    fn from(e: SendError<M>) -> Self {
        match e {
            SendError::Closed(_) => CallError::Closed,
            SendError::Full(_) => CallError::Full,
            SendError::Overloaded(_) => CallError::Overloaded,
        }
    }
}

/// An actor could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpawnError {
    /// Its initialisation failed or panicked; it has exited with this reason.
    #[error("actor failed to start: {0}")]
    Init(ExitReason),
}

impl SpawnError {
    /// The reason the actor exited with.
    pub fn reason(&self) -> &ExitReason {
        match self {
            SpawnError::Init(r) => r,
        }
    }
}

/// The sending half of a call: answer it exactly once with [`Reply::send`].
pub struct Reply<R>(pub(crate) tokio::sync::oneshot::Sender<R>);

impl<R> Reply<R> {
    /// Answers the call; `false` if the caller has given up waiting.
    pub fn send(self, value: R) -> bool {
        self.0.send(value).is_ok()
    }
}

impl<R> fmt::Debug for Reply<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reply")
    }
}

/// Runs `send` with a fresh [`Reply`] and waits up to `timeout` for the answer.
pub(crate) async fn call<R, E>(
    send: impl FnOnce(Reply<R>) -> Result<(), E>,
    callee: crate::Pid,
    timeout: std::time::Duration,
) -> Result<R, CallError>
where
    CallError: From<E>,
{
    // Held while the reply is awaited: the edge of the wait-for graph.
    let _waiting = match crate::current_pid() {
        Some(caller) => Some(crate::deadlock::wait(caller, callee).map_err(CallError::Deadlock)?),
        None => None,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    send(Reply(tx))?;
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(CallError::NoReply),
        Err(_) => Err(CallError::Timeout(timeout)),
    }
}
