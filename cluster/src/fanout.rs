//! Fan-out between nodes through the cluster's JetStream event stream: one
//! subject per cluster, each event wrapped with the node it came from.
//!
//! Events go out through one task, numbered, in the order they were
//! published, with up to [`IN_FLIGHT`] waiting for JetStream's
//! acknowledgement; one that is not acknowledged goes again. Each node
//! reads the stream from the moment it joined ([`Follower`]) and puts each
//! origin's events in order ([`crate::order`]). JetStream
//! keeps the events (replicated, for `event_history`), so a node whose
//! NATS server dies reads on from another without a gap.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arbor_mcp::cluster::{Event, Peers};
use arbor_mcp::McpServer;
use async_nats::jetstream::{self, consumer};
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::node::ClusterError;
use crate::order::Reorder;

/// How long an event not acknowledged is published again: less than a
/// receiver waits for it ([`crate::order::GAP_WAIT`]).
pub(crate) const GIVE_UP: Duration = Duration::from_secs(25);

/// Events published and not yet acknowledged, at most.
const IN_FLIGHT: usize = 256;

/// How long one pull of the event stream waits.
const PULL_EXPIRES: Duration = Duration::from_secs(2);

/// An event on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// The node that published it, and its incarnation.
    origin: String,
    /// Its number among the origin's events, from 1.
    seq: u64,
    #[serde(flatten)]
    event: Event,
}

/// The other nodes, through the cluster's event stream.
#[derive(Debug)]
pub(crate) struct NatsPeers {
    out: mpsc::Sender<Event>,
}

impl Peers for NatsPeers {
    fn publish(&self, event: &Event) {
        if self.out.try_send(event.clone()).is_err() {
            dropped("the queue to the other nodes is full");
        }
    }
}

fn dropped(why: &str) {
    metrics::counter!("arbor_cluster_events_dropped_total").increment(1);
    tracing::warn!(target: "arbor::cluster", "event dropped: {why}");
}

/// The subject a cluster's events travel on.
pub(crate) fn subject(cluster: &str) -> String {
    format!("arbor.{cluster}.events")
}

/// One numbered event, ready to go.
#[derive(Clone, Debug)]
struct Outgoing {
    id: String,
    payload: bytes::Bytes,
}

/// Sends `out`; the acknowledgement to wait for, if it went.
async fn send(
    js: &jetstream::Context,
    subject: &str,
    out: &Outgoing,
) -> Option<jetstream::context::PublishAckFuture> {
    let message = jetstream::message::PublishMessage::build()
        .payload(out.payload.clone())
        .message_id(&out.id);
    js.send_publish(subject.to_string(), message).await.ok()
}

/// Publishes `out` and waits for its acknowledgement: whether it came.
async fn publish(js: &jetstream::Context, subject: &str, out: &Outgoing) -> bool {
    match send(js, subject, out).await {
        Some(ack) => ack.await.is_ok(),
        None => false,
    }
}

