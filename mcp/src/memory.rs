//! The server-wide memory budget: the bytes all connections together may
//! hold in received messages (their inbound budgets), in answers queued or
//! waiting to be queued for clients (their outboxes), and in what their
//! transports keep for them (HTTP replay buffers).
//!
//! Each connection's own bounds (`max_inbound_bytes`, the outbox's
//! `max_bytes`, `max_in_flight`) cap one client; this caps their sum, which
//! `max_connections` times those would not (40 clients sending 256 KiB
//! requests and never reading held 1.7 GB). Past it new work waits: stream
//! readers stop reading, answers wait to be queued, and an HTTP POST that
//! finds no room is answered 429. A wait that lasts disconnects the
//! connection holding the most unread answers first (a client that does not
//! read never gives its share back; one that reads does), with the reason
//! `{shutdown, memory budget: client not reading}`.
//!
//! Bytes are counted in KiB, messages of up to
//! [`FREE_BYTES`](crate::inbound::FREE_BYTES) received take no share, as in
//! the per-connection budget.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use arbor_runtime::{ExitReason, ProcessRef};
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a wait for room lasts before the largest consumer that does
/// not read is disconnected.
const REAP_AFTER: Duration = Duration::from_millis(500);

/// The server-wide budget; cloning gives another handle to it.
#[derive(Clone, Debug)]
pub struct MemoryBudget(Arc<Budget>);

#[derive(Debug)]
struct Budget {
    pool: Arc<Semaphore>,
    max_kib: usize,
    consumers: Mutex<Vec<Weak<Consumer>>>,
}

/// One connection's account with the budget.
#[derive(Debug)]
pub struct Consumer {
    budget: Weak<Budget>,
    /// KiB held by received messages.
    inbound: AtomicUsize,
    /// KiB held by answers queued or waiting to be queued: what a client
    /// that does not read keeps.
    unread: AtomicUsize,
    owner: OnceLock<ProcessRef>,
    /// When a message last came in or went out, in milliseconds of
    /// [`clock`]: the resource guard closes the idlest first.
    last_active: AtomicU64,
    /// Set when this account is chosen to give its memory back.
    reaped: std::sync::atomic::AtomicBool,
    reaping: tokio::sync::Notify,
}

/// What a share is held for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// A received message.
    Inbound,
    /// An answer for the client.
    Unread,
}

/// Bytes held from the budget; given back when dropped.
#[derive(Debug)]
pub struct Share {
    _permit: OwnedSemaphorePermit,
    consumer: Arc<Consumer>,
    held: Held,
    kib: usize,
}

impl Drop for Share {
    fn drop(&mut self) {
        self.consumer
            .counter(self.held)
            .fetch_sub(self.kib, Ordering::Relaxed);
    }
}

fn kib_of(bytes: usize) -> usize {
    bytes.div_ceil(1024).max(1)
}

impl MemoryBudget {
    /// A budget of `max_bytes` (at least 1 KiB).
    pub fn new(max_bytes: usize) -> Self {
        let max_kib = kib_of(max_bytes)
            .min(Semaphore::MAX_PERMITS)
            .min(u32::MAX as usize);
        MemoryBudget(Arc::new(Budget {
            pool: Arc::new(Semaphore::new(max_kib)),
            max_kib,
            consumers: Mutex::new(Vec::new()),
        }))
    }

    /// The default size for this machine: half of its memory (the cgroup's
    /// limit where one is set and lower), 1 GiB where neither can be read.
    pub fn default_bytes() -> usize {
        crate::guard::memory_limit()
            .and_then(|bytes| usize::try_from(bytes / 2).ok())
            .unwrap_or(1 << 30)
    }

