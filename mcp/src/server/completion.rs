//! `completion/complete`: what the completion handler is asked, and the
//! checks on the reference it completes for.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::jsonrpc::ErrorObject;
use crate::model::Method;

use super::McpServer;
use crate::model::params::{parse, CompleteParams, CompleteReference};
use crate::model::{CompleteResult, Completion};

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
        let CompleteParams {
            reference,
            argument,
            context,
        } = parse(params.clone())?;
        let arg_name = argument.name.as_str();
        let reference = match reference {
            CompleteReference::Prompt { name } => {
                let prompt = self.inner.catalog.read().prompt(&name).ok_or_else(|| {
                    ErrorObject::invalid_params(format!("unknown prompt: {name}"))
                        .with_data(json!({ "prompt": name }))
                })?;
                if !prompt.arguments.iter().any(|a| a.name == arg_name) {
                    return Err(ErrorObject::invalid_params(format!(
                        "prompt {name} has no argument {arg_name}"
                    ))
                    .with_data(json!({ "prompt": name, "argument": arg_name })));
                }
                CompletionRef::Prompt(name)
            }
            CompleteReference::Resource { uri } => {
                let known = self
                    .inner
                    .catalog
                    .read()
                    .templates
                    .iter()
                    .find(|t| t.template.as_str() == uri)
                    .map(|t| t.template.variables().any(|v| v == arg_name));
                match known {
                    None => {
                        return Err(ErrorObject::invalid_params(format!(
                            "unknown resource template: {uri}"
                        ))
                        .with_data(json!({ "uri": uri })))
                    }
                    Some(false) => {
                        return Err(ErrorObject::invalid_params(format!(
                            "template {uri} has no variable {arg_name}"
                        ))
                        .with_data(json!({ "uri": uri, "argument": arg_name })))
                    }
                    Some(true) => CompletionRef::Resource(uri),
                }
            }
        };
        let context = context.unwrap_or_default().arguments;
        let value = argument.value.as_str();
        let mut values = completer(CompletionRequest {
            reference,
            argument: arg_name.to_string(),
            value: value.to_string(),
            context,
        })
        .await;
        let total = values.len();
        values.truncate(MAX_COMPLETION_VALUES);
        let result = CompleteResult {
            completion: Completion {
                values,
                total: Some(total),
                has_more: total > MAX_COMPLETION_VALUES,
            },
        };
        serde_json::to_value(result).map_err(|e| ErrorObject::internal(e.to_string()))
    }
}
