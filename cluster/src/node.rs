//! Joining a cluster: the connection to NATS, the shared key, and the
//! tasks that carry events between this node and the others.

use arbor_mcp::seal::SealKey;
use std::sync::Arc;

use arbor_mcp::McpServer;
use arbor_transports::http::forward::Forward;
use tokio::task::JoinHandle;

use crate::{bucket, fanout, ClusterConfig};

/// Why a node could not join.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The configuration cannot work.
    #[error("{0}")]
    Config(String),
    /// No NATS server answered.
    #[error("cannot reach NATS at {servers}: {reason}")]
    Connect {
        /// The servers dialled.
        servers: String,
        /// What went wrong.
        reason: String,
    },
    /// The cluster's JetStream bucket cannot be made or read (JetStream
    /// off, too few servers for the replicas, …).
    #[error("the cluster's bucket: {0}")]
    Bucket(String),
    /// The cluster's subject cannot be followed.
    #[error("cannot follow the cluster's events: {0}")]
    Subscribe(String),
    /// The server has joined a cluster already.
    #[error("the server has joined a cluster already")]
    AlreadyJoined,
}

/// A connection to the cluster, before a server joins it: where the
/// server's sealing key comes from.
#[derive(Debug)]
pub struct Cluster {
    config: ClusterConfig,
    node: String,
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    events: async_nats::jetstream::stream::Stream,
    seal_key: SealKey,
}

impl Cluster {
    /// Dials NATS, opens (or makes) the cluster's bucket and reads (or
    /// makes) the shared sealing key.
    ///
    /// # Errors
    /// [`ClusterError`]: the configuration, NATS, JetStream.
    pub async fn connect(config: ClusterConfig) -> Result<Cluster, ClusterError> {
        config.validate().map_err(ClusterError::Config)?;
        let node = config
            .node
            .clone()
            .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()));
        let servers = config.nats.join(",");
        let client = async_nats::ConnectOptions::new()
            .name(format!("arbor {} node {node}", config.name))
            .connection_timeout(std::time::Duration::from_secs(5))
            .connect(servers.as_str());
        let client = tokio::time::timeout(std::time::Duration::from_secs(10), client)
            .await
            .map_err(|_| ClusterError::Connect {
                servers: servers.clone(),
                reason: "no answer in 10 s".into(),
            })?
            .map_err(|e| ClusterError::Connect {
                servers: servers.clone(),
                reason: e.to_string(),
            })?;
        let js = async_nats::jetstream::new(client.clone());
        // A NATS cluster that is just starting answers only once it has
        // elected its JetStream leader.
        let deadline = tokio::time::Instant::now() + config.ready_timeout;
        let (events, seal_key) = loop {
            let ready = async {
                let bucket = bucket::open(&js, &config.name, config.replicas).await?;
                let events =
                    bucket::events(&js, &config.name, config.replicas, config.event_history)
                        .await?;
                Ok::<_, ClusterError>((events, bucket::seal_key(&bucket).await?))
            };
            match ready.await {
                Ok(ready) => break ready,
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(e) => {
                    tracing::info!(target: "arbor::cluster", error = %e, "JetStream not ready; trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
            }
        };
        Ok(Cluster {
            config,
            node,
            client,
            js,
            events,
            seal_key,
        })
    }

    /// The key every node of the cluster seals with: give it to
    /// [`ServerBuilder::seal_key`](arbor_mcp::ServerBuilder::seal_key).
    pub fn seal_key(&self) -> &SealKey {
        &self.seal_key
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// `server` joins: what its clients are told, every node's are, and
    /// the reverse. The node leaves when the returned [`Node`] drops.
    ///
    /// # Errors
    /// [`ClusterError::Subscribe`], [`ClusterError::AlreadyJoined`].
    pub async fn join(self, server: &McpServer) -> Result<Node, ClusterError> {
        let subject = fanout::subject(&self.config.name);
        // Following before this node publishes: the consumer exists once
        // this returns.
        let events = fanout::Follower::new(self.events.clone()).await?;
        // Numbered afresh each time the node starts: its incarnation.
        let origin = format!("{}#{:08x}", self.node, rand::random::<u32>());
        let (peers, publishing) = fanout::publisher(
            self.js.clone(),
            subject,
            origin.clone(),
            self.config.max_queued_events,
        );
        if server.join(peers).is_err() {
            publishing.abort();
            return Err(ClusterError::AlreadyJoined);
        }
        let receiving =
            fanout::subscriber(events, server.clone(), origin, self.config.event_history);
        let forward = Arc::new(crate::forward::NatsForward::new(
            self.client,
            self.config.name.clone(),
            self.node.clone(),
        ));
        Ok(Node {
            id: self.node,
            tasks: vec![publishing, receiving],
            forward,
        })
    }
}

/// A node in its cluster; leaves it when dropped.
#[derive(Debug)]
pub struct Node {
    id: String,
    tasks: Vec<JoinHandle<()>>,
    forward: Arc<crate::forward::NatsForward>,
}

impl Node {
    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How HTTP requests for other nodes' sessions reach them, and theirs
    /// this node's: give it to the transports
    /// ([`TransportConfig::forward`](arbor_transports::TransportConfig::forward)).
    pub fn forward(&self) -> Arc<dyn Forward> {
        self.forward.clone()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
