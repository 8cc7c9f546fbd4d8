//! The `arbor` command line.

mod admin_cli;
mod bench;
mod client_cli;
mod config;
mod demo_server;
mod nodes;
mod token_cli;

use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Fault-tolerant MCP services on OTP-style supervision trees.
#[derive(Debug, Parser)]
#[command(name = "arbor", version, about)]
struct Cli {
    /// How log lines are written to stderr: `human` (text) or `json` (one
    /// object per line, with the fields of the request it belongs to:
    /// session, request_id, method, trace_id). Which lines: RUST_LOG
    /// (default `warn`).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "human",
        env = "ARBOR_LOG_FORMAT"
    )]
    log_format: LogFormat,
    /// Export spans (each request's, parented on the client's W3C trace)
    /// to this OpenTelemetry collector, OTLP over HTTP with JSON, such as
    /// `http://127.0.0.1:4318/v1/traces` (built with `--features otel`).
    #[cfg(feature = "otel")]
    #[arg(long, global = true, env = "ARBOR_OTLP_ENDPOINT", value_name = "URL")]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Text for people.
    Human,
    /// One JSON object per line, for machines.
    Json,
}

/// What must outlive the program's work for its logs to be complete: the
/// OpenTelemetry pipeline, flushed when this is dropped.
struct Logs {
    #[cfg(feature = "otel")]
    otel: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Logs {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.otel.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("arbor: flushing spans to the collector: {e}");
            }
        }
    }
}

