//! Each node's events in the order it published them, once each: what a
//! receiving node hands its server.
//!
//! A publisher numbers its events (per incarnation: a node that restarts
//! starts a new one) and publishes an event again when JetStream did not
//! acknowledge it, as when its NATS server died under it. JetStream drops
//! most repeats itself (`Nats-Msg-Id`); this drops the rest, and puts an
//! event republished behind later ones back in its place. A gap that stays
//! open for [`GAP_WAIT`] is given up: what waits behind it is delivered, and
//! the loss counted.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use arbor_mcp::cluster::Event;

/// How long events wait behind a missing one: longer than its publisher
/// keeps publishing it again ([`crate::fanout::GIVE_UP`]), so an event
/// republished after a NATS server's loss still lands in its place.
pub(crate) const GAP_WAIT: Duration = Duration::from_secs(30);

/// Events behind a gap, at most, per origin: past it the gap is given up.
const MAX_WAITING: usize = 4096;

/// One origin's place.
#[derive(Debug)]
struct Origin {
    /// The last event delivered.
    delivered: u64,
    /// Events that came before their turn, and since when the oldest waits.
    waiting: BTreeMap<u64, Event>,
    since: Option<Instant>,
    heard: Instant,
}

/// The receiving side's order, across origins.
#[derive(Debug, Default)]
pub(crate) struct Reorder {
    origins: HashMap<String, Origin>,
}

impl Reorder {
    /// Takes event `seq` of `origin`: the events now in turn, in order.
    pub(crate) fn take(
        &mut self,
        origin: &str,
        seq: u64,
        event: Event,
        now: Instant,
    ) -> Vec<Event> {
        let Some(place) = self.origins.get_mut(origin) else {
            // The first heard of an origin starts it: this node follows
            // the stream from when it joined, not from the origin's start.
            self.origins.insert(
                origin.to_string(),
                Origin {
                    delivered: seq,
                    waiting: BTreeMap::new(),
                    since: None,
                    heard: now,
                },
            );
            return vec![event];
        };
        place.heard = now;
        if seq <= place.delivered || place.waiting.contains_key(&seq) {
            metrics::counter!("arbor_cluster_events_repeated_total").increment(1);
            return Vec::new();
        }
        place.waiting.insert(seq, event);
        place.since.get_or_insert(now);
        let mut ready = place.drain_in_turn();
        if place.waiting.len() > MAX_WAITING {
            ready.extend(place.give_up_gap());
        }
        ready
    }

    /// Gives up the gaps open for [`GAP_WAIT`] by `now` and forgets origins
    /// unheard for `forget`: the events behind the gaps, in order.
    pub(crate) fn expire(&mut self, now: Instant, forget: Duration) -> Vec<Event> {
        let mut ready = Vec::new();
        for place in self.origins.values_mut() {
            if place
                .since
                .is_some_and(|since| now.saturating_duration_since(since) >= GAP_WAIT)
            {
                ready.extend(place.give_up_gap());
            }
        }
        self.origins.retain(|_, place| {
            !place.waiting.is_empty() || now.saturating_duration_since(place.heard) < forget
        });
        ready
    }
}

impl Origin {
    /// The waiting events that are now in turn.
    fn drain_in_turn(&mut self) -> Vec<Event> {
        let mut ready = Vec::new();
        while let Some(event) = self.waiting.remove(&(self.delivered + 1)) {
            self.delivered += 1;
            ready.push(event);
        }
        if self.waiting.is_empty() {
            self.since = None;
        }
        ready
    }

    /// Skips the first gap: what waits behind it, up to the next gap.
    fn give_up_gap(&mut self) -> Vec<Event> {
        let Some((&first, _)) = self.waiting.iter().next() else {
            return Vec::new();
        };
        metrics::counter!("arbor_cluster_events_lost_total")
            .increment(first.saturating_sub(self.delivered + 1));
        tracing::warn!(
            target: "arbor::cluster",
            from = self.delivered + 1,
            to = first - 1,
            "events never came; skipped"
        );
        self.delivered = first - 1;
        let ready = self.drain_in_turn();
        if !self.waiting.is_empty() {
            self.since = Some(Instant::now());
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> Event {
        Event::ResourceUpdated {
            uri: format!("file:///{n}"),
        }
    }

    fn uris(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Event::ResourceUpdated { uri } => uri.clone(),
                Event::ListChanged { list } => format!("{list:?}"),
            })
            .collect()
    }

    #[test]
    fn repeats_are_dropped_and_a_republished_event_goes_back_in_its_place() {
        let mut order = Reorder::default();
        let now = Instant::now();
        assert_eq!(uris(&order.take("a#1", 5, event(5), now)), ["file:///5"]);
        assert!(order.take("a#1", 5, event(5), now).is_empty(), "a repeat");
        // 6 was not acknowledged and comes again after 7 and 8.
        assert!(order.take("a#1", 7, event(7), now).is_empty());
        assert!(order.take("a#1", 8, event(8), now).is_empty());
        assert!(
            order.take("a#1", 8, event(8), now).is_empty(),
            "a repeat, waiting"
        );
        assert_eq!(
            uris(&order.take("a#1", 6, event(6), now)),
            ["file:///6", "file:///7", "file:///8"]
        );
        // Another origin (or a restarted node) has its own count.
        assert_eq!(uris(&order.take("a#2", 1, event(1), now)), ["file:///1"]);
        assert!(order.take("a#1", 7, event(7), now).is_empty(), "old repeat");
    }

    #[test]
    fn a_gap_that_stays_open_is_given_up_and_what_waited_is_delivered() {
        let mut order = Reorder::default();
        let now = Instant::now();
        order.take("a", 1, event(1), now);
        assert!(order.take("a", 3, event(3), now).is_empty());
        assert!(order.take("a", 4, event(4), now).is_empty());
        assert!(order
            .expire(now + GAP_WAIT / 2, Duration::from_secs(600))
            .is_empty());
        assert_eq!(
            uris(&order.expire(now + GAP_WAIT, Duration::from_secs(600))),
            ["file:///3", "file:///4"]
        );
        assert!(order.take("a", 2, event(2), now).is_empty(), "too late");
        assert_eq!(uris(&order.take("a", 5, event(5), now)), ["file:///5"]);
        // Unheard for long: forgotten.
        order.expire(now + Duration::from_secs(601), Duration::from_secs(600));
        assert!(order.origins.is_empty());
    }
}
