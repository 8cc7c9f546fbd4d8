//! Client transports: what [`arbor_mcp::client::Client`] dials.
//!
//! - Streamable HTTP, both eras: [`HttpConnector`].
//! - The legacy HTTP+SSE transport (2024-11-05): [`LegacySseConnector`].
//! - WebSocket: [`WsConnector`].
//! - Newline-delimited JSON over TCP: [`tcp`] (over TLS: [`tcp_tls`]).
//! - A server spawned as a child process: [`StdioConnector`].
//!
//! [`connector_for`] picks one from a target as a person types it;
//! [`connector_with`] also presents a token and trusts what
//! [`ConnectOptions`] says.

mod bounded;
mod http;
mod legacy;
pub mod oauth;
mod stdio;
mod supervised;
mod tls;
mod ws;

use arbor_mcp::client::{Connector, LineConnector};

pub use http::HttpConnector;
pub use legacy::LegacySseConnector;
pub use oauth::{OAuth, OAuthConfig};
pub use stdio::{StderrLog, StdioConnector};
pub use supervised::{supervised_client, ClientSlot};
pub use tls::{ClientTls, Trust};
pub use ws::WsConnector;

/// Newline-delimited JSON over TCP to `addr` (`host:port`), redialled on
/// every reconnection.
pub fn tcp(addr: impl Into<String>) -> impl Connector {
    tcp_from(addr, None)
}

/// Newline-delimited JSON over TCP to `addr` (`host:port`), over TLS when
/// `tls` is given (the server named by `addr`'s host), each connection
/// authenticated first with `token` when given
/// ([`arbor_mcp::auth::AUTHENTICATE`]; a refused token fails the dial).
pub fn tcp_tls(
    addr: impl Into<String>,
    tls: Option<ClientTls>,
    token: Option<String>,
) -> impl Connector {
    let addr = addr.into();
    LineConnector::new(move || {
        let (addr, tls, token) = (addr.clone(), tls.clone(), token.clone());
        async move {
            let stream = tokio::net::TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            match tls {
                None => {
                    let (read, write) = stream.into_split();
                    authenticated(read, write, token).await
                }
                Some(tls) => {
                    let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
                    let host = host.trim_start_matches('[').trim_end_matches(']');
                    let name = rustls::pki_types::ServerName::try_from(host.to_string())
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                    let stream = tls.connector().connect(name, stream).await?;
                    let (read, write) = tokio::io::split(stream);
                    authenticated(read, write, token).await
                }
            }
        }
    })
}

/// The line streams, after [`arbor_mcp::auth::AUTHENTICATE`] with `token`
/// when there is one.
async fn authenticated<R, W>(
    read: R,
    mut write: W,
    token: Option<String>,
) -> std::io::Result<arbor_mcp::client::LineStreams>
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
    W: tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let Some(token) = token else {
        return Ok((Box::new(read), Box::new(write)));
    };
    let request = serde_json::json!({"jsonrpc": "2.0", "id": arbor_mcp::auth::AUTHENTICATE,
        "method": arbor_mcp::auth::AUTHENTICATE, "params": {"token": token}});
    write.write_all(format!("{request}\n").as_bytes()).await?;
    let mut read = tokio::io::BufReader::new(read);
    let mut answer = String::new();
    // One answer line, bounded: a server that sends more is not arbor.
    (&mut read).take(64 << 10).read_line(&mut answer).await?;
    let refused = |why: String| std::io::Error::new(std::io::ErrorKind::PermissionDenied, why);
    let answer: serde_json::Value = serde_json::from_str(&answer)
        .map_err(|e| refused(format!("no answer to the token: {e}")))?;
    if let Some(error) = answer.get("error") {
        return Err(refused(format!("token refused: {error}")));
    }
    if answer.get("result").is_none() {
        return Err(refused(format!("no answer to the token: {answer}")));
    }
    Ok((Box::new(read), Box::new(write)))
}

/// [`tcp`] dialled from the local address `local` when given (a load
/// generator spreads its connections over several loopback addresses,
/// each with its own ephemeral ports).
pub fn tcp_from(addr: impl Into<String>, local: Option<std::net::IpAddr>) -> impl Connector {
    let addr = addr.into();
    LineConnector::new(move || {
        let addr = addr.clone();
        async move {
            let stream = match local {
                None => tokio::net::TcpStream::connect(addr).await?,
                Some(local) => dial_from(local, &addr).await?,
            };
            stream.set_nodelay(true)?;
            let (read, write) = stream.into_split();
            Ok((Box::new(read) as _, Box::new(write) as _))
        }
    })
}

