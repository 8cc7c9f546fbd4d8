//! What a POST must be before its handler runs, as extractors: a JSON body
//! within `max_body_bytes` that arrives within `body_read_timeout`
//! ([`JsonBody`]) and, on Streamable HTTP, an `Accept` that takes both JSON
//! and an event stream ([`AcceptsBoth`]). A request that is not is
//! [`Refused`], an HTTP status with a JSON-RPC error saying why.

use super::*;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;

/// A request refused before its handler: the status, and a `-32000`
/// JSON-RPC error whose `data` names the limit or the header at fault.
#[derive(Debug)]
pub(super) struct Refused {
    status: StatusCode,
    message: &'static str,
    data: Value,
}

impl Refused {
    /// The body did not arrive within `body_read_timeout` (408).
    pub(super) fn body_timeout(deadline: Duration) -> Self {
        Refused {
            status: StatusCode::REQUEST_TIMEOUT,
            message: "Request Timeout: the body did not arrive in time",
            data: json!({ "limit": "body_read_timeout", "ms": deadline.as_millis() as u64 }),
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        refuse(self.status, self.message, self.data)
    }
}

/// A POST body that is JSON by its `Content-Type`, at most
/// [`HttpConfig::max_body_bytes`], read within
/// [`HttpConfig::body_read_timeout`].
pub(super) struct JsonBody(pub(super) Vec<u8>);

impl FromRequest<Http> for JsonBody {
    type Rejection = Refused;

    async fn from_request(request: Request, http: &Http) -> Result<Self, Refused> {
        let headers = request.headers();
        let json_body = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json_body {
            return Err(Refused {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                message: "Unsupported Media Type: Content-Type must be application/json",
                data: json!({ "contentType": headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) }),
            });
        }
        let max = http.config.max_body_bytes;
        let deadline = http.config.body_read_timeout;
        let body = request.into_body();
        match tokio::time::timeout(deadline, axum::body::to_bytes(body, max)).await {
            Ok(Ok(bytes)) => Ok(JsonBody(bytes.to_vec())),
            Ok(Err(e)) => {
                let error = e.into_inner();
                // Over the limit, or a body that is not well formed (a
                // broken chunked encoding, a connection cut mid-body).
                if timed_out(&*error) {
                    Err(Refused::body_timeout(deadline))
                } else if error.is::<http_body_util::LengthLimitError>() {
                    Err(Refused {
                        status: StatusCode::PAYLOAD_TOO_LARGE,
                        message: "Payload Too Large",
                        data: json!({ "limit": "max_body_bytes", "max": max }),
                    })
                } else {
                    Err(Refused {
                        status: StatusCode::BAD_REQUEST,
                        message: "Bad Request: the body could not be read",
                        data: json!({ "detail": error.to_string() }),
                    })
                }
            }
            Err(_) => Err(Refused::body_timeout(deadline)),
        }
    }
}

/// Whether a body failed because it did not arrive in time (the
/// connection's own deadline, as an `io::Error` somewhere in the chain).
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut at = Some(error);
    while let Some(e) = at {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        at = e.source();
    }
    false
}

/// A Streamable HTTP POST's `Accept` lists both `application/json` and
/// `text/event-stream` (or ranges that cover them).
pub(super) struct AcceptsBoth;

impl<S: Send + Sync> FromRequestParts<S> for AcceptsBoth {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Refused> {
        let headers = &parts.headers;
        if accepts(headers, "application/json") && accepts(headers, "text/event-stream") {
            return Ok(AcceptsBoth);
        }
        Err(Refused {
            status: StatusCode::NOT_ACCEPTABLE,
            message: "Not Acceptable: Accept must list application/json and text/event-stream",
            data: json!({ "accept": headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) }),
        })
    }
}
