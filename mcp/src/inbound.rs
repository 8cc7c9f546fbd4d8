//! The inbound budget of one connection: how many bytes of received
//! messages its session may hold (queued in its mailbox, or kept by requests
//! still running) before the transport stops reading.
//!
//! A message takes its share when read and gives it back when the session is
//! done with it: at once for a notification or an answer given on the spot,
//! when its answer is queued for a request that runs as a task. Bounding
//! messages by count alone lets a client that sends large requests and
//! never reads the answers hold `mailbox + in flight` times the largest
//! message (hundreds of MiB); with the budget it holds
//! [`ServerConfig::max_inbound_bytes`](crate::server::ServerConfig::max_inbound_bytes).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A connection's inbound budget, shared by its reader and its session.
#[derive(Clone, Debug)]
pub struct InboundBudget {
    room: Arc<Semaphore>,
    max: u32,
}

/// The bytes of one received message, holding their share of the budget
/// until the session is done with them.
#[derive(Debug)]
pub struct Received {
    pub(crate) bytes: Vec<u8>,
    pub(crate) share: Option<OwnedSemaphorePermit>,
}

impl InboundBudget {
    /// A budget of `max_bytes` (at least 1; at most 4 GiB).
    pub fn new(max_bytes: usize) -> Self {
        let max = u32::try_from(max_bytes).unwrap_or(u32::MAX).max(1);
        InboundBudget {
            room: Arc::new(Semaphore::new(max as usize)),
            max,
        }
    }

    /// Waits until the session holds little enough to take `bytes`, then
    /// hands them over with their share. A message larger than the whole
    /// budget takes all of it, so it still passes, alone.
    pub async fn admit(&self, bytes: Vec<u8>) -> Received {
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let share = len.clamp(1, self.max);
        // The semaphore is never closed: a share always comes.
        let share = self.room.clone().acquire_many_owned(share).await.ok();
        Received { bytes, share }
    }

    /// Hands `bytes` over with their share if there is room now; gives them
    /// back otherwise.
    pub fn try_admit(&self, bytes: Vec<u8>) -> Result<Received, Vec<u8>> {
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        match self
            .room
            .clone()
            .try_acquire_many_owned(len.clamp(1, self.max))
        {
            Ok(share) => Ok(Received {
                bytes,
                share: Some(share),
            }),
            Err(_) => Err(bytes),
        }
    }

    /// Bytes free now (for tests and introspection).
    pub fn available(&self) -> usize {
        self.room.available_permits()
    }
}

impl From<Vec<u8>> for Received {
    /// Bytes outside any budget (a transport that bounds them otherwise,
    /// such as an HTTP body limit).
    fn from(bytes: Vec<u8>) -> Self {
        Received { bytes, share: None }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn messages_are_admitted_up_to_the_budget_and_not_a_byte_past_it() {
        let budget = InboundBudget::new(10);
        let first = budget.try_admit(vec![b'a'; 6]).unwrap();
        let second = budget.try_admit(vec![b'b'; 4]).unwrap();
        assert_eq!(budget.available(), 0);
        let third = budget.try_admit(vec![b'c']).unwrap_err();
        assert_eq!(third, b"c");
        // Done with one: its share comes back.
        drop(first);
        assert_eq!(budget.available(), 6);
        drop(second);
        assert_eq!(budget.available(), 10);
    }

    #[test]
    fn a_message_larger_than_the_budget_takes_all_of_it_and_passes_alone() {
        let budget = InboundBudget::new(10);
        let big = budget.try_admit(vec![0; 50]).unwrap();
        assert_eq!(big.bytes.len(), 50);
        assert!(budget.try_admit(vec![0; 1]).is_err());
        drop(big);
        assert_eq!(budget.available(), 10);
    }

    #[tokio::test]
    async fn admit_waits_for_room() {
        let budget = InboundBudget::new(8);
        let held = budget.admit(vec![0; 8]).await;
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.admit(vec![0; 3]).await.bytes.len() }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        drop(held);
        assert_eq!(waiting.await.unwrap(), 3);
    }

    #[test]
    fn bytes_from_outside_any_budget_hold_no_share() {
        let received = Received::from(b"{}".to_vec());
        assert!(received.share.is_none());
    }
}
