//! The tasks extension (`io.modelcontextprotocol/tasks`, 2026-07-28): a
//! `tools/call` answered with a task the client polls.
//!
//! A tool declares whether it runs as a task ([`TaskSupport`]). When the
//! client declares the extension on the request, such a call is answered at
//! once with a `CreateTaskResult`; the tool runs on its own and the client
//! follows it with `tasks/get`, answers its input requests with
//! `tasks/update` and stops it with `tasks/cancel`. Tasks live in the
//! server, not the connection, so any connection (or instance sharing the
//! store) may poll them; each is kept for its `ttlMs` from creation.
//!
//! When the server checks tokens, a task is its creator's alone
//! (its holder): another subject's `tasks/*` is answered as for an unknown
//! task, so ids are no capability, and a token that has since lost the
//! tool's scope is refused with the scopes to step up to.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use crate::auth::{AuthError, Denied, Grant};
use crate::jsonrpc::ErrorObject;
use crate::model::{LegacyTaskView, Method, TaskState, TaskView};

/// The extension's identifier, as declared in capabilities.
pub const EXTENSION: &str = "io.modelcontextprotocol/tasks";

pub use crate::model::TaskSupport;

/// Whether `client` (a request's capabilities) declares the extension.
pub fn declared(client: &Value) -> bool {
    client
        .get("extensions")
        .and_then(|e| e.get(EXTENSION))
        .is_some()
}

/// The `-32021` error for a client without the extension.
pub fn missing_extension() -> ErrorObject {
    ErrorObject::new(
        crate::jsonrpc::code::MISSING_REQUIRED_CLIENT_CAPABILITY,
        "this request needs the tasks extension",
    )
    .with_data(json!({ "requiredCapabilities": { "extensions": { EXTENSION: {} } } }))
}

/// Where a task stands.
pub(crate) enum Status {
    Working,
    InputRequired(Value),
    Completed(Value),
    Failed(ErrorObject),
    Cancelled,
}

impl Status {
    fn state(&self) -> TaskState {
        match self {
            Status::Working => TaskState::Working,
            Status::InputRequired(_) => TaskState::InputRequired,
            Status::Completed(_) => TaskState::Completed,
            Status::Failed(_) => TaskState::Failed,
            Status::Cancelled => TaskState::Cancelled,
        }
    }

    fn terminal(&self) -> bool {
        matches!(
            self,
            Status::Completed(_) | Status::Failed(_) | Status::Cancelled
        )
    }
}

/// Who may follow a task.
#[derive(Debug)]
pub(crate) enum Holder {
    /// Anyone who knows its id: the server checks no tokens (or the store
    /// is a client's).
    Anyone,
    /// The subject whose call made it, while its token holds `needs`: the
    /// scopes that call needed.
    Subject { subject: String, needs: Vec<String> },
}

impl Holder {
    /// The holder of a task that `tools/call` with `params` makes under
    /// `grant`.
    ///
    /// # Errors
    /// `-32034` when the server checks tokens and there is no grant (the
    /// call itself fails closed too).
    pub(crate) fn of(
        server: &crate::server::McpServer,
        grant: Option<&Grant>,
        params: &Map<String, Value>,
    ) -> Result<Holder, ErrorObject> {
        let Some(auth) = server.auth() else {
            return Ok(Holder::Anyone);
        };
        let Some(grant) = grant else {
            return Err(Denied::Unauthenticated(AuthError::Missing).error(auth, None));
        };
        let required = auth.config().required_scopes.iter().map(String::as_str);
        let needs = required
            .chain(auth.scopes_for(Method::ToolsCall, Some(params)))
            .map(str::to_string)
            .collect();
        Ok(Holder::Subject {
            subject: grant.subject().to_string(),
            needs,
        })
    }

