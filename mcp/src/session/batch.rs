//! 2025-03-26 batches: each message handled as if alone, the answers
//! gathered and sent as one array once the last running request has
//! answered; the session goes on meanwhile.

use tokio::sync::oneshot;

use arbor_runtime::Context;
use serde_json::Value;

use super::Session;
use crate::jsonrpc::{Message, Rejected};
use crate::outbox::Frame;

/// The answers of one 2025-03-26 batch: those given at once, and those of
/// requests still running. They go out as one array once all are in.
#[derive(Default)]
pub(super) struct BatchSink {
    pub(super) ready: Vec<Value>,
    pub(super) waiting: Vec<oneshot::Receiver<Value>>,
}

impl Session {
    /// Handles a batch's messages in order, then sends their answers as
    /// one array.
    pub(super) async fn batch(
        &mut self,
        items: Vec<Result<Message, Rejected>>,
        ctx: &mut Context<Self>,
    ) {
        self.batch = Some(BatchSink::default());
        // The batch's answer belongs to its first request, so a
        // transport with streams routes it to the batch's own.
        let first = items.iter().find_map(|item| match item {
            Ok(Message::Request(r)) => Some(r.id.clone()),
            _ => None,
        });
        for item in items {
            match item {
                Ok(message) => self.message(message, ctx).await,
                Err(rejected) => self.respond(rejected.id, Err(rejected.error)).await,
            }
        }
        let sink = self.batch.take().unwrap_or_default();
        if sink.ready.is_empty() && sink.waiting.is_empty() {
            return;
        }
        let out = self.out.clone();
        let share = self.share.take();
        tokio::spawn(async move {
            let mut share = share;
            let mut answers = sink.ready;
            for answer in sink.waiting {
                // A cancelled request drops its sender: no answer.
                if let Ok(value) = answer.await {
                    answers.push(value);
                }
            }
            if let Some(share) = share.as_mut() {
                share.release_memory();
            }
            if !answers.is_empty() {
                let _ = out.send(Frame::batch(answers, first)).await;
            }
        });
    }
}
