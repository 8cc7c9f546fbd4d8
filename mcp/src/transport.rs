//! Line transports: any byte stream (stdin and stdout, served under
//! supervision by `arbor_transports::stdio`; TCP; an in-memory duplex in
//! tests): newline-delimited JSON, one message per line.
//!
//! Reading stops while the session's mailbox is full (its `send` waits), and
//! a line longer than the message limit is refused with an error and skipped
//! without being buffered.

use arbor_runtime::timer::sleep_until_or_never;
use arbor_runtime::{ActorRef, ExitReason, ProcessRef};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

use crate::inbound::InboundBudget;
use crate::jsonrpc::{code, peek_id, ErrorObject, Message, Response};
use crate::model::{LogLevel, NotificationMethod};
use crate::outbox::{outbox, Frame, Outbox};
use crate::server::McpServer;
use crate::session::{start_session, RateChecks, SessionMsg};

/// The in-memory transport's pipe, in bytes each way.
const IN_MEMORY_PIPE_BYTES: usize = 256 << 10;

/// Why a line transport stopped.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Reading or writing failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The session could not start.
    #[error("session: {0}")]
    Session(#[from] arbor_runtime::SpawnError),
}

enum Line {
    Message(Vec<u8>),
    /// A line past the limit: its first bytes (for its id), and its length
    /// if it ended, or `None` when it was reported as soon as it passed the
    /// limit and the rest is being skipped.
    TooLong {
        head: Vec<u8>,
        len: Option<usize>,
    },
}

/// The bytes of a line too long to take that are kept to find its id.
const TOO_LONG_HEAD: usize = 4 << 10;

/// Reads one line of at most `max` bytes (a `\r` before the `\n` not
/// counted). A longer line is reported as soon as it passes the limit (a
/// client sending megabytes without a newline hears at once); the rest of it
/// is then skipped, up to its newline, by the next call (`skipping`).
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    skipping: &mut bool,
) -> std::io::Result<Option<Line>> {
    while *skipping {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(None);
        }
        let used = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => {
                *skipping = false;
                i + 1
            }
            None => chunk.len(),
        };
        reader.consume(used);
    }
    let mut line = Vec::new();
    let mut total = 0usize;
    // Room for a CRLF line's `\r`, judged once the line is whole.
    let keep = max.saturating_add(1);
    loop {
        let chunk = reader.fill_buf().await?;
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        let ended = chunk.is_empty();
        total += part.len();
        if total <= keep {
            line.extend_from_slice(part);
        } else if done.is_none() && !ended {
            line.truncate(TOO_LONG_HEAD);
            let head_room = TOO_LONG_HEAD - line.len();
            line.extend_from_slice(&part[..part.len().min(head_room)]);
            let used = part.len();
            reader.consume(used);
            *skipping = true;
            return Ok(Some(Line::TooLong {
                head: line,
                len: None,
            }));
        } else {
            line.truncate(TOO_LONG_HEAD);
            let head_room = TOO_LONG_HEAD - line.len();
            line.extend_from_slice(&part[..part.len().min(head_room)]);
        }
        let used = done.unwrap_or(part.len());
        reader.consume(used);
        if ended && total == 0 {
            return Ok(None);
        }
        if ended || done.is_some() {
            let crlf = line.last() == Some(&b'\r');
            if crlf {
                line.pop();
            }
            return Ok(Some(if total - usize::from(crlf) > max {
                Line::TooLong {
                    head: line,
                    len: Some(total),
                }
            } else {
                Line::Message(line)
            }));
        }
    }
}

/// A connection being served: its session process, and a handle that
/// completes once everything the session sent has been written.
#[derive(Debug)]
pub struct Connection {
    /// The session: link, monitor or supervise it like any process.
    pub process: ProcessRef,
    /// Completes when the connection is fully closed.
    pub done: tokio::task::JoinHandle<()>,
}