    /// Whether `by` may follow task `id`.
    ///
    /// # Errors
    /// The unknown-task error for anyone but the subject; `-32035` naming
    /// the scopes when its token lacks one.
    fn admits(&self, id: &str, by: Option<&Grant>) -> Result<(), ErrorObject> {
        let Holder::Subject { subject, needs } = self else {
            return Ok(());
        };
        match by {
            Some(grant) if grant.subject() == subject => {
                if let Some(lacking) = needs.iter().find(|s| !grant.allows(s)) {
                    metrics::counter!("arbor_auth_refused_total", "reason" => "insufficient_scope")
                        .increment(1);
                    let denied = Denied::InsufficientScope(lacking.clone());
                    return Err(ErrorObject::new(
                        crate::jsonrpc::code::FORBIDDEN,
                        denied.to_string(),
                    )
                    .with_data(json!({
                        "reason": "insufficient_scope",
                        "scope": needs.join(" "),
                        "taskId": id,
                    })));
                }
                Ok(())
            }
            _ => {
                metrics::counter!("arbor_auth_refused_total", "reason" => "other_subject")
                    .increment(1);
                Err(unknown(id))
            }
        }
    }
}

struct Task {
    holder: Holder,
    created: SystemTime,
    updated: SystemTime,
    status: Status,
    /// Answers for the current input round, as `tasks/update` delivers them.
    answers: Option<mpsc::Sender<Map<String, Value>>>,
    run: Option<AbortHandle>,
    /// Turns true when the task reaches a terminal state.
    finished: watch::Sender<bool>,
}

/// The server's tasks.
pub(crate) struct TaskStore {
    tasks: Mutex<HashMap<String, Task>>,
    ttl: Duration,
    poll: Duration,
    max: usize,
}

impl TaskStore {
    pub(crate) fn new(ttl: Duration, poll: Duration, max: usize) -> Self {
        TaskStore {
            tasks: Mutex::new(HashMap::new()),
            ttl,
            poll,
            max,
        }
    }

    /// A new task of `holder`'s, working, kept within the store's limit;
    /// its id and its view (in 2025-11-25's names when `legacy`).
    /// `answers` takes what `tasks/update` delivers.
    pub(crate) fn create(
        &self,
        holder: Holder,
        answers: Option<mpsc::Sender<Map<String, Value>>>,
        legacy: bool,
    ) -> Result<(String, Value), ErrorObject> {
        let id = format!("{:032x}", rand::random::<u128>());
        let now = SystemTime::now();
        let task = Task {
            holder,
            created: now,
            updated: now,
            status: Status::Working,
            answers,
            run: None,
            finished: watch::Sender::new(false),
        };
        let view = if legacy {
            self.legacy_view(&id, &task)
        } else {
            self.view(&id, &task, false)
        };
        self.insert(&id, task)?;
        Ok((id, view))
    }

    /// Hands the task the run that `tasks/cancel` aborts; a task already
    /// finished (cancelled before its run was attached) aborts it at once.
    pub(crate) fn attach(&self, id: &str, run: AbortHandle) {
        if let Some(task) = self.tasks.lock().get_mut(id) {
            if task.status.terminal() {
                run.abort();
            } else {
                task.run = Some(run);
            }
        }
    }

    /// Keeps a new task, within the store's limit.
    fn insert(&self, id: &str, task: Task) -> Result<(), ErrorObject> {
        let mut tasks = self.tasks.lock();
        self.sweep(&mut tasks);
        if tasks.len() >= self.max {
            return Err(ErrorObject::internal("too many tasks")
                .with_data(json!({ "limit": "max_tasks", "max": self.max })));
        }
        tasks.insert(id.to_string(), task);
        Ok(())
    }

    /// Forgets tasks past their time to live, stopping any still running.
    fn sweep(&self, tasks: &mut HashMap<String, Task>) {
        let now = SystemTime::now();
        tasks.retain(|_, t| {
            let alive = now.duration_since(t.created).unwrap_or_default() < self.ttl;
            if !alive {
                if let Some(run) = t.run.take() {
                    run.abort();
                }
            }
            alive
        });
    }

