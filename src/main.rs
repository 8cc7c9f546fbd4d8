//! The `arbor` command line.

use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Fault-tolerant MCP services on OTP-style supervision trees.
#[derive(Debug, Parser)]
#[command(name = "arbor", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves the demo MCP server. With `--stdio`, on stdin and stdout (both
    /// protocol eras). Without it, until the network transports land: starts
    /// the demo supervision tree, prints it, and runs until Ctrl-C or
    /// SIGTERM, then shuts it down in order.
    Serve {
        /// Serve MCP on stdin/stdout.
        #[arg(long)]
        stdio: bool,
        /// Worker shards under the sharded dynamic supervisor.
        #[arg(long, default_value_t = 4)]
        shards: usize,
        /// Workers to start.
        #[arg(long, default_value_t = 16)]
        workers: usize,
        /// Print the tree, then shut down instead of running until a signal.
        #[arg(long)]
        once: bool,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { stdio: true, .. } => serve_stdio().await,
            Command::Serve {
                shards,
                workers,
                once,
                ..
            } => serve(shards, workers, once).await,
        }
    })
}

async fn serve_stdio() -> anyhow::Result<()> {
    let server = arbor::demo_mcp::mcp_server().context("building the demo server")?;
    let reason = arbor::mcp::transport::serve_stdio(server)
        .await
        .context("serving stdio")?;
    tracing::info!(%reason, "stdio session ended");
    Ok(())
}

async fn serve(shards: usize, workers: usize, once: bool) -> anyhow::Result<()> {
    let tree = arbor::demo::DemoTree::start(shards)
        .await
        .context("starting the demo tree")?;
    tree.start_workers(workers)
        .await
        .context("starting the workers")?;
    println!("{}", arbor::demo::render(&tree.root).await?);
    println!(
        "{} workers registered; the tree runs until Ctrl-C",
        tree.registry.len()
    );
    if !once {
        shutdown_signal().await;
    }
    let reason = tokio::time::timeout(Duration::from_secs(30), tree.root.shutdown())
        .await
        .context("the tree did not shut down within 30 s")?;
    println!("tree stopped: {reason}");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