    /// The budget, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.0.max_kib.saturating_mul(1024)
    }

    /// Bytes free now.
    pub fn available_bytes(&self) -> usize {
        self.0.pool.available_permits().saturating_mul(1024)
    }

    /// A new account, for one connection.
    pub fn consumer(&self) -> Arc<Consumer> {
        let consumer = Arc::new(Consumer {
            budget: Arc::downgrade(&self.0),
            inbound: AtomicUsize::new(0),
            unread: AtomicUsize::new(0),
            owner: OnceLock::new(),
            last_active: AtomicU64::new(clock()),
            reaped: std::sync::atomic::AtomicBool::new(false),
            reaping: tokio::sync::Notify::new(),
        });
        let mut consumers = self.0.consumers.lock();
        // Accounts of connections gone are dropped here, so the list stays
        // as long as the connections alive (at worst twice).
        if consumers.len() >= 64 && consumers.len().is_power_of_two() {
            consumers.retain(|c| c.strong_count() > 0);
        }
        consumers.push(Arc::downgrade(&consumer));
        consumer
    }
}

/// Milliseconds since the first reading: cheap enough for every message,
/// and a number an atomic holds.
fn clock() -> u64 {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

impl MemoryBudget {
    /// Connections with an account now (each session has one).
    pub fn connections(&self) -> usize {
        self.0
            .consumers
            .lock()
            .iter()
            .filter(|c| c.strong_count() > 0)
            .count()
    }

    /// Stops the sessions of the `n` connections idle longest (nothing
    /// received or sent), with `reason`; returns how many were told.
    pub fn close_idlest(&self, n: usize, reason: &'static str) -> usize {
        if n == 0 {
            return 0;
        }
        let mut idle: Vec<(u64, ProcessRef)> = self
            .0
            .consumers
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .filter_map(|c| {
                let owner = c.owner.get()?.clone();
                Some((c.last_active.load(Ordering::Relaxed), owner))
            })
            .collect();
        let n = n.min(idle.len());
        if n < idle.len() {
            idle.select_nth_unstable_by_key(n, |(at, _)| *at);
        }
        for (_, owner) in &idle[..n] {
            owner.stop(ExitReason::shutdown_with(reason));
        }
        n
    }
}

impl Budget {
    /// Disconnects the connection holding the most unread answers, if any
    /// does; `true` if one was told to stop.
    fn reap(&self) -> bool {
        let victim = self
            .consumers
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            // One already let go is giving its memory back: the next one.
            .filter(|c| !c.reaped.load(Ordering::Acquire))
            .filter(|c| c.unread.load(Ordering::Relaxed) > 0)
            .max_by_key(|c| c.unread.load(Ordering::Relaxed) + c.inbound.load(Ordering::Relaxed));
        let Some(victim) = victim else {
            return false;
        };
        let Some(owner) = victim.owner.get() else {
            return false;
        };
        let unread = victim.unread.load(Ordering::Relaxed);
        tracing::warn!(
            target: "arbor::mcp",
            pid = %owner.pid(),
            unread_kib = unread,
            inbound_kib = victim.inbound.load(Ordering::Relaxed),
            "memory budget spent: disconnecting the client holding the most unread answers"
        );
        metrics::counter!("arbor_mcp_memory_budget_disconnects_total").increment(1);
        // Its transport drops what it has not written (the memory held),
        // and its session stops.
        victim.reaped.store(true, Ordering::Release);
        victim.reaping.notify_waiters();
        owner.stop(ExitReason::shutdown_with(
            "memory budget: client not reading",
        ));
        true
    }
}

impl Consumer {
    /// Names the process that stops when this account is reaped: the
    /// connection's session.
    pub fn bind(&self, owner: ProcessRef) {
        let _ = self.owner.set(owner);
    }

    /// Notes that a message came in or went out now.
    pub fn touch(&self) {
        self.last_active.store(clock(), Ordering::Relaxed);
    }

    /// Resolves once this account has been chosen to give its memory back:
    /// the transport then drops what it has queued and not written (its
    /// client does not read it) and closes the connection.
    pub async fn reaped(&self) {
        loop {
            let notified = self.reaping.notified();
            if self.reaped.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    fn counter(&self, held: Held) -> &AtomicUsize {
        match held {
            Held::Inbound => &self.inbound,
            Held::Unread => &self.unread,
        }
    }

    fn share(self: &Arc<Self>, permit: OwnedSemaphorePermit, held: Held, kib: usize) -> Share {
        self.counter(held).fetch_add(kib, Ordering::Relaxed);
        Share {
            _permit: permit,
            consumer: self.clone(),
            held,
            kib,
        }
    }

    /// Takes `bytes` if there is room now. For what a transport keeps on its
    /// own, such as events kept for replay, as [`Held::Inbound`]: they are
    /// dropped rather than waited for, and are no reason to let a client go.
    pub fn try_take(self: &Arc<Self>, bytes: usize, held: Held) -> Option<Share> {
        let budget = self.budget.upgrade()?;
        let kib = kib_of(bytes).min(budget.max_kib);
        let permit = budget
            .pool
            .clone()
            .try_acquire_many_owned(kib as u32)
            .ok()?;
        Some(self.share(permit, held, kib))
    }

    /// Waits for room for `bytes`; a wait that lasts reaps the largest
    /// consumer that does not read (see the module docs). `None` only when
    /// the budget itself is gone.
    pub(crate) async fn take(self: &Arc<Self>, bytes: usize, held: Held) -> Option<Share> {
        let budget = self.budget.upgrade()?;
        let kib = kib_of(bytes).min(budget.max_kib);
        let pool = budget.pool.clone();
        loop {
            let acquiring = pool.clone().acquire_many_owned(kib as u32);
            match tokio::time::timeout(REAP_AFTER, acquiring).await {
                Ok(permit) => return Some(self.share(permit.ok()?, held, kib)),
                Err(_) => {
                    budget.reap();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn shares_are_counted_per_consumer_and_given_back() {
        let budget = MemoryBudget::new(10 << 10);
        let a = budget.consumer();
        let first = a.try_take(4 << 10, Held::Inbound).unwrap();
        let second = a.try_take(4000, Held::Unread).unwrap();
        assert_eq!(a.inbound.load(Ordering::Relaxed), 4);
        assert_eq!(a.unread.load(Ordering::Relaxed), 4);
        assert_eq!(budget.available_bytes(), 2 << 10);
        assert!(
            a.try_take(3 << 10, Held::Inbound).is_none(),
            "past the budget"
        );
        drop(first);
        drop(second);
        assert_eq!(budget.available_bytes(), 10 << 10);
        assert_eq!(a.unread.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn the_idlest_connections_are_closed_first() {
        use arbor_runtime::{spawn, Actor, Context, Flow};
        struct Idle;
        impl Actor for Idle {
            type Msg = ();
            async fn handle(&mut self, _: (), _: &mut Context<Self>) -> Flow {
                Ok(())
            }
        }
        let budget = MemoryBudget::new(1 << 20);
        let mut held = Vec::new();
        for _ in 0..4 {
            let account = budget.consumer();
            let owner = spawn(Idle).await.unwrap();
            account.bind(owner.process());
            held.push((account, owner));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The oldest but one is active again: the two idlest are 0 and 2.
        held[1].0.touch();
        assert_eq!(budget.connections(), 4);
        assert_eq!(budget.close_idlest(2, "under pressure"), 2);
        for (i, (_, owner)) in held.iter().enumerate() {
            let process = owner.process();
            if i == 0 || i == 2 {
                process.wait().await;
                assert_eq!(
                    process.exit_reason(),
                    Some(ExitReason::shutdown_with("under pressure"))
                );
            } else {
                assert!(process.is_alive(), "{i}");
            }
        }
        assert_eq!(budget.close_idlest(0, "none"), 0);
    }

    #[test]
    fn the_default_is_sized_for_the_machine() {
        let bytes = MemoryBudget::default_bytes();
        assert!(bytes >= 64 << 20, "{bytes}");
    }
}
