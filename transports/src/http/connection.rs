//! Each HTTP connection as a process: `http1.rs` serving the router with
//! our limits, as the body of a task process, so that a stop drains its
//! streams and a kill ends it at once.

use super::*;
use arbor_runtime::{spawn_task, ProcessRef};
use futures_util::FutureExt;

/// The template of the `http-connections` supervisor: one process per TCP
/// connection, which may take `drain` (and a margin) to stop.
pub(crate) fn connections(
    router: Router,
    config: Arc<HttpConfig>,
    drain: Duration,
) -> DynamicSupervisor<TcpStream, ProcessRef> {
    DynamicSupervisor::temporary("http-connection", move |stream: TcpStream| {
        let router = router.clone();
        let config = config.clone();
        let _ = stream.set_nodelay(true);
        // One task, no mailbox: the connection is its socket's loop.
        // (`map`, not an async block, which would hold `serve` twice.)
        let connection = spawn_task(move |stopping| {
            super::http1::serve(stream, router, config, stopping, drain).map(Ok)
        });
        std::future::ready(Ok::<_, SpawnError>(connection))
    })
    .shutdown(Shutdown::Timeout(drain + crate::tree::DRAIN_MARGIN))
}

/// What an HTTP client past the connection limit reads before the close.
pub(crate) fn refusal(max: usize) -> String {
    let body = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{{\"code\":-32000,\"message\":\"server at its connection limit\",\"data\":{{\"limit\":\"max_connections\",\"max\":{max}}}}}}}"
    );
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}
