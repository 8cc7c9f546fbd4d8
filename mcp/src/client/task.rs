//! Tools run as tasks, from the side that asks: start one, poll it, answer
//! what it asks for, wait for its result, cancel it.
//!
//! In 2026-07-28 a task is the tasks extension: the client declares it on
//! the requests that may create or follow a task (and only on those, so a
//! tool that merely *may* run as a task answers an ordinary call directly),
//! follows it with `tasks/get`, answers its input requests with
//! `tasks/update` through the client's handlers. In 2025-11-25 a task is
//! asked for with a `task` param, and `tasks/result` waits for it; the
//! server's requests on the way (an elicitation, say) reach the client's
//! handlers like any other.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::{Client, ClientError, RequestOptions};
use crate::jsonrpc::ErrorObject;
use crate::model::params::{TaskParams, UpdateTaskParams};
use crate::model::{
    CallToolResult, InputRequestCall, LegacyTaskView, TaskState, TaskSupport, TaskView,
};
use crate::version::Era;

/// What starting a tool as a task gave.
#[derive(Debug)]
pub enum ToolCall {
    /// The server answered at once (it did not make a task of it).
    Finished(CallToolResult),
    /// A task is running; follow it with the handle.
    Task(Box<ToolTask>),
}

/// A `tools/call` running as a task on the server.
///
/// Dropping the handle, or a [`ToolTask::wait`] future, stops following the
/// task but not the task itself: [`ToolTask::cancel`] does that.
#[derive(Debug, Clone)]
pub struct ToolTask {
    client: Client,
    era: Era,
    view: TaskView,
}

/// The shortest and longest pause between two polls, whatever the server
/// suggests: a server asking for 0 ms must not make the client spin.
const POLL_FLOOR: Duration = Duration::from_millis(10);
const POLL_CEILING: Duration = Duration::from_secs(30);

impl ToolTask {
    /// The task's id.
    pub fn id(&self) -> &str {
        &self.view.task_id
    }

    /// The task as last seen (when it was created, or the last poll).
    pub fn last_seen(&self) -> &TaskView {
        &self.view
    }

    /// Polls the task once (`tasks/get`).
    ///
    /// # Errors
    /// As [`Client::request`]; an unknown or expired task is the server's
    /// `-32602` error.
    pub async fn status(&mut self) -> Result<&TaskView, ClientError> {
        self.view = self.client.get_task(&self.view.task_id).await?;
        Ok(&self.view)
    }

    /// Follows the task to its end and gives its result: 2026-07-28 polls
    /// at the server's suggested interval and answers input requests with
    /// the client's handlers; 2025-11-25 waits on `tasks/result`.
    ///
    /// # Errors
    /// A failed task is [`ClientError::Server`] with the task's error; a
    /// task cancelled (by anyone) is [`ClientError::Cancelled`]; more input
    /// rounds than the client allows is [`ClientError::TooManyInputRounds`].
    pub async fn wait(mut self) -> Result<CallToolResult, ClientError> {
        match self.era {
            Era::Handshake => self.wait_for_result().await,
            Era::Modern => self.poll_to_the_end().await,
        }
    }

    async fn wait_for_result(&self) -> Result<CallToolResult, ClientError> {
        // `tasks/result` answers when the task ends, which may be as late as
        // its ttl.
        let options = RequestOptions {
            timeout: Some(
                Duration::from_millis(self.view.ttl_ms).max(self.client.config.request_timeout),
            ),
            ..RequestOptions::default()
        };
        let params = task_params(&self.view.task_id);
        match self
            .client
            .request_with("tasks/result", params, options)
            .await
        {
            Ok(result) => super::api::read("tasks/result", result),
            Err(ClientError::Server(e)) if cancelled(&e) => Err(ClientError::Cancelled),
            Err(e) => Err(e),
        }
    }