fn init_logs(cli: &Cli) -> anyhow::Result<Logs> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines = match cli.log_format {
        // Colour codes only for a terminal: a log file or a pipe gets text.
        LogFormat::Human => lines
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        // The innermost span's fields (a request's) on every line, flat.
        LogFormat::Json => lines
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(lines.with_filter(filter));
    #[cfg(feature = "otel")]
    {
        let Some(endpoint) = &cli.otlp_endpoint else {
            registry.init();
            return Ok(Logs { otel: None });
        };
        use opentelemetry::trace::TracerProvider as _;
        use opentelemetry_otlp::{Protocol, WithExportConfig as _};
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_endpoint(endpoint)
            .build()
            .context("--otlp-endpoint")?;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name("arbor")
                    .build(),
            )
            .build();
        // Spans at info and above (every request's), whatever RUST_LOG
        // says of the lines on stderr.
        let spans = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("arbor"))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
        registry.with(spans).init();
        Ok(Logs {
            otel: Some(provider),
        })
    }
    #[cfg(not(feature = "otel"))]
    {
        registry.init();
        Ok(Logs {})
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves the demo MCP server to clients of both protocol eras: with
    /// `--stdio` on stdin/stdout, otherwise on every network transport on
    /// loopback (one line per endpoint is printed), until Ctrl-C or SIGTERM,
    /// then shuts the supervision tree down in order.
    Serve {
        /// Serve MCP on stdin/stdout.
        #[arg(long)]
        stdio: bool,
        #[command(flatten)]
        flags: Box<ServeFlags>,
    },
    /// Works with configuration files: `arbor config --print-default`
    /// writes the documented default file.
    Config {
        /// Print every key with its default, as a file `--config` reads.
        #[arg(long, required = true)]
        print_default: bool,
    },
    /// Prints a running server's supervision tree, from its admin listener.
    Tree {
        #[command(flatten)]
        admin: admin_cli::AdminTarget,
        /// The subtree to print (child ids joined by `/`).
        #[arg(long, default_value = "")]
        path: String,
        /// The most children shown per supervisor.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Kills the process at PATH in a running server's tree.
    Kill {
        #[command(flatten)]
        admin: admin_cli::AdminTarget,
        /// The process's path (child ids joined by `/`).
        #[arg(required_unless_present = "node")]
        path: Option<String>,
        /// Kill the whole node instead, as SIGKILL would (exit code 137):
        /// a node lost to its cluster.
        #[arg(long, conflicts_with = "path")]
        node: bool,
    },
    /// Lifts a transport's isolation after its sessions failed in cascade
    /// (`tcp-connections`, `ws-connections`, `http`; none named: every
    /// one), then prints each transport's cascade state.
    Reset {
        #[command(flatten)]
        admin: admin_cli::AdminTarget,
        /// The cascade's subtree.
        subtree: Option<String>,
    },
    /// Kills random processes of a subtree: `--count N` at once, or
    /// `--rate N/s --for 30s`; prints what it killed and the seed.
    Chaos {
        #[command(flatten)]
        admin: admin_cli::AdminTarget,
        #[command(flatten)]
        run: admin_cli::ChaosArgs,
    },
    /// Measures servers side by side: holds connections of every kind,
    /// fans an update out to them, drives requests; prints a table of
    /// medians (and `--json FILE`). `arbor bench --server NAME=COMMAND`
    /// adds a peer.
    Bench {
        #[command(flatten)]
        args: bench::BenchArgs,
    },
    /// The chaos soak: holds sessions on every transport, calls a keyed
    /// tool with retries while chaos kills a share of the sessions, then
    /// reports answers lost or run twice, latency, and processes,
    /// descriptors and memory before and after.
    Soak {
        #[command(flatten)]
        args: bench::soak::SoakArgs,
    },
    /// Signs a demo access token with a local issuer's key (to try a server
    /// that checks tokens, as `examples/auth/arbor.toml` configures), or
    /// prints that key's JWKS (`--print-jwks`).
    Token {
        #[command(flatten)]
        args: token_cli::TokenArgs,
    },
    /// Lists a server's tools: `arbor tools URL` or `arbor tools -- COMMAND…`.
    Tools {
        /// The server's URL: http://…/mcp (Streamable HTTP), http://…/sse
        /// (legacy), ws://…, tcp://host:port.
        #[arg(value_name = "URL")]
        positional: Vec<String>,
        #[command(flatten)]
        target: client_cli::Target,
    },
    /// Calls a tool: `arbor call URL TOOL '{"a": 1}'` (exit 1 if the tool
    /// reports an error, 3 no connection, 4 a server error, 5 a timeout).
    Call {
        /// URL (unless `-- COMMAND…`), the tool, its JSON arguments.
        #[arg(value_name = "URL TOOL [JSON]")]
        positional: Vec<String>,
        #[command(flatten)]
        target: client_cli::Target,
        /// Sent as the call's `io.arbor/idempotencyKey`: a repeat with the
        /// same key gets the first call's result from a tool that takes
        /// keys, without running it again.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Reads a resource: `arbor read URL URI`.
    Read {
        /// URL (unless `-- COMMAND…`) and the resource's URI.
        #[arg(value_name = "URL URI")]
        positional: Vec<String>,
        #[command(flatten)]
        target: client_cli::Target,
    },
    /// Gets a prompt: `arbor prompt URL NAME key=value…`.
    Prompt {
        /// URL (unless `-- COMMAND…`), the prompt, its arguments.
        #[arg(value_name = "URL NAME [KEY=VALUE]")]
        positional: Vec<String>,
        #[command(flatten)]
        target: client_cli::Target,
    },
}

/// `arbor serve`'s flags: each one set wins over the file and the
/// environment (see `src/config.rs`).
#[derive(Debug, clap::Args)]
struct ServeFlags {
    /// A configuration file (TOML; `arbor config --print-default` writes one
    /// with every key).
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// The HTTP address: Streamable HTTP on /mcp, legacy HTTP+SSE on /sse
    /// [default: 127.0.0.1:8930].
    #[arg(long)]
    http: Option<std::net::SocketAddr>,
    /// The WebSocket address, path /mcp [default: 127.0.0.1:8931].
    #[arg(long)]
    ws: Option<std::net::SocketAddr>,
    /// The TCP address, newline-delimited JSON-RPC [default: 127.0.0.1:8932].
    #[arg(long)]
    tcp: Option<std::net::SocketAddr>,
    /// The admin listener's address: metrics, health, the dashboard, chaos
    /// control [default: 127.0.0.1:8939].
    #[arg(long)]
    admin: Option<std::net::SocketAddr>,
    /// Connection supervisor shards [default: 4].
    #[arg(long)]
    shards: Option<usize>,
    /// The most connections at once, all transports together, lowered to
    /// fit the file descriptor limit [default: 100000].
    #[arg(long)]
    max_connections: Option<usize>,
    /// The most handshake-era HTTP sessions at once [default: 10000].
    #[arg(long)]
    max_sessions: Option<usize>,
    /// A host name clients use to reach the HTTP and WebSocket listeners,
    /// accepted in `Host` and `Origin` beside the loopback names
    /// (repeatable). Needed to listen beyond loopback.
    #[arg(long = "allowed-host", value_name = "NAME")]
    allowed_hosts: Vec<String>,
    /// A further origin accepted in full, such as `https://app.example`
    /// (repeatable).
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,
    /// The most bytes all connections together may hold in received
    /// messages and unread answers [default: half the machine's memory].
    #[arg(long, value_name = "BYTES")]
    max_buffered_bytes: Option<usize>,
    /// Serve without rate limits (`[server.rate_limits]`), as behind a
    /// gateway that limits, or for a benchmark beside servers that have
    /// none.
    #[arg(long)]
    no_rate_limits: bool,
    /// Serve without the resource guard (`[server.resource_guard]`), which
    /// sheds load from 80% of the descriptor, memory or process limit: for
    /// a benchmark that holds connections up to the descriptor limit.
    #[arg(long)]
    no_resource_guard: bool,
    /// The admin listener's bearer token (at least 16 characters)
    /// [default: a fresh one, printed at start].
    #[arg(long, env = "ARBOR_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// TLS on every network listener: the certificate chain (PEM), with
    /// --tls-key; reloaded when the files change or on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Clients must present a certificate this CA (PEM) signed: mutual TLS.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_client_ca: Option<std::path::PathBuf>,
    /// Join the cluster on these NATS servers (comma-separated
    /// `nats://host:port`; `[cluster]` in the file says more).
    #[arg(long, value_name = "URLS", value_delimiter = ',')]
    cluster: Vec<String>,
    /// This node's id in its cluster [default: made at random].
    #[arg(long, value_name = "ID", requires = "cluster")]
    node: Option<String>,
    /// Start N node processes as one cluster on the same ports
    /// (SO_REUSEPORT), with a NATS server of their own unless --cluster
    /// names one.
    #[arg(long, value_name = "N", conflicts_with = "node")]
    nodes: Option<usize>,
    /// Print the endpoints and the tree, then shut down instead of running
    /// until a signal.
    #[arg(long)]
    once: bool,
}

impl ServeFlags {
    /// The configuration: defaults, the file, the environment, these flags.
    fn config(&self) -> anyhow::Result<config::ServeConfig> {
        // Only ARBOR_ variables are read: another one that is not UTF-8 is
        // none of arbor's business (`env::vars` would panic on it).
        let mut env = Vec::new();
        for (key, value) in std::env::vars_os() {
            let Some(key) = key.to_str().filter(|k| k.starts_with("ARBOR_")) else {
                continue;
            };
            let value = value
                .into_string()
                .map_err(|_| anyhow::anyhow!("{key}: the value is not UTF-8"))?;
            env.push((key.to_string(), value));
        }
        let mut c = config::ServeConfig::load(self.config.as_deref(), env)?;
        if let Some(addr) = self.http {
            c.http.addr = addr;
        }
        if let Some(addr) = self.ws {
            c.ws.addr = addr;
        }
        if let Some(addr) = self.tcp {
            c.tcp.addr = addr;
        }
        if let Some(addr) = self.admin {
            c.admin.addr = addr;
        }
        if let Some(shards) = self.shards {
            c.shards = shards;
        }
        if self.max_connections.is_some() {
            c.max_connections = self.max_connections;
        }
        if let Some(max) = self.max_sessions {
            c.http.max_sessions = max;
        }
        if self.max_buffered_bytes.is_some() {
            c.server.max_buffered_bytes = self.max_buffered_bytes;
        }
        if self.no_rate_limits {
            c.server.rate_limits = arbor::mcp::rate::RateLimits::off();
        }
        if self.no_resource_guard {
            c.server.resource_guard = None;
        }
        c.origins
            .allowed_hosts
            .extend(self.allowed_hosts.iter().cloned());
        c.origins
            .allowed_origins
            .extend(self.allowed_origins.iter().cloned());
        if let Some(token) = &self.admin_token {
            c.admin.token =
                Some(arbor::admin::AdminToken::new(token.clone()).context("--admin-token")?);
        }
        if !self.cluster.is_empty() {
            let cluster = c
                .cluster
                .get_or_insert_with(|| arbor::cluster::ClusterConfig::new(Vec::<String>::new()));
            cluster.nats = self.cluster.clone();
            if self.node.is_some() {
                cluster.node = self.node.clone();
            }
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            let mut tls = arbor::transports::tls::TlsConfig::new(cert, key);
            tls.client_ca = self.tls_client_ca.clone();
            c.tls = Some(tls);
        }
        c.admin.origins = c.origins.clone();
        Ok(c)
    }
}

/// jemalloc rather than the system's malloc: after a flood of large
/// messages glibc kept the peak resident for good, while jemalloc's
/// background thread purges freed pages within its decay time (10 s).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    let logs = init_logs(&cli)?;
    // Without it jemalloc purges only when a thread allocates, so a server
    // gone quiet after a flood would keep its peak.
    #[cfg(not(target_env = "msvc"))]
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!(error = %e, "could not start jemalloc's purging thread");
    }
    // Each connection is a descriptor: take all the hard limit allows (the
    // transports lower max_connections to what is left).
    #[cfg(unix)]
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "could not raise the file descriptor limit");
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let outcome = runtime.block_on(async move {
        use client_cli::{run, Action};
        let ok = |r: anyhow::Result<()>| r.map(|()| std::process::ExitCode::SUCCESS);
        match cli.command {
            Command::Tools { positional, target } => {
                Ok(run(Action::Tools, positional, target).await)
            }
            Command::Call {
                positional,
                target,
                idempotency_key,
            } => Ok(run(Action::Call { idempotency_key }, positional, target).await),
            Command::Read { positional, target } => Ok(run(Action::Read, positional, target).await),
            Command::Prompt { positional, target } => {
                Ok(run(Action::Prompt, positional, target).await)
            }
            Command::Bench { args } => bench::run(args).await,
            Command::Soak { args } => bench::soak::run(args).await,
            Command::Token { args } => token_cli::run(args),
            Command::Tree { admin, path, limit } => Ok(admin_cli::tree(admin, &path, limit).await),
            Command::Kill {
                admin, node: true, ..
            } => Ok(admin_cli::kill_node(admin).await),
            Command::Kill { admin, path, .. } => {
                Ok(admin_cli::kill(admin, path.as_deref().unwrap_or_default()).await)
            }
            Command::Chaos { admin, run } => Ok(admin_cli::chaos(admin, run).await),
            Command::Reset { admin, subtree } => Ok(admin_cli::reset(admin, subtree).await),
            Command::Serve { stdio: true, .. } => ok(serve_stdio().await),
            Command::Serve { flags, .. } => {
                let config = flags.config()?;
                refuse_unreachable(&config)?;
                match flags.nodes {
                    Some(n) => ok(nodes::serve(n, config, flags.cluster.clone(), flags.once).await),
                    None => ok(serve(config, flags.once).await),
                }
            }
            Command::Config { .. } => {
                print!("{}", config::ServeConfig::default_file());
                Ok(std::process::ExitCode::SUCCESS)
            }
        }
    });
    // The runtime's tasks are done: flush what they logged.
    drop(runtime);
    drop(logs);
    outcome
}

