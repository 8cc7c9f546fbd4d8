//! What every socket transport shares: the supervised listener actor, the
//! bind that survives a restart, and the connection limit.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arbor_mcp::guard::Overloaded;
use arbor_mcp::rate::Limited;
use arbor_mcp::McpServer;
use arbor_runtime::{spawn, Actor, Context, ExitReason, Flow, ProcessRef};
use arbor_supervision::cascade::Isolation;
use arbor_supervision::{ChildHandle, ChildSpec, ShardedDynamicRef, Started};
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// Connection supervisor shards per transport, unless configured.
pub(crate) const DEFAULT_SHARDS: usize = 4;

/// What a listener does with each accepted connection.
///
/// A fresh value is made for every start of the listener and lives in its
/// accept loop, so whatever it owns (tasks still handshaking, say) goes when
/// the listener goes.
pub(crate) trait Admit: Send + 'static {
    /// Takes one accepted connection. Runs inside the accept loop: it must
    /// not wait on the peer, or one slow client would stall every other.
    fn admit(&mut self, stream: TcpStream) -> impl Future<Output = ()> + Send;
}

/// Why a connection is turned away as it is accepted.
#[derive(Clone, Debug)]
pub(crate) enum TurnedAway {
    /// The server holds this many connections, its `max_connections`.
    Full(usize),
    /// The process is near one of its limits ([`arbor_mcp::guard`]).
    Overloaded(Overloaded),
    /// Each connection is a session, and its address opens them faster
    /// than `address_sessions` allows.
    RateLimited(Limited),
    /// Each connection is a session, and the transport's sessions failed
    /// in cascade: it takes no new ones until the isolation lifts.
    Isolated(Isolation),
}

/// What one connection is to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Carries {
    /// One session (TCP, WebSocket): opening it is opening a session.
    Session,
    /// Requests (HTTP): its `initialize` opens the session, if any.
    Requests,
}

impl TurnedAway {
    /// Whether a connection from `stream`'s peer is turned away: at the
    /// connection limit (`slot` is `None`), under resource pressure, or,
    /// when it carries a session, while the sessions of `connections` are
    /// isolated or over its address's rate of new sessions.
    pub(crate) fn check<A: Send + 'static, H: ChildHandle>(
        stream: &TcpStream,
        slot: Option<&Slot>,
        limit: &Limit,
        server: &McpServer,
        carries: Carries,
        connections: &ShardedDynamicRef<A, H>,
    ) -> Option<TurnedAway> {
        if slot.is_none() {
            return Some(TurnedAway::Full(limit.max()));
        }
        if let Err(overloaded) = server.guard().admit_session() {
            return Some(TurnedAway::Overloaded(overloaded));
        }
        if carries == Carries::Requests {
            return None;
        }
        if let Some(isolation) = connections.isolation() {
            return Some(TurnedAway::Isolated(isolation));
        }
        let address = stream.peer_addr().ok().map(|a| a.ip());
        server
            .limiter()
            .new_session(address)
            .err()
            .map(TurnedAway::RateLimited)
    }
}

/// Hands each accepted connection to a connection supervisor, within the
/// connection limit; a connection turned away reads `refusal(why)` and is
/// closed.
pub(crate) struct HandOver<H> {
    /// Temporary children, each moved the stream it serves.
    pub(crate) connections: ShardedDynamicRef<crate::tls::Accepted, H>,
    pub(crate) limit: Limit,
    /// Whose guard and rate limits admit a connection.
    pub(crate) server: McpServer,
    pub(crate) carries: Carries,
    /// What a refused client reads, in the transport's own framing.
    pub(crate) refusal: fn(&TurnedAway) -> String,
    /// TLS, when the listener speaks it, and what it offers by ALPN.
    pub(crate) tls: Option<(crate::tls::Tls, crate::tls::Alpn)>,
}

impl<H: ChildHandle> Admit for HandOver<H> {
    async fn admit(&mut self, mut stream: TcpStream) {
        let slot = self.limit.acquire();
        let turned_away = TurnedAway::check(
            &stream,
            slot.as_ref(),
            &self.limit,
            &self.server,
            self.carries,
            &self.connections,
        );
        let (Some(slot), None) = (slot, &turned_away) else {
            // A TLS client would read plain text as garbage: it is closed
            // without a word (and without the cost of a handshake).
            if let (Some(why), None) = (&turned_away, &self.tls) {
                let refusal = (self.refusal)(why);
                let _ = stream.write_all(refusal.as_bytes()).await;
            }
            return;
        };
        // Started off the accept loop: the next connection is accepted while
        // a shard starts this one (or its TLS handshake runs), and shards
        // start theirs in parallel.
        let connections = self.connections.clone();
        let tls = self.tls.clone();
        tokio::spawn(async move {
            let stream = match tls {
                None => crate::tls::Accepted::Plain(stream),
                Some((tls, alpn)) => match tls.accept(stream, alpn).await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::debug!(target: "arbor::transports", error = %e, "tls handshake failed");
                        return;
                    }
                },
            };
            match connections.start_child(stream).await {
                Ok(Started::Running(connection)) => {
                    slot.hold_until_exit(&connection.child_process());
                }
                Ok(Started::Ignore) => {}
                Err(e) => {
                    tracing::warn!(target: "arbor::transports", error = %e, "connection not started");
                }
            }
        });
    }
}

/// The kernel's queue of connections not yet accepted, unless configured.
/// The 1,024 of `TcpListener::bind` overflowed while 19K clients dialled at
/// once, and each SYN dropped costs its client a 1 s retransmit. Linux
/// lowers it to `net.core.somaxconn`.
pub(crate) const DEFAULT_BACKLOG: u32 = 4096;

