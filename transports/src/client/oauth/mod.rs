//! An OAuth 2.1 client for MCP's authorization spec: what a Streamable HTTP
//! connection does when the server answers 401 or 403.
//!
//! On a challenge it finds the protected resource's metadata (RFC 9728: the
//! challenge's `resource_metadata`, else the well-known paths; none at all
//! means a 2025-03-26 server whose origin is its authorization server),
//! checks that the metadata names this server, finds the authorization
//! server's metadata (RFC 8414, OpenID Connect fallbacks) and checks its
//! `issuer`, gets a client id (pre-registered for that issuer, a client ID
//! metadata document, or dynamic registration; kept per issuer, so that a
//! moved resource never shows one server's credentials to another), and
//! runs the authorization-code flow with PKCE (S256), `state`, the `iss`
//! check of RFC 9207 and the resource indicator of RFC 8707. Scopes come
//! from the challenge, else the resource's `scopes_supported`; a step-up
//! keeps what was asked before; `offline_access` is asked when the server
//! offers it, and a refresh token is used before a new authorization. One
//! authorization or refresh runs at a time: requests that meet a 401
//! together wait for the one under way and retry with its token. After
//! [`OAuthConfig::max_attempts`] authorizations in a row that did not
//! satisfy the server, requests fail instead of looping.

mod challenge;
mod discovery;
mod jws;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arbor_mcp::client::BoxFuture;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use parking_lot::RwLock;
use rand::RngCore as _;
use reqwest::Url;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

pub(crate) use challenge::Challenge;
use discovery::{ResourceMetadata, ServerMetadata};
use jws::Key;
use reqwest::header::{HeaderName, HeaderValue};

/// How the user authorizes: given the authorization URL, return the
/// redirect URL the authorization server sent the browser to.
pub trait Authorizer: Send + Sync + 'static {
    /// Authorizes at `url`; the callback URL, with `code`, `state`, `iss`.
    fn authorize(&self, url: Url) -> BoxFuture<'_, Result<Url, String>>;
}

/// An authorization server that redirects at once (no person in the loop:
/// tests, pre-approved clients): the redirect is read, not followed.
#[derive(Clone, Debug, Default)]
pub struct HeadlessAuthorizer {
    http: reqwest::Client,
}

impl HeadlessAuthorizer {
    /// A headless authorizer.
    pub fn new() -> Self {
        HeadlessAuthorizer {
            http: no_redirects(),
        }
    }
}

impl Authorizer for HeadlessAuthorizer {
    fn authorize(&self, url: Url) -> BoxFuture<'_, Result<Url, String>> {
        Box::pin(async move {
            let response = self
                .http
                .get(url.clone())
                .send()
                .await
                .map_err(|e| format!("GET {url}: {e}"))?;
            let location = response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| {
                    format!("{url} answered {} without a redirect", response.status())
                })?;
            url.join(location)
                .map_err(|e| format!("redirect {location:?}: {e}"))
        })
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// A client registered ahead of time with one authorization server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The issuer they belong to; `None`: any.
    pub issuer: Option<String>,
    /// The client id.
    pub client_id: String,
    /// The secret of a confidential client.
    pub client_secret: Option<String>,
}

/// How tokens are obtained.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Grant {
    /// The authorization-code flow with PKCE, through the [`Authorizer`].
    #[default]
    AuthorizationCode,
    /// `client_credentials` with the pre-registered secret (HTTP Basic).
    ClientCredentials,
    /// `client_credentials` with a signed assertion (`private_key_jwt`,
    /// ES256) instead of a secret.
    ClientCredentialsJwt {
        /// The client's P-256 key, PKCS#8 PEM.
        private_key_pem: String,
    },
    /// A JWT assertion (RFC 7523) from the workload's identity provider.
    JwtBearer {
        /// The assertion, as issued.
        assertion: String,
    },
    /// Enterprise-managed: the identity provider's ID token exchanged for an
    /// ID-JAG (RFC 8693), presented as a JWT assertion.
    TokenExchange {
        /// The identity provider's token endpoint.
        idp_token_endpoint: String,
        /// The client id at the identity provider.
        idp_client_id: String,
        /// The user's ID token.
        id_token: String,
    },
}

