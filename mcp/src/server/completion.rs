//! `completion/complete`: what the completion handler is asked, and the
//! checks on the reference it completes for.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::jsonrpc::ErrorObject;
use crate::model::Method;

use super::{required_field, McpServer};

/// What a `completion/complete` request asks to complete.
#[derive(Clone, Debug, PartialEq)]
pub struct CompletionRequest {
    /// A prompt's name (`ref/prompt`) or a resource template
    /// (`ref/resource`).
    pub reference: CompletionRef,
    /// The argument (or template variable) being completed.
    pub argument: String,
    /// What the user has typed so far.
    pub value: String,
    /// Arguments already filled in.
    pub context: HashMap<String, String>,
}

/// The target of a completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompletionRef {
    /// A prompt, by name.
    Prompt(String),
    /// A resource template, by its URI template.
    Resource(String),
}

/// The most values one completion returns, as the spec allows.
pub const MAX_COMPLETION_VALUES: usize = 100;

impl McpServer {
    pub(super) async fn complete(&self, params: &Map<String, Value>) -> Result<Value, ErrorObject> {
        let Some(completer) = &self.inner.completer else {
            return Err(ErrorObject::method_not_found(
                Method::CompletionComplete.as_str(),
            ));
        };
        let reference: Value = required_field(params, "ref")?;
        let argument: Value = required_field(params, "argument")?;
        let (Some(arg_name), Some(value)) = (
            argument.get("name").and_then(Value::as_str),
            argument.get("value").and_then(Value::as_str),
        ) else {
            return Err(
                ErrorObject::invalid_params("argument needs a name and a value")
                    .with_data(json!({ "field": "argument" })),
            );
        };
        let reference = match reference.get("type").and_then(Value::as_str) {
            Some("ref/prompt") => {
                let name = reference
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let prompt = self.inner.catalog.read().prompt(name).ok_or_else(|| {
                    ErrorObject::invalid_params(format!("unknown prompt: {name}"))
                        .with_data(json!({ "prompt": name }))
                })?;
                if !prompt.arguments.iter().any(|a| a.name == arg_name) {
                    return Err(ErrorObject::invalid_params(format!(
                        "prompt {name} has no argument {arg_name}"
                    ))
                    .with_data(json!({ "prompt": name, "argument": arg_name })));
                }
                CompletionRef::Prompt(name.to_string())
            }
            Some("ref/resource") => {
                let uri = reference
                    .get("uri")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let template = self
                    .inner
                    .catalog
                    .read()
                    .templates
                    .iter()
                    .find(|t| t.template.as_str() == uri)
                    .cloned()
                    .ok_or_else(|| {
                        ErrorObject::invalid_params(format!("unknown resource template: {uri}"))
                            .with_data(json!({ "uri": uri }))
                    })?;
                if !template.template.variables().any(|v| v == arg_name) {
                    return Err(ErrorObject::invalid_params(format!(
                        "template {uri} has no variable {arg_name}"
                    ))
                    .with_data(json!({ "uri": uri, "argument": arg_name })));
                }
                CompletionRef::Resource(uri.to_string())
            }
            _ => {
                return Err(ErrorObject::invalid_params(
                    "ref.type must be ref/prompt or ref/resource",
                )
                .with_data(json!({ "field": "ref.type" })))
            }
        };
        let context = params
            .get("context")
            .and_then(|c| c.get("arguments"))
            .and_then(|a| serde_json::from_value::<HashMap<String, String>>(a.clone()).ok())
            .unwrap_or_default();
        let mut values = completer(CompletionRequest {
            reference,
            argument: arg_name.to_string(),
            value: value.to_string(),
            context,
        })
        .await;
        let total = values.len();
        values.truncate(MAX_COMPLETION_VALUES);
        Ok(
            json!({ "completion": { "values": values, "total": total, "hasMore": total > MAX_COMPLETION_VALUES } }),
        )
    }
}
