//! Running one feature request: calling a tool (its arguments checked
//! against its schema, its output against its output schema), reading a
//! resource, getting a prompt.

use crate::model::params::{parse, CallToolParams, GetPromptParams, ResourceParams};

use serde_json::{json, Map, Value};

use crate::context::RequestContext;
use crate::jsonrpc::ErrorObject;
use crate::model::{CallToolResult, ResourceContents};
use crate::uri::ResourceUri;
use crate::version::Era;

use super::{outcome_of, resource_not_found, HandlerError, McpServer, Outcome, ToolError};
use crate::breaker::{Attempt, Handler};
use crate::idempotency::{replayed, Begin};

/// Tells the circuit how a resource read went: an internal error is the
/// handler failing; any other answer (not found, bad params) is it working.
/// Input asked for counts for nothing.
fn settled<T>(attempt: Attempt<'_>, read: Result<T, HandlerError>) -> Result<T, HandlerError> {
    match &read {
        Ok(_) => attempt.succeeded(),
        Err(HandlerError::Protocol(e)) => {
            attempt.settle_by(e.code == crate::jsonrpc::code::INTERNAL_ERROR)
        }
        Err(HandlerError::InputRequired(_)) => drop(attempt),
    }
    read
}

impl McpServer {
    pub(super) async fn call_tool(
        &self,
        params: Map<String, Value>,
        ctx: RequestContext<McpServer>,
    ) -> Result<Outcome, ErrorObject> {
        let CallToolParams { name, arguments } = parse(params)?;
        let args = Value::Object(arguments.unwrap_or_default());
        let tool = self.inner.catalog.read().tool(&name);
        let Some(tool) = tool else {
            return Err(ErrorObject::invalid_params(format!("unknown tool: {name}"))
                .with_data(json!({ "tool": name })));
        };
        let violations: Vec<Value> = tool
            .input
            .iter_errors(&args)
            .map(|e| json!({ "path": e.instance_path().to_string(), "message": e.to_string() }))
            .collect();
        if !violations.is_empty() {
            // The spec counts input validation errors as tool execution
            // errors (both eras): the model sees them and can correct itself.
            let mut text = format!("invalid arguments for tool {name}:");
            for v in &violations {
                text.push_str(&format!(
                    "\n- {}: {}",
                    v["path"].as_str().unwrap_or(""),
                    v["message"].as_str().unwrap_or("")
                ));
            }
            return Ok(Outcome::Done(
                serde_json::to_value(CallToolResult::error(text))
                    .map_err(|e| ErrorObject::internal(e.to_string()))?,
            ));
        }
        let ctx_in_task = ctx.in_task();
        // Keyed: a repeat is answered from the store, before the circuit
        // (the handler does not run) and after the arguments are checked.
        let claim = match (&self.inner.idempotency, ctx.idempotency_key()) {
            (Some(store), Some(key)) if tool.keyed && !ctx_in_task => {
                let fingerprint = crate::idempotency::fingerprint(&name, &args);
                loop {
                    match store.begin(key, fingerprint)? {
                        Begin::Run(claim) => break Some(claim),
                        Begin::Replay(result) => return Ok(Outcome::Done(replayed(result))),
                        // Woken when the first call ends, with a result to
                        // replay or none (then this one runs).
                        Begin::Wait(mut first) => while first.changed().await.is_ok() {},
                    }
                }
            }
            _ => None,
        };
        let attempt = self
            .inner
            .breakers
            .attempt(Handler::Tool, &name, self.inner.config.request_timeout)
            .map_err(|open| open.error())?;
        let result = match (tool.handler)(args, ctx).await {
            Ok(result) => result,
            Err(ToolError::Failed(message)) => CallToolResult::error(message),
            // Neither worked nor failed: the attempt counts for nothing.
            Err(ToolError::InputRequired(input)) => return Ok(Outcome::NeedsInput(input)),
            Err(ToolError::RunAsTask) if ctx_in_task => {
                return Err(ErrorObject::internal(
                    "the handler asked to become a task inside its task",
                ))
            }
            Err(ToolError::RunAsTask) => return Ok(Outcome::RunAsTask),
        };
        if let (Some(validator), false) = (&tool.output, result.is_error) {
            let structured = result.structured_content.clone().unwrap_or(Value::Null);
            let violations: Vec<String> = validator
                .iter_errors(&structured)
                .map(|e| e.to_string())
                .collect();
            if !violations.is_empty() {
                attempt.failed();
                return Err(ErrorObject::internal(format!(
                    "tool {name} returned output that violates its output schema"
                ))
                .with_data(json!({ "tool": name, "errors": violations })));
            }
        }
        attempt.settle_by(result.is_error);
        let result =
            serde_json::to_value(result).map_err(|e| ErrorObject::internal(e.to_string()))?;
        if let Some(claim) = claim {
            claim.complete(&result);
        }
        Ok(Outcome::Done(result))
    }