/// What the OAuth client is configured with.
#[derive(Clone)]
pub struct OAuthConfig {
    /// Where the authorization server sends the browser back.
    pub redirect_uri: String,
    /// The name registered with the authorization server.
    pub client_name: String,
    /// A client ID metadata document URL, used where the authorization
    /// server accepts them instead of registering.
    pub client_metadata_url: Option<String>,
    /// Pre-registered clients.
    pub credentials: Vec<Credentials>,
    /// How tokens are obtained.
    pub grant: Grant,
    /// Authorizations in a row that do not satisfy the server before
    /// requests fail. Default: 3.
    pub max_attempts: u32,
    /// How the user authorizes.
    pub authorizer: Arc<dyn Authorizer>,
}

impl std::fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("redirect_uri", &self.redirect_uri)
            .field("client_name", &self.client_name)
            .field("grant", &self.grant)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            redirect_uri: "http://127.0.0.1:33418/callback".into(),
            client_name: "arbor".into(),
            client_metadata_url: None,
            credentials: Vec::new(),
            grant: Grant::AuthorizationCode,
            max_attempts: 3,
            authorizer: Arc::new(HeadlessAuthorizer::new()),
        }
    }
}

/// How a client authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuthMethod {
    None,
    Basic,
    Post,
}

impl AuthMethod {
    fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::Basic => "client_secret_basic",
            AuthMethod::Post => "client_secret_post",
        }
    }

    fn parse(name: &str) -> Option<AuthMethod> {
        [AuthMethod::None, AuthMethod::Basic, AuthMethod::Post]
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

/// A client id at one authorization server.
#[derive(Clone, Debug)]
struct Client {
    id: String,
    secret: Option<String>,
    method: AuthMethod,
}

/// Tokens from one authorization server.
#[derive(Clone, Debug)]
struct Tokens {
    access: String,
    refresh: Option<String>,
    issuer: String,
    token_endpoint: String,
    /// Bound to the client's DPoP key (RFC 9449) rather than a bearer token.
    dpop: bool,
}

#[derive(Default)]
struct State {
    tokens: Option<Tokens>,
    /// Client ids by issuer.
    clients: HashMap<String, Client>,
    /// Every scope asked for so far (a step-up keeps them).
    scopes: BTreeSet<String>,
    /// Authorizations since a request last succeeded.
    attempts: u32,
}

/// The OAuth client of one or more connections to one MCP server.
pub struct OAuth {
    config: OAuthConfig,
    http: reqwest::Client,
    /// The token requests carry, read without waiting, and whether it is
    /// DPoP-bound.
    token: RwLock<Option<(String, bool)>>,
    /// The key DPoP proofs are signed with.
    dpop_key: Key,
    /// The last `DPoP-Nonce` of the authorization server and of the
    /// resource server.
    nonces: RwLock<(Option<String>, Option<String>)>,
    /// Held for the whole of an authorization or refresh: one at a time.
    state: tokio::sync::Mutex<State>,
}

impl std::fmt::Debug for OAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth")
            .field("config", &self.config)
            .field("has_token", &self.token.read().is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default = "bearer")]
    token_type: String,
    #[serde(default)]
    refresh_token: Option<String>,
}

fn bearer() -> String {
    "Bearer".into()
}

