//! A server spawned as a child process, spoken to over its stdin and
//! stdout; its stderr is kept (the last lines) for when it fails.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::Arc;

use arbor_mcp::client::{BoxFuture, Connector, Inbox, LineConnector, LineStreams, Wire};
use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The stderr lines kept of a spawned server.
const STDERR_LINES: usize = 200;

/// Spawns `program args…` on every (re)connection; the child is killed
/// when its connection ends.
#[derive(Clone, Debug)]
pub struct StdioConnector {
    program: String,
    args: Vec<String>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl StdioConnector {
    /// Runs `program` with `args`.
    pub fn new(
        program: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        StdioConnector {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            stderr: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// The last lines the server wrote to stderr (the newest last).
    pub fn stderr(&self) -> StderrLog {
        StderrLog(self.stderr.clone())
    }

    fn spawn(&self) -> std::io::Result<LineStreams> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let missing = || std::io::Error::other("the child's pipes were not opened");
        let stdin = child.stdin.take().ok_or_else(missing)?;
        let stdout = child.stdout.take().ok_or_else(missing)?;
        if let Some(stderr) = child.stderr.take() {
            let log = self.stderr.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut log = log.lock();
                    if log.len() == STDERR_LINES {
                        log.pop_front();
                    }
                    log.push_back(line);
                }
            });
        }
        // The child lives as long as its stdout is read: it is reaped with
        // the reader, and killed if it outlives it.
        let stdout = ChildStdout {
            stdout,
            _child: child,
        };
        Ok((Box::new(stdout), Box::new(stdin)))
    }
}

/// A spawned server's stderr, as kept so far.
#[derive(Clone, Debug)]
pub struct StderrLog(Arc<Mutex<VecDeque<String>>>);

impl StderrLog {
    /// The lines kept, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().iter().cloned().collect()
    }
}

/// The child's stdout, owning the child so that dropping it kills it.
struct ChildStdout {
    stdout: tokio::process::ChildStdout,
    _child: tokio::process::Child,
}

impl tokio::io::AsyncRead for ChildStdout {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl Connector for StdioConnector {
    fn connect(&self, inbox: Inbox) -> BoxFuture<'_, Result<Arc<dyn Wire>, String>> {
        let me = self.clone();
        Box::pin(async move {
            let lines = LineConnector::new(move || {
                let streams = me.spawn();
                async move { streams }
            });
            lines
                .connect(inbox)
                .await
                .map_err(|e| format!("spawning {}: {e}", self.program))
        })
    }
}
