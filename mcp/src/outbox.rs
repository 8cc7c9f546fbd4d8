//! The outbound queue of one connection: what its session sends, waiting
//! for the transport to write it.
//!
//! It is bounded twice, in messages and in bytes, so a client that stops
//! reading holds at most [`OutboxConfig::max_bytes`] of the server's memory.
//! What a full queue does to the sender is the [`OverflowPolicy`]. Each
//! message is serialised once, when queued, and carries the request it
//! belongs to, so a transport with several streams (Streamable HTTP) can
//! route it without parsing it again.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use arbor_runtime::channel::{self, TrySendError};
use arbor_runtime::{ExitReason, ProcessRef};
use serde_json::Value;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::guard::ResourceGuard;
use crate::jsonrpc::{Id, Message};
use crate::memory::{Consumer, Held};

/// What a full outbound queue does to whoever sends to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowPolicy {
    /// The sender waits for room: the session stops reading, and the client
    /// is slowed to the pace it reads at.
    #[default]
    Wait,
    /// Notifications that do not fit are dropped and counted
    /// (`arbor_mcp_outbound_dropped_total`); responses and requests wait.
    DropNotifications,
    /// The connection is closed: its session stops with an error.
    Disconnect,
}

/// The bounds of a connection's outbound queue.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// Messages queued at most. Default: 256.
    pub max_messages: usize,
    /// Bytes queued at most (a single larger message counts as this many).
    /// Default: 4 MiB.
    pub max_bytes: usize,
    /// What a full queue does. Default: [`OverflowPolicy::Wait`].
    pub policy: OverflowPolicy,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            max_messages: 256,
            max_bytes: 4 << 20,
            policy: OverflowPolicy::Wait,
        }
    }
}

/// What kind of message a frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// A response (or a batch of them).
    Response,
    /// A request to the client.
    Request,
    /// A notification.
    Notification,
}

/// One message for the client, serialised.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The message's JSON text.
    pub json: String,
    /// What it is.
    pub kind: FrameKind,
    /// The client request it belongs to: the request a response answers,
    /// or the one whose handler sent a notification or a request.
    pub related: Option<Id>,
    /// The error code of a response that is an error (a transport maps it
    /// to a status without reading the JSON again).
    pub error: Option<i64>,
}

impl Frame {
    /// A frame for `message`, belonging to `related`.
    pub fn new(message: &Message, related: Option<Id>) -> Frame {
        let (kind, error) = match message {
            Message::Request(_) => (FrameKind::Request, None),
            Message::Notification(_) => (FrameKind::Notification, None),
            Message::Response(r) => (
                FrameKind::Response,
                r.outcome.as_ref().err().map(|e| e.code),
            ),
        };
        Frame {
            json: message.to_json(),
            kind,
            related,
            error,
        }
    }

    /// The answers to one batch, as one array, belonging to the batch's
    /// first request.
    pub fn batch(answers: Vec<Value>, related: Option<Id>) -> Frame {
        Frame {
            json: Value::Array(answers).to_string(),
            kind: FrameKind::Response,
            related,
            error: None,
        }
    }
}

/// What a session hands its transport.
#[derive(Debug)]
pub enum Outbound {
    /// A message to write.
    Frame(Frame),
    /// The handler of this request lets its stream go (SEP-1699 polling):
    /// a transport with resumable streams closes the request's stream with
    /// a retry hint, and the client resumes it later. Others ignore it.
    Release(Id),
}

/// Why a message was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The transport has stopped writing.
    #[error("the connection is closed")]
    Closed,
    /// The queue was full under [`OverflowPolicy::Disconnect`] (the
    /// connection is closing) or, for a best-effort send, full.
    #[error("the outbound queue is full")]
    Full,
}

struct Queued {
    item: Outbound,
    /// The bytes it holds, given back when the transport takes it.
    _bytes: Option<OwnedSemaphorePermit>,
    /// Its share of the server's memory budget.
    _memory: Option<crate::memory::Share>,
}

#[derive(Debug)]
struct Shared {
    bytes: Arc<Semaphore>,
    max_bytes: usize,
    policy: OverflowPolicy,
    dropped: AtomicU64,
    overflowed: AtomicBool,
    wake: Notify,
    owner: OnceLock<ProcessRef>,
    /// Requests whose answers are not queued yet.
    owed: AtomicUsize,
    /// The connection's account with the server's memory budget.
    memory: OnceLock<Arc<Consumer>>,
    /// Under its pressure, notifications that would wait are dropped.
    guard: OnceLock<ResourceGuard>,
}

