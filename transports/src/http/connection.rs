//! Each HTTP connection as a process: hyper serving the router with our
//! limits, told when it is shut down so its streams can end.

use super::*;

/// The template of the `http-connections` supervisor: one process per TCP
/// connection.
pub(crate) fn connections(
    router: Router,
    config: Arc<HttpConfig>,
    drain: Duration,
) -> DynamicSupervisor<TcpStream, ActorRef<Closed>> {
    DynamicSupervisor::temporary("http-connection", move |stream: TcpStream| {
        spawn(Connection {
            stream: Some(stream),
            router: router.clone(),
            config: config.clone(),
            drain,
            shutdown: None,
            task: None,
        })
    })
}

/// One HTTP connection: hyper serving the router, with our limits.
struct Connection {
    stream: Option<TcpStream>,
    router: Router,
    config: Arc<HttpConfig>,
    drain: Duration,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A connection's message: hyper has finished with it.
#[derive(Debug)]
pub(crate) struct Closed;

impl Actor for Connection {
    type Msg = Closed;

    async fn init(&mut self, ctx: &mut Context<Self>) -> Flow {
        let Some(stream) = self.stream.take() else {
            return Err(ExitReason::error("no connection"));
        };
        let _ = stream.set_nodelay(true);
        let (closing, closing_rx) = tokio::sync::watch::channel(false);
        let router = self.router.clone();
        // Each request learns when its connection is shut down.
        let service = hyper::service::service_fn(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(Closing(closing_rx.clone()));
                let mut router = router.clone();
                async move { tower_service::Service::call(&mut router, request).await }
            },
        );
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(self.config.header_read_timeout)
            .max_buf_size(self.config.max_header_bytes.max(8 << 10))
            .max_headers(self.config.max_headers);
        let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let (stop, stopped) = oneshot::channel::<()>();
        let me = ctx.myself().clone();
        let drain = self.drain;
        self.shutdown = Some(stop);
        self.task = Some(tokio::spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopped => {
                    // Streams with nothing in flight end now; the request in
                    // progress finishes (up to the drain time); then close.
                    let _ = closing.send(true);
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(drain, conn.as_mut()).await;
                }
            }
            let _ = me.send_system(Closed);
        }));
        Ok(())
    }

    async fn handle(&mut self, _msg: Closed, ctx: &mut Context<Self>) -> Flow {
        ctx.stop(ExitReason::Normal);
        Ok(())
    }

    async fn terminate(&mut self, reason: &ExitReason) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            if *reason == ExitReason::Shutdown {
                let _ = task.await;
            } else {
                task.abort();
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
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
