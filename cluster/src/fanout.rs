//! Fan-out between nodes on core NATS: one subject per cluster, each event
//! wrapped with the node it came from.
//!
//! Events go out through one task, in the order they were published; each
//! node reads the subject through one subscription, so one node's events
//! reach another in their order (NATS keeps a publisher's order).

use std::sync::Arc;

use arbor_mcp::cluster::{Event, Peers};
use arbor_mcp::McpServer;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// An event on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// The node that published it.
    origin: String,
    #[serde(flatten)]
    event: Event,
}

/// The other nodes, through the cluster's subject.
#[derive(Debug)]
pub(crate) struct NatsPeers {
    out: mpsc::Sender<Event>,
}

impl Peers for NatsPeers {
    fn publish(&self, event: &Event) {
        if self.out.try_send(event.clone()).is_err() {
            metrics::counter!("arbor_cluster_events_dropped_total").increment(1);
            tracing::warn!(target: "arbor::cluster", "event dropped: the queue to the other nodes is full");
        }
    }
}

/// The subject a cluster's events travel on.
pub(crate) fn subject(cluster: &str) -> String {
    format!("arbor.{cluster}.events")
}

/// Starts the publishing task: the peers to hand the server, and the task.
pub(crate) fn publisher(
    client: async_nats::Client,
    subject: String,
    node: String,
    queue: usize,
) -> (Arc<NatsPeers>, JoinHandle<()>) {
    let (out, mut events) = mpsc::channel::<Event>(queue);
    let task = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let envelope = Envelope {
                origin: node.clone(),
                event,
            };
            let Ok(payload) = serde_json::to_vec(&envelope) else {
                continue;
            };
            // The client queues it through a reconnection; an error means
            // the connection is gone for good.
            if let Err(e) = client.publish(subject.clone(), payload.into()).await {
                metrics::counter!("arbor_cluster_events_dropped_total").increment(1);
                tracing::warn!(target: "arbor::cluster", error = %e, "event not published");
            } else {
                metrics::counter!("arbor_cluster_events_published_total").increment(1);
            }
        }
    });
    (Arc::new(NatsPeers { out }), task)
}

/// Starts the task that hands other nodes' events to `server`.
pub(crate) fn subscriber(
    mut events: async_nats::Subscriber,
    server: McpServer,
    node: String,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(message) = events.next().await {
            match serde_json::from_slice::<Envelope>(&message.payload) {
                Ok(envelope) if envelope.origin == node => {}
                Ok(envelope) => {
                    metrics::counter!("arbor_cluster_events_received_total").increment(1);
                    server.deliver(&envelope.event);
                }
                Err(e) => {
                    tracing::warn!(target: "arbor::cluster", error = %e, "unreadable event ignored");
                }
            }
        }
    })
}