    pub(super) async fn read_resource(
        &self,
        params: Map<String, Value>,
        ctx: RequestContext<McpServer>,
    ) -> Result<Outcome, ErrorObject> {
        let ResourceParams { uri } = parse(params)?;
        let era = ctx.era();
        let parsed = ResourceUri::parse(&uri).map_err(|e| {
            ErrorObject::invalid_params(format!("invalid resource uri: {e}"))
                .with_data(json!({ "uri": uri, "reason": e.to_string() }))
        })?;
        let (entry, templates) = {
            let catalog = self.inner.catalog.read();
            let entry = catalog
                .resources
                .iter()
                .find(|r| r.uri == parsed.as_str())
                .cloned();
            (entry, catalog.templates.clone())
        };
        // The resource's own caching hint (2026-07-28 only).
        let read = |contents: Vec<ResourceContents>, cache: crate::cache::CacheHint| {
            let mut result = Map::new();
            result.insert("contents".into(), json!(contents));
            if era == Era::Modern {
                cache.apply(&mut result);
            }
            Outcome::Done(Value::Object(result))
        };
        let timeout = self.inner.config.request_timeout;
        let breakers = &self.inner.breakers;
        if let Some(entry) = entry {
            let attempt = breakers
                .attempt(Handler::Resource, &entry.uri, timeout)
                .map_err(|open| open.error())?;
            return settled(attempt, (entry.handler)(uri, ctx).await)
                .map(|contents| read(contents, entry.cache))
                .or_else(outcome_of);
        }
        for entry in &templates {
            match entry.template.match_uri(parsed.as_str()) {
                Ok(None) => continue,
                Ok(Some(vars)) => {
                    let attempt = breakers
                        .attempt(Handler::Resource, entry.template.as_str(), timeout)
                        .map_err(|open| open.error())?;
                    return settled(attempt, (entry.handler)(vars, uri, ctx).await)
                        .map(|contents| read(contents, entry.cache))
                        .or_else(outcome_of);
                }
                Err(e) => {
                    return Err(ErrorObject::invalid_params(format!("invalid resource uri: {e}"))
                        .with_data(json!({ "uri": uri, "template": entry.template.as_str(), "reason": e.to_string() })));
                }
            }
        }
        Err(resource_not_found(&uri, era))
    }

    pub(super) async fn get_prompt(
        &self,
        params: Map<String, Value>,
        ctx: RequestContext<McpServer>,
    ) -> Result<Outcome, ErrorObject> {
        let GetPromptParams {
            name,
            arguments: args,
        } = parse(params)?;
        let prompt = self.inner.catalog.read().prompt(&name);
        let Some(prompt) = prompt else {
            return Err(
                ErrorObject::invalid_params(format!("unknown prompt: {name}"))
                    .with_data(json!({ "prompt": name })),
            );
        };
        let missing: Vec<&str> = prompt
            .arguments
            .iter()
            .filter(|a| a.required && !args.contains_key(&a.name))
            .map(|a| a.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(ErrorObject::invalid_params(format!(
                "prompt {name}: missing required arguments"
            ))
            .with_data(json!({ "prompt": name, "missing": missing })));
        }
        let unknown: Vec<&String> = args
            .keys()
            .filter(|k| !prompt.arguments.iter().any(|a| &a.name == *k))
            .collect();
        if !unknown.is_empty() {
            return Err(
                ErrorObject::invalid_params(format!("prompt {name}: unknown arguments"))
                    .with_data(json!({ "prompt": name, "unknown": unknown })),
            );
        }
        match (prompt.handler)(args, ctx).await {
            Ok(result) => serde_json::to_value(result)
                .map(Outcome::Done)
                .map_err(|e| ErrorObject::internal(e.to_string())),
            Err(e) => outcome_of(e),
        }
    }
}
