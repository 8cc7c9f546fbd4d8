//! `[cluster]`: where the NATS servers are and how this node joins.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a node joins its cluster.
///
/// # Examples
/// ```
/// let config: arbor_cluster::ClusterConfig =
///     serde_json::from_str(r#"{"nats": ["nats://127.0.0.1:4222"], "replicas": 3}"#).unwrap();
/// assert_eq!(config.name, "arbor");
/// assert_eq!(config.replicas, 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// NATS servers to dial (`nats://host:port`); any one will do, the
    /// client learns the rest of a NATS cluster from it.
    pub nats: Vec<String>,
    /// The cluster's name: its subject and key-value bucket are named
    /// after it, so several clusters may share one NATS. Letters, digits,
    /// `-` and `_`.
    #[serde(default = "default_name")]
    pub name: String,
    /// This node's id. Default: made at random when it joins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Copies JetStream keeps of the cluster's bucket: 1 on one NATS
    /// server, 3 on a NATS cluster of three (a copy per server survives
    /// one server's loss).
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// Events waiting to go out to the other nodes, at most; past it an
    /// event is dropped and counted (`arbor_cluster_events_dropped_total`),
    /// as a subscriber with a full queue misses an update.
    #[serde(default = "default_max_queued_events")]
    pub max_queued_events: usize,
    /// How long the event stream keeps an event: a node cut off from NATS
    /// for less reads on without a gap.
    #[serde(default = "default_event_history", with = "humantime_serde")]
    pub event_history: Duration,
    /// How long a joining node waits for JetStream to be ready (a NATS
    /// cluster that is just starting elects its leader first).
    #[serde(default = "default_ready_timeout", with = "humantime_serde")]
    pub ready_timeout: Duration,
}

fn default_event_history() -> Duration {
    Duration::from_secs(300)
}

fn default_ready_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_name() -> String {
    "arbor".into()
}

fn default_replicas() -> usize {
    1
}

fn default_max_queued_events() -> usize {
    4096
}

impl ClusterConfig {
    /// A cluster named `arbor` on `nats`, with the defaults.
    pub fn new<S: Into<String>>(nats: impl IntoIterator<Item = S>) -> Self {
        ClusterConfig {
            nats: nats.into_iter().map(Into::into).collect(),
            name: default_name(),
            node: None,
            replicas: default_replicas(),
            max_queued_events: default_max_queued_events(),
            event_history: default_event_history(),
            ready_timeout: default_ready_timeout(),
        }
    }

    /// Checks what cannot work.
    ///
    /// # Errors
    /// What is wrong, for the operator.
    pub fn validate(&self) -> Result<(), String> {
        if self.nats.is_empty() {
            return Err("cluster: `nats` names no server".into());
        }
        let plain = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !plain(&self.name) {
            return Err(format!(
                "cluster: `name` {:?} may hold only letters, digits, `-` and `_`",
                self.name
            ));
        }
        if let Some(node) = &self.node {
            if !plain(node) {
                return Err(format!(
                    "cluster: `node` {node:?} may hold only letters, digits, `-` and `_`"
                ));
            }
        }
        if self.replicas == 0 || self.replicas > 5 {
            return Err("cluster: `replicas` must be 1 to 5".into());
        }
        if self.event_history.is_zero() {
            return Err("cluster: `event_history` must be more than 0".into());
        }
        if self.max_queued_events == 0 {
            return Err("cluster: `max_queued_events` must be more than 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_they_become_subjects() {
        let mut config = ClusterConfig::new(["nats://127.0.0.1:4222"]);
        assert_eq!(config.validate(), Ok(()));
        config.name = "a.b".into();
        assert!(config.validate().is_err_and(|e| e.contains("`name`")));
        config.name = "ok".into();
        config.node = Some("n>1".into());
        assert!(config.validate().is_err_and(|e| e.contains("`node`")));
        config.node = None;
        config.replicas = 0;
        assert!(config.validate().is_err_and(|e| e.contains("replicas")));
        config.replicas = 1;
        config.nats.clear();
        assert!(config.validate().is_err_and(|e| e.contains("nats")));
    }
}
