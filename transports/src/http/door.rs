//! What HTTP checks at its door, before a request reaches a session: the
//! resource guard ([`arbor_mcp::guard`]; a 503 with `Retry-After` under
//! pressure) and the rate limits ([`arbor_mcp::rate`]; a 429 with
//! `Retry-After`), the JSON-RPC error in each body.

use std::net::{IpAddr, SocketAddr};

use std::num::NonZeroU32;

use arbor_mcp::guard::Overloaded;
use arbor_mcp::rate::{Limited, OverLimit, Requester};
use arbor_supervision::cascade::Isolation;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::*;

/// The client's address: put on the request by arbor's own connections
/// ([`ClientAddress`]), or by `axum::serve` with connect info when the
/// router is mounted in another app; `None` when neither says.
#[derive(Clone, Copy, Debug)]
pub(super) struct Client(pub(super) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ours = parts.extensions.get::<ClientAddress>().map(|c| c.0);
        let mounted = || {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        };
        Ok(Client(ours.or_else(mounted)))
    }
}

/// The requests in `message`: one, a batch's, or none (notifications and
/// answers are not limited).
fn requests_in(message: &Incoming) -> usize {
    let is_request = |m: &Message| matches!(m, Message::Request(_));
    match message {
        Incoming::Single(m) => usize::from(is_request(m)),
        Incoming::Batch(items) => items
            .iter()
            .filter(|item| matches!(item, Ok(m) if is_request(m)))
            .count(),
    }
}

/// The 429 for `limited`, answering request `id` when there is one.
pub(super) fn rate_limited(limited: &Limited, id: Option<Id>) -> Response {
    let mut response = rpc_error(StatusCode::TOO_MANY_REQUESTS, id, limited.error());
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(limited.retry_after_secs()),
    );
    response
}

/// The 503 while `isolation` holds (with `Retry-After` when it lifts by
/// itself), answering request `id` when there is one.
pub(super) fn isolated(isolation: &Isolation, id: Option<Id>) -> Response {
    let mut response = rpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        id,
        arbor_mcp::cascade::isolated(isolation),
    );
    if let Some(secs) = arbor_mcp::cascade::retry_after_secs(isolation) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// The 503 for `overloaded`, answering request `id` when there is one.
pub(super) fn overloaded(overloaded: &Overloaded, id: Option<Id>) -> Response {
    let mut response = rpc_error(StatusCode::SERVICE_UNAVAILABLE, id, overloaded.error());
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(overloaded.retry_after_secs()),
    );
    response
}

/// Whether the requests in `message` are turned away at the door: a 503
/// at hard resource pressure; then, counted against `from`'s rate limits
/// all or none (a batch is refused whole), a 429 if they are over, a 400
/// if there are more of them than a limit's burst, which no wait would
/// mend.
pub(super) fn turned_away(http: &Http, from: Requester, message: &Incoming) -> Option<Response> {
    let n = NonZeroU32::new(u32::try_from(requests_in(message)).unwrap_or(u32::MAX))?;
    let id = match message {
        Incoming::Single(Message::Request(r)) => Some(r.id.clone()),
        _ => None,
    };
    if let Err(refused) = http.server.guard().admit_request() {
        return Some(overloaded(&refused, id));
    }
    match http.server.limiter().requests(&from, n).err()? {
        OverLimit::Wait(limited) => Some(rate_limited(&limited, id)),
        OverLimit::Never { limit, burst } => Some(rpc_error(
            StatusCode::BAD_REQUEST,
            id,
            ErrorObject::new(
                code::INVALID_REQUEST,
                format!("{n} requests at once are more than {limit} allows at once ({burst})"),
            )
            .with_data(json!({ "limit": limit, "burst": burst, "requests": n.get() })),
        )),
    }
}
