//! `rmcp-peer PORT`: the official Rust MCP SDK (rmcp) serving what
//! `arbor bench` measures — tools `echo` and `bump`, and the subscribable
//! resource `arbor://demo/counter` — over Streamable HTTP at
//! `http://127.0.0.1:PORT/mcp`, with stateful sessions (`Mcp-Session-Id`,
//! a standalone GET stream for server notifications).
//!
//! Written as a user of the SDK would: `#[tool_router]` tools, a
//! `ServerHandler` for resources and subscriptions, `StreamableHttpService`
//! with `LocalSessionManager` nested in an axum router. Logs go to stderr,
//! warnings only unless `RUST_LOG` says otherwise.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ListResourcesResult, PaginatedRequestParams,
    ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceUpdatedNotificationParam, ServerCapabilities, ServerConfig,
    SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{
    ErrorData as McpError, Peer, RoleServer, ServerHandler, tool, tool_handler, tool_router,
};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// The one resource: the counter `bump` increments.
const COUNTER_URI: &str = "arbor://demo/counter";

/// State shared by every session: the counter and who subscribed to it.
#[derive(Debug, Default)]
struct Counter {
    value: AtomicU64,
    /// Sessions subscribed to [`COUNTER_URI`], by session number.
    subscribers: Mutex<HashMap<u64, Peer<RoleServer>>>,
    next_session: AtomicU64,
}

impl Counter {
    fn subscribers(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Peer<RoleServer>>> {
        // A panic elsewhere while holding it leaves the map intact.
        self.subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One session's handle on the shared state; dropping it (the session
/// ended) forgets the session's subscription.
#[derive(Debug)]
struct Session {
    id: u64,
    counter: Arc<Counter>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.counter.subscribers().remove(&self.id);
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to send back.
    message: String,
}

/// The handler: one per session, made by the service factory.
#[derive(Clone)]
struct Demo {
    session: Arc<Session>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Demo {
    fn new(counter: Arc<Counter>) -> Self {
        let id = counter.next_session.fetch_add(1, Ordering::Relaxed);
        Self {
            session: Arc::new(Session { id, counter }),
            tool_router: Self::tool_router(),
        }
    }

    fn counter(&self) -> &Counter {
        &self.session.counter
    }

    #[tool(description = "Returns the message it is given.")]
    fn echo(&self, Parameters(EchoArgs { message }): Parameters<EchoArgs>) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::text(message)])
    }

    #[tool(
        description = "Increments the counter and notifies every subscriber of arbor://demo/counter."
    )]
    async fn bump(&self) -> CallToolResult {
        let value = self.counter().value.fetch_add(1, Ordering::Relaxed) + 1;
        // Copy the peers out: no lock is held across the sends.
        let peers: Vec<(u64, Peer<RoleServer>)> = self
            .counter()
            .subscribers()
            .iter()
            .map(|(id, peer)| (*id, peer.clone()))
            .collect();
        let sent = futures::future::join_all(peers.into_iter().map(|(id, peer)| async move {
            let result = peer
                .notify_resource_updated(ResourceUpdatedNotificationParam::new(COUNTER_URI))
                .await;
            (id, result.is_ok())
        }))
        .await;
        let gone: Vec<u64> = sent
            .into_iter()
            .filter(|(_, ok)| !ok)
            .map(|(id, _)| id)
            .collect();
        if !gone.is_empty() {
            let mut subscribers = self.counter().subscribers();
            for id in gone {
                subscribers.remove(&id);
            }
        }
        CallToolResult::success(vec![ContentBlock::text(value.to_string())])
    }
}

fn counter_resource() -> Resource {
    Resource::new(COUNTER_URI, "counter")
        .with_description("The demo counter; bump increments it.")
        .with_mime_type("text/plain")
}

fn check_uri(uri: &str) -> Result<(), McpError> {
    if uri == COUNTER_URI {
        Ok(())
    } else {
        Err(McpError::resource_not_found(
            format!("no resource {uri}"),
            None,
        ))
    }
}

// resources/subscribe is the handshake era's way, deprecated in rmcp only
// because 2026-07-28 replaced it with subscriptions/listen.
#[allow(deprecated)]
#[tool_handler(router = self.tool_router)]
impl ServerHandler for Demo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .build(),
        )
        .with_server_info(Implementation::new("rmcp-peer", env!("CARGO_PKG_VERSION")))
    }

    /// The handshake era: sessions, `initialize`, `resources/subscribe`.
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(
            &ProtocolVersion::LATEST_WITH_INITIALIZE,
        ))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(
            vec![counter_resource()],
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        check_uri(&request.uri)?;
        let value = self.counter().value.load(Ordering::Relaxed);
        Ok(
            ReadResourceResult::new(vec![ResourceContents::text(value.to_string(), request.uri)])
                .into(),
        )
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        check_uri(&request.uri)?;
        self.counter()
            .subscribers()
            .insert(self.session.id, context.peer);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        check_uri(&request.uri)?;
        self.counter().subscribers().remove(&self.session.id);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let port: u16 = std::env::args()
        .nth(1)
        .context("usage: rmcp-peer PORT")?
        .parse()
        .context("PORT must be a port number")?;

    let counter = Arc::new(Counter::default());
    let shutdown = CancellationToken::new();
    let service: StreamableHttpService<Demo, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(Demo::new(counter.clone())),
        Default::default(),
        StreamableHttpServerConfig::default().with_cancellation_token(shutdown.child_token()),
    );
    let router = axum::Router::new().nest_service("/mcp", service);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    // axum 0.8 leaves Nagle on; an SSE response goes out in several writes,
    // so without TCP_NODELAY each request waits out the client's delayed ACK
    // (~40 ms). axum's documented way to set it:
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?
        .tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!("cannot set TCP_NODELAY: {e}");
            }
        });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
        })
        .await?;
    Ok(())
}
