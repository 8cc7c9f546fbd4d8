//! Server requests the client answers as tasks (2025-11-25): a
//! `sampling/createMessage` or `elicitation/create` with a `task` param is
//! answered at once with a `CreateTaskResult`, its handler runs on, and the
//! server follows it with `tasks/get`, `tasks/result`, `tasks/list` and
//! `tasks/cancel`, answered from the client's own task store (the server's
//! store type, so both sides keep one set of task rules).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::config::ClientConfig;
use super::handlers::ClientHandlers;
use crate::jsonrpc::ErrorObject;
use crate::model::params::{parse, TaskParams};
use crate::tasks::{Holder, TaskStore};

/// The tasks a client runs for its server.
pub(crate) struct TaskAnswers {
    store: Arc<TaskStore>,
}

impl TaskAnswers {
    pub(crate) fn new(config: &ClientConfig) -> Self {
        TaskAnswers {
            store: Arc::new(TaskStore::new(
                config.task_ttl,
                config.task_poll_interval,
                config.max_tasks,
            )),
        }
    }

    /// Answers one server request: from the task store, as a new task, or
    /// straight from the handlers.
    pub(crate) async fn answer(
        &self,
        handlers: &ClientHandlers,
        method: &str,
        mut params: Map<String, Value>,
    ) -> Result<Value, ErrorObject> {
        match method {
            "tasks/list" => Ok(self.store.legacy_list_all()),
            "tasks/get" | "tasks/result" | "tasks/cancel" => {
                let TaskParams { task_id } = parse(params)?;
                match method {
                    "tasks/get" => self.store.legacy_get(&task_id, None),
                    "tasks/result" => self.store.legacy_result(&task_id, None).await,
                    _ => self.store.legacy_cancel(&task_id, None),
                }
            }
            _ if params.contains_key("task") && handlers.runs_as_task(method) => {
                params.remove("task");
                self.start(handlers.clone(), method.to_string(), params)
            }
            _ => handlers.answer(method, Value::Object(params)).await,
        }
    }

    fn start(
        &self,
        handlers: ClientHandlers,
        method: String,
        params: Map<String, Value>,
    ) -> Result<Value, ErrorObject> {
        // Refused before a task is made for it: a flood gets `-32029`s, not
        // a store of failed tasks.
        handlers.admit(&method)?;
        let (id, view) = self.store.create(Holder::Anyone, None, true)?;
        let (store, task_id) = (self.store.clone(), id.clone());
        let run = tokio::spawn(async move {
            let work = handlers.run(&method, Value::Object(params));
            store.run_legacy(&task_id, work).await;
        });
        self.store.attach(&id, run.abort_handle());
        Ok(json!({ "task": view }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;
    use crate::model::{CreateMessageResult, Role};
    use crate::Content;

    fn sampling(delay: Duration) -> ClientHandlers {
        let mut handlers = ClientHandlers::default();
        handlers.sampling(move |_| async move {
            tokio::time::sleep(delay).await;
            Ok(CreateMessageResult {
                role: Role::Assistant,
                content: Content::text("sampled"),
                model: "m".into(),
                stop_reason: None,
            })
        });
        handlers
    }

    fn ask(task: bool) -> Map<String, Value> {
        let mut params = json!({
            "messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}],
            "maxTokens": 10,
        });
        if task {
            params["task"] = json!({ "ttl": 1000 });
        }
        match params {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn id_params(id: &str) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("taskId".into(), id.into());
        map
    }

    #[tokio::test]
    async fn a_request_over_the_rate_is_refused_before_a_task_is_made() {
        let tasks = TaskAnswers::new(&ClientConfig::default());
        let mut handlers = sampling(Duration::ZERO);
        handlers.server_request_rate(crate::rate::Rate::new(1, 1));
        let method = "sampling/createMessage";
        assert!(tasks.answer(&handlers, method, ask(true)).await.is_ok());
        let refused = tasks.answer(&handlers, method, ask(true)).await;
        assert_eq!(
            refused.err().map(|e| e.code),
            Some(crate::jsonrpc::code::RATE_LIMITED)
        );
        let listed = tasks.answer(&handlers, "tasks/list", Map::new()).await;
        assert_eq!(listed.unwrap()["tasks"].as_array().map(Vec::len), Some(1));
    }

    #[tokio::test]
    async fn a_request_asking_for_a_task_is_run_polled_listed_and_fetched() {
        let config = ClientConfig::default();
        let tasks = TaskAnswers::new(&config);
        let handlers = sampling(Duration::from_millis(50));
        let method = "sampling/createMessage";
        // Without `task`: answered directly.
        let direct = tasks.answer(&handlers, method, ask(false)).await.unwrap();
        assert_eq!(direct["model"], "m");
        // With it: a task, working, then its result.
        let created = tasks.answer(&handlers, method, ask(true)).await.unwrap();
        let id = created["task"]["taskId"].as_str().unwrap().to_string();
        assert_eq!(created["task"]["status"], "working");
        let got = tasks.answer(&handlers, "tasks/get", id_params(&id)).await;
        assert_eq!(got.unwrap()["status"], "working");
        let listed = tasks.answer(&handlers, "tasks/list", Map::new()).await;
        assert_eq!(listed.unwrap()["tasks"][0]["taskId"], id.as_str());
        let result = tasks
            .answer(&handlers, "tasks/result", id_params(&id))
            .await;
        let result = result.unwrap();
        assert_eq!(result["model"], "m");
        assert_eq!(
            result["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
            id.as_str()
        );
        // Finished: it cannot be cancelled any more.
        let late = tasks
            .answer(&handlers, "tasks/cancel", id_params(&id))
            .await;
        assert_eq!(late.unwrap_err().code, -32602);
    }

    #[tokio::test]
    async fn a_cancelled_task_stops_and_the_store_holds_at_most_max_tasks() {
        let config = ClientConfig {
            max_tasks: 1,
            ..ClientConfig::default()
        };
        let tasks = TaskAnswers::new(&config);
        let handlers = sampling(Duration::from_secs(3600));
        let method = "sampling/createMessage";
        let created = tasks.answer(&handlers, method, ask(true)).await.unwrap();
        let id = created["task"]["taskId"].as_str().unwrap().to_string();
        // At the limit: one more is refused.
        let refused = tasks.answer(&handlers, method, ask(true)).await;
        assert_eq!(refused.unwrap_err().code, -32603);
        let cancelled = tasks
            .answer(&handlers, "tasks/cancel", id_params(&id))
            .await;
        assert_eq!(cancelled.unwrap()["status"], "cancelled");
        let result = tasks
            .answer(&handlers, "tasks/result", id_params(&id))
            .await;
        assert_eq!(result.unwrap_err().data.unwrap()["status"], "cancelled");
        // A request without a handler is not made a task.
        let none = ClientHandlers::default();
        let refused = tasks.answer(&none, method, ask(true)).await;
        assert_eq!(refused.unwrap_err().code, -32601);
    }
}
