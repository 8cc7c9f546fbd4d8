//! A handshake-era HTTP session: one process per `Mcp-Session-Id` (or per
//! legacy SSE connection) that owns the MCP session and routes what it sends
//! to the client's streams.
//!
//! Streamable HTTP (2025-03-26 to 2025-11-25): each POST that carries
//! requests opens a stream that gets those requests' responses and whatever
//! their handlers send; everything else goes to the standalone GET stream.
//! Every event has an id `<stream>-<seq>` and is kept in a bounded replay
//! buffer (events, bytes, age), so a client that lost a stream resumes it
//! with `GET` + `Last-Event-ID` and gets exactly the events it missed. A
//! stream whose client is too slow is detached, not waited for: its events
//! wait in the buffer.
//!
//! Legacy HTTP+SSE (2024-11-05): one GET stream carries everything as
//! `message` events, after an `endpoint` event; the session ends with it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbor_mcp::inbound::{InboundBudget, Received, Spent};
use arbor_mcp::jsonrpc::Id;
use arbor_mcp::outbox::{outbox, Frame, FrameKind, Outbound, OutboxReceiver};
use arbor_mcp::session::{start_session, RateChecks, SessionMsg};
use arbor_mcp::{McpServer, ProtocolVersion};
use arbor_runtime::channel;
use arbor_runtime::timer::sleep_until_or_never;
use arbor_runtime::{spawn, Actor, ActorRef, Context, ExitReason, Flow, SendError, SpawnError};
use tokio::sync::oneshot;

use super::stream::SseEvent;
use super::HttpConfig;

/// The standalone stream: the GET stream of Streamable HTTP, the only
/// stream of legacy SSE.
pub(crate) const STANDALONE: u64 = 0;

/// Which HTTP transport a session serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Streamable HTTP, 2025-03-26 to 2025-11-25.
    Streamable,
    /// HTTP+SSE, 2024-11-05.
    Legacy,
}

/// An event id: the stream and the event's place in the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EventId {
    stream: u64,
    seq: u64,
}

