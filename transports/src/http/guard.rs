//! What every request passes first: `Host` and `Origin` against DNS
//! rebinding, and the media types it accepts.

use super::*;

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
    let allowed = |host: &str| {
        config
            .allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
    };
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next().and_then(|h| h.to_str().ok());
    let single = hosts.next().is_none();
    if !single || !host.and_then(host_of).is_some_and(allowed) {
        return Err(Box::new(refuse(
            StatusCode::FORBIDDEN,
            "Forbidden: Host not allowed",
            json!({ "host": host }),
        )));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let ok = config.allowed_origins.iter().any(|o| o == origin)
            || authority.and_then(host_of).is_some_and(allowed);
        if !ok {
            return Err(Box::new(refuse(
                StatusCode::FORBIDDEN,
                "Forbidden: Origin not allowed",
                json!({ "origin": origin }),
            )));
        }
    }
    Ok(())
}

pub(super) fn accepts(headers: &HeaderMap, kind: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .any(|v| v == kind || v == "*/*")
}