/// A listener beyond loopback that accepts only loopback `Host` names would
/// answer every remote client 403: refused at start, saying what to add.
fn refuse_unreachable(config: &config::ServeConfig) -> anyhow::Result<()> {
    if !config.origins.loopback_only() {
        return Ok(());
    }
    let transports = config.transports();
    let listening = [
        ("--http", transports.http.as_ref().map(|h| h.addr)),
        ("--ws", transports.ws.as_ref().map(|w| w.addr)),
        ("--admin", Some(config.admin.addr)),
    ];
    match listening
        .into_iter()
        .find_map(|(flag, addr)| Some(flag).zip(addr.filter(|a| !a.ip().is_loopback())))
    {
        Some((flag, addr)) => anyhow::bail!(
            "{flag} {addr} listens beyond loopback, but only loopback Host names are \
             accepted, so every remote client would get 403: name the hosts clients \
             use with --allowed-host NAME (repeatable)"
        ),
        None => Ok(()),
    }
}

async fn serve_stdio() -> anyhow::Result<()> {
    let server = demo_server::mcp_server().context("building the demo server")?;
    let reason = arbor::transports::serve_stdio(server)
        .await
        .context("serving stdio")?;
    tracing::info!(%reason, "stdio session ended");
    Ok(())
}

async fn serve(config: config::ServeConfig, once: bool) -> anyhow::Result<()> {
    let (server, admin) = (config.server.clone(), config.admin.clone());
    let cluster = config.cluster.clone();
    let tls = match &config.tls {
        Some(tls) => Some(arbor::transports::tls::Tls::load(tls.clone()).context("tls")?),
        None => None,
    };
    let mut config = config.transports();
    config.tls = tls.clone();
    if let Some(tls) = tls {
        reload_on_sighup(tls)?;
    }
    let signal = ShutdownSignal::install();
    // Installed before anything records, so nothing recorded is lost.
    arbor::admin::recorder()
        .map_err(anyhow::Error::msg)
        .context("installing the metrics recorder")?;
    let origins = config.origins.clone();
    let mut server = demo_server::demo_builder(server).context("building the demo server")?;
    let cluster = match cluster {
        Some(cluster) => {
            let cluster = arbor::cluster::Cluster::connect(cluster)
                .await
                .context("joining the cluster")?;
            server = server.seal_key(cluster.seal_key().clone());
            Some(cluster)
        }
        None => None,
    };
    let server = server.build().context("building the demo server")?;
    // Held to the end: the node leaves its cluster when it drops.
    let node = match cluster {
        Some(cluster) => Some(cluster.join(&server).await.context("joining the cluster")?),
        None => None,
    };
    config.forward = node.as_ref().map(|node| node.forward());
    let (root, endpoints) = arbor::transports::start(server, config)
        .await
        .context("starting the transports")?;
    let admin = arbor::admin::AdminListener::start(admin, root.clone(), "transports")
        .await
        .context("starting the admin listener")?;
    for url in endpoints.urls() {
        say(&url);
    }
    if let Some(node) = &node {
        say(&format!("cluster node {}", node.id()));
    }
    say(&format!(
        "admin {} (metrics, healthz, readyz, api; Authorization: Bearer {})",
        admin.url(),
        admin.token().as_str()
    ));
    say(&format!("dashboard {}", admin.dashboard_url()));
    say(&accepting(&origins));
    say(&arbor::TreeView::of("transports", &root).await?.to_string());
    if !once {
        let tree = root.process();
        tokio::select! {
            _ = signal.wait() => {}
            // The tree gave up (past its restart intensity): serving
            // nothing while looking alive would be worse than exiting.
            reason = tree.wait() => anyhow::bail!("the transport tree stopped: {reason}"),
        }
    }
    let reason = tokio::time::timeout(Duration::from_secs(30), root.shutdown())
        .await
        .context("the tree did not shut down within 30 s")?;
    say(&format!("stopped: {reason}"));
    Ok(())
}

