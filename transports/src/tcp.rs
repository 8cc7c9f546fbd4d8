//! TCP: newline-delimited JSON-RPC, the same framing and limits as stdio:
//! one session process per connection, under a sharded dynamic supervisor.

use crate::tls::Accepted;
use arbor_mcp::transport::{start_connection, TransportError};
use arbor_mcp::McpServer;
use arbor_supervision::{ChildSpec, DynamicSupervisor, ShardedDynamicRef};

use crate::config::TcpConfig;
use crate::listen::{listener as listen_on, Bind, Carries, HandOver, Limit, TurnedAway};
use arbor_mcp::jsonrpc::{ErrorObject, Message, Response};

/// The read buffer of one TCP connection, in bytes.
const READ_BUFFER: usize = 1024;

/// What a TCP client turned away reads before the close: a JSON-RPC
/// error line saying which limit.
fn tcp_refusal(why: &TurnedAway) -> String {
    let error = match why {
        TurnedAway::Full(max) => ErrorObject::internal("server at its connection limit")
            .with_data(serde_json::json!({ "limit": "max_connections", "max": max })),
        TurnedAway::Overloaded(overloaded) => overloaded.error(),
        TurnedAway::RateLimited(limited) => limited.error(),
        TurnedAway::Isolated(isolation) => arbor_mcp::cascade::isolated(isolation),
    };
    let mut line = Message::Response(Response::error(None, error))
        .to_value()
        .to_string();
    line.push('\n');
    line
}

/// The connection supervisor's children: one session per accepted stream.
pub(crate) fn sessions(
    server: McpServer,
    config: &TcpConfig,
) -> DynamicSupervisor<Accepted, arbor_runtime::ProcessRef> {
    let idle = Some(config.idle_timeout).filter(|t| !t.is_zero());
    let shutdown = crate::tree::session_shutdown(&server);
    DynamicSupervisor::temporary("session", move |stream: Accepted| {
        let server = server.clone();
        async move {
            // Replies are single lines: do not hold them back for more.
            let _ = stream.tcp().set_nodelay(true);
            let client = stream.peer_addr().ok().map(|a| a.ip());
            // A small read buffer: lines longer than it are read in pieces,
            // and an idle connection should not hold tokio's default 8 KiB.
            let connection = match stream {
                Accepted::Plain(tcp) => {
                    let (read, write) = tcp.into_split();
                    let read = tokio::io::BufReader::with_capacity(READ_BUFFER, read);
                    start_connection(server, read, write, idle, client).await?
                }
                tls @ Accepted::Tls(_) => {
                    let (read, write) = tokio::io::split(tls);
                    let read = tokio::io::BufReader::with_capacity(READ_BUFFER, read);
                    start_connection(server, read, write, idle, client).await?
                }
            };
            Ok::<_, TransportError>(connection.process)
        }
    })
    .shutdown(shutdown)
}

/// The TCP listener: it hands each connection to `connections`, past the
/// limit refusing it with a line that says why.
pub(crate) fn listener(
    server: McpServer,
    at: Bind,
    connections: ShardedDynamicRef<Accepted, arbor_runtime::ProcessRef>,
    limit: Limit,
    tls: Option<crate::tls::Tls>,
) -> ChildSpec {
    listen_on("tcp-listener", at, move || HandOver {
        connections: connections.clone(),
        limit: limit.clone(),
        server: server.clone(),
        carries: Carries::Session,
        refusal: tcp_refusal,
        tls: tls.clone().map(|tls| (tls, crate::tls::Alpn::None)),
    })
}
