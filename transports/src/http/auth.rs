//! OAuth 2.1 on HTTP ([`arbor_mcp::auth`]): the Protected Resource Metadata
//! (RFC 9728), the bearer token on every request to an MCP route (401 with
//! a `WWW-Authenticate` challenge naming the metadata), the scope a request
//! needs (403 `insufficient_scope`, for step-up), sessions bound to their
//! subject (403), and streams that end with the token that opened them.

use arbor_mcp::auth::{AuthError, Authenticator, Denied, Grant, METADATA_PATH};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::*;

/// The grant of the request's token, put on it by [`authenticate`]; `None`
/// when the server checks no tokens.
#[derive(Clone, Debug)]
pub(super) struct Granted(pub(super) Option<Arc<Grant>>);

impl<S: Send + Sync> FromRequestParts<S> for Granted {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Granted(parts.extensions.get::<Arc<Grant>>().cloned()))
    }
}

/// `GET /.well-known/oauth-protected-resource[/…]`: the metadata, or 404
/// when the server checks no tokens.
pub(super) async fn metadata(State(http): State<Http>) -> Response {
    match http.server.auth() {
        Some(auth) => json_response(StatusCode::OK, auth.metadata().to_string()),
        None => refuse(
            StatusCode::NOT_FOUND,
            "Not Found: this server checks no tokens",
            json!({ "path": METADATA_PATH }),
        ),
    }
}

/// The middleware over the MCP routes: a request without a valid token is
/// a 401; one with a token carries its [`Grant`] on, and a stream it opens
/// ends when the grant does.
pub(super) async fn authenticate(
    State(http): State<Http>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(auth) = http.server.auth() else {
        return next.run(request).await;
    };
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let grant = match auth.authenticate_header(header).await {
        Ok(grant) => grant,
        Err(error) => return unauthorized(auth, &error),
    };
    request.extensions_mut().insert(grant.clone());
    let response = next.run(request).await;
    until_access_ends(response, grant)
}

/// 401 with the challenge (RFC 6750 §3, RFC 9728 §5.1).
pub(crate) fn unauthorized(auth: &Authenticator, error: &AuthError) -> Response {
    let status = match error {
        AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNAUTHORIZED,
    };
    let denied = Denied::Unauthenticated(error.clone());
    let mut response = rpc_error(status, None, denied.error(auth, Some(&metadata_of(auth))));
    if status == StatusCode::UNAUTHORIZED {
        let mut challenge = format!("Bearer resource_metadata=\"{}\"", metadata_of(auth));
        let scope = auth.required_scope_list();
        if !scope.is_empty() {
            challenge.push_str(&format!(", scope=\"{scope}\""));
        }
        if let Some(code) = error.oauth_error() {
            challenge.push_str(&format!(
                ", error=\"{code}\", error_description=\"{}\"",
                quoted(&error.to_string())
            ));
        }
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
    }
    response
}

/// 403 for a request its grant does not permit: with the step-up
/// challenge for a missing scope.
pub(super) fn forbidden(auth: &Authenticator, denied: &Denied, id: Option<Id>) -> Response {
    let mut response = rpc_error(
        StatusCode::FORBIDDEN,
        id,
        denied.error(auth, Some(&metadata_of(auth))),
    );
    if let Denied::InsufficientScope(scope) = denied {
        let challenge = format!(
            "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{}\", error_description=\"{}\"",
            auth.step_up_scopes(scope),
            metadata_of(auth),
            quoted(&denied.to_string()),
        );
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
    }
    response
}

fn metadata_of(auth: &Authenticator) -> String {
    auth.metadata_url()
}

/// Text for a quoted-string: no quotes or backslashes.
fn quoted(text: &str) -> String {
    text.replace(['"', '\\'], "'")
}

/// A single request's scope, checked before it reaches a session, so that
/// a refusal is a 403 with the step-up challenge (a batch's requests are
/// refused one by one by their session): the refusal, if refused.
pub(super) fn scope_refusal(http: &Http, grant: &Granted, message: &Incoming) -> Option<Response> {
    let (Some(auth), Some(grant)) = (http.server.auth(), &grant.0) else {
        return None;
    };
    let Incoming::Single(Message::Request(request)) = message else {
        return None;
    };
    let method = request.method.parse::<arbor_mcp::Method>().ok()?;
    auth.permits(grant, method, request.params.as_ref())
        .err()
        .map(|denied| forbidden(auth, &denied, Some(request.id.clone())))
}

/// The part of a session id that names its subject: keyed with a secret of
/// this process, so that it says nothing of the subject and cannot be made
/// for another.
fn owner_tag(subject: &str) -> String {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(rand::random);
    let digest = Sha256::new()
        .chain_update(key)
        .chain_update(subject.as_bytes())
        .finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh session id (128 random bits), bound to the grant's subject when
/// there is one, and named after its node in a cluster (`<node>.<id>`).
pub(super) fn session_id(grant: &Granted, node: Option<&str>) -> String {
    let random: String = rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let id = match &grant.0 {
        Some(grant) => format!("{random}{}", owner_tag(grant.subject())),
        None => random,
    };
    match node {
        Some(node) => format!("{node}.{id}"),
        None => id,
    }
}

/// Whether session `id` may be used with `grant`: always when the server
/// checks no tokens; otherwise only by the subject it is bound to (a newer
/// token of that subject carries it on). The 403, if not.
pub(super) fn session_refusal(http: &Http, grant: &Granted, id: &str) -> Option<Response> {
    let (Some(auth), Some(grant)) = (http.server.auth(), &grant.0) else {
        return None;
    };
    let tag = owner_tag(grant.subject());
    let id = id.split_once('.').map_or(id, |(_, id)| id);
    if id.len() == 32 + tag.len() && id.ends_with(&tag) {
        return None;
    }
    metrics::counter!("arbor_auth_refused_total", "reason" => "other_subject").increment(1);
    Some(forbidden(auth, &Denied::OtherSubject, None))
}

/// An SSE response ends when `grant` does (its token expires or is
/// revoked), its last line a comment saying why; other responses are
/// whole already.
fn until_access_ends(response: Response, grant: Arc<Grant>) -> Response {
    let streaming = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !streaming {
        return response;
    }
    let (parts, body) = response.into_parts();
    let ended = Box::pin(async move {
        let ending = grant.ended().await;
        tracing::debug!(target: "arbor::auth", subject = grant.subject(), reason = ending.reason(), "stream closed: access ended");
        ending
    });
    let body = futures_util::stream::unfold(
        (body.into_data_stream(), Some(ended)),
        |(mut body, ended)| async move {
            let mut ended = ended?;
            tokio::select! {
                chunk = body.next() => chunk.map(|c| (c, (body, Some(ended)))),
                ending = &mut ended => {
                    let last = format!(": access ended: {}\n\n", ending.reason());
                    Some((Ok(bytes::Bytes::from(last)), (body, None)))
                }
            }
        },
    );
    Response::from_parts(parts, axum::body::Body::from_stream(body))
}
