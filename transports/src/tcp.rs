//! TCP: newline-delimited JSON-RPC, the same framing and limits as stdio.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arbor_mcp::transport::start_connection;
use arbor_mcp::McpServer;
use arbor_runtime::{spawn, Actor, Context, ExitReason, Flow, ProcessRef};
use arbor_supervision::{
    ChildSpec, DynamicSupervisor, Restart, ShardedDynamicRef, ShardedDynamicSupervisor, StartError,
    Strategy, Supervisor, SupervisorRef,
};
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// Transport settings. Every limit has a default.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Where TCP listens. Default: `127.0.0.1:0` (a free port on loopback).
    pub tcp: SocketAddr,
    /// The most connections served at once; more are accepted and closed at
    /// once with a line saying why. Default: 100 000.
    pub max_connections: usize,
    /// Connection supervisor shards. Default: 4.
    pub shards: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            tcp: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_connections: 100_000,
            shards: 4,
        }
    }
}

/// Where the transports listen.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// The TCP address, once bound.
    pub tcp: SocketAddr,
}

impl Endpoints {
    /// One line per endpoint, with its full URL.
    pub fn urls(&self) -> Vec<String> {
        vec![format!("tcp://{}", self.tcp)]
    }
}

/// A connection waiting to be taken by the session that serves it. Dynamic
/// children are started from cloneable arguments; a stream is taken once.
type Pending = Arc<Mutex<Option<TcpStream>>>;

/// Accepts connections and hands each to the connection supervisor.
struct Listener {
    addr: Arc<Mutex<SocketAddr>>,
    connections: ShardedDynamicRef<Pending>,
    live: Arc<AtomicUsize>,
    max: usize,
    accepting: Option<AbortHandle>,
}

/// The listener's messages.
#[derive(Debug)]
enum ListenerMsg {
    AcceptFailed(String),
}

impl Actor for Listener {
    type Msg = ListenerMsg;

    async fn init(&mut self, ctx: &mut Context<Self>) -> Flow {
        // A restart binds the address the first start got, port included.
        let wanted = *self.addr.lock();
        let listener = bind(wanted).await?;
        *self.addr.lock() = listener.local_addr()?;
        let (connections, live, max, me) = (
            self.connections.clone(),
            self.live.clone(),
            self.max,
            ctx.myself().clone(),
        );
        let task = tokio::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        let _ = me.send_system(ListenerMsg::AcceptFailed(e.to_string()));
                        return;
                    }
                };
                admit(stream, &connections, &live, max).await;
            }
        });
        self.accepting = Some(task.abort_handle());
        Ok(())
    }

    async fn handle(&mut self, msg: ListenerMsg, _ctx: &mut Context<Self>) -> Flow {
        match msg {
            ListenerMsg::AcceptFailed(e) => Err(ExitReason::error(format!("accept failed: {e}"))),
        }
    }

    async fn terminate(&mut self, _reason: &ExitReason) {
        if let Some(task) = self.accepting.take() {
            task.abort();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Killed: no terminate, but the accept loop must not outlive us.
        if let Some(task) = self.accepting.take() {
            task.abort();
        }
    }
}

/// Binds `addr`, waiting briefly while a predecessor's socket is still
/// being closed: a killed listener's accept loop lets go of the port on its
/// next poll, a moment after the listener's exit has been reported.
async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let mut tries = 0;
    loop {
        match TcpListener::bind(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 100 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            done => return done,
        }
    }
}

async fn admit(
    mut stream: TcpStream,
    connections: &ShardedDynamicRef<Pending>,
    live: &Arc<AtomicUsize>,
    max: usize,
) {
    if live.fetch_add(1, Ordering::AcqRel) >= max {
        live.fetch_sub(1, Ordering::AcqRel);
        let refusal = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{{\"code\":-32603,\"message\":\"server at its connection limit\",\"data\":{{\"limit\":\"max_connections\",\"max\":{max}}}}}}}\n"
        );
        let _ = stream.write_all(refusal.as_bytes()).await;
        return;
    }
    match connections
        .start_child(Arc::new(Mutex::new(Some(stream))))
        .await
    {
        Ok(session) => {
            let counter = live.clone();
            let watched = session.on_exit(move |_| {
                counter.fetch_sub(1, Ordering::AcqRel);
            });
            if watched.is_err() {
                // The session has already ended: count it out now.
                live.fetch_sub(1, Ordering::AcqRel);
            }
        }
        Err(e) => {
            live.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(target: "arbor::transports", error = %e, "connection not started");
        }
    }
}

/// Starts the transport tree for `server` and returns its supervisor and
/// where it listens.
///
/// # Errors
/// A [`StartError`] when a listener cannot bind.
pub async fn start(
    server: McpServer,
    config: TransportConfig,
) -> Result<(SupervisorRef, Endpoints), StartError> {
    let (tree, endpoints) = tree(server, config);
    let sup = tree.start().await?;
    let tcp = *endpoints.lock();
    Ok((sup, Endpoints { tcp }))
}

/// The transport tree, to start alone ([`start`]) or as a child of another.
pub fn tree(server: McpServer, config: TransportConfig) -> (Supervisor, Arc<Mutex<SocketAddr>>) {
    let sessions = DynamicSupervisor::new("session", move |pending: Pending| {
        let server = server.clone();
        async move {
            let stream = pending
                .lock()
                .take()
                .ok_or_else(|| ExitReason::error("connection already served"))?;
            let (read, write) = stream.into_split();
            let connection = start_connection(server, tokio::io::BufReader::new(read), write)
                .await
                .map_err(ExitReason::error)?;
            Ok::<ProcessRef, ExitReason>(connection.process)
        }
    })
    .restart(Restart::Temporary);
    let connections = ShardedDynamicSupervisor::new(config.shards, sessions);
    let handle = connections.handle();
    let addr = Arc::new(Mutex::new(config.tcp));
    let (listen_addr, live, max) = (
        addr.clone(),
        Arc::new(AtomicUsize::new(0)),
        config.max_connections,
    );
    let listener = ChildSpec::worker("tcp-listener", move || {
        spawn(Listener {
            addr: listen_addr.clone(),
            connections: handle.clone(),
            live: live.clone(),
            max,
            accepting: None,
        })
    });
    let tree = Supervisor::new(Strategy::RestForOne)
        .name("transports")
        .intensity(10, std::time::Duration::from_secs(5))
        .child(connections.into_child_spec("tcp-connections"))
        .child(listener);
    (tree, addr)
}
