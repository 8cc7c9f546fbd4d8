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
//!
//! A stream transport (TCP, stdio, WebSocket) also bounds requests by count
//! ([`InboundBudget::with_places`]): each message takes one of
//! `max_in_flight` places, kept like its share by a request that runs as a
//! task, so the reader stops reading while the session is at its in-flight
//! limit and a client that pipelines requests gets every answer instead of
//! `too many requests in flight`. When no place is free, what is not a
//! request passes without one: answers to the server's own requests (the
//! requests holding the places may be waiting for them) and notifications
//! (a cancel of a request that holds a place). HTTP has no stream to pause
//! and keeps the error.

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
    /// One per message the session holds, for stream transports.
    places: Option<Arc<Semaphore>>,
    /// The connection's account with the server's memory budget.
    memory: Option<Arc<crate::memory::Consumer>>,
}

/// The members that tell a message's kind, read without building any of it.
#[derive(serde::Deserialize)]
struct Probe {
    method: Option<serde::de::IgnoredAny>,
    id: Option<serde::de::IgnoredAny>,
}

fn probe(bytes: &[u8]) -> Option<Probe> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    serde_json::from_slice::<Probe>(bytes).ok()
}

/// Whether `bytes` is a single JSON-RPC response (an object without a
/// `method`).
fn is_response(bytes: &[u8]) -> bool {
    probe(bytes).is_some_and(|p| p.method.is_none())
}

/// Whether `bytes` may be a request: anything but a single object without
/// a `method` or without an `id` (batches and malformed input count as
/// requests, to be safe).
fn is_request(bytes: &[u8]) -> bool {
    probe(bytes).is_none_or(|p| p.method.is_some() && p.id.is_some())
}

/// Which budget had no room for a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spent {
    /// The connection's own (`max_inbound_bytes`, or its in-flight places).
    Connection,
    /// The server's, shared by all connections (`max_buffered_bytes`).
    Server,
}

/// The bytes of one received message, holding their share of the budget
/// until the session is done with them.
#[derive(Debug)]
pub struct Received {
    pub(crate) payload: Payload,
    pub(crate) share: Share,
    /// What the token that came with it grants (HTTP, per request).
    pub(crate) grant: Option<std::sync::Arc<crate::auth::Grant>>,
}

/// A received message: its bytes, or what its transport decoded them to.
#[derive(Debug)]
pub(crate) enum Payload {
    /// To be decoded by the session.
    Bytes(Vec<u8>),
    /// Decoded by the transport with the server's limits, batches allowed
    /// ([`crate::jsonrpc::decode`]); the session still refuses a batch its
    /// version does not have.
    Decoded(crate::jsonrpc::Incoming),
}

impl Received {
    /// The same message as `message`, which the transport decoded from
    /// these bytes with [`crate::jsonrpc::decode`], the server's limits
    /// and batches allowed (to route it): the session does not parse it a
    /// second time. The bytes' share of the budget is held all the same.
    pub fn decoded(mut self, message: crate::jsonrpc::Incoming) -> Received {
        self.payload = Payload::Decoded(message);
        self
    }

    /// The same message, sent with a token that grants `grant`: the
    /// session takes it as its access ([`crate::auth`]) before the message.
    pub fn authorized(mut self, grant: Option<std::sync::Arc<crate::auth::Grant>>) -> Received {
        self.grant = grant;
        self
    }
}

/// What a received message holds of its connection's budget: bytes, and a
/// place where places are counted. Dropped, it gives them back.
#[derive(Debug, Default)]
pub(crate) struct Share {
    _bytes: Option<OwnedSemaphorePermit>,
    _place: Option<OwnedSemaphorePermit>,
    _memory: Option<crate::memory::Share>,
}

impl Share {
    /// Gives back the share of the server's memory budget, keeping the
    /// connection's own.
    pub(crate) fn release_memory(&mut self) {
        self._memory = None;
    }
}

impl InboundBudget {
    /// A budget of `max_bytes` (at least 1; at most 4 GiB).
    pub fn new(max_bytes: usize) -> Self {
        let max = u32::try_from(max_bytes).unwrap_or(u32::MAX).max(1);
        InboundBudget {
            room: Arc::new(Semaphore::new(max as usize)),
            answers: Arc::new(Semaphore::new(max as usize)),
            max,
            places: None,
            memory: None,
        }
    }

    /// Also draws on the server's memory budget, through this connection's
    /// account (see [`crate::memory`]). Answers to the server's own requests
    /// do not: the requests holding the budget may be waiting for them.
    pub fn with_memory(mut self, account: Option<Arc<crate::memory::Consumer>>) -> Self {
        self.memory = account;
        self
    }

    /// The account to charge for a message over [`FREE_BYTES`], if any.
    fn account_for(&self, response: bool) -> Option<&Arc<crate::memory::Consumer>> {
        self.memory.as_ref().filter(|_| !response)
    }

    /// Also bounds the messages the session holds to `max_in_flight` (at
    /// least 1): for transports that can stop reading (see the module docs).
    pub fn with_places(mut self, max_in_flight: usize) -> Self {
        self.places = Some(Arc::new(Semaphore::new(max_in_flight.max(1))));
        self
    }

