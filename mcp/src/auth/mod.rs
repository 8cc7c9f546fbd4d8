//! OAuth 2.1 resource server (MCP authorization, both eras): who a request
//! comes from, what it may use.
//!
//! - A bearer token is a JWT checked against the issuer's keys
//!   ([`JwksSource`]): its signature, `iss`, `aud` (this server's resource
//!   indicator, RFC 8707: a token for another resource is refused),
//!   `exp`/`nbf` within [`AuthConfig::leeway`]; or an opaque token asked
//!   of the authorization server (introspection, RFC 7662). Either way it
//!   becomes a [`Grant`].
//! - Scopes guard tools, resources and prompts ([`ScopeMap`]); lists show
//!   a grant only what it reaches, and a call beyond it is refused naming
//!   the scope to ask for (step-up).
//! - A session is bound to the subject that opened it: another subject's
//!   token is refused on it, a newer token of the same subject carries it
//!   on (rotation). What was opened with a token ends when the token
//!   expires or the revocation list names it.
//!
//! Transports carry the token: HTTP's `Authorization` header on every
//! request (401/403 with `WWW-Authenticate`), a WebSocket's upgrade
//! request, or, on a connection that carried none (TCP, WebSocket), the
//! request [`AUTHENTICATE`] with `{"token": …}` first.

mod config;
mod grant;
mod keys;
mod revocation;

pub use config::{
    on_this_machine, AuthConfig, IntrospectionConfig, JwksSource, ScopeMap, MAX_LEEWAY,
};
pub use grant::{Ending, Grant};

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::jsonrpc::{code, ErrorObject};
use crate::model::Method;
use crate::template::UriTemplate;

/// The request that authenticates a connection that carried no token
/// (TCP; a WebSocket upgraded without one), and rotates its token later:
/// `{"token": "…"}`; answered `{"subject", "scopes", "expiresAt"}`.
pub const AUTHENTICATE: &str = "io.arbor/authenticate";

/// How the exit reason of a session whose access ended begins
/// (`access ended: token_expired`): a WebSocket closes with 1008 on it.
pub const ACCESS_ENDED: &str = "access ended";

/// The notification a connection that is its session (TCP, WebSocket)
/// gets before it is closed because its access ended: `{"reason"}`.
pub const ACCESS_ENDED_NOTIFICATION: &str = "notifications/io.arbor/access_ended";

/// Where clients learn how to get a token (RFC 9728), at the server's root.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// Why a token was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token came.
    #[error("an access token is required")]
    Missing,
    /// Not a bearer token this server can read.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// Its signature, key or algorithm does not hold.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// Past its `exp` (and the leeway).
    #[error("the token has expired")]
    Expired,
    /// Before its `nbf`.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Issued by someone else.
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    /// For another resource.
    #[error("the token is for another resource, not {0}")]
    WrongAudience(String),
    /// The revocation list names it, or introspection says it is not
    /// active.
    #[error("the token has been revoked")]
    Revoked,
    /// The keys or the introspection endpoint cannot be reached.
    #[error("cannot check the token now: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// The `data.reason` (and the challenge's `error_description`).
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::Malformed(_) => "malformed_token",
            AuthError::Invalid(_) => "invalid_token",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::WrongAudience(_) => "wrong_audience",
            AuthError::Revoked => "token_revoked",
            AuthError::Unavailable(_) => "unavailable",
        }
    }

    /// The OAuth error code of a `WWW-Authenticate` challenge (RFC 6750):
    /// none when no token came.
    pub fn oauth_error(&self) -> Option<&'static str> {
        match self {
            AuthError::Missing => None,
            _ => Some("invalid_token"),
        }
    }
}

/// Why a request was refused after its token was read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No valid token: 401.
    #[error(transparent)]
    Unauthenticated(#[from] AuthError),
    /// The token lacks a scope: 403 `insufficient_scope`, naming it.
    #[error("this needs the scope {0:?}")]
    InsufficientScope(String),
    /// The session belongs to another subject: 403.
    #[error("the session belongs to another subject")]
    OtherSubject,
}

