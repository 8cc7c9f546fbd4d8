//! Requests for a session another node of the cluster owns: handed to that
//! node whole, its response streamed back, instead of a 404.
//!
//! A node in a cluster names itself in the ids of the sessions it opens
//! (`<node>.<random>`). A request whose `Mcp-Session-Id` (or legacy
//! `sessionId`) names another node goes there through the cluster's
//! [`Forward`] before anything else reads it: the owner checks its token,
//! its origin and its limits (those of the client's address, which the
//! request carries) as if the request had come to it. A request forwarded
//! once is not forwarded again.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::future::BoxFuture;
use tower_service::Service;

use super::respond::{refuse, session_not_found};
use super::stream::ClientAddress;
use super::{Http, MESSAGE_PATH, SESSION_ID};

/// The header that carries the client's address from the node it came to
/// to the node that serves it; a client's own is dropped.
pub const FORWARDED_FOR: &str = "arbor-forwarded-for";

/// Marks a request another node handed here: served here, whatever its
/// session id says.
#[derive(Clone, Copy, Debug)]
struct ForwardedHere;

/// Why a request did not reach the node that owns its session.
#[derive(Debug, thiserror::Error)]
pub enum Unforwarded {
    /// No node answers for it (it is gone): the session is not found.
    #[error("the session's node is gone")]
    OwnerGone,
    /// The owner did not start answering in time: 504.
    #[error("the session's node did not answer in time")]
    Timeout,
    /// Its body is more than the cluster carries (bytes): 413.
    #[error("the request body is more than the {0} bytes a forwarded request carries")]
    TooLarge(usize),
    /// The request could not be carried (the cluster unreachable): 502.
    #[error("{0}")]
    Failed(String),
}

/// How a node reaches the others' sessions, and lets them reach its own.
pub trait Forward: Send + Sync + std::fmt::Debug + 'static {
    /// This node's id: what its session ids start with.
    fn node(&self) -> &str;

    /// Starts serving the requests other nodes forward here, through
    /// `local` (this node's HTTP routes).
    fn serve_here(&self, local: LocalHttp);

    /// Hands `request` to `node`: its response, the body streamed as it
    /// comes.
    fn forward(
        &self,
        node: &str,
        request: Request,
    ) -> BoxFuture<'static, Result<Response, Unforwarded>>;
}

/// This node's HTTP routes, for requests forwarded to it.
#[derive(Clone)]
pub struct LocalHttp(pub(super) axum::Router);

impl std::fmt::Debug for LocalHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalHttp")
    }
}

impl LocalHttp {
    /// Serves `request` (handed over by another node of the cluster) here,
    /// as if it had come to this node's listener from the client whose
    /// address its [`FORWARDED_FOR`] names, so that the address's limits
    /// hold.
    pub async fn serve(&self, mut request: Request<Body>) -> Response {
        let client = request
            .headers_mut()
            .remove(FORWARDED_FOR)
            .and_then(|v| v.to_str().ok()?.parse::<std::net::IpAddr>().ok());
        if let Some(ip) = client {
            request.extensions_mut().insert(ClientAddress(ip));
        }
        request.extensions_mut().insert(ForwardedHere);
        let mut router = self.0.clone();
        match router.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// The node a session id names, if any.
pub(super) fn owner(id: &str) -> Option<&str> {
    id.split_once('.').map(|(node, _)| node)
}

/// The session a request is for: `Mcp-Session-Id`, or on the legacy
/// message path its `sessionId`.
fn session_of(request: &Request) -> Option<&str> {
    if let Some(id) = request.headers().get(SESSION_ID) {
        return id.to_str().ok();
    }
    if request.uri().path() == MESSAGE_PATH {
        return request
            .uri()
            .query()?
            .split('&')
            .find_map(|pair| pair.strip_prefix("sessionId="));
    }
    None
}

/// The middleware: a request for another node's session goes there.
pub(super) async fn foreign_sessions(
    State(http): State<Http>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(forward) = &http.forward else {
        return next.run(request).await;
    };
    if request.extensions().get::<ForwardedHere>().is_some() {
        return next.run(request).await;
    }
    // Only a node says where a request came from.
    request.headers_mut().remove(FORWARDED_FOR);
    let Some((node, id)) = session_of(&request)
        .and_then(|id| owner(id).map(|node| (node.to_string(), id.to_string())))
        .filter(|(node, _)| node != forward.node())
    else {
        return next.run(request).await;
    };
    let client = request
        .extensions()
        .get::<ClientAddress>()
        .map(|c| c.0)
        .or_else(|| {
            request
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip())
        });
    if let Some(value) =
        client.and_then(|ip| axum::http::HeaderValue::from_str(&ip.to_string()).ok())
    {
        request.headers_mut().insert(FORWARDED_FOR, value);
    }
    metrics::counter!("arbor_cluster_forwarded_total").increment(1);
    match forward.forward(&node, request).await {
        Ok(response) => response,
        Err(Unforwarded::OwnerGone) => session_not_found(&id),
        Err(Unforwarded::Timeout) => refuse(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            "Gateway Timeout: the session's node did not answer in time",
            serde_json::json!({ "node": node }),
        ),
        Err(Unforwarded::TooLarge(max)) => refuse(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "Payload Too Large: more than a request forwarded to the session's node carries",
            serde_json::json!({ "limit": "forwarded_body", "max": max }),
        ),
        Err(Unforwarded::Failed(reason)) => refuse(
            axum::http::StatusCode::BAD_GATEWAY,
            "Bad Gateway: the request did not reach the session's node",
            serde_json::json!({ "node": node, "reason": reason }),
        ),
    }
}