/// The sending side of a connection's outbound queue.
#[derive(Clone, Debug)]
pub struct Outbox {
    // Boxed: a queue of frames waiting for a slow client grows by
    // pointers, and its buffer is released once it drains.
    tx: channel::Sender<Box<Queued>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.item.fmt(f)
    }
}

/// The transport's side of a connection's outbound queue.
#[derive(Debug)]
pub struct OutboxReceiver {
    rx: channel::Receiver<Box<Queued>>,
    shared: Arc<Shared>,
}

/// A new outbound queue.
pub fn outbox(config: &OutboxConfig) -> (Outbox, OutboxReceiver) {
    let max_bytes = config
        .max_bytes
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let (tx, rx) = channel::bounded(config.max_messages.max(1));
    let shared = Arc::new(Shared {
        bytes: Arc::new(Semaphore::new(max_bytes)),
        max_bytes,
        policy: config.policy,
        dropped: AtomicU64::new(0),
        overflowed: AtomicBool::new(false),
        wake: Notify::new(),
        owner: OnceLock::new(),
        owed: AtomicUsize::new(0),
        memory: OnceLock::new(),
        guard: OnceLock::new(),
    });
    (
        Outbox {
            tx,
            shared: shared.clone(),
        },
        OutboxReceiver { rx, shared },
    )
}

/// A request's answer owed on a queue: counted from the request's start
/// until the guard drops (its answer queued, or its task aborted).
#[derive(Debug)]
pub struct Owed(Arc<Shared>);