impl EventId {
    pub(crate) fn parse(text: &str) -> Option<EventId> {
        let (stream, seq) = text.trim().split_once('-')?;
        Some(EventId {
            stream: stream.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    fn render(self) -> String {
        format!("{}-{}", self.stream, self.seq)
    }
}

/// A stream handed to the HTTP layer: its events, its first events
/// (priming, replay), and its place for [`HttpSessionMsg::Detached`].
#[derive(Debug)]
pub(crate) struct Attached {
    /// The MCP session, to hand the POST's message to.
    pub(crate) session: ActorRef<SessionMsg>,
    pub(crate) stream: u64,
    pub(crate) attach: u64,
    pub(crate) first: Vec<SseEvent>,
    pub(crate) events: channel::Receiver<Box<SseEvent>>,
}

/// Why a GET cannot be served.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A standalone stream is already open.
    Conflict,
    /// `Last-Event-ID` names no stream of this session.
    UnknownEvent,
    /// Events after `Last-Event-ID` are no longer kept: resuming would
    /// leave a silent gap.
    Evicted,
    /// A request with this id is already in flight in the session: its
    /// answer could not be told from the other's.
    DuplicateId(Id),
    /// The session (or the server) holds its inbound budget's worth already.
    Busy(Spent),
    /// A JSON-RPC batch, in a session whose version has none.
    NoBatches(ProtocolVersion),
}

/// How a POST's requests are answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Each request by a message of its own.
    #[default]
    Each,
    /// A 2025-03-26 batch: one array answers them all. `certain` when the
    /// array comes even if every request is cancelled (it also answers
    /// entries that were rejected).
    Array { certain: bool },
}

/// An HTTP session's messages.
#[derive(Debug)]
pub(crate) enum HttpSessionMsg {
    /// A POST carrying `requests`, answered as `answer` says: opens their
    /// stream, before the message (`bytes`) goes to the MCP session with
    /// its share of the inbound budget.
    Open {
        requests: Vec<Id>,
        answer: Answer,
        primed: bool,
        /// The message is a batch.
        batch: bool,
        /// The version an `initialize` in it negotiates.
        negotiated: Option<ProtocolVersion>,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(Attached, Received), Refusal>>,
    },
    /// A GET: the standalone stream, or a stream resumed after an event.
    Get {
        after: Option<EventId>,
        primed: bool,
        reply: oneshot::Sender<Result<Attached, Refusal>>,
    },
    /// A POST without requests: only activity. The reply is the MCP
    /// session, to hand the message to, and its inbound budget.
    Touch {
        /// The message is a batch.
        batch: bool,
        reply: oneshot::Sender<Result<(ActorRef<SessionMsg>, InboundBudget), Refusal>>,
    },
    /// What the MCP session sends.
    Out(Outbound),
    /// A stream's body has gone (the client left, or it ended).
    Detached { stream: u64, attach: u64 },
    /// The client cancelled this request: no answer will come.
    Cancelled(Id),
    /// Time to see whether the session has been idle too long.
    IdleCheck,
    /// The MCP session has ended and all it sent has been moved over.
    Ended(ExitReason),
    /// The client deleted the session: requests in flight are answered
    /// with an error on their streams, then the session ends.
    Delete,
}

/// One event kept for replay.
#[derive(Debug)]
struct Kept {
    id: EventId,
    at: Instant,
    data: Arc<str>,
    /// Its share of the server's memory budget.
    _memory: Option<arbor_mcp::memory::Share>,
}

impl StreamState {
    /// Whether a client is attached: a body whose client has gone does not
    /// count, whether or not it has said so yet.
    fn is_live(&self) -> bool {
        self.live.as_ref().is_some_and(|(_, tx)| !tx.is_closed())
    }
}

#[derive(Debug, Default)]
struct StreamState {
    /// The attached body's sender, and which attach it is.
    live: Option<(u64, channel::Sender<Box<SseEvent>>)>,
    /// Requests still to be answered on it (or, in a batch, not cancelled).
    pending: usize,
    /// How they are answered.
    answer: Answer,
    /// The ids of its requests, routed to it until it is answered.
    requests: Vec<Id>,
    /// Whether its client takes priming events and resumes (2025-11-25 on):
    /// only such a stream may be released (SEP-1699).
    resumable: bool,
    /// The last event handed to a live body.
    delivered: u64,
    /// The newest of its events that left the replay buffer.
    evicted: u64,
    /// How many of its events the replay buffer holds.
    kept: usize,
}

/// The session process.
pub(crate) struct HttpSession {
    mode: Mode,
    /// The version its `initialize` negotiated, once it has come.
    version: Option<ProtocolVersion>,
    config: Arc<HttpConfig>,
    session: ActorRef<SessionMsg>,
    inbound: InboundBudget,
    streams: HashMap<u64, StreamState>,
    by_request: HashMap<Id, u64>,
    batches: VecDeque<u64>,
    kept: VecDeque<Kept>,
    kept_bytes: ReplayBytes,
    /// The connection's account with the server's memory budget: events
    /// kept for replay draw on it.
    memory: Option<Arc<arbor_mcp::memory::Consumer>>,
    next_stream: u64,
    next_seq: u64,
    next_attach: u64,
    last_active: Instant,
}

/// The bytes of events a session keeps for replay, mirrored in the
/// process-wide `arbor_http_replay_bytes` gauge (given back when the session
/// goes).
struct ReplayBytes(usize);

impl ReplayBytes {
    fn add(&mut self, n: usize) {
        self.0 += n;
        metrics::gauge!("arbor_http_replay_bytes").increment(n as f64);
    }

