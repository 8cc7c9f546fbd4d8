//! What every request passes first: `Host` and `Origin` against DNS
//! rebinding, and the media types it accepts.

use super::*;
use axum::http::{HeaderName, Method};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

/// The host of an authority (`host`, `host:port`, `[v6]`, `[v6]:port`),
/// or `None` when anything else follows it (userinfo, a path, junk).
fn host_of(authority: &str) -> Option<&str> {
    let (host, rest) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        authority.split_at(end + 1)
    } else {
        authority.split_at(authority.find(':').unwrap_or(authority.len()))
    };
    let port_ok = rest.is_empty()
        || rest
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    (port_ok && !host.is_empty() && !host.contains('@')).then_some(host)
}

/// DNS-rebinding protection: `Host` must name an allowed host, and an
/// `Origin`, when sent, an allowed host or origin.
pub(super) fn check_origin(headers: &HeaderMap, config: &HttpConfig) -> Result<(), Box<Response>> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next().and_then(|h| h.to_str().ok());
    let single = hosts.next().is_none();
    if !single
        || !host
            .and_then(host_of)
            .is_some_and(|h| host_allowed(h, config))
    {
        return Err(Box::new(refuse(
            StatusCode::FORBIDDEN,
            "Forbidden: Host not allowed",
            json!({ "host": host }),
        )));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        if !origin_allowed(origin, config) {
            return Err(Box::new(refuse(
                StatusCode::FORBIDDEN,
                "Forbidden: Origin not allowed",
                json!({ "origin": origin.to_str().unwrap_or_default() }),
            )));
        }
    }
    Ok(())
}

fn host_allowed(host: &str, config: &HttpConfig) -> bool {
    config
        .allowed_hosts
        .iter()
        .any(|h| h.eq_ignore_ascii_case(host))
}

/// An `Origin` listed in full, or an http(s) origin on an allowed host.
fn origin_allowed(origin: &HeaderValue, config: &HttpConfig) -> bool {
    let origin = origin.to_str().unwrap_or_default();
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    config.allowed_origins.iter().any(|o| o == origin)
        || authority
            .and_then(host_of)
            .is_some_and(|h| host_allowed(h, config))
}

/// CORS for the allowed origins: preflights answered, `Mcp-Session-Id`
/// readable by a page's script. Other origins get no CORS headers (and
/// their requests a 403 from [`check_origin`]).
pub(super) fn cors(config: &Arc<HttpConfig>) -> CorsLayer {
    let config = config.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin_allowed(origin, &config)
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
