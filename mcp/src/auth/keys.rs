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
    max_age: Duration,
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
            max_age: config.jwks_max_age,
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
        let fetchable = !matches!(self.source, Source::Fixed | Source::None);
        if let Some(found) = known() {
            // A key the issuer has dropped (rotated out, compromised) is
            // trusted at most `jwks_max_age` longer: past it the set is
            // fetched again, by one check while the others go on.
            let stale = self.fetching.try_lock().ok().filter(|state| {
                fetchable && state.at.is_some_and(|at| at.elapsed() >= self.max_age)
            });
            let Some(mut state) = stale else {
                return found;
            };
            if let Err(e) = self.fetch(&mut state, http).await {
                tracing::warn!(target: "arbor::auth", "the key set could not be fetched again, kept: {e}");
                return found;
            }
            return known().unwrap_or_else(|| Err(AuthError::Invalid(unknown(kid))));
        }
        if !fetchable {
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
        self.fetch(&mut state, http).await?;
        known().unwrap_or_else(|| Err(AuthError::Invalid(unknown(kid))))
    }

    /// Fetches the set (and, the first time, where the issuer says it
    /// is). A failure counts as a fetch too: an issuer that is down is
    /// asked at most once per `jwks_refresh`.
    async fn fetch(&self, state: &mut Fetched, http: &reqwest::Client) -> Result<(), AuthError> {
        state.at = Some(Instant::now());
        let url = match (&self.source, &state.url) {
            (Source::Url(url), _) | (Source::Issuer(_), Some(url)) => url.clone(),
            (Source::Issuer(issuer), None) => {
                let url = jwks_uri(issuer, http).await?;
                state.url = Some(url.clone());
                url
            }
            (Source::Fixed | Source::None, _) => return Ok(()),
        };
        let set: JwkSet = get_json(http, &url).await?;
        *self.set.write() = Some(Arc::new(set));
        Ok(())
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
        issuer: Option<String>,
        jwks_uri: String,
    }
    // RFC 8414 §3.1 puts the well-known path before the issuer's own path;
    // OpenID Connect Discovery after it.
    let after_scheme = issuer.find("://").map_or(0, |i| i + 3);
    let (origin, path) = match issuer[after_scheme..].find('/') {
        Some(i) => issuer.split_at(after_scheme + i),
        None => (issuer, ""),
    };
    let mut last = String::new();
    for url in [
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{issuer}/.well-known/openid-configuration"),
    ] {
        match get_json::<Metadata>(http, &url).await {
            // Metadata for another issuer vouches for nothing here.
            Ok(metadata)
                if metadata
                    .issuer
                    .as_deref()
                    .is_some_and(|i| i.trim_end_matches('/') != issuer) =>
            {
                last = format!("{url} names another issuer");
            }
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