impl Denied {
    /// The JSON-RPC error for stream transports (and HTTP bodies);
    /// `metadata` is the Protected Resource Metadata URL, if known.
    pub fn error(&self, auth: &Authenticator, metadata: Option<&str>) -> ErrorObject {
        let mut data = Map::new();
        match self {
            Denied::Unauthenticated(e) => {
                data.insert("reason".into(), e.reason().into());
                if !auth.config().required_scopes.is_empty() {
                    data.insert("scope".into(), auth.required_scope_list().into());
                }
            }
            Denied::InsufficientScope(scope) => {
                data.insert("reason".into(), "insufficient_scope".into());
                data.insert("scope".into(), auth.step_up_scopes(scope).into());
            }
            Denied::OtherSubject => {
                data.insert("reason".into(), "other_subject".into());
            }
        }
        if let Some(url) = metadata {
            data.insert("resourceMetadata".into(), url.into());
        }
        let code = match self {
            Denied::Unauthenticated(_) => code::UNAUTHORIZED,
            _ => code::FORBIDDEN,
        };
        ErrorObject::new(code, self.to_string()).with_data(Value::Object(data))
    }
}

/// Checks tokens and scopes for one server. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: AuthConfig,
    keys: keys::Keys,
    revocations: revocation::Revocations,
    http: reqwest::Client,
    /// The resource keys of [`ScopeMap::resources`] that are URIs, in
    /// their normal form.
    resources: std::collections::HashMap<String, String>,
    /// The resource keys of [`ScopeMap::resources`] that are templates.
    templates: Vec<(UriTemplate, String)>,
    /// Set once the revocation list is watched.
    watching: std::sync::OnceLock<()>,
}

/// The claims arbor reads.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    scope: Option<Scopes>,
    /// Some issuers name them `scp`, as a string or an array.
    #[serde(default)]
    scp: Option<Scopes>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
}

/// What introspection answers (RFC 7662 §2.2).
#[derive(Deserialize)]
struct Introspected {
    active: bool,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
}

/// Scopes as issuers write them: one space-separated string, or an array.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scopes {
    Spaced(String),
    Listed(Vec<String>),
}

impl Scopes {
    fn into_vec(self) -> Vec<String> {
        match self {
            Scopes::Spaced(all) => all.split_whitespace().map(str::to_string).collect(),
            Scopes::Listed(all) => all,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn names(&self, resource: &str) -> bool {
        match self {
            Audience::One(aud) => aud == resource,
            Audience::Many(all) => all.iter().any(|a| a == resource),
        }
    }
}

/// The algorithms accepted: asymmetric only, so a resource server never
/// holds a secret that could mint tokens.
const ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

impl Authenticator {
    /// An authenticator for `config`; reads a JWKS file now. The
    /// revocation list is read on the first token checked, then watched.
    ///
    /// # Errors
    /// What is wrong with the configuration, for the operator.
    pub fn new(config: AuthConfig) -> Result<Self, String> {
        config.validate()?;
        let keys = keys::Keys::new(&config)?;
        if !keys.validates_jwts() && config.introspection.is_none() {
            return Err(
                "auth: no way to check a token: set `jwks`, `issuer` or `introspection`".into(),
            );
        }
        let (mut templates, mut resources) = (Vec::new(), std::collections::HashMap::new());
        for (key, scope) in &config.scopes.resources {
            if key.contains('{') {
                let template = UriTemplate::parse(key)
                    .map_err(|e| format!("auth: scopes.resources {key:?}: {e}"))?;
                templates.push((template, scope.clone()));
            } else {
                let uri = crate::uri::ResourceUri::parse(key)
                    .map_err(|e| format!("auth: scopes.resources {key:?}: {e}"))?;
                resources.insert(uri.into_string(), scope.clone());
            }
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("auth: HTTP client: {e}"))?;
        let inner = Arc::new(Inner {
            config,
            keys,
            revocations: revocation::Revocations::default(),
            http,
            resources,
            templates,
            watching: std::sync::OnceLock::new(),
        });
        Ok(Authenticator { inner })
    }

    /// Its configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    /// Starts watching the revocation list, if there is one: at once, so
    /// it holds before the first token. Needs a Tokio runtime; called by
    /// the transports when they start (calling it again does nothing).
    pub fn start(&self) {
        if self.inner.watching.set(()).is_err() {
            return;
        }
        if let Some(path) = &self.inner.config.revocation_file {
            revocation::reload(
                path.clone(),
                self.inner.config.revocation_reload,
                Arc::downgrade(&self.inner),
            );
        }
    }

    /// Checks a bearer token; the grant it carries.
    ///
    /// # Errors
    /// Why the token is not accepted.
    pub async fn authenticate(&self, token: &str) -> Result<Arc<Grant>, AuthError> {
        self.start();
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let looks_like_jwt = token.split('.').count() == 3;
        let grant = match (&self.inner.config.introspection, looks_like_jwt) {
            (_, true) if self.inner.keys.validates_jwts() => self.check_jwt(token).await?,
            (Some(_), _) => self.introspect(token).await?,
            (None, _) => return Err(AuthError::Malformed("not a JWT".into())),
        };
        let grant = Arc::new(grant);
        if self.inner.config.revocation_file.is_some() {
            // Watched before the check: a revocation landing in between
            // still reaches it.
            self.inner.revocations.watch(&grant);
        }
        if self.inner.revocations.names(&grant) {
            metrics::counter!("arbor_auth_refused_total", "reason" => "token_revoked").increment(1);
            return Err(AuthError::Revoked);
        }
        Ok(grant)
    }

    /// Checks the `Authorization` header's value (`Bearer …`).
    ///
    /// # Errors
    /// Why it is not accepted.
    pub async fn authenticate_header(&self, header: Option<&str>) -> Result<Arc<Grant>, AuthError> {
        let Some(header) = header else {
            return Err(AuthError::Missing);
        };
        let (scheme, token) = header.trim().split_once(' ').unwrap_or((header, ""));
        // Another scheme carries no bearer token (RFC 6750 §3: no error).
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Missing);
        }
        self.authenticate(token).await
    }

