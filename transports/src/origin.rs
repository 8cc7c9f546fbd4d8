//! DNS-rebinding protection, the same for every listener that speaks HTTP
//! (Streamable HTTP, legacy SSE, the WebSocket upgrade): `Host` must name an
//! allowed host, and an `Origin`, when sent, an allowed host or origin.
//!
//! A web page a local user visits can reach `127.0.0.1` with the page's own
//! `Origin` (WebSocket handshakes are not bound by CORS), or through a DNS
//! name rebound to it, with the attacker's `Host`. Both are refused with 403.

use axum::http::{header, HeaderMap, HeaderValue};

/// Which `Host` and `Origin` headers the listeners accept.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OriginPolicy {
    /// Host names (without port) accepted in `Host`, and in `Origin` as
    /// `http(s)://NAME[:port]`. Default: `localhost`, `127.0.0.1`, `[::1]`.
    /// A server bound beyond loopback needs the names its clients use.
    pub allowed_hosts: Vec<String>,
    /// Further origins accepted in full (`https://app.example`). Pages on
    /// an allowed origin get CORS answers over HTTP (preflights, exposed
    /// `Mcp-Session-Id`). Default: none.
    pub allowed_origins: Vec<String>,
}

impl Default for OriginPolicy {
    fn default() -> Self {
        OriginPolicy {
            allowed_hosts: Self::LOOPBACK.iter().map(|h| h.to_string()).collect(),
            allowed_origins: Vec::new(),
        }
    }
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forbidden {
    /// `Host` was missing, repeated, malformed or not allowed.
    Host(Option<String>),
    /// `Origin` was not allowed.
    Origin(String),
}

impl Forbidden {
    /// The reason, for the response's message.
    pub fn message(&self) -> &'static str {
        match self {
            Forbidden::Host(_) => "Forbidden: Host not allowed",
            Forbidden::Origin(_) => "Forbidden: Origin not allowed",
        }
    }

    /// The header refused, for the response's `data`.
    pub fn data(&self) -> serde_json::Value {
        match self {
            Forbidden::Host(host) => serde_json::json!({ "host": host }),
            Forbidden::Origin(origin) => serde_json::json!({ "origin": origin }),
        }
    }
}

impl OriginPolicy {
    /// The host names of the default policy.
    pub const LOOPBACK: [&'static str; 3] = ["localhost", "127.0.0.1", "[::1]"];

    /// Checks a request's `Host` and `Origin`.
    ///
    /// # Errors
    /// [`Forbidden`] naming the header refused.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Forbidden> {
        let mut hosts = headers.get_all(header::HOST).iter();
        let host = hosts.next().and_then(|h| h.to_str().ok());
        let single = hosts.next().is_none();
        if !single || !host.and_then(host_of).is_some_and(|h| self.host_allowed(h)) {
            return Err(Forbidden::Host(host.map(str::to_string)));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            if !self.origin_allowed(origin) {
                return Err(Forbidden::Origin(
                    origin.to_str().unwrap_or_default().to_string(),
                ));
            }
        }
        Ok(())
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
    }

    /// An `Origin` listed in full, or an http(s) origin on an allowed host.
    pub(crate) fn origin_allowed(&self, origin: &HeaderValue) -> bool {
        let origin = origin.to_str().unwrap_or_default();
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        self.allowed_origins.iter().any(|o| o == origin)
            || authority
                .and_then(host_of)
                .is_some_and(|h| self.host_allowed(h))
    }

    /// `true` when only loopback names are allowed: a listener bound beyond
    /// loopback would then refuse every client that uses its real name.
    pub fn loopback_only(&self) -> bool {
        self.allowed_hosts
            .iter()
            .all(|h| Self::LOOPBACK.iter().any(|l| l.eq_ignore_ascii_case(h)))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn loopback_hosts_with_ports_are_allowed_and_others_are_not() {
        let policy = OriginPolicy::default();
        assert!(policy
            .check(&headers(&[("host", "127.0.0.1:8080")]))
            .is_ok());
        assert!(policy.check(&headers(&[("host", "[::1]:1")])).is_ok());
        assert!(policy.check(&headers(&[("host", "LOCALHOST")])).is_ok());
        for bad in [
            "evil.example",
            "127.0.0.1:",
            "127.0.0.1:80/x",
            "a@127.0.0.1",
        ] {
            let refused = policy.check(&headers(&[("host", bad)]));
            assert_eq!(refused, Err(Forbidden::Host(Some(bad.into()))), "{bad}");
        }
        assert_eq!(policy.check(&HeaderMap::new()), Err(Forbidden::Host(None)));
        let twice = headers(&[("host", "localhost"), ("host", "localhost")]);
        assert!(policy.check(&twice).is_err(), "a repeated Host is refused");
    }

    #[test]
    fn origins_on_allowed_hosts_or_listed_in_full_are_allowed() {
        let policy = OriginPolicy {
            allowed_origins: vec!["https://app.example".into()],
            ..OriginPolicy::default()
        };
        let with = |origin| headers(&[("host", "localhost"), ("origin", origin)]);
        assert!(policy.check(&with("http://localhost:3000")).is_ok());
        assert!(policy.check(&with("https://app.example")).is_ok());
        assert_eq!(
            policy.check(&with("http://evil.example")),
            Err(Forbidden::Origin("http://evil.example".into()))
        );
        assert!(policy.check(&with("null")).is_err());
    }

    #[test]
    fn loopback_only_tells_whether_a_public_bind_would_refuse_everyone() {
        assert!(OriginPolicy::default().loopback_only());
        let public = OriginPolicy {
            allowed_hosts: vec!["localhost".into(), "mcp.example".into()],
            ..OriginPolicy::default()
        };
        assert!(!public.loopback_only());
    }
}
