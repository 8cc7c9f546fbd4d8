//! The opening handshake (RFC 6455 §4.2), read and answered here rather
//! than by tungstenite, which closes the socket without a word on a request
//! that is no valid upgrade. Every refusal is an HTTP answer saying why:
//!
//! | request | answer |
//! |---|---|
//! | past the connection limit, or under resource pressure | 503 |
//! | `Host` or `Origin` not allowed ([`OriginPolicy`]) | 403 |
//! | another path than [`PATH`] | 404 |
//! | another method than GET | 405, `Allow: GET` |
//! | no `Upgrade: websocket` / `Connection: upgrade` (a plain GET) | 426, `Upgrade: websocket` |
//! | `Sec-WebSocket-Version` other than 13 | 426, `Sec-WebSocket-Version: 13` |
//! | HTTP/1.0, no `Host`, a missing or malformed `Sec-WebSocket-Key`, malformed HTTP | 400 |
//! | subprotocols offered, `mcp` not among them | 400 |
//! | a head over `max_header_bytes` or `max_headers` | 431 |
//! | an `Authorization` token not accepted, when the server checks tokens | 401, `WWW-Authenticate` |

use std::sync::Arc;

use crate::tls::Accepted;
use arbor_mcp::auth::{Authenticator, Grant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::handshake::server::Request;
use tokio_tungstenite::tungstenite::http::{self, header, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use super::{Ws, PATH, SUBPROTOCOL};
use crate::head::Parsed;
use crate::listen::TurnedAway;
use crate::origin::OriginPolicy;

/// What the handshake reads and allows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// The largest request head, in bytes.
    pub(crate) max_header_bytes: usize,
    /// The most headers in it.
    pub(crate) max_headers: usize,
}

/// Why a handshake ended without a connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failed {
    /// Refused with this status, said to the client.
    #[error("refused with {0}")]
    Refused(StatusCode),
    /// The client went away or the socket failed.
    #[error("connection lost: {0}")]
    Gone(std::io::Error),
}

/// A refusal: the status, a plain-text reason, and headers that go with it.
struct Refusal {
    status: StatusCode,
    reason: String,
    headers: Vec<(&'static str, String)>,
}

impl Refusal {
    fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Refusal {
            status,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn to_bytes(&self) -> Vec<u8> {
        let body = format!("{}\n", self.reason);
        let mut head = format!(
            "HTTP/1.1 {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n",
            self.status,
            body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(&body);
        head.into_bytes()
    }
}

/// Reads the client's upgrade request, answers it, and on success hands
/// back the WebSocket (with whatever the client sent after its head).
/// `turned_away` says why it is refused before its request is read, if it
/// is.
pub(crate) async fn accept(
    mut stream: Accepted,
    turned_away: Option<TurnedAway>,
    origins: &OriginPolicy,
    limits: Limits,
    config: WebSocketConfig,
    auth: Option<&Authenticator>,
) -> Result<(Ws, Option<Arc<Grant>>), Failed> {
    let decided = match read_request(&mut stream, limits).await? {
        Ok((request, rest)) => match decide(&request, turned_away, origins) {
            Ok(head) => authorized(&request, auth)
                .await
                .map(|grant| (head, rest, grant)),
            Err(refusal) => Err(refusal),
        },
        Err(refusal) => Err(refusal),
    };
    match decided {
        Ok((head, rest, grant)) => {
            stream.write_all(&head).await.map_err(Failed::Gone)?;
            let ws = WebSocketStream::from_partially_read(stream, rest, Role::Server, Some(config))
                .await;
            Ok((ws, grant))
        }
        Err(refusal) => {
            let _ = stream.write_all(&refusal.to_bytes()).await;
            let _ = stream.shutdown().await;
            Err(Failed::Refused(refusal.status))
        }
    }
}

/// The upgrade request's bearer token, when the server checks tokens: a
/// bad one is a 401 with the challenge; none leaves the connection to send
/// [`arbor_mcp::auth::AUTHENTICATE`] first.
async fn authorized(
    request: &Request,
    auth: Option<&Authenticator>,
) -> Result<Option<Arc<Grant>>, Refusal> {
    let Some(auth) = auth else { return Ok(None) };
    let Some(header) = request.headers().get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    match auth.authenticate_header(header.to_str().ok()).await {
        Ok(grant) => Ok(Some(grant)),
        Err(error) => {
            let status = match error {
                arbor_mcp::auth::AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            };
            let challenge = format!(
                "Bearer resource_metadata=\"{}\", error=\"invalid_token\"",
                auth.metadata_url()
            );
            Err(Refusal::new(status, error.to_string()).with("www-authenticate", challenge))
        }
    }
}

/// Reads the request head, within the limits: the request and what came
/// after its head, or the refusal for a head that cannot be taken.
async fn read_request(
    stream: &mut Accepted,
    limits: Limits,
) -> Result<Result<(Request, Vec<u8>), Refusal>, Failed> {
    let too_large = || {
        Refusal::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "request head over max_header_bytes ({}) or max_headers ({})",
                limits.max_header_bytes, limits.max_headers
            ),
        )
    };
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(Failed::Gone)?;
        if n == 0 {
            return Err(Failed::Gone(std::io::ErrorKind::UnexpectedEof.into()));
        }
        buf.extend_from_slice(&chunk[..n]);
        match crate::head::parse(
            &buf,
            limits.max_headers,
            limits.max_header_bytes,
            to_request,
        ) {
            Parsed::Complete(request, len) => {
                let rest = buf[len..].to_vec();
                return Ok(request.map(|request| (request, rest)));
            }
            Parsed::Partial => {}
            Parsed::TooLarge => return Ok(Err(too_large())),
            Parsed::Malformed(e) => {
                return Ok(Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    format!("malformed HTTP request: {e}"),
                )))
            }
        }
    }
}