    async fn check_jwt(&self, token: &str) -> Result<Grant, AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let key = self
            .inner
            .keys
            .key(header.kid.as_deref(), &self.inner.http)
            .await?;
        let config = &self.inner.config;
        let mut validation = Validation::new(header.alg);
        validation.leeway = config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_audience(&[&config.resource]);
        if let Some(issuer) = config.issuer() {
            validation.set_issuer(&[issuer]);
        }
        validation.set_required_spec_claims(&["exp", "sub", "aud", "iss"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| self.refused(e.kind()))?
            .claims;
        // RFC 7519 §4.1.4: not accepted *on or after* `exp` (the crate
        // accepts its very second), as a grant ends then.
        if claims
            .exp
            .is_some_and(|exp| exp.saturating_add(config.leeway.as_secs()) <= now_secs())
        {
            return Err(self.refused(&ErrorKind::ExpiredSignature));
        }
        if claims.sub.is_empty() {
            return Err(self.refused(&ErrorKind::MissingRequiredClaim("sub".into())));
        }
        let scopes = scopes_of(claims.scope, claims.scp);
        Ok(Grant::new(claims.sub, scopes, claims.exp.map(at))
            .with_ids(claims.jti, claims.client_id)
            .with_grace(config.leeway))
    }

    fn refused(&self, kind: &ErrorKind) -> AuthError {
        let error = match kind {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
            ErrorKind::InvalidAudience => {
                AuthError::WrongAudience(self.inner.config.resource.clone())
            }
            ErrorKind::MissingRequiredClaim(claim) => {
                AuthError::Invalid(format!("the claim {claim:?} is missing"))
            }
            other => AuthError::Invalid(format!("{other:?}")),
        };
        metrics::counter!("arbor_auth_refused_total", "reason" => error.reason()).increment(1);
        error
    }

