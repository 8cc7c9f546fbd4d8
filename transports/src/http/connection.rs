//! Each HTTP connection as a process: `http1.rs` serving the router with
//! our limits, as the body of a task process, so that a stop drains its
//! streams and a kill ends it at once.

use super::*;
use crate::listen::TurnedAway;
use crate::tls::Accepted;
use arbor_mcp::jsonrpc::{ErrorObject, Message, Response};
use arbor_runtime::{spawn_task, ProcessRef};
use futures_util::FutureExt;

/// The template of the `http-connections` supervisor: one process per TCP
/// connection, which may take `drain` (and a margin) to stop.
pub(crate) fn connections(
    router: Router,
    config: Arc<HttpConfig>,
    drain: Duration,
) -> DynamicSupervisor<Accepted, ProcessRef> {
    DynamicSupervisor::temporary("http-connection", move |stream: Accepted| {
        let router = router.clone();
        let config = config.clone();
        let _ = stream.tcp().set_nodelay(true);
        // One task, no mailbox: the connection is its socket's loop.
        // (`map`, not an async block, which would hold `serve` twice.)
        let connection = spawn_task(move |stopping| match stream {
            Accepted::Plain(tcp) => super::http1::serve(tcp, router, config, stopping, drain)
                .map(Ok)
                .boxed(),
            // TLS keeps rustls's buffers whatever is done: hyper serves
            // both HTTP/1.1 and HTTP/2 (by ALPN).
            tls @ Accepted::Tls(_) => super::http1::serve_tls(tls, router, config, stopping, drain)
                .map(Ok)
                .boxed(),
        });
        std::future::ready(Ok::<_, SpawnError>(connection))
    })
    .shutdown(Shutdown::Timeout(drain + crate::tree::DRAIN_MARGIN))
}

/// What an HTTP client turned away reads before the close: a 503 at the
/// connection limit or under resource pressure, a 429 with `Retry-After` over a rate, each with the
/// JSON-RPC error saying which limit.
pub(crate) fn refusal(why: &TurnedAway) -> String {
    let (status, retry_after, error) = match why {
        TurnedAway::Full(max) => (
            "503 Service Unavailable",
            None,
            ErrorObject::new(-32000, "server at its connection limit")
                .with_data(serde_json::json!({ "limit": "max_connections", "max": max })),
        ),
        TurnedAway::Overloaded(overloaded) => (
            "503 Service Unavailable",
            Some(overloaded.retry_after_secs()),
            overloaded.error(),
        ),
        TurnedAway::RateLimited(limited) => (
            "429 Too Many Requests",
            Some(limited.retry_after_secs()),
            limited.error(),
        ),
        TurnedAway::Isolated(isolation) => (
            "503 Service Unavailable",
            arbor_mcp::cascade::retry_after_secs(isolation),
            arbor_mcp::cascade::isolated(isolation),
        ),
    };
    let body = Message::Response(Response::error(None, error))
        .to_value()
        .to_string();
    let retry_after = retry_after.map_or(String::new(), |s| format!("retry-after: {s}\r\n"));
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{retry_after}connection: close\r\n\r\n{body}",
        body.len()
    )
}