/// Starts serving one connection over a line-delimited byte stream and
/// returns at once. The connection ends when the reader ends (after the
/// requests in flight are answered), when its session ends, or when nothing
/// has been read or written for `idle_timeout` (if given). `client` is the
/// peer's address, for the per-address rate limits (none on stdio).
///
/// # Errors
/// [`TransportError::Session`] when the session cannot start.
pub async fn start_connection<R, W>(
    server: McpServer,
    reader: R,
    mut writer: W,
    idle_timeout: Option<Duration>,
    client: Option<std::net::IpAddr>,
) -> Result<Connection, TransportError>
where
    R: AsyncBufRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let max = server.config().limits.max_message_bytes;
    // The reader pauses at the in-flight limit instead of refusing.
    let inbound = InboundBudget::new(server.config().max_inbound_bytes)
        .with_places(server.config().max_in_flight);
    let drain_deadline = server.config().request_timeout + std::time::Duration::from_secs(1);
    let (tx, mut rx) = outbox(&server.config().outbox);
    let errors = tx.clone();
    let session = start_session(server, tx, RateChecks::BySession(client)).await?;
    let inbound = inbound.with_memory(errors.memory());
    let process = session.process();
    let activity = Activity::new();
    let written = activity.clone();
    let exited = process.wait();
    let account = errors.memory();
    let writing = tokio::spawn(async move {
        // Let go by the memory budget: what is queued goes unwritten, and
        // the memory it holds comes back at once.
        let reaped = async {
            match &account {
                Some(account) => account.reaped().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(reaped);
        while let Some(frame) = tokio::select! {
            frame = rx.recv_frame() => frame,
            () = &mut reaped => return,
        } {
            written.touch();
            let mut line = frame.json;
            line.push('\n');
            let wrote = tokio::select! {
                wrote = async {
                    writer.write_all(line.as_bytes()).await?;
                    writer.flush().await
                } => wrote,
                () = &mut reaped => return,
            };
            if wrote.is_err() {
                return;
            }
        }
        // Every sender is gone (the session, and the tasks it left, such as
        // a batch's gatherer): a session killed or crashed says so in a last
        // line, rather than a bare end of stream. Its outbox may close a
        // moment before its exit is recorded. Boxed: a connection keeps no
        // room for its last line while it writes.
        Box::pin(async move {
            if let Ok(reason) = tokio::time::timeout(Duration::from_secs(1), exited).await {
                if !reason.is_clean() {
                    let mut line = session_ended(&reason);
                    line.push('\n');
                    let _ = writer.write_all(line.as_bytes()).await;
                    let _ = writer.flush().await;
                }
            }
        })
        .await;
    });
    let watched = process.clone();
    let done = tokio::spawn(async move {
        let ending = read_lines(
            reader,
            max,
            inbound,
            &session,
            errors,
            idle_timeout.map(|t| (t, activity)),
        )
        .await;
        // Boxed: the connection keeps no room for its ending while it reads.
        Box::pin(drain(ending, &session, watched, writing, drain_deadline)).await;
    });
    Ok(Connection { process, done })
}

/// A connection's end: what is in flight is answered (each request is bound
/// by the request timeout) and written, unless the client was idle; then the
/// session stops, by force if it will not.
async fn drain(
    ending: Ending,
    session: &ActorRef<SessionMsg>,
    watched: ProcessRef,
    writing: tokio::task::JoinHandle<()>,
    drain_deadline: Duration,
) {
    if let Ending::Idle = ending {
        // Its sends now fail at once instead of waiting for room.
        writing.abort();
    }
    let _ = session.send_system(SessionMsg::Drain);
    if tokio::time::timeout(drain_deadline, watched.wait())
        .await
        .is_err()
    {
        watched.stop(ExitReason::Shutdown);
        if tokio::time::timeout(Duration::from_secs(1), watched.wait())
            .await
            .is_err()
        {
            // Stuck in a handler: a stop waits for it, a kill does not.
            watched.kill();
            watched.wait().await;
        }
    }
    // What the session sent is written, unless the client has stopped
    // reading: then the writer is let go with the drain deadline.
    let abort = writing.abort_handle();
    if tokio::time::timeout(drain_deadline, writing).await.is_err() {
        abort.abort();
    }
}

/// The last line of a connection whose session did not end cleanly: an MCP
/// log message (level `error`, logger `arbor`) naming the exit reason.
fn session_ended(reason: &ExitReason) -> String {
    let notice = Message::Notification(crate::jsonrpc::Notification {
        method: NotificationMethod::Message.as_str().into(),
        params: Some(serde_json::Map::from_iter([
            ("level".to_string(), json!(LogLevel::Error)),
            ("logger".to_string(), json!("arbor")),
            (
                "data".to_string(),
                json!({ "event": "session ended", "reason": reason.to_string() }),
            ),
        ])),
    });
    notice.to_value().to_string()
}

/// Why a connection stopped reading.
enum Ending {
    /// The input ended (or failed, or the session ended): what is in
    /// flight is still answered.
    Input,
    /// Nothing moved either way for the idle timeout: the client is gone
    /// or not reading, and nothing more is written.
    Idle,
}

/// When a connection last read or wrote a message.
#[derive(Clone, Debug)]
struct Activity {
    start: Instant,
    /// Milliseconds from `start`.
    last: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last.store(now, Ordering::Relaxed);
    }

    /// When the connection becomes idle, if nothing happens before.
    fn idle_at(&self, timeout: Duration) -> Instant {
        self.start + Duration::from_millis(self.last.load(Ordering::Relaxed)) + timeout
    }
}

