//! What a client request can end in, besides its answer.

use std::time::Duration;

use crate::jsonrpc::ErrorObject;

/// Why a client request, or the client, failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a JSON-RPC error.
    #[error("server error {}: {}", .0.code, .0.message)]
    Server(ErrorObject),
    /// No answer came within the request's timeout; `notifications/cancelled`
    /// was sent for it.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The caller cancelled the request; `notifications/cancelled` was sent.
    #[error("cancelled")]
    Cancelled,
    /// The connection ended before the answer came.
    #[error("disconnected: {0}")]
    Disconnected(String),
    /// An HTTP server answered a request with an error status.
    #[error("HTTP {status}: {body}")]
    Http {
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The server wants authorization the client could not get.
    #[error("not authorized: {0}")]
    Unauthorized(String),
    /// The transport could not connect or send.
    #[error("transport: {0}")]
    Transport(String),
    /// The server's answer does not have the shape the method promises.
    #[error("malformed answer to {method}: {reason}")]
    Malformed {
        /// The method asked.
        method: String,
        /// What was wrong.
        reason: String,
    },
    /// The server speaks no protocol version the client accepts.
    #[error("no common protocol version: the server offers {offered:?}")]
    Version {
        /// What the server offered.
        offered: Vec<String>,
    },
    /// The server asked for input more times than the client allows.
    #[error("the server asked for input {0} times without finishing")]
    TooManyInputRounds(usize),
    /// The client process is gone.
    #[error("the client process has stopped")]
    Stopped,
}

impl ClientError {
    /// The JSON-RPC error the server answered with, if that is what this is.
    pub fn server_error(&self) -> Option<&ErrorObject> {
        match self {
            ClientError::Server(e) => Some(e),
            _ => None,
        }
    }
}