    fn sub(&mut self, n: usize) {
        self.0 -= n;
        metrics::gauge!("arbor_http_replay_bytes").decrement(n as f64);
    }
}

impl Drop for ReplayBytes {
    fn drop(&mut self) {
        metrics::gauge!("arbor_http_replay_bytes").decrement(self.0 as f64);
    }
}

/// Starts an HTTP session with its MCP session, and the task that moves
/// what the MCP session sends into the HTTP session's mailbox.
pub(crate) async fn start(
    server: McpServer,
    mode: Mode,
    client: Option<std::net::IpAddr>,
    config: Arc<HttpConfig>,
) -> Result<(ActorRef<HttpSessionMsg>, ActorRef<SessionMsg>), SpawnError> {
    let (out, received) = outbox(&server.config().outbox);
    let budget = InboundBudget::new(server.config().max_inbound_bytes);
    // Streamable HTTP checks its requests at the door and answers 429; a
    // legacy POST is only a 202, its answers go on the stream, so its
    // session checks each request it decodes (a batch's each).
    let rate = match mode {
        Mode::Streamable => RateChecks::ByTransport(client),
        Mode::Legacy => RateChecks::BySession(client),
    };
    let session = start_session(server, out, rate).await?;
    let inbound = budget.with_memory(received.memory());
    let idle_checks = idle_checks(&config);
    let http = spawn(HttpSession {
        mode,
        version: None,
        config,
        session: session.clone(),
        inbound,
        streams: HashMap::from([(STANDALONE, StreamState::default())]),
        by_request: HashMap::new(),
        batches: VecDeque::new(),
        kept: VecDeque::new(),
        kept_bytes: ReplayBytes(0),
        memory: received.memory(),
        next_stream: STANDALONE + 1,
        next_seq: 0,
        next_attach: 0,
        last_active: Instant::now(),
    })
    .await;
    let http = match http {
        Ok(http) => http,
        Err(e) => {
            session.process().stop(ExitReason::Shutdown);
            return Err(e);
        }
    };
    // The two end together: the MCP session's end (an init deadline, an
    // overflow, a shutdown) ends the HTTP session once all it sent has been
    // moved over (see `pump`), and the HTTP session's end stops the MCP
    // session.
    tokio::spawn(pump(received, http.clone(), session.process(), idle_checks));
    Ok((http, session))
}

/// How long the output of an ended MCP session may still trickle in (from
/// request tasks that finished as it stopped) before its HTTP session ends.
const LAST_OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// Moves the MCP session's output into the HTTP session, waiting when its
/// mailbox is full: the MCP session's outbox then fills, and its policy
/// applies. Once the MCP session has ended and its output is all moved
/// over, ends the HTTP session: after that output, in mailbox order, so an
/// answer given while stopping still reaches its stream.
///
/// An HTTP session that ends first, even killed, stops the MCP session.
///
/// It also ticks the session's idle check (`idle_timeout` / 4), which would
/// otherwise be a timer task of its own for every session.
async fn pump(
    mut received: OutboxReceiver,
    http: ActorRef<HttpSessionMsg>,
    mcp: arbor_runtime::ProcessRef,
    idle_checks: Option<tokio::time::Interval>,
) {
    let exited = mcp.wait();
    tokio::pin!(exited);
    // A killed HTTP session runs no `terminate`: the MCP session is stopped
    // here instead, or it would live on with nothing to reach it.
    let http_exited = http.process().wait();
    tokio::pin!(http_exited);
    let mut ended: Option<(ExitReason, tokio::time::Instant)> = None;
    let mut idle_checks = idle_checks;
    loop {
        let grace = ended.as_ref().map(|(_, at)| *at + LAST_OUTPUT_GRACE);
        let item = tokio::select! {
            item = received.recv() => item,
            _ = tick(&mut idle_checks) => {
                // Skipped when its mailbox is full: it is not idle then.
                if let Err(SendError::Closed(_)) = http.try_send(HttpSessionMsg::IdleCheck) {
                    return;
                }
                continue;
            }
            reason = &mut exited, if ended.is_none() => {
                ended = Some((reason, tokio::time::Instant::now()));
                continue;
            }
            _ = &mut http_exited => {
                mcp.stop(ExitReason::Shutdown);
                return;
            }
            () = sleep_until_or_never(grace) => None,
        };
        match item {
            Some(item) => {
                if http.send(HttpSessionMsg::Out(item)).await.is_err() {
                    return;
                }
            }
            None => break,
        }
    }
    let reason = match ended {
        Some((reason, _)) => reason,
        None => exited.await,
    };
    let _ = http.send(HttpSessionMsg::Ended(reason)).await;
}

/// The idle checks' schedule, if sessions end when idle.
fn idle_checks(config: &HttpConfig) -> Option<tokio::time::Interval> {
    let idle = config.idle_timeout;
    if idle.is_zero() {
        return None;
    }
    let every = (idle / 4).max(Duration::from_millis(10));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    Some(ticks)
}

/// The next idle check; never, without them.
async fn tick(checks: &mut Option<tokio::time::Interval>) {
    match checks {
        Some(checks) => {
            checks.tick().await;
        }
        None => std::future::pending().await,
    }
}

impl Actor for HttpSession {
    type Msg = HttpSessionMsg;

