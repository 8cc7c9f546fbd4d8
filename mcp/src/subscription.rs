//! Resource subscriptions: one lightweight actor per subscription.
//!
//! A subscription joins the server's process group for its (normalised) URI;
//! it watches its session and ends when the session does, which also takes
//! it out of the group. The process is the subscription's lifetime only: an
//! update does not wake it. Its membership carries the connection's outbound
//! queue and the notification, built once in its era's shape, and the
//! fan-out queues that frame directly (see `follow.rs`), so telling N
//! subscribers wakes N writers and nothing else.

use arbor_runtime::{
    spawn_with, Actor, ActorRef, Context, ExitReason, Flow, ProcessRef, SpawnOptions,
};

/// A subscription's messages: none, it is stopped or ends with its session.
#[derive(Debug)]
pub enum SubscriptionMsg {}

struct Subscription;

impl Actor for Subscription {
    type Msg = SubscriptionMsg;

    async fn handle(&mut self, msg: SubscriptionMsg, _ctx: &mut Context<Self>) -> Flow {
        match msg {}
    }
}

/// Starts a subscription that ends when `session` does.
pub(crate) async fn subscribe(
    session: &ProcessRef,
) -> Result<ActorRef<SubscriptionMsg>, arbor_runtime::SpawnError> {
    let sub = spawn_with(
        Subscription,
        SpawnOptions {
            mailbox_capacity: 1,
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
