//! What every request passes first: `Host` and `Origin` against DNS
//! rebinding (by the listeners' shared [`OriginPolicy`]), and the media
//! types it accepts.

use super::*;
use axum::http::{HeaderName, Method};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

/// DNS-rebinding protection ([`OriginPolicy`]) as a middleware over every
/// route: a `Host` or `Origin` not allowed is a 403 with a JSON-RPC error,
/// before any handler runs.
pub(super) async fn origin_guard(
    State(origins): State<Arc<OriginPolicy>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // HTTP/2 names the host in `:authority` (the URI's), not `Host`: the
    // same check, on the same name.
    if !request.headers().contains_key(header::HOST) {
        let authority = request
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
        if let Some(authority) = authority {
            request.headers_mut().insert(header::HOST, authority);
        }
    }
    match origins.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refused) => refuse(StatusCode::FORBIDDEN, refused.message(), refused.data()),
    }
}

/// CORS for the allowed origins: preflights answered, `Mcp-Session-Id`
/// readable by a page's script. Other origins get no CORS headers (and
/// their requests a 403 from [`origin_guard`]).
pub(super) fn cors(origins: &Arc<OriginPolicy>) -> CorsLayer {
    let origins = origins.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origins.origin_allowed(origin)
        }))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        // `Mcp-Param-*` names are the tools' own: any header asked for.
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            HeaderName::from_static(SESSION_ID),
            HeaderName::from_static("mcp-protocol-version"),
        ])
        .max_age(Duration::from_secs(600))
}

pub(super) fn accepts(headers: &HeaderMap, kind: &str) -> bool {
    let family = kind.split('/').next().unwrap_or_default();
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next()?;
            // `q=0` says "not this one" (RFC 9110 §12.4.2).
            let refused = parts.any(|p| {
                p.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("q")
                        && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
                })
            });
            (!refused).then_some(media)
        })
        .any(|media| {
            media.eq_ignore_ascii_case(kind)
                || media == "*/*"
                || media
                    .strip_suffix("/*")
                    .is_some_and(|f| f.eq_ignore_ascii_case(family))
        })
}
