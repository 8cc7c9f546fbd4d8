//! What a handler returns when it does not return a result: a tool's
//! failure or its request for input, and a handler's protocol error.

use crate::input::InputRequired;
use crate::jsonrpc::ErrorObject;

use super::Outcome;

/// Why a tool did not return a result.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// A failure the model sees: becomes a result with `isError: true`.
    #[error("{0}")]
    Failed(String),
    /// The tool needs input from the client first; it runs again with the
    /// answers (see [`crate::input`]).
    #[error("input required")]
    InputRequired(InputRequired),
    /// The call becomes a task now: the server answers with the task and
    /// runs the handler again inside it, with the input gathered so far
    /// (see [`Tool::task_after_input`](crate::Tool::task_after_input)). To
    /// a client that takes no tasks, the handler is run again at once.
    #[error("run as a task")]
    RunAsTask,
}

impl ToolError {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        ToolError::Failed(message.into())
    }

    /// Asks the client for input first.
    pub fn input_required(input: InputRequired) -> Self {
        ToolError::InputRequired(input)
    }
}

/// Why a resource or prompt handler did not produce its result.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum HandlerError {
    /// Answer with this JSON-RPC error.
    #[error("{0}")]
    Protocol(ErrorObject),
    /// The handler needs input from the client first; it runs again with
    /// the answers (see [`crate::input`]).
    #[error("input required")]
    InputRequired(InputRequired),
}

impl From<ErrorObject> for HandlerError {
    fn from(e: ErrorObject) -> Self {
        HandlerError::Protocol(e)
    }
}

/// Splits a handler's error into the outcome it asks for.
pub(super) fn outcome_of(e: HandlerError) -> Result<Outcome, ErrorObject> {
    match e {
        HandlerError::Protocol(e) => Err(e),
        HandlerError::InputRequired(input) => Ok(Outcome::NeedsInput(input)),
    }
}