    async fn introspect(&self, token: &str) -> Result<Grant, AuthError> {
        let Some(endpoint) = &self.inner.config.introspection else {
            return Err(AuthError::Malformed("not a JWT".into()));
        };
        let unavailable = |e: reqwest::Error| AuthError::Unavailable(e.to_string());
        let answer: Introspected = self
            .inner
            .http
            .post(&endpoint.url)
            .basic_auth(&endpoint.client_id, Some(&endpoint.client_secret))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body(format!("token={}", form_escape(token)))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        let config = &self.inner.config;
        let now = now_secs();
        let leeway = config.leeway.as_secs();
        let refused = |e: AuthError| {
            metrics::counter!("arbor_auth_refused_total", "reason" => e.reason()).increment(1);
            Err(e)
        };
        if !answer.active {
            return refused(AuthError::Revoked);
        }
        if answer
            .exp
            .is_some_and(|exp| exp.saturating_add(leeway) <= now)
        {
            return refused(AuthError::Expired);
        }
        if answer
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(leeway))
        {
            return refused(AuthError::NotYetValid);
        }
        if let (Some(expected), Some(iss)) = (config.issuer(), &answer.iss) {
            if expected != iss {
                return refused(AuthError::WrongIssuer);
            }
        }
        // The audience must be said and must name this server: an
        // authorization server that does not say cannot vouch for it.
        if !answer.aud.is_some_and(|aud| aud.names(&config.resource)) {
            return refused(AuthError::WrongAudience(config.resource.clone()));
        }
        let Some(subject) = answer.sub.filter(|s| !s.is_empty()) else {
            return refused(AuthError::Invalid("introspection names no subject".into()));
        };
        let scopes = scopes_of(answer.scope.map(Scopes::Spaced), None);
        Ok(Grant::new(subject, scopes, answer.exp.map(at))
            .with_ids(answer.jti, answer.client_id)
            .with_grace(config.leeway))
    }

    /// The scopes `method` with `params` needs beyond the required ones: a
    /// tool's, a prompt's, a resource's (read, subscribed, listened to),
    /// or those of what a completion completes.
    pub fn scopes_for(&self, method: Method, params: Option<&Map<String, Value>>) -> Vec<&str> {
        fn one(scope: Option<&String>) -> Vec<&str> {
            scope.map(String::as_str).into_iter().collect()
        }
        let scopes = &self.inner.config.scopes;
        let at = |path: &[&str]| {
            let mut value = params?.get(path[0])?;
            for key in &path[1..] {
                value = value.get(key)?;
            }
            Some(value)
        };
        let text = |path: &[&str]| at(path).and_then(Value::as_str);
        match method {
            Method::ToolsCall => one(text(&["name"]).and_then(|n| scopes.tools.get(n))),
            Method::PromptsGet => one(text(&["name"]).and_then(|n| scopes.prompts.get(n))),
            Method::ResourcesRead | Method::ResourcesSubscribe | Method::ResourcesUnsubscribe => {
                text(&["uri"])
                    .and_then(|u| self.resource_scope(u))
                    .into_iter()
                    .collect()
            }
            Method::CompletionComplete => match text(&["ref", "type"]) {
                Some("ref/prompt") => {
                    one(text(&["ref", "name"]).and_then(|n| scopes.prompts.get(n)))
                }
                Some("ref/resource") => text(&["ref", "uri"])
                    .and_then(|u| self.template_scope(u).or_else(|| self.resource_scope(u)))
                    .into_iter()
                    .collect(),
                _ => Vec::new(),
            },
            Method::SubscriptionsListen => at(&["notifications", "resourceSubscriptions"])
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter_map(|u| self.resource_scope(u))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The scope a resource needs, by its URI or a template matching it;
    /// the URI compared in its normal form (`FILE:///%73ecret` is
    /// `file:///secret`), as the handlers find resources.
    pub fn resource_scope(&self, uri: &str) -> Option<&str> {
        let normal = crate::uri::ResourceUri::parse(uri).ok()?;
        if let Some(scope) = self.inner.resources.get(normal.as_str()) {
            return Some(scope);
        }
        self.inner
            .templates
            .iter()
            .find(|(template, _)| matches!(template.match_uri(normal.as_str()), Ok(Some(_))))
            .map(|(_, scope)| scope.as_str())
    }

    /// The scope of a URI template, by its text.
    fn template_scope(&self, template: &str) -> Option<&str> {
        self.inner
            .templates
            .iter()
            .find(|(t, _)| t.as_str() == template)
            .map(|(_, scope)| scope.as_str())
    }

    /// Whether `grant` may make a request of `method` with `params`.
    ///
    /// # Errors
    /// [`Denied::InsufficientScope`] naming the first scope it lacks.
    pub fn permits(
        &self,
        grant: &Grant,
        method: Method,
        params: Option<&Map<String, Value>>,
    ) -> Result<(), Denied> {
        let required = self.inner.config.required_scopes.iter().map(String::as_str);
        for scope in required.chain(self.scopes_for(method, params)) {
            if !grant.allows(scope) {
                metrics::counter!("arbor_auth_refused_total", "reason" => "insufficient_scope")
                    .increment(1);
                return Err(Denied::InsufficientScope(scope.to_string()));
            }
        }
        Ok(())
    }

    /// Whether a listed item (a tool, resource, resource template or
    /// prompt definition) is within `grant`'s scopes.
    pub fn shows(&self, grant: &Grant, kind: crate::ListKind, definition: &Value) -> bool {
        let scopes = &self.inner.config.scopes;
        let field = |key: &str| definition.get(key).and_then(Value::as_str).unwrap_or("");
        let needed = match kind {
            crate::ListKind::Tools => scopes.tools.get(field("name")).map(String::as_str),
            crate::ListKind::Prompts => scopes.prompts.get(field("name")).map(String::as_str),
            // A resource as a read of it is checked, a template by its own
            // text.
            crate::ListKind::Resources => match definition.get("uri") {
                Some(_) => self.resource_scope(field("uri")),
                None => self.template_scope(field("uriTemplate")),
            },
        };
        needed.is_none_or(|scope| grant.allows(scope))
    }

    /// The required scopes, space-separated (a challenge's `scope`).
    pub fn required_scope_list(&self) -> String {
        self.inner.config.required_scopes.join(" ")
    }

    /// What to ask for to step up to `scope`: the required ones and it.
    pub fn step_up_scopes(&self, scope: &str) -> String {
        let mut all = self.inner.config.required_scopes.clone();
        if !all.iter().any(|s| s == scope) {
            all.push(scope.to_string());
        }
        all.join(" ")
    }

    /// The Protected Resource Metadata document (RFC 9728).
    pub fn metadata(&self) -> Value {
        let config = &self.inner.config;
        json!({
            "resource": config.resource,
            "authorization_servers": config.authorization_servers,
            "scopes_supported": config.supported_scopes(),
            "bearer_methods_supported": ["header"],
        })
    }

    /// Where the metadata is served for this resource: the well-known
    /// path with the resource's own path after it (RFC 9728 §3.1), as
    /// `http://host:port/.well-known/oauth-protected-resource/mcp`.
    pub fn metadata_url(&self) -> String {
        let resource = &self.inner.config.resource;
        // scheme://authority, then the path.
        let after_scheme = resource.find("://").map_or(0, |i| i + 3);
        let (origin, path) = match resource[after_scheme..].find('/') {
            Some(i) => resource.split_at(after_scheme + i),
            None => (resource.as_str(), ""),
        };
        let path = path.split(['?', '#']).next().unwrap_or("");
        format!("{origin}{METADATA_PATH}{}", path.trim_end_matches('/'))
    }

    /// The answer to [`AUTHENTICATE`].
    pub fn describe(grant: &Grant) -> Value {
        json!({
            "subject": grant.subject(),
            "scopes": grant.scopes(),
            "expiresAt": grant.expires().map(|at| at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())),
        })
    }
}

