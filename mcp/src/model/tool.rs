//! Tools: their definitions, and what a call returns.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Content, Icon, JsonObject};

/// A tool's definition, as `tools/list` shows it.
///
/// The input schema comes from the handler's argument type when the tool is
/// declared with [`ServerBuilder::tool`](crate::ServerBuilder::tool); set it
/// here for [`ServerBuilder::tool_with_schema`](crate::ServerBuilder::tool_with_schema).
///
/// # Examples
/// ```
/// use arbor_mcp::model::{Tool, ToolAnnotations};
///
/// let tool = Tool::new("delete_file")
///     .title("Delete a file")
///     .description("Deletes one file")
///     .annotations(ToolAnnotations {
///         destructive_hint: Some(true),
///         ..ToolAnnotations::default()
///     });
/// let wire = serde_json::to_value(&tool).unwrap();
/// assert_eq!(wire["annotations"]["destructiveHint"], true);
/// assert_eq!(wire["inputSchema"]["type"], "object");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// Its name, unique on the server: what `tools/call` names.
    pub name: String,
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON Schema of its arguments (an object schema).
    #[serde(default = "empty_object_schema")]
    pub input_schema: Value,
    /// The JSON Schema of its structured result, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// Hints about its behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<ToolAnnotations>,
    /// Icons a client may show.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub icons: Vec<Icon>,
    /// How it runs (whether as a task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ToolExecution>,
    /// Metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
    /// A task tool that gathers its input on the call itself and becomes a
    /// task only when its handler says so (arbor's, not on the wire).
    #[serde(skip)]
    pub(crate) task_after_input: bool,
}

/// The input schema of `T`, without the Rust type name schemars puts in
/// `title` (models see it, and it names nothing of theirs).
pub(crate) fn schema_of<T: schemars::JsonSchema>() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(T))
        .unwrap_or_else(|_| json!({"type": "object"}));
    if let Some(root) = schema.as_object_mut() {
        root.remove("title");
    }
    schema
}

/// The schema of a tool without arguments.
pub(crate) fn empty_object_schema() -> Value {
    json!({ "type": "object", "properties": {} })
}

described!(Tool);

impl Tool {
    /// A tool called `name`, taking no arguments until a schema is given.
    pub fn new(name: impl Into<String>) -> Self {
        Tool {
            name: name.into(),
            title: None,
            description: None,
            input_schema: empty_object_schema(),
            output_schema: None,
            annotations: None,
            icons: Vec::new(),
            execution: None,
            meta: None,
            task_after_input: false,
        }
    }

    /// With this input schema (for tools whose handler takes JSON).
    pub fn input_schema(mut self, schema: Value) -> Self {
        self.input_schema = schema;
        self
    }

    /// With an output schema: its results carry `structuredContent`, checked
    /// against it.
    pub fn output_schema(mut self, schema: Value) -> Self {
        self.output_schema = Some(schema);
        self
    }

    /// With the output schema of `T`.
    pub fn output<T: schemars::JsonSchema>(self) -> Self {
        self.output_schema(schema_of::<T>())
    }

    /// With these behaviour hints.
    pub fn annotations(mut self, annotations: ToolAnnotations) -> Self {
        self.annotations = Some(annotations);
        self
    }

    /// Whether it runs as a task for clients that declare the tasks
    /// extension.
    pub fn task_support(mut self, support: TaskSupport) -> Self {
        self.execution = Some(ToolExecution {
            task_support: support,
        });
        self
    }

    /// For a task tool: instead of becoming a task at once, the call first
    /// gathers the input its handler asks for (2026-07-28 input rounds, on
    /// `tools/call` itself), and becomes a task when the handler returns
    /// [`ToolError::RunAsTask`](crate::ToolError::RunAsTask); the task runs
    /// the handler again with those answers, and
    /// [`RequestContext::in_task`](crate::RequestContext::in_task) set.
    pub fn task_after_input(mut self) -> Self {
        self.task_after_input = true;
        self
    }

    /// Marks it idempotency-keyed ([`crate::idempotency`]): a repeat of a
    /// call with the same `_meta["io.arbor/idempotencyKey"]` and arguments
    /// is answered the first call's result, the handler not run again. For
    /// tools with effects a retry must not repeat (a payment, a message
    /// sent). Listed with `_meta["io.arbor/idempotency"] = "keyed"`.
    pub fn idempotency_keyed(mut self) -> Self {
        self.meta.get_or_insert_with(Default::default).insert(
            crate::idempotency::TOOL_MARK.into(),
            Value::String("keyed".into()),
        );
        self
    }

    /// Whether it is idempotency-keyed.
    pub fn is_idempotency_keyed(&self) -> bool {
        self.meta
            .as_ref()
            .and_then(|m| m.get(crate::idempotency::TOOL_MARK))
            .is_some_and(|v| v == "keyed")
    }

    /// Whether it runs as a task.
    pub fn tasks(&self) -> TaskSupport {
        self.execution
            .as_ref()
            .map_or(TaskSupport::Never, |e| e.task_support)
    }
}

/// Hints about a tool's behaviour. Hints, not guarantees: a client should
/// not trust them from a server it does not trust.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolAnnotations {
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// It changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_hint: Option<bool>,
    /// What it changes may be destroyed (meaningful when not read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive_hint: Option<bool>,
    /// Calling it again with the same arguments changes nothing more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent_hint: Option<bool>,
    /// It reaches an open world (the web) rather than a closed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_world_hint: Option<bool>,
}

/// How a tool runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolExecution {
    /// Whether as a task.
    pub task_support: TaskSupport,
}

/// Whether a tool runs as a task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskSupport {
    /// Always answered directly. The default (`forbidden` on the wire).
    #[default]
    #[serde(rename = "forbidden")]
    Never,
    /// A task when the client declares the extension, directly otherwise.
    Optional,
    /// Only as a task: a client without the extension gets `-32021`.
    Required,
}

/// What a tool call returns.
///
/// A failure the model should see (bad input to the tool's own logic, an
/// upstream error) is a result with `is_error` set, not a protocol error.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CallToolResult {
    /// Unstructured content.
    pub content: Vec<Content>,
    /// Structured content, validated against the tool's output schema.
    #[serde(rename = "structuredContent", skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Value>,
    /// Whether the tool failed.
    #[serde(
        rename = "isError",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub is_error: bool,
}

impl CallToolResult {
    /// A successful result with one text block.
    pub fn text(text: impl Into<String>) -> Self {
        CallToolResult {
            content: vec![Content::text(text)],
            ..Default::default()
        }
    }

    /// A failed result with one text block.
    pub fn error(text: impl Into<String>) -> Self {
        CallToolResult {
            content: vec![Content::text(text)],
            is_error: true,
            ..Default::default()
        }
    }

    /// A successful result with structured content (and its JSON as text,
    /// for clients that read only `content`).
    pub fn structured(value: Value) -> Self {
        CallToolResult {
            content: vec![Content::text(value.to_string())],
            structured_content: Some(value),
            is_error: false,
        }
    }
}