impl Drop for Owed {
    fn drop(&mut self) {
        self.0.owed.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Outbox {
    /// Counts an answer owed until the guard drops.
    pub fn owe(&self) -> Owed {
        self.shared.owed.fetch_add(1, Ordering::AcqRel);
        Owed(self.shared.clone())
    }

    /// Answers owed now: requests still running or waiting to queue their
    /// answer.
    pub fn owed(&self) -> usize {
        self.shared.owed.load(Ordering::Acquire)
    }

    /// As [`OutboxReceiver::busy`], seen from the sending side.
    pub fn busy(&self) -> bool {
        self.owed() > 0 && self.tx.capacity() == self.tx.max_capacity()
    }

    /// The process that stops when the queue overflows under
    /// [`OverflowPolicy::Disconnect`]: the connection's session.
    pub fn bind(&self, owner: ProcessRef) {
        let _ = self.shared.owner.set(owner);
    }

    /// Charges what is queued here to `account` of the server's memory
    /// budget, from now on.
    pub fn charge(&self, account: Arc<Consumer>) {
        let _ = self.shared.memory.set(account);
    }

    /// The connection's account with the server's memory budget, once
    /// charged: its inbound budget draws on the same account.
    pub fn memory(&self) -> Option<Arc<Consumer>> {
        self.shared.memory.get().cloned()
    }

    /// Drops notifications that would wait behind others while `guard` is
    /// under pressure, from now on.
    pub fn shed_under(&self, guard: ResourceGuard) {
        let _ = self.shared.guard.set(guard);
    }

    /// Notes activity on the connection, for the resource guard's choice
    /// of the idlest.
    pub fn touch(&self) {
        if let Some(account) = self.shared.memory.get() {
            account.touch();
        }
    }

    /// Whether `frame` is dropped rather than queued: a notification that
    /// would wait behind others while the server is under pressure.
    fn shed(&self, frame: &Frame) -> bool {
        let shed = frame.kind == FrameKind::Notification
            && self.tx.capacity() < self.tx.max_capacity()
            && self
                .shared
                .guard
                .get()
                .is_some_and(ResourceGuard::sheds_notifications);
        if shed {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("arbor_resource_shed_notifications_total").increment(1);
        }
        shed
    }

    /// A share of the memory budget for `frame`, waiting for room. Frames
    /// of up to [`FREE_BYTES`](crate::inbound::FREE_BYTES) take none (their
    /// count is bounded by the queue): a small answer never waits for the
    /// budget.
    async fn memory_for(&self, frame: &Frame) -> Option<crate::memory::Share> {
        if frame.json.len() <= crate::inbound::FREE_BYTES {
            return None;
        }
        let account = self.shared.memory.get()?;
        account.take(frame.json.len(), Held::Unread).await
    }

    /// A share of the memory budget for `frame` if there is room now;
    /// `Err` when there is not.
    fn memory_now(&self, frame: &Frame) -> Result<Option<crate::memory::Share>, ()> {
        match self.shared.memory.get() {
            _ if frame.json.len() <= crate::inbound::FREE_BYTES => Ok(None),
            None => Ok(None),
            Some(account) => account
                .try_take(frame.json.len(), Held::Unread)
                .map(Some)
                .ok_or(()),
        }
    }

    fn cost(&self, frame: &Frame) -> u32 {
        // max_bytes fits in u32 (see `outbox`).
        frame.json.len().min(self.shared.max_bytes) as u32
    }

    /// Queues a frame under the queue's policy.
    ///
    /// # Errors
    /// [`SendError::Closed`] once the transport has stopped;
    /// [`SendError::Full`] under [`OverflowPolicy::Disconnect`] when full.
    pub async fn send(&self, frame: Frame) -> Result<(), SendError> {
        if self.shared.overflowed.load(Ordering::Acquire) {
            return Err(SendError::Full);
        }
        if self.shed(&frame) {
            return Ok(());
        }
        self.touch();
        match (self.shared.policy, frame.kind) {
            (OverflowPolicy::Wait, _)
            | (OverflowPolicy::DropNotifications, FrameKind::Response | FrameKind::Request) => {
                // The server-wide share first: a frame waiting for room
                // holds its memory as one queued does.
                let memory = self.memory_for(&frame).await;
                let permit = self
                    .shared
                    .bytes
                    .clone()
                    .acquire_many_owned(self.cost(&frame))
                    .await
                    .map_err(|_| SendError::Closed)?;
                self.tx
                    .send(Box::new(Queued {
                        item: Outbound::Frame(frame),
                        _bytes: Some(permit),
                        _memory: memory,
                    }))
                    .await
                    .map_err(|_| SendError::Closed)
            }
            (OverflowPolicy::DropNotifications, FrameKind::Notification) => {
                // Dropped and counted when full: never an error.
                let _ = self.try_send(frame);
                Ok(())
            }
            (OverflowPolicy::Disconnect, _) => match self.try_send(frame) {
                Err(SendError::Full) => {
                    self.overflow();
                    Err(SendError::Full)
                }
                other => other,
            },
        }
    }

    /// Queues a frame if it fits now, without waiting (and so without
    /// yielding); gives it back otherwise, for [`Outbox::send`].
    ///
    /// # Errors
    /// The frame, when it does not fit now or the transport has stopped.
    pub fn queue_now(&self, frame: Frame) -> Result<(), Frame> {
        if self.shed(&frame) {
            return Ok(());
        }
        let Ok(memory) = self.memory_now(&frame) else {
            return Err(frame);
        };
        let Ok(slot) = self.tx.try_reserve() else {
            return Err(frame);
        };
        let Ok(bytes) = self
            .shared
            .bytes
            .clone()
            .try_acquire_many_owned(self.cost(&frame))
        else {
            return Err(frame);
        };
        slot.send(Box::new(Queued {
            item: Outbound::Frame(frame),
            _bytes: Some(bytes),
            _memory: memory,
        }));
        self.touch();
        Ok(())
    }

    /// Queues a frame if it fits now; otherwise drops it and counts it.
    /// For best-effort notifications (progress, logs, fan-out updates),
    /// whatever the policy.
    ///
    /// # Errors
    /// [`SendError::Full`] when dropped, [`SendError::Closed`] once the
    /// transport has stopped.
    pub fn try_send(&self, frame: Frame) -> Result<(), SendError> {
        if self.shed(&frame) {
            return Err(SendError::Full);
        }
        let Ok(memory) = self.memory_now(&frame) else {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("arbor_mcp_outbound_dropped_total").increment(1);
            return Err(SendError::Full);
        };
        let fits = self
            .shared
            .bytes
            .clone()
            .try_acquire_many_owned(self.cost(&frame));
        let outcome = match fits {
            Ok(permit) => match self.tx.try_send(Box::new(Queued {
                item: Outbound::Frame(frame),
                _bytes: Some(permit),
                _memory: memory,
            })) {
                Ok(()) => {
                    self.touch();
                    return Ok(());
                }
                Err(TrySendError::Full(_)) => SendError::Full,
                Err(TrySendError::Closed(_)) => SendError::Closed,
            },
            Err(tokio::sync::TryAcquireError::NoPermits) => SendError::Full,
            Err(tokio::sync::TryAcquireError::Closed) => SendError::Closed,
        };
        if outcome == SendError::Full {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("arbor_mcp_outbound_dropped_total").increment(1);
        }
        Err(outcome)
    }

    /// Asks the transport to release `request`'s stream (see
    /// [`Outbound::Release`]). Best effort.
    pub fn release(&self, request: Id) {
        let _ = self.tx.try_send(Box::new(Queued {
            item: Outbound::Release(request),
            _bytes: None,
            _memory: None,
        }));
    }

    fn overflow(&self) {
        if self.shared.overflowed.swap(true, Ordering::AcqRel) {
            return;
        }
        metrics::counter!("arbor_mcp_slow_consumers_disconnected_total").increment(1);
        tracing::info!(target: "arbor::mcp", "outbound queue full: disconnecting the slow consumer");
        self.shared.wake.notify_one();
        if let Some(owner) = self.shared.owner.get() {
            // The client is at fault, not the server: a clean exit, which
            // no cascade counts (a flood of slow readers must not isolate
            // the listener).
            owner.stop(ExitReason::shutdown_with(
                "slow consumer: outbound queue full",
            ));
        }
    }

    /// Messages dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Bytes queued now.
    pub fn queued_bytes(&self) -> usize {
        self.shared.max_bytes - self.shared.bytes.available_permits()
    }

    /// Whether the transport has stopped taking messages.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed() || self.shared.overflowed.load(Ordering::Acquire)
    }
}

impl OutboxReceiver {
    /// The connection's account with the server's memory budget, once its
    /// session has charged the queue (see [`Outbox::charge`]).
    pub fn memory(&self) -> Option<Arc<Consumer>> {
        self.shared.memory.get().cloned()
    }

