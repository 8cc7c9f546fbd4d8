//! `[server.auth]`: what the resource server accepts, where its keys come
//! from, which scopes guard what.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The longest clock skew accepted: past it `exp` means little.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// The OAuth 2.1 resource server's configuration (MCP authorization, both
/// eras). Off unless set; see [`crate::auth`].
///
/// # Examples
/// ```
/// let config: arbor_mcp::auth::AuthConfig = toml_like(r#"{
///     "resource": "https://mcp.example.com/mcp",
///     "authorization_servers": ["https://auth.example.com"],
///     "jwks": {"file": "jwks.json"},
///     "scopes": {"tools": {"deploy": "deploy:write"}}
/// }"#);
/// assert_eq!(config.issuer(), Some("https://auth.example.com"));
/// assert_eq!(config.scopes.tools["deploy"], "deploy:write");
/// # fn toml_like(s: &str) -> arbor_mcp::auth::AuthConfig { serde_json::from_str(s).unwrap() }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// This server's resource identifier (RFC 8707; its canonical URL, as
    /// `https://host/mcp`): a token's `aud` must name it.
    pub resource: String,
    /// The authorization servers that issue tokens for it, as the
    /// Protected Resource Metadata lists them (RFC 9728).
    pub authorization_servers: Vec<String>,
    /// The `iss` a token must carry. Default: the only authorization
    /// server, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Where the keys that sign JWT access tokens come from. Default: the
    /// issuer's metadata names them (`jwks_uri`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwksSource>,
    /// Token introspection (RFC 7662), for opaque tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection: Option<IntrospectionConfig>,
    /// Scopes every request needs (the `scope` of a 401's challenge).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_scopes: Vec<String>,
    /// The scope each tool, resource and prompt needs beyond those.
    #[serde(default)]
    pub scopes: ScopeMap,
    /// Scopes the metadata lists. Default: every scope named above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// Clock skew accepted on `exp` and `nbf`; at most [`MAX_LEEWAY`].
    #[serde(default = "default_leeway", with = "humantime_serde")]
    pub leeway: Duration,
    /// The least time between two fetches of the key set (an unknown
    /// `kid` fetches it again, at most this often).
    #[serde(default = "default_jwks_refresh", with = "humantime_serde")]
    pub jwks_refresh: Duration,
    /// How long a fetched key set is trusted before it is fetched again
    /// (a key the issuer dropped stops working then).
    #[serde(default = "default_jwks_max_age", with = "humantime_serde")]
    pub jwks_max_age: Duration,
    /// A revocation list: one entry per line, `jti:ID` (a token) or
    /// `sub:SUBJECT` (every token of a subject); `#` starts a comment.
    /// Reloaded when it changes; open streams of a revoked token close.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_file: Option<PathBuf>,
    /// How often the revocation list is checked for changes.
    #[serde(default = "default_revocation_reload", with = "humantime_serde")]
    pub revocation_reload: Duration,
}

fn default_leeway() -> Duration {
    Duration::from_secs(30)
}

fn default_jwks_refresh() -> Duration {
    Duration::from_secs(10)
}

fn default_jwks_max_age() -> Duration {
    Duration::from_secs(300)
}

fn default_revocation_reload() -> Duration {
    Duration::from_secs(1)
}

impl AuthConfig {
    /// A configuration for `resource`, its tokens issued by `issuer`, with
    /// the defaults (keys from the issuer's metadata).
    pub fn new(resource: impl Into<String>, issuer: impl Into<String>) -> Self {
        AuthConfig {
            resource: resource.into(),
            authorization_servers: vec![issuer.into()],
            issuer: None,
            jwks: None,
            introspection: None,
            required_scopes: Vec::new(),
            scopes: ScopeMap::default(),
            scopes_supported: Vec::new(),
            leeway: default_leeway(),
            jwks_refresh: default_jwks_refresh(),
            jwks_max_age: default_jwks_max_age(),
            revocation_file: None,
            revocation_reload: default_revocation_reload(),
        }
    }

    /// The `iss` tokens must carry.
    pub fn issuer(&self) -> Option<&str> {
        match (&self.issuer, self.authorization_servers.as_slice()) {
            (Some(issuer), _) => Some(issuer),
            (None, [only]) => Some(only),
            (None, _) => None,
        }
    }

    /// The scopes the metadata lists.
    pub fn supported_scopes(&self) -> Vec<String> {
        if !self.scopes_supported.is_empty() {
            return self.scopes_supported.clone();
        }
        let mut all: BTreeSet<&String> = self.required_scopes.iter().collect();
        all.extend(self.scopes.tools.values());
        all.extend(self.scopes.resources.values());
        all.extend(self.scopes.prompts.values());
        all.into_iter().cloned().collect()
    }

