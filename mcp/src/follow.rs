//! Who follows what: the server's followers of list changes and resource
//! updates, and how each is told.
//!
//! A follower is a membership of the server's process groups, keyed by the
//! [`Topic`] it follows and carrying how it is told ([`Follower`]), so a
//! fan-out needs no downcast of the process it finds. A membership ends with
//! its process: a subscription when it is cancelled or its session ends, a
//! handshake-era session when it ends.

use arbor_runtime::{ActorRef, ProcessGroups, ProcessRef};

use crate::jsonrpc::{Message, Notification};
use crate::model::ListKind;
use crate::outbox::{Frame, Outbox};
use crate::subscription::SubscriptionMsg;

/// What can be followed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Topic {
    /// A list's changes.
    List(ListKind),
    /// Every list's changes: how a handshake-era session follows them all
    /// with one membership (one exit callback, one entry) instead of one a
    /// list, which was a tenth of an idle connection's memory.
    Lists,
    /// One resource's updates, by its normalised URI.
    Resource(Box<str>),
}

/// How a follower is told.
#[derive(Clone, Debug)]
pub(crate) enum Follower {
    /// A subscription: its notification (built once, in its era's shape)
    /// goes on its connection's queue.
    Subscription {
        /// The connection's outbound queue.
        out: Outbox,
        /// `notifications/resources/updated` (or the listen's list change),
        /// as this subscriber is told it.
        notification: Frame,
    },
    /// A handshake-era session following the lists from its initialization:
    /// the bare `notifications/*/list_changed` goes on its queue.
    Session(Outbox),
}

impl Follower {
    /// Tells it that `topic` changed, best effort (a full queue misses it);
    /// `true` if it was told. `changed` is the bare notification, built
    /// once per fan-out by the first session that needs it.
    fn tell(&self, topic: &Topic, changed: &mut Option<Frame>) -> bool {
        match (self, topic) {
            (Follower::Subscription { out, notification }, _) => {
                let queued = out.try_send(notification.clone()).is_ok();
                if !queued {
                    metrics::counter!("arbor_mcp_subscription_updates_dropped_total").increment(1);
                    tracing::debug!(target: "arbor::mcp", "subscription update dropped: outbound queue full or closed");
                }
                queued
            }
            (Follower::Session(out), Topic::List(kind)) => {
                let frame = changed.get_or_insert_with(|| {
                    let n = Message::Notification(Notification {
                        method: kind.notification().as_str().into(),
                        params: None,
                    });
                    Frame::new(&n, None)
                });
                out.try_send(frame.clone()).is_ok()
            }
            // Sessions follow resources through subscriptions only, and
            // are told of a list by its kind.
            (Follower::Session(_), Topic::Resource(_) | Topic::Lists) => false,
        }
    }
}

/// The server's followers, by topic.
#[derive(Clone, Debug, Default)]
pub(crate) struct Followers(ProcessGroups<Topic, Follower>);

impl Followers {
    /// `process` follows `topic` until it exits, told through `follower`.
    pub(crate) fn follow(&self, topic: Topic, process: &ProcessRef, follower: Follower) -> bool {
        self.0.join_with(topic, process, follower)
    }

    /// A subscription process follows `topic` until it ends; each update
    /// queues `notification` on `out`.
    pub(crate) fn subscribe(
        &self,
        topic: Topic,
        sub: &ActorRef<SubscriptionMsg>,
        out: Outbox,
        notification: Frame,
    ) -> bool {
        self.follow(
            topic,
            &sub.process(),
            Follower::Subscription { out, notification },
        )
    }

    /// Tells every follower of `topic` (of a list: also those that follow
    /// every list); returns how many were told.
    pub(crate) fn tell(&self, topic: &Topic) -> usize {
        let (mut told, mut changed) = (0, None);
        let mut tell = |_: &ProcessRef, follower: &Follower| {
            told += usize::from(follower.tell(topic, &mut changed));
        };
        self.0.for_each_value(topic, &mut tell);
        if let Topic::List(_) = topic {
            self.0.for_each_value(&Topic::Lists, &mut tell);
        }
        told
    }

    /// How many follow `topic`.
    pub(crate) fn count(&self, topic: &Topic) -> usize {
        self.0.member_count(topic)
    }
}