    /// The session owes answers and nothing waits in the queue: its
    /// handlers are at work, and the connection is not idle however quiet
    /// it is. (Answers queued but not taken mean a client that does not
    /// read.)
    pub fn busy(&self) -> bool {
        self.shared.owed.load(Ordering::Acquire) > 0 && self.rx.is_empty()
    }

    /// The next thing to send; `None` once every sender is gone or the
    /// queue overflowed under [`OverflowPolicy::Disconnect`].
    pub async fn recv(&mut self) -> Option<Outbound> {
        loop {
            if self.shared.overflowed.load(Ordering::Acquire) {
                return None;
            }
            tokio::select! {
                queued = self.rx.recv() => return queued.map(|q| q.item),
                _ = self.shared.wake.notified() => {}
            }
        }
    }

    /// The next frame if one is queued now (releases are skipped).
    pub fn try_recv_frame(&mut self) -> Option<Frame> {
        while let Some(queued) = self.rx.try_recv() {
            if let Outbound::Frame(frame) = queued.item {
                return Some(frame);
            }
        }
        None
    }

    /// Like [`OutboxReceiver::recv`], but only frames: releases are skipped
    /// (for transports with one stream).
    pub async fn recv_frame(&mut self) -> Option<Frame> {
        loop {
            match self.recv().await? {
                Outbound::Frame(frame) => return Some(frame),
                Outbound::Release(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::{Notification, Response};
    use std::time::Duration;

    fn note(bytes: usize) -> Frame {
        let message = Message::Notification(Notification {
            method: "x".repeat(bytes),
            params: None,
        });
        Frame::new(&message, None)
    }

    #[test]
    fn a_frame_names_the_error_it_answers_with() {
        assert_eq!(answer(1).error, None);
        let failed = Message::Response(Response {
            id: Some(Id::Number(2)),
            outcome: Err(crate::jsonrpc::ErrorObject::new(-32601, "no such method")),
        });
        assert_eq!(Frame::new(&failed, None).error, Some(-32601));
        assert_eq!(note(3).error, None);
    }

    fn answer(id: i64) -> Frame {
        let message = Message::Response(Response {
            id: Some(Id::Number(id)),
            outcome: Ok(Value::Null),
        });
        Frame::new(&message, Some(Id::Number(id)))
    }

    fn config(policy: OverflowPolicy) -> OutboxConfig {
        OutboxConfig {
            max_messages: 4,
            max_bytes: 1000,
            policy,
        }
    }

    #[tokio::test]
    async fn waiting_senders_resume_when_the_transport_takes_messages() {
        let (tx, mut rx) = outbox(&config(OverflowPolicy::Wait));
        for _ in 0..4 {
            tx.send(note(10)).await.unwrap_or_default();
        }
        let blocked = tokio::time::timeout(Duration::from_millis(50), tx.send(note(10))).await;
        assert!(blocked.is_err(), "a full queue makes the sender wait");
        assert!(rx.recv_frame().await.is_some());
        assert_eq!(tx.send(note(10)).await, Ok(()));
    }

    #[tokio::test]
    async fn bytes_are_bounded_as_well_as_messages() {
        let (tx, mut rx) = outbox(&config(OverflowPolicy::Wait));
        tx.send(note(600)).await.unwrap_or_default();
        assert!(tx.queued_bytes() > 600);
        let blocked = tokio::time::timeout(Duration::from_millis(50), tx.send(note(600))).await;
        assert!(blocked.is_err(), "1200 bytes do not fit in 1000");
        rx.recv_frame().await;
        assert_eq!(tx.queued_bytes(), 0);
        // One message larger than the bound still goes, alone.
        assert_eq!(tx.send(note(5000)).await, Ok(()));
    }

    #[tokio::test]
    async fn dropped_notifications_are_counted_and_answers_still_wait() {
        let (tx, mut rx) = outbox(&config(OverflowPolicy::DropNotifications));
        for _ in 0..10 {
            assert_eq!(tx.send(note(10)).await, Ok(()));
        }
        assert_eq!(tx.dropped(), 6);
        let waiting = tokio::time::timeout(Duration::from_millis(50), tx.send(answer(1))).await;
        assert!(waiting.is_err(), "a response is never dropped");
        let mut got = 0;
        while rx.try_recv_frame().is_some() {
            got += 1;
        }
        assert_eq!(got, 4);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn under_pressure_notifications_that_would_wait_are_shed() {
        use crate::guard::{GuardConfig, Pressure, ResourceGuard};
        let (tx, mut rx) = outbox(&config(OverflowPolicy::Wait));
        // One descriptor allowed: the guard reads hard pressure.
        let guard = ResourceGuard::new(Some(GuardConfig {
            max_fds: Some(1),
            ..GuardConfig::default()
        }));
        assert!(matches!(guard.sample(), Pressure::Hard(_)));
        tx.shed_under(guard);
        assert_eq!(tx.send(note(10)).await, Ok(()), "nothing queued: it goes");
        assert_eq!(tx.send(note(10)).await, Ok(()));
        assert_eq!(tx.try_send(note(10)), Err(SendError::Full));
        assert_eq!(tx.queue_now(note(10)).map_err(|_| ()), Ok(()));
        assert_eq!(tx.dropped(), 3, "each behind the first is shed");
        assert_eq!(tx.send(answer(1)).await, Ok(()), "answers are never shed");
        assert!(rx
            .try_recv_frame()
            .is_some_and(|f| f.kind == FrameKind::Notification));
        assert!(rx
            .try_recv_frame()
            .is_some_and(|f| f.kind == FrameKind::Response));
        assert!(rx.try_recv_frame().is_none());
    }

    #[tokio::test]
    async fn overflow_under_disconnect_stops_the_owner_and_ends_the_receiver() {
        let (tx, mut rx) = outbox(&config(OverflowPolicy::Disconnect));
        let owner = arbor_runtime::spawn(Idle).await.map(|a| a.process());
        let Ok(owner) = owner else {
            panic!("spawn failed");
        };
        tx.bind(owner.clone());
        for _ in 0..4 {
            assert_eq!(tx.send(note(10)).await, Ok(()));
        }
        assert_eq!(tx.send(note(10)).await, Err(SendError::Full));
        assert!(matches!(owner.wait().await, ExitReason::ShutdownWith(_)));
        assert!(rx.recv().await.is_none(), "the transport stops writing");
        assert!(tx.is_closed());
    }

    struct Idle;
    impl arbor_runtime::Actor for Idle {
        type Msg = ();
        async fn handle(
            &mut self,
            _msg: (),
            _ctx: &mut arbor_runtime::Context<Self>,
        ) -> arbor_runtime::Flow {
            Ok(())
        }
    }
}
