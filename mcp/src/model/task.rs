//! Tasks as clients see them: 2026-07-28's tasks extension ([`TaskView`])
//! and the 2025-11-25 task surface ([`LegacyTaskView`]), which name the
//! same fields differently.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::jsonrpc::ErrorObject;

/// Where a task stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Running.
    Working,
    /// Waiting for `tasks/update` to answer its input requests.
    InputRequired,
    /// Finished with a result.
    Completed,
    /// Finished with an error.
    Failed,
    /// Stopped by `tasks/cancel`.
    Cancelled,
}

/// A task in 2026-07-28 (`tasks/get`, and a `CreateTaskResult`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    /// Its id.
    pub task_id: String,
    /// Where it stands.
    pub status: TaskState,
    /// What it is doing, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub last_updated_at: String,
    /// How long it is kept from creation, in ms.
    pub ttl_ms: u64,
    /// How often to poll it, in ms.
    pub poll_interval_ms: u64,
    /// What it asks for, while `input_required` (`tasks/get` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_requests: Option<Value>,
    /// Its result, once `completed` (`tasks/get` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Its error, once `failed` (`tasks/get` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
}

/// A task in 2025-11-25 (`tasks/get`, `tasks/list`, `CreateTaskResult`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyTaskView {
    /// Its id.
    pub task_id: String,
    /// Where it stands.
    pub status: TaskState,
    /// What it is doing, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub last_updated_at: String,
    /// How long it is kept from creation, in ms.
    pub ttl: u64,
    /// How often to poll it, in ms.
    pub poll_interval: u64,
}
