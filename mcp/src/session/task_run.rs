//! Running a `tools/call` as a task: the run that the task store
//! ([`crate::tasks`]) keeps and `tasks/cancel` aborts.

use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::context::RequestContext;
use crate::jsonrpc::ErrorObject;
use crate::model::Method;
use crate::server::{McpServer, Outcome};
use crate::tasks::{Holder, Status};

/// Starts a 2025-11-25 task of `holder`'s running `work`; returns its id
/// and its `CreateTaskResult`.
///
/// # Errors
/// `-32603` when the store holds `max_tasks` live tasks.
pub(super) fn start_legacy(
    server: &McpServer,
    holder: Holder,
    work: impl std::future::Future<Output = Result<Value, ErrorObject>> + Send + 'static,
) -> Result<(String, Value), ErrorObject> {
    let (id, view) = server.tasks().create(holder, None, true)?;
    let (owner, task_id) = (server.clone(), id.clone());
    let run = tokio::spawn(async move { owner.tasks().run_legacy(&task_id, work).await });
    server.tasks().attach(&id, run.abort_handle());
    Ok((id, json!({ "task": view })))
}

/// Starts `tools/call` as a task of the caller's and returns its
/// `CreateTaskResult` (the task is in the store before this returns, so a
/// `tasks/get` finds it).
///
/// # Errors
/// `-32603` when the store holds `max_tasks` live tasks; `-32034` when the
/// server checks tokens and the call carries none.
pub(super) fn start(
    server: &McpServer,
    params: Map<String, Value>,
    ctx: RequestContext<McpServer>,
) -> Result<Value, ErrorObject> {
    let (answers_tx, answers) = mpsc::channel(16);
    let holder = Holder::of(server, ctx.grant().map(|g| &**g), &params)?;
    let (id, mut result) = server.tasks().create(holder, Some(answers_tx), false)?;
    // The task's end, or its abort by `tasks/cancel`, cancels its context.
    let over = ctx.cancel_on_drop();
    let running = run(server.clone(), id.clone(), params, ctx.in_a_task(), answers);
    let run = tokio::spawn(async move {
        let _over = over;
        running.await
    });
    server.tasks().attach(&id, run.abort_handle());
    result["resultType"] = "task".into();
    Ok(result)
}

/// Runs the tool to its end, pausing in `input_required` while it waits for
/// `tasks/update` to bring every answer it asked for.
async fn run(
    server: McpServer,
    id: String,
    params: Map<String, Value>,
    mut ctx: RequestContext<McpServer>,
    mut answers: mpsc::Receiver<Map<String, Value>>,
) {
    loop {
        let call = std::panic::AssertUnwindSafe(server.call(
            Method::ToolsCall,
            params.clone(),
            ctx.clone(),
        ));
        let outcome = match futures_util::FutureExt::catch_unwind(call).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ErrorObject::internal("the handler failed")),
        };
        let input = match outcome {
            Ok(Outcome::Done(result)) => {
                return server.tasks().set(&id, Status::Completed(result));
            }
            Err(error) => return server.tasks().set(&id, Status::Failed(error)),
            Ok(Outcome::NeedsInput(input)) => input,
            // Not from a tool: its handler in a task is told so (above).
            Ok(Outcome::RunAsTask) => {
                let error = ErrorObject::internal("only a tool call becomes a task");
                return server.tasks().set(&id, Status::Failed(error));
            }
        };
        if let Some(missing) = input.missing_capabilities(ctx.client_capabilities(), ctx.version())
        {
            let error = ErrorObject::new(
                crate::jsonrpc::code::MISSING_REQUIRED_CLIENT_CAPABILITY,
                "the task needs a client capability that was not declared",
            )
            .with_data(json!({ "requiredCapabilities": missing }));
            return server.tasks().set(&id, Status::Failed(error));
        }
        let mut got = Map::new();
        loop {
            // What is still unanswered is what the task lists.
            let mut open = input.clone();
            open.requests.retain(|(k, _)| !got.contains_key(k));
            if open.requests.is_empty() {
                break;
            }
            server
                .tasks()
                .set(&id, Status::InputRequired(open.wire_requests()));
            let Some(batch) = answers.recv().await else {
                return;
            };
            for (k, v) in batch {
                if input.requests.iter().any(|(key, _)| *key == k) {
                    got.entry(k).or_insert(v);
                }
            }
        }
        server.tasks().set(&id, Status::Working);
        ctx = ctx.with_inputs(got, input.state.clone());
    }
}
