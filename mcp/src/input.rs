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

use std::collections::BTreeMap;

use crate::model::{CreateMessageParams, ElicitRequestParams, InputRequestCall, Method};
use crate::version::ProtocolVersion;

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
    /// Send the user to a URL (`elicitation/create`, URL mode; 2025-11-25
    /// and later), for input that must not pass through the client.
    ElicitUrl {
        /// Why the user should go there.
        message: String,
        /// Where to send the user.
        url: String,
        /// Identifies this elicitation.
        elicitation_id: String,
    },
    /// Ask the client's model (`sampling/createMessage`).
    Sample {
        /// The request parameters.
        params: CreateMessageParams,
    },
    /// Ask for the client's roots (`roots/list`).
    Roots,
}

impl InputRequest {
    /// The client method that answers it.
    pub fn method(&self) -> Method {
        match self {
            InputRequest::Elicit { .. } | InputRequest::ElicitUrl { .. } => {
                Method::ElicitationCreate
            }
            InputRequest::Sample { .. } => Method::SamplingCreateMessage,
            InputRequest::Roots => Method::RootsList,
        }
    }

    /// The client capability it needs, as it appears in
    /// `requiredCapabilities`.
    pub fn capability(&self) -> Value {
        match self {
            InputRequest::Elicit { .. } => json!({ "elicitation": {} }),
            InputRequest::ElicitUrl { .. } => json!({ "elicitation": { "url": {} } }),
            InputRequest::Sample { .. } => json!({ "sampling": {} }),
            InputRequest::Roots => json!({ "roots": {} }),
        }
    }

    /// Whether the client's declared capabilities cover it (and, for URL
    /// mode, whether the version has it at all).
    pub fn allowed(&self, client: &Value, version: ProtocolVersion) -> bool {
        match self {
            // Elicitation came with 2025-06-18.
            InputRequest::Elicit { .. } => {
                version >= ProtocolVersion::V2025_06_18 && client.get("elicitation").is_some()
            }
            InputRequest::ElicitUrl { .. } => {
                version >= ProtocolVersion::V2025_11_25
                    && client
                        .get("elicitation")
                        .and_then(|e| e.get("url"))
                        .is_some()
            }
            InputRequest::Sample { .. } => client.get("sampling").is_some(),
            InputRequest::Roots => client.get("roots").is_some(),
        }
    }

    /// The request's params for `version`: elicitation modes exist from
    /// 2025-11-25 on, so older versions get a form request without `mode`.
    pub fn params(&self, version: ProtocolVersion) -> Value {
        let modes = version >= ProtocolVersion::V2025_11_25;
        let typed = match self {
            InputRequest::Elicit {
                message,
                requested_schema,
            } => serde_json::to_value(ElicitRequestParams::Form {
                message: message.clone(),
                requested_schema: requested_schema.clone(),
            }),
            InputRequest::ElicitUrl {
                message,
                url,
                elicitation_id,
            } => serde_json::to_value(ElicitRequestParams::Url {
                message: message.clone(),
                url: url.clone(),
                // 2026-07-28 dropped elicitationId.
                elicitation_id: (version < ProtocolVersion::V2026_07_28)
                    .then(|| elicitation_id.clone()),
            }),
            InputRequest::Sample { params } => serde_json::to_value(params),
            InputRequest::Roots => Ok(json!({})),
        };
        let mut params = typed.unwrap_or_else(|_| json!({}));
        if !modes {
            if let Some(p) = params.as_object_mut() {
                p.remove("mode");
            }
        }
        params
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

    /// Sends the user to a URL (URL-mode elicitation).
    pub fn elicit_url(mut self, key: &str, message: &str, url: &str, elicitation_id: &str) -> Self {
        self.requests.push((
            key.to_string(),
            InputRequest::ElicitUrl {
                message: message.to_string(),
                url: url.to_string(),
                elicitation_id: elicitation_id.to_string(),
            },
        ));
        self
    }

    /// Asks the client's model.
    pub fn sample(mut self, key: &str, params: CreateMessageParams) -> Self {
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
    pub fn missing_capabilities(&self, client: &Value, version: ProtocolVersion) -> Option<Value> {
        let mut missing = Value::Object(Map::new());
        for (_, r) in &self.requests {
            if !r.allowed(client, version) {
                merge(&mut missing, r.capability());
            }
        }
        missing
            .as_object()
            .is_some_and(|m| !m.is_empty())
            .then_some(missing)
    }

    /// The `inputRequests` of an `input_required` result (2026-07-28).
    pub fn calls(&self) -> BTreeMap<String, InputRequestCall> {
        self.requests
            .iter()
            .map(|(k, r)| {
                let call = InputRequestCall {
                    method: r.method().as_str().into(),
                    params: r.params(ProtocolVersion::V2026_07_28),
                };
                (k.clone(), call)
            })
            .collect()
    }

    /// [`InputRequired::calls`] as JSON (a task's `inputRequests`).
    pub fn wire_requests(&self) -> Value {
        serde_json::to_value(self.calls()).unwrap_or_else(|_| json!({}))
    }
}

/// Merges `add` into `into`, object keys recursively.
fn merge(into: &mut Value, add: Value) {
    match (into, add) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert_with(|| json!({})), v);
            }
        }
        (slot, v) => *slot = v,
    }
}