    /// Checks what cannot work: no way to validate a token, no issuer to
    /// check, a leeway past [`MAX_LEEWAY`].
    ///
    /// # Errors
    /// What is wrong, for the operator.
    pub fn validate(&self) -> Result<(), String> {
        if self.resource.is_empty() {
            return Err("auth: `resource` is empty".into());
        }
        if self.issuer().is_none() && self.introspection.is_none() {
            return Err(
                "auth: name the `issuer` (or exactly one of `authorization_servers`)".into(),
            );
        }
        if self.leeway > MAX_LEEWAY {
            return Err(format!(
                "auth: `leeway` {:?} is past the most accepted, {MAX_LEEWAY:?}",
                self.leeway
            ));
        }
        if self.revocation_reload.is_zero() {
            return Err("auth: `revocation_reload` must be more than 0".into());
        }
        // Keys and introspection answers decide who gets in: fetched only
        // over TLS (RFC 8414 §3, RFC 7662 §4), or on this machine.
        let mut fetched = Vec::new();
        match &self.jwks {
            Some(JwksSource::Url(url)) => fetched.push(("jwks.url", url.as_str())),
            Some(JwksSource::File(_)) => {}
            None => fetched.extend(self.issuer().map(|i| ("issuer", i))),
        }
        fetched.extend(
            self.introspection
                .as_ref()
                .map(|i| ("introspection.url", i.url.as_str())),
        );
        for (field, url) in fetched {
            if !secure(url) {
                return Err(format!(
                    "auth: `{field}` {url:?} must be https (or on a loopback address)"
                ));
            }
        }
        Ok(())
    }
}

/// Whether `url` is https, or http to this machine.
fn secure(url: &str) -> bool {
    url.starts_with("https://") || (url.starts_with("http://") && on_this_machine(url))
}

/// Whether `url` names this machine (`localhost` or a loopback address),
/// where a token or a key crosses no network.
pub fn on_this_machine(url: &str) -> bool {
    let Some(host) = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
    else {
        return false;
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Where the token-signing keys come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum JwksSource {
    /// A JWKS document on disk, read at start.
    File(PathBuf),
    /// A JWKS document fetched over HTTP, cached, fetched again on an
    /// unknown `kid`.
    Url(String),
}

/// Token introspection (RFC 7662): the endpoint, and this server's
/// credentials there (HTTP Basic).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionConfig {
    /// The introspection endpoint.
    pub url: String,
    /// This resource server's client id at the authorization server.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
}

/// The scope each tool, resource and prompt needs: by tool name, by
/// resource URI or URI template, by prompt name. What is not named needs
/// only [`AuthConfig::required_scopes`]. Lists show a token only what its
/// scopes reach.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeMap {
    /// Tool name to scope.
    #[serde(default)]
    pub tools: BTreeMap<String, String>,
    /// Resource URI (or URI template, for what it matches) to scope.
    #[serde(default)]
    pub resources: BTreeMap<String, String>,
    /// Prompt name to scope.
    #[serde(default)]
    pub prompts: BTreeMap<String, String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_introspection_are_fetched_only_over_tls_or_on_this_machine() {
        let with_jwks = |url: &str| {
            let mut config = AuthConfig::new("https://mcp.test/mcp", "https://issuer.test");
            config.jwks = Some(JwksSource::Url(url.into()));
            config.validate()
        };
        for url in [
            "https://keys.test/jwks.json",
            "http://127.0.0.1:9/jwks.json",
            "http://localhost/jwks.json",
            "http://[::1]:9/jwks.json",
        ] {
            assert_eq!(with_jwks(url), Ok(()), "{url}");
        }
        for url in [
            "http://keys.test/jwks.json",
            "http://10.0.0.1/j",
            "ftp://x/j",
            "nonsense",
        ] {
            let error = with_jwks(url).unwrap_err();
            assert!(
                error.contains("jwks.url") && error.contains("https"),
                "{error}"
            );
        }
        // Keys from the issuer's metadata: the issuer is fetched.
        let plain = AuthConfig::new("https://mcp.test/mcp", "http://issuer.test");
        assert!(plain.validate().unwrap_err().contains("`issuer`"));
        let mut local = plain.clone();
        local.jwks = Some(JwksSource::File("jwks.json".into()));
        assert_eq!(local.validate(), Ok(()), "a key file fetches nothing");
        local.introspection = Some(IntrospectionConfig {
            url: "http://auth.test/introspect".into(),
            client_id: "rs".into(),
            client_secret: "s".into(),
        });
        assert!(local.validate().unwrap_err().contains("introspection.url"));
    }
}
