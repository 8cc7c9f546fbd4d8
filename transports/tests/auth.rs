//! OAuth 2.1 resource server end to end, with a local issuer whose keys are
//! made here: the metadata and the 401 challenge; valid, expired, not yet
//! valid, wrong-audience, wrong-issuer and foreign-key tokens; scopes that
//! filter lists and ask for step-up (403); a session bound to its subject
//! and carried on by a rotated token; revocation and expiry closing open
//! streams on HTTP, TCP and WebSocket; tasks their creator's alone.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod http_support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbor_mcp::auth::{AuthConfig, JwksSource};
use arbor_mcp::server::ServerConfig;
use arbor_mcp::{CallToolResult, McpServer, ServerBuilder, Tool};
use arbor_transports::{start, TransportConfig};
use futures_util::{SinkExt, StreamExt};
use http_support::{
    exchange, initialize_request, modern_request, open, post_headers, Line, READ_TIMEOUT,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const RESOURCE: &str = "https://mcp.test/mcp";
const ISSUER: &str = "https://issuer.test";

/// A local authorization server: an ES256 key made for this test, its JWKS
/// on disk.
struct Issuer {
    key: EncodingKey,
    kid: String,
    jwk: Value,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A fresh directory for one test's files.
fn scratch() -> PathBuf {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("arbor-auth-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Issuer {
    fn new(kid: &str) -> Issuer {
        let secret = loop {
            if let Ok(key) = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
                break key;
            }
        };
        let pem = secret.to_pkcs8_pem(Default::default()).unwrap();
        let key = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
        let mut jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!("ES256");
        jwk["use"] = json!("sig");
        Issuer {
            key,
            kid: kid.to_string(),
            jwk,
        }
    }

    /// Writes the JWKS of `issuers` into `dir`.
    fn jwks(dir: &std::path::Path, issuers: &[&Issuer]) -> PathBuf {
        let path = dir.join("jwks.json");
        let keys: Vec<&Value> = issuers.iter().map(|i| &i.jwk).collect();
        std::fs::write(&path, json!({ "keys": keys }).to_string()).unwrap();
        path
    }

    /// A token with `claims` over the defaults (this issuer, this resource,
    /// an hour, scope `mcp`, a fresh `jti`).
    fn token(&self, sub: &str, claims: Value) -> String {
        let mut all = json!({
            "iss": ISSUER, "aud": RESOURCE, "sub": sub, "scope": "mcp",
            "iat": now(), "exp": now() + 3600,
            "jti": format!("jti-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
        });
        for (k, v) in claims.as_object().unwrap() {
            all[k] = v.clone();
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &all, &self.key).unwrap()
    }
}

/// The `jti` of a token this test made.
fn jti(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["jti"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `echo` (says who called), `admin` (needs scope `admin`), a resource
/// needing `files`; every request needs `mcp`. No leeway, a revocation
/// list checked every 100 ms.
fn server(jwks: PathBuf, revocations: Option<PathBuf>) -> McpServer {
    builder(auth_config(jwks, revocations)).build().unwrap()
}

fn auth_config(jwks: PathBuf, revocations: Option<PathBuf>) -> AuthConfig {
    let mut auth = AuthConfig::new(RESOURCE, ISSUER);
    auth.jwks = Some(JwksSource::File(jwks));
    auth.required_scopes = vec!["mcp".into()];
    auth.scopes.tools.insert("admin".into(), "admin".into());
    auth.scopes
        .resources
        .insert("file:///secret".into(), "files".into());
    auth.leeway = Duration::ZERO;
    auth.revocation_file = revocations;
    auth.revocation_reload = Duration::from_millis(100);
    auth
}

fn builder(auth: AuthConfig) -> ServerBuilder {
    ServerBuilder::new("auth-test", "1")
        .config(ServerConfig {
            auth: Some(auth),
            ..Default::default()
        })
        .tool(Tool::new("echo"), |(), ctx| async move {
            let who = ctx.grant().map(|g| g.subject().to_string());
            Ok(CallToolResult::text(who.unwrap_or_default()))
        })
        .tool(Tool::new("admin"), |(), _ctx| async move {
            Ok(CallToolResult::text("done"))
        })
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A 2026-07-28 request with `token`, read whole.
async fn modern(
    addr: SocketAddr,
    token: Option<&str>,
    method: &str,
    params: Value,
) -> http_support::Reply {
    let mut body = modern_request(json!(1), method, params.clone());
    // A `_meta` of the caller's adds to the era's.
    if let Some(Value::Object(extra)) = params.get("_meta") {
        for (k, v) in extra {
            body["params"]["_meta"][k] = v.clone();
        }
    }
    let auth = token.map(bearer);
    let mut headers = post_headers(&[
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", method),
    ]);
    // `Mcp-Name` names the tool, or the task a `tasks/*` follows.
    let name = (params["name"].as_str())
        .or(params["taskId"].as_str())
        .map(str::to_string);
    if let Some(name) = &name {
        headers.push(("Mcp-Name", name));
    }
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    exchange(addr, "POST", "/mcp", &headers, body.to_string().as_bytes()).await
}

fn reason(reply: &http_support::Reply) -> String {
    reply.json()["error"]["data"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metadata_names_the_issuer_and_a_request_without_a_token_is_challenged() {
    let dir = scratch();
    let issuer = Issuer::new("k1");
    let (tree, endpoints) = start(
        server(Issuer::jwks(&dir, &[&issuer]), None),
        TransportConfig::default(),
    )
    .await
    .unwrap();
    let http = endpoints.http.unwrap();
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let meta = exchange(http, "GET", path, &[], b"").await;
        assert_eq!(meta.status(), 200, "{path}");
        let doc = meta.json();
        assert_eq!(doc["resource"], RESOURCE);
        assert_eq!(doc["authorization_servers"], json!([ISSUER]));
        assert_eq!(doc["scopes_supported"], json!(["admin", "files", "mcp"]));
    }
    let refused = modern(http, None, "tools/list", json!({})).await;
    assert_eq!(refused.status(), 401);
    let challenge = refused.head.get("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains(
                "resource_metadata=\"https://mcp.test/.well-known/oauth-protected-resource/mcp\""
            )
            && challenge.contains("scope=\"mcp\""),
        "{challenge}"
    );
    assert_eq!(refused.json()["error"]["code"], -32034);
    assert_eq!(reason(&refused), "missing_token");
    // The handshake era and the legacy transport are guarded the same way.
    let init = exchange(
        http,
        "POST",
        "/mcp",
        &post_headers(&[]),
        initialize_request("2025-11-25").to_string().as_bytes(),
    )
    .await;
    assert_eq!(init.status(), 401);
    let sse = exchange(http, "GET", "/sse", &[("Accept", "text/event-stream")], b"").await;
    assert_eq!(sse.status(), 401);
    // A valid token is served.
    let token = issuer.token("alice", json!({}));
    let ok = modern(http, Some(&token), "tools/call", json!({"name": "echo"})).await;
    assert_eq!(ok.status(), 200, "{:?}", ok.json());
    assert_eq!(ok.json()["result"]["content"][0]["text"], "alice");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_with_their_reason() {
    let dir = scratch();
    let issuer = Issuer::new("k1");
    let stranger = Issuer::new("k2");
    let (tree, endpoints) = start(
        server(Issuer::jwks(&dir, &[&issuer]), None),
        TransportConfig::default(),
    )
    .await
    .unwrap();
    let http = endpoints.http.unwrap();
    let cases = [
        (
            issuer.token("alice", json!({"exp": now() - 5})),
            "token_expired",
        ),
        (
            issuer.token("alice", json!({"nbf": now() + 600})),
            "token_not_yet_valid",
        ),
        (
            issuer.token("alice", json!({"aud": "https://other.test/mcp"})),
            "wrong_audience",
        ),
        (
            issuer.token("alice", json!({"iss": "https://evil.test"})),
            "wrong_issuer",
        ),
        (stranger.token("alice", json!({})), "invalid_token"),
        ("not-a-jwt".to_string(), "malformed_token"),
    ];
    for (token, expected) in cases {
        let refused = modern(http, Some(&token), "tools/list", json!({})).await;
        assert_eq!(refused.status(), 401, "{expected}: {:?}", refused.json());
        assert_eq!(reason(&refused), expected, "{:?}", refused.json());
        let challenge = refused.head.get("www-authenticate").unwrap();
        assert!(challenge.contains("error=\"invalid"), "{challenge}");
    }
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_filter_lists_and_a_missing_scope_asks_for_step_up() {
    let dir = scratch();
    let issuer = Issuer::new("k1");
    let (tree, endpoints) = start(
        server(Issuer::jwks(&dir, &[&issuer]), None),
        TransportConfig::default(),
    )
    .await
    .unwrap();
    let http = endpoints.http.unwrap();
    let names = |reply: &http_support::Reply| -> Vec<String> {
        reply.json()["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let plain = issuer.token("alice", json!({}));
    let listed = modern(http, Some(&plain), "tools/list", json!({})).await;
    assert_eq!(
        names(&listed),
        ["echo"],
        "admin is not listed without its scope"
    );
    let refused = modern(http, Some(&plain), "tools/call", json!({"name": "admin"})).await;
    assert_eq!(refused.status(), 403);
    let challenge = refused.head.get("www-authenticate").unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"mcp admin\"")
            && challenge.contains("resource_metadata="),
        "{challenge}"
    );
    assert_eq!(refused.json()["error"]["code"], -32035);
    assert_eq!(refused.json()["error"]["data"]["scope"], "mcp admin");
    // Stepped up: listed and served.
    let admin = issuer.token("alice", json!({"scope": "mcp admin"}));
    assert_eq!(
        names(&modern(http, Some(&admin), "tools/list", json!({})).await),
        ["echo", "admin"]
    );
    let done = modern(http, Some(&admin), "tools/call", json!({"name": "admin"})).await;
    assert_eq!(done.json()["result"]["content"][0]["text"], "done");
    // Without the scope every request needs, nothing is served.
    let bare = issuer.token("alice", json!({"scope": "admin"}));
    let refused = modern(http, Some(&bare), "tools/list", json!({})).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.json()["error"]["data"]["scope"], "mcp");
    tree.shutdown().await;
}

/// A handshake-era session opened with `token`: its id.
async fn initialize(http: SocketAddr, token: &str) -> String {
    let auth = bearer(token);
    let (head, conn) = open(
        http,
        "POST",
        "/mcp",
        &post_headers(&[("Authorization", &auth)]),
        initialize_request("2025-11-25").to_string().as_bytes(),
    )
    .await;
    assert_eq!(head.status, 200, "{head:?}");
    let id = head.get("mcp-session-id").unwrap().to_string();
    conn.sse(&head).rest().await;
    let ready = in_session(
        http,
        &id,
        token,
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(ready.status(), 202);
    id
}

async fn in_session(http: SocketAddr, id: &str, token: &str, body: &Value) -> http_support::Reply {
    let auth = bearer(token);
    let headers = post_headers(&[
        ("Mcp-Session-Id", id),
        ("MCP-Protocol-Version", "2025-11-25"),
        ("Authorization", &auth),
    ]);
    exchange(http, "POST", "/mcp", &headers, body.to_string().as_bytes()).await
}

fn echo_call(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "echo", "arguments": {}}})
}

/// The JSON-RPC answer in a reply, whether JSON or an SSE stream.
fn answer(reply: &http_support::Reply) -> Value {
    if reply.head.is_sse() {
        let text = String::from_utf8_lossy(&reply.body).to_string();
        let data = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .find(|d| d.contains("\"result\"") || d.contains("\"error\""))
            .unwrap();
        serde_json::from_str(data).unwrap()
    } else {
        reply.json()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_bound_to_its_subject_and_carried_on_by_a_rotated_token() {
    let dir = scratch();
    let issuer = Issuer::new("k1");
    let (tree, endpoints) = start(
        server(Issuer::jwks(&dir, &[&issuer]), None),
        TransportConfig::default(),
    )
    .await
    .unwrap();
    let http = endpoints.http.unwrap();
    let first = issuer.token("alice", json!({}));
    let id = initialize(http, &first).await;
    // Another subject's valid token: refused on alice's session.
    let bob = issuer.token("bob", json!({}));
    let refused = in_session(http, &id, &bob, &echo_call(1)).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(reason(&refused), "other_subject");
    let get = exchange(
        http,
        "GET",
        "/mcp",
        &[
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", &id),
            ("MCP-Protocol-Version", "2025-11-25"),
            ("Authorization", &bearer(&bob)),
        ],
        b"",
    )
    .await;
    assert_eq!(get.status(), 403, "nor may bob open its stream");
    // Alice's next token (rotated: another jti, later expiry) carries on.
    let rotated = issuer.token("alice", json!({"exp": now() + 7200}));
    assert_ne!(jti(&first), jti(&rotated));
    let served = in_session(http, &id, &rotated, &echo_call(2)).await;
    assert_eq!(served.status(), 200);
    assert_eq!(answer(&served)["result"]["content"][0]["text"], "alice");
    tree.shutdown().await;
}

/// Whether the stream stays open for `wait` (events or not).
async fn still_open(stream: &mut http_support::Sse, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match stream.try_block(left).await {
            Err(()) => return true,
            Ok(Some(_)) => continue,
            Ok(None) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_and_expiry_close_open_http_streams() {
    let dir = scratch();
    let issuer = Issuer::new("k1");
    let revoked = dir.join("revoked.txt");
    std::fs::write(&revoked, "# nothing yet\n").unwrap();
    let (tree, endpoints) = start(
        server(Issuer::jwks(&dir, &[&issuer]), Some(revoked.clone())),
        TransportConfig::default(),
    )
    .await
    .unwrap();
    let http = endpoints.http.unwrap();
    let get_stream = |id: String, token: String| async move {
        let (head, conn) = open(
            http,
            "GET",
            "/mcp",
            &[
                ("Accept", "text/event-stream"),
                ("Mcp-Session-Id", &id),
                ("MCP-Protocol-Version", "2025-11-25"),
                ("Authorization", &bearer(&token)),
            ],
            b"",
        )
        .await;
        assert_eq!(head.status, 200, "{head:?}");
        conn.sse(&head)
    };
    // Revoked while its stream is open: the stream ends within seconds.
    let token = issuer.token("alice", json!({}));
    let id = initialize(http, &token).await;
    let mut stream = get_stream(id.clone(), token.clone()).await;
    assert!(still_open(&mut stream, Duration::from_millis(300)).await);
    std::fs::write(&revoked, format!("jti:{}\n", jti(&token))).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(3), stream.rest()).await;
    assert!(ended.is_ok(), "the revoked token's stream was not closed");
    let refused = in_session(http, &id, &token, &echo_call(1)).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(reason(&refused), "token_revoked");
    // A fresh token of the same subject carries the session on.
    let fresh = issuer.token("alice", json!({"exp": now() + 2}));
    let served = in_session(http, &id, &fresh, &echo_call(2)).await;
    assert_eq!(answer(&served)["result"]["content"][0]["text"], "alice");
    // Expiring while its stream is open: the stream ends at the expiry.
    let mut stream = get_stream(id.clone(), fresh.clone()).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), stream.rest()).await;
    assert!(ended.is_ok(), "the expired token's stream was not closed");
    let refused = in_session(http, &id, &fresh, &echo_call(3)).await;
    assert_eq!(reason(&refused), "token_expired");
    // Revoking a subject reaches every token it holds.
    let other = issuer.token("carol", json!({}));
    std::fs::write(&revoked, "sub:carol\n").unwrap();
    http_support::eventually(Duration::from_secs(3), "carol revoked", || {
        let other = other.clone();
        async move {
            let r = modern(http, Some(&other), "tools/list", json!({})).await;
            r.status() == 401
        }
    })
    .await;
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_connection_authenticates_first_and_is_closed_when_its_token_expires() {
    let dir = scratch();
    let issuer = Issuer::new("k1");
    let (tree, endpoints) = start(
        server(Issuer::jwks(&dir, &[&issuer]), None),
        TransportConfig::default(),
    )
    .await
    .unwrap();
    let mut line = Line::connect(endpoints.tcp.unwrap()).await;
    let list = modern_request(json!(1), "tools/list", json!({}));
    line.send(&list).await;
    let refused = line.recv().await.unwrap();
    assert_eq!(refused["error"]["code"], -32034, "{refused}");
    assert_eq!(refused["error"]["data"]["reason"], "missing_token");
    // A bad token is refused, the connection kept.
    let bad = json!({"jsonrpc": "2.0", "id": 2, "method": "io.arbor/authenticate",
        "params": {"token": issuer.token("alice", json!({"aud": "https://other.test/mcp"}))}});
    line.send(&bad).await;
    let refused = line.recv().await.unwrap();
    assert_eq!(refused["error"]["data"]["reason"], "wrong_audience");
    let token = issuer.token("alice", json!({"exp": now() + 2}));
    let good = json!({"jsonrpc": "2.0", "id": 3, "method": "io.arbor/authenticate",
        "params": {"token": token}});
    line.send(&good).await;
    let accepted = line.recv().await.unwrap();
    assert_eq!(accepted["result"]["subject"], "alice", "{accepted}");
    let call = modern_request(json!(4), "tools/call", json!({"name": "echo"}));
    line.send(&call).await;
    let served = line.recv().await.unwrap();
    assert_eq!(served["result"]["content"][0]["text"], "alice");
    // Another subject cannot take the connection over.
    let bob = json!({"jsonrpc": "2.0", "id": 5, "method": "io.arbor/authenticate",
        "params": {"token": issuer.token("bob", json!({}))}});
    line.send(&bob).await;
    let refused = line.recv().await.unwrap();
    assert_eq!(refused["error"]["data"]["reason"], "other_subject");
    // At the expiry: told why, then closed.
    let said = line.recv().await.expect("the reason before the close");
    assert_eq!(said["method"], "notifications/io.arbor/access_ended");
    assert_eq!(said["params"]["reason"], "token_expired");
    assert!(line.recv().await.is_none(), "closed");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_carries_its_upgrade_token_and_closes_with_1008_when_revoked() {
    let dir = scratch();
    let issuer = Issuer::new("k1");
    let revoked = dir.join("revoked.txt");
    std::fs::write(&revoked, "").unwrap();
    let (tree, endpoints) = start(
        server(Issuer::jwks(&dir, &[&issuer]), Some(revoked.clone())),
        TransportConfig::default(),
    )
    .await
    .unwrap();
    let ws = endpoints.ws.unwrap();
    let upgrade = |token: Option<String>| {
        let mut request = format!("ws://{ws}/mcp").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "mcp".parse().unwrap());
        if let Some(token) = token {
            request
                .headers_mut()
                .insert("Authorization", bearer(&token).parse().unwrap());
        }
        tokio_tungstenite::connect_async(request)
    };
    // A refused token is a 401 on the upgrade, with the challenge.
    let stranger = Issuer::new("k2");
    match upgrade(Some(stranger.token("alice", json!({})))).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401);
            let challenge = response.headers()["www-authenticate"].to_str().unwrap();
            assert!(challenge.contains("resource_metadata="), "{challenge}");
        }
        other => panic!("expected a 401, got {other:?}"),
    }
    let token = issuer.token("alice", json!({}));
    let (mut socket, _) = upgrade(Some(token.clone())).await.unwrap();
    let call = modern_request(json!(1), "tools/call", json!({"name": "echo"}));
    socket
        .send(tokio_tungstenite::tungstenite::Message::text(
            call.to_string(),
        ))
        .await
        .unwrap();
    let served = tokio::time::timeout(READ_TIMEOUT, socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let served: Value = serde_json::from_str(served.to_text().unwrap()).unwrap();
    assert_eq!(served["result"]["content"][0]["text"], "alice");
    std::fs::write(&revoked, format!("jti:{}\n", jti(&token))).unwrap();
    let mut close = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, socket.next()).await {
        if let tokio_tungstenite::tungstenite::Message::Close(frame) = message {
            close = frame;
            break;
        }
    }
    let close = close.expect("a close frame after the revocation");
    assert_eq!(u16::from(close.code), 1008);
    assert!(close.reason.contains("token_revoked"), "{}", close.reason);
    tree.shutdown().await;
}

/// An authorization server on loopback: its metadata, its key set (which
/// the test may change) and token introspection for opaque tokens.
struct LiveIssuer {
    url: String,
    keys: std::sync::Arc<parking_lot::Mutex<Value>>,
    fetches: std::sync::Arc<AtomicU64>,
    serving: tokio::task::JoinHandle<()>,
}

impl LiveIssuer {
    async fn start(opaque: Vec<(&'static str, Value)>) -> LiveIssuer {
        use axum::routing::{get, post};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let keys = std::sync::Arc::new(parking_lot::Mutex::new(json!({"keys": []})));
        let fetches = std::sync::Arc::new(AtomicU64::new(0));
        let metadata = json!({"issuer": url, "jwks_uri": format!("{url}/jwks"),
            "introspection_endpoint": format!("{url}/introspect")});
        let opaque: std::collections::HashMap<String, Value> = opaque
            .into_iter()
            .map(|(t, v)| (t.to_string(), v))
            .collect();
        let (k, f) = (keys.clone(), fetches.clone());
        let app = axum::Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(move || async move { as_json(&metadata) }),
            )
            .route(
                "/jwks",
                get(move || async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    as_json(&k.lock())
                }),
            )
            .route(
                "/introspect",
                post(
                    move |headers: axum::http::HeaderMap, body: String| async move {
                        // This resource server's credentials: rs / s3cret.
                        let basic = headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default();
                        if basic != "Basic cnM6czNjcmV0" {
                            return (axum::http::StatusCode::UNAUTHORIZED, as_json(&json!({})));
                        }
                        let token = body.strip_prefix("token=").unwrap_or_default();
                        let answer = opaque
                            .get(token)
                            .cloned()
                            .unwrap_or(json!({"active": false}));
                        (axum::http::StatusCode::OK, as_json(&answer))
                    },
                ),
            );
        let serving = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        LiveIssuer {
            url,
            keys,
            fetches,
            serving,
        }
    }
}

fn as_json(value: &Value) -> ([(&'static str, &'static str); 1], String) {
    ([("content-type", "application/json")], value.to_string())
}

/// A token signed by `issuer` but naming `iss`.
fn token_from(issuer: &Issuer, iss: &str, sub: &str) -> String {
    issuer.token(sub, json!({"iss": iss}))
}

fn live_server(auth: AuthConfig) -> McpServer {
    ServerBuilder::new("auth-live", "1")
        .config(ServerConfig {
            auth: Some(auth),
            ..Default::default()
        })
        .tool(Tool::new("echo"), |(), ctx| async move {
            let who = ctx.grant().map(|g| g.subject().to_string());
            Ok(CallToolResult::text(who.unwrap_or_default()))
        })
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_come_from_the_issuers_metadata_and_an_unknown_kid_fetches_them_again() {
    let live = LiveIssuer::start(Vec::new()).await;
    let first = Issuer::new("k1");
    *live.keys.lock() = json!({"keys": [first.jwk]});
    let mut auth = AuthConfig::new(RESOURCE, live.url.clone());
    auth.required_scopes = vec!["mcp".into()];
    auth.jwks_refresh = Duration::from_millis(200);
    let (tree, endpoints) = start(live_server(auth), TransportConfig::default())
        .await
        .unwrap();
    let http = endpoints.http.unwrap();
    let call = json!({"name": "echo"});
    let served = modern(
        http,
        Some(&token_from(&first, &live.url, "alice")),
        "tools/call",
        call.clone(),
    )
    .await;
    assert_eq!(
        served.json()["result"]["content"][0]["text"],
        "alice",
        "{:?}",
        served.json()
    );
    assert_eq!(live.fetches.load(Ordering::SeqCst), 1);
    // Kept: a second token costs no fetch.
    modern(
        http,
        Some(&token_from(&first, &live.url, "alice")),
        "tools/call",
        call.clone(),
    )
    .await;
    assert_eq!(
        live.fetches.load(Ordering::SeqCst),
        1,
        "the key set is cached"
    );
    // The issuer rotates its key: a token naming the new kid fetches again.
    let second = Issuer::new("k2");
    *live.keys.lock() = json!({"keys": [first.jwk, second.jwk]});
    tokio::time::sleep(Duration::from_millis(250)).await;
    let served = modern(
        http,
        Some(&token_from(&second, &live.url, "bob")),
        "tools/call",
        call.clone(),
    )
    .await;
    assert_eq!(
        served.json()["result"]["content"][0]["text"],
        "bob",
        "{:?}",
        served.json()
    );
    assert_eq!(live.fetches.load(Ordering::SeqCst), 2);
    // A kid the issuer does not have: refused, and no fetch storm.
    let stranger = Issuer::new("k9");
    for _ in 0..5 {
        let refused = modern(
            http,
            Some(&token_from(&stranger, &live.url, "eve")),
            "tools/list",
            json!({}),
        )
        .await;
        assert_eq!(reason(&refused), "invalid_token");
    }
    assert!(
        live.fetches.load(Ordering::SeqCst) <= 3,
        "fetched at most once per jwks_refresh"
    );
    tree.shutdown().await;
    live.serving.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_tokens_are_introspected() {
    let resource = RESOURCE;
    let live = LiveIssuer::start(vec![
        ("opaque-alice", json!({"active": true, "sub": "alice", "scope": "mcp", "aud": resource, "exp": now() + 600})),
        ("opaque-other", json!({"active": true, "sub": "alice", "scope": "mcp", "aud": "https://other.test/mcp"})),
        ("opaque-noscope", json!({"active": true, "sub": "alice", "aud": [resource]})),
    ])
    .await;
    let mut auth = AuthConfig::new(RESOURCE, live.url.clone());
    auth.required_scopes = vec!["mcp".into()];
    auth.introspection = Some(arbor_mcp::auth::IntrospectionConfig {
        url: format!("{}/introspect", live.url),
        client_id: "rs".into(),
        client_secret: "s3cret".into(),
    });
    let (tree, endpoints) = start(live_server(auth), TransportConfig::default())
        .await
        .unwrap();
    let http = endpoints.http.unwrap();
    let served = modern(
        http,
        Some("opaque-alice"),
        "tools/call",
        json!({"name": "echo"}),
    )
    .await;
    assert_eq!(
        served.json()["result"]["content"][0]["text"],
        "alice",
        "{:?}",
        served.json()
    );
    let refused = modern(http, Some("opaque-other"), "tools/list", json!({})).await;
    assert_eq!(reason(&refused), "wrong_audience");
    let refused = modern(http, Some("opaque-unknown"), "tools/list", json!({})).await;
    assert_eq!(reason(&refused), "token_revoked", "inactive");
    let refused = modern(http, Some("opaque-noscope"), "tools/list", json!({})).await;
    assert_eq!(refused.status(), 403);
    tree.shutdown().await;
    live.serving.abort();
}

/// The tasks extension declared in a 2026-07-28 request's `_meta`.
fn with_tasks(mut params: Value) -> Value {
    params["_meta"]["io.modelcontextprotocol/clientCapabilities"] =
        json!({"extensions": {"io.modelcontextprotocol/tasks": {}}});
    params
}

/// `job` runs as a task for 300 ms and needs the scope `jobs`.
fn task_server(jwks: PathBuf) -> McpServer {
    let mut auth = auth_config(jwks, None);
    auth.scopes.tools.insert("job".into(), "jobs".into());
    builder(auth)
        .tool(
            Tool::new("job").task_support(arbor_mcp::tasks::TaskSupport::Optional),
            |(), ctx| async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let who = ctx.grant().map(|g| g.subject().to_string());
                Ok(CallToolResult::text(who.unwrap_or_default()))
            },
        )
        .build()
        .unwrap()
}

/// A JSON-RPC request of id 9 in a handshake-era session.
fn rpc(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 9, "method": method, "params": params})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_is_its_creators_alone() {
    let dir = scratch();
    let issuer = Issuer::new("k1");
    let (tree, endpoints) = start(
        task_server(Issuer::jwks(&dir, &[&issuer])),
        TransportConfig::default(),
    )
    .await
    .unwrap();
    let http = endpoints.http.unwrap();
    let alice = issuer.token("alice", json!({"scope": "mcp jobs"}));
    let bob = issuer.token("bob", json!({"scope": "mcp jobs"}));

    // 2026-07-28: the call becomes a task of alice's.
    let job = with_tasks(json!({"name": "job", "arguments": {}}));
    let created = modern(http, Some(&alice), "tools/call", job).await.json();
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    let task = created["result"]["taskId"].as_str().unwrap().to_string();
    let of_task = || with_tasks(json!({"taskId": task}));
    // To bob it is as if it did not exist: no get, no cancel, no update.
    let missing = modern(
        http,
        Some(&bob),
        "tasks/get",
        with_tasks(json!({"taskId": "f00"})),
    )
    .await
    .json();
    assert_eq!(missing["error"]["code"], -32602, "{missing}");
    for method in ["tasks/get", "tasks/cancel"] {
        let refused = modern(http, Some(&bob), method, of_task()).await.json();
        assert_eq!(refused["error"]["code"], -32602, "{method}: {refused}");
        assert_eq!(
            refused["error"]["message"],
            format!("unknown task: {task}"),
            "{method}"
        );
    }
    let mut update = of_task();
    update["inputResponses"] = json!({"x": {"action": "accept"}});
    let refused = modern(http, Some(&bob), "tasks/update", update)
        .await
        .json();
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    // Alice with a token that lost the tool's scope: told what to step up to.
    let narrowed = issuer.token("alice", json!({}));
    let refused = modern(http, Some(&narrowed), "tasks/get", of_task())
        .await
        .json();
    assert_eq!(refused["error"]["code"], -32035, "{refused}");
    assert_eq!(refused["error"]["data"]["scope"], "mcp jobs");
    // Her own token follows it to its end: bob's cancel did nothing.
    let mut done = Value::Null;
    for _ in 0..100 {
        done = modern(http, Some(&alice), "tasks/get", of_task())
            .await
            .json();
        if done["result"]["status"] != "working" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(done["result"]["status"], "completed", "{done}");
    assert_eq!(done["result"]["result"]["content"][0]["text"], "alice");

    // 2025-11-25: a task made in alice's session is unknown in bob's.
    let (mine, theirs) = (initialize(http, &alice).await, initialize(http, &bob).await);
    let call = rpc(
        "tools/call",
        json!({"name": "job", "arguments": {}, "task": {}}),
    );
    let created = answer(&in_session(http, &mine, &alice, &call).await);
    let legacy = created["result"]["task"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_string();
    for method in ["tasks/get", "tasks/result", "tasks/cancel"] {
        let asked = rpc(method, json!({"taskId": legacy}));
        let refused = answer(&in_session(http, &theirs, &bob, &asked).await);
        assert_eq!(
            refused["error"]["message"],
            format!("unknown task: {legacy}"),
            "{method}: {refused}"
        );
    }
    let listed = answer(&in_session(http, &mine, &alice, &rpc("tasks/list", json!({}))).await);
    assert_eq!(listed["result"]["tasks"][0]["taskId"], legacy.as_str());
    let result = rpc("tasks/result", json!({"taskId": legacy}));
    let done = answer(&in_session(http, &mine, &alice, &result).await);
    assert_eq!(done["result"]["content"][0]["text"], "alice", "{done}");
    tree.shutdown().await;
}
