//! The pending-request table: every request the client sent and has not
//! yet seen resolved. Each one resolves exactly once, by whichever comes
//! first of its answer, its timeout, its cancellation or the connection's
//! end; whatever comes after finds nothing to resolve.
//!
//! Ids come from the client's counter, which never goes back, so an id is
//! never reused within a client, across reconnections included: a late
//! answer to an old request cannot be mistaken for one to a new request.

use std::collections::HashMap;

use tokio::sync::oneshot;

use super::ClientError;
use crate::jsonrpc::Id;

/// One request waiting for its outcome.
struct Waiting<T> {
    reply: oneshot::Sender<Result<T, ClientError>>,
    /// Where its progress notifications go, if the caller asked for them.
    progress: Option<tokio::sync::mpsc::UnboundedSender<crate::model::ProgressParams>>,
}

/// The requests in flight, by id.
pub(crate) struct Pending<T> {
    waiting: HashMap<i64, Waiting<T>>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending {
            waiting: HashMap::new(),
        }
    }
}

impl<T> Pending<T> {
    /// Waits for `id`'s outcome (an id from the client's
    /// [`IdSource`](super::session::IdSource)).
    pub(crate) fn open(
        &mut self,
        id: &Id,
        reply: oneshot::Sender<Result<T, ClientError>>,
        progress: Option<tokio::sync::mpsc::UnboundedSender<crate::model::ProgressParams>>,
    ) {
        if let Id::Number(n) = id {
            self.waiting.insert(*n, Waiting { reply, progress });
        }
    }

    /// Resolves `id` with `outcome`: `true` if it was waiting (it is not any
    /// more), `false` if it was unknown or already resolved.
    pub(crate) fn resolve(&mut self, id: &Id, outcome: Result<T, ClientError>) -> bool {
        let Id::Number(n) = id else { return false };
        match self.waiting.remove(n) {
            Some(waiting) => {
                // The caller may have stopped waiting (its future dropped):
                // the request is resolved all the same.
                let _ = waiting.reply.send(outcome);
                true
            }
            None => false,
        }
    }

    /// Whether `id` is still waiting.
    pub(crate) fn is_waiting(&self, id: &Id) -> bool {
        matches!(id, Id::Number(n) if self.waiting.contains_key(n))
    }

    /// Where `id`'s progress goes, if it is waiting and asked for it.
    pub(crate) fn progress(
        &self,
        id: &Id,
    ) -> Option<&tokio::sync::mpsc::UnboundedSender<crate::model::ProgressParams>> {
        let Id::Number(n) = id else { return None };
        self.waiting.get(n)?.progress.as_ref()
    }

    /// Resolves every waiting request but those `keep` picks with `error`.
    pub(crate) fn fail_unless(&mut self, error: &ClientError, keep: impl Fn(&Id) -> bool) -> usize {
        let failing: Vec<i64> = self
            .waiting
            .keys()
            .filter(|n| !keep(&Id::Number(**n)))
            .copied()
            .collect();
        for n in &failing {
            if let Some(waiting) = self.waiting.remove(n) {
                let _ = waiting.reply.send(Err(error.clone()));
            }
        }
        failing.len()
    }

    /// Resolves every waiting request with `error` (the connection ended).
    pub(crate) fn fail_all(&mut self, error: &ClientError) -> usize {
        let failed = self.waiting.len();
        for (_, waiting) in self.waiting.drain() {
            let _ = waiting.reply.send(Err(error.clone()));
        }
        failed
    }

    /// How many requests are waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::collections::HashSet;
    use std::time::Duration;

    /// Random interleavings of answers (some repeated, some for unknown
    /// ids), timeouts, cancellations, disconnects that fail everything and
    /// lost connections that fail only what was sent on them: every request's
    /// receiver gets exactly one outcome, `resolve` says `true` exactly once
    /// per request, and no id is handed out twice.
    #[test]
    fn every_request_resolves_exactly_once() {
        for seed in 0..500u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let source = super::super::session::IdSource::default();
            let mut table: Pending<u32> = Pending::default();
            let mut receivers = Vec::new();
            let mut ids = HashSet::new();
            let mut resolved_true: HashMap<Id, usize> = HashMap::new();
            let mut open: Vec<Id> = Vec::new();
            for _ in 0..rng.random_range(1..200) {
                match rng.random_range(0..10) {
                    0..=3 => {
                        let id = source.next();
                        assert!(ids.insert(id.clone()), "seed {seed}: id {id} reused");
                        let (tx, rx) = oneshot::channel();
                        table.open(&id, tx, None);
                        receivers.push((id.clone(), rx));
                        open.push(id);
                    }
                    kind @ 4..=7 => {
                        // Any id ever handed out, or one never handed out.
                        let id = if open.is_empty() || rng.random_bool(0.1) {
                            Id::Number(rng.random_range(-5..1_000))
                        } else {
                            open[rng.random_range(0..open.len())].clone()
                        };
                        let outcome = match kind {
                            4 => Ok(7),
                            5 => Err(ClientError::Timeout(Duration::from_secs(1))),
                            6 => Err(ClientError::Cancelled),
                            _ => Err(ClientError::Server(crate::jsonrpc::ErrorObject::internal(
                                "boom",
                            ))),
                        };
                        let was_waiting = table.is_waiting(&id);
                        let resolved = table.resolve(&id, outcome);
                        assert_eq!(resolved, was_waiting, "seed {seed}");
                        if resolved {
                            *resolved_true.entry(id).or_default() += 1;
                        }
                    }
                    8 if rng.random_bool(0.5) => {
                        for id in &open {
                            if table.is_waiting(id) {
                                *resolved_true.entry(id.clone()).or_default() += 1;
                            }
                        }
                        table.fail_all(&ClientError::Disconnected("gone".into()));
                        assert_eq!(table.len(), 0);
                    }
                    8 => {
                        // A connection lost with only some requests sent on
                        // it: those fail, the rest wait on.
                        let modulus = rng.random_range(2..5);
                        let kept = |id: &Id| matches!(id, Id::Number(n) if n % modulus == 0);
                        let before: Vec<Id> = open
                            .iter()
                            .filter(|id| table.is_waiting(id))
                            .cloned()
                            .collect();
                        let failed =
                            table.fail_unless(&ClientError::Disconnected("lost".into()), kept);
                        assert_eq!(
                            failed,
                            before.iter().filter(|id| !kept(id)).count(),
                            "seed {seed}"
                        );
                        for id in &before {
                            assert_eq!(table.is_waiting(id), kept(id), "seed {seed}: {id}");
                            if !kept(id) {
                                *resolved_true.entry(id.clone()).or_default() += 1;
                            }
                        }
                    }
                    _ => {
                        // A duplicate answer to something already resolved.
                        if let Some(id) = open.first() {
                            if !table.is_waiting(id) {
                                assert!(!table.resolve(id, Ok(1)), "seed {seed}");
                            }
                        }
                    }
                }
            }
            // The end of the connection resolves whatever is left.
            for id in &open {
                if table.is_waiting(id) {
                    *resolved_true.entry(id.clone()).or_default() += 1;
                }
            }
            table.fail_all(&ClientError::Disconnected("end".into()));
            for (id, mut rx) in receivers {
                assert!(rx.try_recv().is_ok(), "seed {seed}: {id} never resolved");
                assert_eq!(resolved_true.get(&id), Some(&1), "seed {seed}: {id}");
            }
        }
    }
}