/// Feeds lines to the session until the input ends, fails, the session
/// ends, or the connection has been idle for the timeout given.
///
/// An idle connection's reader is parked in the first `select!` below: what
/// it holds there is this task's size for as long as the connection lives,
/// so the rare waits (an error to queue, room to wait for) are boxed.
async fn read_lines<R: AsyncBufRead + Unpin>(
    mut reader: R,
    max: usize,
    inbound: InboundBudget,
    session: &ActorRef<SessionMsg>,
    errors: Outbox,
    idle: Option<(Duration, Activity)>,
) -> Ending {
    // Watched once, not once a line: each watch registers an exit callback.
    let mut exited = session.process().wait();
    let mut skipping = false;
    loop {
        // Kept across idle checks: a line half read is not lost.
        let reading = read_line(&mut reader, max, &mut skipping);
        tokio::pin!(reading);
        let line = loop {
            let idle_at = idle
                .as_ref()
                .map(|(timeout, activity)| activity.idle_at(*timeout).into());
            tokio::select! {
                line = &mut reading => break line,
                _ = &mut exited => return Ending::Input,
                () = sleep_until_or_never(idle_at) => {
                    if idle_now(&idle, &errors) {
                        tracing::debug!(target: "arbor::mcp", "connection idle: closed");
                        return Ending::Idle;
                    }
                }
            }
        };
        if let Some((_, activity)) = &idle {
            activity.touch();
        }
        let waiting = match line {
            Ok(None) => return Ending::Input,
            Err(e) => {
                tracing::debug!(target: "arbor::mcp", error = %e, "connection read failed");
                return Ending::Input;
            }
            Ok(Some(Line::TooLong { head, len })) => {
                let refusal = too_long(&head, len, max);
                let _ = Box::pin(errors.send(refusal)).await;
                continue;
            }
            Ok(Some(Line::Message(bytes))) => {
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                // Room now (the usual case): handed over without waiting.
                match inbound.try_admit(bytes) {
                    Ok(received) => match session.try_send(SessionMsg::Incoming(received)) {
                        Ok(()) => continue,
                        Err(arbor_runtime::SendError::Full(msg)) => Waiting::Mailbox(msg),
                        Err(_) => return Ending::Input,
                    },
                    Err((bytes, _)) => Waiting::Budget(bytes),
                }
            }
        };
        let waited = Box::pin(wait_for_room(
            waiting,
            &inbound,
            session,
            &mut exited,
            &idle,
            &errors,
        ));
        if let Some(ending) = waited.await {
            return ending;
        }
    }
}