/// Publishes `out` again until JetStream takes it, or `give_up` passes.
async fn republish(js: &jetstream::Context, subject: &str, out: &Outgoing, give_up: Duration) {
    let deadline = tokio::time::Instant::now() + give_up;
    let mut pause = Duration::from_millis(50);
    loop {
        if publish(js, subject, out).await {
            metrics::counter!("arbor_cluster_events_published_total").increment(1);
            return;
        }
        if tokio::time::Instant::now() + pause >= deadline {
            return dropped(&format!("{} not acknowledged in {give_up:?}", out.id));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// Starts the publishing task: the peers to hand the server, and the task.
/// An event JetStream does not acknowledge is published again, with those
/// after it, in order, for up to [`GIVE_UP`].
pub(crate) fn publisher(
    js: jetstream::Context,
    subject: String,
    origin: String,
    queue: usize,
) -> (Arc<NatsPeers>, JoinHandle<()>) {
    let give_up = GIVE_UP;
    let (out, mut events) = mpsc::channel::<Event>(queue);
    let task = tokio::spawn(async move {
        let mut seq = 0u64;
        let mut in_flight = FuturesOrdered::new();
        loop {
            tokio::select! {
                event = events.recv(), if in_flight.len() < IN_FLIGHT => {
                    let Some(event) = event else { break };
                    let envelope = Envelope { origin: origin.clone(), seq: seq + 1, event };
                    let Ok(payload) = serde_json::to_vec(&envelope) else { continue };
                    seq += 1;
                    let out = Outgoing { id: format!("{origin}-{seq}"), payload: payload.into() };
                    // Sent here, one after another, so they reach JetStream
                    // in order; only the acknowledgements are waited on
                    // together.
                    let ack = send(&js, &subject, &out).await;
                    in_flight.push_back(async move {
                        let acked = match ack {
                            Some(ack) => ack.await.is_ok(),
                            None => false,
                        };
                        (out, acked)
                    });
                }
                Some((out, acked)) = in_flight.next(), if !in_flight.is_empty() => {
                    if acked {
                        metrics::counter!("arbor_cluster_events_published_total").increment(1);
                        continue;
                    }
                    // Trouble (a NATS server lost, say): this one and every
                    // one behind it that fails go again, one at a time.
                    republish(&js, &subject, &out, give_up).await;
                    while let Some((out, acked)) = in_flight.next().await {
                        if !acked {
                            republish(&js, &subject, &out, give_up).await;
                        }
                    }
                }
            }
        }
    });
    (Arc::new(NatsPeers { out }), task)
}

/// Aborts its task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One node's reading of the event stream: an ephemeral consumer on one
/// NATS server, made again from where it stopped when that server is lost.
///
/// Not the client's ordered consumer: it backs off to 10 s between tries
/// to make itself again, which would leave a node deaf that long after a
/// NATS server dies; this one tries every [`RETRY`].
pub(crate) struct Follower {
    stream: jetstream::stream::Stream,
    messages: consumer::pull::Stream,
    /// The stream sequence of the last event read (or, before any, of the
    /// last one before this node joined).
    last: u64,
}

/// Between two tries to follow the stream again.
const RETRY: Duration = Duration::from_millis(250);

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("last", &self.last)
            .finish()
    }
}

impl Follower {
    /// Follows `stream` from now on: events published after this returns.
    pub(crate) async fn new(stream: jetstream::stream::Stream) -> Result<Follower, ClusterError> {
        // From a sequence, not "new": the same start holds when the
        // consumer is made again before anything was read.
        let last = stream
            .get_info()
            .await
            .map_err(|e| ClusterError::Subscribe(e.to_string()))?
            .state
            .last_sequence;
        let messages = Self::open(&stream, last).await?;
        Ok(Follower {
            stream,
            messages,
            last,
        })
    }

    async fn open(
        stream: &jetstream::stream::Stream,
        after: u64,
    ) -> Result<consumer::pull::Stream, ClusterError> {
        let deliver_policy = consumer::DeliverPolicy::ByStartSequence {
            start_sequence: after + 1,
        };
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                deliver_policy,
                ack_policy: consumer::AckPolicy::None,
                memory_storage: true,
                num_replicas: 1,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(|e| ClusterError::Subscribe(e.to_string()))?;
        // A heartbeat each second while idle: two missed tell that the
        // consumer's server is gone.
        consumer
            .stream()
            .max_messages_per_batch(500)
            .expires(PULL_EXPIRES)
            .heartbeat(PULL_EXPIRES / 2)
            .messages()
            .await
            .map_err(|e| ClusterError::Subscribe(e.to_string()))
    }

    /// The next event's payload, in the stream's order; follows the stream
    /// again, from after the last one read, when the consumer is lost.
    pub(crate) async fn next(&mut self) -> bytes::Bytes {
        loop {
            match self.messages.next().await {
                Some(Ok(message)) => {
                    let Ok(info) = message.info() else { continue };
                    let seq = info.stream_sequence;
                    // A consumer made again may hand over what was read.
                    if seq <= self.last {
                        continue;
                    }
                    self.last = seq;
                    return message.payload.clone();
                }
                Some(Err(e)) => {
                    tracing::info!(target: "arbor::cluster", error = %e, "event stream lost; following it again");
                }
                None => {}
            }
            self.messages = loop {
                match Self::open(&self.stream, self.last).await {
                    Ok(messages) => break messages,
                    Err(e) => {
                        tracing::debug!(target: "arbor::cluster", error = %e, "not yet");
                        tokio::time::sleep(RETRY).await;
                    }
                }
            };
            metrics::counter!("arbor_cluster_event_stream_refollowed_total").increment(1);
        }
    }
}

/// Starts the task that hands other nodes' events to `server`, each
/// origin's in its order, once each.
pub(crate) fn subscriber(
    mut events: Follower,
    server: McpServer,
    origin: String,
    forget: Duration,
) -> JoinHandle<()> {
    // The stream is read by a task of its own: the tick below must not
    // cut short the following again that `next` may be doing.
    let (payloads, mut incoming) = mpsc::channel::<bytes::Bytes>(1024);
    let reading = tokio::spawn(async move {
        loop {
            if payloads.send(events.next().await).await.is_err() {
                return;
            }
        }
    });
    tokio::spawn(async move {
        let _reading = AbortOnDrop(reading);
        let mut order = Reorder::default();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let ready = tokio::select! {
                payload = incoming.recv() => {
                    let Some(payload) = payload else { break };
                    match serde_json::from_slice::<Envelope>(&payload) {
                        Ok(envelope) if envelope.origin == origin => continue,
                        Ok(envelope) => order.take(&envelope.origin, envelope.seq, envelope.event, Instant::now()),
                        Err(e) => {
                            tracing::warn!(target: "arbor::cluster", error = %e, "unreadable event ignored");
                            continue;
                        }
                    }
                }
                _ = tick.tick() => order.expire(Instant::now(), forget),
            };
            for event in ready {
                metrics::counter!("arbor_cluster_events_received_total").increment(1);
                server.deliver(&event);
            }
        }
    })
}
