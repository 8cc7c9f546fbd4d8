//! An MCP client for both eras, on the typed model.
//!
//! A [`Client`] is a handle to a *client process*, one per connection: it
//! dials through a [`Connector`], agrees a protocol version (2026-07-28 by
//! `server/discover` by default, falling back to `initialize`; pinnable with
//! [`VersionChoice::Pinned`]), and keeps a pending-request table in which
//! every request resolves exactly once: by its answer, its timeout (which
//! sends `notifications/cancelled`), a cancellation, or the connection's
//! end. A lost connection is redialled with exponential backoff and jitter
//! where the transport allows; requests in flight on it fail at once rather
//! than hang.
//!
//! The same [`ClientHandlers`] answer sampling, elicitation and roots in
//! both eras: a handshake-era server sends those requests on the
//! connection, a 2026-07-28 server returns `input_required` and the client
//! retries with the answers and the server's `requestState`.
//!
//! # Examples
//! ```
//! use arbor_mcp::client::{Client, LineConnector};
//! use arbor_mcp::model::{CallToolResult, Tool};
//! use arbor_mcp::transport::connect_in_memory;
//! use arbor_mcp::ServerBuilder;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = ServerBuilder::new("demo", "1.0")
//!     .tool(Tool::new("hello").description("Says hello"), |(), _ctx| async {
//!         Ok(CallToolResult::text("hello!"))
//!     })
//!     .build()?;
//! let connector = LineConnector::once(move || {
//!     let pipe = connect_in_memory(server.clone());
//!     async move {
//!         let (read, write) = tokio::io::split(pipe);
//!         Ok((Box::new(read) as _, Box::new(write) as _))
//!     }
//! });
//! let client = Client::builder().connect(connector).await?;
//! let tools = client.list_all_tools().await?;
//! assert_eq!(tools[0].name, "hello");
//! let answer = client.call_tool("hello", serde_json::json!({})).await?;
//! assert_eq!(answer.content[0].as_text(), Some("hello!"));
//! client.close().await;
//! # Ok(())
//! # }
//! ```

mod api;
mod config;
mod connector;
mod error;
mod handlers;
mod inbox;
mod lines;
mod pending;
mod process;
mod session;
mod task;
mod task_answers;
mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arbor_runtime::{ActorRef, ProcessRef};
use serde_json::{json, Map, Value};
use tokio::sync::{broadcast, mpsc, oneshot};

pub use api::Listen;
pub use config::{ClientConfig, Reconnect, VersionChoice};
pub use connector::Connector;
pub use error::ClientError;
pub use handlers::{apply_defaults, ClientHandlers, ElicitModes};
pub use inbox::{ClientMsg, Inbox};
pub use lines::{LineConnector, LineStreams, DEFAULT_MAX_LINE};
pub use session::Negotiated;
pub use task::{ToolCall, ToolTask};
pub use wire::{BoxFuture, Outgoing, Wire};

use crate::jsonrpc::{Id, Notification};
use crate::model::{
    CreateMessageParams, CreateMessageResult, ElicitRequestParams, ElicitResult,
    InputRequiredResult, LogLevel, ProgressParams, Root,
};
use crate::version::ProtocolVersion;
use process::ClientProcess;
use session::Shared;

/// A connection to an MCP server: cheap to clone, all clones share it.
#[derive(Clone, Debug)]
pub struct Client {
    process: ActorRef<ClientMsg>,
    shared: Arc<Shared>,
    config: Arc<ClientConfig>,
}

/// Options of one request.
#[derive(Clone, Debug, Default)]
pub struct RequestOptions {
    /// Overrides the client's request timeout.
    pub timeout: Option<Duration>,
    /// Where the request's progress notifications go (a progress token is
    /// sent only when this is set).
    pub progress: Option<mpsc::UnboundedSender<ProgressParams>>,
    /// For `tools/call`: sent as `_meta["io.arbor/idempotencyKey"]`, so
    /// that a retry with the same key is answered the first result by a
    /// tool that takes keys ([`crate::idempotency`]). Reuse it only to
    /// retry the same call.
    pub idempotency_key: Option<String>,
}

/// Builds a [`Client`].
#[derive(Debug, Default)]
pub struct ClientBuilder {
    config: ClientConfig,
}