    async fn handle(&mut self, msg: HttpSessionMsg, ctx: &mut Context<Self>) -> Flow {
        match msg {
            HttpSessionMsg::Open {
                requests,
                answer,
                primed,
                batch,
                negotiated,
                bytes,
                reply,
            } => {
                self.last_active = Instant::now();
                if negotiated.is_some() {
                    self.version = negotiated;
                }
                if let Err(refusal) = self.batch_allowed(batch) {
                    let _ = reply.send(Err(refusal));
                    return Ok(());
                }
                let mut seen = std::collections::HashSet::new();
                if let Some(taken) = requests
                    .iter()
                    .find(|id| self.by_request.contains_key(*id) || !seen.insert(*id))
                {
                    let _ = reply.send(Err(Refusal::DuplicateId(taken.clone())));
                    return Ok(());
                }
                let received = match self.inbound.try_admit(bytes) {
                    Ok(received) => received,
                    Err((_, spent)) => {
                        let _ = reply.send(Err(Refusal::Busy(spent)));
                        return Ok(());
                    }
                };
                let stream = self.next_stream;
                self.next_stream += 1;
                for id in &requests {
                    self.by_request.insert(id.clone(), stream);
                }
                if requests.is_empty() && answer != Answer::Each {
                    // Its array belongs to no request: it comes in order.
                    self.batches.push_back(stream);
                }
                let mut state = StreamState {
                    pending: requests.len(),
                    answer,
                    requests,
                    resumable: primed,
                    ..StreamState::default()
                };
                let attached = self.attach(stream, &mut state, primed, None);
                self.streams.insert(stream, state);
                let _ = reply.send(Ok((attached, received)));
            }
            HttpSessionMsg::Get {
                after,
                primed,
                reply,
            } => {
                self.last_active = Instant::now();
                let _ = reply.send(self.get(after, primed));
            }
            HttpSessionMsg::Touch { batch, reply } => {
                self.last_active = Instant::now();
                let touched = self
                    .batch_allowed(batch)
                    .map(|()| (self.session.clone(), self.inbound.clone()));
                let _ = reply.send(touched);
            }
            HttpSessionMsg::Out(Outbound::Frame(frame)) => {
                if !self.route(frame) {
                    // A legacy stream cannot resume: a client too slow
                    // for it has lost messages, and its session ends.
                    tracing::info!(target: "arbor::transports", "legacy SSE client too slow: session closed");
                    ctx.stop(ExitReason::Normal);
                }
            }
            HttpSessionMsg::Cancelled(id) => self.cancelled(&id),
            HttpSessionMsg::Out(Outbound::Release(id)) => self.release(&id),
            HttpSessionMsg::Detached { stream, attach } => {
                let Some(state) = self.streams.get_mut(&stream) else {
                    return Ok(());
                };
                if state.live.as_ref().is_some_and(|(a, _)| *a == attach) {
                    state.live = None;
                    self.last_active = Instant::now();
                    if self.mode == Mode::Legacy {
                        // The legacy transport's session is its GET stream.
                        ctx.stop(ExitReason::Normal);
                    }
                }
            }
            HttpSessionMsg::Ended(reason) => ctx.stop(reason),
            HttpSessionMsg::Delete => {
                // Not a drain: the client has said it wants nothing more.
                // The MCP session answers what it cuts short (-32603, with
                // the reason); those answers reach their streams before
                // `Ended` ends this session.
                self.session
                    .process()
                    .stop(ExitReason::shutdown_with("session deleted"));
            }
            HttpSessionMsg::IdleCheck => {
                let busy = self.streams.values().any(|s| s.is_live() || s.pending > 0);
                if !busy && self.last_active.elapsed() >= self.config.idle_timeout {
                    tracing::debug!(target: "arbor::transports", "http session idle: closed");
                    ctx.stop(ExitReason::Normal);
                }
            }
        }
        Ok(())
    }