    /// The live task `id`, if `by` may follow it.
    fn held<'a>(
        &self,
        tasks: &'a mut HashMap<String, Task>,
        id: &str,
        by: Option<&Grant>,
    ) -> Result<&'a mut Task, ErrorObject> {
        self.sweep(tasks);
        let task = tasks.get_mut(id).ok_or_else(|| unknown(id))?;
        task.holder.admits(id, by)?;
        Ok(task)
    }

    fn stamps(task: &Task) -> (String, String) {
        (
            humantime::format_rfc3339_millis(task.created).to_string(),
            humantime::format_rfc3339_millis(task.updated).to_string(),
        )
    }

    /// A task in 2026-07-28's names; `detailed` (for `tasks/get`) adds what
    /// it asks for, its result or its error.
    fn view(&self, id: &str, task: &Task, detailed: bool) -> Value {
        let (created_at, last_updated_at) = Self::stamps(task);
        let mut view = TaskView {
            task_id: id.to_string(),
            status: task.status.state(),
            status_message: None,
            created_at,
            last_updated_at,
            ttl_ms: self.ttl.as_millis() as u64,
            poll_interval_ms: self.poll.as_millis() as u64,
            input_requests: None,
            result: None,
            error: None,
        };
        if detailed {
            match &task.status {
                Status::InputRequired(requests) => view.input_requests = Some(requests.clone()),
                Status::Completed(result) => view.result = Some(result.clone()),
                Status::Failed(error) => view.error = Some(error.clone()),
                Status::Working | Status::Cancelled => {}
            }
        }
        serde_json::to_value(view).unwrap_or(Value::Null)
    }

    /// Moves a task that has not finished to `status`.
    pub(crate) fn set(&self, id: &str, status: Status) {
        let mut tasks = self.tasks.lock();
        if let Some(task) = tasks.get_mut(id) {
            if !task.status.terminal() {
                task.status = status;
                task.updated = SystemTime::now();
                if task.status.terminal() {
                    task.run = None;
                    task.answers = None;
                    task.finished.send_replace(true);
                }
            }
        }
    }

    /// `tasks/get` by `by`.
    pub(crate) fn get(&self, id: &str, by: Option<&Grant>) -> Result<Value, ErrorObject> {
        let mut tasks = self.tasks.lock();
        let task = self.held(&mut tasks, id, by)?;
        Ok(self.view(id, task, true))
    }

    /// `tasks/update`: hands the answers to the task's current input round.
    pub(crate) fn update(
        &self,
        id: &str,
        responses: Map<String, Value>,
        by: Option<&Grant>,
    ) -> Result<Value, ErrorObject> {
        let mut tasks = self.tasks.lock();
        let task = self.held(&mut tasks, id, by)?;
        let Some(answers) = &task.answers else {
            return Ok(json!({}));
        };
        let answered: Vec<String> = responses.keys().cloned().collect();
        // Eventually consistent: an update that finds the queue full is
        // dropped, and the task keeps asking for what it lacks.
        if answers.try_send(responses).is_ok() {
            // Seen at once by a `tasks/get` that follows the ack: what was
            // answered is no longer asked for.
            if let Status::InputRequired(Value::Object(pending)) = &mut task.status {
                for key in &answered {
                    pending.remove(key);
                }
                if pending.is_empty() {
                    task.status = Status::Working;
                }
                task.updated = SystemTime::now();
            }
        }
        Ok(json!({}))
    }

    /// `tasks/cancel`: stops the task; acknowledged for finished tasks too.
    pub(crate) fn cancel(&self, id: &str, by: Option<&Grant>) -> Result<Value, ErrorObject> {
        let mut tasks = self.tasks.lock();
        let task = self.held(&mut tasks, id, by)?;
        if !task.status.terminal() {
            if let Some(run) = task.run.take() {
                run.abort();
            }
            task.status = Status::Cancelled;
            task.updated = SystemTime::now();
            task.answers = None;
            task.finished.send_replace(true);
        }
        Ok(json!({}))
    }
}