/// Where a listener binds and how long its accept queue is.
#[derive(Clone, Debug)]
pub(crate) struct Bind {
    /// The address wanted, then the one got: a restart binds the same port.
    pub(crate) addr: Arc<Mutex<SocketAddr>>,
    pub(crate) backlog: u32,
    /// Shared with other processes (SO_REUSEPORT).
    pub(crate) reuse_port: bool,
}

/// A listener child named `id` that binds `at` and hands each connection
/// to a fresh `make()`.
pub(crate) fn listener<A, F>(id: &'static str, at: Bind, make: F) -> ChildSpec
where
    A: Admit,
    F: Fn() -> A + Send + Sync + 'static,
{
    let make = Arc::new(make);
    ChildSpec::worker(id, move || {
        spawn(Listener {
            at: at.clone(),
            make: make.clone(),
            accepting: None,
        })
    })
}

/// Accepts connections and hands each to an [`Admit`].
struct Listener<F> {
    at: Bind,
    make: Arc<F>,
    accepting: Option<AbortHandle>,
}

/// The listener's messages: none; it only accepts.
#[derive(Debug)]
enum ListenerMsg {}

/// What a failed accept costs: nothing for a peer that gave up first; a
/// pause for a lack of resources (file descriptors, memory), which would
/// otherwise spin, or, as a crash, restart the listener past its
/// supervisor's intensity and take the transports down with it.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionAborted
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionRefused
            | ErrorKind::Interrupted
    ) {
        return;
    }
    metrics::counter!("arbor_transports_accept_errors_total").increment(1);
    tracing::warn!(target: "arbor::transports", error = %e, "accept failed; pausing 100 ms");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

impl<A, F> Actor for Listener<F>
where
    A: Admit,
    F: Fn() -> A + Send + Sync + 'static,
{
    type Msg = ListenerMsg;

    async fn init(&mut self, _ctx: &mut Context<Self>) -> Flow {
        // A restart binds the address the first start got, port included.
        let wanted = *self.at.addr.lock();
        let listener = bind(wanted, self.at.backlog, self.at.reuse_port).await?;
        *self.at.addr.lock() = listener.local_addr()?;
        let mut admit = (self.make)();
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => admit.admit(stream).await,
                    Err(e) => accept_failed(&e).await,
                }
            }
        });
        self.accepting = Some(task.abort_handle());
        Ok(())
    }

    async fn handle(&mut self, msg: ListenerMsg, _ctx: &mut Context<Self>) -> Flow {
        match msg {}
    }

    async fn terminate(&mut self, _reason: &ExitReason) {
        if let Some(task) = self.accepting.take() {
            task.abort();
        }
    }
}

impl<F> Drop for Listener<F> {
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
async fn bind(addr: SocketAddr, backlog: u32, reuse_port: bool) -> std::io::Result<TcpListener> {
    let mut tries = 0;
    loop {
        match bind_once(addr, backlog, reuse_port) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 100 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            done => return done,
        }
    }
}

/// One try at binding `addr`, as `TcpListener::bind` does (address reuse
/// on Unix, so a restart need not wait out TIME_WAIT) but with `backlog`;
/// with `reuse_port`, other processes may bind it too and the kernel
/// spreads the connections across them.
fn bind_once(addr: SocketAddr, backlog: u32, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    #[cfg(all(unix, not(target_os = "solaris"), not(target_os = "illumos")))]
    socket.set_reuseport(reuse_port)?;
    #[cfg(not(all(unix, not(target_os = "solaris"), not(target_os = "illumos"))))]
    if reuse_port {
        return Err(std::io::Error::other("SO_REUSEPORT is not available here"));
    }
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// The most connections served at once, counted across every transport
/// that shares one `Limit`.
#[derive(Clone, Debug)]
pub(crate) struct Limit {
    live: Arc<AtomicUsize>,
    max: usize,
}

impl Limit {
    pub(crate) fn new(max: usize) -> Self {
        Limit {
            live: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// The limit itself, for refusals that say why.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Takes a place, or `None` at the limit.
    pub(crate) fn acquire(&self) -> Option<Slot> {
        if self.live.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.live.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot {
            live: Some(self.live.clone()),
        })
    }
}

/// One place under a [`Limit`]: given back when dropped, or when the
/// process it was handed to exits.
#[derive(Debug)]
pub(crate) struct Slot {
    live: Option<Arc<AtomicUsize>>,
}

impl Slot {
    /// Keeps the place until `process` exits.
    pub(crate) fn hold_until_exit(mut self, process: &ProcessRef) {
        let Some(live) = self.live.take() else {
            return;
        };
        let counter = live.clone();
        let watched = process.on_exit(move |_| {
            counter.fetch_sub(1, Ordering::AcqRel);
        });
        if watched.is_err() {
            // The process has already ended: count it out now.
            live.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(live) = self.live.take() {
            live.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::Duration;

    /// How many of `dials` clients get connected to a listener with
    /// `backlog` that never accepts.
    async fn connected(backlog: u32, dials: usize) -> std::io::Result<usize> {
        let listener = bind_once(
            "127.0.0.1:0".parse().map_err(std::io::Error::other)?,
            backlog,
            false,
        )?;
        let addr = listener.local_addr()?;
        let mut held = Vec::new();
        for _ in 0..dials {
            let dial = tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr));
            if let Ok(Ok(stream)) = dial.await {
                held.push(stream);
            }
        }
        Ok(held.len())
    }

    #[tokio::test]
    async fn the_backlog_bounds_what_waits_to_be_accepted() -> std::io::Result<()> {
        // Linux queues backlog + 1; the next SYN is dropped, not refused.
        assert_eq!(connected(2, 6).await?, 3);
        assert_eq!(connected(16, 6).await?, 6);
        Ok(())
    }
}
