//! Line transports over any byte stream (stdio, TCP, an in-memory pipe):
//! newline-delimited JSON, one message per line, each line bounded.

use std::future::Future;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

use super::connector::Connector;
use super::inbox::Inbox;
use super::wire::{BoxFuture, Outgoing, Wire};

/// A byte stream's two halves, as a line connector dials them.
pub type LineStreams = (
    Box<dyn AsyncRead + Send + Unpin>,
    Box<dyn AsyncWrite + Send + Unpin>,
);

/// Newline-delimited JSON over any byte stream: stdio, TCP, in memory.
pub struct LineConnector<F> {
    dial: F,
    reconnects: bool,
    max_line: usize,
}

impl<F> std::fmt::Debug for LineConnector<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineConnector")
            .field("reconnects", &self.reconnects)
            .field("max_line", &self.max_line)
            .finish()
    }
}

impl<F, Fut> LineConnector<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::io::Result<LineStreams>> + Send + 'static,
{
    /// Dials with `dial` on every (re)connection.
    pub fn new(dial: F) -> Self {
        LineConnector {
            dial,
            reconnects: true,
            max_line: DEFAULT_MAX_LINE,
        }
    }

    /// A connector that dials once: a lost connection stays lost.
    pub fn once(dial: F) -> Self {
        LineConnector {
            dial,
            reconnects: false,
            max_line: DEFAULT_MAX_LINE,
        }
    }

    /// The longest line taken from the server, in bytes, its newline not
    /// counted (default 16 MiB): a longer one ends the connection.
    pub fn max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes;
        self
    }
}

/// The longest line taken from a server by default, in bytes.
pub const DEFAULT_MAX_LINE: usize = 16 << 20;

impl<F, Fut> Connector for LineConnector<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::io::Result<LineStreams>> + Send + 'static,
{
    fn connect(&self, inbox: Inbox) -> BoxFuture<'_, Result<Arc<dyn Wire>, String>> {
        Box::pin(async move {
            let (read, write) = (self.dial)().await.map_err(|e| e.to_string())?;
            tokio::spawn(read_lines(read, inbox, self.max_line));
            Ok(Arc::new(LineWire(Mutex::new(write))) as Arc<dyn Wire>)
        })
    }

    fn reconnects(&self) -> bool {
        self.reconnects
    }
}

async fn read_lines(read: Box<dyn AsyncRead + Send + Unpin>, inbox: Inbox, max: usize) {
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    let why = loop {
        line.clear();
        match (&mut reader)
            .take(max as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) => break "the server closed the stream".to_string(),
            Ok(_) if line.len() > max && !line.ends_with(b"\n") => {
                break format!("the server sent a line over {max} bytes")
            }
            Ok(_) => {
                let text = line.trim_ascii();
                if text.is_empty() {
                    continue;
                }
                if !inbox.deliver_json(text).await {
                    return;
                }
            }
            Err(e) => break format!("reading: {e}"),
        }
    };
    inbox.closed(why);
}

struct LineWire(Mutex<Box<dyn AsyncWrite + Send + Unpin>>);

impl Wire for LineWire {
    fn send(&self, out: Outgoing) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let mut line = out.message.to_json().into_bytes();
            line.push(b'\n');
            let mut write = self.0.lock().await;
            write.write_all(&line).await.map_err(|e| e.to_string())?;
            write.flush().await.map_err(|e| e.to_string())
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.0.lock().await.shutdown().await;
        })
    }
}