    async fn poll_to_the_end(&mut self) -> Result<CallToolResult, ClientError> {
        let mut rounds = 0;
        loop {
            let view = self.status().await?.clone();
            match view.status {
                TaskState::Completed => {
                    let result = view.result.unwrap_or_else(|| json!({ "content": [] }));
                    return super::api::read("tasks/get", result);
                }
                TaskState::Failed => {
                    let error = view
                        .error
                        .unwrap_or_else(|| ErrorObject::internal("the task failed"));
                    return Err(ClientError::Server(error));
                }
                TaskState::Cancelled => return Err(ClientError::Cancelled),
                TaskState::InputRequired => {
                    rounds += 1;
                    if rounds > self.client.config.max_input_rounds {
                        return Err(ClientError::TooManyInputRounds(
                            self.client.config.max_input_rounds,
                        ));
                    }
                    let asked: BTreeMap<String, InputRequestCall> = view
                        .input_requests
                        .map(serde_json::from_value)
                        .transpose()
                        .map_err(|e| ClientError::Malformed {
                            method: "tasks/get".into(),
                            reason: e.to_string(),
                        })?
                        .unwrap_or_default();
                    let input_responses = self.client.answer_all(asked).await;
                    let params = super::api::params_of(&UpdateTaskParams {
                        task_id: view.task_id.clone(),
                        input_responses,
                    });
                    self.client
                        .request("tasks/update", self.client.with_tasks(params))
                        .await?;
                }
                TaskState::Working => {
                    let pause = Duration::from_millis(view.poll_interval_ms)
                        .clamp(POLL_FLOOR, POLL_CEILING);
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// Asks the server to stop the task (`tasks/cancel`).
    ///
    /// # Errors
    /// As [`Client::request`]; a 2025-11-25 server refuses to cancel a task
    /// that has already finished.
    pub async fn cancel(&self) -> Result<(), ClientError> {
        self.client.cancel_task(&self.view.task_id).await
    }
}

/// Whether a 2025-11-25 `tasks/result` error says the task was cancelled.
fn cancelled(error: &ErrorObject) -> bool {
    error
        .data
        .as_ref()
        .and_then(|d| d.get("status"))
        .is_some_and(|s| s == "cancelled")
}

fn task_params(task_id: &str) -> Map<String, Value> {
    super::api::params_of(&TaskParams {
        task_id: task_id.into(),
    })
}

/// Whether a 2026-07-28 error says the tool needs the tasks extension.
fn needs_the_extension(error: &ClientError) -> bool {
    error.server_error().is_some_and(|e| {
        e.code == crate::jsonrpc::code::MISSING_REQUIRED_CLIENT_CAPABILITY
            && e.data
                .as_ref()
                .and_then(|d| d.pointer("/requiredCapabilities/extensions"))
                .and_then(|x| x.get(crate::tasks::EXTENSION))
                .is_some()
    })
}

impl LegacyTaskView {
    /// The same task in 2026-07-28's names.
    fn into_view(self) -> TaskView {
        TaskView {
            task_id: self.task_id,
            status: self.status,
            status_message: self.status_message,
            created_at: self.created_at,
            last_updated_at: self.last_updated_at,
            ttl_ms: self.ttl,
            poll_interval_ms: self.poll_interval,
            input_requests: None,
            result: None,
            error: None,
        }
    }
}

impl Client {
    /// `params` with this request's capabilities declaring the tasks
    /// extension (2026-07-28; other eras ignore it).
    pub(super) fn with_tasks(&self, mut params: Map<String, Value>) -> Map<String, Value> {
        if self.era() != Some(Era::Modern) {
            return params;
        }
        let mut capabilities = self.config.handlers.capabilities();
        capabilities.insert("extensions".into(), json!({ crate::tasks::EXTENSION: {} }));
        let meta = params
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(meta) = meta {
            meta.insert(
                "io.modelcontextprotocol/clientCapabilities".into(),
                Value::Object(capabilities),
            );
        }
        params
    }

    fn era(&self) -> Option<Era> {
        self.protocol_version().map(|v| v.era())
    }

    /// Calls a tool as a task: the server may still answer at once
    /// ([`ToolCall::Finished`]), or start a task to follow
    /// ([`ToolCall::Task`]). A tool listed as never running as a task is
    /// called plainly. [`Client::call_tool`] starts a task by itself for
    /// tools that must run as one, and waits for the result.
    ///
    /// # Errors
    /// As [`Client::request`]; a 2025-11-25 server refuses a task for a
    /// tool that does not take one (unless the listing said so first).
    pub async fn call_tool_as_task(
        &self,
        name: &str,
        arguments: Value,
    ) -> Result<ToolCall, ClientError> {
        self.call_tool_as_task_with(name, arguments, RequestOptions::default())
            .await
    }

    /// [`Client::call_tool_as_task`] with options (timeout, progress: a
    /// progress token stays valid for the task's whole life).
    ///
    /// # Errors
    /// As [`Client::call_tool_as_task`].
    pub async fn call_tool_as_task_with(
        &self,
        name: &str,
        arguments: Value,
        options: RequestOptions,
    ) -> Result<ToolCall, ClientError> {
        let mut params = super::api::tool_params(name, arguments)?;
        let era = self.era().unwrap_or(Era::Handshake);
        if self.shared.tool_tasks(name) == Some(TaskSupport::Never) {
            // Listed as never a task: asking for one would be refused.
            let result = self.request_with("tools/call", params, options).await?;
            return Ok(ToolCall::Finished(super::api::read("tools/call", result)?));
        }
        match era {
            Era::Modern => params = self.with_tasks(params),
            Era::Handshake => {
                params.insert("task".into(), json!({}));
            }
        }
        let result = self.request_with("tools/call", params, options).await?;
        let view = match era {
            Era::Modern if result.get("resultType").and_then(Value::as_str) == Some("task") => {
                Some(super::api::read::<TaskView>("tools/call", result.clone())?)
            }
            Era::Handshake if result.get("task").is_some() => {
                let task = result.get("task").cloned().unwrap_or_default();
                Some(super::api::read::<LegacyTaskView>("tools/call", task)?.into_view())
            }
            _ => None,
        };
        Ok(match view {
            Some(view) => ToolCall::Task(Box::new(ToolTask {
                client: self.clone(),
                era,
                view,
            })),
            None => ToolCall::Finished(super::api::read("tools/call", result)?),
        })
    }

    /// The part of `call_tool` that runs a tool as a task when it must: the
    /// last listing says it requires one; or the server refuses a plain
    /// call (2026-07-28: the tool needs the tasks extension; 2025-11-25:
    /// "method not found" for a tool the client has not seen listed, so it
    /// lists the tools to learn why).
    pub(super) async fn call_tool_following(
        &self,
        name: &str,
        arguments: Value,
        options: RequestOptions,
    ) -> Result<CallToolResult, ClientError> {
        if self.shared.tool_tasks(name) != Some(TaskSupport::Required) {
            let mut params = super::api::tool_params(name, arguments.clone())?;
            if let Some(key) = &options.idempotency_key {
                let meta = params
                    .entry("_meta")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(meta) = meta {
                    meta.insert(crate::idempotency::KEY.into(), Value::String(key.clone()));
                }
            }
            match self
                .request_with("tools/call", params, options.clone())
                .await
            {
                Err(e) if needs_the_extension(&e) => {}
                Err(e) if self.refused_as_untasked(name, &e).await => {}
                other => return super::api::read("tools/call", other?),
            }
        }
        match self
            .call_tool_as_task_with(name, arguments, options)
            .await?
        {
            ToolCall::Finished(result) => Ok(result),
            ToolCall::Task(task) => task.wait().await,
        }
    }

    /// Whether a 2025-11-25 server's "method not found" for `tools/call`
    /// means the tool runs only as a task, as a fresh listing says.
    async fn refused_as_untasked(&self, tool: &str, error: &ClientError) -> bool {
        let not_found = error
            .server_error()
            .is_some_and(|e| e.code == crate::jsonrpc::code::METHOD_NOT_FOUND);
        if !not_found
            || self.era() != Some(Era::Handshake)
            || self.shared.tool_tasks(tool).is_some()
        {
            return false;
        }
        self.list_all_tools().await.is_ok()
            && self.shared.tool_tasks(tool) == Some(TaskSupport::Required)
    }

    /// A task's state (`tasks/get`), in 2026-07-28's names in both eras.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn get_task(&self, task_id: &str) -> Result<TaskView, ClientError> {
        let result = self
            .request("tasks/get", self.with_tasks(task_params(task_id)))
            .await?;
        match self.era() {
            Some(Era::Modern) => super::api::read("tasks/get", result),
            _ => super::api::read::<LegacyTaskView>("tasks/get", result).map(|v| v.into_view()),
        }
    }

    /// Stops a task (`tasks/cancel`).
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn cancel_task(&self, task_id: &str) -> Result<(), ClientError> {
        self.request("tasks/cancel", self.with_tasks(task_params(task_id)))
            .await
            .map(drop)
    }

    /// The answers of the client's handlers to a round of input requests,
    /// by their keys; a request a handler cannot answer is left out (the
    /// server asks again or gives up).
    pub(super) async fn answer_all(
        &self,
        asked: BTreeMap<String, InputRequestCall>,
    ) -> Map<String, Value> {
        let mut responses = Map::new();
        for (key, call) in asked {
            match self.config.handlers.answer(&call.method, call.params).await {
                Ok(answer) => {
                    responses.insert(key, answer);
                }
                Err(error) => {
                    tracing::warn!(%key, method = %call.method, %error, "no answer for an input request");
                }
            }
        }
        responses
    }
}