fn to_request(parsed: &httparse::Request<'_, '_>) -> Result<Request, Refusal> {
    let malformed = |what: &str| Refusal::new(StatusCode::BAD_REQUEST, format!("malformed {what}"));
    let version = match parsed.version {
        Some(1) => http::Version::HTTP_11,
        _ => http::Version::HTTP_10,
    };
    let mut builder = http::Request::builder()
        .method(parsed.method.unwrap_or_default())
        .uri(parsed.path.unwrap_or_default())
        .version(version);
    for h in parsed.headers.iter() {
        let value = HeaderValue::from_bytes(h.value).map_err(|_| malformed("header value"))?;
        builder = builder.header(h.name, value);
    }
    builder.body(()).map_err(|_| malformed("request line"))
}

/// The answer to a well-formed request: the head of the 101, or why not.
fn decide(
    request: &Request,
    turned_away: Option<TurnedAway>,
    origins: &OriginPolicy,
) -> Result<Vec<u8>, Refusal> {
    match turned_away {
        Some(TurnedAway::Full(max)) => {
            return Err(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("server at its connection limit (max_connections = {max})"),
            ));
        }
        Some(TurnedAway::Overloaded(overloaded)) => {
            return Err(
                Refusal::new(StatusCode::SERVICE_UNAVAILABLE, format!("{overloaded}"))
                    .with("retry-after", overloaded.retry_after_secs().to_string()),
            );
        }
        Some(TurnedAway::RateLimited(limited)) => {
            return Err(
                Refusal::new(StatusCode::TOO_MANY_REQUESTS, format!("{limited}"))
                    .with("retry-after", limited.retry_after_secs().to_string()),
            );
        }
        Some(TurnedAway::Isolated(isolation)) => {
            let refusal = Refusal::new(StatusCode::SERVICE_UNAVAILABLE, isolation.to_string());
            return Err(match arbor_mcp::cascade::retry_after_secs(&isolation) {
                Some(secs) => refusal.with("retry-after", secs.to_string()),
                None => refusal,
            });
        }
        None => {}
    }
    if !request.headers().contains_key(header::HOST) {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "a WebSocket upgrade needs a Host header",
        ));
    }
    // As every HTTP listener: a page's script may open a WebSocket to
    // loopback (no CORS stands in the way), so Host and Origin decide.
    if let Err(refused) = origins.check(request.headers()) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            format!("{}: {}", refused.message(), refused.data()),
        ));
    }
    if request.uri().path() != PATH {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            format!("no WebSocket endpoint here: MCP is served at {PATH}"),
        ));
    }
    if request.method() != http::Method::GET {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "a WebSocket upgrade is a GET",
        )
        .with("allow", "GET"));
    }
    if request.version() < http::Version::HTTP_11 {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "a WebSocket upgrade needs HTTP/1.1",
        ));
    }
    let has = |name: header::HeaderName, token: &str| {
        request.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return Err(Refusal::new(
            StatusCode::UPGRADE_REQUIRED,
            format!("this is a WebSocket endpoint: send an upgrade (Upgrade: websocket, Connection: Upgrade); Streamable HTTP is served on the HTTP port at {PATH}"),
        )
        .with("upgrade", "websocket")
        .with("sec-websocket-version", "13"));
    }
    if request
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v != "13")
    {
        return Err(Refusal::new(
            StatusCode::UPGRADE_REQUIRED,
            "unsupported Sec-WebSocket-Version: this server speaks 13",
        )
        .with("sec-websocket-version", "13"));
    }
    // The header may come several times, each a comma-separated list.
    let mut offered = false;
    let mut mcp = false;
    for value in request.headers().get_all(header::SEC_WEBSOCKET_PROTOCOL) {
        offered = true;
        if let Ok(list) = value.to_str() {
            mcp |= list.split(',').any(|p| p.trim() == SUBPROTOCOL);
        }
    }
    if offered && !mcp {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("unsupported WebSocket subprotocol: this server speaks `{SUBPROTOCOL}`"),
        ));
    }
    // The key must be 16 bytes in base64 (§4.1); the accept value is its
    // SHA-1 with the protocol's GUID, which tungstenite computes.
    let key = request
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|key| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(key.as_bytes())
                .is_ok_and(|k| k.len() == 16)
        })
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "Sec-WebSocket-Key is missing or is not 16 bytes in base64",
            )
        })?;
    let mut head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {}\r\n",
        derive_accept_key(key.as_bytes())
    );
    if mcp {
        head.push_str(&format!("sec-websocket-protocol: {SUBPROTOCOL}\r\n"));
    }
    head.push_str("\r\n");
    Ok(head.into_bytes())
}