impl ClientBuilder {
    /// Who the client says it is.
    pub fn name(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.config.client_info = crate::model::Implementation::new(name, version);
        self
    }

    /// Which protocol version to speak.
    pub fn version(mut self, choice: VersionChoice) -> Self {
        self.config.version = choice;
        self
    }

    /// How long a request waits for its answer.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// How a lost connection is redialled.
    pub fn reconnect(mut self, reconnect: Reconnect) -> Self {
        self.config.reconnect = reconnect;
        self
    }

    /// Answers `sampling/createMessage` (declares `sampling`).
    pub fn sampling<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(CreateMessageParams) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CreateMessageResult, crate::jsonrpc::ErrorObject>>
            + Send
            + 'static,
    {
        self.config.handlers.sampling(f);
        self
    }

    /// Answers `elicitation/create` (declares `elicitation` in `modes`);
    /// accepted forms get the schema's defaults for fields left out.
    pub fn elicitation<F, Fut>(mut self, modes: ElicitModes, f: F) -> Self
    where
        F: Fn(ElicitRequestParams) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ElicitResult, crate::jsonrpc::ErrorObject>> + Send + 'static,
    {
        self.config.handlers.elicitation(modes, f);
        self
    }

    /// Exposes `roots` (declares `roots` with `listChanged`).
    pub fn roots(mut self, roots: Vec<Root>) -> Self {
        self.config.handlers.roots(roots);
        self
    }

    /// How fast the server may send requests (sampling, elicitation,
    /// roots; `None`: no limit). Past it they are answered `-32029` with
    /// `data.retryAfter`, without running a handler. Default: 20 a second,
    /// bursts of 100 ([`crate::rate::DEFAULT_SERVER_REQUESTS`]).
    pub fn server_request_rate(mut self, rate: Option<crate::rate::Rate>) -> Self {
        self.config.handlers.server_request_rate(rate);
        self
    }

    /// The log level asked of the server.
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.config.log_level = Some(level);
        self
    }

    /// The whole configuration at once.
    pub fn config(mut self, config: ClientConfig) -> Self {
        self.config = config;
        self
    }

    /// Starts the client process, dials, and agrees a version.
    ///
    /// # Errors
    /// Why the first connection failed: the dial, the negotiation, or no
    /// common version.
    pub async fn connect(self, connector: impl Connector) -> Result<Client, ClientError> {
        let shared = Arc::new(Shared::default());
        shared.set_log_level(self.config.log_level);
        let config = Arc::new(self.config);
        let (first, ready) = oneshot::channel();
        let process =
            ClientProcess::new(Arc::new(connector), config.clone(), shared.clone(), first);
        let process = arbor_runtime::spawn(process)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        ready.await.map_err(|_| ClientError::Stopped)??;
        Ok(Client {
            process,
            shared,
            config,
        })
    }
}

impl Client {
    /// A builder with the default configuration.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The client process, to link, monitor or supervise.
    pub fn process(&self) -> ProcessRef {
        self.process.process()
    }

    /// What was agreed with the server; `None` while reconnecting.
    pub fn session(&self) -> Option<Arc<Negotiated>> {
        self.shared.session()
    }

