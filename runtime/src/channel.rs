//! A bounded multi-producer, single-consumer queue that is small when idle:
//! one allocation of about 150 bytes, and a buffer only while something is
//! queued. Every session keeps one or two queues for its whole life (its
//! outbox, its SSE stream's events), and tokio's `mpsc` spends about 800
//! bytes on each (cache-padded fields and a first block of 32 slots),
//! which was a tenth of an idle session. The API follows tokio's `mpsc`.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// Queue buffers above this many bytes are released when the queue drains.
const RELEASE_BYTES: usize = 256;

struct State<T> {
    queue: VecDeque<T>,
    /// Places promised to [`Permit`]s, counted against the bound.
    reserved: usize,
    senders: usize,
    receiver_alive: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: usize,
    /// The receiver has something to look at (an item, or the last sender
    /// gone). One waiter at most: `notify_one` keeps a permit for it.
    has_items: Notify,
    /// A place came free, or the receiver left.
    has_room: Notify,
}

/// Why [`Sender::try_send`] (or [`Sender::try_reserve`]) did not queue.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The queue is at its bound; the item is handed back.
    Full(T),
    /// The receiver is gone; the item is handed back.
    Closed(T),
}

/// The receiver is gone: [`Sender::send`] hands the item back.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed<T>(pub T);

/// The sending side; clone it for more senders.
pub struct Sender<T>(Arc<Shared<T>>);

/// The receiving side.
pub struct Receiver<T>(Arc<Shared<T>>);

/// A place reserved in the queue: [`Permit::send`] fills it without
/// waiting; dropping it gives the place back.
pub struct Permit<'a, T> {
    shared: &'a Shared<T>,
    filled: bool,
}

/// A queue holding at most `capacity` items (at least one).
///
/// ```
/// # #[tokio::main] async fn main() {
/// let (tx, mut rx) = arbor_runtime::channel::bounded(2);
/// tx.send(1).await.unwrap();
/// tx.try_send(2).unwrap();
/// assert!(tx.try_send(3).is_err());
/// assert_eq!(rx.recv().await, Some(1));
/// drop(tx);
/// assert_eq!(rx.recv().await, Some(2));
/// assert_eq!(rx.recv().await, None);
/// # }
/// ```
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            reserved: 0,
            senders: 1,
            receiver_alive: true,
        }),
        capacity: capacity.max(1),
        has_items: Notify::new(),
        has_room: Notify::new(),
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl<T> State<T> {
    fn full(&self, capacity: usize) -> bool {
        self.queue.len() + self.reserved >= capacity
    }
}

impl<T> Sender<T> {
    /// Queues `item`, waiting for room while the queue is full.
    ///
    /// # Errors
    /// [`Closed`] with the item when the receiver is gone.
    pub async fn send(&self, item: T) -> Result<(), Closed<T>> {
        match self.reserve().await {
            Ok(permit) => {
                permit.send(item);
                Ok(())
            }
            Err(Closed(())) => Err(Closed(item)),
        }
    }

    /// Reserves a place, waiting for room while the queue is full.
    ///
    /// # Errors
    /// When the receiver is gone.
    pub async fn reserve(&self) -> Result<Permit<'_, T>, Closed<()>> {
        loop {
            let room = self.0.has_room.notified();
            tokio::pin!(room);
            // Registered before the check, so a place freed between the
            // check and the wait is not missed.
            room.as_mut().enable();
            match self.try_reserve() {
                Ok(permit) => return Ok(permit),
                Err(TrySendError::Closed(())) => return Err(Closed(())),
                Err(TrySendError::Full(())) => room.await,
            }
        }
    }

    /// Reserves a place if there is one now.
    ///
    /// # Errors
    /// [`TrySendError::Full`] or [`TrySendError::Closed`].
    pub fn try_reserve(&self) -> Result<Permit<'_, T>, TrySendError<()>> {
        let mut state = self.0.state.lock();
        if !state.receiver_alive {
            return Err(TrySendError::Closed(()));
        }
        if state.full(self.0.capacity) {
            return Err(TrySendError::Full(()));
        }
        state.reserved += 1;
        Ok(Permit {
            shared: &self.0,
            filled: false,
        })
    }

    /// Queues `item` if there is room now.
    ///
    /// # Errors
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the item.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        match self.try_reserve() {
            Ok(permit) => {
                permit.send(item);
                Ok(())
            }
            Err(TrySendError::Full(())) => Err(TrySendError::Full(item)),
            Err(TrySendError::Closed(())) => Err(TrySendError::Closed(item)),
        }
    }

    /// The places free now (neither queued nor reserved).
    pub fn capacity(&self) -> usize {
        let state = self.0.state.lock();
        self.0.capacity - (state.queue.len() + state.reserved).min(self.0.capacity)
    }

    /// The bound the queue was made with.
    pub fn max_capacity(&self) -> usize {
        self.0.capacity
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        !self.0.state.lock().receiver_alive
    }
}