    async fn terminate(&mut self, _reason: &ExitReason) {
        // Requests in flight may still answer (up to the drain timeout);
        // nothing can reach the client any more.
        self.session.process().stop(ExitReason::Shutdown);
    }
}

impl HttpSession {
    /// A batch where the negotiated version has none is refused before it
    /// opens a stream or puts an id in flight: the session would answer it
    /// with one error of no id, which no stream waits for.
    fn batch_allowed(&self, batch: bool) -> Result<(), Refusal> {
        match self.version {
            Some(version) if batch && !version.allows_batches() => Err(Refusal::NoBatches(version)),
            _ => Ok(()),
        }
    }
    /// Serves a GET: resumes the stream `after` names, or opens the
    /// standalone stream.
    fn get(&mut self, after: Option<EventId>, primed: bool) -> Result<Attached, Refusal> {
        // Events past their age go before anything is replayed, though no
        // new event has pushed them out.
        self.prune();
        let stream = after.map_or(STANDALONE, |a| a.stream);
        let mut state = self.streams.remove(&stream).ok_or(Refusal::UnknownEvent)?;
        let refusal = match after {
            None if state.is_live() => Some(Refusal::Conflict),
            Some(after) if state.evicted > after.seq => Some(Refusal::Evicted),
            _ => None,
        };
        if let Some(refusal) = refusal {
            self.streams.insert(stream, state);
            return Err(refusal);
        }
        let attached = self.attach(stream, &mut state, primed, after.map(|a| a.seq));
        self.streams.insert(stream, state);
        Ok(attached)
    }

    /// Gives `stream` a new body: a priming event if asked, then what was
    /// kept after `after` (or, with no `after`, what was never delivered).
    fn attach(
        &mut self,
        stream: u64,
        state: &mut StreamState,
        primed: bool,
        after: Option<u64>,
    ) -> Attached {
        self.next_attach += 1;
        let attach = self.next_attach;
        let mut first = Vec::new();
        let from = after.unwrap_or(state.delivered);
        for kept in self
            .kept
            .iter()
            .filter(|k| k.id.stream == stream && k.id.seq > from)
        {
            first.push(self.event(kept.id, kept.data.clone()));
            state.delivered = state.delivered.max(kept.id.seq);
        }
        // After the replay: its fresh id is the highest, so a client that
        // loses this stream at once and resumes from it has missed nothing.
        if primed && self.mode == Mode::Streamable {
            first.push(self.priming(stream));
        }
        let (tx, events) = channel::bounded(self.config.stream_buffer.max(1));
        // A finished stream only replays, then ends.
        if state.pending > 0 || stream == STANDALONE {
            state.live = Some((attach, tx));
        }
        Attached {
            session: self.session.clone(),
            stream,
            attach,
            first,
            events,
        }
    }

    /// An event with a fresh id, no data and the retry hint: where a client
    /// resumes from (SEP-1699).
    fn priming(&mut self, stream: u64) -> SseEvent {
        self.next_seq += 1;
        SseEvent {
            id: Some(
                EventId {
                    stream,
                    seq: self.next_seq,
                }
                .render(),
            ),
            name: None,
            data: Arc::from(""),
            retry: Some(self.config.sse_retry),
        }
    }

    fn event(&self, id: EventId, data: Arc<str>) -> SseEvent {
        match self.mode {
            Mode::Streamable => SseEvent {
                id: Some(id.render()),
                name: None,
                data,
                retry: None,
            },
            Mode::Legacy => SseEvent {
                id: None,
                name: Some("message"),
                data,
                retry: None,
            },
        }
    }

    /// Sends a frame to the stream it belongs to. Returns false when a
    /// legacy stream could not take it.
    fn route(&mut self, frame: Frame) -> bool {
        let mapped = frame
            .related
            .as_ref()
            .and_then(|id| self.by_request.get(id).copied());
        let stream = match (self.mode, mapped, frame.kind) {
            (Mode::Legacy, _, _) => STANDALONE,
            (_, Some(stream), _) => stream,
            (_, None, FrameKind::Response) if frame.related.is_none() => {
                self.batches.pop_front().unwrap_or(STANDALONE)
            }
            (_, None, FrameKind::Response) => {
                // Its request was cancelled: the standalone stream may
                // carry no responses.
                tracing::debug!(target: "arbor::transports", related = ?frame.related, "response to no open request; dropped");
                return true;
            }
            (_, None, _) => STANDALONE,
        };
        let answers = frame.kind == FrameKind::Response && stream != STANDALONE;
        self.next_seq += 1;
        let id = EventId {
            stream,
            seq: self.next_seq,
        };
        let data: Arc<str> = Arc::from(frame.json);
        if self.mode == Mode::Streamable {
            self.keep(id, data.clone());
        }
        let event = self.event(id, data);
        let Some(state) = self.streams.get_mut(&stream) else {
            return true;
        };
        let mut taken = true;
        if let Some((_, tx)) = &state.live {
            // A body that cannot take it now is detached; the client
            // resumes from the buffer.
            if tx.try_send(Box::new(event)).is_ok() {
                state.delivered = id.seq;
            } else {
                state.live = None;
                taken = false;
            }
        }
        if answers {
            let array = self
                .streams
                .get(&stream)
                .is_some_and(|s| s.answer != Answer::Each);
            match frame.related {
                Some(related) if !array => self.answered(&related),
                // A batch's one answer ends its stream.
                _ => self.finish(stream),
            }
        }
        taken || self.mode == Mode::Streamable
    }

