//! Resource subscriptions: one lightweight actor per subscription.
//!
//! A subscription joins the server's process group for its (normalised) URI,
//! so an update fans out to every subscriber through the group; it watches
//! its session and ends when the session does, which also takes it out of the
//! group. Its notification is built once, in its era's shape, and queued on
//! the connection's outbound channel; if that is full the update is dropped
//! and counted (`arbor_mcp_subscription_updates_dropped_total`) rather than
//! stalling the fan-out.

use arbor_runtime::{
    spawn_with, Actor, ActorRef, Context, ExitReason, Flow, ProcessRef, SpawnOptions,
};

use crate::outbox::{Frame, Outbox};

/// A subscription's messages.
#[derive(Debug)]
pub enum SubscriptionMsg {
    /// The resource changed.
    Updated,
}

struct Subscription {
    out: Outbox,
    notification: Frame,
}

impl Actor for Subscription {
    type Msg = SubscriptionMsg;

    async fn handle(&mut self, msg: SubscriptionMsg, _ctx: &mut Context<Self>) -> Flow {
        match msg {
            SubscriptionMsg::Updated => {
                if self.out.try_send(self.notification.clone()).is_err() {
                    metrics_dropped();
                }
            }
        }
        Ok(())
    }
}

fn metrics_dropped() {
    metrics::counter!("arbor_mcp_subscription_updates_dropped_total").increment(1);
    tracing::debug!(target: "arbor::mcp", "subscription update dropped: outbound queue full or closed");
}

/// Starts a subscription that sends `notification` to `out` on each update,
/// and ends when `session` does.
pub(crate) async fn subscribe(
    session: &ProcessRef,
    out: Outbox,
    notification: Frame,
) -> Result<ActorRef<SubscriptionMsg>, arbor_runtime::SpawnError> {
    let sub = spawn_with(
        Subscription { out, notification },
        SpawnOptions {
            mailbox_capacity: 16,
        },
    )
    .await?;
    let process = sub.process();
    match session.on_exit(move |_| process.stop(ExitReason::Normal)) {
        // A subscription that ends first takes its watch off the session,
        // so subscribing and unsubscribing leaves nothing behind.
        Ok(watch) => {
            let session = session.clone();
            // Should the subscription already have ended, the session's
            // watch stays until the session ends: harmless.
            let _ = sub.process().on_exit(move |_| {
                session.demonitor(watch);
            });
        }
        // The session is already gone.
        Err(down) => sub.process().stop(down.reason),
    }
    Ok(sub)
}
