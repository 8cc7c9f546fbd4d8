//! The sealed `requestState` of 2026-07-28 input rounds: what an
//! `input_required` result hands the client, and how a retried request's
//! answers are checked against the very call they were asked for.

use crate::model::{InputRequiredResult, ResultType};
use serde_json::{json, Map, Value};

use super::modern::shape_modern;
use crate::input::InputRequired;
use crate::jsonrpc::ErrorObject;
use crate::model::Method;
use crate::server::McpServer;

/// What seals a 2026-07-28 `requestState`.
const REQUEST_STATE_PURPOSE: &str = "request-state";

/// A retried request's answers and the state its handler kept.
type Answers = (Map<String, Value>, Option<Value>);

/// What the sealed request state binds: a digest of the method, the target
/// and the arguments, so an answer cannot be replayed onto another call and
/// the state stays small whatever the arguments.
fn binding(method: Method, params: &Map<String, Value>) -> String {
    use sha2::{Digest, Sha256};
    let bound = json!({
        "method": method.as_str(),
        "name": params.get("name"),
        "uri": params.get("uri"),
        "arguments": params.get("arguments"),
    });
    let digest = Sha256::digest(bound.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 2026-07-28 `input_required` result, with the state sealed.
pub(super) fn input_required(
    server: &McpServer,
    method: Method,
    params: &Map<String, Value>,
    input: &InputRequired,
) -> Result<Value, ErrorObject> {
    let payload = json!({ "bind": binding(method, params), "state": input.state });
    let payload = serde_json::to_vec(&payload).map_err(|e| ErrorObject::internal(e.to_string()))?;
    let token = server.sealer().seal(
        REQUEST_STATE_PURPOSE,
        &payload,
        server.config().request_state_ttl,
    );
    let result = InputRequiredResult {
        result_type: ResultType::InputRequired,
        input_requests: input.calls(),
        request_state: Some(token),
    };
    let result = serde_json::to_value(result).map_err(|e| ErrorObject::internal(e.to_string()))?;
    Ok(shape_modern(server, method, result))
}

/// Takes a retried request's `inputResponses` and `requestState` out of its
/// params; the state must open (once), and be bound to this very call.
pub(super) fn open_request_state(
    server: &McpServer,
    method: Method,
    params: &mut Map<String, Value>,
) -> Result<Option<Answers>, ErrorObject> {
    let state = params.remove("requestState");
    let responses = params.remove("inputResponses");
    let Some(state) = state else {
        // Answers with no state are still answers (the client chose them
        // either way), but with no state kept: a handler that kept some
        // sees none, and asks again.
        return match responses {
            Some(Value::Object(r)) => Ok(Some((r, None))),
            _ => Ok(None),
        };
    };
    let bad = |why: &str| {
        ErrorObject::invalid_params(format!("invalid requestState: {why}"))
            .with_data(json!({ "field": "requestState", "reason": why }))
    };
    let token = state.as_str().ok_or_else(|| bad("not a string"))?;
    // Checked first, then spent: a state shown for the wrong call stays
    // usable for the right one.
    let payload = server
        .sealer()
        .open(REQUEST_STATE_PURPOSE, token)
        .map_err(|e| bad(&e.to_string()))?;
    let payload: Value = serde_json::from_slice(&payload).map_err(|_| bad("unreadable"))?;
    if payload.get("bind").and_then(Value::as_str) != Some(binding(method, params).as_str()) {
        return Err(bad("issued for another request"));
    }
    server
        .sealer()
        .open_once(REQUEST_STATE_PURPOSE, token)
        .map_err(|e| bad(&e.to_string()))?;
    let responses = match responses {
        Some(Value::Object(r)) => r,
        None => Map::new(),
        Some(_) => {
            return Err(
                ErrorObject::invalid_params("inputResponses must be an object")
                    .with_data(json!({ "field": "inputResponses" })),
            )
        }
    };
    let kept = payload.get("state").filter(|s| !s.is_null()).cloned();
    Ok(Some((responses, kept)))
}