/// Reads the TLS certificate and key again at each SIGHUP.
fn reload_on_sighup(tls: arbor::transports::tls::Tls) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match tls.reload() {
                    Ok(()) => tracing::info!("SIGHUP: tls certificate reloaded"),
                    Err(e) => tracing::warn!("SIGHUP: tls reload failed, kept the served one: {e}"),
                }
            }
        });
    }
    Ok(())
}

/// What the HTTP and WebSocket listeners accept, in one line.
fn accepting(origins: &arbor::transports::OriginPolicy) -> String {
    let mut line = format!(
        "HTTP and WebSocket accept Host: {}",
        origins.allowed_hosts.join(", ")
    );
    if !origins.allowed_origins.is_empty() {
        line.push_str(&format!(
            "; Origin also: {}",
            origins.allowed_origins.join(", ")
        ));
    }
    line
}

/// Prints a line for whoever started the server. A reader that has gone
/// (`arbor serve | head -1`) is no reason to stop serving.
fn say(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Ctrl-C or SIGTERM. Created before anything is printed, so a signal
/// sent as soon as the endpoints appear is caught, not fatal.
struct ShutdownSignal {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl ShutdownSignal {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = signal(SignalKind::terminate())
                .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)))
                .ok();
            ShutdownSignal { signals }
        }
        #[cfg(not(unix))]
        ShutdownSignal {}
    }

    async fn wait(self) {
        let orphaned = orphaned();
        #[cfg(unix)]
        if let Some((mut term, mut int)) = self.signals {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
                _ = orphaned => {}
            }
            return;
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = orphaned => {}
        }
    }
}

/// A node of `arbor serve --nodes` stops when its parent is gone, however
/// it went (even SIGKILLed): its stdin, the parent's pipe, reaches its end.
/// Anyone else waits forever here.
async fn orphaned() {
    if std::env::var_os(nodes::WATCH_PARENT).is_none() {
        return std::future::pending().await;
    }
    let (gone, parent_gone) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = gone.send(());
    });
    let _ = parent_gone.await;
}