    /// A place for `bytes` if one is free: `Ok(None)` where places are not
    /// counted, or for a message that is no request when none is free (only
    /// then is the message looked at); `Err(places)` to wait on.
    fn try_place(&self, bytes: &[u8]) -> Result<Option<OwnedSemaphorePermit>, Arc<Semaphore>> {
        let Some(places) = &self.places else {
            return Ok(None);
        };
        match places.clone().try_acquire_owned() {
            Ok(place) => Ok(Some(place)),
            Err(_) if !is_request(bytes) => Ok(None),
            Err(_) => Err(places.clone()),
        }
    }

    /// Waits until the session holds little enough to take `bytes`, then
    /// hands them over with their share. A message larger than the whole
    /// budget takes all of it, so it still passes, alone; one of up to
    /// [`FREE_BYTES`] passes at once.
    ///
    /// With places ([`InboundBudget::with_places`]) it first waits for one.
    pub async fn admit(&self, bytes: Vec<u8>) -> Received {
        // The semaphores are never closed: a place and a share always come.
        let place = match self.try_place(&bytes) {
            Ok(place) => place,
            Err(places) => {
                metrics::counter!("arbor_mcp_inbound_waits_total", "for" => "place").increment(1);
                places.acquire_owned().await.ok()
            }
        };
        let (bytes_share, memory) = if bytes.len() <= FREE_BYTES {
            (None, None)
        } else {
            // Looked at once: which pool, and whether the server counts it.
            let response = is_response(&bytes);
            let cost = self.cost(&bytes);
            let pool = self.pool(response);
            let share = match pool.clone().try_acquire_many_owned(cost) {
                Ok(share) => Some(share),
                Err(_) => {
                    metrics::counter!("arbor_mcp_inbound_waits_total", "for" => "bytes")
                        .increment(1);
                    pool.acquire_many_owned(cost).await.ok()
                }
            };
            let memory = match self.account_for(response) {
                Some(account) => {
                    account
                        .take(bytes.len(), crate::memory::Held::Inbound)
                        .await
                }
                None => None,
            };
            (share, memory)
        };
        Received {
            payload: Payload::Bytes(bytes),
            grant: None,
            share: Share {
                _bytes: bytes_share,
                _place: place,
                _memory: memory,
            },
        }
    }

    /// Hands `bytes` over with their share (and place) if there is room now;
    /// gives them back otherwise, with the budget that is spent.
    ///
    /// # Errors
    /// The bytes and [`Spent`] when there is no room now.
    pub fn try_admit(&self, bytes: Vec<u8>) -> Result<Received, (Vec<u8>, Spent)> {
        let Ok(place) = self.try_place(&bytes) else {
            return Err((bytes, Spent::Connection));
        };
        let (bytes_share, memory) = if bytes.len() <= FREE_BYTES {
            (None, None)
        } else {
            let response = is_response(&bytes);
            let Ok(share) = self
                .pool(response)
                .try_acquire_many_owned(self.cost(&bytes))
            else {
                return Err((bytes, Spent::Connection));
            };
            let memory = match self.account_for(response) {
                Some(account) => {
                    match account.try_take(bytes.len(), crate::memory::Held::Inbound) {
                        Some(memory) => Some(memory),
                        None => return Err((bytes, Spent::Server)),
                    }
                }
                None => None,
            };
            (Some(share), memory)
        };
        Ok(Received {
            payload: Payload::Bytes(bytes),
            grant: None,
            share: Share {
                _bytes: bytes_share,
                _place: place,
                _memory: memory,
            },
        })
    }

    fn cost(&self, bytes: &[u8]) -> u32 {
        u32::try_from(bytes.len())
            .unwrap_or(u32::MAX)
            .clamp(1, self.max)
    }

    fn pool(&self, response: bool) -> Arc<Semaphore> {
        if response {
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
        Received {
            payload: Payload::Bytes(bytes),
            share: Share::default(),
            grant: None,
        }
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
        assert_eq!(third.0.len(), FREE_BYTES + 1);
        assert_eq!(third.1, Spent::Connection);
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
        assert!(answer.share._bytes.is_none());
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
            async move {
                match budget.admit(big(64)).await.payload {
                    Payload::Bytes(bytes) => bytes.len(),
                    Payload::Decoded(_) => 0,
                }
            }
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
        assert!(answer.share._bytes.is_some());
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
        assert!(received.share._bytes.is_none());
    }

    #[tokio::test]
    async fn places_bound_the_messages_held_and_answers_pass_without_one() {
        let budget = InboundBudget::new(1 << 20).with_places(2);
        let request = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_vec();
        let first = budget.admit(request.clone()).await;
        let _second = budget.try_admit(request.clone()).unwrap();
        // At the limit: a request waits (or is given back) ...
        assert!(budget.try_admit(request.clone()).is_err());
        let waiting = tokio::spawn({
            let (budget, request) = (budget.clone(), request.clone());
            async move { budget.admit(request).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        // ... while the answer to a request of the server's passes.
        let answer = br#"{"jsonrpc":"2.0","id":"s1","result":{}}"#.to_vec();
        let passed = budget.try_admit(answer).unwrap();
        assert!(passed.share._place.is_none());
        // A place comes back when the session is done with a message.
        drop(first);
        let third = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert!(third.share._place.is_some());
    }
}
