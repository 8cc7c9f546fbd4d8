//! The MCP conformance suite's server under test, built with arbor: every
//! fixture `@modelcontextprotocol/conformance` 0.2.0-alpha.12 expects of a
//! server, for the 2025-11-25 handshake era and the 2026-07-28 stateless
//! one (see `fixtures/`).
//!
//! ```text
//! cargo run --example conformance_server
//! ```
//!
//! It starts arbor's transport tree on loopback (free ports), prints one
//! URL per endpoint on stdout, and serves until Ctrl-C or SIGTERM, then
//! shuts the tree down in order. Point the suite at the `http://…/mcp` URL
//! once arbor serves HTTP.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;

mod fixtures;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before anything is printed: a signal sent as soon as the URLs appear
    // stops the tree in order instead of killing the process.
    let signal = Signal::install()?;
    let fixtures = fixtures::build().context("building the fixtures")?;
    let watcher = fixtures.watch(Duration::from_secs(3));
    let (root, endpoints) = arbor::transports::start(
        fixtures.server.clone(),
        arbor::transports::TransportConfig::default(),
    )
    .await
    .context("starting the transports")?;
    let mut out = std::io::stdout().lock();
    for url in endpoints.urls() {
        writeln!(out, "{url}")?;
    }
    out.flush()?;
    drop(out);

    signal.wait().await;
    watcher.abort();
    let reason = tokio::time::timeout(Duration::from_secs(30), root.shutdown())
        .await
        .context("the tree did not shut down within 30 s")?;
    eprintln!("stopped: {reason}");
    Ok(())
}

/// SIGTERM or SIGINT (Ctrl-C).
struct Signal {
    #[cfg(unix)]
    signals: (tokio::signal::unix::Signal, tokio::signal::unix::Signal),
}

impl Signal {
    fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let term = signal(SignalKind::terminate()).context("installing SIGTERM")?;
            let int = signal(SignalKind::interrupt()).context("installing SIGINT")?;
            Ok(Signal {
                signals: (term, int),
            })
        }
        #[cfg(not(unix))]
        Ok(Signal {})
    }

    async fn wait(self) {
        #[cfg(unix)]
        {
            let (mut term, mut int) = self.signals;
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
