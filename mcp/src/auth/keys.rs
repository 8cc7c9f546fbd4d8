//! The issuer's signing keys (a JWKS): read from a file, or fetched (from
//! a URL, or from where the issuer's metadata says) and kept, fetched
//! again when a token names a `kid` not yet known, at most once per
//! `jwks_refresh`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::DecodingKey;
use parking_lot::RwLock;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::config::{AuthConfig, JwksSource};
use super::AuthError;

/// The key set and where it comes from.
#[derive(Debug)]
pub(super) struct Keys {
    source: Source,
    refresh: Duration,
    /// The keys known now: read by every check, without waiting.
    set: RwLock<Option<Arc<JwkSet>>>,
    /// One fetch at a time; checks that need it wait for it.
    fetching: Mutex<Fetched>,
}

#[derive(Debug)]
enum Source {
    /// Read once, at start.
    Fixed,
    /// A JWKS URL.
    Url(String),
    /// The issuer's metadata names the JWKS URL.
    Issuer(String),
    /// No JWT validation (introspection only).
    None,
}

#[derive(Debug, Default)]
struct Fetched {
    /// The JWKS URL, once the issuer's metadata said it.
    url: Option<String>,
    at: Option<Instant>,
}

impl Keys {
    /// The keys `config` names. A file is read now.
    ///
    /// # Errors
    /// A file that cannot be read or is not a JWKS.
    pub(super) fn new(config: &AuthConfig) -> Result<Keys, String> {
        let mut fixed = None;
        let source = match (&config.jwks, config.issuer()) {
            (Some(JwksSource::File(path)), _) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("auth: reading the JWKS {}: {e}", path.display()))?;
                let set: JwkSet = serde_json::from_str(&text).map_err(|e| {
                    format!("auth: the JWKS {} is not a key set: {e}", path.display())
                })?;
                fixed = Some(Arc::new(set));
                Source::Fixed
            }
            (Some(JwksSource::Url(url)), _) => Source::Url(url.clone()),
            (None, Some(issuer)) if config.introspection.is_none() => {
                Source::Issuer(issuer.trim_end_matches('/').to_string())
            }
            (None, _) => Source::None,
        };
        Ok(Keys {
            source,
            refresh: config.jwks_refresh,
            set: RwLock::new(fixed),
            fetching: Mutex::new(Fetched::default()),
        })
    }

    /// Whether JWTs can be checked at all.
    pub(super) fn validates_jwts(&self) -> bool {
        !matches!(self.source, Source::None)
    }

    /// The key for `kid` (the only key, when the token names none).
    pub(super) async fn key(
        &self,
        kid: Option<&str>,
        http: &reqwest::Client,
    ) -> Result<DecodingKey, AuthError> {
        let known = || self.set.read().as_ref().and_then(|set| pick(set, kid));
        if let Some(found) = known() {
            return found;
        }
        if matches!(self.source, Source::Fixed | Source::None) {
            return Err(AuthError::Invalid(unknown(kid)));
        }
        let mut state = self.fetching.lock().await;
        // Fetched while this check waited?
        if let Some(found) = known() {
            return found;
        }
        if state.at.is_some_and(|at| at.elapsed() < self.refresh) {
            return Err(AuthError::Invalid(unknown(kid)));
        }
        let url = match (&self.source, &state.url) {
            (Source::Url(url), _) | (Source::Issuer(_), Some(url)) => url.clone(),
            (Source::Issuer(issuer), None) => {
                let url = jwks_uri(issuer, http).await?;
                state.url = Some(url.clone());
                url
            }
            (Source::Fixed | Source::None, _) => return Err(AuthError::Invalid(unknown(kid))),
        };
        state.at = Some(Instant::now());
        let set: JwkSet = get_json(http, &url).await?;
        *self.set.write() = Some(Arc::new(set));
        known().unwrap_or_else(|| Err(AuthError::Invalid(unknown(kid))))
    }
}

fn unknown(kid: Option<&str>) -> String {
    match kid {
        Some(kid) => format!("no key {kid:?} in the issuer's key set"),
        None => "the token names no key and the key set has several".into(),
    }
}

/// The key a token names, or the only one if it names none.
fn pick(set: &JwkSet, kid: Option<&str>) -> Option<Result<DecodingKey, AuthError>> {
    let jwk = match kid {
        Some(kid) => set.find(kid)?,
        None => match set.keys.as_slice() {
            [only] => only,
            _ => return None,
        },
    };
    Some(DecodingKey::from_jwk(jwk).map_err(|e| AuthError::Invalid(format!("bad key: {e}"))))
}

/// Where the issuer's metadata (RFC 8414, then OpenID Connect discovery)
/// says its keys are.
async fn jwks_uri(issuer: &str, http: &reqwest::Client) -> Result<String, AuthError> {
    #[derive(Deserialize)]
    struct Metadata {
        jwks_uri: String,
    }
    let mut last = String::new();
    for well_known in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        match get_json::<Metadata>(http, &format!("{issuer}{well_known}")).await {
            Ok(metadata) => return Ok(metadata.jwks_uri),
            Err(e) => last = e.to_string(),
        }
    }
    Err(AuthError::Unavailable(format!(
        "the issuer's metadata names no keys: {last}"
    )))
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, AuthError> {
    let unavailable = |e: reqwest::Error| AuthError::Unavailable(format!("{url}: {e}"));
    http.get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(unavailable)?
        .json::<T>()
        .await
        .map_err(unavailable)
}
