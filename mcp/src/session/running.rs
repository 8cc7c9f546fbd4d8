//! Requests in flight: each feature request runs as a task the session
//! owns, bounded by `max_in_flight` and the request timeout, answered once
//! (or not at all when cancelled), its input rounds served in its era.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arbor_runtime::{ActorRef, Context};
use futures_util::FutureExt;
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::modern::shape_modern;
use super::request_state::{input_required, open_request_state};
use super::task_run;
use super::{Session, SessionMsg};
use crate::context::{Progress, RequestContext};
use crate::jsonrpc::{code, ErrorObject, Id, Message, Request, Response};
use crate::model::{LogLevel, Method};
use crate::outbox::Frame;
use crate::server::{McpServer, Outcome};
use crate::tasks::Holder;
use crate::trace::TraceParent;
use crate::version::{Era, ProtocolVersion};

/// The most input rounds one request may take in the handshake era.
const MAX_INPUT_ROUNDS: usize = 8;

/// A request task in flight.
pub(super) struct Running {
    /// Which task for its id (an id may be reused once answered).
    pub(super) serial: u64,
    /// Awaited by the drain, aborted by a cancel.
    pub(super) task: JoinHandle<()>,
    /// Answered in its batch's array, not on its own.
    pub(super) batched: bool,
    /// Set once its task has its outcome: the answer is on its way, and a
    /// session ending now must not answer it again.
    pub(super) answered: Arc<AtomicBool>,
}

impl Session {
    /// Refuses a request whose id is in use, or one past the in-flight limit.
    pub(super) fn admit(&self, id: &Id) -> Result<(), ErrorObject> {
        if self.in_flight.contains_key(id) || self.listening(id) {
            return Err(ErrorObject::new(
                code::INVALID_REQUEST,
                "a request with this id is already in flight",
            )
            .with_data(json!({ "id": id })));
        }
        let max = self.server.config().max_in_flight;
        if self.in_flight.len() >= max || self.out.owed() >= max {
            return Err(
                ErrorObject::new(code::INVALID_REQUEST, "too many requests in flight")
                    .with_data(json!({ "limit": "max_in_flight", "max": max })),
            );
        }
        Ok(())
    }

    /// Runs `work` as a task owned by this session and answers request `id`
    /// with its outcome: bounded by the request timeout, a panic answered
    /// `-32603`, aborted without an answer if the client cancels.
    pub(super) fn spawn_answer(
        &mut self,
        id: Id,
        method: Method,
        trace: Option<TraceParent>,
        work: impl std::future::Future<Output = Result<Value, ErrorObject>> + Send + 'static,
        ctx: &mut Context<Self>,
    ) {
        // Every event of the request, the handler's own included, carries
        // its session (the session process's pid), id, method and, when
        // the client sent one, its trace.
        let span = tracing::info_span!(
            "mcp.request",
            session = %ctx.myself().pid(),
            request_id = %id,
            method = method.as_str(),
            trace_id = tracing::field::Empty,
            parent_span_id = tracing::field::Empty,
        );
        if let Some(trace) = &trace {
            span.record("trace_id", trace.trace_id.as_str());
            span.record("parent_span_id", trace.parent_id.as_str());
            #[cfg(feature = "otel")]
            crate::trace::set_parent(&span, trace);
        }
        let (out, myself) = (self.out.clone(), ctx.myself().clone());
        let timeout = self.server.config().request_timeout;
        let task_id = id.clone();
        self.next_task += 1;
        let serial = self.next_task;
        let batched = self.batch.is_some();
        let reply_to = self.batch.as_mut().map(|batch| {
            let (tx, rx) = oneshot::channel();
            batch.waiting.push(rx);
            tx
        });
        let unsent = self.out.owe();
        let answered = Arc::new(AtomicBool::new(false));
        let answering = answered.clone();
        // In a batch, the task gathering its answers keeps the share.
        let share = if batched { None } else { self.share.take() };
        let started = std::time::Instant::now();
        let task = tokio::spawn(
            async move {
                let mut held = (unsent, share);
                let outcome = match tokio::time::timeout(
                    timeout,
                    AssertUnwindSafe(work).catch_unwind(),
                )
                .await
                {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(_panic)) => Err(ErrorObject::internal("the handler failed")
                        .with_data(json!({ "method": method.as_str() }))),
                    Err(_) => Err(ErrorObject::new(code::REQUEST_TIMEOUT, "request timed out")
                        .with_data(json!({ "timeoutMs": timeout.as_millis() as u64 }))),
                };
                let took = started.elapsed();
                crate::stats::answered(method, took, &outcome);
                match &outcome {
                    Ok(_) => tracing::debug!(took_us = took.as_micros() as u64, "answered"),
                    Err(e) => tracing::debug!(
                        took_us = took.as_micros() as u64,
                        code = e.code,
                        error = %e.message,
                        "answered with an error"
                    ),
                }
                // The request's share of the server's memory goes before its
                // answer waits for one of its own: held on to, the two would
                // wait on each other once the budget is spent.
                if let Some(share) = held.1.as_mut() {
                    share.release_memory();
                }
                let response = Message::Response(Response {
                    id: Some(task_id.clone()),
                    outcome,
                });
                // Finished first, so the id is free once the client has the answer.
                answering.store(true, Ordering::Release);
                let _ = myself.send_system(SessionMsg::Finished(task_id.clone(), serial));
                match reply_to {
                    Some(batch) => {
                        let _ = batch.send(response.to_value());
                    }
                    None => {
                        let _ = out.send(Frame::new(&response, Some(task_id))).await;
                    }
                }
            }
            .instrument(span),
        );
        self.in_flight.insert(
            id,
            Running {
                serial,
                task,
                batched,
                answered,
            },
        );
    }

    /// Runs a feature request as a task owned by this session.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run(
        &mut self,
        method: Method,
        request: Request,
        version: ProtocolVersion,
        client: Arc<Value>,
        log_level: Option<LogLevel>,
        ctx: &mut Context<Self>,
    ) {
        let modern = version.era() == Era::Modern;
        let Request { id, params, .. } = request;
        if let Err(error) = self.admit(&id) {
            return self.respond(Some(id), Err(error)).await;
        }
        let config = self.server.config();
        let mut params = params.unwrap_or_default();
        let progress = params
            .get("_meta")
            .and_then(|m| m.get("progressToken"))
            .and_then(|t| serde_json::from_value::<Id>(t.clone()).ok())
            .map(|token| Progress::new(token, config.progress_interval));
        let trace = TraceParent::from_params(&params);
        let idempotency = match method {
            Method::ToolsCall => {
                let principal = match self.access.grant() {
                    Some(grant) => crate::idempotency::Principal::Subject(grant.subject().into()),
                    None => crate::idempotency::Principal::of(self.rate.address()),
                };
                match crate::idempotency::key_in(params.get("_meta"), principal) {
                    Ok(key) => key,
                    Err(error) => return self.respond(Some(id), Err(error)).await,
                }
            }
            _ => None,
        };
        params.remove("_meta");
        let mut request_ctx = RequestContext::new(id.clone(), version, client, self.server.clone())
            .with_output(self.out.clone(), progress, log_level)
            .with_idempotency(idempotency)
            .with_grant(self.access.grant());
        if modern {
            match open_request_state(&self.server, method, &mut params) {
                Ok(Some((inputs, state))) => request_ctx = request_ctx.with_inputs(inputs, state),
                Ok(None) => {}
                Err(error) => return self.respond(Some(id), Err(error)).await,
            }
        }
        let (server, myself) = (self.server.clone(), ctx.myself().clone());
        // However the request ends (answered, cancelled, timed out, its
        // session gone), the future that runs it is dropped: so is this.
        let over = request_ctx.cancel_on_drop();
        if version == ProtocolVersion::V2025_11_25 && method == Method::ToolsCall {
            match self.legacy_task(&mut params) {
                Ok(false) => {}
                Ok(true) => {
                    let grant = self.access.grant();
                    let holder = match Holder::of(&self.server, grant.as_deref(), &params) {
                        Ok(holder) => holder,
                        Err(error) => return self.respond(Some(id), Err(error)).await,
                    };
                    let work = async move {
                        let _over = over;
                        serve_request(&server, Method::ToolsCall, params, request_ctx, &myself)
                            .await
                    };
                    let created = task_run::start_legacy(&self.server, holder, work).map(
                        |(task, created)| {
                            self.keep_legacy_task(task);
                            created
                        },
                    );
                    return self.respond(Some(id), created).await;
                }
                Err(error) => return self.respond(Some(id), Err(error)).await,
            }
        }
        let work = async move {
            let _over = over;
            serve_request(&server, method, params, request_ctx, &myself).await
        };
        self.spawn_answer(id, method, trace, work, ctx);
    }
}