    /// One request of a stream has its answer (or will get none).
    fn answered(&mut self, request: &Id) {
        let Some(stream) = self.by_request.get(request).copied() else {
            return;
        };
        let Some(state) = self.streams.get_mut(&stream) else {
            return;
        };
        state.pending = state.pending.saturating_sub(1);
        if state.pending == 0 {
            self.finish(stream);
        }
    }

    /// The client cancelled `request`: it gets no answer. A batch with
    /// rejected entries still gets its array, which ends the stream.
    fn cancelled(&mut self, request: &Id) {
        let stream = self.by_request.get(request).copied();
        match stream.and_then(|s| self.streams.get_mut(&s)) {
            Some(state) if state.answer == (Answer::Array { certain: true }) => {
                state.pending = state.pending.saturating_sub(1);
            }
            _ => self.answered(request),
        }
    }

    /// A stream whose requests are all answered ends, and their ids are
    /// free again.
    fn finish(&mut self, stream: u64) {
        if let Some(state) = self.streams.get_mut(&stream) {
            state.pending = 0;
            state.live = None;
            for id in std::mem::take(&mut state.requests) {
                self.by_request.remove(&id);
            }
        }
    }

    /// SEP-1699: closes the request's stream after a retry hint; the client
    /// comes back with `Last-Event-ID`.
    fn release(&mut self, request: &Id) {
        let Some(stream) = self.by_request.get(request).copied() else {
            return;
        };
        if let Some(state) = self.streams.get_mut(&stream).filter(|s| s.resumable) {
            if let Some((_, tx)) = state.live.take() {
                let _ = tx.try_send(Box::new(self.priming(stream)));
            }
        }
    }

    /// Keeps an event for replay, within the buffer's bounds.
    fn keep(&mut self, id: EventId, data: Arc<str>) {
        let memory = match &self.memory {
            None => None,
            Some(account) => match account.try_take(data.len(), arbor_mcp::memory::Held::Inbound) {
                Some(share) => Some(share),
                None => {
                    // The server's budget is spent: the event is not kept,
                    // and a resume from before it is refused, not gapped.
                    if let Some(state) = self.streams.get_mut(&id.stream) {
                        state.evicted = state.evicted.max(id.seq);
                    }
                    return;
                }
            },
        };
        self.kept_bytes.add(data.len());
        if let Some(state) = self.streams.get_mut(&id.stream) {
            state.kept += 1;
        }
        self.kept.push_back(Kept {
            id,
            at: Instant::now(),
            data,
            _memory: memory,
        });
        self.prune();
    }

    /// Lets go of the oldest events while the buffer is over a bound (count,
    /// bytes, age).
    fn prune(&mut self) {
        let now = Instant::now();
        while let Some(oldest) = self.kept.front() {
            let over = self.kept.len() > self.config.replay_events
                || self.kept_bytes.0 > self.config.replay_bytes
                || now.duration_since(oldest.at) > self.config.replay_age;
            if !over {
                break;
            }
            if let Some(gone) = self.kept.pop_front() {
                self.kept_bytes.sub(gone.data.len());
                let stream = gone.id.stream;
                let Some(state) = self.streams.get_mut(&stream) else {
                    continue;
                };
                state.evicted = state.evicted.max(gone.id.seq);
                state.kept = state.kept.saturating_sub(1);
                // A finished stream with nothing left to replay is forgotten.
                let finished = state.pending == 0 && state.live.is_none() && state.kept == 0;
                if stream != STANDALONE && finished {
                    self.streams.remove(&stream);
                }
            }
        }
    }
}