impl<T> Permit<'_, T> {
    /// Fills the reserved place.
    pub fn send(mut self, item: T) {
        let refused = {
            let mut state = self.shared.state.lock();
            state.reserved -= 1;
            if state.receiver_alive {
                state.queue.push_back(item);
                None
            } else {
                Some(item)
            }
        };
        self.filled = true;
        // Outside the lock: an item's drop may send on this queue.
        drop(refused);
        self.shared.has_items.notify_one();
    }
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        if !self.filled {
            self.shared.state.lock().reserved -= 1;
            self.shared.has_room.notify_one();
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.state.lock().senders += 1;
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let last = {
            let mut state = self.0.state.lock();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            self.0.has_items.notify_one();
        }
    }
}

impl<T> Receiver<T> {
    /// The next item; `None` once every sender is gone and the queue is
    /// empty.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            {
                let mut state = self.0.state.lock();
                if let Some(item) = self.pop(&mut state) {
                    return Some(item);
                }
                // (A permit borrows its sender: none is outstanding now.)
                if state.senders == 0 {
                    return None;
                }
            }
            // A permit is kept by `notify_one` if nobody waits yet, so an
            // item queued since the check still wakes this.
            self.0.has_items.notified().await;
        }
    }

    /// The next item if there is one now.
    pub fn try_recv(&mut self) -> Option<T> {
        let mut state = self.0.state.lock();
        self.pop(&mut state)
    }

    /// Whether nothing is queued now.
    pub fn is_empty(&self) -> bool {
        self.0.state.lock().queue.is_empty()
    }

    /// How many items are queued now.
    pub fn len(&self) -> usize {
        self.0.state.lock().queue.len()
    }

    fn pop(&self, state: &mut State<T>) -> Option<T> {
        let item = state.queue.pop_front()?;
        if state.queue.is_empty()
            && state.queue.capacity() * std::mem::size_of::<T>() > RELEASE_BYTES
        {
            state.queue = VecDeque::new();
        }
        self.0.has_room.notify_one();
        Some(item)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let dropped = {
            let mut state = self.0.state.lock();
            state.receiver_alive = false;
            std::mem::take(&mut state.queue)
        };
        // Outside the lock: an item's drop may send on this queue.
        drop(dropped);
        self.0.has_room.notify_waiters();
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .finish()
    }
}

impl<T> std::fmt::Debug for Permit<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit").finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn items_come_out_in_order_up_to_the_bound() {
        let (tx, mut rx) = bounded(3);
        for i in 0..3 {
            tx.try_send(i).unwrap();
        }
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(rx.len(), 3);
        assert_eq!((tx.capacity(), tx.max_capacity()), (0, 3));
        for i in 0..3 {
            assert_eq!(rx.recv().await, Some(i));
        }
        assert!(rx.is_empty());
        assert_eq!(tx.capacity(), 3);
        assert_eq!(rx.try_recv(), None);
    }

    #[tokio::test]
    async fn a_sender_waits_for_room_and_resumes_when_an_item_is_taken() {
        let (tx, mut rx) = bounded(1);
        tx.send(1).await.unwrap();
        let waiting = tokio::spawn(async move { tx.send(2).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "sent past the bound");
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(waiting.await.unwrap(), Ok(()));
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, None, "every sender gone");
    }

    #[tokio::test]
    async fn a_reserved_place_counts_against_the_bound_until_filled_or_dropped() {
        let (tx, mut rx) = bounded(1);
        let permit = tx.try_reserve().unwrap();
        assert!(matches!(tx.try_reserve(), Err(TrySendError::Full(()))));
        drop(permit);
        let permit = tx.try_reserve().unwrap();
        assert!(matches!(tx.try_reserve(), Err(TrySendError::Full(()))));
        permit.send(7);
        assert_eq!(rx.recv().await, Some(7));
        assert!(tx.try_reserve().is_ok(), "its place is free again");
    }

    #[tokio::test]
    async fn senders_learn_the_receiver_is_gone_even_while_waiting() {
        let (tx, rx) = bounded(1);
        tx.send(1).await.unwrap();
        let tx2 = tx.clone();
        let waiting = tokio::spawn(async move { tx2.send(2).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(rx);
        assert_eq!(waiting.await.unwrap(), Err(Closed(2)));
        assert!(tx.is_closed());
        assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_senders_through_a_small_bound_lose_nothing() {
        let (tx, mut rx) = bounded(4);
        let senders: Vec<_> = (0..8u64)
            .map(|s| {
                let tx = tx.clone();
                tokio::spawn(async move {
                    for i in 0..2_000u64 {
                        tx.send(s * 1_000_000 + i).await.unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let mut next = [0u64; 8];
        let mut count = 0;
        while let Some(item) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("no lost wakeup")
        {
            let (s, i) = ((item / 1_000_000) as usize, item % 1_000_000);
            assert_eq!(next[s], i, "each sender's items in order");
            next[s] += 1;
            count += 1;
        }
        assert_eq!(count, 16_000);
        for s in senders {
            s.await.unwrap();
        }
    }

    #[test]
    fn an_idle_queue_is_one_small_allocation() {
        let size = std::mem::size_of::<Shared<Box<u64>>>();
        assert!(size <= 160, "{size} bytes");
    }
}