/// Runs one feature request to its result, in its era: input a handler asks
/// for becomes an `input_required` result (2026-07-28) or requests to the
/// client through the session (handshake), after which the handler runs
/// again with the answers.
async fn serve_request(
    server: &McpServer,
    method: Method,
    params: Map<String, Value>,
    mut ctx: RequestContext<McpServer>,
    session: &ActorRef<SessionMsg>,
) -> Result<Value, ErrorObject> {
    let modern = ctx.version().era() == Era::Modern;
    for _ in 0..MAX_INPUT_ROUNDS {
        let input = match server.call(method, params.clone(), ctx.clone()).await? {
            Outcome::Done(result) if modern => return Ok(shape_modern(server, method, result)),
            Outcome::Done(result) => return Ok(result),
            Outcome::NeedsInput(input) => input,
            // The input is gathered: the call becomes a task, with it.
            Outcome::RunAsTask if modern && crate::tasks::declared(ctx.client_capabilities()) => {
                let mut params = params;
                params.remove("_meta");
                let created = super::task_run::start(server, params, ctx.detached())?;
                return Ok(shape_modern(server, method, created));
            }
            // A client that takes no tasks waits for the handler instead.
            Outcome::RunAsTask => {
                ctx = ctx.in_a_task();
                continue;
            }
        };
        if let Some(missing) = input.missing_capabilities(ctx.client_capabilities(), ctx.version())
        {
            let code = if modern {
                code::MISSING_REQUIRED_CLIENT_CAPABILITY
            } else {
                code::INVALID_PARAMS
            };
            return Err(ErrorObject::new(
                code,
                "the request needs a client capability that was not declared",
            )
            .with_data(json!({ "requiredCapabilities": missing })));
        }
        if modern {
            return input_required(server, method, &params, &input);
        }
        let mut answers = Map::new();
        for (key, request) in &input.requests {
            let (reply, answer) = oneshot::channel();
            session
                .send_system(SessionMsg::ServerRequest {
                    method: request.method(),
                    params: request.params(ctx.version()),
                    reply,
                    related: ctx.id().clone(),
                })
                .map_err(|_| ErrorObject::internal("the session has ended"))?;
            let answer = answer
                .await
                .map_err(|_| ErrorObject::internal("the session has ended"))??;
            answers.insert(key.clone(), answer);
        }
        ctx = ctx.with_inputs(answers, input.state.clone());
    }
    Err(
        ErrorObject::internal("the handler asked for input too many times")
            .with_data(json!({ "limit": MAX_INPUT_ROUNDS })),
    )
}
