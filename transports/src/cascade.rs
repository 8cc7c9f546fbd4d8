//! Cascade detection on the transports ([`arbor_mcp::cascade`]): one
//! [`Cascade`] per transport's sessions, shared by all the shards of its
//! supervisor, and the andon that stops the tree when one trips under
//! `action = "stop"`.

use arbor_mcp::McpServer;
use arbor_runtime::{ExitReason, ProcessRef};
use arbor_supervision::cascade::{Cascade, Trip};
use futures_util::future::select_all;

/// The cascade of the subtree named `subtree`, if the server detects them.
pub(crate) fn of(server: &McpServer, subtree: &str) -> Option<Cascade> {
    let config = server.config().cascade.as_ref()?;
    Some(Cascade::new(subtree, config.policy()))
}

/// Resolves with the first trip of `cascades` that asks the node to stop;
/// never if none does.
async fn stopped(cascades: Vec<Cascade>) -> Trip {
    if cascades.is_empty() {
        return std::future::pending().await;
    }
    let waits = cascades
        .into_iter()
        .map(|c| Box::pin(async move { c.stopped().await }));
    select_all(waits).await.0
}

/// Stops `tree` cleanly, its children drained as at any shutdown, with the
/// trip as its exit reason once one of `cascades` asks for it (andon). The
/// watch ends with the tree.
pub(crate) fn andon(cascades: Vec<Cascade>, tree: ProcessRef) {
    tokio::spawn(async move {
        tokio::select! {
            trip = stopped(cascades) => {
                tracing::error!(
                    target: "arbor::transports",
                    event = "andon",
                    why = %trip,
                    "stopping the transport tree: a cascade tripped under action = stop"
                );
                tree.stop(ExitReason::error(format!("andon: {trip}")));
            }
            _ = tree.wait() => {}
        }
    });
}
