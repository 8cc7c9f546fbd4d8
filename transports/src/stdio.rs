//! stdio under supervision: one MCP session on this process's stdin and
//! stdout, as a child of its own supervisor, so the kill hooks, the tree
//! view and an orderly stop reach it as they reach every other transport.
//!
//! ```text
//! stdio        one_for_one, shuts down when its significant child ends
//! └── session  temporary, significant: the end of input ends the tree
//! ```
//!
//! The session is not restarted: a client's stdin cannot be read again, so
//! a new session would only read an end of stream. When it ends (the client
//! closed stdin, or it crashed or was killed) the tree stops, after the
//! session's last lines are written.

use std::sync::Arc;
use std::time::Duration;

use arbor_mcp::transport::{start_connection, TransportError};
use arbor_mcp::McpServer;
use arbor_runtime::{ExitReason, ProcessRef};
use arbor_supervision::{
    AutoShutdown, ChildSpec, Restart, StartError, Strategy, Supervisor, SupervisorRef,
};
use parking_lot::Mutex;
use tokio::io::{AsyncBufRead, AsyncWrite};
use tokio::task::JoinHandle;

/// How long the last lines of an ended session may take to be written.
const LAST_WRITES: Duration = Duration::from_secs(5);

/// A supervised session on a line-delimited byte stream: stdin and stdout
/// by [`StdioTree::new`], any reader and writer by [`StdioTree::over`].
///
/// # Examples
/// ```
/// use arbor_mcp::{CallToolResult, ServerBuilder, Tool};
/// use arbor_transports::StdioTree;
/// use tokio::io::{AsyncBufReadExt, BufReader};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = ServerBuilder::new("hello", "1.0.0")
///     .tool(Tool::new("hi"), |(), _ctx| async move { Ok(CallToolResult::text("hi")) })
///     .build()?;
/// // A client that sends one request and closes its end.
/// let input = br#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}
/// "#;
/// let (output, read_back) = tokio::io::duplex(64 << 10);
/// let reason = StdioTree::over(server, &input[..], output).run().await?;
/// assert!(reason.is_normal(), "{reason}");
/// let mut lines = BufReader::new(read_back).lines();
/// assert!(lines.next_line().await?.unwrap().contains("supportedVersions"));
/// # Ok(())
/// # }
/// ```
#[must_use = "a tree does nothing until run"]
pub struct StdioTree {
    supervisor: Supervisor,
    served: Arc<Mutex<Served>>,
}

impl std::fmt::Debug for StdioTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdioTree")
            .field("supervisor", &self.supervisor)
            .finish()
    }
}

#[derive(Debug, Default)]
struct Served {
    session: Option<ProcessRef>,
    written: Option<JoinHandle<()>>,
}

impl StdioTree {
    /// A session on this process's stdin and stdout.
    pub fn new(server: McpServer) -> Self {
        StdioTree::over(
            server,
            tokio::io::BufReader::new(tokio::io::stdin()),
            tokio::io::stdout(),
        )
    }

    /// A session reading lines from `reader` and writing them to `writer`.
    pub fn over<R, W>(server: McpServer, reader: R, writer: W) -> Self
    where
        R: AsyncBufRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let served = Arc::new(Mutex::new(Served::default()));
        let streams = Arc::new(Mutex::new(Some((reader, writer))));
        let record = served.clone();
        let shutdown = crate::tree::session_shutdown(&server);
        let session = ChildSpec::worker("session", move || {
            let (server, streams, record) = (server.clone(), streams.clone(), record.clone());
            async move {
                // Temporary: started once, so the streams are there.
                let (reader, writer) = streams.lock().take().ok_or_else(|| {
                    TransportError::Session(arbor_runtime::SpawnError::Init(ExitReason::error(
                        "stdio already served",
                    )))
                })?;
                let connection = start_connection(server, reader, writer, None, None).await?;
                let mut served = record.lock();
                served.session = Some(connection.process.clone());
                served.written = Some(connection.done);
                Ok::<_, TransportError>(connection.process)
            }
        })
        .restart(Restart::Temporary)
        .shutdown(shutdown)
        .significant();
        let supervisor = Supervisor::new(Strategy::OneForOne)
            .name("stdio")
            .auto_shutdown(AutoShutdown::AnySignificant)
            .child(session);
        StdioTree { supervisor, served }
    }

    /// Adds a child of the caller's own, started after the session and
    /// stopped before it.
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.supervisor = self.supervisor.child(spec);
        self
    }

    /// Starts the tree and serves until the session ends; returns why it
    /// ended (normal at the end of input).
    ///
    /// # Errors
    /// A [`StartError`] when the session or a child cannot start.
    pub async fn run(self) -> Result<ExitReason, StartError> {
        Ok(self.start().await?.wait().await)
    }

    /// Starts the tree and returns at once, for a caller that looks at the
    /// tree while it serves.
    ///
    /// # Errors
    /// A [`StartError`] when the session or a child cannot start.
    pub async fn start(self) -> Result<ServingStdio, StartError> {
        let tree = self.supervisor.start().await?;
        Ok(ServingStdio {
            tree,
            served: self.served,
        })
    }
}

/// A running [`StdioTree`].
#[derive(Debug)]
pub struct ServingStdio {
    tree: SupervisorRef,
    served: Arc<Mutex<Served>>,
}

impl ServingStdio {
    /// The tree's supervisor: for the kill hooks, the tree view, a stop.
    pub fn tree(&self) -> &SupervisorRef {
        &self.tree
    }

    /// Waits for the session to end and its last lines to be written;
    /// returns why it ended.
    pub async fn wait(self) -> ExitReason {
        let stopped = self.tree.process().wait().await;
        let (session, written) = {
            let mut served = self.served.lock();
            (served.session.take(), served.written.take())
        };
        if let Some(written) = written {
            let _ = tokio::time::timeout(LAST_WRITES, written).await;
        }
        session.and_then(|s| s.exit_reason()).unwrap_or(stopped)
    }
}

/// Serves MCP on stdin and stdout under supervision until the client closes
/// stdin: [`StdioTree::new`], run.
///
/// # Errors
/// A [`StartError`] when the session cannot start.
pub async fn serve_stdio(server: McpServer) -> Result<ExitReason, StartError> {
    StdioTree::new(server).run().await
}
