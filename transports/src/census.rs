//! What each transport holds now, read off the transport tree: the
//! connections of each listener, the handshake-era HTTP sessions and the
//! 2026-07-28 HTTP requests in flight. Each is a sharded supervisor whose
//! shards' running children are what it holds, so a count costs one call
//! per shard, whatever the number of connections. Also each transport's
//! cascade detection, read off its first shard.

use arbor_runtime::CallError;
use arbor_supervision::cascade::Cascade;
use arbor_supervision::{find_path, ChaosError, SupervisorRef};

/// How many of one kind a transport holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    /// `tcp`, `ws` or `http`.
    pub transport: &'static str,
    /// `connections`, `sessions` (handshake-era HTTP) or `requests`
    /// (2026-07-28 HTTP requests in flight).
    pub what: &'static str,
    /// How many run now.
    pub active: usize,
}

/// Where each count lives in the tree [`crate::tree()`] builds.
const COUNTED: [(&str, &str, &str); 5] = [
    ("tcp", "connections", "connections/tcp-connections"),
    ("ws", "connections", "connections/ws-connections"),
    ("http", "connections", "connections/http/http-connections"),
    ("http", "sessions", "connections/http/http-sessions"),
    ("http", "requests", "connections/http/http-requests"),
];

/// What every transport served by the tree at `root` holds now; a
/// transport not served is left out.
///
/// # Errors
/// A [`CallError`] when a supervisor does not answer.
pub async fn held(root: &SupervisorRef) -> Result<Vec<Held>, CallError> {
    let mut held = Vec::new();
    for (transport, what, path) in COUNTED {
        let Some(shards) = shards_at(root, path).await? else {
            continue;
        };
        let mut active = 0;
        for shard in shards {
            active += shard.count_children().await?.active;
        }
        held.push(Held {
            transport,
            what,
            active,
        });
    }
    Ok(held)
}

/// Where each transport's sessions are supervised: the shards of each
/// share the transport's [`Cascade`].
const CASCADED: [&str; 3] = [
    "connections/tcp-connections",
    "connections/ws-connections",
    "connections/http/http-sessions",
];

/// The cascades of the transports served by the tree at `root`, one per
/// transport ([`arbor_mcp::cascade`]): to read their state and reset an
/// isolation. Empty when the server detects no cascades.
///
/// # Errors
/// A [`CallError`] when a supervisor does not answer.
pub async fn cascades(root: &SupervisorRef) -> Result<Vec<Cascade>, CallError> {
    let mut found = Vec::new();
    for path in CASCADED {
        // Every shard holds the same one: the first running answers.
        let first = shards_at(root, path)
            .await?
            .and_then(|s| s.into_iter().next());
        if let Some(shard) = first {
            found.extend(shard.cascade().await?);
        }
    }
    Ok(found)
}

/// The running shards of the sharded supervisor at `path`; `None` when the
/// tree has none there (a transport not served).
async fn shards_at(
    root: &SupervisorRef,
    path: &str,
) -> Result<Option<Vec<SupervisorRef>>, CallError> {
    let sharded = match find_path(root, path).await {
        Ok(found) => found,
        Err(ChaosError::Call(e)) => return Err(e),
        Err(_) => return Ok(None),
    };
    let Some(sharded) = SupervisorRef::from_process(&sharded.process) else {
        return Ok(None);
    };
    Ok(Some(
        sharded
            .which_children()
            .await?
            .iter()
            .filter_map(|c| c.process.as_ref().and_then(SupervisorRef::from_process))
            .collect(),
    ))
}
