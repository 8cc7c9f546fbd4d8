//! The requests a server sends a client, typed: `elicitation/create`,
//! `sampling/createMessage` (`roots/list` takes no params). Their answers
//! are in [`super::answers`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Content, JsonObject, Role};

/// `elicitation/create`: a form to fill in, or a URL to visit (2025-11-25
/// on; before it, every elicitation is a form and `mode` is not sent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum ElicitRequestParams {
    /// Ask the user to fill in a form.
    Form {
        /// What to ask.
        message: String,
        /// A flat JSON Schema object of primitive fields.
        #[serde(rename = "requestedSchema")]
        requested_schema: Value,
    },
    /// Send the user to a URL, for input that must not pass through the
    /// client.
    Url {
        /// Why the user should go there.
        message: String,
        /// Where to send them.
        url: String,
        /// Identifies the elicitation (2025-11-25; 2026-07-28 dropped it).
        #[serde(
            rename = "elicitationId",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        elicitation_id: Option<String>,
    },
}

/// `sampling/createMessage`: ask the client's model.
///
/// # Examples
/// ```
/// use arbor_mcp::model::CreateMessageParams;
///
/// let ask = CreateMessageParams::user("Say hello", 20);
/// let wire = serde_json::to_value(&ask).unwrap();
/// assert_eq!(wire["messages"][0]["content"]["text"], "Say hello");
/// assert_eq!(wire["maxTokens"], 20);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateMessageParams {
    /// The conversation so far.
    pub messages: Vec<SamplingMessage>,
    /// The most tokens to sample.
    pub max_tokens: u32,
    /// A system prompt the client may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// How hot to sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Where to stop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
    /// Every other field the schema has (model preferences, included
    /// context, metadata, tools), kept as given.
    #[serde(flatten)]
    pub other: JsonObject,
}

/// One message of a sampling conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplingMessage {
    /// Who speaks it.
    pub role: Role,
    /// What is said.
    pub content: Content,
}

impl CreateMessageParams {
    /// One user message, answered in at most `max_tokens`.
    pub fn user(text: impl Into<String>, max_tokens: u32) -> Self {
        CreateMessageParams {
            messages: vec![SamplingMessage {
                role: Role::User,
                content: Content::text(text),
            }],
            max_tokens,
            system_prompt: None,
            temperature: None,
            stop_sequences: Vec::new(),
            other: JsonObject::new(),
        }
    }
}