fn scopes_of(scope: Option<Scopes>, scp: Option<Scopes>) -> Vec<String> {
    scope
        .into_iter()
        .chain(scp)
        .flat_map(Scopes::into_vec)
        .collect()
}

/// `secs` after the epoch, clamped where `SystemTime` ends.
fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .unwrap_or(UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) * 64))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `application/x-www-form-urlencoded` for a token (RFC 6749 tokens are
/// printable ASCII; anything else is escaped).
fn form_escape(token: &str) -> String {
    token
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        let mut config = AuthConfig::new("https://mcp.test/mcp", "https://issuer.test");
        config.jwks = Some(JwksSource::Url("http://127.0.0.1:9/jwks".into()));
        config
            .scopes
            .resources
            .insert("file:///secret".into(), "files".into());
        config
            .scopes
            .resources
            .insert("notes://{id}".into(), "notes".into());
        config.scopes.prompts.insert("draft".into(), "write".into());
        Authenticator::new(config).unwrap()
    }

    fn params(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_resource_scope_holds_however_its_uri_is_spelled_and_wherever_it_is_named() {
        let auth = auth();
        for spelled in [
            "file:///secret",
            "FILE:///secret",
            "file:///%73ecret",
            "file:///./secret",
        ] {
            assert_eq!(auth.resource_scope(spelled), Some("files"), "{spelled}");
        }
        let read = params(json!({"uri": "FILE:///secret"}));
        assert_eq!(
            auth.scopes_for(Method::ResourcesRead, Some(&read)),
            ["files"]
        );
        let complete = params(json!({"ref": {"type": "ref/prompt", "name": "draft"}}));
        assert_eq!(
            auth.scopes_for(Method::CompletionComplete, Some(&complete)),
            ["write"]
        );
        let complete = params(json!({"ref": {"type": "ref/resource", "uri": "notes://{id}"}}));
        assert_eq!(
            auth.scopes_for(Method::CompletionComplete, Some(&complete)),
            ["notes"]
        );
        let listen = params(
            json!({"notifications": {"resourceSubscriptions": ["file:///secret", "notes://7"]}}),
        );
        assert_eq!(
            auth.scopes_for(Method::SubscriptionsListen, Some(&listen)),
            ["files", "notes"]
        );
        let grant = Grant::new("alice", [], None);
        let listed = json!({"uri": "notes://7", "name": "n"});
        assert!(!auth.shows(&grant, crate::ListKind::Resources, &listed));
        assert!(auth
            .permits(&grant, Method::SubscriptionsListen, Some(&listen))
            .is_err());
    }
}
