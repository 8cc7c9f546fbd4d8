//! `arbor serve --nodes N`: N node processes on the same ports (SO_REUSEPORT,
//! the kernel spreading connections across them) as one cluster, with a
//! NATS server of their own when none is named.
//!
//! The parent starts the NATS server (`nats-server -js`, from the PATH),
//! then each node as `arbor serve --cluster URL --node nI` with the same
//! configuration and the listeners' ports fixed, so that every node binds
//! the same ones. It prints the endpoints once, then each node's lines
//! prefixed with its id. SIGTERM or Ctrl-C stops the nodes in order, then
//! NATS.

use std::io::BufRead as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::config::ServeConfig;

/// Set for each node: it stops when its stdin (a pipe from the parent)
/// ends, as when the parent dies.
pub(crate) const WATCH_PARENT: &str = "ARBOR_NODE_WATCHES_PARENT";

/// The most nodes one `arbor serve` starts.
pub(crate) const MAX_NODES: usize = 16;

/// A child process, killed if the parent stops first.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `addr`, its port fixed: a free one for port 0.
fn fixed(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    let free = TcpListener::bind(addr)
        .and_then(|l| l.local_addr())
        .with_context(|| format!("finding a free port on {}", addr.ip()))?;
    Ok(free)
}

/// A NATS server with JetStream on a free loopback port.
fn nats_server(dir: &std::path::Path) -> anyhow::Result<(Owned, String)> {
    let addr = fixed("127.0.0.1:0".parse()?)?;
    std::fs::create_dir_all(dir)?;
    let child = Command::new("nats-server")
        .args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &addr.port().to_string(),
            "-sd",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context(
            "starting nats-server (Debian's package `nats-server`), or name one with --cluster",
        )?;
    let child = Owned(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "nats-server did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((child, format!("nats://{addr}")))
}

/// The arguments of this `arbor serve` for each node: without `--nodes`,
/// and without what the parent decides for every node (the listeners'
/// addresses, already in the configuration it hands down, and the cluster).
fn passed_on() -> Vec<String> {
    const DECIDED: [&str; 6] = ["--nodes", "--http", "--ws", "--tcp", "--admin", "--cluster"];
    let mut args = std::env::args().skip(1);
    let mut kept = Vec::new();
    while let Some(arg) = args.next() {
        if DECIDED.contains(&arg.as_str()) {
            args.next();
        } else if !DECIDED.iter().any(|d| arg.starts_with(&format!("{d}="))) {
            kept.push(arg);
        }
    }
    kept
}

/// Runs `n` nodes of `config` until a signal (or, `once`, until they stop).
pub(crate) async fn serve(
    n: usize,
    mut config: ServeConfig,
    cluster: Vec<String>,
    once: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=MAX_NODES).contains(&n),
        "--nodes: from 1 to {MAX_NODES}"
    );
    config.http.addr = fixed(config.http.addr)?;
    config.ws.addr = fixed(config.ws.addr)?;
    config.tcp.addr = fixed(config.tcp.addr)?;
    let dir = std::env::temp_dir().join(format!("arbor-nodes-{}", std::process::id()));
    let (nats, url) = match (cluster.first(), &config.cluster) {
        (Some(_), _) => (None, cluster.join(",")),
        (None, Some(c)) => (None, c.nats.join(",")),
        (None, None) => {
            let (nats, url) = nats_server(&dir.join("nats"))?;
            (Some(nats), url)
        }
    };
    let signal = crate::ShutdownSignal::install();
    let mut nodes = Vec::new();
    let (lines, mut said) = tokio::sync::mpsc::unbounded_channel::<(usize, String)>();
    for i in 1..=n {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .args(passed_on())
            .args(["--cluster", &url, "--node", &format!("n{i}")])
            .env("ARBOR_HTTP__ADDR", config.http.addr.to_string())
            .env("ARBOR_WS__ADDR", config.ws.addr.to_string())
            .env("ARBOR_TCP__ADDR", config.tcp.addr.to_string())
            // Each node its own admin listener.
            .env(
                "ARBOR_ADMIN__ADDR",
                SocketAddr::new(config.admin.addr.ip(), 0).to_string(),
            )
            .env("ARBOR_REUSE_PORT", "true")
            .env(WATCH_PARENT, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        // The pipe to its stdin stays open as long as this process lives.
        let mut child = command.spawn().context("starting a node")?;
        let out = child.stdout.take().context("a node's output")?;
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if lines.send((i, line)).is_err() {
                    break;
                }
            }
        });
        nodes.push(Owned(child));
    }
    drop(lines);
    // The first node's endpoints, once: every node serves them; the
    // others' lines wait until they are out.
    let mut printed_urls = false;
    let mut held = Vec::new();
    let stop = async {
        if once {
            std::future::pending::<()>().await;
        }
        signal.wait().await;
    };
    tokio::pin!(stop);
    // Whether a signal came (rather than every node ending on its own).
    let signalled = loop {
        tokio::select! {
            line = said.recv() => match line {
                Some((1, line)) if !printed_urls && line.contains("://") && !line.starts_with("admin") => {
                    crate::say(&line);
                }
                Some((i, line)) if i != 1 && !printed_urls => held.push((i, line)),
                Some((i, line)) => {
                    if !printed_urls {
                        printed_urls = true;
                        crate::say(&format!("cluster of {n} nodes on {url}"));
                        for (i, line) in held.drain(..) {
                            crate::say(&format!("[n{i}] {line}"));
                        }
                    }
                    crate::say(&format!("[n{i}] {line}"));
                }
                None => break false,
            },
            () = &mut stop => break true,
        }
    };
    if signalled {
        // SIGTERM: each node drains and stops in order.
        for node in &nodes {
            let _ = Command::new("kill").arg(node.0.id().to_string()).status();
        }
    }
    for node in &mut nodes {
        let _ = node.0.wait();
    }
    drop(nats);
    let _ = std::fs::remove_dir_all(&dir);
    crate::say("stopped: shutdown");
    Ok(())
}
