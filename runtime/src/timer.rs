//! Timers: deliver a message later, or every period, like OTP's
//! `erlang:send_after/3` and `timer:send_interval/3`.
//!
//! Timer messages go past the mailbox capacity (as OTP never drops them) and
//! an interval timer ends by itself when its target exits.

use std::time::Duration;

use tokio::task::AbortHandle;

use crate::error::SendError;

/// Something a timer can deliver `M` to: a lightweight actor or a ractor
/// actor run as an arbor process.
pub trait Recipient<M>: Send + Sync + 'static {
    /// Delivers a message the recipient asked for, past capacity limits.
    ///
    /// # Errors
    /// [`SendError::Closed`] once the recipient has exited.
    fn deliver(&self, msg: M) -> Result<(), SendError<M>>;
}

impl<M: Send + 'static> Recipient<M> for crate::ActorRef<M> {
    fn deliver(&self, msg: M) -> Result<(), SendError<M>> {
        self.send_system(msg)
    }
}

impl<M: ractor::Message> Recipient<M> for crate::RactorRef<M> {
    fn deliver(&self, msg: M) -> Result<(), SendError<M>> {
        self.send_system(msg)
    }
}

/// A running timer. Dropping it does not cancel it; [`TimerRef::cancel`] does.
#[derive(Debug)]
pub struct TimerRef(AbortHandle);

impl TimerRef {
    /// Cancels the timer; a message not yet delivered never will be.
    pub fn cancel(&self) {
        self.0.abort();
    }

    /// `true` once the timer has fired its last message or been cancelled.
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

/// Delivers `msg` to `to` after `delay`. Must be called within a tokio runtime.
pub fn send_after<M: Send + 'static>(delay: Duration, to: impl Recipient<M>, msg: M) -> TimerRef {
    let task = tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = to.deliver(msg);
    });
    TimerRef(task.abort_handle())
}

/// Delivers a fresh `make()` to `to` every `period`, the first after one
/// period, until cancelled or until `to` exits. Ticks missed while the
/// runtime was busy are skipped, not bunched up.
pub fn send_interval<M: Send + 'static>(
    period: Duration,
    to: impl Recipient<M>,
    make: impl Fn() -> M + Send + 'static,
) -> TimerRef {
    let task = tokio::spawn(async move {
        let start = tokio::time::Instant::now() + period;
        let mut ticks = tokio::time::interval_at(start, period.max(Duration::from_micros(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            ticks.tick().await;
            if let Err(SendError::Closed(_)) = to.deliver(make()) {
                return;
            }
        }
    });
    TimerRef(task.abort_handle())
}

/// Sleeps until `at`, or for ever when there is no deadline: one arm of a
/// `select!` whose deadline may be off.
pub async fn sleep_until_or_never(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
