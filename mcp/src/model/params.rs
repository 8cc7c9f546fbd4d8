//! Typed params of the requests a server answers, in both eras, and what
//! a malformed one is: `-32602` naming the field at fault.
//!
//! Each struct reads the params of one method (`_meta` aside: the envelope
//! is [`RequestMeta`]); unknown fields are ignored, as the schema allows.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{Implementation, JsonObject, LogLevel};
use crate::jsonrpc::{ErrorObject, Id};

/// Reads `params` as `T`; a missing or mistyped field is `-32602` with the
/// field's path in `data.field`.
///
/// # Errors
/// The `-32602` error.
pub fn parse<T: DeserializeOwned>(params: Map<String, Value>) -> Result<T, ErrorObject> {
    let params = Value::Object(params);
    // Valid params, the common case, are read without tracking the path
    // (a third of the cost); only a failure is read again to name it.
    if let Ok(parsed) = T::deserialize(&params) {
        return Ok(parsed);
    }
    serde_path_to_error::deserialize(params).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // A missing field is reported at its parent: name it.
        let field = match inner
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            Some(missing) if path == "." => missing.to_string(),
            Some(missing) => format!("{path}.{missing}"),
            None => path,
        };
        let message = if inner.starts_with("missing field") {
            format!("missing {field}")
        } else {
            format!("invalid {field}: {inner}")
        };
        ErrorObject::invalid_params(message).with_data(json!({ "field": field }))
    })
}

/// The 2026-07-28 envelope every request carries in `_meta` (and, in the
/// handshake era, the progress token).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestMeta {
    /// The protocol version of this request (2026-07-28).
    #[serde(
        rename = "io.modelcontextprotocol/protocolVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub protocol_version: Option<String>,
    /// The capabilities the client declares for this request (2026-07-28).
    #[serde(
        rename = "io.modelcontextprotocol/clientCapabilities",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_capabilities: Option<JsonObject>,
    /// Who the client is (2026-07-28).
    #[serde(
        rename = "io.modelcontextprotocol/clientInfo",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_info: Option<Implementation>,
    /// The log level this request opts into (2026-07-28).
    #[serde(
        rename = "io.modelcontextprotocol/logLevel",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub log_level: Option<LogLevel>,
    /// Where progress notifications for this request are addressed.
    #[serde(
        rename = "progressToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub progress_token: Option<Id>,
    /// Every other key, kept as sent (W3C `traceparent`, extensions).
    #[serde(flatten)]
    pub other: JsonObject,
}

/// `tools/call`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallToolParams {
    /// The tool.
    pub name: String,
    /// Its arguments (an empty object when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<JsonObject>,
}

/// `resources/read`, `resources/subscribe`, `resources/unsubscribe`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceParams {
    /// The resource.
    pub uri: String,
}

/// `prompts/get`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetPromptParams {
    /// The prompt.
    pub name: String,
    /// Its arguments.
    #[serde(default)]
    pub arguments: HashMap<String, String>,
}

/// `tools/list`, `resources/list`, `resources/templates/list`,
/// `prompts/list`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListParams {
    /// Where the previous page ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `completion/complete`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteParams {
    /// What is completed for.
    #[serde(rename = "ref")]
    pub reference: CompleteReference,
    /// The argument being completed and what is typed so far.
    pub argument: CompleteArgument,
    /// Arguments already filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<CompleteContext>,
}

/// What a completion is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum CompleteReference {
    /// A prompt's argument.
    #[serde(rename = "ref/prompt")]
    Prompt {
        /// The prompt.
        name: String,
    },
    /// A resource template's variable.
    #[serde(rename = "ref/resource")]
    Resource {
        /// The template, as written.
        uri: String,
    },
}

/// The argument a completion is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteArgument {
    /// Its name.
    pub name: String,
    /// What is typed so far.
    pub value: String,
}

/// Arguments already filled in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteContext {
    /// By name.
    #[serde(default)]
    pub arguments: HashMap<String, String>,
}

/// `logging/setLevel` (handshake era).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetLevelParams {
    /// The lowest level to send.
    pub level: LogLevel,
}

/// `initialize` (handshake era).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeParams {
    /// The version the client asks for.
    pub protocol_version: String,
    /// What the client can do.
    #[serde(default)]
    pub capabilities: JsonObject,
    /// Who the client is: the schema requires it, a server reads it
    /// leniently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_info: Option<Implementation>,
}

/// `notifications/cancelled`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelledParams {
    /// The request to cancel.
    pub request_id: Id,
    /// Why, for logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `notifications/progress`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressParams {
    /// The request's progress token.
    pub progress_token: Id,
    /// How far along (grows with each report).
    pub progress: f64,
    /// The total, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    /// What is happening.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `tasks/get`, `tasks/cancel`, and in 2025-11-25 `tasks/result`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskParams {
    /// The task.
    pub task_id: String,
}

/// `tasks/update` (2026-07-28): answers to a task's input requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTaskParams {
    /// The task.
    pub task_id: String,
    /// Answers, by the keys of the task's input requests.
    pub input_responses: JsonObject,
}

/// `subscriptions/listen` (2026-07-28).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenParams {
    /// What to be told of.
    pub notifications: ListenFilter,
}

/// What a listen asks to be told of; what is left out is not sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenFilter {
    /// Changes to the tool list.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tools_list_changed: bool,
    /// Changes to the prompt list.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prompts_list_changed: bool,
    /// Changes to the resource and template lists.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resources_list_changed: bool,
    /// Updates of these resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_subscriptions: Option<Vec<String>>,
}

impl ListenFilter {
    /// Whether it asks for changes to `kind`.
    pub fn follows(&self, kind: super::ListKind) -> bool {
        match kind {
            super::ListKind::Tools => self.tools_list_changed,
            super::ListKind::Prompts => self.prompts_list_changed,
            super::ListKind::Resources => self.resources_list_changed,
        }
    }
}

/// `notifications/message`: a log entry for the client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoggingMessageParams {
    /// How severe.
    pub level: LogLevel,
    /// Who logged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logger: Option<String>,
    /// What was logged.
    pub data: Value,
}

/// `notifications/resources/updated` (handshake era; 2026-07-28 adds the
/// listen's id in `_meta`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceUpdatedParams {
    /// The resource that changed.
    pub uri: String,
}

/// A notification of `method` with typed `params` (`None` for a type that
/// does not serialise to an object, which none here does).
pub fn notification(
    method: super::NotificationMethod,
    params: &impl Serialize,
) -> crate::jsonrpc::Notification {
    let params = match serde_json::to_value(params) {
        Ok(Value::Object(params)) => Some(params),
        _ => None,
    };
    crate::jsonrpc::Notification {
        method: method.as_str().into(),
        params,
    }
}

/// `notifications/subscriptions/acknowledged` (2026-07-28): what a listen
/// is told of, the subset of its filter the server honours.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionsAcknowledgedParams {
    /// What will be sent.
    pub notifications: ListenFilter,
    /// The listen's id (`io.modelcontextprotocol/subscriptionId`).
    #[serde(rename = "_meta", default)]
    pub meta: JsonObject,
}
