//! The inbound budget of one connection: how many bytes of received
//! messages its session may hold (queued in its mailbox, or kept by requests
//! still running) before the transport stops reading.
//!
//! A message takes its share when read and gives it back when the session is
//! done with it: at once for a notification or an answer given on the spot,
//! when its answer is queued for a request that runs as a task. A client's
//! answers to the server's requests (elicitation, sampling, roots) must get
//! through while the requests waiting for them hold the budget, or both
//! would wait for ever: responses draw on a second budget of the same size,
//! which only they use and which nothing holds for long. Messages of up to
//! [`FREE_BYTES`] take no share (nor the cost of telling which kind they
//! are). Bounding
//! messages by count alone lets a client that sends large requests and
//! never reads the answers hold `mailbox + in flight` times the largest
//! message (hundreds of MiB); with the budget it holds
//! [`ServerConfig::max_inbound_bytes`](crate::server::ServerConfig::max_inbound_bytes).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Messages this small pass without a share of the budget (see the module
/// docs); at most `mailbox + max_in_flight` of them are held at once.
pub const FREE_BYTES: usize = 64 << 10;

/// A connection's inbound budget, shared by its reader and its session.
#[derive(Clone, Debug)]
pub struct InboundBudget {
    /// For requests and notifications.
    room: Arc<Semaphore>,
    /// For responses to the server's own requests.
    answers: Arc<Semaphore>,
    max: u32,
}

/// Whether `bytes` is a single JSON-RPC response (an object without a
/// `method`). Read without building any of it.
fn is_response(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        method: Option<serde::de::IgnoredAny>,
    }
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && serde_json::from_slice::<Probe>(bytes).is_ok_and(|p| p.method.is_none())
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
            answers: Arc::new(Semaphore::new(max as usize)),
            max,
        }
    }

    /// Waits until the session holds little enough to take `bytes`, then
    /// hands them over with their share. A message larger than the whole
    /// budget takes all of it, so it still passes, alone; one of up to
    /// [`FREE_BYTES`] passes at once.
    pub async fn admit(&self, bytes: Vec<u8>) -> Received {
        if bytes.len() <= FREE_BYTES {
            return bytes.into();
        }
        let share = self.cost(&bytes);
        // The semaphores are never closed: a share always comes.
        let share = self.pool(&bytes).acquire_many_owned(share).await.ok();
        Received { bytes, share }
    }

    /// Hands `bytes` over with their share if there is room now; gives them
    /// back otherwise.
    pub fn try_admit(&self, bytes: Vec<u8>) -> Result<Received, Vec<u8>> {
        if bytes.len() <= FREE_BYTES {
            return Ok(bytes.into());
        }
        match self.pool(&bytes).try_acquire_many_owned(self.cost(&bytes)) {
            Ok(share) => Ok(Received {
                bytes,
                share: Some(share),
            }),
            Err(_) => Err(bytes),
        }
    }

    fn cost(&self, bytes: &[u8]) -> u32 {
        u32::try_from(bytes.len())
            .unwrap_or(u32::MAX)
            .clamp(1, self.max)
    }

    fn pool(&self, bytes: &[u8]) -> Arc<Semaphore> {
        if is_response(bytes) {
            self.answers.clone()
        } else {
            self.room.clone()
        }
    }

    /// Bytes free now for requests and notifications (for tests and
    /// introspection).
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

    const KIB: usize = 1 << 10;

    /// A message over the free size: `kib` KiB and one byte.
    fn big(kib: usize) -> Vec<u8> {
        vec![b'x'; kib * KIB + 1]
    }

    #[test]
    fn messages_are_admitted_up_to_the_budget_and_not_a_byte_past_it() {
        let budget = InboundBudget::new(2 * (FREE_BYTES + 1));
        let first = budget.try_admit(big(64)).unwrap();
        let second = budget.try_admit(big(64)).unwrap();
        assert_eq!(budget.available(), 0);
        let third = budget.try_admit(big(64)).unwrap_err();
        assert_eq!(third.len(), FREE_BYTES + 1);
        // Done with one: its share comes back.
        drop(first);
        assert_eq!(budget.available(), FREE_BYTES + 1);
        drop(second);
        assert_eq!(budget.available(), 2 * (FREE_BYTES + 1));
    }

    #[test]
    fn small_messages_pass_a_spent_budget() {
        let budget = InboundBudget::new(FREE_BYTES + 1);
        let _held = budget.try_admit(big(64)).unwrap();
        assert!(budget.try_admit(big(64)).is_err());
        let answer = budget.try_admit(vec![b'a'; FREE_BYTES]).unwrap();
        assert!(answer.share.is_none());
    }

    #[test]
    fn a_message_larger_than_the_budget_takes_all_of_it_and_passes_alone() {
        let budget = InboundBudget::new(FREE_BYTES + 1);
        let huge = budget.try_admit(big(1024)).unwrap();
        assert_eq!(budget.available(), 0);
        assert!(budget.try_admit(big(64)).is_err());
        drop(huge);
        assert_eq!(budget.available(), FREE_BYTES + 1);
    }

    #[tokio::test]
    async fn admit_waits_for_room() {
        let budget = InboundBudget::new(FREE_BYTES + 1);
        let held = budget.admit(big(64)).await;
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.admit(big(64)).await.bytes.len() }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        drop(held);
        assert_eq!(waiting.await.unwrap(), FREE_BYTES + 1);
    }

    #[test]
    fn a_response_is_told_from_a_request() {
        assert!(is_response(br#"{"jsonrpc":"2.0","id":1,"result":{"a":1}}"#));
        assert!(is_response(
            br#" {"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}"#
        ));
        assert!(!is_response(br#"{"jsonrpc":"2.0","id":1,"method":"x"}"#));
        assert!(!is_response(br#"[{"jsonrpc":"2.0","id":1,"result":{}}]"#));
        assert!(!is_response(b"{broken"));
    }

    #[test]
    fn responses_draw_on_their_own_budget() {
        let budget = InboundBudget::new(FREE_BYTES + 100);
        let _request = budget.try_admit(big(64)).unwrap();
        assert!(budget.try_admit(big(64)).is_err());
        let pad = "x".repeat(FREE_BYTES);
        let answer = format!(r#"{{"jsonrpc":"2.0","id":1,"result":{{"text":"{pad}"}}}}"#);
        let answer = budget.try_admit(answer.into_bytes()).unwrap();
        assert!(answer.share.is_some());
        // A request that looks like one is still a request.
        let request =
            format!(r#"{{"jsonrpc":"2.0","id":2,"method":"x","params":{{"text":"{pad}"}}}}"#);
        assert!(budget.try_admit(request.into_bytes()).is_err());
        let batch = format!(r#"[{{"jsonrpc":"2.0","id":3,"result":"{pad}"}}]"#);
        assert!(budget.try_admit(batch.into_bytes()).is_err());
        drop(answer);
    }

    #[test]
    fn bytes_from_outside_any_budget_hold_no_share() {
        let received = Received::from(b"{}".to_vec());
        assert!(received.share.is_none());
    }
}