#[derive(Deserialize)]
struct Registration {
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn form_encoded(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// What authorization needs to know of the resource and its server.
struct Discovered {
    resource: Option<ResourceMetadata>,
    issuer: String,
    metadata: Option<ServerMetadata>,
    /// The server's origin, for a 2025-03-26 server with no metadata.
    origin: Url,
}

impl Discovered {
    fn endpoint(
        &self,
        pick: impl Fn(&ServerMetadata) -> Option<String>,
        fallback: &str,
    ) -> Result<Url, String> {
        let named = self.metadata.as_ref().and_then(pick);
        let url = match named {
            Some(url) => Url::parse(&url),
            None if self.metadata.is_none() => self.origin.join(fallback),
            None => {
                return Err(format!(
                    "the authorization server offers no {fallback} endpoint"
                ))
            }
        };
        url.map_err(|e| format!("{fallback}: {e}"))
    }

    /// Whether the authorization server takes ES256 DPoP proofs.
    fn offers_dpop(&self) -> bool {
        self.metadata
            .as_ref()
            .and_then(|m| m.dpop_signing_alg_values_supported.as_ref())
            .is_some_and(|algs| algs.iter().any(|a| a == "ES256"))
    }

    fn resource_indicator(&self) -> Option<&str> {
        self.resource.as_ref().map(|r| r.resource.as_str())
    }
}

impl OAuth {
    /// An OAuth client with `config`.
    pub fn new(config: OAuthConfig) -> Arc<OAuth> {
        Arc::new(OAuth {
            config,
            http: no_redirects(),
            token: RwLock::new(None),
            dpop_key: Key::generate(),
            nonces: RwLock::new((None, None)),
            state: tokio::sync::Mutex::new(State::default()),
        })
    }

    /// The access token to send, if there is one.
    pub fn access_token(&self) -> Option<String> {
        self.token.read().as_ref().map(|(token, _)| token.clone())
    }

    /// The headers that present the token on a `method` request to `url`:
    /// `Authorization: Bearer`, or `Authorization: DPoP` with a fresh proof.
    pub(crate) fn authorization(&self, method: &str, url: &Url) -> Vec<(HeaderName, HeaderValue)> {
        let Some((token, dpop)) = self.token.read().clone() else {
            return Vec::new();
        };
        let scheme = if dpop { "DPoP" } else { "Bearer" };
        let mut headers = Vec::new();
        if let Ok(value) = HeaderValue::from_str(&format!("{scheme} {token}")) {
            headers.push((reqwest::header::AUTHORIZATION, value));
        }
        if dpop {
            let nonce = self.nonces.read().1.clone();
            let proof = self
                .dpop_key
                .dpop_proof(method, url, Some(&token), nonce.as_deref());
            if let Ok(value) = HeaderValue::from_str(&proof) {
                headers.push((HeaderName::from_static("dpop"), value));
            }
        }
        headers
    }

    /// A request with the current token was accepted.
    pub(crate) fn accepted(&self) {
        if let Ok(mut state) = self.state.try_lock() {
            state.attempts = 0;
        }
    }

    /// The server refused a request that carried `used` with `challenge`:
    /// gets a token that may satisfy it (or finds that another request
    /// already did). `Err` says why the request should fail.
    pub(crate) async fn challenged(
        &self,
        server: &Url,
        used: Option<&str>,
        challenge: Challenge,
        nonce: Option<String>,
    ) -> Result<(), String> {
        if challenge.error.as_deref() == Some("use_dpop_nonce") {
            let mut nonces = self.nonces.write();
            if nonce.is_some() && nonces.1 != nonce {
                nonces.1 = nonce;
                return Ok(()); // the same token, proven with the server's nonce
            }
        }
        let mut state = self.state.lock().await;
        if self.access_token().as_deref() != used {
            return Ok(()); // another request got a newer token meanwhile
        }
        if state.attempts >= self.config.max_attempts {
            return Err(format!(
                "gave up after {} authorizations the server did not accept",
                state.attempts
            ));
        }
        state.attempts += 1;
        let found = self.discover(server, &challenge).await?;
        if challenge.error.as_deref() != Some("insufficient_scope") {
            if let Some(tokens) = state.tokens.clone().filter(|t| t.issuer == found.issuer) {
                if let Some(refresh) = &tokens.refresh {
                    match self.refresh(&mut state, &found, &tokens, refresh).await {
                        Ok(()) => return Ok(()),
                        Err(why) => tracing::info!(%why, "refresh refused: authorizing again"),
                    }
                }
            }
        }
        let tokens = self.obtain(&mut state, &found, &challenge).await?;
        *self.token.write() = Some((tokens.access.clone(), tokens.dpop));
        state.tokens = Some(tokens);
        Ok(())
    }

    async fn discover(&self, server: &Url, challenge: &Challenge) -> Result<Discovered, String> {
        let mut origin = server.clone();
        origin.set_path("/");
        origin.set_query(None);
        let resource = discovery::resource_metadata(
            &self.http,
            server,
            challenge.resource_metadata.as_deref(),
        )
        .await;
        if let Some(resource) = &resource {
            if !discovery::names(&resource.resource, server) {
                return Err(format!(
                    "the protected-resource metadata is for {:?}, not {server}",
                    resource.resource
                ));
            }
        }
        let issuer = match &resource {
            Some(r) => r
                .authorization_servers
                .first()
                .cloned()
                .ok_or("the protected-resource metadata names no authorization server")?,
            // 2025-03-26: the server's origin is its authorization server.
            None => origin.as_str().trim_end_matches('/').to_string(),
        };
        let metadata = discovery::server_metadata(&self.http, &issuer).await?;
        if metadata.is_none() && resource.is_some() {
            return Err(format!("no authorization-server metadata for {issuer}"));
        }
        Ok(Discovered {
            resource,
            issuer,
            metadata,
            origin,
        })
    }

    /// The scopes to ask for now.
    fn scopes(
        &self,
        state: &mut State,
        found: &Discovered,
        challenge: &Challenge,
    ) -> Option<String> {
        let asked: Vec<String> = match (
            &challenge.scope,
            found
                .resource
                .as_ref()
                .and_then(|r| r.scopes_supported.as_ref()),
        ) {
            (Some(scope), _) => scope.split_whitespace().map(str::to_string).collect(),
            (None, Some(supported)) => supported.clone(),
            (None, None) => Vec::new(),
        };
        if challenge.error.as_deref() != Some("insufficient_scope") {
            state.scopes.clear();
        }
        state.scopes.extend(asked);
        let offers_offline = found
            .metadata
            .as_ref()
            .and_then(|m| m.scopes_supported.as_ref())
            .is_some_and(|s| s.iter().any(|s| s == "offline_access"));
        if offers_offline && !state.scopes.is_empty() {
            state.scopes.insert("offline_access".into());
        }
        (!state.scopes.is_empty())
            .then(|| state.scopes.iter().cloned().collect::<Vec<_>>().join(" "))
    }

    /// A client id at `found`'s issuer: kept, pre-registered, a metadata
    /// document, or registered now.
    async fn client(&self, state: &mut State, found: &Discovered) -> Result<Client, String> {
        if let Some(client) = state.clients.get(&found.issuer) {
            return Ok(client.clone());
        }
        let supported = found
            .metadata
            .as_ref()
            .and_then(|m| m.token_endpoint_auth_methods_supported.clone());
        let client = if let Some(creds) = self.config.credentials.iter().find(|c| {
            c.issuer
                .as_ref()
                .is_none_or(|i| i.trim_end_matches('/') == found.issuer.trim_end_matches('/'))
        }) {
            let method = match &creds.client_secret {
                None => AuthMethod::None,
                Some(_) => match &supported {
                    Some(s)
                        if !s.iter().any(|m| m == "client_secret_basic")
                            && s.iter().any(|m| m == "client_secret_post") =>
                    {
                        AuthMethod::Post
                    }
                    _ => AuthMethod::Basic,
                },
            };
            Client {
                id: creds.client_id.clone(),
                secret: creds.client_secret.clone(),
                method,
            }
        } else if let (Some(url), true) = (
            &self.config.client_metadata_url,
            found
                .metadata
                .as_ref()
                .is_some_and(|m| m.client_id_metadata_document_supported),
        ) {
            Client {
                id: url.clone(),
                secret: None,
                method: AuthMethod::None,
            }
        } else {
            self.register(found, supported.as_deref()).await?
        };
        state.clients.insert(found.issuer.clone(), client.clone());
        Ok(client)
    }

    /// Dynamic client registration (RFC 7591).
    async fn register(
        &self,
        found: &Discovered,
        supported: Option<&[String]>,
    ) -> Result<Client, String> {
        let endpoint = found.endpoint(|m| m.registration_endpoint.clone(), "/register")?;
        let method = supported
            .and_then(|s| s.iter().find_map(|m| AuthMethod::parse(m)))
            .unwrap_or(AuthMethod::Basic);
        let body = json!({
            "client_name": self.config.client_name,
            "redirect_uris": [self.config.redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": method.as_str(),
            "application_type": "native",
        });
        let response = self
            .http
            .post(endpoint.clone())
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("registering at {endpoint}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("registration at {endpoint}: {}", response.status()));
        }
        let registered: Registration = response
            .json()
            .await
            .map_err(|e| format!("registration answer: {e}"))?;
        let method = registered
            .token_endpoint_auth_method
            .as_deref()
            .and_then(AuthMethod::parse)
            .unwrap_or(method);
        Ok(Client {
            id: registered.client_id,
            secret: registered.client_secret,
            method,
        })
    }

    /// New tokens, by the configured grant.
    async fn obtain(
        &self,
        state: &mut State,
        found: &Discovered,
        challenge: &Challenge,
    ) -> Result<Tokens, String> {
        let token_endpoint = found.endpoint(|m| Some(m.token_endpoint.clone()), "/token")?;
        let scope = self.scopes(state, found, challenge);
        let mut form: Vec<(&str, String)> = Vec::new();
        let client = match &self.config.grant {
            Grant::AuthorizationCode => {
                let client = self.client(state, found).await?;
                let (code, verifier) = self
                    .authorization_code(found, &client, scope.as_deref())
                    .await?;
                form.push(("grant_type", "authorization_code".into()));
                form.push(("code", code));
                form.push(("redirect_uri", self.config.redirect_uri.clone()));
                form.push(("code_verifier", verifier));
                Some(client)
            }
            Grant::ClientCredentials => {
                form.push(("grant_type", "client_credentials".into()));
                scope.iter().for_each(|s| form.push(("scope", s.clone())));
                Some(self.client(state, found).await?)
            }
            Grant::ClientCredentialsJwt { private_key_pem } => {
                let key = Key::from_pem(private_key_pem)?;
                let client_id = self
                    .config
                    .credentials
                    .first()
                    .map(|c| c.client_id.clone())
                    .ok_or("a client assertion needs the client's id in the credentials")?;
                let audience = found
                    .metadata
                    .as_ref()
                    .map_or(found.issuer.clone(), |m| m.issuer.clone());
                form.push(("grant_type", "client_credentials".into()));
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push((
                    "client_assertion",
                    key.client_assertion(&client_id, &audience),
                ));
                scope.iter().for_each(|s| form.push(("scope", s.clone())));
                Some(Client {
                    id: client_id,
                    secret: None,
                    method: AuthMethod::None,
                })
            }
            Grant::JwtBearer { assertion } => {
                form.push((
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
                ));
                form.push(("assertion", assertion.clone()));
                scope.iter().for_each(|s| form.push(("scope", s.clone())));
                self.config.credentials.first().map(|c| Client {
                    id: c.client_id.clone(),
                    secret: None,
                    method: AuthMethod::None,
                })
            }
            Grant::TokenExchange {
                idp_token_endpoint,
                idp_client_id,
                id_token,
            } => {
                let grant = self
                    .exchange_id_token(found, idp_token_endpoint, idp_client_id, id_token)
                    .await?;
                form.push((
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
                ));
                form.push(("assertion", grant));
                Some(self.client(state, found).await?)
            }
        };
        if let Some(resource) = found.resource_indicator() {
            form.push(("resource", resource.to_string()));
        }
        let dpop = found.offers_dpop();
        let answer = self
            .token_request(&token_endpoint, client.as_ref(), form, dpop)
            .await?;
        Ok(Tokens {
            dpop: answer.token_type.eq_ignore_ascii_case("dpop"),
            access: answer.access_token,
            refresh: answer.refresh_token,
            issuer: found.issuer.clone(),
            token_endpoint: token_endpoint.to_string(),
        })
    }

    /// The authorization-code flow's front half: PKCE, the user's consent,
    /// the callback checked (`state`, `iss`). The code and its verifier.
    async fn authorization_code(
        &self,
        found: &Discovered,
        client: &Client,
        scope: Option<&str>,
    ) -> Result<(String, String), String> {
        let mut url = found.endpoint(|m| m.authorization_endpoint.clone(), "/authorize")?;
        let verifier = random_token();
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let state = random_token();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &client.id)
                .append_pair("redirect_uri", &self.config.redirect_uri)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("state", &state);
            if let Some(scope) = scope {
                query.append_pair("scope", scope);
            }
            if let Some(resource) = found.resource_indicator() {
                query.append_pair("resource", resource);
            }
        }
        let callback = self.config.authorizer.authorize(url).await?;
        let param = |name: &str| {
            callback
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if let Some(error) = param("error") {
            return Err(format!("authorization refused: {error}"));
        }
        if param("state").as_deref() != Some(state.as_str()) {
            return Err("the callback's state is not the one sent".into());
        }
        // RFC 9207: an advertised `iss` must come, and any `iss` must be the
        // issuer exactly (no normalisation).
        let advertised = found
            .metadata
            .as_ref()
            .is_some_and(|m| m.authorization_response_iss_parameter_supported);
        let expected = found.metadata.as_ref().map(|m| m.issuer.as_str());
        match (param("iss"), advertised) {
            (Some(iss), _) if Some(iss.as_str()) != expected => {
                return Err(format!(
                    "the callback's iss {iss:?} is not the issuer {expected:?}"
                ));
            }
            (None, true) => {
                return Err("the authorization server promised iss and sent none".into())
            }
            _ => {}
        }
        let code = param("code").ok_or("the callback carries no code")?;
        Ok((code, verifier))
    }

    async fn refresh(
        &self,
        state: &mut State,
        found: &Discovered,
        tokens: &Tokens,
        refresh: &str,
    ) -> Result<(), String> {
        let client = self.client(state, found).await?;
        let endpoint = Url::parse(&tokens.token_endpoint).map_err(|e| e.to_string())?;
        let mut form = vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", refresh.to_string()),
        ];
        if let Some(resource) = found.resource_indicator() {
            form.push(("resource", resource.to_string()));
        }
        let answer = self
            .token_request(&endpoint, Some(&client), form, tokens.dpop)
            .await?;
        let renewed = Tokens {
            access: answer.access_token,
            refresh: answer.refresh_token.or_else(|| tokens.refresh.clone()),
            ..tokens.clone()
        };
        *self.token.write() = Some((renewed.access.clone(), renewed.dpop));
        state.tokens = Some(renewed);
        Ok(())
    }

    /// RFC 8693 at the identity provider: the ID token for an ID-JAG.
    async fn exchange_id_token(
        &self,
        found: &Discovered,
        endpoint: &str,
        client_id: &str,
        id_token: &str,
    ) -> Result<String, String> {
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange".to_string(),
            ),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:id-jag".to_string(),
            ),
            ("audience", found.issuer.clone()),
            ("subject_token", id_token.to_string()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token".to_string(),
            ),
            ("client_id", client_id.to_string()),
        ];
        if let Some(resource) = found.resource_indicator() {
            form.push(("resource", resource.to_string()));
        }
        let endpoint = Url::parse(endpoint).map_err(|e| format!("{endpoint}: {e}"))?;
        Ok(self
            .token_request(&endpoint, None, form, false)
            .await?
            .access_token)
    }

    /// A token request; with `dpop`, proven with the client's key, and sent
    /// once more with the server's nonce if it asks for one.
    async fn token_request(
        &self,
        endpoint: &Url,
        client: Option<&Client>,
        form: Vec<(&str, String)>,
        dpop: bool,
    ) -> Result<TokenResponse, String> {
        let first = self
            .token_request_once(endpoint, client, form.clone(), dpop)
            .await;
        match first {
            Err(TokenRefusal::UseNonce(nonce)) if dpop => {
                self.nonces.write().0 = Some(nonce);
                self.token_request_once(endpoint, client, form, dpop)
                    .await
                    .map_err(TokenRefusal::into_message)
            }
            other => other.map_err(TokenRefusal::into_message),
        }
    }

    async fn token_request_once(
        &self,
        endpoint: &Url,
        client: Option<&Client>,
        mut form: Vec<(&str, String)>,
        dpop: bool,
    ) -> Result<TokenResponse, TokenRefusal> {
        let mut request = self.http.post(endpoint.clone());
        if dpop {
            let nonce = self.nonces.read().0.clone();
            let proof = self
                .dpop_key
                .dpop_proof("POST", endpoint, None, nonce.as_deref());
            request = request.header("dpop", proof);
        }
        if let Some(client) = client {
            match (client.method, &client.secret) {
                (AuthMethod::Basic, Some(secret)) => {
                    let pair = format!("{}:{}", form_encoded(&client.id), form_encoded(secret));
                    request =
                        request.header("authorization", format!("Basic {}", STANDARD.encode(pair)));
                }
                (AuthMethod::Post, Some(secret)) => {
                    form.push(("client_id", client.id.clone()));
                    form.push(("client_secret", secret.clone()));
                }
                _ => form.push(("client_id", client.id.clone())),
            }
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| TokenRefusal::Other(format!("token request to {endpoint}: {e}")))?;
        let status = response.status();
        let nonce = response
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(match (body["error"].as_str(), nonce) {
                (Some("use_dpop_nonce"), Some(nonce)) => TokenRefusal::UseNonce(nonce),
                _ => TokenRefusal::Other(format!("token request to {endpoint}: {status} {body}")),
            });
        }
        serde_json::from_value(body).map_err(|e| TokenRefusal::Other(format!("token answer: {e}")))
    }
}

/// Why a token request failed.
enum TokenRefusal {
    /// The server wants a DPoP proof with this nonce.
    UseNonce(String),
    Other(String),
}

impl TokenRefusal {
    fn into_message(self) -> String {
        match self {
            TokenRefusal::UseNonce(nonce) => {
                format!("the server asks for DPoP nonce {nonce:?} again")
            }
            TokenRefusal::Other(message) => message,
        }
    }
}
