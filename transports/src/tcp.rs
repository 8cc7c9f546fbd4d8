//! TCP: newline-delimited JSON-RPC, the same framing and limits as stdio:
//! one session process per connection, under a sharded dynamic supervisor.

use arbor_mcp::transport::{start_connection, TransportError};
use arbor_mcp::McpServer;
use arbor_supervision::{ChildSpec, DynamicSupervisor, ShardedDynamicRef};
use tokio::net::TcpStream;

use crate::config::TcpConfig;
use crate::listen::{listener as listen_on, Bind, HandOver, Limit};

/// The read buffer of one TCP connection, in bytes.
const READ_BUFFER: usize = 1024;

/// What a TCP client past the connection limit reads before the close.
fn tcp_refusal(max: usize) -> String {
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{{\"code\":-32603,\"message\":\"server at its connection limit\",\"data\":{{\"limit\":\"max_connections\",\"max\":{max}}}}}}}\n"
    )
}

/// The connection supervisor's children: one session per accepted stream.
pub(crate) fn sessions(
    server: McpServer,
    config: &TcpConfig,
) -> DynamicSupervisor<TcpStream, arbor_runtime::ProcessRef> {
    let idle = Some(config.idle_timeout).filter(|t| !t.is_zero());
    let shutdown = crate::tree::session_shutdown(&server);
    DynamicSupervisor::temporary("session", move |stream: TcpStream| {
        let server = server.clone();
        async move {
            // Replies are single lines: do not hold them back for more.
            let _ = stream.set_nodelay(true);
            let (read, write) = stream.into_split();
            // A small read buffer: lines longer than it are read in pieces,
            // and an idle connection should not hold tokio's default 8 KiB.
            let read = tokio::io::BufReader::with_capacity(READ_BUFFER, read);
            let connection = start_connection(server, read, write, idle).await?;
            Ok::<_, TransportError>(connection.process)
        }
    })
    .shutdown(shutdown)
}

/// The TCP listener: it hands each connection to `connections`, past the
/// limit refusing it with a line that says why.
pub(crate) fn listener(
    at: Bind,
    connections: ShardedDynamicRef<TcpStream, arbor_runtime::ProcessRef>,
    limit: Limit,
) -> ChildSpec {
    listen_on("tcp-listener", at, move || HandOver {
        connections: connections.clone(),
        limit: limit.clone(),
        refusal: tcp_refusal,
    })
}
