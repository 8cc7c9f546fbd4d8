//! Finding the authorization server: protected-resource metadata (RFC 9728)
//! from the challenge or the well-known paths, then the authorization
//! server's metadata (RFC 8414, with the OpenID Connect fallbacks), its
//! `issuer` checked against the one asked for.

use reqwest::Url;
use serde::Deserialize;

/// Protected-resource metadata.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct ResourceMetadata {
    /// The resource identifier: what tokens are asked for (`resource`).
    pub(crate) resource: String,
    /// The authorization servers that issue tokens for it.
    #[serde(default)]
    pub(crate) authorization_servers: Vec<String>,
    /// The scopes it knows.
    #[serde(default)]
    pub(crate) scopes_supported: Option<Vec<String>>,
}

/// Authorization-server metadata.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct ServerMetadata {
    pub(crate) issuer: String,
    pub(crate) authorization_endpoint: Option<String>,
    pub(crate) token_endpoint: String,
    pub(crate) registration_endpoint: Option<String>,
    #[serde(default)]
    pub(crate) scopes_supported: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) client_id_metadata_document_supported: bool,
    #[serde(default)]
    pub(crate) authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    pub(crate) dpop_signing_alg_values_supported: Option<Vec<String>>,
}

async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &Url) -> Option<T> {
    let response = http
        .get(url.clone())
        .header("accept", "application/json")
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// The resource's metadata: at the challenge's URL, else the path-based
/// well-known URL, else the root one. `None` when there is none (servers
/// of 2025-03-26, whose origin is their authorization server).
pub(crate) async fn resource_metadata(
    http: &reqwest::Client,
    server: &Url,
    from_challenge: Option<&str>,
) -> Option<ResourceMetadata> {
    if let Some(url) = from_challenge.and_then(|u| server.join(u).ok()) {
        return get_json(http, &url).await;
    }
    let path = server.path().trim_end_matches('/');
    let mut candidates = Vec::new();
    if !path.is_empty() {
        candidates.push(format!("/.well-known/oauth-protected-resource{path}"));
    }
    candidates.push("/.well-known/oauth-protected-resource".to_string());
    for candidate in candidates {
        if let Ok(url) = server.join(&candidate) {
            if let Some(found) = get_json(http, &url).await {
                return Some(found);
            }
        }
    }
    None
}

/// Whether `resource` (the metadata's identifier) names `server`: same
/// origin, and the server's path within the resource's.
pub(crate) fn names(resource: &str, server: &Url) -> bool {
    let Ok(resource) = Url::parse(resource) else {
        return false;
    };
    resource.scheme() == server.scheme()
        && resource.host_str() == server.host_str()
        && resource.port_or_known_default() == server.port_or_known_default()
        && server
            .path()
            .starts_with(resource.path().trim_end_matches('/'))
}

/// The authorization server's metadata for `issuer`, by RFC 8414's path
/// insertion, then OpenID Connect's insertion and appending; its `issuer`
/// must be exactly the one asked for (RFC 8414 §3.3).
pub(crate) async fn server_metadata(
    http: &reqwest::Client,
    issuer: &str,
) -> Result<Option<ServerMetadata>, String> {
    let base = Url::parse(issuer).map_err(|e| format!("issuer {issuer:?}: {e}"))?;
    let path = base.path().trim_end_matches('/');
    let candidates = if path.is_empty() {
        vec![
            "/.well-known/oauth-authorization-server".to_string(),
            "/.well-known/openid-configuration".to_string(),
        ]
    } else {
        vec![
            format!("/.well-known/oauth-authorization-server{path}"),
            format!("/.well-known/openid-configuration{path}"),
            format!("{path}/.well-known/openid-configuration"),
        ]
    };
    for candidate in candidates {
        let Ok(url) = base.join(&candidate) else {
            continue;
        };
        if let Some(found) = get_json::<ServerMetadata>(http, &url).await {
            if found.issuer != issuer {
                return Err(format!(
                    "the metadata at {url} names issuer {:?}, not {issuer:?}",
                    found.issuer
                ));
            }
            return Ok(Some(found));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_names_the_servers_within_it() {
        let server = Url::parse("http://localhost:3000/mcp").unwrap_or_else(|_| unreachable!());
        assert!(names("http://localhost:3000/mcp", &server));
        assert!(names("http://localhost:3000", &server));
        assert!(!names("https://evil.example.com/mcp", &server));
        assert!(!names("http://localhost:3001/mcp", &server));
        assert!(!names("http://localhost:3000/other", &server));
    }
}