/// The answer to a line past `max_message_bytes`: `len` is its length if it
/// ended, `None` when the rest of it is being skipped.
fn too_long(head: &[u8], len: Option<usize>, max: usize) -> Frame {
    let error = match len {
        Some(len) => ErrorObject::new(
            code::INVALID_REQUEST,
            format!("message exceeds max_message_bytes ({len} > {max})"),
        )
        .with_data(json!({ "limit": "max_message_bytes", "max": max, "actual": len })),
        None => ErrorObject::new(
            code::INVALID_REQUEST,
            format!(
                "message exceeds max_message_bytes ({max}) with no newline yet: \
                 the rest of the line is skipped"
            ),
        )
        .with_data(json!({ "limit": "max_message_bytes", "max": max, "skipped": true })),
    };
    let id = peek_id(head);
    Frame::new(&Message::Response(Response::error(id.clone(), error)), id)
}

/// Hands a read message to the session once there is room (in the budget,
/// then the mailbox). Waiting counts as idle too: a client that stops
/// reading stalls both ways, and is let go. `Some` when the connection ends.
async fn wait_for_room(
    waiting: Waiting,
    inbound: &InboundBudget,
    session: &ActorRef<SessionMsg>,
    exited: &mut (impl std::future::Future<Output = ExitReason> + Unpin),
    idle: &Option<(Duration, Activity)>,
    errors: &Outbox,
) -> Option<Ending> {
    let sending = async {
        let msg = match waiting {
            Waiting::Mailbox(msg) => msg,
            Waiting::Budget(bytes) => SessionMsg::Incoming(inbound.admit(bytes).await),
        };
        session.send(msg).await
    };
    tokio::pin!(sending);
    loop {
        let idle_at = idle
            .as_ref()
            .map(|(timeout, activity)| activity.idle_at(*timeout).into());
        tokio::select! {
            sent = &mut sending => return sent.is_err().then_some(Ending::Input),
            // Ended while the reader waits (let go by the memory budget,
            // say): nothing would ever make room.
            _ = &mut *exited => return Some(Ending::Input),
            () = sleep_until_or_never(idle_at) => {
                if idle_now(idle, errors) {
                    tracing::debug!(target: "arbor::mcp", "connection stalled past the idle timeout: closed");
                    return Some(Ending::Idle);
                }
            }
        }
    }
}

/// What a message read waits for before the session has it.
enum Waiting {
    /// Room in the budget (or a place), then in the mailbox.
    Budget(Vec<u8>),
    /// Room in the mailbox.
    Mailbox(SessionMsg),
}

/// At an idle deadline: whether the connection is idle now. A session whose
/// handlers are at work (answers owed, none waiting to be written) counts as
/// activity, also while the reader waits for the budget they hold.
fn idle_now(idle: &Option<(Duration, Activity)>, out: &Outbox) -> bool {
    let Some((timeout, activity)) = idle else {
        return false;
    };
    if Instant::now() < activity.idle_at(*timeout) {
        return false;
    }
    if out.busy() {
        activity.touch();
        return false;
    }
    true
}

/// Serves one connection over a line-delimited byte stream until it is
/// fully closed; returns the session's exit reason.
///
/// # Errors
/// [`TransportError::Session`] when the session cannot start.
pub async fn serve_lines<R, W>(
    server: McpServer,
    reader: R,
    writer: W,
) -> Result<ExitReason, TransportError>
where
    R: AsyncBufRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let connection = start_connection(server, reader, writer, None, None).await?;
    let reason = connection.process.wait().await;
    let _ = connection.done.await;
    Ok(reason)
}

/// Serves one in-memory connection and returns the client's end of it: a
/// byte stream carrying newline-delimited JSON, as stdio would. For tests and
/// for embedding a server in the same process as its client.
pub fn connect_in_memory(server: McpServer) -> tokio::io::DuplexStream {
    let (client, ours) = tokio::io::duplex(IN_MEMORY_PIPE_BYTES);
    let (read, write) = tokio::io::split(ours);
    tokio::spawn(async move {
        let _ = serve_lines(server, tokio::io::BufReader::new(read), write).await;
    });
    client
}
