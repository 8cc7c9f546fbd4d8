//! Input a handler needs from the client before it can finish: an
//! elicitation, a sampling request, or the client's roots.
//!
//! A handler asks by returning [`crate::ToolError::InputRequired`], written
//! once for both eras, and is run again with the answers in its
//! [`crate::RequestContext`]:
//!
//! - 2026-07-28: the result is `input_required` with the requests and a
//!   sealed `requestState`; the client retries the call with
//!   `inputResponses` and the state echoed. A tampered, foreign, expired or
//!   replayed state is refused with `-32602`.
//! - Handshake era: the session sends each request to the client
//!   (`elicitation/create`, `sampling/createMessage`, `roots/list`) once the
//!   session is initialized, waits for the answers (each bounded by the
//!   server-request timeout), and runs the handler again.
//!
//! Either way the client must have declared the matching capability.

use serde_json::{json, Map, Value};

/// One thing a handler asks the client for.
#[derive(Clone, Debug, PartialEq)]
pub enum InputRequest {
    /// Ask the user to fill in a form (`elicitation/create`, form mode).
    Elicit {
        /// What to ask.
        message: String,
        /// A flat JSON Schema object of primitive fields.
        requested_schema: Value,
    },
    /// Ask the client's model (`sampling/createMessage`); `params` as the
    /// schema's `CreateMessageRequest` params.
    Sample {
        /// The request parameters.
        params: Value,
    },
    /// Ask for the client's roots (`roots/list`).
    Roots,
}

impl InputRequest {
    /// The client method that answers it.
    pub fn method(&self) -> &'static str {
        match self {
            InputRequest::Elicit { .. } => "elicitation/create",
            InputRequest::Sample { .. } => "sampling/createMessage",
            InputRequest::Roots => "roots/list",
        }
    }

    /// The client capability it needs.
    pub fn capability(&self) -> &'static str {
        match self {
            InputRequest::Elicit { .. } => "elicitation",
            InputRequest::Sample { .. } => "sampling",
            InputRequest::Roots => "roots",
        }
    }

    /// The request's params.
    pub fn params(&self) -> Value {
        match self {
            InputRequest::Elicit {
                message,
                requested_schema,
            } => json!({ "mode": "form", "message": message, "requestedSchema": requested_schema }),
            InputRequest::Sample { params } => params.clone(),
            InputRequest::Roots => json!({}),
        }
    }
}

/// What a handler needs before it can finish, keyed by names it chooses, and
/// state to get back on the next run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InputRequired {
    /// The requests, by key; the answers come back under the same keys.
    pub requests: Vec<(String, InputRequest)>,
    /// State for the next run (sealed, not encrypted: no secrets).
    pub state: Option<Value>,
}

impl InputRequired {
    /// Nothing asked yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the user to fill in a form.
    pub fn elicit(mut self, key: &str, message: &str, requested_schema: Value) -> Self {
        self.requests.push((
            key.to_string(),
            InputRequest::Elicit {
                message: message.to_string(),
                requested_schema,
            },
        ));
        self
    }

    /// Asks the client's model.
    pub fn sample(mut self, key: &str, params: Value) -> Self {
        self.requests
            .push((key.to_string(), InputRequest::Sample { params }));
        self
    }

    /// Asks for the client's roots.
    pub fn roots(mut self, key: &str) -> Self {
        self.requests.push((key.to_string(), InputRequest::Roots));
        self
    }

    /// Keeps `state` for the next run.
    pub fn with_state(mut self, state: Value) -> Self {
        self.state = Some(state);
        self
    }

    /// The capabilities the client lacks for these requests, as the
    /// `requiredCapabilities` object of a `-32021` error; `None` if it has
    /// them all.
    pub fn missing_capabilities(&self, client: &Value) -> Option<Value> {
        let mut missing = Map::new();
        for (_, r) in &self.requests {
            if client.get(r.capability()).is_none() {
                missing.insert(r.capability().to_string(), json!({}));
            }
        }
        (!missing.is_empty()).then_some(Value::Object(missing))
    }

    /// The `inputRequests` object of an `input_required` result.
    pub fn wire_requests(&self) -> Value {
        Value::Object(
            self.requests
                .iter()
                .map(|(k, r)| {
                    (
                        k.clone(),
                        json!({ "method": r.method(), "params": r.params() }),
                    )
                })
                .collect(),
        )
    }
}