    /// The protocol version spoken; `None` while reconnecting.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.session().map(|s| s.version)
    }

    /// Every notification the server sends from now on (progress included).
    pub fn notifications(&self) -> broadcast::Receiver<Notification> {
        self.shared.subscribe()
    }

    /// Sends `method` and waits for its result, answering any
    /// `input_required` rounds with the client's handlers.
    ///
    /// # Errors
    /// The server's error, a timeout, a cancellation or a lost connection.
    pub async fn request(
        &self,
        method: &str,
        params: Map<String, Value>,
    ) -> Result<Value, ClientError> {
        self.request_with(method, params, RequestOptions::default())
            .await
    }

    /// [`Client::request`] with options.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn request_with(
        &self,
        method: &str,
        mut params: Map<String, Value>,
        options: RequestOptions,
    ) -> Result<Value, ClientError> {
        let headers = self.param_headers(method, &params);
        for _round in 0..=self.config.max_input_rounds {
            let result = self
                .send_once(method, params.clone(), &options, headers.clone())
                .await?;
            if result.get("resultType").and_then(Value::as_str) != Some("input_required") {
                return Ok(result);
            }
            let asked: InputRequiredResult =
                serde_json::from_value(result).map_err(|e| ClientError::Malformed {
                    method: method.into(),
                    reason: e.to_string(),
                })?;
            let responses = self.answer_all(asked.input_requests).await;
            params.insert("inputResponses".into(), Value::Object(responses));
            // Echoed as sent, or left out when the server sent none.
            match asked.request_state {
                Some(state) => params.insert("requestState".into(), state.into()),
                None => params.remove("requestState"),
            };
        }
        Err(ClientError::TooManyInputRounds(
            self.config.max_input_rounds,
        ))
    }

    /// One round trip. Dropping the future cancels the request.
    async fn send_once(
        &self,
        method: &str,
        params: Map<String, Value>,
        options: &RequestOptions,
        param_headers: Vec<(String, String)>,
    ) -> Result<Value, ClientError> {
        let (id, answer) = self.submit(method, params, options, param_headers).await?;
        let guard = CancelOnDrop {
            process: &self.process,
            id: Some(id),
        };
        let outcome = answer.await.map_err(|_| ClientError::Stopped)?;
        guard.defuse();
        outcome
    }

    /// Hands a request to the client process: its id, and where its one
    /// outcome will come.
    pub(crate) async fn submit(
        &self,
        method: &str,
        params: Map<String, Value>,
        options: &RequestOptions,
        param_headers: Vec<(String, String)>,
    ) -> Result<(Id, oneshot::Receiver<Result<Value, ClientError>>), ClientError> {
        let id = self.shared.ids.next();
        let (reply, answer) = oneshot::channel();
        self.process
            .send(ClientMsg::Request {
                id: id.clone(),
                method: method.into(),
                params: Some(params),
                timeout: options.timeout.unwrap_or(self.config.request_timeout),
                param_headers,
                progress: options.progress.clone(),
                reply,
            })
            .await
            .map_err(|_| ClientError::Stopped)?;
        Ok((id, answer))
    }

    /// `Mcp-Param-*` headers for a `tools/call`, from the tool's listed
    /// schema.
    fn param_headers(&self, method: &str, params: &Map<String, Value>) -> Vec<(String, String)> {
        if method != "tools/call" {
            return Vec::new();
        }
        let Some(name) = params.get("name").and_then(Value::as_str) else {
            return Vec::new();
        };
        let arguments = params.get("arguments").cloned().unwrap_or(json!({}));
        self.shared
            .tool_headers(name)
            .iter()
            .filter_map(|h| h.value_in(&arguments).map(|v| (h.name.clone(), v)))
            .collect()
    }

    /// Sends a notification.
    ///
    /// # Errors
    /// [`ClientError::Stopped`] once the client process is gone.
    pub async fn notify(
        &self,
        method: &str,
        params: Option<Map<String, Value>>,
    ) -> Result<(), ClientError> {
        self.process
            .send(ClientMsg::Notify(Notification {
                method: method.into(),
                params,
            }))
            .await
            .map_err(|_| ClientError::Stopped)
    }

    /// Replaces the client's roots and tells the server
    /// (`notifications/roots/list_changed`).
    ///
    /// # Errors
    /// [`ClientError::Stopped`], or a server error when the client declared
    /// no roots.
    pub async fn set_roots(&self, roots: Vec<Root>) -> Result<(), ClientError> {
        if !self.config.handlers.set_roots(roots) {
            return Err(ClientError::Server(
                crate::jsonrpc::ErrorObject::invalid_params("this client declared no roots"),
            ));
        }
        self.notify("notifications/roots/list_changed", None).await
    }

    /// Closes the connection (HTTP: DELETE of the session) and stops the
    /// client process; requests still waiting fail with
    /// [`ClientError::Disconnected`].
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.process.send(ClientMsg::Shutdown(done)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

/// Sends `Cancel` when a request's future is dropped before its answer.
struct CancelOnDrop<'a> {
    process: &'a ActorRef<ClientMsg>,
    id: Option<Id>,
}

impl CancelOnDrop<'_> {
    fn defuse(mut self) {
        self.id = None;
    }
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let _ = self.process.send_system(ClientMsg::Cancel(id));
        }
    }
}