/// A TCP connection to `addr` bound to `local` first.
async fn dial_from(local: std::net::IpAddr, addr: &str) -> std::io::Result<tokio::net::TcpStream> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    for to in tokio::net::lookup_host(addr).await? {
        if to.is_ipv4() != local.is_ipv4() {
            continue;
        }
        let socket = if to.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        defer_port_choice(&socket)?;
        socket.bind(std::net::SocketAddr::new(local, 0))?;
        match socket.connect(to).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Leaves the choice of the ephemeral port to `connect` (Linux's
/// `IP_BIND_ADDRESS_NO_PORT`). A `bind` to port 0 must pick a port unique
/// among every socket bound to it, a scan that grows with the sockets
/// already open and in TIME_WAIT (past ~10K held it was most of a load
/// generator's CPU); `connect` needs only the 4-tuple to be unique.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn defer_port_choice(socket: &tokio::net::TcpSocket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is the open socket `socket` owns for the whole
    // call; the option value points at a live `c_int` and its length is
    // that of a `c_int`, which is what the kernel reads for this option.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            std::ptr::from_ref(&on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere the port is chosen at `bind`, as before.
#[cfg(not(target_os = "linux"))]
fn defer_port_choice(_socket: &tokio::net::TcpSocket) -> std::io::Result<()> {
    Ok(())
}

/// A connector for `target`: `http://…/sse` (legacy HTTP+SSE), any other
/// `http://…` or `https://…` (Streamable HTTP),
/// `ws://…` (WebSocket), `tcp://host:port`; anything else is refused.
/// A command to spawn is given as [`StdioConnector::new`].
///
/// # Errors
/// The target's scheme is not one arbor speaks.
pub fn connector_for(target: &str) -> Result<Box<dyn Connector>, String> {
    connector_with(target, &ConnectOptions::default())
}

/// How [`connector_with`] dials: a bearer token to present, and whom to
/// trust over TLS.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// Presented in the `Authorization` header on HTTP and the WebSocket
    /// upgrade, by [`arbor_mcp::auth::AUTHENTICATE`] first on TCP.
    pub token: Option<String>,
    /// For `https://`, `wss://` and `tcp+tls://`; `None`: the system's
    /// roots.
    pub tls: Option<ClientTls>,
}

/// [`connector_for`], dialling as `options` say; `tcp+tls://host:port` is
/// TCP over TLS.
///
/// # Errors
/// The target's scheme is not one arbor speaks, the token cannot be sent
/// (nor in clear to another machine), or there is no root to trust.
pub fn connector_with(
    target: &str,
    options: &ConnectOptions,
) -> Result<Box<dyn Connector>, String> {
    let secure = ["https://", "wss://", "tcp+tls://"]
        .iter()
        .any(|s| target.starts_with(s));
    let tls = match (&options.tls, secure) {
        (Some(tls), _) => Some(tls.clone()),
        (None, true) => Some(ClientTls::new(Trust::System, None)?),
        (None, false) => None,
    };
    let token = options.token.as_deref();
    // OAuth 2.1 §1.5: a bearer token crosses a network only inside TLS.
    if token.is_some() && !secure && !arbor_mcp::auth::on_this_machine(target) {
        return Err(format!(
            "a token is sent only over TLS or to this machine: use https://, wss:// or \
             tcp+tls:// for {target}"
        ));
    }
    let http_client = || match &tls {
        Some(tls) => tls.http_client(),
        None => Ok(reqwest::Client::new()),
    };
    if (target.starts_with("http://") || target.starts_with("https://")) && target.ends_with("/sse")
    {
        let mut legacy = LegacySseConnector::new(target).http_client(http_client()?);
        if let Some(token) = token {
            legacy = legacy.bearer(token)?;
        }
        Ok(Box::new(legacy))
    } else if target.starts_with("http://") || target.starts_with("https://") {
        let mut http = HttpConnector::new(target).http_client(http_client()?);
        if let Some(token) = token {
            http = http
                .header("Authorization", &format!("Bearer {token}"))
                .map_err(|e| e.to_string())?;
        }
        Ok(Box::new(http))
    } else if target.starts_with("ws://") || target.starts_with("wss://") {
        let mut ws = WsConnector::new(target);
        if let Some(token) = token {
            ws = ws.bearer(token);
        }
        if let Some(tls) = tls {
            ws = ws.tls(tls);
        }
        Ok(Box::new(ws))
    } else if let Some(addr) = target.strip_prefix("tcp+tls://") {
        Ok(Box::new(tcp_tls(addr, tls, options.token.clone())))
    } else if let Some(addr) = target.strip_prefix("tcp://") {
        Ok(match token {
            Some(token) => Box::new(tcp_tls(addr, None, Some(token.to_string()))),
            None => Box::new(tcp(addr)),
        })
    } else {
        Err(format!(
            "{target:?}: expected http(s)://, ws(s)://, tcp:// or tcp+tls:// (or `-- COMMAND…` for stdio)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_crosses_the_network_only_inside_tls() {
        let with_token = ConnectOptions {
            token: Some("t".into()),
            tls: None,
        };
        for target in [
            "http://mcp.test/mcp",
            "ws://10.0.0.1:9/ws",
            "tcp://mcp.test:9",
        ] {
            let refused = connector_with(target, &with_token)
                .err()
                .unwrap_or_default();
            assert!(refused.contains("only over TLS"), "{target}: {refused:?}");
            assert!(connector_with(target, &ConnectOptions::default()).is_ok());
        }
        for target in [
            "https://mcp.test/mcp",
            "wss://mcp.test/ws",
            "tcp+tls://mcp.test:9",
            "http://127.0.0.1:9/mcp",
            "ws://localhost:9/ws",
            "tcp://[::1]:9",
        ] {
            assert!(connector_with(target, &with_token).is_ok(), "{target}");
        }
    }
}
