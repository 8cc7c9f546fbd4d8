//! Each HTTP connection as a process: `http1.rs` serving the router with
//! our limits, told when it is shut down so its streams can end.

use super::*;

/// The template of the `http-connections` supervisor: one process per TCP
/// connection, which may take `drain` (and a margin) to stop.
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
    .shutdown(Shutdown::Timeout(drain + crate::tree::DRAIN_MARGIN))
}

/// One HTTP connection: the router served over it, with our limits.
struct Connection {
    stream: Option<TcpStream>,
    router: Router,
    config: Arc<HttpConfig>,
    drain: Duration,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A connection's message: serving it has ended.
#[derive(Debug)]
pub(crate) struct Closed;

impl Actor for Connection {
    type Msg = Closed;

    async fn init(&mut self, ctx: &mut Context<Self>) -> Flow {
        let Some(stream) = self.stream.take() else {
            return Err(ExitReason::error("no connection"));
        };
        let _ = stream.set_nodelay(true);
        let (stop, stopped) = oneshot::channel::<()>();
        let me = ctx.myself().clone();
        let serving = super::http1::serve(
            stream,
            self.router.clone(),
            self.config.clone(),
            stopped,
            self.drain,
        );
        self.shutdown = Some(stop);
        self.task = Some(tokio::spawn(async move {
            serving.await;
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
        // Awaited in place, not taken: a kill during the drain drops this
        // future, and `Drop` must still find the task to abort it (a
        // dropped `JoinHandle` would leave it serving).
        if let Some(task) = self.task.as_mut() {
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