/// The 2025-11-25 (core, experimental) task surface, on the same store:
/// `tools/call` with a `task` param, `tasks/get`, `tasks/result`,
/// `tasks/list` and `tasks/cancel`, with that schema's field names.
impl TaskStore {
    fn legacy_view(&self, id: &str, task: &Task) -> Value {
        let (created_at, last_updated_at) = Self::stamps(task);
        let view = LegacyTaskView {
            task_id: id.to_string(),
            status: task.status.state(),
            status_message: None,
            created_at,
            last_updated_at,
            ttl: self.ttl.as_millis() as u64,
            poll_interval: self.poll.as_millis() as u64,
        };
        serde_json::to_value(view).unwrap_or(Value::Null)
    }

    /// `tasks/get` (2025-11-25).
    pub(crate) fn legacy_get(&self, id: &str, by: Option<&Grant>) -> Result<Value, ErrorObject> {
        let mut tasks = self.tasks.lock();
        let task = self.held(&mut tasks, id, by)?;
        Ok(self.legacy_view(id, task))
    }

    /// `tasks/cancel` (2025-11-25): a finished task cannot be cancelled.
    pub(crate) fn legacy_cancel(&self, id: &str, by: Option<&Grant>) -> Result<Value, ErrorObject> {
        {
            let mut tasks = self.tasks.lock();
            let task = self.held(&mut tasks, id, by)?;
            if task.status.terminal() {
                return Err(
                    ErrorObject::invalid_params(format!("task {id} has already finished"))
                        .with_data(json!({ "taskId": id, "status": task.status.state() })),
                );
            }
        }
        self.cancel(id, by)?;
        self.legacy_get(id, by)
    }

    /// Runs a 2025-11-25 task's `work` to its end and records how it ended
    /// (a handler that panics fails its task).
    pub(crate) async fn run_legacy(
        &self,
        id: &str,
        work: impl std::future::Future<Output = Result<Value, ErrorObject>>,
    ) {
        let outcome =
            match futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(work)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(ErrorObject::internal("the handler failed")),
            };
        self.set(
            id,
            match outcome {
                Ok(result) => Status::Completed(result),
                Err(error) => Status::Failed(error),
            },
        );
    }

    /// `tasks/list` (2025-11-25) of a store that is one requestor's alone
    /// (a client's): every live task.
    pub(crate) fn legacy_list_all(&self) -> Value {
        let ids: Vec<String> = self.tasks.lock().keys().cloned().collect();
        self.legacy_list(&ids, None)
    }

    /// `tasks/list` (2025-11-25): the live tasks among `ids` that `by` may
    /// follow.
    pub(crate) fn legacy_list(&self, ids: &[String], by: Option<&Grant>) -> Value {
        let mut tasks = self.tasks.lock();
        self.sweep(&mut tasks);
        let list: Vec<Value> = ids
            .iter()
            .filter_map(|id| tasks.get(id).map(|t| (id, t)))
            .filter(|(id, t)| t.holder.admits(id, by).is_ok())
            .map(|(id, t)| self.legacy_view(id, t))
            .collect();
        json!({ "tasks": list })
    }

    /// `tasks/result` (2025-11-25): waits until the task has finished and
    /// answers with its outcome.
    pub(crate) async fn legacy_result(
        &self,
        id: &str,
        by: Option<&Grant>,
    ) -> Result<Value, ErrorObject> {
        let mut finished = {
            let mut tasks = self.tasks.lock();
            self.held(&mut tasks, id, by)?.finished.subscribe()
        };
        let _ = finished.wait_for(|done| *done).await;
        let tasks = self.tasks.lock();
        let task = tasks.get(id).ok_or_else(|| unknown(id))?;
        match &task.status {
            Status::Completed(result) => {
                let mut result = result.clone();
                result["_meta"] =
                    json!({ "io.modelcontextprotocol/related-task": { "taskId": id } });
                Ok(result)
            }
            Status::Failed(error) => Err(error.clone()),
            _ => Err(
                ErrorObject::invalid_params(format!("task {id} was cancelled"))
                    .with_data(json!({ "taskId": id, "status": "cancelled" })),
            ),
        }
    }
}

fn unknown(id: &str) -> ErrorObject {
    ErrorObject::invalid_params(format!("unknown task: {id}")).with_data(json!({ "taskId": id }))
}
